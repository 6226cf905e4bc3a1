/**
 * Deciding what a new connection is from its first bytes — the HTTP/2 client preface,
 * a TLS ClientHello — before any engine takes it: bytes are read until `inspect` can
 * tell, then the socket is paused and `done` gets it with the bytes read, to put back
 * (`unshift`) for an engine that reads the stream itself (node:http2, a TCP tunnel), or to
 * hand straight to one that takes a first chunk (the HTTP/1.1 engine: putting bytes back
 * costs a trip through the Readable stream and a tick per connection). One state object
 * per connection, module-level handlers (no closures per connection).
 */
import type { Socket } from 'node:net';
import { readWith, stopReading } from './socket-reader.js';

const kPeek = Symbol('trellis.first-bytes');

interface PeekState<C, T> {
  readonly context: C;
  readonly connections: Set<Socket>;
  readonly inspect: (buf: Buffer) => T | undefined;
  readonly done: (context: C, socket: Socket, result: T, bytes: Buffer) => void;
  buf: Buffer | null;
  timer: NodeJS.Timeout | null;
}

type PeekSocket = Socket & { [kPeek]?: PeekState<unknown, unknown> };

/**
 * Reads `socket`'s first bytes until `inspect` returns a result (undefined: need more),
 * then calls `done(context, socket, result, bytes)` with the socket paused and `bytes`
 * (everything read so far) taken off it. The socket is in `connections` while it waits (so draining sees it). A
 * client that sends nothing decisive within `timeoutMs` (0: no limit) is closed.
 */
export function peekFirstBytes<C, T>(socket: Socket, context: C, connections: Set<Socket>, inspect: (buf: Buffer) => T | undefined, done: (context: C, socket: Socket, result: T, bytes: Buffer) => void, timeoutMs = 0): void {
  const state: PeekState<C, T> = { context, connections, inspect, done, buf: null, timer: null };
  if (timeoutMs > 0) state.timer = setTimeout(onTimeout, timeoutMs, socket);
  (socket as PeekSocket)[kPeek] = state as PeekState<unknown, unknown>;
  connections.add(socket);
  readWith(socket, onData);
  socket.on('close', onClose);
  socket.on('error', noop);
}

function noop(): void {}

function onData(this: PeekSocket, chunk: Buffer): void {
  const st = this[kPeek] as PeekState<unknown, unknown>;
  // Kept past this call, or put back on the socket: not a view of the shared read buffer. Once per connection.
  const buf = st.buf === null ? Buffer.from(chunk) : Buffer.concat([st.buf, chunk]);
  const result = st.inspect(buf);
  if (result === undefined) {
    st.buf = buf;
    return;
  }
  this.pause(); // before the reader goes, or the next chunk is lost
  stop(this, st);
  st.done(st.context, this, result, buf);
}

function stop(s: PeekSocket, st: PeekState<unknown, unknown>): void {
  if (st.timer !== null) clearTimeout(st.timer);
  stopReading(s);
  s.removeListener('close', onClose);
  s.removeListener('error', noop);
  s[kPeek] = undefined;
  st.connections.delete(s);
}

function onClose(this: PeekSocket): void {
  const st = this[kPeek];
  if (st !== undefined) stop(this, st);
}

function onTimeout(s: PeekSocket): void {
  const st = s[kPeek];
  if (st === undefined) return;
  stop(s, st);
  s.destroy();
}

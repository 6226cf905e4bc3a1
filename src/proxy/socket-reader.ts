/**
 * How the proxy reads its sockets: one reader function per socket at a time, and, for
 * the plaintext TCP sockets it makes itself, into one read buffer that all of them share
 * (node:net's `onread` option) instead of through 'data' events.
 *
 * Why: for every read that ends in a 'data' event, Node 20 allocates 64 KiB, reads into
 * it, allocates the size read and copies into that, frees the 64 KiB, wraps the copy in
 * an ArrayBuffer and a Buffer (both left to the garbage collector), and passes the Buffer
 * through the Readable stream's push and emit. With `onread` the socket reads into the
 * buffer it was given and calls one function. On the HTTP/1.1 path at 50 keep-alive
 * connections that was a fifth of the proxy's user CPU per request (docs/performance.md).
 *
 * One buffer serves every socket because the event loop reads one socket at a time and
 * calls its reader before the next read. A buffer per socket costs an allocation per
 * connection: with 1,000 clients connecting at once, it put the p99 of such bursts about
 * 35 ms higher (same-machine A/B, four runs of three bursts).
 *
 * The catch: what a reader gets from such a socket is a view of the shared buffer, which
 * the next read of any of them overwrites. A reader copies, with `owned()`, what it keeps
 * past its call: bytes it stores, and bytes it writes as they are (a write the kernel
 * does not take at once keeps a reference to the bytes it was given; bytes joined to
 * others with Buffer.concat are a copy already).
 *
 * Sockets made elsewhere (node:net's server, TLS sockets) emit 'data' as usual:
 * `readWith` reads those through a 'data' listener, so every engine reads both kinds
 * alike. A socket reading into the shared buffer that gets bytes while no reader is set
 * keeps them (paused, put back with `unshift`); they reach the next reader as a 'data'
 * event once the socket is resumed, as do bytes anyone else puts back.
 */
import type { OnReadOpts, Socket } from 'node:net';

/** The most one read takes: as much as Node's own reads. */
const READ_BUFFER_BYTES = 64 * 1024;

/** A socket's reader; `this` is the socket. `chunk` may be a view of the shared read buffer (see `owned`). */
export type Reader = (this: Socket, chunk: Buffer) => void;

const kReader = Symbol('trellis.reader');
type ReadingSocket = Socket & { [kReader]?: Reader | null };

const READ_BUFFER = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
const SHARED = READ_BUFFER.buffer;
const ON_READ: OnReadOpts = { buffer: READ_BUFFER, callback: onRead };

/**
 * The `onread` option for `net.connect` or `new net.Socket`: the socket reads into the
 * shared buffer and passes each read to its reader (`readWith`).
 */
export function readIntoSharedBuffer(): OnReadOpts {
  return ON_READ;
}

/** `this` is the socket (node:net calls it as the socket's method). True: go on reading. */
function onRead(this: unknown, nread: number, buf: Uint8Array): boolean {
  const socket = this as ReadingSocket;
  const chunk = (buf as Buffer).subarray(0, nread);
  const reader = socket[kReader];
  if (reader != null) {
    reader.call(socket, chunk);
    return true;
  }
  socket.pause();
  socket.unshift(Buffer.from(chunk));
  return true;
}

/**
 * Makes `reader` the socket's reader (replacing any other). As with a 'data' listener, a
 * socket not paused explicitly starts flowing.
 */
export function readWith(socket: Socket, reader: Reader): void {
  const s = socket as ReadingSocket;
  // Bytes put back with unshift() come as 'data' events, on either kind of socket.
  if (s[kReader] == null) s.on('data', onData);
  s[kReader] = reader;
}

/** The socket has no reader any more (another engine, or node:http2 or TLS, takes it over). */
export function stopReading(socket: Socket): void {
  const s = socket as ReadingSocket;
  if (s[kReader] == null) return;
  s[kReader] = null;
  s.removeListener('data', onData);
}

function onData(this: ReadingSocket, chunk: Buffer): void {
  const reader = this[kReader];
  if (reader != null) reader.call(this, chunk);
}

/** True when `chunk` is a view of the shared read buffer, which the next read overwrites. */
export function isReadView(chunk: Buffer): boolean {
  return chunk.buffer === SHARED;
}

/** `chunk`, or a copy of it when it is a view of the shared read buffer: for bytes that must outlive the reader's call. */
export function owned(chunk: Buffer): Buffer {
  return isReadView(chunk) ? Buffer.from(chunk) : chunk;
}

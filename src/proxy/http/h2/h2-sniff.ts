/**
 * Which HTTP version a new connection on an HTTP listener speaks, from its first bytes:
 * an HTTP/2 client with prior knowledge (h2c) starts with the connection preface
 * `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (RFC 9113 §3.4), which no HTTP/1.1 request line can
 * (Envoy's http_inspector does the same). The bytes read to decide go to the engine that
 * takes the socket: put back with `unshift` for node:http2, handed over as the first chunk
 * to the HTTP/1.1 engine.
 */
import type { Socket } from 'node:net';
import { peekFirstBytes } from '../../first-bytes.js';

/** The HTTP/2 client connection preface. */
export const H2_PREFACE: Buffer = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const SNIFFED = { h1: 'h1', h2: 'h2' } as const;
export type Sniffed = (typeof SNIFFED)[keyof typeof SNIFFED];

/**
 * `h2` when `buf` starts with the whole preface, `h1` as soon as a byte differs from it,
 * undefined while `buf` is a proper prefix of it (wait for more bytes).
 */
export function sniffPreface(buf: Buffer): Sniffed | undefined {
  const n = Math.min(buf.length, H2_PREFACE.length);
  if (buf.compare(H2_PREFACE, 0, n, 0, n) !== 0) return SNIFFED.h1;
  return n === H2_PREFACE.length ? SNIFFED.h2 : undefined;
}

/** Where sniffed connections go; one object per listener. */
export interface SniffHandlers {
  /** The listener's open connections: a socket is in it while its protocol is not known yet. */
  readonly connections: Set<Socket>;
  /** Takes over an HTTP/1.1 connection whose first bytes are `first` (read off it); the socket is paused. */
  h1(socket: Socket, first: Buffer): void;
  /** Takes over an HTTP/2 connection; the socket is paused with the preface unshifted. */
  h2(socket: Socket): void;
}

/** Reads the first bytes of `socket` and gives it to `handlers.h1` or `handlers.h2`. */
export function sniffConnection(socket: Socket, handlers: SniffHandlers): void {
  peekFirstBytes(socket, handlers, handlers.connections, sniffPreface, handOver);
}

function handOver(handlers: SniffHandlers, socket: Socket, kind: Sniffed, bytes: Buffer): void {
  if (kind === SNIFFED.h2) {
    // node:http2 reads what is buffered on the socket when it takes the connection.
    socket.unshift(bytes);
    handlers.h2(socket);
  } else {
    handlers.h1(socket, bytes);
  }
}

/**
 * Byte tunnels between two sockets (CONNECT, WebSocket after its 101, TCP proxying),
 * with back-pressure both ways and half-close handled as TCP does. Not the per-request
 * HTTP path: a tunnel lives for a connection, so its handlers are per tunnel.
 */
import type { Socket } from 'node:net';
import { owned, readWith } from '../socket-reader.js';

export interface TunnelStats {
  /** Bytes from `a` to `b`, and back. */
  aToB: number;
  bToA: number;
}

/** Connects `a` and `b`; `onClose` runs once when both are closed. */
export function tunnel(a: Socket, b: Socket, onClose: (stats: TunnelStats) => void): TunnelStats {
  const stats: TunnelStats = { aToB: 0, bToA: 0 };
  let open = 2;
  const closed = (): void => {
    open--;
    if (open === 0) onClose(stats);
  };
  const wire = (from: Socket, to: Socket, count: (n: number) => void): void => {
    readWith(from, (chunk: Buffer) => {
      count(chunk.length);
      if (!to.write(owned(chunk))) from.pause();
    });
    to.on('drain', () => from.resume());
    from.on('end', () => to.end());
    from.on('error', () => to.destroy());
    from.once('close', () => {
      if (!to.destroyed && to.writableEnded === false) to.end();
      closed();
    });
  };
  wire(a, b, (n) => (stats.aToB += n));
  wire(b, a, (n) => (stats.bToA += n));
  a.resume();
  b.resume();
  return stats;
}

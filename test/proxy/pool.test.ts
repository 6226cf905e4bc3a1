/** The HTTP/1.1 upstream pool: LIFO reuse and the idle timeout (DestinationRule connectionPool.http.idleTimeout). */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { EndpointPool, type UpstreamConnection } from '../../src/proxy/upstream/pool.js';

describe('HTTP/1.1 upstream pool', { timeout: 10_000 }, () => {
  let server: Server;
  let port = 0;
  /** Server-side sockets in accept order, and a promise per socket that settles on its close. */
  const accepted: { socket: Socket; closed: Promise<number> }[] = [];

  before(async () => {
    server = createServer((socket) => {
      socket.on('error', () => undefined);
      accepted.push({ socket, closed: new Promise((resolve) => socket.once('close', () => resolve(performance.now()))) });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  after(() => {
    for (const a of accepted) a.socket.destroy();
    server.close();
  });

  async function connected(p: EndpointPool): Promise<{ c: UpstreamConnection; server: { socket: Socket; closed: Promise<number> } }> {
    const n = accepted.length;
    const c = p.create();
    c.socket.on('error', () => undefined);
    await new Promise((resolve) => c.socket.once('connect', resolve));
    c.socket.setTimeout(0); // what the engines do on connect (the connect timeout is over)
    while (accepted.length === n) await new Promise((resolve) => setImmediate(resolve));
    return { c, server: accepted[n] as { socket: Socket; closed: Promise<number> } };
  }

  it('hands out the most recently released connection first', async () => {
    const p = new EndpointPool('127.0.0.1', port);
    const a = await connected(p);
    const b = await connected(p);
    p.release(a.c);
    p.release(b.c);
    assert.equal(p.acquire(), b.c);
    assert.equal(p.acquire(), a.c);
    assert.equal(p.acquire(), null);
    p.close();
  });

  it('closes a connection idle for its idle timeout, keeps one without a timeout, and one taken again in time', async () => {
    const p = new EndpointPool('127.0.0.1', port);
    const forever = await connected(p);
    const short = await connected(p);
    const reused = await connected(p);
    p.release(forever.c, 0);
    const released = performance.now();
    p.release(reused.c, 150);
    p.release(short.c, 150);
    assert.equal(p.acquire(), short.c); // LIFO: the last released
    p.release(short.c, 150);
    // `reused` is taken again before its time and put back with a long timeout.
    const kept = [p.acquire(), p.acquire()];
    assert.deepEqual(kept, [short.c, reused.c]);
    p.release(reused.c, 60_000);
    p.release(short.c, 150);
    const closedAt = await short.server.closed;
    assert.ok(closedAt - released >= 140, `closed after ${Math.round(closedAt - released)} ms`);
    assert.equal(short.c.dead, true);
    assert.equal(p.idleCount, 2);
    assert.equal(forever.c.dead, false);
    assert.equal(reused.c.dead, false);
    assert.equal(p.acquire(), reused.c);
    assert.equal(p.acquire(), forever.c);
    p.close();
  });

  it('stops its idle timer on close', async () => {
    const p = new EndpointPool('127.0.0.1', port);
    const a = await connected(p);
    p.release(a.c, 100);
    p.close();
    await a.server.closed;
    assert.equal(a.c.dead, true);
  });
});

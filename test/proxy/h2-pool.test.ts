/** The upstream HTTP/2 pool: stream sharing, the peer's and the cluster's stream limits, GOAWAY, failures. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { constants, createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { H2EndpointPool, type H2Request } from '../../src/proxy/upstream/h2-pool.js';
import { freePort } from '../e2e/http-backends.js';

/** A test server: `/hold` streams wait until `release()`; others answer at once. */
class Upstream {
  readonly server: Http2Server;
  readonly sessions: ServerHttp2Session[] = [];
  readonly held: ServerHttp2Stream[] = [];
  #waiters: { n: number; resolve: () => void }[] = [];
  port = 0;

  constructor(maxConcurrentStreams: number) {
    this.server = createServer({ settings: { maxConcurrentStreams } });
    this.server.on('session', (s) => this.sessions.push(s));
    this.server.on('stream', (stream, headers) => {
      if (headers[':path'] === '/hold') {
        this.held.push(stream);
        const ready = this.#waiters.filter((x) => this.held.length >= x.n);
        this.#waiters = this.#waiters.filter((x) => !ready.includes(x));
        for (const w of ready) w.resolve();
        return;
      }
      stream.respond({ ':status': 200, 'x-session': String(this.sessions.indexOf(stream.session as ServerHttp2Session)) });
      stream.end('ok');
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address();
    this.port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  }

  /** Resolves when `n` held streams have arrived. */
  holding(n: number): Promise<void> {
    if (this.held.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ n, resolve }));
  }

  release(): void {
    for (const s of this.held.splice(0)) {
      if (s.closed) continue;
      s.respond({ ':status': 200 });
      s.end('held');
    }
  }

  close(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Outcome {
  readonly status: string | string[] | number | undefined;
  readonly body: string;
  readonly error: string | undefined;
  readonly headers: IncomingHttpHeaders;
}

function outcome(r: H2Request): Promise<Outcome> {
  return new Promise((resolve) => {
    let headers: IncomingHttpHeaders = {};
    let body = '';
    let error: string | undefined;
    r.stream.on('response', (h) => (headers = h));
    r.stream.on('data', (c: Buffer) => (body += c.toString()));
    r.stream.on('error', (e: Error & { code?: string }) => (error = e.code ?? e.message));
    r.stream.on('close', () => resolve({ status: headers[':status'], body, error, headers }));
  });
}

const GET = (path: string) => ({ ':method': 'GET', ':path': path, ':scheme': 'http', ':authority': 'test' });

describe('H2EndpointPool', { timeout: 15_000 }, () => {
  let up: Upstream;
  const pools: H2EndpointPool[] = [];
  const pool = (port = up.port, idleTimeoutMs = 60_000): H2EndpointPool => {
    const p = new H2EndpointPool('127.0.0.1', port, { connectTimeoutMs: 2_000, idleTimeoutMs });
    pools.push(p);
    return p;
  };

  before(async () => {
    up = new Upstream(3);
    await up.listen();
  });

  after(async () => {
    for (const p of pools) p.destroy();
    await up.close();
  });

  it('reuses one connection for sequential and concurrent requests within the limit', async () => {
    const p = pool();
    const first = p.request(GET('/a'), { endStream: true });
    assert.equal((await outcome(first)).body, 'ok');
    const more = await Promise.all([1, 2, 3].map(() => outcome(p.request(GET('/b'), { endStream: true }))));
    assert.deepEqual(more.map((o) => o.body), ['ok', 'ok', 'ok']);
    assert.equal(p.open, 1);
    assert.equal(new Set(more.map((o) => o.headers['x-session'])).size, 1);
  });

  it('opens another connection when the peer\'s SETTINGS_MAX_CONCURRENT_STREAMS is reached', async () => {
    const before = up.sessions.length;
    const p = pool();
    await outcome(p.request(GET('/warm'), { endStream: true })); // SETTINGS (3 streams) known from here
    const held = Array.from({ length: 7 }, () => p.request(GET('/hold'), { endStream: true }));
    await up.holding(7);
    const conns = [...new Set(held.map((r) => r.connection))];
    assert.deepEqual(conns.map((c) => c.active).sort(), [1, 3, 3], '3 + 3 + 1 streams');
    assert.equal(up.sessions.length - before, 3);
    up.release();
    const done = await Promise.all(held.map(outcome));
    assert.ok(done.every((o) => o.body === 'held'));
  });

  it('respects a lower limit of the cluster (max_concurrent_streams)', async () => {
    const p = pool();
    await outcome(p.request(GET('/warm'), { endStream: true }));
    const held = Array.from({ length: 4 }, () => p.request(GET('/hold'), { endStream: true }, 2));
    await up.holding(4);
    assert.equal(new Set(held.map((r) => r.connection)).size, 2);
    up.release();
    await Promise.all(held.map(outcome));
  });

  it('moves to a new connection after GOAWAY while the open stream finishes', async () => {
    const p = pool();
    const a = p.request(GET('/hold'), { endStream: true });
    const aDone = outcome(a);
    await up.holding(1);
    const serverSession = up.held[0]?.session as ServerHttp2Session;
    const goaway = new Promise((resolve) => a.connection.session.once('goaway', resolve));
    serverSession.goaway(constants.NGHTTP2_NO_ERROR, 1);
    await goaway;
    assert.equal(a.connection.draining, true);
    const b = p.request(GET('/b'), { endStream: true });
    assert.notEqual(b.connection, a.connection);
    assert.equal((await outcome(b)).body, 'ok');
    const aClosed = once(a.connection.session, 'close');
    up.release();
    assert.equal((await aDone).body, 'held');
    // Node's server stops reading after its GOAWAY: the pool must not wait for it to close.
    await aClosed;
    assert.deepEqual([...p.connections], [b.connection], 'the GOAWAY\'d connection is gone once its stream finished');
  });

  it('closes a connection after a PROTOCOL_ERROR GOAWAY and opens another for the next request', async () => {
    const p = pool();
    const a = p.request(GET('/a'), { endStream: true });
    assert.equal((await outcome(a)).body, 'ok');
    const serverSession = up.sessions.at(-1) as ServerHttp2Session;
    // (events.once would reject on the session's 'error', which a PROTOCOL_ERROR GOAWAY brings.)
    const closed = new Promise((resolve) => a.connection.session.once('close', resolve));
    serverSession.goaway(constants.NGHTTP2_PROTOCOL_ERROR);
    await closed;
    const b = p.request(GET('/b'), { endStream: true });
    assert.notEqual(b.connection, a.connection);
    assert.equal((await outcome(b)).body, 'ok');
    assert.deepEqual([...p.connections], [b.connection]);
  });

  it('fails the stream when the endpoint refuses the connection, and reports it never connected', async () => {
    const p = pool(await freePort());
    const r = p.request(GET('/x'), { endStream: true });
    const o = await outcome(r);
    assert.equal(o.status, undefined);
    assert.ok(o.error !== undefined);
    assert.equal(r.connection.connected, false);
    assert.equal(p.open, 0);
  });

  it('closes a connection idle for idleTimeoutMs', async () => {
    const p = pool(up.port, 50);
    const r = p.request(GET('/a'), { endStream: true });
    await outcome(r);
    await new Promise((resolve) => r.connection.session.once('close', resolve));
    assert.equal(p.open, 0);
  });
});

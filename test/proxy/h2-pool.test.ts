/** The upstream HTTP/2 pool: stream sharing, the peer's and the cluster's stream limits, GOAWAY, failures. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { constants, createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import type { PoolSettings } from '../../src/proxy/config/pool-settings.js';
import { CircuitBreaker, ENVOY_DEFAULT_THRESHOLDS } from '../../src/proxy/resilience/circuit-breaker.js';
import { H2EndpointPool, type H2Limits, type H2Refusal, type H2Request, type H2Waiter } from '../../src/proxy/upstream/h2-pool.js';
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

  describe('with a cluster\'s limits (tryRequest)', () => {
    const SETTINGS: PoolSettings = { idleTimeoutMs: 60_000, maxRequestsPerConnection: 0, maxConnectionDurationMs: 0, tcpKeepalive: null };
    const limits = (maxConnections: number, maxPendingRequests: number, settings: Partial<PoolSettings> = {}): H2Limits => ({
      maxConcurrentStreams: 3, // the test server's SETTINGS_MAX_CONCURRENT_STREAMS
      connectTimeoutMs: 2_000,
      pool: { ...SETTINGS, ...settings },
      breaker: new CircuitBreaker('test', { ...ENVOY_DEFAULT_THRESHOLDS, maxConnections, maxPendingRequests }),
    });
    /** A waiter that opens its stream when the pool says so. */
    class Waiter implements H2Waiter {
      result: H2Request | H2Refusal | null = null;
      readonly opened: Promise<H2Request>;
      #resolve: (r: H2Request) => void = () => undefined;
      constructor(readonly p: H2EndpointPool, readonly l: H2Limits, readonly path: string) {
        this.opened = new Promise((resolve) => (this.#resolve = resolve));
      }
      start(): H2Request | H2Refusal {
        const r = this.p.tryRequest(GET(this.path), { endStream: true }, this.l, this);
        this.result = r;
        if (typeof r !== 'string') this.#resolve(r);
        return r;
      }
      streamSlotFree(): void {
        this.start();
      }
    }

    it('opens at most max_connections; then queues up to max_pending_requests and overflows beyond', async () => {
      const q = pool();
      const l = limits(1, 1);
      const held = [1, 2, 3].map(() => new Waiter(q, l, '/hold'));
      assert.deepEqual(held.map((w) => typeof w.start()), ['object', 'object', 'object']);
      const heldDone = Promise.all(held.map((w) => outcome(w.result as H2Request)));
      const fourth = new Waiter(q, l, '/a');
      assert.equal(fourth.start(), 'pending');
      assert.equal(new Waiter(q, l, '/a').start(), 'overflow');
      assert.equal(l.breaker.connections, 1);
      assert.equal(l.breaker.pending, 1);
      assert.equal(q.pending, 1);
      await up.holding(3);
      up.release(); // the held streams end: the waiting one gets a slot on the same connection
      const r = await fourth.opened;
      assert.equal((await outcome(r)).body, 'ok');
      assert.equal(r.connection, (held[0]?.result as H2Request).connection);
      assert.equal(l.breaker.pending, 0);
      assert.equal(q.pending, 0);
      assert.deepEqual((await heldDone).map((o) => o.body), ['held', 'held', 'held']);
    });

    it('takes a waiting request out of the queue when it gives up', () => {
      const p = pool();
      const l = limits(0, 5);
      const w = new Waiter(p, l, '/a');
      assert.equal(w.start(), 'pending');
      assert.equal(l.breaker.pending, 1);
      p.cancel(w);
      assert.equal(l.breaker.pending, 0);
      assert.equal(p.pending, 0);
    });

    it('wakes its waiting requests once when it is closed (they go to the endpoint\'s next pool)', () => {
      const p = pool();
      const l = limits(0, 5);
      let woken = 0;
      const w: H2Waiter = { streamSlotFree: () => void woken++ };
      assert.equal(p.tryRequest(GET('/a'), { endStream: true }, l, w), 'pending');
      p.close();
      assert.equal(woken, 1);
      assert.equal(l.breaker.pending, 0);
      assert.equal(p.pending, 0);
    });

    it('gives the connection slot back when a connection closes, and a waiter opens a new one', async () => {
      const p = pool();
      const l = limits(1, 5, { maxRequestsPerConnection: 1 });
      const a = new Waiter(p, l, '/hold');
      const first = a.start() as H2Request;
      const firstDone = outcome(first);
      const b = new Waiter(p, l, '/a');
      assert.equal(b.start(), 'pending', 'the only connection took its one request');
      assert.equal(first.connection.draining, true);
      await up.holding(1);
      up.release();
      const second = await b.opened;
      assert.notEqual(second.connection, first.connection);
      assert.equal((await outcome(second)).body, 'ok');
      assert.equal((await firstDone).body, 'held');
      assert.equal(first.connection.session.closed, true);
      assert.equal(l.breaker.connections, 1, 'the first connection was given back');
    });

    it('closes a connection idle for the cluster\'s idle timeout, and gives its slot back', async () => {
      const p = pool(up.port, 60_000);
      const l = limits(10, 10, { idleTimeoutMs: 50 });
      const r = p.tryRequest(GET('/a'), { endStream: true }, l, new Waiter(p, l, '/a')) as H2Request;
      await outcome(r);
      assert.equal(l.breaker.connections, 1);
      await new Promise((resolve) => r.connection.session.once('close', resolve));
      assert.equal(p.open, 0);
      assert.equal(l.breaker.connections, 0);
    });

    it('takes no new streams on a connection past max_connection_duration', async () => {
      const p = pool();
      const l = limits(10, 10, { maxConnectionDurationMs: 50 });
      const a = p.tryRequest(GET('/a'), { endStream: true }, l, new Waiter(p, l, '/a')) as H2Request;
      await outcome(a);
      await new Promise((resolve) => a.connection.session.once('close', resolve));
      const b = p.tryRequest(GET('/b'), { endStream: true }, l, new Waiter(p, l, '/b')) as H2Request;
      assert.notEqual(b.connection, a.connection);
      assert.equal((await outcome(b)).body, 'ok');
    });
  });
});

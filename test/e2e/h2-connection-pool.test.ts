/**
 * DestinationRule `connectionPool` on HTTP/2 upstreams end to end (control plane, a
 * sidecar, h2c backends on 127.0.0.1): `tcp.maxConnections` with the pending queue
 * (`http.http1MaxPendingRequests`) and 503 UO beyond it, `http.idleTimeout`,
 * `http.maxRequestsPerConnection` and `tcp.tcpKeepalive` on the sidecar's HTTP/2
 * connections; and mirroring of requests that arrive over HTTP/2 (gRPC and h2c).
 * Figures in the test output.
 */
import assert from 'node:assert/strict';
import { servicesYaml } from './mesh.js';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import { tcpKeepaliveOf } from '../../src/proxy/listener/fast-accept.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { Instance } from './instances.js';
import { echo, type EchoClient, echoClient, type GrpcBackend, type H2Backend, HOLD_PATH, startFaultyGrpc, startFaultyH2 } from './faulty-h2-backends.js';

const log = new Logger({ level: 'warn' });
const PORTS = { grpc: 50051, http2: 8081, http: 8080 } as const;
type PortName = keyof typeof PORTS;
const IDLE_TIMEOUT_MS = 300;
const MAX_REQUESTS_PER_CONNECTION = 2;

interface Svc {
  readonly name: string;
  readonly port: PortName;
  readonly backendPort: number;
  readonly vs?: string;
  readonly policy?: string;
}

function config(services: readonly Svc[]): string {
  return servicesYaml(services.map((s) => ({ ...s, portName: s.port, port: PORTS[s.port], endpoints: [s.backendPort] })));
}

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers: IncomingHttpHeaders;
}

function h2request(session: ClientHttp2Session, authority: string, path = '/', method = 'GET', body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': method, ':path': path, ':authority': authority }, { endStream: body === undefined });
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (headers = h));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status: Number(headers[':status']), body: Buffer.concat(chunks).toString(), headers }));
    req.on('error', reject);
    req.setTimeout(10_000, () => req.close());
    if (body !== undefined) req.end(body);
  });
}

/** `promise`, or a rejection after `ms`. */
function within<T extends unknown[]>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe('HTTP/2 upstream connection pools and mirroring through the sidecar', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-h2-pool-'));
  const h2: Record<string, H2Backend> = {};
  let grpcBackend: GrpcBackend;
  let h1: Instance;
  let client: EchoClient | undefined;
  let cp: ControlPlane;
  let sidecar: Proxy;
  let port = 0;
  let session: ClientHttp2Session;

  const cluster = (name: string, p: PortName = 'http2'): string => `outbound|${PORTS[p]}||${name}.default.svc.cluster.local`;

  before(async () => {
    // One stream per connection at the backend, so that a second concurrent request needs a second connection.
    h2.limited = await startFaultyH2('limited', 'ok', 1);
    h2.idle = await startFaultyH2('idle', 'ok');
    h2.capped = await startFaultyH2('capped', 'ok');
    h2.shadow = await startFaultyH2('shadow', 'ok');
    h2.grpcShadow = await startFaultyH2('grpc-shadow', 'ok');
    h2.mirrored = await startFaultyH2('mirrored', 'ok');
    grpcBackend = await startFaultyGrpc('grpc-mirrored', 'ok');
    h1 = await Instance.start('h1-limited', 'hold');
    const services: Svc[] = [
      {
        name: 'h1-limited', port: 'http', backendPort: h1.port, vs: 'retries: {attempts: 0}',
        policy: '{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}}',
      },
      {
        name: 'limited', port: 'http2', backendPort: h2.limited.port, vs: 'retries: {attempts: 0}',
        policy: '{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1, http2MaxRequests: 1000}}}',
      },
      { name: 'idle', port: 'http2', backendPort: h2.idle.port, policy: `{connectionPool: {http: {idleTimeout: ${IDLE_TIMEOUT_MS / 1000}s}, tcp: {tcpKeepalive: {time: 7s, interval: 3s, probes: 4}}}}` },
      { name: 'capped', port: 'http2', backendPort: h2.capped.port, policy: `{connectionPool: {http: {maxRequestsPerConnection: ${MAX_REQUESTS_PER_CONNECTION}}}}` },
      { name: 'shadow', port: 'http2', backendPort: h2.shadow.port },
      { name: 'mirrored', port: 'http2', backendPort: h2.mirrored.port, vs: 'mirror: {host: shadow}\nmirrorPercentage: {value: 100}' },
      { name: 'grpc-shadow', port: 'grpc', backendPort: h2.grpcShadow.port },
      { name: 'grpc-mirrored', port: 'grpc', backendPort: grpcBackend.port, vs: 'mirror: {host: grpc-shadow}\nmirrorPercentage: {value: 100}' },
    ];
    writeFileSync(join(dir, 'mesh.yaml'), config(services));
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
    sidecar = new Proxy({ xds: `127.0.0.1:${cp.xdsPort}`, type: 'sidecar', id: 'client', namespace: 'default', serviceAccount: 'client', labels: { app: 'client' }, bind: '127.0.0.1', outboundPort: 0, inboundPort: 0, adminPort: 0, statsPort: 0, log });
    await sidecar.start();
    await sidecar.waitFor((s) => services.every((x) => (s.clusters.get(cluster(x.name, x.port))?.endpoints.length ?? 0) === 1) && s.routes.has(String(PORTS.grpc)) && s.routes.has(String(PORTS.http2)));
    port = sidecar.listenerPort('virtualOutbound') as number;
    session = h2connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
  });

  after(async () => {
    client?.close();
    session?.close();
    await sidecar?.close();
    await cp?.close();
    await Promise.all([...Object.values(h2).map((b) => b.close()), grpcBackend?.close(), h1?.kill()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /**
   * Three requests on one client connection, in this order (the sidecar takes the second
   * before the third): the first is held at the backend (`arrived`), the second must wait
   * for the connection, the third must overflow at once with 503 UO.
   */
  async function holdWaitOverflow(authority: string, firstPath: string, arrived: Promise<unknown[]>): Promise<{ first: Promise<Reply>; second: Promise<Reply>; third: Reply; took: number }> {
    const first = h2request(session, authority, firstPath);
    await within(arrived, 5_000, 'held request at the backend');
    const second = h2request(session, authority, '/second');
    const started = performance.now();
    const third = await h2request(session, authority, '/third');
    const took = performance.now() - started;
    assert.equal(third.status, 503);
    assert.match(third.body, /reset reason: overflow/);
    return { first, second, third, took };
  }

  it('maxConnections 1: a second concurrent request waits for the connection\'s stream, a third overflows with 503 UO', async () => {
    const b = h2.limited as H2Backend;
    const authority = `limited:${PORTS.http2}`;
    // The first exchange teaches the pool the backend's SETTINGS_MAX_CONCURRENT_STREAMS (1).
    assert.equal((await h2request(session, authority)).status, 200);
    const { first, second, third, took } = await holdWaitOverflow(authority, HOLD_PATH, once(b.events, 'request'));
    const breaker = sidecar.config.current.clusters.get(cluster('limited'))?.breaker;
    assert.equal(breaker?.pending, 1, 'the second request waits for a connection');
    assert.equal(b.requests, 2, 'neither the waiting nor the overflowing request reached the backend yet');
    b.release();
    const [r1, r2] = await Promise.all([first, second]);
    console.log(`# maxConnections 1, http1MaxPendingRequests 1, backend maxConcurrentStreams 1: first ${r1.status} "${r1.body}", second ${r2.status} "${r2.body}" after waiting, third ${third.status} UO in ${Math.round(took)} ms; ${b.sessions} upstream connection(s); cx_overflow ${breaker?.connectionOverflow}, rq_pending_overflow ${breaker?.pendingOverflow}`);
    assert.deepEqual([r1.status, r1.body, r2.status, r2.body], [200, 'limited held', 200, 'limited ok']);
    assert.equal(b.sessions, 1, 'the sidecar opened one connection only');
    assert.equal(breaker?.pending, 0);
    assert.equal(breaker?.pendingOverflow, 1);
    assert.match(sidecar.metrics.render(), /destination_service_name="limited".*response_code="503".*response_flags="UO"/);
  });

  it('maxConnections 1 to an HTTP/1.1 service from an HTTP/2 client: the second request waits for the connection, a third overflows with 503 UO', async () => {
    const authority = `h1-limited:${PORTS.http}`;
    const { first, second, third, took } = await holdWaitOverflow(authority, '/first', once(h1.events, 'request'));
    const breaker = sidecar.config.current.clusters.get(cluster('h1-limited', 'http'))?.breaker;
    assert.equal(breaker?.pending, 1, 'the second request waits for a connection');
    assert.equal(h1.requests, 1, 'neither the waiting nor the overflowing request reached the backend');
    h1.release();
    const [r1, r2] = await Promise.all([first, second]);
    console.log(`# HTTP/2 client -> HTTP/1.1 service, maxConnections 1, http1MaxPendingRequests 1: first ${r1.status}, second ${r2.status} after waiting, third ${third.status} UO in ${Math.round(took)} ms; backend got ${h1.requests} requests; cx_overflow ${breaker?.connectionOverflow}, rq_pending_overflow ${breaker?.pendingOverflow}`);
    assert.deepEqual([r1.status, r2.status], [200, 200]);
    assert.equal(h1.requests, 2);
    assert.equal(breaker?.pending, 0);
    assert.equal(breaker?.pendingOverflow, 1);
  });

  it('closes an idle HTTP/2 upstream connection after http.idleTimeout, with TCP keepalive as configured on it', async (t) => {
    const b = h2.idle as H2Backend;
    const upstream = sidecar.config.upstream.h2('127.0.0.1', b.port);
    assert.equal((await h2request(session, `idle:${PORTS.http2}`)).status, 200);
    const c = [...upstream.connections][0];
    assert.ok(c !== undefined, 'the connection is open after the request');
    const keepalive = tcpKeepaliveOf(c.session.socket as unknown as Socket);
    const idleSince = performance.now();
    await within(once(b.events, 'session-close'), 5_000, 'upstream connection close');
    const idle = performance.now() - idleSince;
    console.log(`# idleTimeout ${IDLE_TIMEOUT_MS} ms: the HTTP/2 upstream connection closed ${Math.round(idle)} ms after its last stream; keepalive ${JSON.stringify(keepalive)}`);
    assert.ok(idle >= IDLE_TIMEOUT_MS - 20 && idle < 3_000, `${Math.round(idle)} ms`);
    assert.equal(upstream.connections.size, 0);
    if (keepalive === null) {
      t.skip('the native helper is not built: only SO_KEEPALIVE and the idle time can be set');
      return;
    }
    assert.deepEqual(keepalive, [1, 7, 3, 4], 'SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT');
  });

  it(`maxRequestsPerConnection ${MAX_REQUESTS_PER_CONNECTION}: a new upstream connection after every ${MAX_REQUESTS_PER_CONNECTION} streams`, async () => {
    const b = h2.capped as H2Backend;
    const total = 5;
    const replies: Reply[] = [];
    for (let i = 0; i < total; i++) replies.push(await h2request(session, `capped:${PORTS.http2}`));
    const expected = Math.ceil(total / MAX_REQUESTS_PER_CONNECTION);
    // A connection that carried its last stream closes once that stream ends.
    while (b.closedSessions < expected - 1) await within(once(b.events, 'session-close'), 5_000, 'connection close');
    console.log(`# maxRequestsPerConnection ${MAX_REQUESTS_PER_CONNECTION}: ${total} sequential requests over ${b.sessions} upstream connections, ${b.closedSessions} closed after their last stream`);
    assert.deepEqual(replies.map((r) => r.status), replies.map(() => 200));
    assert.equal(b.sessions, expected);
    assert.ok(b.closedSessions >= expected - 1, `${b.closedSessions} closed`);
  });

  it('mirrors a gRPC call that arrives over HTTP/2 to a second service, over HTTP/2, with a -shadow authority', async () => {
    const shadow = h2.grpcShadow as H2Backend;
    const seen = once(shadow.events, 'seen');
    client = echoClient(port, `grpc-mirrored:${PORTS.grpc}`);
    const r = await echo(client, 'mirror me');
    assert.equal(r.err, null, r.err?.message);
    assert.deepEqual(r.reply, { backend: 'grpc-mirrored', message: 'mirror me' }, 'the answer is the real service\'s');
    await within(seen, 5_000, 'mirrored copy');
    const copy = shadow.seen[0];
    console.log(`# gRPC mirror: the real service answered; the shadow service got ${shadow.seen.length} copy: ${copy?.authority} ${copy?.path} ${copy?.contentType}, ${copy?.body.length} body bytes`);
    assert.equal(copy?.authority, `grpc-mirrored-shadow:${PORTS.grpc}`);
    assert.equal(copy?.path, '/trellis.test.Echo/Call');
    assert.match(copy?.contentType ?? '', /^application\/grpc/);
    assert.ok(copy?.body.includes('mirror me'), 'the request message was copied');
  });

  it('mirrors h2c requests with and without a body; the copy never delays the answer', async () => {
    const shadow = h2.shadow as H2Backend;
    const get = await h2request(session, `mirrored:${PORTS.http2}`, '/get');
    const post = await h2request(session, `mirrored:${PORTS.http2}`, '/post', 'POST', 'payload');
    assert.deepEqual([get.status, get.body, post.status, post.body], [200, 'mirrored ok', 200, 'mirrored ok']);
    while (shadow.seen.length < 2) await within(once(shadow.events, 'seen'), 5_000, 'mirrored copies');
    const copies = shadow.seen.map((s) => `${s.authority} ${s.path} "${s.body.toString()}"`).sort();
    console.log(`# h2c mirror: ${copies.join('; ')}`);
    assert.deepEqual(copies, [`mirrored-shadow:${PORTS.http2} /get ""`, `mirrored-shadow:${PORTS.http2} /post "payload"`]);
  });
});

/**
 * HTTP/2 (h2c) clients through a sidecar to an HTTP/1.1 cluster: the bridge on the
 * HTTP/1.1 engine's connection pool. Chunked responses become DATA and their trailers
 * HTTP/2 trailers, request bodies are streamed with back-pressure, failures are 503s
 * before the response and stream resets after, and upstream connections are kept alive
 * and shared with HTTP/1.1 clients. A control plane and a sidecar in this process, a
 * `node:http` backend; all on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { freePort, send } from '../e2e/http-backends.js';

const log = new Logger({ level: 'warn' });
const PLAIN = 'plain:8080';
const BROKEN = 'broken:8080';
const DEAD = 'dead:8080';
/** More than the buffers between an h2 client and a backend that does not read (flow-control windows, socket buffers). */
const BIG_BODY_BYTES = 64 * 1024 * 1024;
const PIECE_BYTES = 64 * 1024;
/** No progress for this long means the client is held back. */
const STALL_MS = 500;

/** What the backend saw of one request. */
interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

interface Backend {
  readonly port: number;
  /** TCP connections accepted so far. */
  connections: number;
  /** `/slow-upload`: bytes received, the request to resume, and its response (to answer early). */
  received: number;
  held: IncomingMessage | null;
  heldResponse: ServerResponse | null;
  readonly events: NodeJS.EventEmitter;
  close(): Promise<void>;
}

/**
 * `/chunked`: a chunked body with an `x-checksum` trailer; `/repeated`: two `ETag` and
 * two `x-multi` fields; `/cut`: a head promising 100,000
 * bytes, 10 of them, then the connection closes; `/hints`: 103 Early Hints, then 200;
 * `/slow-upload`: stops reading the request body until `held.resume()`, then answers
 * its size and SHA-256 (unless the test answered through `heldResponse` first); anything
 * else echoes the request as JSON.
 */
async function startBackend(): Promise<Backend> {
  const server: Server = createServer();
  const b: Backend = { port: 0, connections: 0, received: 0, held: null, heldResponse: null, events: server, close: () => Promise.resolve() };
  server.on('connection', () => b.connections++);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/slow-upload') {
      const hash = createHash('sha256');
      req.pause();
      b.held = req;
      b.heldResponse = res;
      server.emit('held');
      req.on('data', (c: Buffer) => {
        b.received += c.length;
        hash.update(c);
      });
      req.on('end', () => res.end(JSON.stringify({ bytes: b.received, sha256: hash.digest('hex') })));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
        res.write('part one, ');
        res.addTrailers({ 'x-checksum': 'abc123' });
        res.end('part two');
      } else if (req.url === '/cut') {
        res.writeHead(200, { 'content-length': '100000' });
        res.write('0123456789', () => req.socket.destroy());
      } else if (req.url === '/repeated') {
        res.setHeader('etag', ['"first"', '"second"']);
        res.setHeader('x-multi', ['1', '2']);
        res.end('repeated');
      } else if (req.url === '/hints') {
        res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
        res.end('hinted');
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'x-backend': 'plain' });
        res.end(JSON.stringify({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() } satisfies Seen));
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (b as { port: number }).port = (server.address() as { port: number }).port;
  b.close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  return b;
}

/** Answers every request with bytes that are not HTTP. */
async function startBrokenBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.once('data', () => s.end('SSH-2.0-OpenSSH_9.6\r\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

function mesh(plainPort: number, brokenPort: number, deadPort: number): string {
  const service = (name: string, port: number) => `---
apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec: {selector: {app: ${name}}, ports: [{name: http, port: 8080}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}}
spec: {address: 127.0.0.1, ports: {http: ${port}}, labels: {app: ${name}}}
`;
  return service('plain', plainPort) + service('broken', brokenPort) + service('dead', deadPort);
}

interface H2Reply {
  readonly headers: IncomingHttpHeaders;
  readonly informational: IncomingHttpHeaders[];
  readonly body: string;
  readonly trailers: IncomingHttpHeaders | undefined;
}

/** One request; rejects with the stream's reset code when the stream is reset. */
function h2request(session: ClientHttp2Session, headers: Record<string, string | string[]>, body?: string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    let response: IncomingHttpHeaders = {};
    const informational: IncomingHttpHeaders[] = [];
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    req.on('headers', (h) => informational.push(h));
    req.on('response', (h) => (response = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => (req.rstCode ?? 0) === 0 && resolve({ headers: response, informational, body: Buffer.concat(chunks).toString(), trailers }));
    req.on('close', () => reject(Object.assign(new Error(`stream reset (${req.rstCode})`), { rstCode: req.rstCode })));
    req.on('error', () => undefined);
    req.setTimeout(10_000, () => req.close());
    if (body !== undefined) req.end(body);
  });
}

function json(r: H2Reply): Seen {
  return JSON.parse(r.body) as Seen;
}

describe('HTTP/2 clients to an HTTP/1.1 cluster', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-h2-to-h1-'));
  let backend: Backend;
  let broken: { port: number; close(): Promise<void> };
  let cp: ControlPlane;
  let sidecar: Proxy;
  let port = 0;
  let session: ClientHttp2Session;

  before(async () => {
    backend = await startBackend();
    broken = await startBrokenBackend();
    writeFileSync(join(dir, 'mesh.yaml'), mesh(backend.port, broken.port, await freePort()));
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
    sidecar = new Proxy({
      xds: `127.0.0.1:${cp.xdsPort}`, namespace: 'default', bind: '127.0.0.1', inboundPort: 0, adminPort: 0, statsPort: 0, log,
      type: 'sidecar', id: 'h2-to-h1', serviceAccount: 'client', labels: { app: 'client', version: 'v1' }, outboundPort: 0,
    });
    await sidecar.start();
    await sidecar.waitFor((s) => s.routes.has('8080') && (s.clusters.get('outbound|8080||plain.default.svc.cluster.local')?.endpoints.length ?? 0) > 0
      && (s.clusters.get('outbound|8080||broken.default.svc.cluster.local')?.endpoints.length ?? 0) > 0);
    port = sidecar.listenerPort('virtualOutbound') as number;
    session = h2connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
  });

  after(async () => {
    session?.destroy();
    await sidecar?.close();
    await cp?.close();
    await Promise.all([backend?.close(), broken?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends Host from :authority, joins cookies, and passes the response through', async () => {
    const r = await h2request(session, { ':method': 'GET', ':path': '/items?id=7', ':authority': PLAIN, cookie: ['a=1', 'b=2'], 'x-test': 'h2' });
    assert.equal(r.headers[':status'], 200);
    assert.equal(r.headers['x-backend'], 'plain');
    assert.equal(r.headers.connection, undefined, 'no connection-specific fields in HTTP/2');
    assert.ok(r.headers['x-envoy-upstream-service-time'] !== undefined);
    const seen = json(r);
    assert.equal(seen.url, '/items?id=7');
    assert.equal(seen.headers.host, PLAIN);
    assert.equal(seen.headers.cookie, 'a=1; b=2', 'RFC 9113 §8.2.3: one cookie field for HTTP/1.1');
    assert.equal(seen.headers['x-test'], 'h2');
    assert.ok(seen.headers['x-request-id']);
  });

  it('decodes a chunked response into DATA and its trailer fields into HTTP/2 trailers', async () => {
    const r = await h2request(session, { ':method': 'GET', ':path': '/chunked', ':authority': PLAIN });
    assert.equal(r.body, 'part one, part two');
    assert.equal(r.headers['transfer-encoding'], undefined);
    assert.equal(r.headers.trailer, undefined, 'hop-by-hop');
    assert.deepEqual(r.trailers?.['x-checksum'], 'abc123');
  });

  it('sends a request body of unknown length chunked, and one with Content-Length as it is', async () => {
    const chunked = json(await h2request(session, { ':method': 'POST', ':path': '/post', ':authority': PLAIN }, 'hello over h2'));
    assert.equal(chunked.body, 'hello over h2');
    assert.equal(chunked.headers['transfer-encoding'], 'chunked');
    const sized = json(await h2request(session, { ':method': 'PUT', ':path': '/put', ':authority': PLAIN, 'content-length': '5' }, 'sized'));
    assert.equal(sized.body, 'sized');
    assert.equal(sized.headers['content-length'], '5');
    assert.equal(sized.headers['transfer-encoding'], undefined);
  });

  it('passes a field repeated by the upstream on as HTTP/2 allows: once for single-value fields, all values for others', async () => {
    const r = await h2request(session, { ':method': 'GET', ':path': '/repeated', ':authority': PLAIN });
    assert.equal(r.headers[':status'], 200);
    assert.equal(r.headers.etag, '"first"');
    assert.equal(r.headers['x-multi'], '1, 2');
    assert.equal(r.body, 'repeated');
  });

  it('passes 103 Early Hints on as informational headers', async () => {
    const r = await h2request(session, { ':method': 'GET', ':path': '/hints', ':authority': PLAIN });
    assert.equal(r.informational[0]?.[':status'], 103);
    assert.equal(r.informational[0]?.link, '</style.css>; rel=preload; as=style');
    assert.equal(r.headers[':status'], 200);
    assert.equal(r.body, 'hinted');
  });

  it('keeps upstream connections alive, and shares them with HTTP/1.1 clients', async () => {
    await h2request(session, { ':method': 'GET', ':path': '/warm', ':authority': PLAIN });
    const before = backend.connections;
    for (let i = 0; i < 20; i++) assert.equal((await h2request(session, { ':method': 'GET', ':path': `/seq/${i}`, ':authority': PLAIN })).headers[':status'], 200);
    const h1 = await send(port, `http://${PLAIN}/from-h1`, { host: PLAIN }, 'GET', undefined, false);
    assert.equal(h1.status, 200);
    for (let i = 0; i < 5; i++) await h2request(session, { ':method': 'POST', ':path': `/post/${i}`, ':authority': PLAIN }, 'body');
    assert.equal(backend.connections, before, 'sequential requests from both engines reuse one pooled connection');
    await Promise.all(Array.from({ length: 8 }, (_, i) => h2request(session, { ':method': 'GET', ':path': `/par/${i}`, ':authority': PLAIN })));
    const afterBurst = backend.connections;
    assert.ok(afterBurst - before <= 8, `${afterBurst - before} new connections for 8 concurrent requests`);
    await Promise.all(Array.from({ length: 8 }, (_, i) => h2request(session, { ':method': 'GET', ':path': `/again/${i}`, ':authority': PLAIN })));
    assert.equal(backend.connections, afterBurst, 'the burst\'s connections are reused');
  });

  /**
   * POSTs BIG_BODY_BYTES to `/slow-upload` in pieces, each after the previous one has gone
   * out; when none goes out for STALL_MS (the backend does not read), calls `onStall` once.
   * Returns whether the client stalled, the body's SHA-256 and the response.
   */
  async function upload(onStall: (sent: number) => void): Promise<{ stalled: boolean; sha256: string; status: number; body: string; rstCode: number }> {
    backend.received = 0;
    const held = once(backend.events, 'held');
    const req = session.request({ ':method': 'POST', ':path': '/slow-upload', ':authority': PLAIN });
    req.on('error', () => undefined);
    let status = 0;
    req.on('response', (h) => (status = Number(h[':status'])));
    const response = new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('close', () => resolve(Buffer.concat(chunks).toString()));
    });
    const hash = createHash('sha256');
    let sent = 0;
    let stalled = false;
    for (let i = 0; sent < BIG_BODY_BYTES; i++) {
      const piece = Buffer.alloc(PIECE_BYTES, i % 251);
      hash.update(piece);
      const written = new Promise<void>((resolve) => req.write(piece, () => resolve()));
      if (i === 0) await held;
      if (!stalled) {
        const timer = new Promise<'stall'>((resolve) => setTimeout(resolve, STALL_MS, 'stall').unref());
        if ((await Promise.race([written, timer])) === 'stall') {
          stalled = true;
          onStall(sent);
        }
      }
      await written;
      sent += PIECE_BYTES;
    }
    req.end();
    const body = await response;
    return { stalled, sha256: hash.digest('hex'), status, body, rstCode: req.rstCode ?? 0 };
  }

  it('holds the client back while the upstream does not read the request body, and then delivers all of it', { timeout: 20_000 }, async () => {
    const r = await upload((sent) => {
      // Between the client and the backend there are windows and socket buffers, not the body.
      assert.ok(sent < BIG_BODY_BYTES / 2, `${sent} bytes went out before the client was held back`);
      (backend.held as IncomingMessage).resume();
    });
    assert.ok(r.stalled, 'the client was held back while the backend did not read');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { bytes: BIG_BODY_BYTES, sha256: r.sha256 });
  });

  it('lets the client finish its request body when the upstream answered before reading it', { timeout: 20_000 }, async () => {
    const r = await upload(() => {
      (backend.heldResponse as ServerResponse).writeHead(413, { 'content-type': 'text/plain' }).end('too large');
    });
    assert.ok(r.stalled, 'the client was held back before the answer');
    assert.equal(r.status, 413);
    assert.equal(r.body, 'too large');
    assert.equal(r.rstCode, 0, 'the stream ends without a reset');
  });

  it('resets the stream when the upstream connection is lost mid-body, and records UC', async () => {
    await assert.rejects(h2request(session, { ':method': 'GET', ':path': '/cut', ':authority': PLAIN }), /stream reset/, 'a truncated response is not passed off as complete');
    const ok = await h2request(session, { ':method': 'GET', ':path': '/after-cut', ':authority': PLAIN });
    assert.equal(ok.headers[':status'], 200, 'the next request gets a working connection');
    assert.match(sidecar.metrics.render(), /istio_requests_total\{[^}]*destination_service="plain\.default\.svc\.cluster\.local"[^}]*response_code="200"[^}]*response_flags="UC"[^}]*\} 1/);
  });

  it('answers 503 UF when the upstream refuses the connection, and 502 UPE for a response that is not HTTP', async () => {
    const refused = await h2request(session, { ':method': 'GET', ':path': '/', ':authority': DEAD });
    assert.equal(refused.headers[':status'], 503);
    assert.match(refused.body, /reset reason: connection failure/);
    const garbage = await h2request(session, { ':method': 'POST', ':path': '/', ':authority': BROKEN }, 'x');
    assert.equal(garbage.headers[':status'], 502);
    const text = sidecar.metrics.render();
    // Istio's default retry policy tried the connection twice: the flags end in URX.
    assert.match(text, /istio_requests_total\{[^}]*destination_service="dead\.default\.svc\.cluster\.local"[^}]*response_code="503"[^}]*response_flags="UF,URX"[^}]*\} 1/);
    assert.match(text, /istio_requests_total\{[^}]*destination_service="broken\.default\.svc\.cluster\.local"[^}]*response_code="502"[^}]*response_flags="UPE"[^}]*\} 1/);
  });
});

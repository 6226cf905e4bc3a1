/**
 * HTTP/1.1 requests to an HTTP/2 upstream (the bridge the HTTP/1.1 engine drives): chunked
 * request bodies decoded, responses written back as HTTP/1.1 with trailers only for
 * clients that asked for them, failures reported with Envoy's flags.
 */
import assert from 'node:assert/strict';
import { createServer, type Http2Server } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { UpstreamState } from '../../src/proxy/config/clusters.js';
import { ChunkedDecoder } from '../../src/proxy/http/h2/h2-chunked.js';
import { forwardH1ToH2, type H1Downstream, type H1Request } from '../../src/proxy/http/h2/h2-from-h1.js';
import { parseResponseHead } from '../../src/proxy/http/h1-parser.js';
import type { ForwardDecision } from '../../src/proxy/http/router.js';
import type { ListenContext } from '../../src/proxy/http/context.js';
import { CircuitBreaker } from '../../src/proxy/resilience/circuit-breaker.js';
import { RetryBudget } from '../../src/proxy/resilience/retry-budget.js';
import type { PeerWorkload } from '../../src/proxy/telemetry/peer.js';
import type { EndpointState } from '../../src/proxy/upstream/lb/types.js';
import { freePort } from '../e2e/http-backends.js';

describe('ChunkedDecoder', () => {
  const body = '4;ext=1\r\nWiki\r\n6\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nx-trailer: yes\r\n\r\n';

  it('finds the data of a chunked body, extensions and trailers skipped', () => {
    const d = new ChunkedDecoder();
    assert.equal(Buffer.concat(d.decode(Buffer.from(body))).toString(), 'Wikipedia in \r\n\r\nchunks.');
    assert.ok(d.done);
  });

  it('gives the same data however the bytes are split', () => {
    for (let cut = 1; cut < body.length; cut++) {
      const d = new ChunkedDecoder();
      const parts = [...d.decode(Buffer.from(body.slice(0, cut))), ...d.decode(Buffer.from(body.slice(cut)))];
      assert.equal(Buffer.concat(parts).toString(), 'Wikipedia in \r\n\r\nchunks.', `cut at ${cut}`);
      assert.ok(d.done);
    }
  });

  it('keeps the trailer fields, names lower-cased and values trimmed, however the bytes are split', () => {
    const trailed = '3\r\nabc\r\n0\r\nX-Checksum: abc123 \r\ngrpc-status:\t0\r\n\r\n';
    for (let cut = 1; cut < trailed.length; cut++) {
      const d = new ChunkedDecoder();
      d.decode(Buffer.from(trailed.slice(0, cut)));
      d.decode(Buffer.from(trailed.slice(cut)));
      assert.ok(d.done, `cut at ${cut}`);
      assert.deepEqual(d.trailers(), ['x-checksum', 'abc123', 'grpc-status', '0'], `cut at ${cut}`);
    }
    const plain = new ChunkedDecoder();
    plain.decode(Buffer.from('3\r\nabc\r\n0\r\n\r\n'));
    assert.deepEqual(plain.trailers(), []);
  });
});

/** Collects what the bridge gives the HTTP/1.1 engine. */
class FakeDownstream implements H1Downstream {
  readonly chunks: Buffer[] = [];
  endpointState: EndpointState | null = null;
  peer: PeerWorkload | null = null;
  readonly down = { ctx: { mode: 'outbound' } as ListenContext };
  outcome: { kind: 'complete' | 'fail' | 'reset'; status?: number; flag: string } | undefined;
  readonly #done: Promise<void>;
  #resolve: () => void = () => undefined;

  constructor() {
    this.#done = new Promise((resolve) => (this.#resolve = resolve));
  }

  writeResponse(bytes: Buffer): boolean {
    this.chunks.push(bytes);
    return true;
  }
  resumeRequest(): void {}
  completeResponse(status: number, flags: string): void {
    this.outcome = { kind: 'complete', status, flag: flags };
    this.#resolve();
  }
  failResponse(flag: string): void {
    this.outcome = { kind: 'fail', flag };
    this.#resolve();
  }
  resetResponse(flag: string): void {
    this.outcome = { kind: 'reset', flag };
    this.#resolve();
  }

  async response(): Promise<{ status: number; headers: string[]; body: string }> {
    await this.#done;
    const buf = Buffer.concat(this.chunks);
    const r = parseResponseHead(buf, 0, 'GET');
    assert.equal(r.kind, 'head');
    if (r.kind !== 'head') throw new Error('unreachable');
    return { status: r.head.status, headers: r.head.headers, body: buf.subarray(r.head.headBytes).toString('latin1') };
  }
}

describe('forwardH1ToH2', { timeout: 15_000 }, () => {
  let server: Http2Server;
  let port = 0;
  const upstream = new UpstreamState();

  before(async () => {
    server = createServer();
    server.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      if (headers[':path'] === '/stall') return; // never answered
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const path = headers[':path'];
        const got = `${headers[':method']} ${path} ${headers[':authority']} te=${headers.te ?? ''} body=${Buffer.concat(chunks).toString()}`;
        if (path === '/grpc') {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'all%20good' }));
          stream.end(got);
        } else if (path === '/trailers-only') {
          stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'not found' }, { endStream: true });
        } else if (path === '/reset' || path === '/drop') {
          stream.respond({ ':status': 200 });
          stream.write('partial');
          stream.on('error', () => undefined);
          setImmediate(() => (path === '/reset' ? stream.destroy(new Error('reset by the test')) : stream.session?.destroy()));
        } else {
          stream.respond({ ':status': 201, 'content-length': String(Buffer.byteLength(got)), 'x-up': 'yes' });
          stream.end(got);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  });

  after(async () => {
    upstream.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** A decision without retries or timeouts, to a cluster with Envoy's default breaker. */
  const decision = (path: string, p = port, timeoutMs = 0): ForwardDecision =>
    ({
      address: '127.0.0.1', port: p, path, authority: 'svc:50051', delayMs: 0, endpoint: undefined,
      action: { retry: null, timeoutMs, grpcTimeoutMaxMs: null },
      cluster: { maxConcurrentStreams: 100, connectTimeoutMs: 2_000, breaker: new CircuitBreaker('svc'), retryBudget: new RetryBudget(), outlier: null },
    }) as unknown as ForwardDecision;

  const request = (over: Partial<H1Request>): H1Request => ({
    method: 'POST',
    headers: ['host', 'svc:50051', 'content-type', 'text/plain'],
    chunked: false,
    contentLength: -1,
    trailers: false,
    keepAlive: true,
    start: performance.now(),
    responseHeaders: null,
    targetHeaders: null,
    ...over,
  });

  it('sends a chunked request body decoded and answers with the upstream\'s length-delimited response', async () => {
    const down = new FakeDownstream();
    const b = forwardH1ToH2(down, upstream, decision('/echo?q=1'), request({ chunked: true, headers: ['host', 'svc:50051', 'transfer-encoding', 'chunked', 'x-a', '1'] }));
    b.write(Buffer.from('5\r\nhello\r\n'));
    b.write(Buffer.from('6;x=y\r\n world\r\n0\r\n\r\n'));
    b.end();
    const r = await down.response();
    assert.equal(r.status, 201);
    assert.equal(r.body, 'POST /echo?q=1 svc:50051 te= body=hello world');
    assert.ok(r.headers.includes('x-up'));
    assert.ok(r.headers.includes('x-envoy-upstream-service-time'));
    assert.deepEqual(down.outcome, { kind: 'complete', status: 201, flag: '-' });
  });

  it('writes gRPC trailers in the chunked trailer section for a client that sent TE: trailers', async () => {
    const down = new FakeDownstream();
    const b = forwardH1ToH2(down, upstream, decision('/grpc'), request({ headers: ['host', 'svc:50051', 'content-type', 'application/grpc', 'content-length', '3'], contentLength: 3, trailers: true }));
    b.write(Buffer.from('abc'));
    b.end();
    const r = await down.response();
    assert.equal(r.status, 200);
    assert.ok(r.headers.includes('transfer-encoding'));
    assert.match(r.body, /^[0-9a-f]+\r\nPOST \/grpc svc:50051 te=trailers body=abc\r\n0\r\ngrpc-status: 0\r\ngrpc-message: all%20good\r\n\r\n$/);
  });

  it('drops the trailers for a client that did not ask for them', async () => {
    const down = new FakeDownstream();
    forwardH1ToH2(down, upstream, decision('/grpc'), request({ method: 'GET', headers: ['host', 'svc:50051'] }));
    const r = await down.response();
    assert.match(r.body, /\r\n0\r\n\r\n$/);
    assert.doesNotMatch(r.body, /grpc-status/);
  });

  it('keeps a trailers-only response\'s status in the head, with an empty body', async () => {
    const down = new FakeDownstream();
    forwardH1ToH2(down, upstream, decision('/trailers-only'), request({ method: 'GET', headers: ['host', 'svc:50051'], keepAlive: false }));
    const r = await down.response();
    const h = (name: string) => r.headers[r.headers.indexOf(name) + 1];
    assert.equal(h('grpc-status'), '5');
    assert.equal(h('content-length'), '0');
    assert.equal(h('connection'), 'close');
    assert.equal(r.body, '');
  });

  it('reports a refused connection before the response (UF), a reset (UR) or lost connection (UC) after it started', async () => {
    const refused = new FakeDownstream();
    forwardH1ToH2(refused, upstream, decision('/x', await freePort()), request({ method: 'GET' }));
    await refused.response().catch(() => undefined);
    assert.deepEqual(refused.outcome, { kind: 'fail', flag: 'UF' });
    const reset = new FakeDownstream();
    forwardH1ToH2(reset, upstream, decision('/reset'), request({ method: 'GET' }));
    await reset.response();
    assert.deepEqual(reset.outcome, { kind: 'reset', flag: 'UR' });
    const dropped = new FakeDownstream();
    forwardH1ToH2(dropped, upstream, decision('/drop'), request({ method: 'GET' }));
    await dropped.response();
    assert.deepEqual(dropped.outcome, { kind: 'reset', flag: 'UC' });
  });

  it('answers 504 UT itself when the route timeout passes before the response (gRPC: UNAVAILABLE in the head)', async () => {
    const plain = new FakeDownstream();
    const started = performance.now();
    forwardH1ToH2(plain, upstream, decision('/stall', port, 200), request({ method: 'GET' }));
    const r = await plain.response();
    assert.ok(performance.now() - started >= 190);
    assert.equal(r.status, 504);
    assert.equal(r.body, 'upstream request timeout');
    assert.deepEqual(plain.outcome, { kind: 'complete', status: 504, flag: 'UT' });
    const grpcCall = new FakeDownstream();
    forwardH1ToH2(grpcCall, upstream, decision('/stall', port, 200), request({ headers: ['host', 'svc:50051', 'content-type', 'application/grpc', 'content-length', '0'], contentLength: 0 }));
    const g = await grpcCall.response();
    const h = (name: string) => g.headers[g.headers.indexOf(name) + 1];
    assert.equal(g.status, 200);
    assert.equal(h('grpc-status'), '14');
    assert.equal(h('grpc-message'), 'upstream request timeout');
    assert.deepEqual(grpcCall.outcome, { kind: 'complete', status: 200, flag: 'UT' });
  });

  it('overflows max_requests with 503 UO at once', async () => {
    const d = decision('/stall', port, 500);
    (d.cluster.breaker as CircuitBreaker).configure({ ...(d.cluster.breaker as CircuitBreaker).thresholds, maxRequests: 0 });
    const down = new FakeDownstream();
    forwardH1ToH2(down, upstream, d, request({ method: 'GET' }));
    const r = await down.response();
    assert.equal(r.status, 503);
    assert.match(r.body, /reset reason: overflow/);
    assert.deepEqual(down.outcome, { kind: 'complete', status: 503, flag: 'UO' });
  });
});

/**
 * Resilience over HTTP/2 end to end: control plane, a sidecar, and faulty backends on
 * 127.0.0.1 — gRPC instances that answer UNAVAILABLE or stall, h2c instances that fail,
 * stall or send GOAWAY, HTTP/1.1 instances that answer 503 — reached by gRPC clients,
 * h2c clients and HTTP/1.1 clients. Retries (Istio's default policy and configured ones),
 * per-try and route timeouts, the http2MaxRequests breaker, outlier detection from gRPC
 * statuses, and upstream connections replaced after GOAWAY; figures in the test output.
 */
import assert from 'node:assert/strict';
import { servicesYaml } from './mesh.js';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { type Behaviour, type FaultyBackend, startFaulty } from './faulty-backends.js';
import { echo, type EchoClient, echoClient, GOAWAY_AFTER, type GrpcBackend, type GrpcBehaviour, type H2Backend, type H2Behaviour, startFaultyGrpc, startFaultyH2 } from './faulty-h2-backends.js';
import { keepAliveAgent, send } from './http-backends.js';

const log = new Logger({ level: 'warn' });

/** Port name → service port: the name sets the cluster's protocol (gRPC and http2: HTTP/2 upstream). */
const PORTS = { grpc: 50051, http2: 8081, http: 8080 } as const;
type PortName = keyof typeof PORTS;

interface Svc {
  readonly name: string;
  readonly port: PortName;
  readonly ports: readonly number[];
  readonly vs?: string;
  /** A DestinationRule trafficPolicy (flow YAML). */
  readonly policy?: string;
}

function config(services: readonly Svc[]): string {
  return servicesYaml(services.map((s) => ({ ...s, portName: s.port, port: PORTS[s.port], endpoints: s.ports })));
}

interface H2Reply {
  readonly status: number;
  readonly body: string;
}

/** One h2c request; resolves with the status and body (rejects on a reset stream). */
function h2get(session: ClientHttp2Session, authority: string, path = '/'): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request({ ':method': 'GET', ':path': path, ':authority': authority }, { endStream: true });
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => (headers = h));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status: Number(headers[':status']), body: Buffer.concat(chunks).toString() }));
    req.on('error', reject);
    req.setTimeout(10_000, () => req.close());
  });
}

/** `total` tasks, `concurrency` at a time. */
async function pool<T>(total: number, concurrency: number, task: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      next++;
      out.push(await task());
    }
  }));
  return out;
}

describe('resilience over HTTP/2 through the sidecar', { timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-resilience-h2-'));
  const grpcs: Record<string, GrpcBackend[]> = {};
  const h2s: Record<string, H2Backend[]> = {};
  const h1s: Record<string, FaultyBackend[]> = {};
  const clients: EchoClient[] = [];
  let cp: ControlPlane;
  let sidecar: Proxy;
  let port = 0;
  let session: ClientHttp2Session;

  const grpcSvc = async (name: string, behaviours: readonly GrpcBehaviour[]): Promise<number[]> => {
    grpcs[name] = await Promise.all(behaviours.map((b, i) => startFaultyGrpc(`${name}-${i}`, b)));
    return grpcs[name].map((b) => b.port);
  };
  const h2Svc = async (name: string, behaviours: readonly H2Behaviour[]): Promise<number[]> => {
    h2s[name] = await Promise.all(behaviours.map((b, i) => startFaultyH2(`${name}-${i}`, b)));
    return h2s[name].map((b) => b.port);
  };
  const h1Svc = async (name: string, behaviours: readonly Behaviour[]): Promise<number[]> => {
    h1s[name] = await Promise.all(behaviours.map((b, i) => startFaulty(`${name}-${i}`, b)));
    return h1s[name].map((b) => b.port);
  };
  const grpcClient = (name: string): EchoClient => {
    const c = echoClient(port, `${name}:${PORTS.grpc}`);
    clients.push(c);
    return c;
  };

  before(async () => {
    const services: Svc[] = [
      // No VirtualService: Istio's default policy retries `unavailable` (on other hosts).
      { name: 'grpc-flaky', port: 'grpc', ports: await grpcSvc('grpc-flaky', ['ok', 'ok', 'unavailable']) },
      { name: 'grpc-ejected', port: 'grpc', ports: await grpcSvc('grpc-ejected', ['ok', 'ok', 'unavailable']), policy: '{outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50}}' },
      { name: 'grpc-slow', port: 'grpc', ports: await grpcSvc('grpc-slow', ['stall']), vs: 'timeout: 1s\nretries: {attempts: 0}', policy: '{connectionPool: {http: {http2MaxRequests: 1}}}' },
      { name: 'h2-stalling', port: 'http2', ports: await h2Svc('h2-stalling', ['stall', 'ok']), vs: 'retries: {attempts: 2, perTryTimeout: 300ms, retryOn: 5xx}' },
      { name: 'h2-slow', port: 'http2', ports: await h2Svc('h2-slow', ['stall']), vs: 'timeout: 0.5s\nretries: {attempts: 0}' },
      { name: 'h2-guarded', port: 'http2', ports: await h2Svc('h2-guarded', ['stall']), vs: 'timeout: 1s\nretries: {attempts: 0}', policy: '{connectionPool: {http: {http2MaxRequests: 1}}}' },
      { name: 'h2-flaky', port: 'http2', ports: await h2Svc('h2-flaky', ['ok', 'ok', 'fail']), vs: 'retries: {attempts: 3, retryOn: 5xx}' },
      { name: 'h2-goaway', port: 'http2', ports: await h2Svc('h2-goaway', ['goaway']) },
      { name: 'h2-goaway-error', port: 'http2', ports: await h2Svc('h2-goaway-error', ['goaway-error']) },
      { name: 'web-flaky', port: 'http', ports: await h1Svc('web-flaky', ['ok', 'ok', 'fail']), vs: 'retries: {attempts: 3, retryOn: 5xx}' },
    ];
    writeFileSync(join(dir, 'mesh.yaml'), config(services));
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
    sidecar = new Proxy({ xds: `127.0.0.1:${cp.xdsPort}`, type: 'sidecar', id: 'client', namespace: 'default', serviceAccount: 'client', labels: { app: 'client' }, bind: '127.0.0.1', outboundPort: 0, inboundPort: 0, adminPort: 0, statsPort: 0, log });
    await sidecar.start();
    await sidecar.waitFor((s) => services.every((x) => (s.clusters.get(`outbound|${PORTS[x.port]}||${x.name}.default.svc.cluster.local`)?.endpoints.length ?? 0) === x.ports.length) && s.routes.has(String(PORTS.grpc)) && s.routes.has(String(PORTS.http2)) && s.routes.has(String(PORTS.http)));
    port = sidecar.listenerPort('virtualOutbound') as number;
    session = h2connect(`http://127.0.0.1:${port}`);
    session.on('error', () => undefined);
  });

  after(async () => {
    for (const c of clients) c.close();
    session?.close();
    keepAliveAgent.destroy();
    await sidecar?.close();
    await cp?.close();
    await Promise.all([...Object.values(grpcs), ...Object.values(h2s), ...Object.values(h1s)].flat().map((b) => b.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves every gRPC call when one of three instances answers UNAVAILABLE (Istio\'s default retry policy)', async () => {
    // Least-request favours the instance that fails fastest (about half the first tries go
    // to it), and the retry budget allows 20 % of requests plus 10/s: 120 calls stay within it.
    const c = grpcClient('grpc-flaky');
    const results = await pool(120, 4, () => echo(c, 'hi'));
    const ok = results.filter((r) => r.err === null).length;
    const failing = (grpcs['grpc-flaky'] as GrpcBackend[])[2] as GrpcBackend;
    console.log(`# grpc-flaky: ${ok}/120 calls succeeded; the UNAVAILABLE instance answered ${failing.calls} tries, each retried on another instance`);
    assert.equal(ok, 120, results.find((r) => r.err !== null)?.err?.message);
    assert.ok(failing.calls > 0, 'the failing instance was tried');
    assert.ok(results.every((r) => r.reply?.backend !== failing.name));
  });

  it('ejects an instance answering gRPC UNAVAILABLE (outlier detection sees it as a 503)', async () => {
    const c = grpcClient('grpc-ejected');
    const results = await pool(100, 2, () => echo(c, 'hi'));
    const failing = (grpcs['grpc-ejected'] as GrpcBackend[])[2] as GrpcBackend;
    const clusters = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/clusters`)).text();
    const ejected = clusters.includes(`127.0.0.1:${failing.port}::health_flags::/failed_outlier_check`);
    console.log(`# grpc-ejected: ${results.filter((r) => r.err === null).length}/100 calls succeeded; the UNAVAILABLE instance got ${failing.calls} tries, then was ejected: ${ejected}`);
    assert.ok(results.every((r) => r.err === null));
    assert.ok(ejected, '/clusters shows the instance ejected');
    assert.ok(failing.calls >= 3 && failing.calls < 10, `${failing.calls} tries`);
  });

  it('retries an h2c request to a stalled instance after the per-try timeout', async () => {
    const started = performance.now();
    const replies = await pool(20, 4, () => h2get(session, `h2-stalling:${PORTS.http2}`));
    const stalled = ((h2s['h2-stalling'] as H2Backend[])[0] as H2Backend).requests;
    console.log(`# h2-stalling: ${replies.filter((r) => r.status === 200).length}/20 succeeded; ${stalled} tries stalled and were retried after 300 ms; ${Math.round(performance.now() - started)} ms in all`);
    assert.deepEqual(new Set(replies.map((r) => `${r.status} ${r.body}`)), new Set(['200 h2-stalling-1 ok']));
    assert.ok(stalled > 0, 'the stalled instance was tried');
  });

  it('answers 504 UT to an h2c client, and UNAVAILABLE "upstream request timeout" to a gRPC client, when the route timeout passes', async () => {
    let started = performance.now();
    const r = await h2get(session, `h2-slow:${PORTS.http2}`);
    const tookH2 = performance.now() - started;
    assert.equal(r.status, 504);
    assert.equal(r.body, 'upstream request timeout');
    assert.ok(tookH2 >= 450 && tookH2 < 5_000, `${tookH2} ms`);
    started = performance.now();
    // Envoy's local reply for a gRPC request: HTTP 200, trailers-only, 504 mapped to UNAVAILABLE
    // (its DEADLINE_EXCEEDED variant is behind a runtime flag that is off by default).
    const g = await echo(grpcClient('grpc-slow'), 'hi');
    const tookGrpc = performance.now() - started;
    console.log(`# timeouts: h2c ${r.status} "${r.body}" after ${Math.round(tookH2)} ms (0.5 s route timeout); gRPC ${grpc.status[g.err?.code ?? 0]} "${g.err?.details}" after ${Math.round(tookGrpc)} ms (1 s)`);
    assert.equal(g.err?.code, grpc.status.UNAVAILABLE);
    assert.equal(g.err?.details, 'upstream request timeout');
    assert.ok(tookGrpc >= 950 && tookGrpc < 5_000, `${tookGrpc} ms`);
    const metrics = sidecar.metrics.render();
    assert.match(metrics, /destination_service_name="h2-slow".*response_code="504".*response_flags="UT"/);
    assert.match(metrics, /destination_service_name="grpc-slow".*grpc_response_status="14".*response_flags="UT"/);
  });

  it('retries 503s of an HTTP/1.1 instance for an h2c client', async () => {
    const replies = await pool(60, 4, () => h2get(session, `web-flaky:${PORTS.http}`));
    const failing = (h1s['web-flaky'] as FaultyBackend[])[2] as FaultyBackend;
    console.log(`# web-flaky (h2c client, HTTP/1.1 upstream): ${replies.filter((r) => r.status === 200).length}/60 succeeded; the failing instance answered ${failing.requests} tries with 503`);
    assert.ok(replies.every((r) => r.status === 200));
    assert.ok(failing.requests > 0, 'the failing instance was tried');
  });

  it('retries 503s of an HTTP/2 instance for an HTTP/1.1 client', async () => {
    const replies = await pool(60, 4, () => send(port, `http://h2-flaky:${PORTS.http2}/`, { host: `h2-flaky:${PORTS.http2}` }));
    const failing = (h2s['h2-flaky'] as H2Backend[])[2] as H2Backend;
    console.log(`# h2-flaky (HTTP/1.1 client, h2c upstream): ${replies.filter((r) => r.status === 200).length}/60 succeeded; the failing instance answered ${failing.requests} tries with 503`);
    assert.ok(replies.every((r) => r.status === 200));
    assert.ok(failing.requests > 0, 'the failing instance was tried');
  });

  it('overflows http2MaxRequests: 1 with 503 UO at once (gRPC: UNAVAILABLE), while the first request holds the limit', async () => {
    const backend = (h2s['h2-guarded'] as H2Backend[])[0] as H2Backend;
    const arrived = once(backend.events, 'request');
    const first = h2get(session, `h2-guarded:${PORTS.http2}`);
    let firstDone = false;
    void first.then(() => (firstDone = true));
    await arrived; // it holds the one request allowed (the backend never answers)
    const started = performance.now();
    const second = await h2get(session, `h2-guarded:${PORTS.http2}`);
    const took = performance.now() - started;
    assert.equal(second.status, 503);
    assert.match(second.body, /reset reason: overflow/);
    assert.equal(firstDone, false, 'answered while the limit was held');
    assert.equal(backend.requests, 1, 'the overflow never reached the backend');
    assert.equal((await first).status, 504);
    const g = grpcs['grpc-slow'] as GrpcBackend[];
    const gArrived = once((g[0] as GrpcBackend).events, 'call');
    const c = grpcClient('grpc-slow');
    const gFirst = echo(c, 'first');
    await gArrived;
    const gSecond = await echo(c, 'second');
    console.log(`# overflow: h2c 503 "${second.body}" in ${Math.round(took)} ms; gRPC ${grpc.status[gSecond.err?.code ?? 0]} "${gSecond.err?.details}"`);
    assert.equal(gSecond.err?.code, grpc.status.UNAVAILABLE);
    assert.match(gSecond.err?.details ?? '', /overflow/);
    assert.equal((await gFirst).err?.details, 'upstream request timeout');
    assert.match(sidecar.metrics.render(), /destination_service_name="h2-guarded".*response_code="503".*response_flags="UO"/);
  });

  for (const name of ['h2-goaway', 'h2-goaway-error']) {
    it(`opens a new upstream connection after ${name === 'h2-goaway' ? 'GOAWAY' : 'a PROTOCOL_ERROR GOAWAY'}, and the old one is closed`, async () => {
      const backend = (h2s[name] as H2Backend[])[0] as H2Backend;
      const upstream = sidecar.config.upstream.h2('127.0.0.1', backend.port);
      const total = 10;
      const replies: H2Reply[] = [];
      for (let i = 1; i <= total; i++) {
        const c = [...upstream.connections].at(-1);
        replies.push(await h2get(session, `${name}:${PORTS.http2}`));
        // A PROTOCOL_ERROR GOAWAY comes after the last response: the next request waits until
        // the proxy has dropped that connection, so that it does not race the GOAWAY.
        if (name === 'h2-goaway-error' && i % GOAWAY_AFTER === 0 && c !== undefined && upstream.connections.has(c)) await new Promise((resolve) => c.session.once('close', resolve));
      }
      // Connections that got GOAWAY close once their stream is done (Node's server never closes them itself).
      const draining = [...upstream.connections].filter((c) => c.draining);
      await Promise.all(draining.map((c) => new Promise((resolve) => c.session.once('close', resolve))));
      const sessions = Math.ceil(total / GOAWAY_AFTER);
      console.log(`# ${name}: ${replies.filter((r) => r.status === 200).length}/${total} succeeded over ${backend.sessions} upstream connections (GOAWAY after every ${GOAWAY_AFTER} streams); ${upstream.connections.size} left open`);
      assert.deepEqual(replies.map((r) => r.status), replies.map(() => 200));
      assert.equal(backend.sessions, sessions, 'a new connection after each GOAWAY, and no more');
      assert.equal(upstream.connections.size, 1, 'every connection that got GOAWAY was closed; the current one stays');
      assert.equal([...upstream.connections][0]?.draining, false);
    });
  }
});

/**
 * Resilience end to end: control plane, a sidecar, and deliberately faulty backends on
 * 127.0.0.1 — instances that answer 503, refuse connections, stall or reset. Retries
 * (configured and Istio's default), the retry budget, per-try and route timeouts, and
 * fault injection, with the figures printed in the test output.
 */
import assert from 'node:assert/strict';
import { servicesYaml } from './mesh.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { type Behaviour, type FaultyBackend, refusedPort, startFaulty } from './faulty-backends.js';
import { keepAliveAgent, type Reply, send } from './http-backends.js';

const log = new Logger({ level: 'warn' });

interface Svc {
  readonly name: string;
  readonly backends: readonly FaultyBackend[];
  readonly extraPorts?: readonly number[];
  readonly vs?: string;
  /** A DestinationRule trafficPolicy (flow YAML). */
  readonly policy?: string;
}

function config(services: readonly Svc[]): string {
  return servicesYaml(services.map((s) => ({ ...s, portName: 'http', port: 8080, endpoints: [...s.backends.map((b) => b.port), ...(s.extraPorts ?? [])] })));
}

/** Sends `total` requests to `svc` with `concurrency` in flight; returns the replies. */
async function load(port: number, svc: string, total: number, concurrency: number, headers: Record<string, string> = {}): Promise<Reply[]> {
  const replies: Reply[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) {
      next++;
      replies.push(await send(port, `http://${svc}:8080/`, { host: `${svc}:8080`, ...headers }));
    }
  }));
  return replies;
}

const okCount = (replies: readonly Reply[]): number => replies.filter((r) => r.status === 200).length;
const served = (backends: readonly FaultyBackend[]): number => backends.reduce((n, b) => n + b.requests, 0);

describe('resilience through the sidecar', { timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-resilience-'));
  const all: FaultyBackend[] = [];
  const svc: Record<string, FaultyBackend[]> = {};
  let cp: ControlPlane;
  let sidecar: Proxy;
  let port = 0;

  async function backends(name: string, behaviours: readonly Behaviour[]): Promise<FaultyBackend[]> {
    const list = await Promise.all(behaviours.map((b, i) => startFaulty(`${name}-${i}`, b)));
    all.push(...list);
    svc[name] = list;
    return list;
  }

  before(async () => {
    const services: Svc[] = [
      // Retries cover the failing instance's answers until outlier detection ejects it.
      { name: 'flaky', backends: await backends('flaky', ['ok', 'ok', 'fail']), vs: 'retries: {attempts: 3, retryOn: 5xx}', policy: '{outlierDetection: {consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50}}' },
      // No VirtualService: Istio's default policy retries connect failures on other hosts.
      { name: 'refusing', backends: await backends('refusing', ['ok']), extraPorts: [await refusedPort()] },
      { name: 'down', backends: await backends('down', ['fail', 'fail', 'fail']), vs: 'retries: {attempts: 5, retryOn: 5xx}' },
      { name: 'stalling', backends: await backends('stalling', ['stall', 'ok']), vs: 'retries: {attempts: 2, perTryTimeout: 300ms, retryOn: 5xx}' },
      { name: 'slow', backends: await backends('slow', ['stall']), vs: 'timeout: 0.5s\nretries: {attempts: 0}' },
      { name: 'delayed', backends: await backends('delayed', ['ok']), vs: 'fault: {delay: {fixedDelay: 0.4s, percentage: {value: 100}}}' },
      { name: 'aborted', backends: await backends('aborted', ['ok']), vs: 'fault: {abort: {httpStatus: 418, percentage: {value: 50}}}' },
      { name: 'guarded', backends: await backends('guarded', ['stall']), vs: 'timeout: 1s\nretries: {attempts: 0}', policy: '{connectionPool: {http: {http2MaxRequests: 1}}}' },
      // Istio's circuit-breaking task: one connection, one pending request, one request per connection.
      { name: 'pooled', backends: await backends('pooled', ['hold']), policy: '{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}}}' },
      { name: 'shadow', backends: await backends('shadow', ['ok']) },
      { name: 'mirrored', backends: await backends('mirrored', ['ok']), vs: 'mirror: {host: shadow}\nmirrorPercentage: {value: 100}' },
      { name: 'cors', backends: await backends('cors', ['ok']), vs: 'corsPolicy: {allowOrigins: [{exact: "https://shop.example"}], allowMethods: [GET, POST], allowHeaders: [x-user], exposeHeaders: [x-backend], maxAge: 24h, allowCredentials: true}' },
    ];
    writeFileSync(join(dir, 'mesh.yaml'), config(services));
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
    sidecar = new Proxy({ xds: `127.0.0.1:${cp.xdsPort}`, type: 'sidecar', id: 'client', namespace: 'default', serviceAccount: 'client', labels: { app: 'client' }, bind: '127.0.0.1', outboundPort: 0, inboundPort: 0, adminPort: 0, statsPort: 0, log });
    await sidecar.start();
    await sidecar.waitFor((s) => services.every((x) => (s.clusters.get(`outbound|8080||${x.name}.default.svc.cluster.local`)?.endpoints.length ?? 0) === x.backends.length + (x.extraPorts?.length ?? 0)) && s.routes.has('8080'));
    port = sidecar.listenerPort('virtualOutbound') as number;
  });

  after(async () => {
    keepAliveAgent.destroy();
    await sidecar?.close();
    await cp?.close();
    await Promise.all(all.map((b) => b.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves >= 99.9% of 2,000 requests when one of three instances always fails (retries on other hosts)', async () => {
    const replies = await load(port, 'flaky', 2_000, 16);
    const ok = okCount(replies);
    const failing = (svc.flaky as FaultyBackend[])[2] as FaultyBackend;
    const clusters = await (await fetch(`http://127.0.0.1:${sidecar.adminPort}/clusters`)).text();
    const ejected = clusters.includes(`127.0.0.1:${failing.port}::health_flags::/failed_outlier_check`);
    console.log(`# flaky: ${ok}/2000 succeeded (${((ok / 2000) * 100).toFixed(2)}%); the failing instance answered ${failing.requests} tries with 503 (each retried on another host), then was ejected: ${ejected}`);
    assert.ok(ok / 2_000 >= 0.999, `${ok}/2000`);
    assert.ok(failing.requests >= 3, 'the failing instance was tried');
    assert.ok(ejected, 'outlier detection ejected the failing instance (/clusters)');
  });

  it('retries connection failures by default (Istio\'s policy, no VirtualService)', async () => {
    // Sequential, and few enough that the retry budget's reserve (10/s) covers one retry
    // each: least-request keeps choosing the endpoint whose connections fail fastest.
    const replies = await load(port, 'refusing', 100, 1);
    console.log(`# refusing: ${okCount(replies)}/100 succeeded with one of two endpoints refusing connections`);
    assert.equal(okCount(replies), 100);
  });

  it('caps retries with the budget when every instance fails (20% of requests + 10/s)', async () => {
    const requests = 500;
    const replies = await load(port, 'down', requests, 16);
    const tries = served(svc.down as FaultyBackend[]);
    const retries = tries - requests;
    console.log(`# down: ${requests} requests, ${tries} tries (${retries} retries; without a budget up to ${requests * 5}); all answered ${replies[0]?.status}`);
    assert.ok(replies.every((r) => r.status === 503));
    assert.ok(retries <= 0.2 * requests + 10 * 10, `${retries} retries`);
    assert.ok(retries >= 50, 'some retries were allowed');
  });

  it('retries a stalled instance after the per-try timeout', async () => {
    const started = performance.now();
    const replies = await load(port, 'stalling', 20, 4);
    const stalled = ((svc.stalling as FaultyBackend[])[0] as FaultyBackend).requests;
    console.log(`# stalling: ${okCount(replies)}/20 succeeded; ${stalled} tries stalled and were retried after 300 ms; ${Math.round(performance.now() - started)} ms in all`);
    assert.equal(okCount(replies), 20);
    assert.ok(stalled > 0, 'the stalled instance was tried');
  });

  it('answers 504 (UT) when the route timeout passes', async () => {
    const started = performance.now();
    const r = await send(port, 'http://slow:8080/', { host: 'slow:8080' });
    const took = performance.now() - started;
    console.log(`# slow: ${r.status} "${r.body}" after ${Math.round(took)} ms (timeout 0.5 s)`);
    assert.equal(r.status, 504);
    assert.equal(r.body, 'upstream request timeout');
    assert.ok(took >= 450 && took < 5_000, `${took} ms`);
    assert.match(sidecar.metrics.render(), /destination_service_name="slow".*response_code="504".*response_flags="UT"/);
  });

  it('overflows with 503 UO at once, exactly while the request limit is taken', async () => {
    const first = send(port, 'http://guarded:8080/', { host: 'guarded:8080' });
    let firstDone = false;
    void first.then(() => (firstDone = true));
    const arrived = new Promise((resolve) => ((svc.guarded as FaultyBackend[])[0] as FaultyBackend).events.once('request', resolve));
    await arrived; // the one allowed request holds the limit (its backend never answers)
    const started = performance.now();
    const overflow = await Promise.all([1, 2, 3, 4].map(() => send(port, 'http://guarded:8080/', { host: 'guarded:8080' }, 'GET', undefined, false)));
    const took = performance.now() - started;
    assert.deepEqual(overflow.map((r) => r.status), [503, 503, 503, 503]);
    assert.equal(firstDone, false, 'the overflows were answered while the limit was still held');
    assert.equal((await first).status, 504);
    const after = await send(port, 'http://guarded:8080/', { host: 'guarded:8080' });
    console.log(`# guarded: 4 concurrent overflows answered 503 UO in ${Math.round(took)} ms; once the limit was free again the next request reached the backend (${after.status})`);
    assert.equal(after.status, 504, 'the limit is free again: the request went upstream');
    assert.match(sidecar.metrics.render(), /destination_service_name="guarded".*response_code="503".*response_flags="UO"/);
  });

  it('queues one request when the single connection is busy and overflows the next with 503 UO (Istio\'s circuit-breaking task)', async () => {
    const backend = (svc.pooled as FaultyBackend[])[0] as FaultyBackend;
    const get = (): Promise<Reply> => send(port, 'http://pooled:8080/', { host: 'pooled:8080' }, 'GET', undefined, false);
    const first = get();
    await new Promise((resolve) => backend.events.once('request', resolve)); // A holds the only connection
    const second = get(); // B waits for it (max_pending_requests 1)
    const third = await get(); // C overflows at once
    assert.equal(third.status, 503);
    assert.match(third.body, /overflow/);
    assert.equal(backend.requests, 1, 'only the first request reached the backend so far');
    const secondArrived = new Promise((resolve) => backend.events.once('request', resolve));
    backend.releaseHeld(); // A answers; its connection closes (one request per connection); B gets a new one
    assert.equal((await first).status, 200);
    await secondArrived;
    backend.releaseHeld();
    assert.equal((await second).status, 200);
    console.log('# pooled: 1 connection, 1 pending: the first request served, the second queued then served, the third 503 UO at once');
    assert.match(sidecar.metrics.render(), /destination_service_name="pooled".*response_code="503".*response_flags="UO"/);
  });

  it('injects a delay (DI) and aborts a share of requests (FI)', async () => {
    const started = performance.now();
    const delayed = await send(port, 'http://delayed:8080/', { host: 'delayed:8080' });
    const took = performance.now() - started;
    assert.equal(delayed.status, 200);
    assert.ok(took >= 390, `delayed by ${took} ms`);
    const replies = await load(port, 'aborted', 400, 8);
    const aborted = replies.filter((r) => r.status === 418).length;
    console.log(`# fault: delay ${Math.round(took)} ms (0.4 s configured); aborted ${aborted}/400 with 418 (50% configured)`);
    assert.ok(aborted > 140 && aborted < 260, `${aborted} aborted`);
    assert.equal(aborted + okCount(replies), 400);
    assert.equal(((svc.aborted as FaultyBackend[])[0] as FaultyBackend).requests, 400 - aborted, 'aborted requests never reach the app');
    const metrics = sidecar.metrics.render();
    assert.match(metrics, /destination_service_name="delayed".*response_flags="DI"/);
    assert.match(metrics, /destination_service_name="aborted".*response_code="418".*response_flags="FI"/);
  });

  it('mirrors requests to another service with a -shadow authority, fire and forget', async () => {
    const shadow = (svc.shadow as FaultyBackend[])[0] as FaultyBackend;
    const copies = new Promise<void>((resolve) => {
      const onRequest = (): void => {
        if (shadow.requests < 10) return;
        shadow.events.off('request', onRequest);
        resolve();
      };
      shadow.events.on('request', onRequest);
    });
    const replies = await load(port, 'mirrored', 10, 1);
    assert.equal(okCount(replies), 10);
    assert.ok(replies.every((r) => r.body === 'mirrored-0 ok'), 'the answer is the real service\'s');
    await copies;
    assert.deepEqual(new Set(shadow.hosts), new Set(['mirrored-shadow:8080']));
    const post = await send(port, 'http://mirrored:8080/', { host: 'mirrored:8080', 'content-type': 'text/plain' }, 'POST', 'payload');
    assert.equal(post.status, 200);
    console.log(`# mirror: ${shadow.requests} copies seen by the shadow service, authority ${shadow.hosts[0]}`);
  });

  it('answers CORS preflights itself and adds CORS headers for allowed origins', async () => {
    const before = ((svc.cors as FaultyBackend[])[0] as FaultyBackend).requests;
    const pre = await send(port, 'http://cors:8080/', { host: 'cors:8080', origin: 'https://shop.example', 'access-control-request-method': 'POST' }, 'OPTIONS');
    assert.equal(pre.status, 200);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://shop.example');
    assert.equal(pre.headers['access-control-allow-methods'], 'GET,POST');
    assert.equal(pre.headers['access-control-allow-headers'], 'x-user');
    assert.equal(pre.headers['access-control-max-age'], '86400');
    assert.equal(pre.headers['access-control-allow-credentials'], 'true');
    assert.equal(((svc.cors as FaultyBackend[])[0] as FaultyBackend).requests, before, 'the preflight never reached the app');
    const actual = await send(port, 'http://cors:8080/', { host: 'cors:8080', origin: 'https://shop.example' });
    assert.equal(actual.headers['access-control-allow-origin'], 'https://shop.example');
    assert.equal(actual.headers['access-control-expose-headers'], 'x-backend');
    const other = await send(port, 'http://cors:8080/', { host: 'cors:8080', origin: 'https://evil.example' });
    assert.equal(other.status, 200);
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });
});

/**
 * Istio's own Bookinfo traffic-management files, applied unchanged from
 * samples/bookinfo/networking/ to a control plane watching a directory, and the
 * behaviour Istio's task pages describe, observed through a sidecar: request routing
 * (all-v1, jason to v2), traffic shifting (50/50 v3), fault injection (the 7 s delay
 * and the abort for jason, details' 555). The services' answers come from stand-in
 * backends that say which workload answered; the Bookinfo applications themselves are
 * the local mesh's (examples/bookinfo).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { type FaultyBackend, startFaulty } from './faulty-backends.js';
import { keepAliveAgent, type Reply, send } from './http-backends.js';

const log = new Logger({ level: 'warn' });
const SAMPLES = fileURLToPath(new URL('../../../samples/bookinfo/', import.meta.url));
const WORKLOADS = ['productpage-v1', 'details-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3', 'ratings-v1'] as const;

describe("Istio's Bookinfo traffic-management samples, unchanged", { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-istio-samples-'));
  const backends = new Map<string, FaultyBackend>();
  let cp: ControlPlane;
  let sidecar: Proxy;
  let port = 0;

  /** Replaces the applied VirtualService sample with `file` (or none) and waits until the sidecar has the new routes. */
  async function apply(...files: string[]): Promise<void> {
    const version = sidecar.config.current.version;
    for (const f of ['vs-1.yaml', 'vs-2.yaml']) rmSync(join(dir, f), { force: true });
    files.forEach((f, i) => copyFileSync(join(SAMPLES, 'networking', f), join(dir, `vs-${i + 1}.yaml`)));
    await sidecar.waitFor((s) => s.version > version, 15_000);
  }

  const call = (host: string, headers: Record<string, string> = {}): Promise<Reply> => send(port, `http://${host}:9080/x`, { host: `${host}:9080`, ...headers });

  async function answers(host: string, n: number, headers: Record<string, string> = {}): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const r = await call(host, headers);
      const key = r.status === 200 ? r.body.replace(/ ok$/, '') : String(r.status);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  }

  before(async () => {
    for (const w of WORKLOADS) backends.set(w, await startFaulty(w, 'ok'));
    // The Services (and Deployments, which the control plane ignores) from Istio's bookinfo.yaml.
    copyFileSync(join(SAMPLES, 'platform/kube/bookinfo.yaml'), join(dir, 'bookinfo.yaml'));
    copyFileSync(join(SAMPLES, 'networking/destination-rule-all.yaml'), join(dir, 'destination-rule-all.yaml'));
    writeFileSync(join(dir, 'workloads.yaml'), WORKLOADS.map((w) => {
      const [app, version] = w.split('-') as [string, string];
      return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${w}}
spec: {address: 127.0.0.1, ports: {http: ${(backends.get(w) as FaultyBackend).port}}, labels: {app: ${app}, version: ${version}}}`;
    }).join('\n---\n'));
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
    sidecar = new Proxy({ xds: `127.0.0.1:${cp.xdsPort}`, type: 'sidecar', id: 'productpage-v1', namespace: 'default', serviceAccount: 'bookinfo-productpage', labels: { app: 'productpage', version: 'v1' }, bind: '127.0.0.1', outboundPort: 0, inboundPort: 0, adminPort: 0, statsPort: 0, log });
    await sidecar.start();
    await sidecar.waitFor((s) => s.routes.has('9080') && (s.clusters.get('outbound|9080|v3|reviews.default.svc.cluster.local')?.endpoints.length ?? 0) === 1);
    port = sidecar.listenerPort('virtualOutbound') as number;
  });

  after(async () => {
    keepAliveAgent.destroy();
    await sidecar?.close();
    await cp?.close();
    await Promise.all([...backends.values()].map((b) => b.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('without VirtualServices, reviews rotates over v1, v2 and v3', async () => {
    const counts = await answers('reviews', 60);
    assert.deepEqual([...counts.keys()].sort(), ['reviews-v1', 'reviews-v2', 'reviews-v3']);
  });

  it('virtual-service-all-v1.yaml: reviews only from v1 (no stars)', async () => {
    await apply('virtual-service-all-v1.yaml');
    assert.deepEqual([...(await answers('reviews', 30)).keys()], ['reviews-v1']);
    assert.deepEqual([...(await answers('ratings', 5)).keys()], ['ratings-v1']);
  });

  it('virtual-service-reviews-test-v2.yaml: jason gets v2 (black stars), everyone else v1', async () => {
    await apply('virtual-service-reviews-test-v2.yaml');
    assert.deepEqual([...(await answers('reviews', 10, { 'end-user': 'jason' })).keys()], ['reviews-v2']);
    assert.deepEqual([...(await answers('reviews', 10, { 'end-user': 'alice' })).keys()], ['reviews-v1']);
    assert.deepEqual([...(await answers('reviews', 10)).keys()], ['reviews-v1']);
  });

  it('virtual-service-reviews-50-v3.yaml: v1 and v3 about half each', async () => {
    await apply('virtual-service-reviews-50-v3.yaml');
    const counts = await answers('reviews', 400);
    const v3 = counts.get('reviews-v3') ?? 0;
    console.log(`# reviews-50-v3: v3 ${v3}/400, v1 ${counts.get('reviews-v1') ?? 0}/400`);
    assert.equal(v3 + (counts.get('reviews-v1') ?? 0), 400);
    assert.ok(v3 > 160 && v3 < 240, `v3 got ${v3}/400`);
  });

  it('virtual-service-ratings-test-abort.yaml: ratings aborts with 500 (FI) for jason only', async () => {
    await apply('virtual-service-ratings-test-abort.yaml');
    const before = (backends.get('ratings-v1') as FaultyBackend).requests;
    const jason = await call('ratings', { 'end-user': 'jason' });
    assert.equal(jason.status, 500);
    assert.equal((backends.get('ratings-v1') as FaultyBackend).requests, before, 'the abort never reached ratings');
    assert.equal((await call('ratings', { 'end-user': 'alice' })).status, 200);
    assert.match(sidecar.metrics.render(), /destination_service_name="ratings".*response_code="500".*response_flags="FI"/);
  });

  it('virtual-service-ratings-test-delay.yaml: ratings answers jason after 7 s, others at once', async () => {
    await apply('virtual-service-ratings-test-delay.yaml');
    let started = performance.now();
    const other = await call('ratings', { 'end-user': 'alice' });
    const otherMs = performance.now() - started;
    started = performance.now();
    const jason = await call('ratings', { 'end-user': 'jason' });
    const jasonMs = performance.now() - started;
    console.log(`# ratings-test-delay: jason answered after ${Math.round(jasonMs)} ms, alice after ${Math.round(otherMs)} ms`);
    assert.equal(jason.status, 200);
    assert.equal(other.status, 200);
    assert.ok(jasonMs >= 6_990, `jason waited ${jasonMs} ms`);
    assert.ok(otherMs < jasonMs - 5_000, 'others are not delayed');
  });

  it('fault-injection-details-v1.yaml: every details call answers 555', async () => {
    await apply('fault-injection-details-v1.yaml');
    const counts = await answers('details', 10);
    assert.deepEqual([...counts.entries()], [['555', 10]]);
    unlinkSync(join(dir, 'vs-1.yaml'));
  });
});

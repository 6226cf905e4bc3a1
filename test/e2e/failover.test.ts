/**
 * Locality failover end to end, as Istio's "Locality failover" task shows it: a client
 * sidecar in region1/zone1 calls a service with one instance in its own zone, one in
 * another zone of its region and one in region2. The DestinationRule has outlier
 * detection, so the control plane gives the endpoints priorities by their distance from
 * the sidecar: traffic stays in zone1 while it is healthy, moves to zone2 when zone1 is
 * ejected, to region2 when zone2 is down too, and comes back to zone1 once its ejection
 * time is over. Steady load throughout; the counts of each phase are printed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers.js';
import { send } from './http-backends.js';
import { Instance } from './instances.js';
import { type Counts, LoadLoop } from './load-loop.js';
import { Mesh, serviceYaml } from './mesh.js';

const CONCURRENCY = 8;
/** Replies per measured phase. */
const PHASE = 300;
const BASE_EJECTION_MS = 1_000;

function workloadEntry(name: string, port: number, locality: string): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}}
spec: {address: 127.0.0.1, ports: {http: ${port}}, labels: {app: geo}, locality: ${locality}}
`;
}

const DESTINATION_RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: geo}
spec:
  host: geo
  trafficPolicy:
    loadBalancer:
      simple: ROUND_ROBIN
      localityLbSetting:
        enabled: true
        failover: [{from: region1, to: region2}]
    outlierDetection: {consecutive5xxErrors: 1, interval: 0.2s, baseEjectionTime: ${BASE_EJECTION_MS / 1000}s, maxEjectionPercent: 100}
`;

describe('locality failover through the sidecar', { timeout: 120_000 }, () => {
  let mesh: Mesh;
  let load: LoadLoop | undefined;
  let local: Instance;
  let near: Instance;
  let far: Instance;

  before(async () => {
    local = await Instance.start('zone1');
    near = await Instance.start('zone2');
    far = await Instance.start('region2');
    const yaml = [
      serviceYaml('geo'),
      workloadEntry('geo-zone1', local.port, 'region1/zone1'),
      workloadEntry('geo-zone2', near.port, 'region1/zone2'),
      workloadEntry('geo-region2', far.port, 'region2/zone3'),
      DESTINATION_RULE,
    ].join('---\n');
    mesh = await Mesh.start({ yaml, locality: 'region1/zone1' });
    await mesh.waitForEndpoints('geo', (e) => e.length === 3);
  });

  after(async () => {
    await load?.stop();
    await mesh?.close();
    await Promise.all([local, near, far].map((i) => i?.kill()));
  });

  const ejected = (i: Instance): boolean => mesh.cluster('geo')?.outlier?.ejected.has(`127.0.0.1:${i.port}`) === true;
  const ejections = (i: Instance): number => mesh.cluster('geo')?.outlier?.ejections(`127.0.0.1:${i.port}`) ?? 0;
  const share = (c: Counts, i: Instance): number => c.served(i.name) / c.total;

  it('gives the sidecar\'s locality to the control plane, which orders endpoints by distance from it', () => {
    const node = mesh.cp.xds.proxies().find((p) => p.node.id === 'client')?.node;
    assert.deepEqual(node?.locality, { region: 'region1', zone: 'zone1', subzone: '' });
    const priorities = Object.fromEntries((mesh.cluster('geo')?.endpoints ?? []).map((e) => [e.locality, e.priority]));
    console.log(`# priorities seen by a sidecar in region1/zone1: ${JSON.stringify(priorities)}`);
    assert.deepEqual(priorities, { 'region1/zone1': 0, 'region1/zone2': 1, 'region2/zone3': 2 });
  });

  it('keeps traffic in zone1, fails over to zone2 then region2, and comes back to zone1', async () => {
    load = new LoadLoop({ port: mesh.port, authority: 'geo:8080', concurrency: CONCURRENCY });

    // 1. Everything healthy: the sidecar's own zone takes all the traffic.
    const healthy = await load.next(PHASE, 30_000, 'healthy phase');
    console.log(`# healthy: ${healthy.describe()}`);
    assert.equal(healthy.failed, 0, healthy.failures.join('; '));
    assert.equal(healthy.served(local.name), healthy.total, 'all in zone1');

    // 2. zone1 answers 503: ejected at its first 503 (consecutive5xxErrors: 1). No
    // retry policy covers 503 here (Istio's default retries connection failures only),
    // so the requests zone1 answers before each ejection fail; at most one per client.
    local.behaviour = 'fail';
    load.phase();
    await load.until(() => ejected(local), 10_000, 'zone1 ejected');
    const zone2 = await load.next(PHASE, 30_000, 'zone2 phase');
    console.log(`# zone1 failing: ${load.all.failed} requests failed so far (503 from zone1) while it was ejected ${ejections(local)} time(s); after the ejection ${zone2.describe()}`);
    assert.ok(share(zone2, near) >= 0.95, `zone2 took ${zone2.describe()}`);
    assert.equal(zone2.served(far.name), 0, 'region2 is not needed while zone2 is healthy');

    // 3. zone2 stops (connections refused): ejected at its first connection failure, which
    // Istio's default retry policy retries on another host; region2 takes the traffic.
    const stopping = load.phase();
    await near.stop();
    await load.until(() => ejected(near), 10_000, 'zone2 ejected');
    const region2 = await load.next(PHASE, 30_000, 'region2 phase');
    console.log(`# zone2 stopped too: ${stopping.describe()} while it went; then ${region2.describe()}`);
    assert.ok(share(region2, far) >= 0.95, `region2 took ${region2.describe()}`);

    // 4. Both recover: once zone1's ejection time is over, its traffic comes back.
    const recovering = load.phase();
    local.behaviour = 'ok';
    await near.restart();
    const started = performance.now();
    await load.until((c) => c.served(local.name) > 0 && !ejected(local), 30_000, 'zone1 back');
    const backAfter = performance.now() - started;
    const back = await load.next(PHASE, 30_000, 'back phase');
    console.log(`# recovered: zone1 served again ${Math.round(backAfter)} ms after it was fixed (base ejection ${BASE_EJECTION_MS} ms × ${ejections(local)} ejections at most); ${recovering.failed} failed meanwhile; then ${back.describe()}`);
    assert.equal(back.failed, 0, back.failures.join('; '));
    assert.equal(back.served(local.name), back.total, 'all back in zone1');

    // The only failures of the whole run: zone1's own 503s before each of its ejections,
    // at most one per client each time; zone2's refused connections were all retried.
    const all = await load.stop();
    load = undefined;
    const cycles = ejections(local);
    console.log(`# whole run: ${all.describe()}; zone1 was ejected ${cycles} time(s), zone2 ${ejections(near)}`);
    assert.ok(all.failures.every((f) => f === '503 zone1 failed'), all.failures.join('; '));
    assert.ok(all.failed >= 1 && all.failed <= CONCURRENCY * cycles, `${all.failed} failed over ${cycles} ejection(s)`);
  });

  it('rejects a --locality with more than three parts', async () => {
    const r = await runCli(['proxy', '--xds', '127.0.0.1:1', '--id', 'x', '--locality', 'a/b/c/d']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--locality takes region\/zone\/subzone/);
  });
});

/**
 * `retryRemoteLocalities`: the sidecar's own zone answers 503 to everything and the only
 * other instance is in region2. Outlier detection is on (so endpoints get priorities) but
 * never ejects here (consecutive5xxErrors: 1000). Without the flag, as in Envoy, retries
 * stay in the client's locality and the request fails; with it (Envoy's previous
 * priorities, every 2 tries), the third try goes to region2.
 */
describe('retryRemoteLocalities through the sidecar', { timeout: 60_000 }, () => {
  const REQUESTS = 20;
  let mesh: Mesh;
  let local: Instance;
  let far: Instance;

  const service = (name: string): string => `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec: {selector: {app: geo2}, ports: [{name: http, port: 8080}]}
`;
  const rules = (name: string, remote: boolean): string => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${name}}
spec:
  host: ${name}
  trafficPolicy:
    outlierDetection: {consecutive5xxErrors: 1000, interval: 10s, baseEjectionTime: 30s}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${name}}
spec:
  hosts: [${name}]
  http:
  - route: [{destination: {host: ${name}}}]
    retries: {attempts: 2, retryOn: 5xx, retryRemoteLocalities: ${remote}}
`;
  const entry = (name: string, port: number, locality: string): string =>
    `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}}
spec: {address: 127.0.0.1, ports: {http: ${port}}, labels: {app: geo2}, locality: ${locality}}
`;

  before(async () => {
    local = await Instance.start('zone1', 'fail');
    far = await Instance.start('region2');
    const yaml = [service('stay'), service('spill'), entry('geo2-zone1', local.port, 'region1/zone1'), entry('geo2-region2', far.port, 'region2/zone3'), rules('stay', false), rules('spill', true)].join('---\n');
    mesh = await Mesh.start({ yaml, locality: 'region1/zone1' });
    await mesh.waitForEndpoints('stay', (e) => e.length === 2);
    await mesh.waitForEndpoints('spill', (e) => e.length === 2);
  });

  after(async () => {
    await mesh?.close();
    await Promise.all([local, far].map((i) => i?.kill()));
  });

  async function outcomes(host: string): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (let i = 0; i < REQUESTS; i++) {
      const r = await send(mesh.port, '/', { host: `${host}:8080` });
      const key = `${r.status} ${r.headers['x-backend'] ?? '-'}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return counts;
  }

  it('keeps retries in the local zone without it, and sends the third try to region2 with it', async () => {
    const priorities = Object.fromEntries((mesh.cluster('spill')?.endpoints ?? []).map((e) => [e.locality, e.priority]));
    assert.deepEqual(priorities, { 'region1/zone1': 0, 'region2/zone3': 1 });
    const localBefore = local.requests;
    const stay = await outcomes('stay');
    const stayTries = local.requests - localBefore;
    console.log(`# without retryRemoteLocalities: ${JSON.stringify(Object.fromEntries(stay))}; zone1 got ${stayTries} tries`);
    assert.deepEqual(Object.fromEntries(stay), { '503 zone1': REQUESTS });
    assert.equal(stayTries, 3 * REQUESTS, 'every try (1 + 2 retries) in zone1');

    const spill = await outcomes('spill');
    console.log(`# with retryRemoteLocalities: ${JSON.stringify(Object.fromEntries(spill))}`);
    assert.deepEqual(Object.fromEntries(spill), { '200 region2': REQUESTS });
  });
});

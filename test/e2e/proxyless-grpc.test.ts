/**
 * End to end: the control plane on a temporary config directory, real gRPC backends on
 * 127.0.0.1, and stock @grpc/grpc-js-xds clients (no Trellis code in the client) dialing
 * `xds:///echo.default.svc.cluster.local:50051`.
 *
 * Synchronisation is on events, never sleeps: after a change, the test waits until the
 * client has ACKed the control plane's new version of the relevant type.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import { referencedClusters } from '../../src/control-plane/translate/index.js';
import { TYPE_URLS } from '../../src/xds/type-urls.js';
import { type Backend, callMany, echoClient, startBackend } from './echo.js';

const HOST = 'echo.default.svc.cluster.local';
const TARGET = `xds:///${HOST}:50051`;
const CLIENT_ID = 'e2e-grpc-client';
const log = new Logger({ level: 'warn' });

function write(dir: string, name: string, yaml: string): void {
  writeFileSync(join(dir, name), yaml);
}

function workloadEntry(b: Backend, version: string): string {
  return `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${b.name}}
spec:
  address: 127.0.0.1
  ports: {grpc: ${b.port}}
  labels: {app: echo, version: ${version}}
`;
}

const SERVICE = `apiVersion: v1
kind: Service
metadata: {name: echo}
spec:
  selector: {app: echo}
  ports: [{name: grpc, port: 50051}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo}
spec:
  host: echo
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
  - {name: v3, labels: {version: v3}}
`;

/**
 * Resolves once the test client is live on the control plane's current configuration:
 * it has ACKed the current version of every type, the route version differs from
 * `previousRoutes` (when given), and it subscribes to every cluster its routes name.
 * (An RDS ACK alone is not live: a client keeps its old routes until the clusters the
 * new ones name have arrived by CDS and EDS.) Checks on every ACK/NACK event.
 */
function clientLive(cp: ControlPlane, previousRoutes?: string, timeoutMs = 15_000): Promise<void> {
  return waitForSync(cp, timeoutMs, `client did not apply new configuration within ${timeoutMs} ms`, () => {
    const proxy = cp.xds.proxies().find((p) => p.node.id === CLIENT_ID);
    if (proxy === undefined || proxy.translation === undefined) return false;
    for (const type of [TYPE_URLS.LISTENER, TYPE_URLS.ROUTE, TYPE_URLS.CLUSTER, TYPE_URLS.ENDPOINT]) {
      if (proxy.status.types[type]?.ackedVersion !== proxy.snapshot.types.get(type)?.version) return false;
    }
    if (previousRoutes !== undefined && proxy.snapshot.types.get(TYPE_URLS.ROUTE)?.version === previousRoutes) return false;
    const cds = new Set(proxy.status.types[TYPE_URLS.CLUSTER]?.subscribed ?? []);
    const eds = new Set(proxy.status.types[TYPE_URLS.ENDPOINT]?.subscribed ?? []);
    const names = proxy.translation.clusters.map((c) => c.name as string);
    return [...referencedClusters(proxy.translation.listeners, proxy.translation.routes)].every((c) => !names.includes(c) || (cds.has(c) && eds.has(c)));
  });
}

/** Resolves once the client has ACKed a version of `type` other than `previous`. */
function typeSynced(cp: ControlPlane, type: string, previous: string | undefined, timeoutMs = 15_000): Promise<void> {
  return waitForSync(cp, timeoutMs, `client did not ACK a new ${type} within ${timeoutMs} ms`, () => {
    const proxy = cp.xds.proxies().find((p) => p.node.id === CLIENT_ID);
    const current = proxy?.snapshot.types.get(type)?.version;
    return current !== undefined && current !== previous && proxy?.status.types[type]?.ackedVersion === current;
  });
}

function waitForSync(cp: ControlPlane, timeoutMs: number, message: string, done: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const onSync = (): void => {
      if (!done()) return;
      cp.xds.events.off('sync', onSync);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      cp.xds.events.off('sync', onSync);
      reject(new Error(message));
    }, timeoutMs);
    cp.xds.events.on('sync', onSync);
    onSync();
  });
}

function versionOf(cp: ControlPlane, type: string): string | undefined {
  return cp.xds.proxies().find((p) => p.node.id === CLIENT_ID)?.snapshot.types.get(type)?.version;
}

describe('proxyless gRPC clients against the control plane', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-e2e-'));
  const backends: Backend[] = [];
  let cp: ControlPlane;
  let client: ReturnType<typeof echoClient>;
  let xdsPort = 0;

  before(async () => {
    for (const [name, version] of [['echo-v1', 'v1'], ['echo-v2', 'v2'], ['echo-v3', 'v3']] as const) {
      const b = await startBackend(name);
      backends.push(b);
      write(dir, `we-${name}.yaml`, workloadEntry(b, version));
    }
    write(dir, 'service.yaml', SERVICE);
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, registrationTtlMs: 2_000, log });
    await cp.start();
    xdsPort = cp.xdsPort;
    process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
      xds_servers: [{ server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: [] }],
      node: { id: CLIENT_ID, locality: {}, metadata: { NAMESPACE: 'default' } },
    });
    (await import('@grpc/grpc-js-xds')).register();
    client = echoClient(TARGET);
  });

  after(async () => {
    client?.close();
    await cp?.close();
    await Promise.all(backends.map((b) => b.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('balances round robin across the service endpoints', async () => {
    const counts = await callMany(client, 300, 1);
    assert.deepEqual([...counts.keys()].sort(), ['echo-v1', 'echo-v2', 'echo-v3']);
    for (const [name, n] of counts) assert.ok(n >= 95 && n <= 105, `${name} got ${n} of 300`);
  });

  it('splits 80/20 by VirtualService weights, within 2 points over 10,000 calls', async () => {
    const before = versionOf(cp, TYPE_URLS.ROUTE);
    write(dir, 'vs.yaml', `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - route:
    - {destination: {host: echo, subset: v1}, weight: 80}
    - {destination: {host: echo, subset: v2}, weight: 20}
`);
    await clientLive(cp, before);
    const counts = await callMany(client, 10_000, 64);
    const v1 = ((counts.get('echo-v1') ?? 0) / 10_000) * 100;
    const v2 = ((counts.get('echo-v2') ?? 0) / 10_000) * 100;
    console.log(`# weighted split over 10,000 calls: v1 ${v1.toFixed(2)}%, v2 ${v2.toFixed(2)}%, v3 ${(counts.get('echo-v3') ?? 0)} calls`);
    assert.ok(Math.abs(v1 - 80) <= 2 && Math.abs(v2 - 20) <= 2, `v1 ${v1}% v2 ${v2}%`);
    assert.equal(counts.get('echo-v3'), undefined);
  });

  it('routes by header match to a subset', async () => {
    const before = versionOf(cp, TYPE_URLS.ROUTE);
    write(dir, 'vs.yaml', `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - match: [{headers: {end-user: {exact: jason}}}]
    route: [{destination: {host: echo, subset: v3}}]
  - route: [{destination: {host: echo, subset: v1}}]
`);
    await clientLive(cp, before);
    assert.deepEqual([...(await callMany(client, 50, 8, { 'end-user': 'jason' })).keys()], ['echo-v3']);
    assert.deepEqual([...(await callMany(client, 50, 8, { 'end-user': 'other' })).keys()], ['echo-v1']);
  });

  it('stops sending to an endpoint removed from the config directory', async () => {
    const before = versionOf(cp, TYPE_URLS.ROUTE);
    unlinkSync(join(dir, 'vs.yaml'));
    await clientLive(cp, before);
    const beforeEds = versionOf(cp, TYPE_URLS.ENDPOINT);
    unlinkSync(join(dir, 'we-echo-v2.yaml'));
    await typeSynced(cp, TYPE_URLS.ENDPOINT, beforeEds);
    const removed = backends[1] as Backend;
    const served = removed.calls;
    const counts = await callMany(client, 200, 8);
    assert.equal(removed.calls, served, 'the removed backend got new calls');
    assert.deepEqual([...counts.keys()].sort(), ['echo-v1', 'echo-v3']);
  });

  it('sends to a run-time registration, and stops once its heartbeats stop', async () => {
    const extra = await startBackend('echo-registered');
    backends.push(extra);
    const beforeEds = versionOf(cp, TYPE_URLS.ENDPOINT);
    const res = await fetch(`http://127.0.0.1:${cp.adminPort}/v1/registrations`, {
      method: 'POST',
      body: JSON.stringify({ name: 'echo-registered', namespace: 'default', serviceAccount: 'echo', labels: { app: 'echo', version: 'v4' }, address: '127.0.0.1', ports: { grpc: extra.port } }),
    });
    assert.equal(res.status, 201);
    const { id } = (await res.json()) as { id: string };
    // Heartbeats keep it registered however long the calls take on a busy machine.
    const beat = setInterval(() => void fetch(`http://127.0.0.1:${cp.adminPort}/v1/registrations/${id}/heartbeat`, { method: 'POST' }).catch(() => undefined), 500);
    let counts: Map<string, number>;
    let added: string | undefined;
    try {
      await typeSynced(cp, TYPE_URLS.ENDPOINT, beforeEds);
      added = versionOf(cp, TYPE_URLS.ENDPOINT);
      counts = await callMany(client, 90, 1);
    } finally {
      clearInterval(beat);
    }
    assert.ok((counts.get('echo-registered') ?? 0) >= 25, `registered backend got ${counts.get('echo-registered')} of 90`);
    // Heartbeats stopped: the registration expires after the 2 s TTL and the removal is pushed.
    await typeSynced(cp, TYPE_URLS.ENDPOINT, added);
    assert.equal(cp.registrations.list().some((r) => r.id === id), false);
    const served = extra.calls;
    await callMany(client, 100, 8);
    assert.equal(extra.calls, served, 'the expired registration got new calls');
  });

  it('shows a NACKed resource in /debug/syncz and keeps serving the previous config', async () => {
    const beforeCds = versionOf(cp, TYPE_URLS.CLUSTER);
    write(dir, 'service.yaml', SERVICE.replace('trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}', 'trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user, ringHash: {minimumRingSize: 10000000}}}}'));
    const nack = await new Promise<{ message: string; version: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no NACK')), 15_000);
      cp.xds.events.on('sync', function onSync(e: { proxyId: string; typeUrl: string; nack?: string; version: string }) {
        if (e.proxyId !== CLIENT_ID || e.typeUrl !== TYPE_URLS.CLUSTER || e.nack === undefined || e.version === beforeCds) return;
        cp.xds.events.off('sync', onSync);
        clearTimeout(timer);
        resolve({ message: e.nack, version: e.version });
      });
    });
    assert.match(nack.message, /minimum_ring_size is too large/);
    const syncz = (await (await fetch(`http://127.0.0.1:${cp.adminPort}/debug/syncz`)).json()) as { proxies: { proxyId: string; types: Record<string, { lastNack?: { message: string; version: string } }> }[] };
    const status = syncz.proxies.find((p) => p.proxyId === CLIENT_ID);
    assert.match(status?.types[TYPE_URLS.CLUSTER]?.lastNack?.message ?? '', /minimum_ring_size is too large/);
    assert.equal(status?.types[TYPE_URLS.CLUSTER]?.lastNack?.version, nack.version);
    const counts = await callMany(client, 60, 1);
    assert.deepEqual([...counts.keys()].sort(), ['echo-v1', 'echo-v3'], 'the previous clusters keep serving');
    write(dir, 'service.yaml', SERVICE);
    await typeSynced(cp, TYPE_URLS.CLUSTER, nack.version);
  });

  it('keeps working through a control-plane restart and picks up new config after it', async () => {
    await cp.close();
    const during = await callMany(client, 20, 4);
    assert.deepEqual([...during.keys()].sort(), ['echo-v1', 'echo-v3'], 'cached config serves while the control plane is away');
    write(dir, 'vs.yaml', `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo}
spec:
  hosts: [echo]
  http:
  - route: [{destination: {host: echo, subset: v3}}]
`);
    cp = new ControlPlane({ configDir: dir, xdsPort, adminPort: 0, log });
    await cp.start();
    await clientLive(cp, undefined, 30_000);
    assert.deepEqual([...(await callMany(client, 40, 4)).keys()], ['echo-v3']);
  });
});

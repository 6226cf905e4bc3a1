/**
 * "Changes take effect on every proxy within a second": a sidecar proxy connected to a
 * control plane routes by a VirtualService applied through the admin API within a
 * second of the request, and falls back when it is deleted. All on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';
import { Proxy } from '../../src/proxy/proxy.js';
import { type HttpBackend, keepAliveAgent, send, startHttpBackend } from '../e2e/http-backends.js';

const log = new Logger({ level: 'warn' });
/** The promise; Istio's debounce (100 ms) is most of it. */
const PROPAGATION_BOUND_MS = 1_000;

const mesh = (v1: HttpBackend, v2: HttpBackend) => `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.0.1, ports: {http: ${v1.port}}, labels: {app: reviews, version: v1}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec: {address: 127.0.0.1, ports: {http: ${v2.port}}, labels: {app: reviews, version: v2}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v1}}]}]
`;

const toV2 = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v2}}]}]
`;

describe('an applied change reaches a proxy', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-apply-push-'));
  let cp: ControlPlane;
  let sidecar: Proxy;
  let v1: HttpBackend;
  let v2: HttpBackend;
  let port = 0;

  before(async () => {
    v1 = await startHttpBackend('reviews-v1');
    v2 = await startHttpBackend('reviews-v2');
    writeFileSync(join(dir, 'mesh.yaml'), mesh(v1, v2));
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
    sidecar = new Proxy({ xds: `127.0.0.1:${cp.xdsPort}`, type: 'sidecar', id: 'productpage', namespace: 'default', serviceAccount: 'productpage', labels: { app: 'productpage' }, bind: '127.0.0.1', outboundPort: 0, inboundPort: 0, adminPort: 0, statsPort: 0, log });
    await sidecar.start();
    await sidecar.waitFor((s) => s.routes.has('9080') && (s.clusters.get('outbound|9080|v2|reviews.default.svc.cluster.local')?.endpoints.length ?? 0) > 0);
    port = sidecar.listenerPort('virtualOutbound') as number;
  });

  after(async () => {
    keepAliveAgent.destroy();
    await sidecar?.close();
    await cp?.close();
    await Promise.all([v1?.close(), v2?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const backend = async (): Promise<string> => JSON.parse((await send(port, 'http://reviews:9080/', { host: 'reviews:9080' })).body).backend;

  /** Sends the admin request, then waits (bounded) for the proxy's next route table for port 9080. */
  const change = async (method: string, path: string, body?: string): Promise<number> => {
    const before = sidecar.config.current.routes.get('9080');
    const started = performance.now();
    const res = await fetch(`http://127.0.0.1:${cp.adminPort}${path}`, { method, body: body ?? null });
    assert.equal(res.status, 200, await res.text());
    await sidecar.waitFor((s) => s.routes.get('9080') !== before, PROPAGATION_BOUND_MS);
    return performance.now() - started;
  };

  it('routes by an applied VirtualService within a second, and by the file\'s again once it is deleted', async () => {
    assert.equal(await backend(), 'reviews-v1');
    const applied = await change('PUT', '/v1/config', toV2);
    assert.equal(await backend(), 'reviews-v2');
    const deleted = await change('DELETE', '/v1/config/virtualservice/default/reviews');
    assert.equal(await backend(), 'reviews-v1');
    console.log(`# apply reached the proxy in ${applied.toFixed(0)} ms, delete in ${deleted.toFixed(0)} ms`);
  });
});

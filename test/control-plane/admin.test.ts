/** The control plane's admin API over real HTTP on 127.0.0.1. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { Logger } from '../../src/core/log.js';

describe('admin API', { timeout: 30_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-admin-'));
  let cp: ControlPlane;
  let base = '';

  before(async () => {
    writeFileSync(join(dir, 'good.yaml'), `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route: [{destination: {host: reviews}}]
    retries: {attempts: 3}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews-warmup}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN, warmup: {duration: 30s}}}
`);
    writeFileSync(join(dir, 'bad.yaml'), `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  trafficPolicy: {loadBalancer: {simple: FASTEST}}
`);
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log: new Logger({ level: 'silent' }) });
    await cp.start();
    base = `http://127.0.0.1:${cp.adminPort}`;
  });

  after(async () => {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = async (path: string) => {
    const res = await fetch(base + path);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('is ready', async () => {
    assert.deepEqual(await get('/healthz/ready'), { status: 200, body: { ready: true } });
  });

  it('shows each file with its validation errors, and fields not translated yet', async () => {
    const { body } = await get('/debug/configz');
    const files = body.files as { file: string; valid: boolean; findings: { code: string; line: number; path: string; message: string }[] }[];
    const bad = files.find((f) => f.file === 'bad.yaml');
    assert.equal(bad?.valid, false);
    assert.deepEqual(bad?.findings.map((f) => [f.code, f.line, f.path]), [['TRELLIS_CONFIG_INVALID_VALUE', 6, 'spec.trafficPolicy.loadBalancer.simple']]);
    const resources = body.resources as { kind: string; name: string; notTranslatedYet: { field: string; path: string; reason: string }[] }[];
    const vs = resources.find((r) => r.kind === 'VirtualService');
    assert.deepEqual(vs?.notTranslatedYet, []);
    const dr = resources.find((r) => r.kind === 'DestinationRule' && r.name === 'reviews-warmup');
    assert.deepEqual(dr?.notTranslatedYet, [{
      field: 'DestinationRule.spec.trafficPolicy.loadBalancer.warmup',
      path: 'spec.trafficPolicy.loadBalancer.warmup',
      reason: 'later: resilience (slow start, HTTP/2 keepalive, zone-aware routing, outlier HTTP error codes, retry budget interval)',
    }]);
  });

  it('lists services with their endpoints, including run-time registrations', async () => {
    const reg = await fetch(`${base}/v1/registrations`, {
      method: 'POST',
      body: JSON.stringify({ namespace: 'default', serviceAccount: 'reviews', labels: { app: 'reviews' }, address: '127.0.0.7', ports: { http: 19080 } }),
    });
    assert.equal(reg.status, 201);
    const { id } = (await reg.json()) as { id: string };
    const { body } = await get('/debug/registryz');
    const services = body.services as { hostname: string; ports: { endpoints: { address: string; port: number }[] }[] }[];
    const reviews = services.find((s) => s.hostname === 'reviews.default.svc.cluster.local');
    assert.deepEqual(reviews?.ports[0]?.endpoints.map((e) => [e.address, e.port]), [['127.0.0.7', 19080]]);
    assert.equal((await fetch(`${base}/v1/registrations/${id}/heartbeat`, { method: 'POST' })).status, 200);
    assert.equal((await fetch(`${base}/v1/registrations/${id}`, { method: 'DELETE' })).status, 204);
    const gone = await fetch(`${base}/v1/registrations/${id}/heartbeat`, { method: 'POST' });
    assert.equal(gone.status, 404);
    assert.equal(((await gone.json()) as { error: { code: string } }).error.code, 'TRELLIS_REGISTRATION_NOT_FOUND');
  });

  it('rejects an invalid registration with field errors', async () => {
    const res = await fetch(`${base}/v1/registrations`, { method: 'POST', body: JSON.stringify({ namespace: 'default', serviceAccount: 'x', labels: {}, address: 'not-an-ip', ports: { http: 70000 } }) });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; fields: { field: string }[] } };
    assert.equal(body.error.code, 'TRELLIS_REGISTRATION_INVALID');
    assert.deepEqual(body.error.fields.map((f) => f.field).sort(), ['address', 'ports.http']);
  });

  it('answers unknown paths, wrong methods and bad requests with coded errors', async () => {
    assert.equal(((await get('/nope')).body.error as { code: string }).code, 'TRELLIS_ADMIN_NOT_FOUND');
    const wrong = await fetch(`${base}/debug/syncz`, { method: 'POST' });
    assert.equal(wrong.status, 405);
    const dump = await get('/debug/config_dump');
    assert.equal(dump.status, 400);
    assert.equal(((await get('/debug/config_dump?proxyID=ghost')).body.error as { code: string }).code, 'TRELLIS_ADMIN_PROXY_NOT_FOUND');
    const notJson = await fetch(`${base}/v1/registrations`, { method: 'POST', body: '{' });
    assert.equal(notJson.status, 400);
  });
});

/**
 * The admin port's view of outlier detection and circuit breakers, with a real control
 * plane and sidecar: an ejected host in /clusters (Envoy's `/failed_outlier_check`),
 * still ejected after a push that rebuilds the cluster, and the overflow counters in
 * /stats.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ControlPlane } from '../../../src/control-plane/control-plane.js';
import { Logger } from '../../../src/core/log.js';
import type { ClusterRuntime } from '../../../src/proxy/config/clusters.js';
import type { RuntimeSnapshot } from '../../../src/proxy/config/runtime.js';
import { Proxy } from '../../../src/proxy/proxy.js';
import { servicesYaml } from '../../e2e/mesh.js';

const log = new Logger({ level: 'warn' });
const WEB = 'outbound|8080||web.default.svc.cluster.local';

/** `web` with `n` endpoints (nothing listens on them: no request is sent). */
function mesh(n: number): string {
  return servicesYaml([{
    name: 'web', portName: 'http', port: 8080, endpoints: Array.from({ length: n }, (_, i) => 9100 + i),
    policy: '{connectionPool: {http: {http2MaxRequests: 1}}, outlierDetection: {consecutive5xxErrors: 3, baseEjectionTime: 5m, maxEjectionPercent: 50}}',
  }]);
}

const endpoints = (s: RuntimeSnapshot): number => s.clusters.get(WEB)?.endpoints.length ?? 0;

describe('admin output for outlier detection and circuit breakers', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-resilience-admin-'));
  const file = join(dir, 'mesh.yaml');
  let cp: ControlPlane;
  let proxy: Proxy;

  before(async () => {
    writeFileSync(file, mesh(3));
    cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log, mesh: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
    await cp.start();
    proxy = new Proxy({ xds: `127.0.0.1:${cp.xdsPort}`, type: 'sidecar', id: 'client', namespace: 'default', serviceAccount: 'client', labels: { app: 'client' }, bind: '127.0.0.1', inboundPort: 0, outboundPort: 0, adminPort: 0, statsPort: -1, log });
    await proxy.start();
    await proxy.waitFor((s) => endpoints(s) === 3);
  });

  after(async () => {
    await proxy?.close();
    await cp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const admin = async (path: string): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${proxy.adminPort}${path}`);
    assert.equal(res.status, 200);
    return res.text();
  };
  const web = (): ClusterRuntime => proxy.config.current.clusters.get(WEB) as ClusterRuntime;

  it('shows an ejected host as /failed_outlier_check, also after a push rebuilds the cluster', async () => {
    for (let i = 0; i < 3; i++) web().outlier?.report('127.0.0.1:9101', 503);
    let text = await admin('/clusters');
    assert.match(text, /^outbound\|8080\|\|web\.default\.svc\.cluster\.local::127\.0\.0\.1:9101::health_flags::\/failed_outlier_check$/m);
    assert.match(text, /^outbound\|8080\|\|web\.default\.svc\.cluster\.local::127\.0\.0\.1:9101::outlier::ejections::1$/m);
    assert.match(text, /^outbound\|8080\|\|web\.default\.svc\.cluster\.local::127\.0\.0\.1:9100::health_flags::healthy$/m);
    assert.match(text, /^outbound\|8080\|\|web\.default\.svc\.cluster\.local::outlier::ejections_active::1$/m);

    const version = proxy.config.current.version;
    writeFileSync(file, mesh(4));
    await proxy.waitFor((s) => s.version > version && endpoints(s) === 4);
    text = await admin('/clusters');
    assert.match(text, /::127\.0\.0\.1:9101::health_flags::\/failed_outlier_check$/m, 'the new build of the cluster keeps the ejection');
    assert.match(text, /::127\.0\.0\.1:9103::health_flags::healthy$/m);
    for (let i = 0; i < 200; i++) assert.notEqual(web().picker.pick({ hash: undefined })?.id, '127.0.0.1:9101');
  });

  it('counts circuit breaker overflows in /stats and /clusters', async () => {
    const breaker = web().breaker;
    assert.equal(breaker.tryRequest(), true);
    assert.equal(breaker.tryRequest(), false, 'http2MaxRequests: 1');
    breaker.endRequest();
    const stats = await admin('/stats');
    assert.match(stats, /^# TYPE envoy_cluster_upstream_rq_pending_overflow counter$/m);
    assert.match(stats, /^envoy_cluster_upstream_rq_pending_overflow\{cluster_name="outbound\|8080\|\|web\.default\.svc\.cluster\.local"\} 1$/m);
    assert.match(stats, /^envoy_cluster_upstream_cx_overflow\{cluster_name="outbound\|8080\|\|web\.default\.svc\.cluster\.local"\} 0$/m);
    assert.match(stats, /^envoy_cluster_upstream_rq_retry_overflow\{cluster_name="outbound\|8080\|\|web\.default\.svc\.cluster\.local"\} 0$/m);
    assert.match(stats, /^envoy_cluster_outlier_detection_ejections_active\{cluster_name="outbound\|8080\|\|web\.default\.svc\.cluster\.local"\} 1$/m);
    const clusters = await admin('/clusters');
    assert.match(clusters, /^outbound\|8080\|\|web\.default\.svc\.cluster\.local::circuit_breakers::upstream_rq_pending_overflow::1$/m);
    assert.match(clusters, /^outbound\|8080\|\|web\.default\.svc\.cluster\.local::default_priority::max_requests::1$/m);
  });
});

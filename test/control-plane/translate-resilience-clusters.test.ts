/**
 * Resilience on clusters and endpoints, as Istio writes it: connection pool and circuit
 * breakers, outlier detection, retry budgets, and locality failover and weights relative
 * to the proxy asking.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadText } from '../../src/api/load.js';
import { ControlPlane } from '../../src/control-plane/control-plane.js';
import { buildMesh, DEFAULT_MESH_CONFIG } from '../../src/control-plane/translate/mesh.js';
import { Logger } from '../../src/core/log.js';
import { ConfigRegistry } from '../../src/registry/config-source.js';
import type { ClusterLoadAssignment } from '../../src/xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js';
import { meshOf, node } from './mesh-fixture.js';
import { assignment, bookinfo, clusterNamed, httpbin, nodeAt, protocolOptions, routesFor, translated } from './resilience-fixture.js';

const HTTPBIN = 'httpbin.default.svc.cluster.local';
const REVIEWS = 'reviews.default.svc.cluster.local';
const UNLIMITED = { value: 4_294_967_295 };
const DEFAULT_THRESHOLDS = { max_connections: UNLIMITED, max_pending_requests: UNLIMITED, max_requests: UNLIMITED, max_retries: UNLIMITED, track_remaining: true };

/** The circuit-breaking task's DestinationRule (tasks/traffic-management/circuit-breaking). */
const CIRCUIT_BREAKING = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 1}
      http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 3m, maxEjectionPercent: 100}
`;

function dr(host: string, trafficPolicy: string): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ${host}}
spec:
  host: ${host}
  trafficPolicy:
${trafficPolicy}`;
}

describe('translate: connection pool and circuit breakers', () => {
  it('gives every outbound cluster unlimited thresholds and a 10 s connect timeout by default (Istio)', () => {
    const t = translated(bookinfo('destination-rule-all.yaml'), node('sidecar'));
    for (const name of [`outbound|9080||${REVIEWS}`, `outbound|9080|v2|${REVIEWS}`]) {
      const c = clusterNamed(t, name);
      assert.deepEqual(c.circuit_breakers, { thresholds: [DEFAULT_THRESHOLDS] });
      assert.deepEqual(c.connect_timeout, { seconds: 10, nanos: 0 });
      assert.equal(c.outlier_detection, undefined, 'outlier detection is off unless configured');
      assert.equal(c.common_lb_config, undefined);
      assert.equal(protocolOptions(c), undefined, 'an HTTP/1.1 cluster without settings has no protocol options');
    }
  });

  it('applies the circuit-breaking task: one connection, one pending request, one request per connection', () => {
    const c = clusterNamed(translated(httpbin(CIRCUIT_BREAKING), node('sidecar')), `outbound|8000||${HTTPBIN}`);
    assert.deepEqual(c.circuit_breakers, { thresholds: [{ ...DEFAULT_THRESHOLDS, max_connections: { value: 1 }, max_pending_requests: { value: 1 } }] });
    assert.deepEqual(protocolOptions(c), {
      common_http_protocol_options: { max_requests_per_connection: { value: 1 } },
      explicit_http_config: { http_protocol_options: {}, protocol_config: 'http_protocol_options' },
      upstream_protocol_options: 'explicit_http_config',
    });
  });

  it('translates every connection-pool field; port-level settings replace the rule level', () => {
    const t = translated(httpbin(dr('httpbin', `    connectionPool:
      tcp: {maxConnections: 10, connectTimeout: 250ms, tcpKeepalive: {probes: 3, time: 600s, interval: 75s}, maxConnectionDuration: 1h, idleTimeout: 5m}
      http: {http1MaxPendingRequests: 20, http2MaxRequests: 30, maxRetries: 4, idleTimeout: 30s, h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 100}
    portLevelSettings:
    - port: {number: 9999}
      connectionPool: {tcp: {maxConnections: 1}}
`)), node('sidecar'));
    const c = clusterNamed(t, `outbound|8000||${HTTPBIN}`);
    assert.deepEqual(c.connect_timeout, { seconds: 0, nanos: 250_000_000 });
    assert.deepEqual(c.circuit_breakers?.thresholds, [{ max_connections: { value: 10 }, max_pending_requests: { value: 20 }, max_requests: { value: 30 }, max_retries: { value: 4 }, track_remaining: true }]);
    assert.deepEqual(c.upstream_connection_options, { tcp_keepalive: { keepalive_probes: { value: 3 }, keepalive_time: { value: 600 }, keepalive_interval: { value: 75 } } });
    assert.deepEqual(protocolOptions(c), {
      common_http_protocol_options: { idle_timeout: { seconds: 30 }, max_connection_duration: { seconds: 3600 } },
      explicit_http_config: { http2_protocol_options: { max_concurrent_streams: { value: 100 } }, protocol_config: 'http2_protocol_options' },
      upstream_protocol_options: 'explicit_http_config',
    });
  });

  it('takes the idle timeout from tcp when http has none, and keeps an explicit 0 (no idle timeout)', () => {
    const t = translated(httpbin(dr('httpbin', '    connectionPool: {tcp: {idleTimeout: 0s}}\n')), node('sidecar'));
    assert.deepEqual(protocolOptions(clusterNamed(t, `outbound|8000||${HTTPBIN}`))?.common_http_protocol_options, { idle_timeout: {} });
  });

  it('sets the idle timeout and connection lifetime of TCP proxies from the destination rule', () => {
    const t = translated(bookinfo() + `
---
apiVersion: v1
kind: Service
metadata: {name: mysql}
spec:
  selector: {app: mysql}
  ports: [{name: tcp, port: 3306}]
---
` + dr('mysql', '    connectionPool: {tcp: {idleTimeout: 10m, maxConnectionDuration: 2h}}\n'), node('sidecar'));
    const chain = t.listeners.find((l) => l.name === 'virtualOutbound')?.filter_chains?.find((c) => c.name === 'outbound|3306||mysql.default.svc.cluster.local');
    const proxy = chain?.filters?.[0]?.typed_config as Record<string, unknown>;
    assert.deepEqual(proxy.idle_timeout, { seconds: 600, nanos: 0 });
    assert.deepEqual(proxy.max_downstream_connection_duration, { seconds: 7200, nanos: 0 });
  });

  it('gives proxyless gRPC circuit breakers only for http2MaxRequests (its own default is 1024)', () => {
    assert.equal(clusterNamed(translated(httpbin(CIRCUIT_BREAKING), node('grpc')), `outbound|8000||${HTTPBIN}`).circuit_breakers, undefined);
    const c = clusterNamed(translated(httpbin(dr('httpbin', '    connectionPool: {http: {http2MaxRequests: 50}}\n')), node('grpc')), `outbound|8000||${HTTPBIN}`);
    assert.deepEqual(c.circuit_breakers?.thresholds?.[0]?.max_requests, { value: 50 });
  });
});

describe('translate: retry budgets', () => {
  it('puts the DestinationRule retryBudget on the thresholds, Envoy defaults filled in', () => {
    const t = translated(httpbin(dr('httpbin', '    retryBudget: {percent: 25}\n')), node('sidecar'));
    assert.deepEqual(clusterNamed(t, `outbound|8000||${HTTPBIN}`).circuit_breakers?.thresholds?.[0]?.retry_budget, { budget_percent: { value: 25 }, min_retry_concurrency: { value: 3 } });
  });

  it("publishes Trellis's rate-based budget on every outbound cluster, from the mesh settings", () => {
    const expected = (ratio: number, min: number, ttl: number) => ({
      filter_metadata: { 'trellis.io/retry-budget': { fields: { ratio: { numberValue: ratio }, min_retries_per_second: { numberValue: min }, ttl_seconds: { numberValue: ttl } } } },
    });
    const t = translated(bookinfo('destination-rule-all.yaml'), node('sidecar'));
    const outbound = t.clusters.filter((c) => c.name?.startsWith('outbound|'));
    assert.ok(outbound.length > 10);
    for (const c of outbound) assert.deepEqual(c.metadata, expected(0.2, 10, 10), c.name);
    assert.equal(clusterNamed(t, 'PassthroughCluster').metadata, undefined);

    const loaded = loadText(bookinfo(), 'mesh.yaml');
    const registry = new ConfigRegistry();
    registry.update(loaded.resources);
    const mesh = buildMesh(loaded.resources, registry.snapshot(), { ...DEFAULT_MESH_CONFIG, retryBudget: { ratio: 0.1, minRetriesPerSecond: 2, ttlMs: 5_000 } });
    assert.deepEqual(clusterNamed(translated(mesh, node('sidecar')), `outbound|9080||${REVIEWS}`).metadata, expected(0.1, 2, 5));
  });

  it('takes the budget from ControlPlaneOptions.mesh.retryBudget (default 20%, 10/s, 10 s)', { timeout: 30_000 }, async () => {
    assert.deepEqual(DEFAULT_MESH_CONFIG.retryBudget, { ratio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000 });
    const dir = mkdtempSync(join(tmpdir(), 'trellis-budget-'));
    writeFileSync(join(dir, 'bookinfo.yaml'), bookinfo());
    const cp = new ControlPlane({ configDir: dir, xdsPort: 0, adminPort: 0, log: new Logger({ level: 'silent' }), mesh: { retryBudget: { ratio: 0.5, minRetriesPerSecond: 1, ttlMs: 2_500 } } });
    try {
      await cp.start();
      const metadata = clusterNamed(translated(cp.mesh, node('sidecar')), `outbound|9080||${REVIEWS}`).metadata;
      assert.deepEqual(metadata?.filter_metadata?.['trellis.io/retry-budget'], { fields: { ratio: { numberValue: 0.5 }, min_retries_per_second: { numberValue: 1 }, ttl_seconds: { numberValue: 2.5 } } });
    } finally {
      await cp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('translate: outlier detection', () => {
  it('applies the circuit-breaking task: eject after one 5xx, checked every second, for 3 minutes, all hosts if need be', () => {
    const c = clusterNamed(translated(httpbin(CIRCUIT_BREAKING), node('sidecar')), `outbound|8000||${HTTPBIN}`);
    assert.deepEqual(c.outlier_detection, {
      consecutive_5xx: { value: 1 },
      enforcing_consecutive_5xx: { value: 100 },
      consecutive_gateway_failure: { value: 5 },
      enforcing_consecutive_gateway_failure: { value: 0 },
      interval: { seconds: 1, nanos: 0 },
      base_ejection_time: { seconds: 180, nanos: 0 },
      max_ejection_percent: { value: 100 },
      enforcing_success_rate: { value: 0 },
    });
    assert.deepEqual(c.common_lb_config, { healthy_panic_threshold: { value: 0 } }, 'panic mode off (minHealthPercent 0)');
  });

  it("writes out Envoy's defaults, turns a check off with 0, and counts the deprecated consecutiveErrors as gateway errors", () => {
    const od = (policy: string) => clusterNamed(translated(httpbin(dr('httpbin', policy)), node('sidecar')), `outbound|8000||${HTTPBIN}`);
    const defaults = od('    outlierDetection: {}\n');
    assert.deepEqual(defaults.outlier_detection, {
      consecutive_5xx: { value: 5 },
      enforcing_consecutive_5xx: { value: 100 },
      consecutive_gateway_failure: { value: 5 },
      enforcing_consecutive_gateway_failure: { value: 0 },
      interval: { seconds: 10, nanos: 0 },
      base_ejection_time: { seconds: 30, nanos: 0 },
      max_ejection_percent: { value: 10 },
      enforcing_success_rate: { value: 0 },
    });
    const custom = od('    outlierDetection: {consecutive5xxErrors: 0, consecutiveGatewayErrors: 3, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2, minHealthPercent: 50}\n');
    assert.deepEqual(custom.outlier_detection, {
      consecutive_5xx: { value: 0 },
      enforcing_consecutive_5xx: { value: 0 },
      consecutive_gateway_failure: { value: 3 },
      enforcing_consecutive_gateway_failure: { value: 100 },
      interval: { seconds: 10, nanos: 0 },
      base_ejection_time: { seconds: 30, nanos: 0 },
      max_ejection_percent: { value: 10 },
      enforcing_success_rate: { value: 0 },
      split_external_local_origin_errors: true,
      consecutive_local_origin_failure: { value: 2 },
      enforcing_consecutive_local_origin_failure: { value: 100 },
      enforcing_local_origin_success_rate: { value: 0 },
    });
    assert.deepEqual(custom.common_lb_config, { healthy_panic_threshold: { value: 50 } });
    const old = od('    outlierDetection: {consecutiveErrors: 1}\n').outlier_detection;
    assert.deepEqual([old?.consecutive_gateway_failure, old?.enforcing_consecutive_gateway_failure], [{ value: 1 }, { value: 100 }]);
  });

  it("applies a subset's outlier detection to the subset's cluster only", () => {
    const t = translated(httpbin(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  subsets:
  - {name: v1, labels: {version: v1}, trafficPolicy: {outlierDetection: {consecutive5xxErrors: 2}}}
  - {name: v2, labels: {version: v2}}
`), node('sidecar'));
    assert.deepEqual(clusterNamed(t, `outbound|8000|v1|${HTTPBIN}`).outlier_detection?.consecutive_5xx, { value: 2 });
    assert.equal(clusterNamed(t, `outbound|8000|v2|${HTTPBIN}`).outlier_detection, undefined);
    assert.equal(clusterNamed(t, `outbound|8000||${HTTPBIN}`).outlier_detection, undefined);
  });
});

describe('translate: locality failover and weights', () => {
  /** reviews v1, v2 in us-east/zone-a (subzones a1, a2), v3 in us-west/zone-b, a v4 in eu-west. */
  const LOCALITIES = `apiVersion: v1
kind: Service
metadata: {name: reviews}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 9080}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.0.11, labels: {app: reviews, version: v1}, locality: us-east/zone-a/a1}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec: {address: 127.0.0.12, labels: {app: reviews, version: v2}, locality: us-east/zone-a/a2, weight: 3}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v3}
spec: {address: 127.0.0.13, labels: {app: reviews, version: v3}, locality: us-west/zone-b}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v4}
spec: {address: 127.0.0.14, labels: {app: reviews, version: v4}, locality: eu-west/zone-c}
---
`;
  const CLUSTER = `outbound|9080||${REVIEWS}`;

  /** [locality, priority, weight, addresses] per locality group. */
  function layout(cla: ClusterLoadAssignment): [string, number, number, string[]][] {
    return (cla.endpoints ?? []).map((l) => [
      [l.locality?.region, l.locality?.zone, l.locality?.sub_zone].filter((x) => x !== '').join('/'),
      l.priority ?? 0,
      l.load_balancing_weight?.value ?? 0,
      (l.lb_endpoints ?? []).map((e) => e.endpoint?.address?.socket_address?.address ?? ''),
    ]);
  }

  it('does not prioritise without outlier detection: Envoy would never fail over (Istio)', () => {
    const t = translated(LOCALITIES, nodeAt('sidecar', 'us-east/zone-a/a1'));
    assert.deepEqual(layout(assignment(t, CLUSTER)).map(([, p]) => p), [0, 0, 0, 0]);
    assert.equal(clusterNamed(t, CLUSTER).common_lb_config, undefined);
  });

  it('prioritises by proximity to the proxy once outlier detection is on, per proxy locality', () => {
    const mesh = meshOf(LOCALITIES + dr('reviews', '    outlierDetection: {consecutive5xxErrors: 3}\n'));
    assert.deepEqual(layout(assignment(translated(mesh, nodeAt('sidecar', 'us-east/zone-a/a1')), CLUSTER)), [
      ['eu-west/zone-c', 2, 1, ['127.0.0.14']],
      ['us-east/zone-a/a1', 0, 1, ['127.0.0.11']],
      ['us-east/zone-a/a2', 1, 3, ['127.0.0.12']],
      ['us-west/zone-b', 2, 1, ['127.0.0.13']],
    ]);
    // The same mesh (cluster plans are cached per mesh) seen from another locality.
    assert.deepEqual(layout(assignment(translated(mesh, nodeAt('sidecar', 'us-west/zone-b')), CLUSTER)).map(([l, p]) => [l, p]), [
      ['eu-west/zone-c', 1], ['us-east/zone-a/a1', 1], ['us-east/zone-a/a2', 1], ['us-west/zone-b', 0],
    ]);
    assert.deepEqual(layout(assignment(translated(mesh, nodeAt('grpc', 'us-west/zone-b')), CLUSTER)).map(([, p]) => p), [1, 1, 1, 0], 'gRPC clients get priorities too');
    assert.equal(clusterNamed(translated(mesh, nodeAt('sidecar', 'us-west/zone-b')), CLUSTER).common_lb_config?.locality_weighted_lb_config, undefined, 'default failover: no locality weighting');
  });

  it('fails over only to the regions failover rules name; others come last', () => {
    const mesh = meshOf(LOCALITIES + dr('reviews', `    outlierDetection: {consecutive5xxErrors: 3}
    loadBalancer:
      localityLbSetting:
        failover: [{from: us-east, to: eu-west}]
`));
    const t = translated(mesh, nodeAt('sidecar', 'us-east/zone-a/a1'));
    assert.deepEqual(layout(assignment(t, CLUSTER)).map(([l, p]) => [l, p]), [
      ['eu-west/zone-c', 2], ['us-east/zone-a/a1', 0], ['us-east/zone-a/a2', 1], ['us-west/zone-b', 3],
    ]);
    assert.deepEqual(clusterNamed(t, CLUSTER).common_lb_config, { healthy_panic_threshold: { value: 0 }, locality_weighted_lb_config: {} });
  });

  it('orders by failoverPriority labels: the proxy\'s own label values first, then by the first label that differs', () => {
    const mesh = meshOf(LOCALITIES + dr('reviews', `    outlierDetection: {}
    loadBalancer:
      localityLbSetting:
        failoverPriority: [topology.kubernetes.io/region, version]
`));
    const t = translated(mesh, nodeAt('sidecar', 'us-east/zone-a/a1', { app: 'productpage', version: 'v2' }));
    assert.deepEqual(layout(assignment(t, CLUSTER)), [
      ['eu-west/zone-c', 2, 1, ['127.0.0.14']],
      ['us-east/zone-a/a1', 1, 1, ['127.0.0.11']],
      ['us-east/zone-a/a2', 0, 3, ['127.0.0.12']],
      ['us-west/zone-b', 2, 1, ['127.0.0.13']],
    ]);
    const pinned = meshOf(LOCALITIES + dr('reviews', `    outlierDetection: {}
    loadBalancer:
      localityLbSetting:
        failoverPriority: [version=v3]
`));
    assert.deepEqual(layout(assignment(translated(pinned, nodeAt('sidecar', 'us-east/zone-a/a1')), CLUSTER)).map(([l, p]) => [l, p]), [
      ['eu-west/zone-c', 1], ['us-east/zone-a/a1', 1], ['us-east/zone-a/a2', 1], ['us-west/zone-b', 0],
    ]);
  });

  it('splits a locality whose endpoints differ in failoverPriority labels', () => {
    const mesh = meshOf(LOCALITIES.replace('locality: us-east/zone-a/a2', 'locality: us-east/zone-a/a1') + dr('reviews', `    outlierDetection: {}
    loadBalancer: {localityLbSetting: {failoverPriority: [version]}}
`));
    const t = translated(mesh, nodeAt('sidecar', 'us-east/zone-a/a1', { version: 'v2' }));
    assert.deepEqual(layout(assignment(t, CLUSTER)).filter(([l]) => l === 'us-east/zone-a/a1'), [
      ['us-east/zone-a/a1', 0, 3, ['127.0.0.12']],
      ['us-east/zone-a/a1', 1, 1, ['127.0.0.11']],
    ]);
  });

  it('distributes load across localities by the rule for the proxy\'s locality, outlier detection or not', () => {
    const mesh = meshOf(LOCALITIES + dr('reviews', `    loadBalancer:
      localityLbSetting:
        distribute:
        - from: us-east/*
          to: {us-east/zone-a/*: 80, us-west/*: 20}
        - from: us-west/zone-b/*
          to: {us-west/*: 100}
`));
    const east = translated(mesh, nodeAt('sidecar', 'us-east/zone-a/a1'));
    assert.deepEqual(layout(assignment(east, CLUSTER)), [
      ['eu-west/zone-c', 0, 1, []],
      ['us-east/zone-a/a1', 0, 20, ['127.0.0.11']],
      ['us-east/zone-a/a2', 0, 60, ['127.0.0.12']],
      ['us-west/zone-b', 0, 20, ['127.0.0.13']],
    ]);
    assert.deepEqual(clusterNamed(east, CLUSTER).common_lb_config, { locality_weighted_lb_config: {} });
    const west = layout(assignment(translated(mesh, nodeAt('sidecar', 'us-west/zone-b/b1')), CLUSTER));
    assert.deepEqual(west.map(([l, , w, e]) => [l, w, e.length]), [['eu-west/zone-c', 1, 0], ['us-east/zone-a/a1', 1, 0], ['us-east/zone-a/a2', 3, 0], ['us-west/zone-b', 100, 1]]);
    const elsewhere = layout(assignment(translated(mesh, nodeAt('sidecar', 'ap-south/zone-d')), CLUSTER));
    assert.deepEqual(elsewhere.map(([, p, w, e]) => [p, w, e.length]), [[0, 1, 1], [0, 1, 1], [0, 3, 1], [0, 1, 1]], 'no rule for this locality');
  });

  it('turns locality load balancing off with enabled: false', () => {
    const mesh = meshOf(LOCALITIES + dr('reviews', `    outlierDetection: {}
    loadBalancer: {localityLbSetting: {enabled: false, failover: [{from: us-east, to: eu-west}]}}
`));
    const t = translated(mesh, nodeAt('sidecar', 'us-east/zone-a/a1'));
    assert.deepEqual(layout(assignment(t, CLUSTER)).map(([, p]) => p), [0, 0, 0, 0]);
    assert.deepEqual(clusterNamed(t, CLUSTER).common_lb_config, { healthy_panic_threshold: { value: 0 } });
  });

  it('keeps routes and clusters the same for every locality: only endpoints differ', () => {
    const mesh = meshOf(LOCALITIES + dr('reviews', '    outlierDetection: {}\n'));
    const a = translated(mesh, nodeAt('sidecar', 'us-east/zone-a/a1'));
    const b = translated(mesh, nodeAt('sidecar', 'eu-west/zone-c'));
    assert.deepEqual(clusterNamed(a, CLUSTER), clusterNamed(b, CLUSTER));
    assert.deepEqual(routesFor(a, REVIEWS, 9080), routesFor(b, REVIEWS, 9080));
    assert.notDeepEqual(assignment(a, CLUSTER), assignment(b, CLUSTER));
  });
});

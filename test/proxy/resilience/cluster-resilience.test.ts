/**
 * Outlier detection, circuit breakers, retry budgets and pool settings at the level of
 * the proxy's compiled configuration: Istio YAML translated by the control plane, sent
 * through the xDS wire encoding, built by RuntimeConfig, on a fake clock.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { translate } from '../../../src/control-plane/translate/index.js';
import { Logger } from '../../../src/core/log.js';
import { clusterProblem, type ClusterRuntime, HTTP_PROTOCOL_OPTIONS } from '../../../src/proxy/config/clusters.js';
import { ENVOY_DEFAULT_IDLE_TIMEOUT_MS } from '../../../src/proxy/config/pool-settings.js';
import { type ConfigSource, RuntimeConfig } from '../../../src/proxy/config/runtime.js';
import { clustersText } from '../../../src/proxy/resilience/admin-output.js';
import { LoadBalancerRegistry, registerBuiltinLoadBalancers } from '../../../src/proxy/upstream/lb/registry.js';
import { decodeAny, encodeResource } from '../../../src/xds/any.js';
import type { Cluster__Output } from '../../../src/xds/generated/envoy/config/cluster/v3/Cluster.js';
import { TYPE_URLS } from '../../../src/xds/type-urls.js';
import { meshOf, node } from '../../control-plane/mesh-fixture.js';
import { FakeClock } from './fake-clock.js';

const HOST = 'web.default.svc.cluster.local';
const WEB = `outbound|8080||${HOST}`;
const WEB_V1 = `outbound|8080|v1|${HOST}`;
const POLICY = `
    connectionPool:
      tcp: {maxConnections: 10, maxConnectionDuration: 5m, tcpKeepalive: {time: 60s, interval: 10s, probes: 3}}
      http: {http1MaxPendingRequests: 5, http2MaxRequests: 20, maxRetries: 2, idleTimeout: 30s, maxRequestsPerConnection: 100}
    outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50}
`;

/** `web` with `n` endpoints on 127.0.0.1:9000+i (even ones v1), and a DestinationRule with `policy`. */
function yaml(n: number, policy: string | null): string {
  const entries = Array.from({ length: n }, (_, i) => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web-${i}}
spec: {address: 127.0.0.1, ports: {http: ${9000 + i}}, labels: {app: web, version: v${(i % 2) + 1}}}
`).join('');
  const dr = policy === null ? '' : `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web}
spec:
  host: web
  trafficPolicy:${policy}  subsets: [{name: v1, labels: {version: v1}}]
`;
  return `apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{name: http, port: 8080}]}
${entries}${dr}`;
}

/** Through the wire: what the proxy's xDS client hands over. */
function wire<T>(typeUrl: string, resource: object): T {
  const encoded = encodeResource(typeUrl, resource);
  assert.ok(encoded.ok, encoded.ok ? '' : encoded.error);
  const decoded = decodeAny<T>(encoded.any);
  assert.ok(decoded.ok);
  return decoded.value;
}

/** The resources a sidecar gets for `mesh`, as a ConfigSource (services only). */
function source(mesh: string): ConfigSource {
  const t = translate(meshOf(mesh), node('sidecar'));
  const clusters = new Map(t.clusters.filter((c) => c.name?.startsWith('outbound|8080')).map((c) => [c.name as string, wire(TYPE_URLS.CLUSTER, c)]));
  const endpoints = new Map(t.endpoints.map((e) => [e.cluster_name as string, wire(TYPE_URLS.ENDPOINT, e)]));
  return { resources: (type) => (type === TYPE_URLS.CLUSTER ? clusters : type === TYPE_URLS.ENDPOINT ? endpoints : new Map()) };
}

function setup(): { config: RuntimeConfig; clock: FakeClock; cluster: (name: string) => ClusterRuntime } {
  const lbs = new LoadBalancerRegistry();
  registerBuiltinLoadBalancers(lbs);
  const clock = new FakeClock();
  const config = new RuntimeConfig(lbs, new Logger({ level: 'error' }), { clock, random: () => 0 });
  const cluster = (name: string): ClusterRuntime => {
    const c = config.current.clusters.get(name);
    assert.ok(c !== undefined, name);
    return c;
  };
  return { config, clock, cluster };
}

/** The endpoint ids a cluster's current picker chooses over many picks. */
function picked(c: ClusterRuntime): Set<string> {
  const seen = new Set<string>();
  for (let i = 0; i < 2_000; i++) {
    const e = c.picker.pick({ hash: undefined });
    if (e !== undefined) seen.add(e.id);
  }
  return seen;
}

const ids = (...ports: number[]): Set<string> => new Set(ports.map((p) => `127.0.0.1:${p}`));

describe('cluster resilience in the compiled configuration', () => {
  it('reads the DestinationRule\'s connection pool, circuit breakers, retry budget and panic threshold', () => {
    const { config, cluster } = setup();
    config.update(source(yaml(4, POLICY)));
    const c = cluster(WEB);
    assert.deepEqual(c.pool, { idleTimeoutMs: 30_000, maxRequestsPerConnection: 100, maxConnectionDurationMs: 300_000, tcpKeepalive: { idleS: 60, intervalS: 10, probes: 3 } });
    assert.deepEqual(c.breaker.thresholds, { maxConnections: 10, maxPendingRequests: 5, maxRequests: 20, maxRetries: 2, retryBudget: null, trackRemaining: true });
    assert.deepEqual(c.retryBudget.settings, { ratio: 0.2, minRetriesPerSecond: 10, ttlSeconds: 10 });
    assert.equal(c.panicThresholdPercent, 0);
    assert.equal(c.outlier?.settings.consecutive5xx, 2);
    assert.notEqual(cluster(WEB_V1).outlier, c.outlier, 'one detector per cluster, as in Envoy');
    config.close();
  });

  it('without a DestinationRule: no outlier detection, Istio\'s unlimited breakers, Envoy\'s pool defaults', () => {
    const { config, cluster } = setup();
    config.update(source(yaml(2, null)));
    const c = cluster(WEB);
    assert.equal(c.outlier, null);
    assert.equal(c.breaker.thresholds.maxRequests, 4_294_967_295);
    assert.deepEqual(c.pool, { idleTimeoutMs: ENVOY_DEFAULT_IDLE_TIMEOUT_MS, maxRequestsPerConnection: 0, maxConnectionDurationMs: 0, tcpKeepalive: null });
    config.update(source(yaml(2, '\n    connectionPool: {http: {idleTimeout: 0s}}\n')));
    assert.equal(cluster(WEB).pool.idleTimeoutMs, 0, 'an explicit 0s turns the idle timeout off');
    config.close();
  });

  it('an ejected host gets no new picks, in its cluster only, until a sweep returns it', () => {
    const { config, clock, cluster } = setup();
    config.update(source(yaml(4, POLICY)));
    const c = cluster(WEB);
    assert.deepEqual(picked(c), ids(9000, 9001, 9002, 9003));
    c.outlier?.report('127.0.0.1:9000', 503);
    assert.deepEqual(picked(c), ids(9000, 9001, 9002, 9003), 'one 5xx is not enough');
    c.outlier?.report('127.0.0.1:9000', 503);
    assert.equal(cluster(WEB), c, 'the cluster is the same object; its picker was swapped');
    assert.deepEqual(picked(c), ids(9001, 9002, 9003));
    assert.deepEqual(picked(cluster(WEB_V1)), ids(9000, 9002), 'the subset cluster has its own detector');
    clock.advance(29_000);
    assert.deepEqual(picked(c), ids(9001, 9002, 9003));
    clock.advance(1_000);
    assert.deepEqual(picked(c), ids(9000, 9001, 9002, 9003), 'back after base_ejection_time');
    config.close();
  });

  it('keeps ejections, breaker counts and the retry budget when the cluster is rebuilt', () => {
    const { config, clock, cluster } = setup();
    config.update(source(yaml(4, POLICY)));
    const before = cluster(WEB);
    before.outlier?.report('127.0.0.1:9001', 500);
    before.outlier?.report('127.0.0.1:9001', 500);
    assert.equal(before.breaker.tryRequest(), true);
    before.retryBudget.request();
    // A new endpoint: new CDS and EDS resources, a new ClusterRuntime.
    config.update(source(yaml(5, POLICY)));
    const after = cluster(WEB);
    assert.notEqual(after, before);
    assert.equal(after.outlier, before.outlier);
    assert.equal(after.breaker, before.breaker);
    assert.equal(after.breaker.requests, 1, 'the request in flight is still counted');
    assert.equal(after.retryBudget, before.retryBudget, 'same settings, same budget');
    assert.deepEqual(picked(after), ids(9000, 9002, 9003, 9004), 'still ejected; the new host is in');
    // Returns are applied to the newest build.
    clock.advance(30_000);
    assert.deepEqual(picked(after), ids(9000, 9001, 9002, 9003, 9004));
    config.close();
  });

  it('changed thresholds apply to the same breaker; a host that leaves frees its ejection', () => {
    const { config, cluster } = setup();
    config.update(source(yaml(4, POLICY)));
    const c = cluster(WEB);
    for (const port of [9002, 9003, 9001]) for (let i = 0; i < 2; i++) c.outlier?.report(`127.0.0.1:${port}`, 500);
    assert.deepEqual(picked(c), ids(9000, 9001), 'at most 50% ejected: the third 5xx run overflowed');
    assert.equal(c.outlier?.overflow, 1);
    config.update(source(yaml(3, POLICY.replace('http2MaxRequests: 20', 'http2MaxRequests: 1'))));
    const after = cluster(WEB);
    assert.equal(after.breaker, c.breaker);
    assert.equal(after.breaker.thresholds.maxRequests, 1);
    assert.deepEqual([...(after.outlier?.ejected ?? [])], ['127.0.0.1:9002'], '9003 left the cluster');
    assert.deepEqual(picked(after), ids(9000, 9001));
    config.close();
  });

  it('dropping outlier detection returns every host at once and stops its timer; a removed cluster forgets its state', () => {
    const { config, clock, cluster } = setup();
    config.update(source(yaml(4, POLICY)));
    assert.equal(clock.timers, 2, 'one sweep timer per cluster with outlier detection');
    cluster(WEB).outlier?.report('127.0.0.1:9003', 500);
    cluster(WEB).outlier?.report('127.0.0.1:9003', 500);
    assert.deepEqual(picked(cluster(WEB)), ids(9000, 9001, 9002));
    config.update(source(yaml(4, '\n    connectionPool: {http: {maxRetries: 1}}\n')));
    assert.equal(cluster(WEB).outlier, null);
    assert.deepEqual(picked(cluster(WEB)), ids(9000, 9001, 9002, 9003));
    assert.equal(clock.timers, 0);
    config.update(source(yaml(4, POLICY)));
    assert.equal(clock.timers, 2);
    config.update({ resources: () => new Map() });
    assert.equal(config.upstream.resilience.get(WEB), undefined);
    assert.equal(clock.timers, 0, 'timers stop with their clusters');
    config.close();
  });

  it('shows the ejected host in the /clusters text', () => {
    const { config, cluster } = setup();
    config.update(source(yaml(4, POLICY)));
    cluster(WEB).outlier?.report('127.0.0.1:9002', 502);
    cluster(WEB).outlier?.report('127.0.0.1:9002', 502);
    const lines = clustersText(config.current.clusters, (id) => config.upstream.state(id)).split('\n');
    assert.ok(lines.includes(`${WEB}::127.0.0.1:9002::health_flags::/failed_outlier_check`), lines.join('\n'));
    assert.ok(lines.includes(`${WEB}::127.0.0.1:9002::outlier::ejections::1`));
    assert.ok(lines.includes(`${WEB}::127.0.0.1:9001::health_flags::healthy`));
    assert.ok(lines.includes(`${WEB_V1}::127.0.0.1:9002::health_flags::healthy`), 'not ejected in the subset cluster');
    assert.ok(lines.includes(`${WEB}::outlier::ejections_active::1`));
    assert.ok(lines.includes(`${WEB}::default_priority::max_requests::20`));
    assert.ok(lines.includes(`${WEB}::circuit_breakers::upstream_rq_pending_overflow::0`));
    assert.ok(lines.includes(`${WEB}::retry_budget::ratio::0.2`));
    config.close();
  });
});

describe('cluster validation', () => {
  const lbs = new LoadBalancerRegistry();
  registerBuiltinLoadBalancers(lbs);
  const base = { name: 'c', type: 'EDS', lb_policy: 'ROUND_ROBIN' };

  it('NACKs outlier detection Envoy would reject', () => {
    const c = { ...base, outlier_detection: { base_ejection_time: { seconds: '60' }, max_ejection_time: { seconds: '10' } } } as unknown as Cluster__Output;
    assert.match(clusterProblem(c, lbs) ?? '', /max_ejection_time cannot be smaller than base_ejection_time/);
  });

  it('NACKs common HTTP protocol options that do not decode', () => {
    // HttpProtocolOptions { common_http_protocol_options (1) { idle_timeout (1): truncated } }
    const any = { type_url: `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`, value: Buffer.from([0x0a, 0x03, 0x0a, 0x05, 0x08]) };
    const c = { ...base, typed_extension_protocol_options: { [HTTP_PROTOCOL_OPTIONS]: any } } as unknown as Cluster__Output;
    assert.match(clusterProblem(c, lbs) ?? '', /cannot be decoded/);
  });
});

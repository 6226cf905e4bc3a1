/**
 * Resilience on routes, as Istio writes it: timeouts, retries, fault injection and
 * mirroring — with Istio's own Bookinfo samples and the task pages' inline examples.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { translate } from '../../src/control-plane/translate/index.js';
import { decodeAny } from '../../src/xds/any.js';
import { encodeTranslation } from '../../src/control-plane/xds-server/encode.js';
import type { RetryPolicy } from '../../src/xds/generated/envoy/config/route/v3/RetryPolicy.js';
import type { RouteConfiguration__Output } from '../../src/xds/generated/envoy/config/route/v3/RouteConfiguration.js';
import { TYPE_URLS } from '../../src/xds/type-urls.js';
import { meshOf, node } from './mesh-fixture.js';
import { bookinfo, decodeOpaque, httpbin, routesFor, translated } from './resilience-fixture.js';

const RATINGS = 'ratings.default.svc.cluster.local';
const REVIEWS = 'reviews.default.svc.cluster.local';
const HTTPBIN = 'httpbin.default.svc.cluster.local';
const NO_TIMEOUT = { seconds: 0, nanos: 0 };

/** Istio's retry policy for routes without `retries` (retry.go DefaultPolicy). */
const ISTIO_DEFAULT_RETRY = {
  retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
  num_retries: { value: 2 },
  retry_host_predicate: ['envoy.retry_host_predicates.previous_hosts'],
  host_selection_retry_max_attempts: 5,
  retry_back_off: { base_interval: { seconds: 0, nanos: 25_000_000 } },
};

/** A retry policy with its predicates shown by name (their configs are opaque Anys). */
function retry(policy: RetryPolicy | null | undefined): Record<string, unknown> | undefined {
  if (policy == null) return undefined;
  return { ...policy, retry_host_predicate: policy.retry_host_predicate?.map((p) => p.name) };
}

function vs(host: string, http: string): string {
  return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: ${host}}
spec:
  hosts: [${host}]
  http:
${http}`;
}

describe('translate: timeouts', () => {
  it('sets no route timeout by default and lets gRPC clients set theirs, uncapped (Istio setTimeout)', () => {
    const t = translated(bookinfo(), node('sidecar'));
    const [route] = routesFor(t, RATINGS, 9080);
    assert.deepEqual(route?.route?.timeout, NO_TIMEOUT);
    assert.deepEqual(route?.route?.max_stream_duration, { grpc_timeout_header_max: NO_TIMEOUT });
  });

  it('applies the request-timeouts task: reviews timeout 0.5s, also the cap on grpc-timeout', () => {
    const yaml = bookinfo('destination-rule-all.yaml') + '\n---\n' + vs('reviews', `  - route: [{destination: {host: reviews, subset: v2}}]
    timeout: 0.5s
`);
    const [route] = routesFor(translated(yaml, node('sidecar')), REVIEWS, 9080);
    assert.deepEqual(route?.route?.timeout, { seconds: 0, nanos: 500_000_000 });
    assert.deepEqual(route?.route?.max_stream_duration, { grpc_timeout_header_max: { seconds: 0, nanos: 500_000_000 } });
    const [grpcRoute] = routesFor(translated(yaml, node('grpc')), REVIEWS, 9080);
    assert.equal(grpcRoute?.route?.timeout, undefined, 'gRPC reads max_stream_duration only');
    assert.deepEqual(grpcRoute?.route?.max_stream_duration, { max_stream_duration: { seconds: 0, nanos: 500_000_000 } });
  });

  it('gives traffic to unknown hosts and to the workload itself no timeouts, and inbound retries of resets (Istio 1.24+)', () => {
    const t = translated(bookinfo(), node('sidecar', 'default', { app: 'reviews', version: 'v1' }));
    const allowAny = t.routes.find((r) => r.name === '9080')?.virtual_hosts?.find((v) => v.name === 'allow_any')?.routes?.[0];
    assert.deepEqual(allowAny?.route, { cluster: 'PassthroughCluster', timeout: NO_TIMEOUT, max_stream_duration: { grpc_timeout_header_max: NO_TIMEOUT } });
    const inbound = t.listeners.find((l) => l.name === 'virtualInbound');
    const hcm = inbound?.filter_chains?.[0]?.filters?.[0]?.typed_config as unknown as { route_config: RouteConfiguration__Output };
    assert.deepEqual(hcm.route_config.virtual_hosts[0]?.routes[0]?.route, {
      cluster: 'inbound|9080||',
      timeout: NO_TIMEOUT,
      max_stream_duration: { max_stream_duration: NO_TIMEOUT, grpc_timeout_header_max: NO_TIMEOUT },
      retry_policy: { retry_on: 'reset-before-request', num_retries: { value: 2 } },
    });
  });
});

describe('translate: retries', () => {
  it("gives every route without retries Istio's default policy: sidecars, gateways and gRPC clients", () => {
    const yaml = bookinfo('destination-rule-all.yaml', 'virtual-service-all-v1.yaml', 'bookinfo-gateway.yaml');
    for (const kind of ['sidecar', 'grpc'] as const) {
      const t = translated(yaml, node(kind));
      for (const host of ['productpage', 'reviews', 'ratings', 'details']) {
        const routes = routesFor(t, `${host}.default.svc.cluster.local`, 9080);
        assert.deepEqual(routes.map((r) => retry(r.route?.retry_policy)), [ISTIO_DEFAULT_RETRY], `${kind} ${host}`);
      }
    }
    const gateway = translated(yaml, node('router', 'default', { istio: 'ingressgateway' }));
    const routes = gateway.routes.find((r) => r.name === 'http.8080')?.virtual_hosts?.[0]?.routes ?? [];
    assert.equal(routes.length, 5);
    for (const r of routes) assert.deepEqual(retry(r.route?.retry_policy), ISTIO_DEFAULT_RETRY);
  });

  it('translates retries: attempts, retryOn with bare status codes, perTryTimeout, backoff', () => {
    const [route] = routesFor(translated(bookinfo() + '\n---\n' + vs('ratings', `  - route: [{destination: {host: ratings}}]
    retries: {attempts: 3, perTryTimeout: 2s, retryOn: "gateway-error,connect-failure,503,409", backoff: 100ms}
`), node('sidecar')), RATINGS, 9080);
    assert.deepEqual(retry(route?.route?.retry_policy), {
      retry_on: 'gateway-error,connect-failure,retriable-status-codes',
      retriable_status_codes: [503, 409],
      num_retries: { value: 3 },
      per_try_timeout: { seconds: 2, nanos: 0 },
      retry_host_predicate: ['envoy.retry_host_predicates.previous_hosts'],
      host_selection_retry_max_attempts: 5,
      retry_back_off: { base_interval: { seconds: 0, nanos: 100_000_000 } },
    });
  });

  it('turns retries off with attempts 0, and honours retryIgnorePreviousHosts: false', () => {
    const routes = routesFor(translated(bookinfo() + '\n---\n' + vs('ratings', `  - match: [{uri: {prefix: /none}}]
    route: [{destination: {host: ratings}}]
    retries: {attempts: 0}
  - route: [{destination: {host: ratings}}]
    retries: {attempts: 1, retryIgnorePreviousHosts: false}
`), node('sidecar')), RATINGS, 9080);
    assert.equal(routes[0]?.route?.retry_policy, undefined);
    assert.deepEqual(routes[1]?.route?.retry_policy?.retry_host_predicate, []);
    assert.deepEqual(routes[1]?.route?.retry_policy?.retry_on, ISTIO_DEFAULT_RETRY.retry_on, 'conditions default when not given');
  });

  it('leaves the previous-hosts predicate out for a route to a consistent-hash destination, not for the default route', () => {
    const dr = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
`;
    const defaultRoute = routesFor(translated(bookinfo() + '\n---\n' + dr, node('sidecar')), RATINGS, 9080)[0];
    assert.deepEqual(retry(defaultRoute?.route?.retry_policy), ISTIO_DEFAULT_RETRY, 'Istio BuildDefaultHTTPOutboundRoute: no hash exemption');
    const [route] = routesFor(translated(bookinfo() + '\n---\n' + dr + '---\n' + vs('ratings', '  - route: [{destination: {host: ratings}}]\n'), node('sidecar')), RATINGS, 9080);
    assert.deepEqual(route?.route?.hash_policy, [{ header: { header_name: 'x-user' } }]);
    assert.deepEqual(retry(route?.route?.retry_policy), { ...ISTIO_DEFAULT_RETRY, retry_host_predicate: [] });
  });

  it('moves retries to other localities with retryRemoteLocalities (previous_priorities, update_frequency 2)', () => {
    const [route] = routesFor(translated(bookinfo() + '\n---\n' + vs('ratings', `  - route: [{destination: {host: ratings}}]
    retries: {attempts: 4, retryRemoteLocalities: true}
`), node('sidecar')), RATINGS, 9080);
    const priority = route?.route?.retry_policy?.retry_priority;
    assert.equal(priority?.name, 'envoy.retry_priorities.previous_priorities');
    assert.deepEqual(decodeOpaque(priority?.typed_config, 'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto'), { update_frequency: 2 });
    const predicate = route?.route?.retry_policy?.retry_host_predicate?.[0];
    assert.deepEqual(decodeOpaque(predicate?.typed_config, 'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto'), {});
    assert.equal((predicate?.typed_config as { type_url: string }).type_url, 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate');
  });
});

describe('translate: fault injection', () => {
  const FAULT = 'envoy.filters.http.fault';
  const faultOf = (r: { typed_per_filter_config?: Record<string, unknown> | null } | undefined) => {
    const { '@type': type, ...config } = (r?.typed_per_filter_config?.[FAULT] ?? {}) as Record<string, unknown>;
    assert.equal(type, TYPE_URLS.FAULT);
    return config;
  };

  it('delays jason by 7s (virtual-service-ratings-test-delay.yaml); other users get no fault', () => {
    const yaml = bookinfo('destination-rule-all.yaml', 'virtual-service-ratings-test-delay.yaml');
    for (const kind of ['sidecar', 'grpc'] as const) {
      const routes = routesFor(translated(yaml, node(kind)), RATINGS, 9080);
      assert.deepEqual(routes[0]?.match?.headers?.[0]?.name, 'end-user');
      assert.deepEqual(faultOf(routes[0]), { delay: { fixed_delay: { seconds: 7, nanos: 0 }, percentage: { numerator: 1_000_000, denominator: 'MILLION' } } }, kind);
      assert.equal(routes[1]?.typed_per_filter_config, undefined);
    }
  });

  it('aborts jason with 500 (virtual-service-ratings-test-abort.yaml) and every details call with 555', () => {
    const t = translated(bookinfo('virtual-service-ratings-test-abort.yaml', 'fault-injection-details-v1.yaml'), node('sidecar'));
    assert.deepEqual(faultOf(routesFor(t, RATINGS, 9080)[0]), { abort: { http_status: 500, percentage: { numerator: 1_000_000, denominator: 'MILLION' } } });
    assert.deepEqual(faultOf(routesFor(t, 'details.default.svc.cluster.local', 9080)[0]), { abort: { http_status: 555, percentage: { numerator: 1_000_000, denominator: 'MILLION' } } });
  });

  it('translates gRPC status aborts, fractional and deprecated integer percentages, and a missing percentage as 0', () => {
    const [route] = routesFor(translated(bookinfo() + '\n---\n' + vs('ratings', `  - route: [{destination: {host: ratings}}]
    fault:
      delay: {fixedDelay: 1.5s, percent: 20}
      abort: {grpcStatus: UNAVAILABLE}
`), node('grpc')), RATINGS, 9080);
    assert.deepEqual(faultOf(route), {
      delay: { fixed_delay: { seconds: 1, nanos: 500_000_000 }, percentage: { numerator: 200_000, denominator: 'MILLION' } },
      abort: { grpc_status: 14, percentage: { numerator: 0, denominator: 'MILLION' } },
    });
    const [fine] = routesFor(translated(bookinfo() + '\n---\n' + vs('ratings', `  - route: [{destination: {host: ratings}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 0.57}}}
`), node('sidecar')), RATINGS, 9080);
    assert.deepEqual(faultOf(fine), { abort: { http_status: 503, percentage: { numerator: 5_700, denominator: 'MILLION' } } }, '0.57% is 5700 ppm');
  });

  it('puts the fault filter before CORS and the router in every HTTP connection manager', () => {
    const names = (hcm: unknown) => (hcm as { http_filters: { name: string }[] }).http_filters.map((f) => f.name);
    const yaml = bookinfo('bookinfo-gateway.yaml');
    const sidecar = translated(yaml, node('sidecar', 'default', { app: 'reviews' }));
    const hcms = sidecar.listeners.flatMap((l) => l.filter_chains ?? []).flatMap((c) => c.filters ?? []).filter((f) => f.name === 'envoy.filters.network.http_connection_manager');
    assert.ok(hcms.length >= 2, 'outbound and inbound');
    for (const f of hcms) assert.deepEqual(names(f.typed_config), [FAULT, 'envoy.filters.http.cors', 'envoy.filters.http.router']);
    const gateway = translated(yaml, node('router', 'default', { istio: 'ingressgateway' }));
    assert.deepEqual(names(gateway.listeners[0]?.filter_chains?.[0]?.filters?.[0]?.typed_config), [FAULT, 'envoy.filters.http.cors', 'envoy.filters.http.router']);
    const grpc = translated(yaml, node('grpc'));
    assert.deepEqual(names(grpc.listeners[0]?.api_listener?.api_listener), [FAULT, 'envoy.filters.http.router']);
  });

  it('encodes the per-route fault config as an HTTPFault Any that decodes back', () => {
    const t = translate(meshOf(bookinfo('virtual-service-ratings-test-abort.yaml')), node('sidecar'));
    const { snapshot } = encodeTranslation(t);
    const any = snapshot.types.get(TYPE_URLS.ROUTE)?.resources.get('9080')?.any;
    assert.ok(any !== undefined);
    const rc = decodeAny<RouteConfiguration__Output>(any, TYPE_URLS.ROUTE);
    assert.ok(rc.ok);
    const route = rc.value.virtual_hosts.find((v) => v.name === `${RATINGS}:9080`)?.routes[0];
    const fault = route?.typed_per_filter_config[FAULT] as unknown as { '@type': string; abort: { http_status: number; percentage: { numerator: number } } };
    assert.equal(fault['@type'], TYPE_URLS.FAULT);
    assert.equal(fault.abort.http_status, 500);
    assert.equal(fault.abort.percentage.numerator, 1_000_000);
  });
});

describe('translate: mirroring', () => {
  const MIRROR_TASK = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin}
spec:
  host: httpbin
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
---
`;

  it('mirrors all traffic to v2 as in the mirroring task (mirrorPercentage 100)', () => {
    const t = translated(httpbin(MIRROR_TASK + vs('httpbin', `  - route: [{destination: {host: httpbin, subset: v1}, weight: 100}]
    mirror: {host: httpbin, subset: v2}
    mirrorPercentage: {value: 100.0}
`)), node('sidecar'));
    const [route] = routesFor(t, HTTPBIN, 8000);
    assert.equal(route?.route?.cluster, `outbound|8000|v1|${HTTPBIN}`);
    assert.deepEqual(route?.route?.request_mirror_policies, [
      { cluster: `outbound|8000|v2|${HTTPBIN}`, runtime_fraction: { default_value: { numerator: 100, denominator: 'HUNDRED' } }, trace_sampled: { value: false } },
    ]);
  });

  it('mirrors everything without a percentage, nothing at 0%, and each of mirrors[] at its own percentage', () => {
    const routes = routesFor(translated(httpbin(MIRROR_TASK + vs('httpbin', `  - match: [{uri: {prefix: /all}}]
    route: [{destination: {host: httpbin, subset: v1}}]
    mirror: {host: httpbin, subset: v2}
  - match: [{uri: {prefix: /none}}]
    route: [{destination: {host: httpbin, subset: v1}}]
    mirror: {host: httpbin, subset: v2}
    mirrorPercentage: {value: 0}
  - match: [{uri: {prefix: /old}}]
    route: [{destination: {host: httpbin, subset: v1}}]
    mirror: {host: httpbin, subset: v2}
    mirrorPercent: 25
  - route: [{destination: {host: httpbin, subset: v1}}]
    mirrors:
    - {destination: {host: httpbin, subset: v2}, percentage: {value: 12.5}}
    - {destination: {host: httpbin, subset: v1}}
`)), node('sidecar')), HTTPBIN, 8000);
    const fractions = routes.map((r) => r.route?.request_mirror_policies?.map((m) => [m.cluster, m.runtime_fraction?.default_value]));
    assert.deepEqual(fractions, [
      [[`outbound|8000|v2|${HTTPBIN}`, { numerator: 100, denominator: 'HUNDRED' }]],
      undefined,
      [[`outbound|8000|v2|${HTTPBIN}`, { numerator: 250_000, denominator: 'MILLION' }]],
      [[`outbound|8000|v2|${HTTPBIN}`, { numerator: 125_000, denominator: 'MILLION' }], [`outbound|8000|v1|${HTTPBIN}`, { numerator: 100, denominator: 'HUNDRED' }]],
    ]);
  });

  it('reports a mirror to a subset no DestinationRule defines as a missing cluster', () => {
    const t = translate(meshOf(httpbin(vs('httpbin', `  - route: [{destination: {host: httpbin}}]
    mirror: {host: httpbin, subset: v9}
`))), node('sidecar'));
    assert.deepEqual(t.missingClusters, [`outbound|8000|v9|${HTTPBIN}`]);
  });
});

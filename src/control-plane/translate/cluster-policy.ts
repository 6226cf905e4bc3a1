/**
 * The resilience half of an outbound cluster, from the DestinationRule traffic policy
 * that applies to it (traffic-policy.ts), as Istio's `applyTrafficPolicy`
 * (cluster_traffic_policy.go) writes it:
 *
 * - `connect_timeout` (tcp.connectTimeout, default 10 s);
 * - `circuit_breakers.thresholds[0]`: tcp.maxConnections, http.http1MaxPendingRequests,
 *   http.http2MaxRequests, http.maxRetries — each unlimited (MaxUint32) unless set to a
 *   positive value, with `track_remaining` — and `retry_budget` from `retryBudget`;
 * - `upstream_connection_options.tcp_keepalive` from tcp.tcpKeepalive;
 * - `outlier_detection` with its panic threshold (outlier-detection.ts), and
 *   `locality_weighted_lb_config` when locality rules need it (locality-lb.ts);
 * - `metadata` with Trellis's rate-based retry budget (retry-budget.ts).
 *
 * Idle timeout, connection lifetime and requests per connection go in the cluster's
 * `HttpProtocolOptions` (clusters.ts `httpProtocolOptions`), from `commonHttpSettings`.
 */
import type { Cluster } from '../../xds/generated/envoy/config/cluster/v3/Cluster.js';
import type { _envoy_config_cluster_v3_CircuitBreakers_Thresholds as Thresholds } from '../../xds/generated/envoy/config/cluster/v3/CircuitBreakers.js';
import type { TcpKeepalive } from '../../xds/generated/envoy/config/core/v3/TcpKeepalive.js';
import { duration, MAX_UINT32 } from './envoy.js';
import { type LocalityLbPlan, localityWeighted } from './locality-lb.js';
import type { MeshConfig } from './mesh.js';
import { outlierDetection, panicThresholdPercent } from './outlier-detection.js';
import { retryBudgetMetadata } from './retry-budget.js';
import type { PortPolicy } from './traffic-policy.js';

/** Istio's MeshConfig connectTimeout default. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Envoy's RetryBudget defaults, which are also the Istio API's. */
const DEFAULT_RETRY_BUDGET_PERCENT = 20;
const DEFAULT_MIN_RETRY_CONCURRENCY = 3;

type ConnectionPool = NonNullable<PortPolicy['connectionPool']>;

/** Connection settings Envoy reads from `HttpProtocolOptions.common_http_protocol_options`. */
export interface CommonHttpSettings {
  /** `idle_timeout`; 0 turns it off. Envoy's default when absent is 1 h. */
  readonly idleTimeoutMs?: number;
  readonly maxConnectionDurationMs?: number;
  /** `max_requests_per_connection`; 0 or absent means unlimited. */
  readonly maxRequestsPerConnection?: number;
}

/** Istio: http.idleTimeout, else tcp.idleTimeout; the connection lifetime from tcp. */
export function commonHttpSettings(pool: ConnectionPool | undefined): CommonHttpSettings {
  const out: { -readonly [K in keyof CommonHttpSettings]: CommonHttpSettings[K] } = {};
  const idle = pool?.http?.idleTimeout ?? pool?.tcp?.idleTimeout;
  if (idle !== undefined) out.idleTimeoutMs = idle;
  if (pool?.tcp?.maxConnectionDuration !== undefined) out.maxConnectionDurationMs = pool.tcp.maxConnectionDuration;
  if (pool?.http?.maxRequestsPerConnection !== undefined) out.maxRequestsPerConnection = pool.http.maxRequestsPerConnection;
  return out;
}

/** Istio treats 0 as unset for the thresholds ("can't distinguish unset from 0"). */
function limit(value: number | undefined): { value: number } {
  return { value: value !== undefined && value > 0 ? value : MAX_UINT32 };
}

function thresholds(policy: PortPolicy | undefined): Thresholds {
  const pool = policy?.connectionPool;
  const out: Thresholds = {
    max_connections: limit(pool?.tcp?.maxConnections),
    max_pending_requests: limit(pool?.http?.http1MaxPendingRequests),
    max_requests: limit(pool?.http?.http2MaxRequests),
    max_retries: limit(pool?.http?.maxRetries),
    track_remaining: true,
  };
  const budget = policy?.retryBudget;
  if (budget !== undefined) {
    out.retry_budget = {
      budget_percent: { value: budget.percent ?? DEFAULT_RETRY_BUDGET_PERCENT },
      min_retry_concurrency: { value: budget.minRetryConcurrency ?? DEFAULT_MIN_RETRY_CONCURRENCY },
    };
  }
  return out;
}

/**
 * Istio's thresholds for clusters without a DestinationRule of their own (inbound,
 * passthrough): every limit MaxUint32 (`getDefaultCircuitBreakerThresholds`), so Envoy's
 * own defaults (1,024 connections, 3 retries in flight) never apply.
 */
export function defaultCircuitBreakers(): NonNullable<Cluster['circuit_breakers']> {
  return { thresholds: [thresholds(undefined)] };
}

/**
 * Keepalive probes, idle time and interval; durations in whole seconds, as Envoy takes
 * them. An empty block still turns SO_KEEPALIVE on with the OS defaults.
 */
function tcpKeepalive(k: NonNullable<NonNullable<ConnectionPool['tcp']>['tcpKeepalive']>): TcpKeepalive {
  const out: TcpKeepalive = {};
  if (k.probes !== undefined && k.probes > 0) out.keepalive_probes = { value: k.probes };
  if (k.time !== undefined) out.keepalive_time = { value: Math.floor(k.time / 1000) };
  if (k.interval !== undefined) out.keepalive_interval = { value: Math.floor(k.interval / 1000) };
  return out;
}

/**
 * The cluster fields above for one policy. Proxyless gRPC reads only `max_requests` of
 * the circuit breakers, and its own default (1024 concurrent requests) is safer than
 * unlimited, so it gets thresholds only when `http2MaxRequests` is set (Istio's gRPC
 * generator sends none).
 */
export function clusterPolicy(policy: PortPolicy | undefined, locality: LocalityLbPlan | undefined, mesh: MeshConfig, grpc: boolean): Partial<Cluster> {
  const tcp = policy?.connectionPool?.tcp;
  const out: Partial<Cluster> = {
    connect_timeout: duration(tcp?.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT_MS),
    metadata: retryBudgetMetadata(mesh.retryBudget),
  };
  if (!grpc || (policy?.connectionPool?.http?.http2MaxRequests ?? 0) > 0) out.circuit_breakers = { thresholds: [thresholds(policy)] };
  if (tcp?.tcpKeepalive !== undefined) out.upstream_connection_options = { tcp_keepalive: tcpKeepalive(tcp.tcpKeepalive) };
  const od = policy?.outlierDetection;
  const common: NonNullable<Cluster['common_lb_config']> = {};
  if (od !== undefined) {
    out.outlier_detection = outlierDetection(od);
    common.healthy_panic_threshold = { value: panicThresholdPercent(od) };
  }
  if (localityWeighted(locality)) common.locality_weighted_lb_config = {};
  if (Object.keys(common).length > 0) out.common_lb_config = common;
  return out;
}

/**
 * What the admin port shows of clusters: `/clusters` in Envoy's text format
 * (`cluster::host::stat::value`, hosts' `health_flags` as Envoy spells them) with each
 * cluster's circuit breaker, retry budget and outlier detection; and the resilience
 * counters for `/stats` in Prometheus text format, under the names Envoy's Prometheus
 * output gives them (`envoy_cluster_<stat>{cluster_name="..."}`, Istio's label), so the
 * queries of Istio's circuit-breaking task find them.
 *
 * Rendered on request only; nothing here is on the request path.
 */
import type { ClusterRuntime } from '../config/clusters.js';
import type { EndpointState } from '../upstream/lb/types.js';
import { EJECTION_TYPES } from './outlier-detection.js';

/** Envoy's HostUtility::healthFlagsToString for the flags Trellis has: `healthy`, or the failures in Envoy's order. */
export function healthFlags(ejected: boolean, edsHealthy: boolean): string {
  if (!ejected && edsHealthy) return 'healthy';
  return `${ejected ? '/failed_outlier_check' : ''}${edsHealthy ? '' : '/failed_eds_health'}`;
}

/** The `/clusters` text: per cluster its resilience lines, then one group of lines per host. */
export function clustersText(clusters: ReadonlyMap<string, ClusterRuntime>, state: (id: string) => EndpointState): string {
  const lines: string[] = [];
  for (const [name, c] of clusters) {
    clusterLines(lines, name, c);
    for (const e of c.endpoints) {
      const st = state(e.id);
      const ejected = st.ejected || (c.outlier?.ejected.has(e.id) ?? false);
      const host = `${name}::${e.id}`;
      lines.push(`${host}::health_flags::${healthFlags(ejected, e.healthy)}`);
      if (c.outlier !== null) lines.push(`${host}::outlier::ejections::${c.outlier.ejections(e.id)}`);
      lines.push(`${host}::rq_active::${st.activeRequests}`, `${host}::weight::${e.weight}`, `${host}::zone::${e.locality}`);
    }
  }
  return lines.length === 0 ? '' : lines.join('\n') + '\n';
}

function clusterLines(lines: string[], name: string, c: ClusterRuntime): void {
  const b = c.breaker;
  const t = b.thresholds;
  const p = `${name}::default_priority`;
  lines.push(`${p}::max_connections::${t.maxConnections}`, `${p}::max_pending_requests::${t.maxPendingRequests}`, `${p}::max_requests::${t.maxRequests}`, `${p}::max_retries::${t.maxRetries}`);
  if (t.retryBudget !== null) lines.push(`${p}::retry_budget::budget_percent::${t.retryBudget.budgetPercent}`, `${p}::retry_budget::min_retry_concurrency::${t.retryBudget.minRetryConcurrency}`);
  const cb = `${name}::circuit_breakers`;
  lines.push(
    `${cb}::connections::${b.connections}`,
    `${cb}::pending_requests::${b.pending}`,
    `${cb}::requests::${b.requests}`,
    `${cb}::retries::${b.retries}`,
    `${cb}::upstream_cx_overflow::${b.connectionOverflow}`,
    `${cb}::upstream_rq_pending_overflow::${b.pendingOverflow}`,
    `${cb}::upstream_rq_retry_overflow::${b.retryOverflow}`,
  );
  const r = c.retryBudget;
  lines.push(`${name}::retry_budget::ratio::${r.settings.ratio}`, `${name}::retry_budget::min_retries_per_second::${r.settings.minRetriesPerSecond}`, `${name}::retry_budget::ttl_seconds::${r.settings.ttlSeconds}`, `${name}::retry_budget::exhausted::${r.exhausted}`);
  const o = c.outlier;
  if (o !== null) {
    const enforced = o.enforced.reduce((a, v) => a + v, 0);
    lines.push(`${name}::outlier::ejections_active::${o.ejectionsActive}`, `${name}::outlier::ejections_enforced_total::${enforced}`, `${name}::outlier::ejections_overflow::${o.overflow}`);
  }
  lines.push(`${name}::panic_threshold_percent::${c.panicThresholdPercent}`);
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

type Stat = readonly [name: string, type: 'counter' | 'gauge', value: (c: ClusterRuntime) => number | undefined];

const open = (count: number, max: number): number => (count >= max ? 1 : 0);
const remaining = (c: ClusterRuntime, count: number, max: number): number | undefined => (c.breaker.thresholds.trackRemaining ? Math.max(0, max - count) : undefined);

/** Per cluster; a stat whose value is undefined for a cluster is left out for it. */
const STATS: readonly Stat[] = [
  ['envoy_cluster_upstream_cx_overflow', 'counter', (c) => c.breaker.connectionOverflow],
  ['envoy_cluster_upstream_rq_pending_overflow', 'counter', (c) => c.breaker.pendingOverflow],
  ['envoy_cluster_upstream_rq_retry_overflow', 'counter', (c) => c.breaker.retryOverflow],
  ['envoy_cluster_circuit_breakers_default_cx_open', 'gauge', (c) => open(c.breaker.connections, c.breaker.thresholds.maxConnections)],
  ['envoy_cluster_circuit_breakers_default_rq_pending_open', 'gauge', (c) => open(c.breaker.pending, c.breaker.thresholds.maxPendingRequests)],
  ['envoy_cluster_circuit_breakers_default_rq_open', 'gauge', (c) => open(c.breaker.requests, c.breaker.thresholds.maxRequests)],
  ['envoy_cluster_circuit_breakers_default_rq_retry_open', 'gauge', (c) => open(c.breaker.retries, c.breaker.maxRetriesNow())],
  ['envoy_cluster_circuit_breakers_default_remaining_cx', 'gauge', (c) => remaining(c, c.breaker.connections, c.breaker.thresholds.maxConnections)],
  ['envoy_cluster_circuit_breakers_default_remaining_pending', 'gauge', (c) => remaining(c, c.breaker.pending, c.breaker.thresholds.maxPendingRequests)],
  ['envoy_cluster_circuit_breakers_default_remaining_rq', 'gauge', (c) => remaining(c, c.breaker.requests, c.breaker.thresholds.maxRequests)],
  ['envoy_cluster_circuit_breakers_default_remaining_retries', 'gauge', (c) => remaining(c, c.breaker.retries, c.breaker.maxRetriesNow())],
  ['envoy_cluster_outlier_detection_ejections_active', 'gauge', (c) => c.outlier?.ejectionsActive],
  ['envoy_cluster_outlier_detection_ejections_enforced_total', 'counter', (c) => c.outlier?.enforced.reduce((a, v) => a + v, 0)],
  ['envoy_cluster_outlier_detection_ejections_overflow', 'counter', (c) => c.outlier?.overflow],
  ...EJECTION_TYPES.flatMap((type, i): Stat[] => [
    [`envoy_cluster_outlier_detection_ejections_detected_${type}`, 'counter', (c) => c.outlier?.detected[i]],
    [`envoy_cluster_outlier_detection_ejections_enforced_${type}`, 'counter', (c) => c.outlier?.enforced[i]],
  ]),
  ['trellis_cluster_retry_budget_exhausted_total', 'counter', (c) => c.retryBudget.exhausted],
];

/** The resilience counters of every cluster, Prometheus text format 0.0.4. */
export function resilienceStats(clusters: ReadonlyMap<string, ClusterRuntime>): string {
  const out: string[] = [];
  for (const [name, type, value] of STATS) {
    out.push(`# TYPE ${name} ${type}`);
    for (const [cluster, c] of clusters) {
      const v = value(c);
      if (v !== undefined) out.push(`${name}{cluster_name="${escapeLabel(cluster)}"} ${v}`);
    }
  }
  return out.join('\n') + '\n';
}

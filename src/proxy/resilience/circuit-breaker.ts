/**
 * A cluster's circuit breakers, Envoy's `circuit_breakers.thresholds` for the DEFAULT
 * priority (arch overview "Circuit breaking", `ResourceManagerImpl`): limits on the
 * cluster's connections, requests waiting for a connection, requests in flight and
 * retries in flight, all across the cluster's hosts. The request path asks before it
 * takes one (`try*()`, false = over the limit: the request fails at once with `UO`, or
 * the retry is not made) and gives it back when done (`end*()`/`connectionClosed()`).
 * Each is a comparison and an increment; refusals are counted with Envoy's stat names.
 *
 * One breaker per cluster name, kept across the cluster's rebuilds (owned by
 * `ResilienceRegistry`): the counts of what is in flight stay true when a new
 * configuration arrives, and the new limits apply from the next `try*()`.
 */
import type { CircuitBreakers__Output } from '../../xds/generated/envoy/config/cluster/v3/CircuitBreakers.js';

export interface BreakerThresholds {
  /** `max_connections`: upstream connections open at once. */
  readonly maxConnections: number;
  /** `max_pending_requests`: requests queued for a connection at once. */
  readonly maxPendingRequests: number;
  /** `max_requests`: requests in flight at once (every try counts, retries too). */
  readonly maxRequests: number;
  /** `max_retries`: retries in flight at once. Ignored when `retryBudget` is set. */
  readonly maxRetries: number;
  /**
   * `retry_budget`: retries in flight may be `budgetPercent` of the requests in flight
   * and pending, and at least `minRetryConcurrency` (Envoy's defaults 20% and 3).
   */
  readonly retryBudget: { readonly budgetPercent: number; readonly minRetryConcurrency: number } | null;
  /** `track_remaining`: publish `remaining_*` gauges. */
  readonly trackRemaining: boolean;
}

/** Envoy's limits for a cluster without `circuit_breakers` (or without a DEFAULT entry). */
export const ENVOY_DEFAULT_THRESHOLDS: BreakerThresholds = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
  retryBudget: null,
  trackRemaining: false,
};

const DEFAULT_BUDGET_PERCENT = 20;
const DEFAULT_MIN_RETRY_CONCURRENCY = 3;

type Wrapped = { readonly value?: number | string } | null | undefined;

function limit(v: Wrapped, fallback: number): number {
  return v == null ? fallback : Number(v.value ?? 0);
}

/** The DEFAULT-priority thresholds, Envoy's defaults for every field left unset. */
export function thresholdsOf(cb: CircuitBreakers__Output | null | undefined): BreakerThresholds {
  const t = cb?.thresholds?.find((x) => x.priority == null || x.priority === 'DEFAULT' || (x.priority as unknown) === 0);
  if (t === undefined) return ENVOY_DEFAULT_THRESHOLDS;
  const d = ENVOY_DEFAULT_THRESHOLDS;
  const budget = t.retry_budget;
  return {
    maxConnections: limit(t.max_connections, d.maxConnections),
    maxPendingRequests: limit(t.max_pending_requests, d.maxPendingRequests),
    maxRequests: limit(t.max_requests, d.maxRequests),
    maxRetries: limit(t.max_retries, d.maxRetries),
    retryBudget:
      budget == null
        ? null
        : { budgetPercent: limit(budget.budget_percent, DEFAULT_BUDGET_PERCENT), minRetryConcurrency: limit(budget.min_retry_concurrency, DEFAULT_MIN_RETRY_CONCURRENCY) },
    trackRemaining: t.track_remaining === true,
  };
}

export class CircuitBreaker {
  readonly cluster: string;
  #t: BreakerThresholds;
  /** Open upstream connections. */
  connections = 0;
  /** Requests waiting for a connection. */
  pending = 0;
  /** Requests (tries) in flight. */
  requests = 0;
  /** Retries in flight. */
  retries = 0;
  /** Envoy's `upstream_cx_overflow`: connections refused by `max_connections`. */
  connectionOverflow = 0;
  /** Envoy's `upstream_rq_pending_overflow`: requests refused by `max_pending_requests` or `max_requests` (Envoy counts both here). */
  pendingOverflow = 0;
  /** Envoy's `upstream_rq_retry_overflow`: retries refused by `max_retries` or the retry budget. */
  retryOverflow = 0;

  constructor(cluster: string, thresholds: BreakerThresholds = ENVOY_DEFAULT_THRESHOLDS) {
    this.cluster = cluster;
    this.#t = thresholds;
  }

  get thresholds(): BreakerThresholds {
    return this.#t;
  }

  /** New limits (a cluster update); what is in flight stays counted. */
  configure(thresholds: BreakerThresholds): void {
    this.#t = thresholds;
  }

  /** Before a try goes to a host (first try or retry). False: over `max_requests`. */
  tryRequest(): boolean {
    if (this.requests >= this.#t.maxRequests) {
      this.pendingOverflow++;
      return false;
    }
    this.requests++;
    return true;
  }

  /** After a try that `tryRequest()` admitted has ended, however it ended. */
  endRequest(): void {
    if (this.requests > 0) this.requests--;
  }

  /** Before a request waits for a connection. False: over `max_pending_requests`. */
  tryPending(): boolean {
    if (this.pending >= this.#t.maxPendingRequests) {
      this.pendingOverflow++;
      return false;
    }
    this.pending++;
    return true;
  }

  /** When a waiting request got its connection, or gave up waiting. */
  endPending(): void {
    if (this.pending > 0) this.pending--;
  }

  /**
   * Before opening an upstream connection. False: over `max_connections` — the request
   * then waits for a connection to free up (`tryPending()`), as in Envoy's pools.
   */
  tryConnect(): boolean {
    if (this.connections >= this.#t.maxConnections) {
      this.connectionOverflow++;
      return false;
    }
    this.connections++;
    return true;
  }

  /** Whether `tryConnect()` would admit a connection now; counts nothing (for pools deciding whom to wake). */
  canConnect(): boolean {
    return this.connections < this.#t.maxConnections;
  }

  /** When a connection that `tryConnect()` admitted closes (or failed to connect). */
  connectionClosed(): void {
    if (this.connections > 0) this.connections--;
  }

  /** Before a retry is sent. False: over `max_retries` or the retry budget; the try's outcome stands. */
  tryRetry(): boolean {
    if (this.retries >= this.maxRetriesNow()) {
      this.retryOverflow++;
      return false;
    }
    this.retries++;
    return true;
  }

  /** After a retry that `tryRetry()` admitted has ended. */
  endRetry(): void {
    if (this.retries > 0) this.retries--;
  }

  /** The retry limit at this moment: `max_retries`, or the budget's share of what is in flight. */
  maxRetriesNow(): number {
    const b = this.#t.retryBudget;
    if (b === null) return this.#t.maxRetries;
    // Envoy's RetryBudgetImpl::max(): never below min_retry_concurrency.
    return Math.max(Math.floor((b.budgetPercent / 100) * (this.requests + this.pending)), b.minRetryConcurrency);
  }
}

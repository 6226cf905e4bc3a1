/**
 * The protocol-independent half of retrying a request: whether the outcome of a try may
 * be retried (policy, attempts left, the cluster's retry budget), which endpoint the
 * retry goes to (another host than those tried, when the policy says so), how long to
 * wait first, and the exchange's timeout (the route's, or a gRPC client's `grpc-timeout`
 * where the route honours it). The HTTP engines keep the request bytes and call these.
 */
import type { ClusterRuntime } from '../config/clusters.js';
import type { ForwardAction } from '../routing/route-action.js';
import { headerOf } from '../http/router.js';
import type { Endpoint } from '../upstream/lb/types.js';
import { backoffMs, isRetriable, type RetryPolicy, type TryOutcome } from './retry-policy.js';

/** What an exchange keeps about its tries. */
export interface Attempts {
  /** Tries made so far (the first included). */
  tries: number;
  /** Endpoint ids tried, in order. */
  readonly tried: string[];
}

/** Retries of one exchange are refused when a budget is spent; counted for /stats. */
export const RETRY_REFUSED = { attempts: 'attempts', budget: 'budget', policy: 'policy' } as const;

/**
 * Whether to retry after `outcome`: the policy retries it, tries are left, and the
 * cluster's retry budget allows one more (a retry taken from the budget is spent).
 */
export function shouldRetry(policy: RetryPolicy | null, a: Attempts, outcome: TryOutcome, cluster: ClusterRuntime): boolean {
  if (policy === null || a.tries > policy.numRetries) return false;
  if (!isRetriable(policy, outcome)) return false;
  return cluster.retryBudget.tryRetry();
}

/** What an exchange holds of its cluster's circuit breaker: the request slot, retry slots. */
export interface BreakerSlots {
  breakerHeld: boolean;
  retriesHeld: number;
}

/**
 * shouldRetry, then a `max_retries` slot of the cluster's breaker (upstream_rq_retry_overflow
 * when none is free), held in `a` until releaseSlots.
 */
export function claimRetry(policy: RetryPolicy, a: Attempts & BreakerSlots, outcome: TryOutcome, cluster: ClusterRuntime): boolean {
  if (!shouldRetry(policy, a, outcome, cluster)) return false;
  if (!cluster.breaker.tryRetry()) return false;
  a.retriesHeld++;
  return true;
}

/** Gives back what `s` holds of `cluster`'s breaker (none held: nothing happens). */
export function releaseSlots(s: BreakerSlots, cluster: ClusterRuntime | undefined): void {
  const breaker = cluster?.breaker;
  if (breaker === undefined) return;
  if (s.breakerHeld) {
    s.breakerHeld = false;
    breaker.endRequest();
  }
  for (; s.retriesHeld > 0; s.retriesHeld--) breaker.endRetry();
}

/** Tells the cluster's outlier detector how the current (last) try ended. */
export function reportTry(a: Attempts, cluster: ClusterRuntime | undefined, outcome: number | 'connect-failure' | 'timeout' | 'reset'): void {
  const id = a.tried[a.tried.length - 1];
  if (id !== undefined) cluster?.outlier?.report(id, outcome);
}

/**
 * The endpoint for the next try. When the policy prefers other hosts, the balancer is
 * asked a few times (host_selection_retry_max_attempts) for one not tried yet; if it
 * keeps answering tried ones — least-request favours a host whose connections fail fast —
 * a healthy untried endpoint is taken directly, so a retry really goes elsewhere.
 */
export function nextEndpoint(cluster: ClusterRuntime, policy: RetryPolicy, a: Attempts, hash: number | undefined): Endpoint | undefined {
  if (policy.priorityUpdateFrequency > 0 && a.tried.length >= policy.priorityUpdateFrequency) {
    const elsewhere = untriedPriorityEndpoint(cluster, policy, a);
    if (elsewhere !== undefined) return elsewhere;
  }
  const picker = cluster.picker;
  let e = picker.pick({ hash });
  if (!policy.otherHosts || e === undefined) return e;
  for (let i = 1; i < policy.hostSelectionAttempts && a.tried.includes(e.id); i++) e = picker.pick({ hash }) ?? e;
  if (!a.tried.includes(e.id)) return e;
  // Only within the priority the balancer chose: without a retry priority plugin, Envoy's
  // retries stay in the priority load (the client's locality while it is healthy).
  const list = cluster.endpoints;
  const start = Math.floor(Math.random() * list.length);
  for (let i = 0; i < list.length; i++) {
    const c = list[(start + i) % list.length] as Endpoint;
    if (c.priority === e.priority && usable(cluster, c) && !a.tried.includes(c.id)) return c;
  }
  return e;
}

function usable(cluster: ClusterRuntime, e: Endpoint): boolean {
  return e.healthy && cluster.outlier?.ejected.has(e.id) !== true;
}

/**
 * Envoy's previous_priorities retry priority: every `priorityUpdateFrequency` tries, the
 * priorities of the hosts tried until then are excluded, and the retry goes to the
 * highest remaining priority with usable hosts (an untried one first). Undefined when
 * every priority is excluded: Envoy then falls back to the original priority load.
 */
function untriedPriorityEndpoint(cluster: ClusterRuntime, policy: RetryPolicy, a: Attempts): Endpoint | undefined {
  const counted = a.tried.length - (a.tried.length % policy.priorityUpdateFrequency);
  const excluded = new Set<number>();
  for (const e of cluster.endpoints) {
    const at = a.tried.indexOf(e.id);
    if (at >= 0 && at < counted) excluded.add(e.priority);
  }
  let best: Endpoint[] = [];
  let bestPriority = Infinity;
  for (const e of cluster.endpoints) {
    if (excluded.has(e.priority) || !usable(cluster, e) || e.priority > bestPriority) continue;
    if (e.priority < bestPriority) {
      bestPriority = e.priority;
      best = [];
    }
    best.push(e);
  }
  if (best.length === 0) return undefined;
  const untried = policy.otherHosts ? best.filter((e) => !a.tried.includes(e.id)) : best;
  const from = untried.length > 0 ? untried : best;
  return from[Math.floor(Math.random() * from.length)];
}

/** The wait before the next try. */
export function retryDelayMs(policy: RetryPolicy, a: Attempts): number {
  return backoffMs(policy, a.tries, Math.random());
}

const GRPC_TIMEOUT_UNITS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };

/** `grpc-timeout` (1-8 digits and a unit) in ms; undefined when absent or malformed. */
export function grpcTimeoutMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (m === null) return undefined;
  return Math.max(1, Math.ceil(Number(m[1]) * (GRPC_TIMEOUT_UNITS[m[2] as string] as number)));
}

/**
 * The exchange's timeout in ms (0 = none): the route's `timeout`; for gRPC requests on a
 * route that honours `grpc-timeout`, the client's deadline instead, capped by the
 * route's `grpc_timeout_header_max` when that is not 0 (Envoy's max_stream_duration).
 */
export function exchangeTimeoutMs(action: ForwardAction, headers: readonly string[]): number {
  if (action.grpcTimeoutMaxMs !== null) {
    // Only routes that honour it pay for looking the header up.
    const deadline = grpcTimeoutMs(headerOf(headers, 'grpc-timeout'));
    if (deadline !== undefined) return action.grpcTimeoutMaxMs > 0 ? Math.min(deadline, action.grpcTimeoutMaxMs) : deadline;
  }
  return action.timeoutMs;
}

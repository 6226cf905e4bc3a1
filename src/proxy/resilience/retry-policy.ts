/**
 * Envoy's route retry policy, compiled once per route: which outcomes of an attempt are
 * retried (`retry_on`, HTTP and gRPC conditions as Envoy defines them), how many times,
 * the per-try timeout, the backoff, and whether a retry avoids the hosts already tried
 * (`envoy.retry_host_predicates.previous_hosts`).
 *
 * Envoy's conditions (router filter docs, x-envoy-retry-on / x-envoy-retry-grpc-on):
 * - `5xx`: any 5xx response, or no response at all (connect failure, reset, per-try timeout).
 * - `gateway-error`: 502, 503, 504 responses, and no response at all.
 * - `reset`: no response (disconnect, reset, per-try timeout); `reset-before-request`: a
 *   reset before the request was fully sent.
 * - `connect-failure`: the connection could not be made (refused, timed out).
 * - `retriable-4xx`: 409. `retriable-status-codes`: the codes in `retriable_status_codes`.
 * - `refused-stream`: an HTTP/2 stream refused with REFUSED_STREAM.
 * - gRPC `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`,
 *   `unavailable`: the `grpc-status` of a response's headers (a trailers-only response;
 *   once a body has started nothing is retried).
 */
import { durationMs } from '../../xds/duration.js';
import { varintField } from '../config/wire.js';
import type { RetryPolicy__Output } from '../../xds/generated/envoy/config/route/v3/RetryPolicy.js';

export const RETRY_ON = {
  '5xx': 1 << 0,
  'gateway-error': 1 << 1,
  reset: 1 << 2,
  'connect-failure': 1 << 3,
  'retriable-4xx': 1 << 4,
  'refused-stream': 1 << 5,
  'retriable-status-codes': 1 << 6,
  'reset-before-request': 1 << 7,
  cancelled: 1 << 8,
  'deadline-exceeded': 1 << 9,
  internal: 1 << 10,
  'resource-exhausted': 1 << 11,
  unavailable: 1 << 12,
} as const;

/** gRPC status codes of the gRPC conditions. */
const GRPC_CONDITIONS: ReadonlyMap<number, number> = new Map([
  [1, RETRY_ON.cancelled],
  [4, RETRY_ON['deadline-exceeded']],
  [13, RETRY_ON.internal],
  [8, RETRY_ON['resource-exhausted']],
  [14, RETRY_ON.unavailable],
]);

/** Envoy's default backoff base; the cap defaults to 10 × the base. */
export const DEFAULT_BACKOFF_BASE_MS = 25;

export interface RetryPolicy {
  /** RETRY_ON bits. */
  readonly retryOn: number;
  /** Retries after the first try (Envoy's num_retries; default 1 when a policy is given). */
  readonly numRetries: number;
  /** 0 = none (the route timeout still bounds every try). */
  readonly perTryTimeoutMs: number;
  readonly retriableStatusCodes: ReadonlySet<number>;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** Retries prefer hosts not tried yet (previous_hosts predicate). */
  readonly otherHosts: boolean;
  /** Picks made to find such a host before taking whatever comes (host_selection_retry_max_attempts). */
  readonly hostSelectionAttempts: number;
  /**
   * `envoy.retry_priorities.previous_priorities` (Istio's `retryRemoteLocalities`): every
   * this many tries, the priorities (localities) tried so far are left out of the next
   * picks, so retries move to the next locality; 0 = no such plugin (retries stay in the
   * priorities the balancer uses).
   */
  readonly priorityUpdateFrequency: number;
}

/** How one try ended. */
export type TryOutcome =
  | { readonly kind: 'response'; readonly status: number; readonly grpcStatus: number | undefined }
  /** No connection could be made (refused, connect timeout). */
  | { readonly kind: 'connect-failure' }
  /** The connection reset or closed before a response; `sent` once the whole request went out. */
  | { readonly kind: 'reset'; readonly sent: boolean }
  | { readonly kind: 'refused-stream' }
  | { readonly kind: 'per-try-timeout' };

export function compileRetryPolicy(p: RetryPolicy__Output | null | undefined): RetryPolicy | null {
  if (p == null) return null;
  let retryOn = 0;
  for (const raw of p.retry_on.split(',')) {
    const bit = (RETRY_ON as Readonly<Record<string, number>>)[raw.trim()];
    if (bit !== undefined) retryOn |= bit;
  }
  const numRetries = p.num_retries?.value ?? 1;
  if (retryOn === 0 || numRetries <= 0) return null;
  const base = p.retry_back_off?.base_interval != null ? Math.max(1, durationMs(p.retry_back_off.base_interval)) : DEFAULT_BACKOFF_BASE_MS;
  const max = p.retry_back_off?.max_interval != null ? Math.max(base, durationMs(p.retry_back_off.max_interval)) : base * 10;
  return {
    retryOn,
    numRetries,
    perTryTimeoutMs: durationMs(p.per_try_timeout),
    retriableStatusCodes: new Set(p.retriable_status_codes),
    backoffBaseMs: base,
    backoffMaxMs: max,
    otherHosts: p.retry_host_predicate.some((h) => h.name === 'envoy.retry_host_predicates.previous_hosts'),
    hostSelectionAttempts: Math.max(1, Number(p.host_selection_retry_max_attempts ?? 1)),
    priorityUpdateFrequency: priorityUpdateFrequency(p),
  };
}

const PREVIOUS_PRIORITIES = 'envoy.retry_priorities.previous_priorities';

/**
 * PreviousPrioritiesConfig.update_frequency (field 1, must be > 0); 0 without the plugin.
 * The Any comes unpacked (`@type`) when its proto is loaded, otherwise as opaque bytes.
 */
function priorityUpdateFrequency(p: RetryPolicy__Output): number {
  const rp = p.retry_priority;
  if (rp == null || rp.name !== PREVIOUS_PRIORITIES) return 0;
  const any = rp.typed_config as unknown as Record<string, unknown> | null | undefined;
  let n = 0;
  if (any != null && '@type' in any) n = Number(any.update_frequency ?? 0);
  else if (any?.value instanceof Uint8Array) n = varintField(any.value, 1);
  else if (typeof any?.value === 'string') n = varintField(Buffer.from(any.value, 'base64'), 1);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

/** Whether an outcome is retried under `policy` (the budget and attempt count aside). */
export function isRetriable(policy: RetryPolicy, o: TryOutcome): boolean {
  const on = policy.retryOn;
  switch (o.kind) {
    case 'connect-failure':
      return (on & (RETRY_ON['connect-failure'] | RETRY_ON['5xx'] | RETRY_ON['gateway-error'] | RETRY_ON.reset | RETRY_ON['reset-before-request'])) !== 0;
    case 'refused-stream':
      return (on & (RETRY_ON['refused-stream'] | RETRY_ON['5xx'] | RETRY_ON.reset | RETRY_ON['reset-before-request'])) !== 0;
    case 'reset':
      return (on & (RETRY_ON.reset | RETRY_ON['5xx'] | RETRY_ON['gateway-error'])) !== 0 || (!o.sent && (on & RETRY_ON['reset-before-request']) !== 0);
    case 'per-try-timeout':
      return (on & (RETRY_ON.reset | RETRY_ON['5xx'] | RETRY_ON['gateway-error'])) !== 0;
    case 'response': {
      const s = o.status;
      if (s >= 500 && (on & RETRY_ON['5xx']) !== 0) return true;
      if ((s === 502 || s === 503 || s === 504) && (on & RETRY_ON['gateway-error']) !== 0) return true;
      if (s === 409 && (on & RETRY_ON['retriable-4xx']) !== 0) return true;
      if ((on & RETRY_ON['retriable-status-codes']) !== 0 && policy.retriableStatusCodes.has(s)) return true;
      if (o.grpcStatus !== undefined) {
        const bit = GRPC_CONDITIONS.get(o.grpcStatus);
        if (bit !== undefined && (on & bit) !== 0) return true;
      }
      return false;
    }
  }
}

/**
 * Envoy's backoff before retry `n` (1-based): a random time in [0, (2^n − 1) × base),
 * at most the maximum interval (fully jittered exponential growth).
 */
export function backoffMs(policy: RetryPolicy, n: number, random: number): number {
  const ceiling = Math.min(policy.backoffBaseMs * (2 ** Math.min(n, 30) - 1), policy.backoffMaxMs);
  return Math.floor(random * ceiling);
}

/**
 * VirtualService `retries` → route `retry_policy`, as Istio's `retry.ConvertPolicy`
 * (pilot/pkg/networking/core/route/retry/retry.go):
 *
 * - no `retries`: Istio's default — 2 retries on
 *   `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes` (no
 *   status codes listed: EXCLUDE_UNSAFE_503_FROM_DEFAULT_RETRY is on by default), never
 *   the previous host, at most 5 host selections per retry;
 * - `attempts: 0` (or absent in a `retries` block): no retry policy at all;
 * - otherwise the default with the user's attempts, conditions (bare status codes moved
 *   to `retriable_status_codes` by the API, which adds `retriable-status-codes`),
 *   `perTryTimeout`, `retryIgnorePreviousHosts`, `retryRemoteLocalities` and `backoff`.
 *
 * With consistent-hash load balancing the previous-hosts predicate is left out: a retry
 * should reach the same host. The back-off is written out even when defaulted (Envoy's
 * 25 ms base, growing to 10× with jitter), so the resource says what the proxy must do.
 */
import type { HttpRetry } from '../../api/networking/virtual-service.js';
import type { RetryPolicy } from '../../xds/generated/envoy/config/route/v3/RetryPolicy.js';
import { duration } from './envoy.js';
import { opaqueAny, varintField } from './proto-wire.js';

export const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';
export const DEFAULT_RETRY_ATTEMPTS = 2;
/** Envoy's default base interval of the retry back-off. */
export const DEFAULT_RETRY_BACKOFF_MS = 25;
/** Istio's fixed `host_selection_retry_max_attempts`. */
const HOST_SELECTION_RETRY_MAX_ATTEMPTS = 5;

/** `envoy.retry_host_predicates.previous_hosts` (its config message is empty). */
const PREVIOUS_HOSTS = {
  name: 'envoy.retry_host_predicates.previous_hosts',
  typed_config: opaqueAny('envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate', []),
};

/**
 * `retryRemoteLocalities`: retries move to the next priority (locality) every 2 attempts,
 * Istio's fixed `update_frequency` (PreviousPrioritiesConfig field 1 = 2).
 */
const PREVIOUS_PRIORITIES = {
  name: 'envoy.retry_priorities.previous_priorities',
  typed_config: opaqueAny('envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig', varintField(1, 2)),
};

/** The retry policy of a route to a destination; `consistentHash`: its DestinationRule hashes. */
export function retryPolicy(retries: HttpRetry | undefined, consistentHash: boolean): RetryPolicy | undefined {
  if (retries !== undefined && retries.attempts <= 0) return undefined;
  const ignorePreviousHosts = (retries?.retryIgnorePreviousHosts ?? true) && !consistentHash;
  const out: RetryPolicy = {
    retry_on: retries !== undefined && retries.retryOn.length > 0 ? retries.retryOn.join(',') : DEFAULT_RETRY_ON,
    num_retries: { value: retries?.attempts ?? DEFAULT_RETRY_ATTEMPTS },
    retry_host_predicate: ignorePreviousHosts ? [PREVIOUS_HOSTS] : [],
    host_selection_retry_max_attempts: HOST_SELECTION_RETRY_MAX_ATTEMPTS,
    retry_back_off: { base_interval: duration(retries?.backoffMs ?? DEFAULT_RETRY_BACKOFF_MS) },
  };
  if (retries !== undefined && retries.retriableStatusCodes.length > 0) out.retriable_status_codes = [...retries.retriableStatusCodes];
  if (retries?.perTryTimeoutMs !== undefined) out.per_try_timeout = duration(retries.perTryTimeoutMs);
  if (retries?.retryRemoteLocalities === true) out.retry_priority = PREVIOUS_PRIORITIES;
  return out;
}

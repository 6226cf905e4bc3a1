/**
 * DestinationRule `outlierDetection` → cluster `outlier_detection`, as Istio's
 * `applyOutlierDetection` (cluster_traffic_policy.go): nothing unless configured;
 * success-rate ejection always off; an error count of 0 turns its check off (enforcing
 * 0), any other count enforces it at 100%. Where Istio leaves a field unset Envoy applies
 * its default; Trellis writes that default out (5 consecutive 5xx, 10 s interval, 30 s
 * base ejection, 10% at most ejected), so the resource says what the proxy must do.
 */
import type { OutlierDetection } from '../../xds/generated/envoy/config/cluster/v3/OutlierDetection.js';
import { duration } from './envoy.js';
import type { PortPolicy } from './traffic-policy.js';

type Settings = NonNullable<PortPolicy['outlierDetection']>;

/** Envoy's defaults for the fields Istio leaves unset. */
const DEFAULT_CONSECUTIVE_ERRORS = 5;
const DEFAULT_INTERVAL_MS = 10_000;
const DEFAULT_BASE_EJECTION_MS = 30_000;
const DEFAULT_MAX_EJECTION_PERCENT = 10;

/** Enforcement of a consecutive-errors check: off for a count of 0 (Istio). */
function enforcing(count: number): { value: number } {
  return { value: count > 0 ? 100 : 0 };
}

export function outlierDetection(od: Settings): OutlierDetection {
  const c5xx = od.consecutive5xxErrors ?? DEFAULT_CONSECUTIVE_ERRORS;
  const gateway = od.consecutiveGatewayErrors;
  const out: OutlierDetection = {
    consecutive_5xx: { value: c5xx },
    enforcing_consecutive_5xx: enforcing(c5xx),
    // Gateway errors (502, 503, 504) are counted only when configured; the API folds the
    // deprecated `consecutiveErrors` into them, as Istio did.
    consecutive_gateway_failure: { value: gateway ?? DEFAULT_CONSECUTIVE_ERRORS },
    enforcing_consecutive_gateway_failure: enforcing(gateway ?? 0),
    interval: duration(od.interval ?? DEFAULT_INTERVAL_MS),
    base_ejection_time: duration(od.baseEjectionTime ?? DEFAULT_BASE_EJECTION_MS),
    max_ejection_percent: { value: od.maxEjectionPercent !== undefined && od.maxEjectionPercent > 0 ? od.maxEjectionPercent : DEFAULT_MAX_EJECTION_PERCENT },
    enforcing_success_rate: { value: 0 },
  };
  if (od.splitExternalLocalOriginErrors === true) {
    out.split_external_local_origin_errors = true;
    // Istio sets the count only when positive; otherwise Envoy's default (5, enforced) holds.
    const local = od.consecutiveLocalOriginFailures !== undefined && od.consecutiveLocalOriginFailures > 0 ? od.consecutiveLocalOriginFailures : DEFAULT_CONSECUTIVE_ERRORS;
    out.consecutive_local_origin_failure = { value: local };
    out.enforcing_consecutive_local_origin_failure = { value: 100 };
    out.enforcing_local_origin_success_rate = { value: 0 };
  }
  return out;
}

/**
 * The panic threshold that goes with outlier detection: `minHealthPercent`, default 0,
 * which turns Envoy's panic mode (default 50%) off — with few endpoints per service,
 * panicking would send traffic to the hosts just ejected (Istio's comment).
 */
export function panicThresholdPercent(od: Settings): number {
  return od.minHealthPercent ?? 0;
}

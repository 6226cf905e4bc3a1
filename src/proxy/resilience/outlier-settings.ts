/**
 * A cluster's `outlier_detection`, converted once from the xDS message (STYLE 9):
 * durations in ms, Envoy's defaults filled in for every field left unset
 * (`outlier_detection.proto`, `DetectorConfig` in Envoy's `outlier_detection_impl.cc`).
 *
 * Only the consecutive-error checks are implemented. Success-rate and failure-percentage
 * ejection (`enforcing_success_rate`, `failure_percentage_threshold`, ...) are not: Istio
 * turns success rate off and never sets failure percentage, so nothing Trellis's control
 * plane sends asks for them.
 */
import { durationMs } from '../../xds/duration.js';
import type { OutlierDetection__Output } from '../../xds/generated/envoy/config/cluster/v3/OutlierDetection.js';

export interface OutlierSettings {
  /** `consecutive_5xx`: 5xx responses (and, unless split, local-origin failures) in a row that eject; 0 never ejects. Default 5. */
  readonly consecutive5xx: number;
  /** `enforcing_consecutive_5xx`: % chance that such a detection ejects. Default 100. */
  readonly enforcing5xxPercent: number;
  /** `consecutive_gateway_failure`: 502/503/504 (and, unless split, local-origin failures) in a row. Default 5. */
  readonly consecutiveGatewayFailure: number;
  /** `enforcing_consecutive_gateway_failure`. Default **0**: gateway failures are counted but eject nothing. */
  readonly enforcingGatewayPercent: number;
  /** `split_external_local_origin_errors`: local-origin failures have their own counter and no longer count as 5xx. */
  readonly splitLocalOrigin: boolean;
  /** `consecutive_local_origin_failure` (only with the split). Default 5. */
  readonly consecutiveLocalOriginFailure: number;
  /** `enforcing_consecutive_local_origin_failure`. Default 100. */
  readonly enforcingLocalOriginPercent: number;
  /** `interval`: time between sweeps, which return hosts to service. Default 10 s. */
  readonly intervalMs: number;
  /** `base_ejection_time`: ejection lasts this × the host's ejection multiplier. Default 30 s. */
  readonly baseEjectionMs: number;
  /** `max_ejection_time`: the cap on one ejection. Default 300 s, or the base time when larger. */
  readonly maxEjectionMs: number;
  /** `max_ejection_time_jitter`: up to this much is added to each ejection, at random. Default 0. */
  readonly maxEjectionJitterMs: number;
  /** `max_ejection_percent`: at most this share of the cluster's hosts ejected at once. Default 10. */
  readonly maxEjectionPercent: number;
  /** `always_eject_one_host`: one host may be ejected whatever `maxEjectionPercent` says. Default false. */
  readonly alwaysEjectOneHost: boolean;
}

const DEFAULT_CONSECUTIVE = 5;
const DEFAULT_INTERVAL_MS = 10_000;
const DEFAULT_BASE_EJECTION_MS = 30_000;
const DEFAULT_MAX_EJECTION_MS = 300_000;
const DEFAULT_MAX_EJECTION_PERCENT = 10;

type Wrapped = { readonly value?: number | string } | null | undefined;

function wrapped(v: Wrapped, fallback: number): number {
  return v == null ? fallback : Number(v.value ?? 0);
}

/** The settings of a cluster with outlier detection; null when the cluster has none. */
export function outlierSettingsOf(od: OutlierDetection__Output | null | undefined): OutlierSettings | null {
  if (od == null) return null;
  const baseEjectionMs = durationMs(od.base_ejection_time, DEFAULT_BASE_EJECTION_MS);
  return {
    consecutive5xx: wrapped(od.consecutive_5xx, DEFAULT_CONSECUTIVE),
    enforcing5xxPercent: wrapped(od.enforcing_consecutive_5xx, 100),
    consecutiveGatewayFailure: wrapped(od.consecutive_gateway_failure, DEFAULT_CONSECUTIVE),
    enforcingGatewayPercent: wrapped(od.enforcing_consecutive_gateway_failure, 0),
    splitLocalOrigin: od.split_external_local_origin_errors === true,
    consecutiveLocalOriginFailure: wrapped(od.consecutive_local_origin_failure, DEFAULT_CONSECUTIVE),
    enforcingLocalOriginPercent: wrapped(od.enforcing_consecutive_local_origin_failure, 100),
    intervalMs: durationMs(od.interval, DEFAULT_INTERVAL_MS),
    baseEjectionMs,
    // The proto: "the default value (300000ms or 300s) or base_ejection_time value is
    // applied, whatever is larger".
    maxEjectionMs: durationMs(od.max_ejection_time, Math.max(DEFAULT_MAX_EJECTION_MS, baseEjectionMs)),
    maxEjectionJitterMs: durationMs(od.max_ejection_time_jitter, 0),
    maxEjectionPercent: wrapped(od.max_ejection_percent, DEFAULT_MAX_EJECTION_PERCENT),
    alwaysEjectOneHost: od.always_eject_one_host?.value === true,
  };
}

/**
 * Why a cluster's `outlier_detection` is invalid, for a NACK (the rules Envoy validates:
 * positive durations, percentages up to 100, `max_ejection_time` not below
 * `base_ejection_time`); undefined when it is fine.
 */
export function outlierProblem(od: OutlierDetection__Output | null | undefined): string | undefined {
  if (od == null) return undefined;
  for (const field of ['interval', 'base_ejection_time', 'max_ejection_time'] as const) {
    if (od[field] != null && durationMs(od[field]) <= 0) return `outlier_detection.${field} must be positive`;
  }
  const percents = ['max_ejection_percent', 'enforcing_consecutive_5xx', 'enforcing_consecutive_gateway_failure', 'enforcing_consecutive_local_origin_failure'] as const;
  for (const field of percents) {
    if (wrapped(od[field], 0) > 100) return `outlier_detection.${field} must be at most 100`;
  }
  const s = outlierSettingsOf(od) as OutlierSettings;
  if (od.max_ejection_time != null && s.maxEjectionMs < s.baseEjectionMs) {
    return "outlier_detection.max_ejection_time cannot be smaller than base_ejection_time";
  }
  return undefined;
}

/**
 * VirtualService `fault` → Envoy's fault filter, as Istio's `TranslateFault` (route.go):
 * every HTTP connection manager carries the `envoy.filters.http.fault` filter, empty and
 * before the router (Istio adds it to every sidecar and gateway HCM; grpc-js-xds
 * implements it too), and a route with `fault` configures it in
 * `typed_per_filter_config`. Percentages are parts per million (`value × 10000`).
 *
 * The abort percentage is always written, 0 when none is given (nothing injected, as the
 * proto says): Istio leaves it unset then, which Envoy reads as 0 but grpc-js-xds rejects.
 */
import { GRPC_STATUS, type HttpRoute } from '../../api/networking/virtual-service.js';
import { anyOf } from '../../xds/any.js';
import type { HTTPFault } from '../../xds/generated/envoy/extensions/filters/http/fault/v3/HTTPFault.js';
import { TYPE_URLS } from '../../xds/type-urls.js';
import { duration, millionths } from './envoy.js';

export const FAULT_FILTER_NAME = 'envoy.filters.http.fault';

/** The HCM's fault filter: no fault of its own; routes configure it. */
export const FAULT_FILTER = { name: FAULT_FILTER_NAME, typed_config: anyOf(TYPE_URLS.FAULT, {}) };

export function httpFault(fault: NonNullable<HttpRoute['fault']>): HTTPFault {
  const out: HTTPFault = {};
  if (fault.delay !== undefined) {
    out.delay = { fixed_delay: duration(fault.delay.fixedDelayMs), percentage: millionths(fault.delay.percentage) };
  }
  const abort = fault.abort;
  if (abort !== undefined) {
    const percentage = millionths(abort.percentage);
    // Exactly one of the two is set (the API checks). gRPC status names map to their
    // codes, which GRPC_STATUS lists in order (OK = 0).
    out.abort = abort.grpcStatus !== undefined ? { grpc_status: GRPC_STATUS.indexOf(abort.grpcStatus), percentage } : { http_status: abort.httpStatus, percentage };
  }
  return out;
}

/** The route's `typed_per_filter_config` entry for `fault`. */
export function faultPerFilterConfig(fault: NonNullable<HttpRoute['fault']>): Record<string, ReturnType<typeof anyOf>> {
  return { [FAULT_FILTER_NAME]: anyOf(TYPE_URLS.FAULT, httpFault(fault)) };
}

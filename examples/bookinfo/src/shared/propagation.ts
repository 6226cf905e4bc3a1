/**
 * The request headers a Bookinfo service copies from its incoming request to its outbound
 * calls. The mesh can only join the spans of one request into a trace, and keep one
 * x-request-id across services, if the application forwards them: the sidecars cannot
 * tell which outbound call belongs to which inbound request.
 *
 * The list is the one Istio's Bookinfo keeps in sync between productpage.py and the
 * reviews service (LibertyRestEndpoint.java).
 */
import type { IncomingHttpHeaders } from 'node:http';

/** Trace context: Istio's x-request-id plus every tracer's propagation headers. */
export const TRACE_HEADERS = [
  // Istio: access logs and consistent trace/log sampling decisions.
  'x-request-id',
  // Lightstep.
  'x-ot-span-context',
  // Datadog.
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-sampling-priority',
  // W3C Trace Context (OpenCensus agent, Stackdriver, OpenTelemetry).
  'traceparent',
  'tracestate',
  // Google Cloud Trace.
  'x-cloud-trace-context',
  // gRPC binary trace context.
  'grpc-trace-bin',
  // Zipkin B3, single-header and multi-header forms (productpage.py lets OpenTelemetry's
  // B3 propagator carry these; forwarding them verbatim has the same effect).
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  // SkyWalking.
  'sw8',
] as const;

/** Application and session headers the original forwards too. */
export const CONTEXT_HEADERS = ['user-agent', 'cookie', 'authorization', 'jwt'] as const;

/**
 * The header carrying the signed-in user. productpage sets it from its session; reviews
 * forwards it to ratings. Istio's request-routing task matches on it
 * (`headers: {end-user: {exact: jason}}`).
 */
export const END_USER = 'end-user';

/** Copies the headers named in `names` that are present in `incoming` into `out`. */
export function copyHeaders(incoming: IncomingHttpHeaders, names: readonly string[], out: Record<string, string>): Record<string, string> {
  for (const name of names) {
    const value = incoming[name];
    if (typeof value === 'string') out[name] = value;
    else if (Array.isArray(value)) out[name] = value.join(', ');
  }
  return out;
}

/**
 * VirtualService (`networking.istio.io` v1, v1beta1, v1alpha3). Field meanings and
 * validation rules follow istio/api `virtual_service.proto` and Istio's
 * `pkg/config/validation/virtualservice.go`; the domain form resolves hosts, gateways,
 * durations, deprecated spellings and single-destination weights once, here.
 */
import { cidr, exportTo, labels, type Labels, stringList, stringMatch, type StringMatch } from '../common.js';
import { MESH_GATEWAY, resolveGatewayRef, resolveHost } from '../hosts.js';
import type { Path } from '../schema/path.js';
import { type ParseContext, type Schema, array, exclusive, object, record, required, withDefault } from '../schema/schema.js';
import { boolean, duration, integer, oneOf, port, regex, string, uint32 } from '../schema/scalars.js';
import { type Destination, destination, hostName, percent } from './destination.js';
import { headerName, headerOperations, type HeaderOperations } from './headers.js';

// ---- matches ----

const headerMatchMap = record(stringMatch({ allowEmpty: true }), headerName);
const queryMatchMap = record(stringMatch({ allowEmpty: true, allowEmptyPrefix: false }));

export interface HttpMatch {
  readonly name?: string;
  readonly uri?: StringMatch;
  readonly scheme?: StringMatch;
  readonly method?: StringMatch;
  readonly authority?: StringMatch;
  /** Keys lower-cased (HTTP header names are case-insensitive). */
  readonly headers: Readonly<Record<string, StringMatch>>;
  readonly withoutHeaders: Readonly<Record<string, StringMatch>>;
  readonly queryParams: Readonly<Record<string, StringMatch>>;
  readonly port?: number;
  readonly sourceLabels?: Labels;
  readonly sourceNamespace?: string;
  /** Resolved `namespace/name` references (or `mesh`); absent means the route's gateways. */
  readonly gateways?: readonly string[];
  readonly ignoreUriCase: boolean;
  readonly statPrefix?: string;
}

const lowerKeys = <T>(m: Readonly<Record<string, T>> | undefined): Readonly<Record<string, T>> =>
  Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k.toLowerCase(), v]));

const resolveGateways = (list: readonly string[] | undefined, ns: string): readonly string[] | undefined =>
  list?.map((g) => resolveGatewayRef(g, ns));

const httpMatch: Schema<HttpMatch> = object(
  {
    name: string(),
    uri: stringMatch({ allowEmpty: false, allowEmptyPrefix: true }),
    scheme: stringMatch({ allowEmpty: false }),
    method: stringMatch({ allowEmpty: false }),
    authority: stringMatch({ allowEmpty: false }),
    headers: headerMatchMap,
    withoutHeaders: headerMatchMap,
    queryParams: queryMatchMap,
    port,
    sourceLabels: labels,
    sourceNamespace: string(),
    gateways: stringList,
    ignoreUriCase: boolean,
    statPrefix: string(),
  },
  {
    map: (v, _path, ctx): HttpMatch => ({
      ...v,
      headers: lowerKeys(v.headers),
      withoutHeaders: lowerKeys(v.withoutHeaders),
      queryParams: v.queryParams ?? {},
      gateways: resolveGateways(v.gateways, ctx.namespace),
      ignoreUriCase: v.ignoreUriCase ?? false,
    }),
  },
);

// ---- destinations ----

export interface HttpRouteDestination {
  readonly destination: Destination;
  /** Relative weight; a lone destination gets 100. */
  readonly weight: number;
  readonly headers?: HeaderOperations;
}

/** Istio: weights are relative and need not sum to 100; with several, they must not all be 0. */
function weighted<T extends { weight?: number }>(list: readonly T[], path: Path, ctx: ParseContext): boolean {
  if (list.length > 1 && list.every((d) => (d.weight ?? 0) === 0)) {
    ctx.report('TRELLIS_CONFIG_OUT_OF_RANGE', path, 'total destination weight is 0: give at least one destination a weight');
    return false;
  }
  return true;
}

function withWeights<T extends { weight?: number }>(list: readonly T[]): readonly (T & { weight: number })[] {
  return list.map((d) => ({ ...d, weight: list.length === 1 ? (d.weight ?? 100) : (d.weight ?? 0) }));
}

const weight = integer({ min: 0, max: 2147483647 });

const httpRouteDestination = object({ destination: required(destination), weight, headers: headerOperations });

// ---- redirect, rewrite, direct response, delegate ----

const redirect = object(
  {
    uri: string(),
    prefixRewrite: string(),
    authority: string(),
    port,
    derivePort: oneOf(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']),
    scheme: string(),
    redirectCode: withDefault(integer({ min: 300, max: 399 }), 301),
  },
  { check: (v, path, ctx) => exclusive(v, ['uri', 'prefixRewrite'], path, ctx) && exclusive(v, ['port', 'derivePort'], path, ctx) },
);

const rewrite = object(
  {
    uri: string(),
    authority: string(),
    uriRegexRewrite: object({ match: required(regex), rewrite: required(string()) }),
  },
  { check: (v, path, ctx) => exclusive(v, ['uri', 'uriRegexRewrite'], path, ctx) },
);

/** Istio caps a direct response body at 1 MiB. */
const MAX_DIRECT_RESPONSE_BYTES = 1024 * 1024;

const directResponse = object({
  status: required(integer({ min: 200, max: 599 })),
  body: object(
    {
      string: string(),
      bytes: string({
        check: (v, path, ctx) => {
          if (/^[A-Za-z0-9+/]*={0,2}$/.test(v) && v.length % 4 === 0) return true;
          ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, 'bytes must be base64');
          return false;
        },
      }),
    },
    {
      check: (v, path, ctx) => {
        if (!exclusive(v, ['string', 'bytes'], path, ctx, true)) return false;
        const size = v.string !== undefined ? Buffer.byteLength(v.string) : Buffer.from(v.bytes ?? '', 'base64').length;
        if (size <= MAX_DIRECT_RESPONSE_BYTES) return true;
        ctx.report('TRELLIS_CONFIG_OUT_OF_RANGE', path, `body is ${size} bytes; at most 1 MiB is allowed`);
        return false;
      },
    },
  ),
});

const delegate = object({ name: required(string({ nonEmpty: 'must not be empty' })), namespace: string() });

// ---- retries ----

/** Envoy `x-envoy-retry-on` and `x-envoy-retry-grpc-on` conditions Istio passes through. */
export const RETRY_ON = [
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx',
  'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
] as const;
const RETRY_ON_SET: ReadonlySet<string> = new Set(RETRY_ON);

export interface HttpRetry {
  readonly attempts: number;
  readonly perTryTimeoutMs?: number;
  /** Conditions, with `retriable-status-codes` added when codes were given (Istio parseRetryOn). */
  readonly retryOn: readonly string[];
  /** Bare status codes from `retryOn` ("503"), as Istio moves them. */
  readonly retriableStatusCodes: readonly number[];
  readonly retryRemoteLocalities: boolean;
  readonly retryIgnorePreviousHosts: boolean;
  readonly backoffMs?: number;
}

const retries: Schema<HttpRetry> = object(
  {
    attempts: integer({ min: 0, max: 2147483647 }),
    perTryTimeout: duration(),
    retryOn: string(),
    retryRemoteLocalities: boolean,
    retryIgnorePreviousHosts: boolean,
    backoff: duration(),
  },
  {
    check: (v, path, ctx) => {
      for (const cond of splitRetryOn(v.retryOn)) {
        if (RETRY_ON_SET.has(cond) || /^\d{3}$/.test(cond)) continue;
        ctx.report('TRELLIS_CONFIG_INVALID_VALUE', [...path, 'retryOn'], `"${cond}" is not a retry condition (one of ${RETRY_ON.join(', ')}, or a status code)`);
        return false;
      }
      return true;
    },
    map: (v): HttpRetry => {
      const conds = splitRetryOn(v.retryOn);
      const codes = conds.filter((c) => /^\d{3}$/.test(c)).map(Number);
      const retryOn = conds.filter((c) => !/^\d{3}$/.test(c));
      if (codes.length > 0 && !retryOn.includes('retriable-status-codes')) retryOn.push('retriable-status-codes');
      const out: { -readonly [K in keyof HttpRetry]: HttpRetry[K] } = {
        attempts: v.attempts ?? 0,
        retryOn,
        retriableStatusCodes: codes,
        retryRemoteLocalities: v.retryRemoteLocalities ?? false,
        retryIgnorePreviousHosts: v.retryIgnorePreviousHosts ?? true,
      };
      if (v.perTryTimeout !== undefined) out.perTryTimeoutMs = v.perTryTimeout;
      if (v.backoff !== undefined) out.backoffMs = v.backoff;
      return out;
    },
  },
);

function splitRetryOn(text: string | undefined): string[] {
  return (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
}

// ---- fault injection ----

/** gRPC status names Istio accepts for `abort.grpcStatus`. */
export const GRPC_STATUS = [
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED',
  'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
] as const;

/** Fault percentages: `percentage.value`, or the deprecated int `percent`; none means 0 (proto). */
function faultPercentage(v: { percentage?: number; percent?: number }, path: Path, ctx: ParseContext): number {
  if (v.percent !== undefined) ctx.report('TRELLIS_CONFIG_DEPRECATED', [...path, 'percent'], 'percent is deprecated; use percentage: {value: N}');
  return v.percentage ?? v.percent ?? 0;
}

const deprecatedPercent = integer({ min: 0, max: 100 });

export interface FaultDelay {
  readonly fixedDelayMs: number;
  readonly percentage: number;
}

export interface FaultAbort {
  readonly httpStatus?: number;
  readonly grpcStatus?: (typeof GRPC_STATUS)[number];
  readonly percentage: number;
}

const faultDelay: Schema<FaultDelay> = object(
  { fixedDelay: duration(), exponentialDelay: duration(), percentage: percent, percent: deprecatedPercent },
  {
    check: (v, path, ctx) => {
      if (v.exponentialDelay !== undefined) {
        ctx.report('TRELLIS_CONFIG_INVALID_VALUE', [...path, 'exponentialDelay'], 'exponentialDelay is not supported (as in Istio); use fixedDelay');
        return false;
      }
      if (v.fixedDelay !== undefined) return true;
      ctx.report('TRELLIS_CONFIG_REQUIRED', [...path, 'fixedDelay'], 'required field is missing');
      return false;
    },
    map: (v, path, ctx) => ({ fixedDelayMs: v.fixedDelay ?? 0, percentage: faultPercentage(v, path, ctx) }),
  },
);

const faultAbort: Schema<FaultAbort> = object(
  {
    httpStatus: integer({ min: 200, max: 599 }),
    grpcStatus: oneOf(GRPC_STATUS),
    http2Error: string(),
    percentage: percent,
    percent: deprecatedPercent,
  },
  {
    check: (v, path, ctx) => {
      if (v.http2Error !== undefined) {
        ctx.report('TRELLIS_CONFIG_INVALID_VALUE', [...path, 'http2Error'], 'http2Error aborts are not supported (as in Istio); use httpStatus or grpcStatus');
        return false;
      }
      return exclusive(v, ['httpStatus', 'grpcStatus'], path, ctx, true);
    },
    map: (v, path, ctx) => {
      const out: { httpStatus?: number; grpcStatus?: (typeof GRPC_STATUS)[number]; percentage: number } = { percentage: faultPercentage(v, path, ctx) };
      if (v.httpStatus !== undefined) out.httpStatus = v.httpStatus;
      if (v.grpcStatus !== undefined) out.grpcStatus = v.grpcStatus;
      return out;
    },
  },
);

const fault = object(
  { delay: faultDelay, abort: faultAbort },
  {
    check: (v, path, ctx) => {
      if (v.delay !== undefined || v.abort !== undefined) return true;
      ctx.report('TRELLIS_CONFIG_REQUIRED', path, 'fault must have an abort and/or a delay');
      return false;
    },
  },
);

// ---- mirrors and CORS ----

export interface Mirror {
  readonly destination: Destination;
  /** 0..100; a mirror without a percentage mirrors everything. */
  readonly percentage: number;
}

const mirrorPolicy = object(
  { destination: required(destination), percentage: percent },
  { map: (v): Mirror => ({ destination: v.destination, percentage: v.percentage ?? 100 }) },
);

export interface CorsPolicy {
  readonly allowOrigins: readonly StringMatch[];
  readonly allowMethods: readonly string[];
  readonly allowHeaders: readonly string[];
  readonly exposeHeaders: readonly string[];
  readonly maxAgeMs?: number;
  readonly allowCredentials?: boolean;
  readonly unmatchedPreflights: 'FORWARD' | 'IGNORE';
}

const corsPolicy: Schema<CorsPolicy> = object(
  {
    allowOrigins: array(stringMatch({ allowEmpty: false })),
    allowOrigin: stringList,
    allowMethods: stringList,
    allowHeaders: stringList,
    exposeHeaders: stringList,
    maxAge: duration({ wholeSeconds: true }),
    allowCredentials: boolean,
    unmatchedPreflights: oneOf(['UNSPECIFIED', 'FORWARD', 'IGNORE']),
  },
  {
    map: (v, path, ctx): CorsPolicy => {
      if (v.allowOrigin !== undefined) {
        ctx.report('TRELLIS_CONFIG_DEPRECATED', [...path, 'allowOrigin'], 'allowOrigin is deprecated; use allowOrigins: [{exact: ...}]');
      }
      const legacy = (v.allowOrigin ?? []).map((o): StringMatch => ({ kind: 'exact', value: o }));
      const out: { -readonly [K in keyof CorsPolicy]: CorsPolicy[K] } = {
        allowOrigins: [...(v.allowOrigins ?? []), ...legacy],
        allowMethods: v.allowMethods ?? [],
        allowHeaders: v.allowHeaders ?? [],
        exposeHeaders: v.exposeHeaders ?? [],
        unmatchedPreflights: v.unmatchedPreflights === 'IGNORE' ? 'IGNORE' : 'FORWARD',
      };
      if (v.maxAge !== undefined) out.maxAgeMs = v.maxAge;
      if (v.allowCredentials !== undefined) out.allowCredentials = v.allowCredentials;
      return out;
    },
  },
);

// ---- HTTP route ----

const httpRouteShape = {
  name: string(),
  match: array(httpMatch),
  route: array(httpRouteDestination),
  redirect,
  directResponse,
  delegate,
  rewrite,
  timeout: duration(),
  retries,
  fault,
  mirror: destination,
  mirrorPercentage: percent,
  mirrorPercent: uint32,
  mirrors: array(mirrorPolicy),
  corsPolicy,
  headers: headerOperations,
};

function checkHttpRoute(v: Readonly<Record<string, unknown>> & { route?: readonly unknown[] }, path: Path, ctx: ParseContext): boolean {
  const conflict = (a: string, b: string): boolean => {
    if (v[a] === undefined || v[b] === undefined) return false;
    ctx.report('TRELLIS_CONFIG_CONFLICT', [...path, b], `${a} and ${b} cannot be used together`);
    return true;
  };
  const hasRoute = v.route !== undefined && v.route.length > 0;
  let ok = !(
    conflict('redirect', 'route') || conflict('redirect', 'rewrite') || conflict('directResponse', 'route') ||
    conflict('redirect', 'directResponse') || conflict('delegate', 'route') || conflict('delegate', 'redirect') ||
    conflict('fault', 'redirect') || conflict('fault', 'directResponse') || conflict('mirror', 'mirrors') ||
    conflict('mirrorPercentage', 'mirrorPercent')
  );
  if (ok && !hasRoute && v.redirect === undefined && v.directResponse === undefined && v.delegate === undefined) {
    ctx.report('TRELLIS_CONFIG_REQUIRED', [...path, 'route'], 'an HTTP route needs route, redirect, directResponse or delegate');
    ok = false;
  }
  if (hasRoute && !weighted(v.route as readonly { weight?: number }[], [...path, 'route'], ctx)) ok = false;
  return ok;
}

export type HttpRoute = ReturnType<typeof mapHttpRoute>;

function mapHttpRoute(v: RawHttpRoute, path: Path, ctx: ParseContext) {
  const { mirror, mirrorPercentage, mirrorPercent, mirrors, route, match, ...rest } = v;
  if (mirrorPercent !== undefined) ctx.report('TRELLIS_CONFIG_DEPRECATED', [...path, 'mirrorPercent'], 'mirrorPercent is deprecated; use mirrorPercentage: {value: N}');
  const single: Mirror[] = mirror === undefined ? [] : [{ destination: mirror, percentage: mirrorPercentage ?? mirrorPercent ?? 100 }];
  return {
    ...rest,
    match: match ?? [],
    route: withWeights(route ?? []),
    /** `mirror` (with `mirrorPercentage`/`mirrorPercent`) and `mirrors[]`, as one list. */
    mirrors: [...single, ...(mirrors ?? [])],
  };
}

const rawHttpRoute = object(httpRouteShape);
type RawHttpRoute = NonNullable<ReturnType<typeof rawHttpRoute.parse>>;
const httpRoute = object(httpRouteShape, { check: checkHttpRoute, map: mapHttpRoute });

// ---- TLS and TCP routes ----

const routeDestination = object({ destination: required(destination), weight });

const l4Common = {
  destinationSubnets: array(cidr),
  port,
  sourceLabels: labels,
  gateways: stringList,
  sourceNamespace: string(),
};

const tlsMatch = object(
  { ...l4Common, sniHosts: required(array(string({ nonEmpty: 'must not be empty' }), { min: 1, tooFew: 'at least one SNI host is required' })) },
  { map: (v, _path, ctx) => ({ ...v, gateways: resolveGateways(v.gateways, ctx.namespace) }) },
);

const tcpMatch = object(
  { ...l4Common, sourceSubnet: string() },
  { map: (v, _path, ctx) => ({ ...v, gateways: resolveGateways(v.gateways, ctx.namespace) }) },
);

function l4Route<M>(match: Schema<M>, matchRequired: boolean) {
  return object(
    {
      match: matchRequired ? required(array(match, { min: 1, tooFew: 'at least one match is required' })) : array(match),
      route: required(array(routeDestination, { min: 1, tooFew: 'at least one route destination is required' })),
    },
    {
      check: (v, path, ctx) => weighted(v.route, [...path, 'route'], ctx),
      map: (v) => ({ match: (v.match ?? []) as readonly M[], route: withWeights(v.route) }),
    },
  );
}

const tlsRoute = l4Route(tlsMatch, true);
const tcpRoute = l4Route(tcpMatch, false);

export type TlsRoute = NonNullable<ReturnType<typeof tlsRoute.parse>>;
export type TcpRoute = NonNullable<ReturnType<typeof tcpRoute.parse>>;

// ---- VirtualService ----

export interface VirtualServiceSpec {
  /** Resolved against the VirtualService's namespace. Empty for a delegate. */
  readonly hosts: readonly string[];
  /** Resolved `namespace/name` references; `["mesh"]` when omitted. */
  readonly gateways: readonly string[];
  readonly http: readonly HttpRoute[];
  readonly tls: readonly TlsRoute[];
  readonly tcp: readonly TcpRoute[];
  readonly exportTo: readonly string[];
}

export const virtualServiceSpec: Schema<VirtualServiceSpec> = object(
  {
    hosts: array(hostName),
    gateways: array(string({ nonEmpty: 'gateway name must not be empty' })),
    http: array(httpRoute),
    tls: array(tlsRoute),
    tcp: array(tcpRoute),
    exportTo,
  },
  {
    check: (v, path, ctx) => {
      const hosts = v.hosts ?? [];
      const gateways = v.gateways ?? [MESH_GATEWAY];
      let ok = true;
      if (hosts.length === 0 && (v.gateways !== undefined || (v.tls ?? []).length > 0 || (v.tcp ?? []).length > 0)) {
        ctx.report('TRELLIS_CONFIG_REQUIRED', [...path, 'hosts'], 'hosts is required (only a delegate VirtualService, with http routes alone, has none)');
        ok = false;
      }
      if (gateways.includes(MESH_GATEWAY)) {
        hosts.forEach((h, i) => {
          if (h !== '*') return;
          ctx.report('TRELLIS_CONFIG_INVALID_VALUE', [...path, 'hosts', i], 'wildcard host "*" is not allowed for VirtualServices bound to the mesh gateway');
          ok = false;
        });
      }
      if ((v.http ?? []).length === 0 && (v.tls ?? []).length === 0 && (v.tcp ?? []).length === 0) {
        ctx.report('TRELLIS_CONFIG_REQUIRED', path, 'a VirtualService needs http, tls or tcp routes');
        ok = false;
      }
      return ok;
    },
    map: (v, _path, ctx): VirtualServiceSpec => ({
      hosts: (v.hosts ?? []).map((h) => resolveHost(h, ctx.namespace, ctx.domain)),
      gateways: (v.gateways ?? [MESH_GATEWAY]).map((g) => resolveGatewayRef(g, ctx.namespace)),
      http: v.http ?? [],
      tls: v.tls ?? [],
      tcp: v.tcp ?? [],
      exportTo: v.exportTo ?? ['*'],
    }),
  },
);

export type { Destination, HeaderOperations };

/**
 * What a matched route does, compiled: forward to a cluster (or one of weighted
 * clusters) with rewrites, header mutations and hash policies; answer with a redirect; or
 * answer directly. Header mutations of a weighted cluster apply after the route's.
 */
import type RE2 from 're2';
import { compileRE2 } from './re2.js';
import { durationMs } from '../../xds/duration.js';
import { unpack } from '../config/unpack.js';
import { compileCors, CORS_FILTER, type CorsConfig } from '../filters/cors.js';
import { compileFault, FAULT_FILTER, type FaultConfig, fraction } from '../filters/fault.js';
import { compileRetryPolicy, type RetryPolicy } from '../resilience/retry-policy.js';
import type { Route__Output } from '../../xds/generated/envoy/config/route/v3/Route.js';
import type { HeaderValueOption__Output } from '../../xds/generated/envoy/config/core/v3/HeaderValueOption.js';
import type { _envoy_config_route_v3_RouteAction_HashPolicy__Output as RouteAction_HashPolicy__Output } from '../../xds/generated/envoy/config/route/v3/RouteAction.js';


export interface HeaderAdd {
  readonly name: string;
  readonly value: string;
  /** OVERWRITE_IF_EXISTS_OR_ADD; otherwise appended. */
  readonly overwrite: boolean;
}

export interface HeaderMutation {
  readonly add: readonly HeaderAdd[];
  readonly remove: readonly string[];
}

export type HashPolicy =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string; readonly ttlMs: number | null; readonly path: string }
  | { readonly kind: 'source-ip' }
  | { readonly kind: 'query'; readonly name: string };

export interface WeightedTarget {
  readonly cluster: string;
  /** Cumulative weight up to and including this target. */
  readonly upTo: number;
  readonly requestHeaders: HeaderMutation | null;
  readonly responseHeaders: HeaderMutation | null;
}

export interface ForwardAction {
  readonly kind: 'forward';
  readonly targets: readonly WeightedTarget[];
  readonly totalWeight: number;
  /** Replaces the matched prefix (or the whole path for exact matches). */
  readonly prefixRewrite: string | null;
  readonly matchedPrefix: string | null;
  readonly regexRewrite: { readonly re: RE2; readonly substitution: string } | null;
  readonly hostRewrite: string | null;
  readonly hashPolicies: readonly HashPolicy[] | null;
  /** 0 = no timeout (Istio's default). The whole exchange, retries included. */
  readonly timeoutMs: number;
  /**
   * `max_stream_duration.grpc_timeout_header_max`: a gRPC request's `grpc-timeout` bounds
   * the exchange, capped at this (0 = no cap); null when `grpc-timeout` is not honoured.
   */
  readonly grpcTimeoutMaxMs: number | null;
  readonly retry: RetryPolicy | null;
  readonly fault: FaultConfig | null;
  readonly cors: CorsConfig | null;
  /** Request mirroring (`request_mirror_policies`); null when none. */
  readonly mirrors: readonly MirrorPolicy[] | null;
  readonly requestHeaders: HeaderMutation | null;
  readonly responseHeaders: HeaderMutation | null;
  /** Raw per-filter configs (CORS...), for the filters that read them. */
  readonly perFilter: Readonly<Record<string, unknown>>;
}

export interface MirrorPolicy {
  readonly cluster: string;
  /** Fraction of requests mirrored, in [0, 1]. */
  readonly fraction: number;
}

export interface RedirectAction {
  readonly kind: 'redirect';
  readonly status: number;
  readonly scheme: string | null;
  readonly host: string | null;
  readonly port: number | null;
  readonly path: string | null;
  readonly prefixRewrite: string | null;
  readonly matchedPrefix: string | null;
  readonly stripQuery: boolean;
  readonly responseHeaders: HeaderMutation | null;
}

export interface DirectAction {
  readonly kind: 'direct';
  readonly status: number;
  readonly body: Buffer;
  readonly responseHeaders: HeaderMutation | null;
  readonly fault: FaultConfig | null;
  readonly cors: CorsConfig | null;
  readonly perFilter: Readonly<Record<string, unknown>>;
}

export type RouteAction = ForwardAction | RedirectAction | DirectAction;

const REDIRECT_STATUS: Readonly<Record<string, number>> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

function mutation(add: readonly HeaderValueOption__Output[], remove: readonly string[]): HeaderMutation | null {
  if (add.length === 0 && remove.length === 0) return null;
  return {
    add: add.map((o) => ({
      name: (o.header?.key ?? '').toLowerCase(),
      value: o.header?.value ?? '',
      overwrite: o.append_action === 'OVERWRITE_IF_EXISTS_OR_ADD' || o.append_action === 'OVERWRITE_IF_EXISTS' || (o.append_action === undefined && o.append?.value === false),
    })),
    remove: remove.map((r) => r.toLowerCase()),
  };
}


function hashPolicies(list: readonly RouteAction_HashPolicy__Output[]): readonly HashPolicy[] | null {
  const out: HashPolicy[] = [];
  for (const h of list) {
    if (h.header != null) out.push({ kind: 'header', name: h.header.header_name.toLowerCase() });
    else if (h.cookie != null) out.push({ kind: 'cookie', name: h.cookie.name, ttlMs: h.cookie.ttl == null ? null : durationMs(h.cookie.ttl), path: h.cookie.path });
    else if (h.connection_properties?.source_ip === true) out.push({ kind: 'source-ip' });
    else if (h.query_parameter != null) out.push({ kind: 'query', name: h.query_parameter.name });
  }
  return out.length === 0 ? null : out;
}

export function compileRouteAction(route: Route__Output): RouteAction {
  const requestHeaders = mutation(route.request_headers_to_add, route.request_headers_to_remove);
  const responseHeaders = mutation(route.response_headers_to_add, route.response_headers_to_remove);
  const m = route.match;
  const matchedPrefix = m?.path_specifier === 'prefix' ? (m.prefix ?? '') : m?.path_specifier === 'path' ? (m.path ?? '') : null;
  const perFilter = (route.typed_per_filter_config ?? {}) as Readonly<Record<string, unknown>>;
  if (route.action === 'redirect' && route.redirect != null) {
    const r = route.redirect;
    return {
      kind: 'redirect',
      status: REDIRECT_STATUS[r.response_code] ?? 301,
      scheme: r.https_redirect === true ? 'https' : r.scheme_redirect ?? null,
      host: r.host_redirect === '' ? null : r.host_redirect,
      port: r.port_redirect === 0 ? null : r.port_redirect,
      path: r.path_redirect ?? null,
      prefixRewrite: r.prefix_rewrite ?? null,
      matchedPrefix,
      stripQuery: r.strip_query,
      responseHeaders,
    };
  }
  if (route.action === 'direct_response' && route.direct_response != null) {
    const body = route.direct_response.body;
    const bytes = body?.inline_string !== undefined ? Buffer.from(body.inline_string) : body?.inline_bytes !== undefined ? Buffer.from(body.inline_bytes) : Buffer.alloc(0);
    return { kind: 'direct', status: route.direct_response.status, body: bytes, responseHeaders, fault: compileFault(unpack(perFilter[FAULT_FILTER])?.value), cors: compileCors(unpack(perFilter[CORS_FILTER])?.value), perFilter };
  }
  const a = route.route;
  const targets: WeightedTarget[] = [];
  let total = 0;
  if (a?.cluster_specifier === 'weighted_clusters' && a.weighted_clusters != null) {
    for (const c of a.weighted_clusters.clusters) {
      const w = c.weight?.value ?? 0;
      if (w <= 0) continue;
      total += w;
      targets.push({
        cluster: c.name,
        upTo: total,
        requestHeaders: mutation(c.request_headers_to_add, c.request_headers_to_remove),
        responseHeaders: mutation(c.response_headers_to_add, c.response_headers_to_remove),
      });
    }
  } else {
    total = 1;
    targets.push({ cluster: a?.cluster ?? '', upTo: 1, requestHeaders: null, responseHeaders: null });
  }
  return {
    kind: 'forward',
    targets,
    totalWeight: total,
    prefixRewrite: a?.prefix_rewrite ? a.prefix_rewrite : null,
    matchedPrefix,
    regexRewrite: a?.regex_rewrite?.pattern != null ? { re: rewriteRegex(a.regex_rewrite.pattern.regex), substitution: envoySubstitution(a.regex_rewrite.substitution) } : null,
    hostRewrite: a?.host_rewrite_literal ?? null,
    hashPolicies: a == null ? null : hashPolicies(a.hash_policy),
    timeoutMs: durationMs(a?.timeout),
    grpcTimeoutMaxMs: a?.max_stream_duration?.grpc_timeout_header_max == null ? null : durationMs(a.max_stream_duration.grpc_timeout_header_max),
    retry: compileRetryPolicy(a?.retry_policy),
    fault: compileFault(unpack(perFilter[FAULT_FILTER])?.value),
    cors: compileCors(unpack(perFilter[CORS_FILTER])?.value),
    mirrors: mirrorPolicies(a?.request_mirror_policies ?? []),
    requestHeaders,
    responseHeaders,
    perFilter,
  };
}

function mirrorPolicies(list: readonly { cluster: string; runtime_fraction?: { default_value?: { numerator?: number; denominator?: string | number } | null } | null }[]): readonly MirrorPolicy[] | null {
  const out = list.filter((m) => m.cluster !== '').map((m) => ({ cluster: m.cluster, fraction: m.runtime_fraction?.default_value == null ? 1 : fraction(m.runtime_fraction.default_value) }));
  return out.length === 0 ? null : out;
}

/** Envoy's regex_rewrite replaces every match (not a full match): an unanchored RE2, global. */
function rewriteRegex(pattern: string): RE2 {
  return compileRE2(pattern, 'gu');
}

/** Envoy substitutions use `\1`; JavaScript replacement strings use `$1`. */
function envoySubstitution(s: string): string {
  return s.replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1');
}

/** Picks the cluster for a random number in [0, 1). */
export function pickTarget(action: ForwardAction, random: number): WeightedTarget {
  const targets = action.targets;
  if (targets.length === 1) return targets[0] as WeightedTarget;
  const point = random * action.totalWeight;
  for (const t of targets) if (point < t.upTo) return t;
  return targets[targets.length - 1] as WeightedTarget;
}

/** The path after the route's rewrite. */
export function rewritePath(action: ForwardAction, path: string): string {
  if (action.regexRewrite !== null) return path.replace(action.regexRewrite.re as unknown as RegExp, action.regexRewrite.substitution);
  if (action.prefixRewrite !== null && action.matchedPrefix !== null) return action.prefixRewrite + path.slice(action.matchedPrefix.length);
  return path;
}

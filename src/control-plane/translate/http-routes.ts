/**
 * VirtualService HTTP routes → Envoy routes. One Envoy route per match block (Istio ORs
 * match blocks; conditions inside a block are ANDed, which Envoy's RouteMatch does).
 * Selectors that Istio applies at translation time rather than per request —
 * `sourceLabels`, `sourceNamespace`, `gateways`, `port` — choose which blocks a proxy
 * gets. Resilience fields as Istio's route.go writes them: the route timeout (none by
 * default: Envoy's 15 s is turned off) and the gRPC timeout cap, the retry policy
 * (retry-policy.ts; Istio's default when a route has none), request mirroring, and fault
 * injection through the fault filter's per-route config (fault-injection.ts).
 */
import { selects, type StringMatch } from '../../api/common.js';
import type { HttpMatch, HttpRoute, CorsPolicy, HeaderOperations, HttpRouteDestination } from '../../api/networking/virtual-service.js';
import type { Resource } from '../../api/resource.js';
import type { Route } from '../../xds/generated/envoy/config/route/v3/Route.js';
import type { RouteMatch } from '../../xds/generated/envoy/config/route/v3/RouteMatch.js';
import type { HeaderMatcher } from '../../xds/generated/envoy/config/route/v3/HeaderMatcher.js';
import type { RouteAction } from '../../xds/generated/envoy/config/route/v3/RouteAction.js';
import type { HeaderValueOption } from '../../xds/generated/envoy/config/core/v3/HeaderValueOption.js';
import type { StringMatcher } from '../../xds/generated/envoy/type/matcher/v3/StringMatcher.js';
import type { RedirectAction } from '../../xds/generated/envoy/config/route/v3/RedirectAction.js';
import { anyOf } from '../../xds/any.js';
import { TYPE_URLS } from '../../xds/type-urls.js';
import { duration, hundredths, millionths, outboundClusterName } from './envoy.js';
import { faultPerFilterConfig } from './fault-injection.js';
import { destinationRuleFor, type Mesh, serviceByHost } from './mesh.js';
import type { ProxyNode } from './node.js';
import { retryPolicy } from './retry-policy.js';
import { effectivePolicy } from './traffic-policy.js';

/** Where the routes are being built: which proxy, for which gateway (`mesh` for sidecars) and port. */
export interface RouteScope {
  readonly mesh: Mesh;
  readonly node: ProxyNode;
  readonly gateway: string;
  /** The port the request arrived for; routes whose match names another port are left out. */
  readonly port: number;
  readonly grpc: boolean;
}

export function stringMatcher(m: StringMatch, ignoreCase = false): StringMatcher {
  switch (m.kind) {
    case 'exact':
      return { exact: m.value, ignore_case: ignoreCase };
    case 'prefix':
      return { prefix: m.value, ignore_case: ignoreCase };
    case 'regex':
      return { safe_regex: { regex: m.value } };
    case 'present':
      return { safe_regex: { regex: '.*' } };
  }
}

function headerMatcher(name: string, m: StringMatch, invert: boolean): HeaderMatcher {
  if (m.kind === 'present') return { name, present_match: true, invert_match: invert };
  // withoutHeaders: a request without the header does not match the condition, so the
  // negated condition holds (Istio sets treat_missing_header_as_empty for this).
  return invert ? { name, string_match: stringMatcher(m), invert_match: true, treat_missing_header_as_empty: true } : { name, string_match: stringMatcher(m), invert_match: false };
}

export function routeMatch(m: HttpMatch | undefined): RouteMatch {
  const out: RouteMatch = {};
  const uri = m?.uri;
  if (uri === undefined || uri.kind === 'present') out.prefix = '/';
  else if (uri.kind === 'exact') out.path = uri.value;
  else if (uri.kind === 'prefix') out.prefix = uri.value;
  else out.safe_regex = { regex: uri.value };
  if (m === undefined) return out;
  if (m.ignoreUriCase) out.case_sensitive = { value: false };
  const headers: HeaderMatcher[] = [];
  if (m.method !== undefined) headers.push(headerMatcher(':method', m.method, false));
  if (m.scheme !== undefined) headers.push(headerMatcher(':scheme', m.scheme, false));
  if (m.authority !== undefined) headers.push(headerMatcher(':authority', m.authority, false));
  for (const [name, sm] of Object.entries(m.headers)) headers.push(headerMatcher(name, sm, false));
  for (const [name, sm] of Object.entries(m.withoutHeaders)) headers.push(headerMatcher(name, sm, true));
  if (headers.length > 0) out.headers = headers;
  const params = Object.entries(m.queryParams);
  if (params.length > 0) {
    out.query_parameters = params.map(([name, sm]) => (sm.kind === 'present' ? { name, present_match: true } : { name, string_match: stringMatcher(sm) }));
  }
  return out;
}

/** Does a match block apply to this proxy (Istio applies these selectors at translation)? */
function matchApplies(m: HttpMatch, vsGateways: readonly string[], scope: RouteScope): boolean {
  const gateways = m.gateways ?? vsGateways;
  if (!gateways.includes(scope.gateway)) return false;
  if (m.port !== undefined && m.port !== scope.port) return false;
  if (m.sourceLabels !== undefined && !selects(m.sourceLabels, scope.node.labels)) return false;
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== scope.node.namespace) return false;
  return true;
}

/** The cluster for a destination: its port, else the service's only port, else the request's. */
export function destinationCluster(scope: RouteScope, d: { host: string; subset?: string; port?: number }): string {
  const service = serviceByHost(scope.mesh, d.host);
  const only = service?.ports.length === 1 ? service.ports[0]?.port : undefined;
  return outboundClusterName(d.port ?? only ?? scope.port, d.subset ?? '', d.host);
}

function headerOptions(set: Readonly<Record<string, string>>, add: Readonly<Record<string, string>>): HeaderValueOption[] {
  return [
    ...Object.entries(set).map(([key, value]): HeaderValueOption => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })),
    ...Object.entries(add).map(([key, value]): HeaderValueOption => ({ header: { key, value }, append_action: 'APPEND_IF_EXISTS_OR_ADD' })),
  ];
}

function applyHeaders(target: Route | Record<string, unknown>, ops: HeaderOperations | undefined): void {
  if (ops === undefined) return;
  const t = target as Route;
  if (ops.request !== undefined) {
    t.request_headers_to_add = [...(t.request_headers_to_add ?? []), ...headerOptions(ops.request.set, ops.request.add)];
    t.request_headers_to_remove = [...(t.request_headers_to_remove ?? []), ...ops.request.remove];
  }
  if (ops.response !== undefined) {
    t.response_headers_to_add = [...(t.response_headers_to_add ?? []), ...headerOptions(ops.response.set, ops.response.add)];
    t.response_headers_to_remove = [...(t.response_headers_to_remove ?? []), ...ops.response.remove];
  }
}

const REDIRECT_CODES: Readonly<Record<number, RedirectAction['response_code']>> = {
  301: 'MOVED_PERMANENTLY',
  302: 'FOUND',
  303: 'SEE_OTHER',
  307: 'TEMPORARY_REDIRECT',
  308: 'PERMANENT_REDIRECT',
};

function redirectAction(r: NonNullable<HttpRoute['redirect']>): RedirectAction {
  const out: RedirectAction = { response_code: REDIRECT_CODES[r.redirectCode] ?? 'MOVED_PERMANENTLY' };
  if (r.uri !== undefined) out.path_redirect = r.uri;
  if (r.prefixRewrite !== undefined) out.prefix_rewrite = r.prefixRewrite;
  if (r.authority !== undefined) out.host_redirect = r.authority;
  if (r.port !== undefined) out.port_redirect = r.port;
  if (r.scheme !== undefined) out.scheme_redirect = r.scheme;
  return out;
}

function corsPolicy(c: CorsPolicy): object {
  const out: Record<string, unknown> = {
    allow_origin_string_match: c.allowOrigins.map((o) => stringMatcher(o)),
    allow_methods: c.allowMethods.join(','),
    allow_headers: c.allowHeaders.join(','),
    expose_headers: c.exposeHeaders.join(','),
    forward_not_matching_preflights: { value: c.unmatchedPreflights === 'FORWARD' },
  };
  if (c.maxAgeMs !== undefined) out.max_age = String(c.maxAgeMs / 1000);
  if (c.allowCredentials !== undefined) out.allow_credentials = { value: c.allowCredentials };
  return out;
}

/** Envoy hash policies from the destination's DestinationRule consistentHash. */
function hashPolicy(scope: RouteScope, host: string): RouteAction['hash_policy'] {
  const service = serviceByHost(scope.mesh, host);
  const dr = destinationRuleFor(scope.mesh, host, service?.namespace ?? scope.node.namespace, scope.node.namespace, scope.node.labels);
  const hash = effectivePolicy(dr, '', scope.port)?.loadBalancer?.consistentHash;
  if (hash === undefined) return undefined;
  if (hash.httpHeaderName !== undefined) return [{ header: { header_name: hash.httpHeaderName } }];
  if (hash.httpCookie !== undefined) {
    const c = hash.httpCookie;
    return [{ cookie: { name: c.name, path: c.path ?? '', ...(c.ttl === undefined ? {} : { ttl: duration(c.ttl) }) } }];
  }
  if (hash.useSourceIp === true) return [{ connection_properties: { source_ip: true } }];
  if (hash.httpQueryParameterName !== undefined) return [{ query_parameter: { name: hash.httpQueryParameterName } }];
  return undefined;
}

/**
 * Istio's `setTimeout`: the route timeout, 0 (none) when unset. Proxies honour a gRPC
 * client's `grpc-timeout` header, capped by the route timeout (0: uncapped) — Istio's
 * `max_grpc_timeout`, written in its non-deprecated form. Proxyless gRPC reads only
 * `max_stream_duration` (gRFC A31), where Istio puts the route timeout.
 */
function timeouts(timeoutMs: number | undefined, grpc: boolean): Pick<RouteAction, 'timeout' | 'max_stream_duration'> {
  const timeout = duration(timeoutMs ?? 0);
  return grpc ? { max_stream_duration: { max_stream_duration: timeout } } : { timeout, max_stream_duration: { grpc_timeout_header_max: timeout } };
}

/**
 * `mirror` (with `mirrorPercentage`, default 100%) and `mirrors[]` → request mirror
 * policies; 0% mirrors nothing (Istio MirrorPercent). Mirrored requests are
 * fire-and-forget, their Host gets `-shadow` appended (Envoy's default).
 */
function mirrorPolicies(route: HttpRoute, scope: RouteScope): NonNullable<RouteAction['request_mirror_policies']> {
  return route.mirrors.filter((m) => m.percentage > 0).map((m) => ({
    cluster: destinationCluster(scope, m.destination),
    runtime_fraction: { default_value: m.percentage === 100 ? hundredths(100) : millionths(m.percentage) },
    trace_sampled: { value: false },
  }));
}

function routeAction(route: HttpRoute, m: HttpMatch | undefined, scope: RouteScope): RouteAction {
  const dests = route.route.filter((d, _i, all) => d.weight > 0 || all.every((x) => x.weight === 0));
  const action: RouteAction = {};
  if (dests.length === 1) {
    action.cluster = destinationCluster(scope, (dests[0] as HttpRouteDestination).destination);
  } else {
    action.weighted_clusters = {
      clusters: dests.map((d) => {
        const cw: Record<string, unknown> = { name: destinationCluster(scope, d.destination), weight: { value: d.weight } };
        applyHeaders(cw, d.headers);
        return cw;
      }),
    };
  }
  Object.assign(action, timeouts(route.timeout, scope.grpc));
  const rw = route.rewrite;
  if (rw?.uri !== undefined) {
    if (m?.uri?.kind === 'regex') action.regex_rewrite = { pattern: { regex: m.uri.value }, substitution: rw.uri };
    else action.prefix_rewrite = rw.uri;
  }
  if (rw?.uriRegexRewrite !== undefined) action.regex_rewrite = { pattern: { regex: rw.uriRegexRewrite.match }, substitution: rw.uriRegexRewrite.rewrite };
  if (rw?.authority !== undefined) action.host_rewrite_literal = rw.authority;
  const first = dests[0]?.destination.host;
  const hp = first === undefined ? undefined : hashPolicy(scope, first);
  if (hp !== undefined) action.hash_policy = hp;
  const mirrors = mirrorPolicies(route, scope);
  if (mirrors.length > 0) action.request_mirror_policies = mirrors;
  // Istio drops the previous-hosts predicate only for a single destination that hashes.
  const retry = retryPolicy(route.retries, dests.length === 1 && hp !== undefined);
  if (retry !== undefined) action.retry_policy = retry;
  return action;
}

function buildRoute(route: HttpRoute, m: HttpMatch | undefined, scope: RouteScope): Route | undefined {
  const out: Route = { match: routeMatch(m) };
  const name = [route.name, m?.name].filter((x) => x !== undefined && x !== '').join('.');
  if (name !== '') out.name = name;
  if (route.redirect !== undefined) {
    if (scope.grpc) return undefined; // proxyless gRPC NACKs redirects
    out.redirect = redirectAction(route.redirect);
  } else if (route.directResponse !== undefined) {
    if (scope.grpc) return undefined; // and direct responses
    const body = route.directResponse.body;
    out.direct_response = { status: route.directResponse.status };
    if (body?.string !== undefined) out.direct_response.body = { inline_string: body.string };
    else if (body?.bytes !== undefined) out.direct_response.body = { inline_bytes: Buffer.from(body.bytes, 'base64') };
  } else if (route.route.length > 0) {
    out.route = routeAction(route, m, scope);
    if (route.route.length === 1) applyHeaders(out, route.route[0]?.headers);
  } else {
    return undefined; // a delegate: resolved by the caller
  }
  applyHeaders(out, route.headers);
  const perFilter: NonNullable<Route['typed_per_filter_config']> = {};
  if (route.fault !== undefined) Object.assign(perFilter, faultPerFilterConfig(route.fault));
  if (route.corsPolicy !== undefined && !scope.grpc) perFilter['envoy.filters.http.cors'] = anyOf(TYPE_URLS.CORS_POLICY, corsPolicy(route.corsPolicy));
  if (Object.keys(perFilter).length > 0) out.typed_per_filter_config = perFilter;
  return out;
}

/**
 * The Envoy routes of one VirtualService for this scope, first match first. A delegate
 * route is replaced by the delegate VirtualService's routes (Istio: one level).
 */
export function virtualServiceRoutes(vs: Resource<'VirtualService'>, scope: RouteScope, depth = 0): Route[] {
  const out: Route[] = [];
  for (const route of vs.spec.http) {
    if (route.delegate !== undefined) {
      if (depth > 0) continue;
      const ns = route.delegate.namespace ?? vs.metadata.namespace;
      const target = scope.mesh.virtualServices.find((v) => v.metadata.name === route.delegate?.name && v.metadata.namespace === ns);
      if (target !== undefined) out.push(...virtualServiceRoutes({ ...target, spec: { ...target.spec, gateways: vs.spec.gateways } }, scope, depth + 1));
      continue;
    }
    const blocks = route.match.length === 0 ? [undefined] : route.match.filter((m) => matchApplies(m, vs.spec.gateways, scope));
    if (route.match.length === 0 && !vs.spec.gateways.includes(scope.gateway)) continue;
    for (const m of blocks) {
      const r = buildRoute(route, m, scope);
      if (r !== undefined) out.push(r);
    }
  }
  return out;
}

/**
 * The route to a service when no VirtualService applies, with Istio's default retry
 * policy — previous-hosts predicate included even when the DestinationRule hashes, as
 * Istio's BuildDefaultHTTPOutboundRoute does.
 */
export function defaultRoute(scope: RouteScope, host: string): Route {
  const action: RouteAction = { cluster: destinationCluster(scope, { host, port: scope.port }), ...timeouts(undefined, scope.grpc) };
  const hp = hashPolicy(scope, host);
  if (hp !== undefined) action.hash_policy = hp;
  action.retry_policy = retryPolicy(undefined, false);
  return { name: 'default', match: { prefix: '/' }, route: action };
}

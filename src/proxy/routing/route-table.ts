/**
 * A compiled RouteConfiguration: virtual hosts chosen by domain as Envoy does (exact,
 * then the longest `*.suffix`, then the longest `prefix*`, then `*`; the port is ignored
 * when the host with port does not match, as Istio sets for sidecars), then the first
 * route whose match holds. Built once when the configuration arrives; `match()` per
 * request allocates nothing but its result.
 */
import type { RouteConfiguration__Output } from '../../xds/generated/envoy/config/route/v3/RouteConfiguration.js';
import type { VirtualHost__Output } from '../../xds/generated/envoy/config/route/v3/VirtualHost.js';
import type { Route__Output } from '../../xds/generated/envoy/config/route/v3/Route.js';
import type { RouteMatch__Output } from '../../xds/generated/envoy/config/route/v3/RouteMatch.js';
import { compileRouteAction, type RedirectAction, type RouteAction } from './route-action.js';
import { compileHeaderMatcher, compileStringMatcher, fullMatchRegex, type HeaderMatch, type ValueMatcher } from './string-matcher.js';
import type RE2 from 're2';

/** What routing looks at, built once per request by the listener. */
export interface RequestInfo {
  readonly method: string;
  /** The path without the query string. */
  readonly path: string;
  /** The query string without `?`; '' when none. */
  readonly query: string;
  /** Host[:port], lower-cased. */
  readonly authority: string;
  readonly scheme: string;
  /** Flat [name, value, ...] with lower-case names. */
  readonly headers: readonly string[];
}

export function headerValue(req: RequestInfo, name: string): string | undefined {
  switch (name) {
    case ':method':
      return req.method;
    case ':path':
      return req.query === '' ? req.path : `${req.path}?${req.query}`;
    case ':authority':
    case 'host':
      return req.authority;
    case ':scheme':
      return req.scheme;
  }
  let out: string | undefined;
  const h = req.headers;
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] !== name) continue;
    // Envoy joins repeated headers with "," for matching.
    out = out === undefined ? (h[i + 1] as string) : `${out},${h[i + 1] as string}`;
  }
  return out;
}

/** The value of query parameter `name` (decoded), '' for `?name`, undefined when absent. */
export function queryValue(query: string, name: string): string | undefined {
  if (query === '') return undefined;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    const eq = query.indexOf('=', start);
    const keyEnd = eq >= 0 && eq < end ? eq : end;
    if (query.slice(start, keyEnd) === name) return keyEnd === end ? '' : decodeSafe(query.slice(keyEnd + 1, end));
    start = end + 1;
  }
  return undefined;
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

const PATH_PREFIX = 0;
const PATH_EXACT = 1;
const PATH_REGEX = 2;

class CompiledRoute {
  readonly pathKind: number;
  readonly pathValue: string;
  readonly pathRegex: RE2 | null;
  readonly ignoreCase: boolean;
  /** null when the route has no header conditions (STYLE 13: an empty stage is null). */
  readonly headers: readonly HeaderMatch[] | null;
  readonly query: readonly { name: string; value: ValueMatcher | null }[] | null;
  readonly action: RouteAction;

  constructor(readonly route: Route__Output, readonly name: string) {
    const m: RouteMatch__Output = route.match ?? ({} as RouteMatch__Output);
    this.ignoreCase = m.case_sensitive?.value === false;
    const norm = (s: string): string => (this.ignoreCase ? s.toLowerCase() : s);
    if (m.path_specifier === 'path') {
      this.pathKind = PATH_EXACT;
      this.pathValue = norm(m.path ?? '');
      this.pathRegex = null;
    } else if (m.path_specifier === 'safe_regex') {
      this.pathKind = PATH_REGEX;
      this.pathValue = '';
      this.pathRegex = fullMatchRegex(m.safe_regex?.regex ?? '');
    } else {
      this.pathKind = PATH_PREFIX;
      this.pathValue = norm(m.prefix ?? '');
      this.pathRegex = null;
    }
    this.headers = m.headers.length === 0 ? null : m.headers.map(compileHeaderMatcher);
    this.query = m.query_parameters.length === 0
      ? null
      : m.query_parameters.map((q) => ({ name: q.name, value: q.query_parameter_match_specifier === 'string_match' && q.string_match != null ? compileStringMatcher(q.string_match) : null }));
    this.action = compileRouteAction(route);
  }

  matches(req: RequestInfo): boolean {
    const path = this.ignoreCase ? req.path.toLowerCase() : req.path;
    if (this.pathKind === PATH_PREFIX) {
      if (!path.startsWith(this.pathValue)) return false;
    } else if (this.pathKind === PATH_EXACT) {
      if (path !== this.pathValue) return false;
    } else if (!(this.pathRegex as RE2).test(path)) {
      return false;
    }
    if (this.headers !== null) {
      for (const h of this.headers) if (!h.test(headerValue(req, h.name))) return false;
    }
    if (this.query !== null) {
      for (const q of this.query) {
        const v = queryValue(req.query, q.name);
        if (v === undefined || (q.value !== null && !q.value.matches(v))) return false;
      }
    }
    return true;
  }
}

/**
 * Envoy's answer to a plaintext request for a virtual host with `require_tls`: 301 to
 * `https://<host without port><path>` (the query kept), before any route is matched.
 */
export const HTTPS_REDIRECT: RedirectAction = {
  kind: 'redirect',
  status: 301,
  scheme: 'https',
  host: null,
  port: 443,
  path: null,
  prefixRewrite: null,
  matchedPrefix: null,
  stripQuery: false,
  responseHeaders: null,
};

export class CompiledVirtualHost {
  readonly name: string;
  readonly routes: readonly CompiledRoute[];
  /**
   * `require_tls` ALL (what Istio's `httpsRedirect` becomes) or EXTERNAL_ONLY (treated
   * as ALL: every client of a gateway is external): requests not over TLS are redirected.
   */
  readonly requireTls: boolean;
  constructor(vh: VirtualHost__Output) {
    this.name = vh.name;
    this.routes = vh.routes.map((r) => new CompiledRoute(r, r.name));
    const tls = vh.require_tls as unknown;
    this.requireTls = tls === 'ALL' || tls === 'EXTERNAL_ONLY' || tls === 2 || tls === 1;
  }
}

export type RouteMatchResult = { readonly vhost: CompiledVirtualHost; readonly name: string; readonly action: RouteAction } | undefined;

export class RouteTable {
  readonly name: string;
  readonly #exact = new Map<string, CompiledVirtualHost>();
  /** Longest first. */
  readonly #suffix: { suffix: string; vhost: CompiledVirtualHost }[] = [];
  readonly #prefix: { prefix: string; vhost: CompiledVirtualHost }[] = [];
  #any: CompiledVirtualHost | undefined;

  /** Throws when a regex is not valid RE2; the xDS client NACKs the resource. */
  constructor(config: RouteConfiguration__Output) {
    this.name = config.name;
    for (const vh of config.virtual_hosts) {
      const compiled = new CompiledVirtualHost(vh);
      for (const raw of vh.domains) {
        const d = raw.toLowerCase();
        if (d === '*') this.#any ??= compiled;
        else if (d.startsWith('*')) this.#suffix.push({ suffix: d.slice(1), vhost: compiled });
        else if (d.endsWith('*')) this.#prefix.push({ prefix: d.slice(0, -1), vhost: compiled });
        else if (!this.#exact.has(d)) this.#exact.set(d, compiled);
      }
    }
    this.#suffix.sort((a, b) => b.suffix.length - a.suffix.length);
    this.#prefix.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  virtualHost(authority: string): CompiledVirtualHost | undefined {
    const found = this.#lookup(authority);
    if (found !== undefined) return found;
    const colon = authority.lastIndexOf(':');
    if (colon > 0 && authority.indexOf(']') < colon) return this.#lookup(authority.slice(0, colon)) ?? this.#any;
    return this.#any;
  }

  #lookup(host: string): CompiledVirtualHost | undefined {
    const exact = this.#exact.get(host);
    if (exact !== undefined) return exact;
    for (const s of this.#suffix) if (host.length > s.suffix.length && host.endsWith(s.suffix)) return s.vhost;
    for (const p of this.#prefix) if (host.length > p.prefix.length && host.startsWith(p.prefix)) return p.vhost;
    return undefined;
  }

  /**
   * The route for a request; undefined means no route (Envoy answers 404 with flag NR).
   * A plaintext request to a virtual host that requires TLS gets HTTPS_REDIRECT.
   */
  match(req: RequestInfo): RouteMatchResult {
    const vhost = this.virtualHost(req.authority);
    if (vhost === undefined) return undefined;
    if (vhost.requireTls && req.scheme !== 'https') return { vhost, name: '', action: HTTPS_REDIRECT };
    for (const r of vhost.routes) if (r.matches(req)) return { vhost, name: r.name, action: r.action };
    return undefined;
  }
}

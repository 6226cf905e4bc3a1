/**
 * Envoy's CORS filter (`envoy.filters.http.cors`) with the per-route `CorsPolicy` the
 * control plane writes for a VirtualService `corsPolicy`, compiled once per route:
 *
 * - A request without `Origin`, or whose origin no `allow_origin_string_match` matches, is
 *   not a CORS request: it goes on unchanged (a non-matching preflight too, unless
 *   `forward_not_matching_preflights` is false, when it is answered 200 without CORS headers).
 * - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) from an
 *   allowed origin is answered by the proxy, 200, with the allow-* and max-age headers;
 *   the application never sees it.
 * - Any other request from an allowed origin is forwarded, and its response gets
 *   `access-control-allow-origin` (the request's origin), `-allow-credentials` and
 *   `-expose-headers`.
 */
import { compileStringMatcher, type ValueMatcher } from '../routing/string-matcher.js';
import type { HeaderMutation } from '../routing/route-action.js';
import type { StringMatcher__Output } from '../../xds/generated/envoy/type/matcher/v3/StringMatcher.js';

export const CORS_FILTER = 'envoy.filters.http.cors';

export interface CorsConfig {
  readonly origins: readonly ValueMatcher[];
  readonly allowMethods: string;
  readonly allowHeaders: string;
  readonly exposeHeaders: string;
  readonly maxAge: string;
  readonly allowCredentials: boolean;
  readonly forwardNotMatchingPreflights: boolean;
}

interface CorsPolicyWire {
  readonly allow_origin_string_match?: readonly StringMatcher__Output[];
  readonly allow_methods?: string;
  readonly allow_headers?: string;
  readonly expose_headers?: string;
  readonly max_age?: string;
  readonly allow_credentials?: { readonly value?: boolean } | null;
  readonly forward_not_matching_preflights?: { readonly value?: boolean } | null;
}

/** The route's CORS policy from its `typed_per_filter_config` entry (decoded), or null. */
export function compileCors(wire: unknown): CorsConfig | null {
  if (wire === null || typeof wire !== 'object') return null;
  const c = wire as CorsPolicyWire;
  const origins = (c.allow_origin_string_match ?? []).map(compileStringMatcher);
  return {
    origins,
    allowMethods: c.allow_methods ?? '',
    allowHeaders: c.allow_headers ?? '',
    exposeHeaders: c.expose_headers ?? '',
    maxAge: c.max_age ?? '',
    allowCredentials: c.allow_credentials?.value === true,
    forwardNotMatchingPreflights: c.forward_not_matching_preflights?.value !== false,
  };
}

/** What the filter does with one request. */
export type CorsVerdict =
  | { readonly kind: 'pass' }
  /** Answer the preflight here: 200 with these headers (flat). */
  | { readonly kind: 'preflight'; readonly headers: readonly string[] }
  /** Forward; add these response headers. */
  | { readonly kind: 'forward'; readonly response: HeaderMutation };

const PASS: CorsVerdict = { kind: 'pass' };
const EMPTY_PREFLIGHT: CorsVerdict = { kind: 'preflight', headers: [] };

export function corsVerdict(cors: CorsConfig, method: string, origin: string | undefined, requestMethod: string | undefined): CorsVerdict {
  if (origin === undefined || origin === '') return PASS;
  const allowed = cors.origins.some((m) => m.matches(origin));
  const preflight = method === 'OPTIONS' && requestMethod !== undefined && requestMethod !== '';
  if (!allowed) return preflight && !cors.forwardNotMatchingPreflights ? EMPTY_PREFLIGHT : PASS;
  if (preflight) {
    const h = ['access-control-allow-origin', origin];
    if (cors.allowCredentials) h.push('access-control-allow-credentials', 'true');
    if (cors.allowMethods !== '') h.push('access-control-allow-methods', cors.allowMethods);
    if (cors.allowHeaders !== '') h.push('access-control-allow-headers', cors.allowHeaders);
    if (cors.maxAge !== '') h.push('access-control-max-age', cors.maxAge);
    return { kind: 'preflight', headers: h };
  }
  const add = [{ name: 'access-control-allow-origin', value: origin, overwrite: true }];
  if (cors.allowCredentials) add.push({ name: 'access-control-allow-credentials', value: 'true', overwrite: true });
  if (cors.exposeHeaders !== '') add.push({ name: 'access-control-expose-headers', value: cors.exposeHeaders, overwrite: true });
  return { kind: 'forward', response: { add, remove: [] } };
}

/**
 * Header conversions between HTTP/2 and the proxy's flat header lists
 * (`[name, value, ...]`, lower-case names), and the gRPC conventions the proxy follows
 * when it answers itself. HTTP/2 forbids the connection-specific fields of HTTP/1.1
 * (RFC 9113 §8.2.2; `node:http2` throws for them), so they are dropped on the way in and
 * on the way out; `te` passes only as `trailers`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { RequestInfo } from '../../routing/route-table.js';
import type { ListenContext } from '../context.js';
import { applyMutation, type ForwardDecision, headerOf, removeHeader } from '../router.js';

/** Fields HTTP/2 does not carry (RFC 9113 §8.2.2), plus `host` (`:authority` replaces it). */
export function isConnectionSpecific(name: string): boolean {
  switch (name.length) {
    case 4: return name === 'host';
    case 7: return name === 'upgrade';
    case 10: return name === 'connection' || name === 'keep-alive';
    case 14: return name === 'http2-settings';
    case 16: return name === 'proxy-connection';
    case 17: return name === 'transfer-encoding';
    default: return false;
  }
}

/** The non-pseudo fields of an HTTP/2 header block given as Node's raw list (names already lower-case). */
export function flatFromRaw(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.charCodeAt(0) !== 0x3a /* : */) out.push(name, raw[i + 1] as string);
  }
  return out;
}

/** The non-pseudo fields of a header object Node decoded (values joined or arrays). */
export function flatFromObject(headers: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name in headers) {
    if (name.charCodeAt(0) === 0x3a) continue;
    const v = headers[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, String(v));
  }
  return out;
}

/**
 * Fields `node:http2` allows once per header block: it throws for a repeated one
 * (ERR_HTTP2_HEADER_SINGLE_VALUE; Node's `kSingleValueHeaders`). An HTTP/1.1 upstream may
 * well repeat one (two `Date` or `ETag` lines); the first is kept.
 */
const SINGLE_VALUE: ReadonlySet<string> = new Set([
  'access-control-allow-credentials', 'access-control-max-age', 'access-control-request-method', 'age',
  'authorization', 'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5',
  'content-range', 'content-type', 'date', 'dnt', 'etag', 'expires', 'from', 'host', 'if-match',
  'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified', 'location',
  'max-forwards', 'proxy-authorization', 'range', 'referer', 'retry-after', 'tk', 'upgrade-insecure-requests',
  'user-agent', 'x-content-type-options',
]);

/**
 * A flat list as an HTTP/2 header object (repeated names as arrays, except the fields
 * that HTTP/2 in Node allows once: their first value), without connection-specific
 * fields; `te` kept only as `trailers` (RFC 9113 §8.2.2).
 */
export function h2Object(flat: readonly string[], into: OutgoingHttpHeaders): OutgoingHttpHeaders {
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i] as string;
    const value = flat[i + 1] as string;
    if (isConnectionSpecific(name)) continue;
    if (name === 'te' && value.toLowerCase() !== 'trailers') continue;
    const prev = into[name];
    if (prev === undefined) into[name] = value;
    else if (SINGLE_VALUE.has(name)) continue;
    else if (Array.isArray(prev)) prev.push(value);
    else into[name] = [String(prev), value];
  }
  return into;
}

/**
 * The request headers to send upstream, flat, without `host` (the caller writes it as
 * `:authority` or `Host`): `x-request-id` generated when missing; at gateways the client
 * appended to `x-forwarded-for` and `x-forwarded-proto` set (Envoy use_remote_address);
 * then the route's and the destination's header operations. The same rules as the
 * HTTP/1.1 engine. Rewrites `headers` (the request's own list, no longer needed for
 * routing) and returns it: one list per request, not a copy.
 */
export function upstreamRequestHeaders(ctx: ListenContext, headers: string[], d: ForwardDecision, info: RequestInfo, remoteAddress: string | undefined): string[] {
  const out = headers;
  removeHeader(out, 'host');
  if (headerOf(out, 'x-request-id') === undefined) out.push('x-request-id', randomUUID());
  if (ctx.mode === 'gateway') {
    const xff = headerOf(out, 'x-forwarded-for');
    removeHeader(out, 'x-forwarded-for');
    const remote = remoteAddress ?? '';
    out.push('x-forwarded-for', xff === undefined ? remote : `${xff}, ${remote}`);
    if (headerOf(out, 'x-forwarded-proto') === undefined) out.push('x-forwarded-proto', info.scheme);
  } else if (ctx.secure) {
    // TLS terminated here (an inbound TLS chain): what the client used is known only here.
    removeHeader(out, 'x-forwarded-proto');
    out.push('x-forwarded-proto', 'https');
  }
  applyMutation(out, d.action.requestHeaders);
  applyMutation(out, d.target.requestHeaders);
  return out;
}

// ---- gRPC ----

/** `application/grpc`, `application/grpc+proto`, `application/grpc-web+proto`... */
export function isGrpcContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.startsWith('application/grpc');
}

/** gRPC status codes the proxy produces. */
export const GRPC_STATUS = {
  ok: 0,
  unknown: 2,
  internal: 13,
  unavailable: 14,
  unimplemented: 12,
  permissionDenied: 7,
  unauthenticated: 16,
  deadlineExceeded: 4,
} as const;

/** Envoy's `Grpc::Utility::httpToGrpcStatus`, for local replies to gRPC requests. */
export function grpcStatusOfHttp(status: number): number {
  switch (status) {
    case 400: return GRPC_STATUS.internal;
    case 401: return GRPC_STATUS.unauthenticated;
    case 403: return GRPC_STATUS.permissionDenied;
    case 404: return GRPC_STATUS.unimplemented;
    case 429: case 502: case 503: case 504: return GRPC_STATUS.unavailable;
    default: return GRPC_STATUS.unknown;
  }
}

/** Percent-encodes a `grpc-message` (gRPC over HTTP/2 spec: bytes outside 0x20-0x7E, and '%'). */
export function grpcMessage(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** A trailers-only gRPC response (HTTP 200, the status in the one header block), as Envoy sends for local replies. */
export function grpcTrailersOnly(code: number, message: string): OutgoingHttpHeaders {
  return { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': grpcMessage(message) };
}

/**
 * The protocol-independent half of an HTTP request's trip: from what was asked (method,
 * authority, path, headers) to a decision — answer locally (404 NR, 503 UH/NC, a
 * redirect or a direct response) or forward to one endpoint of one cluster, with the
 * path and host rewritten. HTTP/1.1 and HTTP/2 listeners both call `decide()`.
 */
import { type ClusterRuntime, serviceOfCluster } from '../config/clusters.js';
import { chooseChain } from '../config/listeners.js';
import type { RuntimeSnapshot } from '../config/runtime.js';
import { type ForwardAction, type HeaderMutation, pickTarget, rewritePath, type WeightedTarget } from '../routing/route-action.js';
import { queryValue, type RequestInfo, type RouteTable } from '../routing/route-table.js';
import { corsVerdict } from '../filters/cors.js';
import { hashKey } from '../upstream/lb/hash.js';
import type { Endpoint, EndpointState } from '../upstream/lb/types.js';
import type { ListenContext } from './context.js';
import type { PeerWorkload } from '../telemetry/peer.js';

/** Envoy's "no flags". */
export const NO_FLAGS = '-';

export interface LocalDecision {
  readonly kind: 'local';
  readonly status: number;
  readonly flag: string;
  readonly body: Buffer;
  /** Extra response headers, flat. */
  readonly headers: readonly string[];
  readonly responseHeaders: HeaderMutation | null;
  readonly destinationService: string;
  /** A gRPC status to answer with (HTTP 200, trailers-only) for gRPC requests; -1 for none. */
  readonly grpcStatus: number;
  /** Fault injection: wait this long before answering (0: none). */
  readonly delayMs: number;
}

export interface ForwardDecision {
  readonly kind: 'forward';
  readonly action: ForwardAction;
  readonly target: WeightedTarget;
  readonly cluster: ClusterRuntime;
  readonly address: string;
  readonly port: number;
  /** Undefined for passthrough (original destination) clusters. */
  readonly endpoint: Endpoint | undefined;
  /** `outbound|9080|v1|reviews...` → `reviews.default.svc.cluster.local`. */
  readonly destinationService: string;
  /** Path and query after rewrites. */
  readonly path: string;
  /** The authority to send upstream (host rewrite applied). */
  readonly authority: string;
  /** The route's response header mutation, with the CORS filter's headers when it adds some. */
  readonly responseHeaders: HeaderMutation | null;
  /** Fault injection: wait this long before forwarding (0: none); the flags then say `DI`. */
  readonly delayMs: number;
  /** The request's consistent-hash key, for picking a retry's endpoint alike. */
  readonly hash: number | undefined;
}

export type Decision = LocalDecision | ForwardDecision;

const EMPTY = Buffer.alloc(0);

function local(status: number, flag: string, body: string | Buffer = EMPTY, headers: readonly string[] = [], responseHeaders: HeaderMutation | null = null, destinationService = 'unknown', grpcStatus = -1, delayMs = 0): LocalDecision {
  return { kind: 'local', status, flag, body: typeof body === 'string' ? Buffer.from(body) : body, headers, responseHeaders, destinationService, grpcStatus, delayMs };
}

/** Mutations of the route and of the CORS filter, in that order. */
function withCors(route: HeaderMutation | null, cors: HeaderMutation): HeaderMutation {
  return route === null ? cors : { add: [...route.add, ...cors.add], remove: route.remove };
}

const FAULT_ABORT_BODY = Buffer.from('fault filter abort');

/** The port a request is for: from its authority, else the scheme's default. */
export function portOf(authority: string, scheme: string): number {
  const colon = authority.lastIndexOf(':');
  if (colon > 0 && authority.indexOf(']') < colon) {
    const p = Number(authority.slice(colon + 1));
    if (Number.isInteger(p) && p > 0 && p < 65536) return p;
  }
  return scheme === 'https' ? 443 : 80;
}

function hostOf(authority: string): string {
  const colon = authority.lastIndexOf(':');
  const host = colon > 0 && authority.indexOf(']') < colon ? authority.slice(0, colon) : authority;
  return host.replace(/^\[|\]$/g, '');
}

/**
 * The route table for a request on this listener: on the sidecar's outbound listener the
 * filter chain is chosen by the request's destination port; on other listeners by the
 * connection's destination port, or it is the one the connection's ClientHello chose.
 */
function routeTable(snapshot: RuntimeSnapshot, ctx: ListenContext, port: number): RouteTable | undefined {
  const listener = snapshot.listeners.get(ctx.listenerName);
  if (listener === undefined) return undefined;
  const chain = ctx.chain ?? chooseChain(listener, ctx.mode === 'outbound' ? port : ctx.destinationPort, undefined, undefined);
  if (chain === null || chain.kind !== 'http') return undefined;
  return chain.inline ?? snapshot.routes.get(chain.rds ?? '');
}

export function headerOf(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}


function cookieOf(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The consistent-hash key of a request, by the route's first hash policy that yields one. */
function hashOf(action: ForwardAction, info: RequestInfo, remoteAddress: string | undefined): number | undefined {
  const policies = action.hashPolicies;
  if (policies === null) return undefined;
  for (const p of policies) {
    let key: string | undefined;
    if (p.kind === 'header') key = headerOf(info.headers, p.name);
    else if (p.kind === 'source-ip') key = remoteAddress;
    else if (p.kind === 'query') key = queryValue(info.query, p.name);
    else key = cookieOf(headerOf(info.headers, 'cookie'), p.name);
    if (key !== undefined) return hashKey(key);
  }
  return undefined;
}


const REDIRECT_REASONS = 'location';

export function decide(ctx: ListenContext, info: RequestInfo, remoteAddress: string | undefined): Decision {
  const snapshot = ctx.config.current;
  const port = portOf(info.authority, info.scheme);
  const match = routeTable(snapshot, ctx, port)?.match(info);
  if (match === undefined) return local(404, 'NR');
  const action = match.action;
  let responseHeaders = action.responseHeaders;
  let delayMs = 0;
  if (action.kind !== 'redirect') {
    if (action.cors !== null) {
      const v = corsVerdict(action.cors, info.method, headerOf(info.headers, 'origin'), headerOf(info.headers, 'access-control-request-method'));
      if (v.kind === 'preflight') return local(200, NO_FLAGS, EMPTY, v.headers, null);
      if (v.kind === 'forward') responseHeaders = withCors(responseHeaders, v.response);
    }
    const fault = action.fault;
    if (fault !== null) {
      // Delay, then abort, each drawn on its own (Envoy's fault filter).
      if (fault.delayFraction > 0 && Math.random() < fault.delayFraction) delayMs = fault.delayMs;
      if (fault.abortFraction > 0 && Math.random() < fault.abortFraction) {
        const flags = delayMs > 0 ? 'DI,FI' : 'FI';
        const service = action.kind === 'forward' ? serviceOfCluster(action.targets[0]?.cluster ?? '') : 'unknown';
        if (fault.abortGrpcStatus >= 0) return local(200, flags, EMPTY, [], responseHeaders, service, fault.abortGrpcStatus, delayMs);
        return local(fault.abortStatus, flags, FAULT_ABORT_BODY, ['content-type', 'text/plain'], responseHeaders, service, -1, delayMs);
      }
    }
  }
  if (action.kind === 'direct') return local(action.status, delayMs > 0 ? 'DI' : NO_FLAGS, action.body, [], responseHeaders, 'unknown', -1, delayMs);
  if (action.kind === 'redirect') {
    const scheme = action.scheme ?? info.scheme;
    const host = action.host ?? hostOf(info.authority);
    const defaultPort = scheme === 'https' ? 443 : 80;
    const p = action.port ?? (action.host === null ? port : defaultPort);
    let path = info.path;
    if (action.path !== null) path = action.path;
    else if (action.prefixRewrite !== null && action.matchedPrefix !== null) path = action.prefixRewrite + path.slice(action.matchedPrefix.length);
    const query = action.stripQuery || info.query === '' ? '' : `?${info.query}`;
    return local(action.status, NO_FLAGS, EMPTY, [REDIRECT_REASONS, `${scheme}://${host}${p === defaultPort ? '' : `:${p}`}${path}${query}`], action.responseHeaders);
  }
  const target = pickTarget(action, Math.random());
  const cluster = snapshot.clusters.get(target.cluster);
  if (cluster === undefined) return local(503, 'NC', 'cluster not found', [], responseHeaders, serviceOfCluster(target.cluster));
  const service = cluster.service;
  let address: string;
  let upstreamPort: number;
  let endpoint: Endpoint | undefined;
  let hash: number | undefined;
  if (cluster.kind === 'original-dst') {
    address = hostOf(info.authority);
    upstreamPort = port;
  } else {
    hash = hashOf(action, info, remoteAddress);
    endpoint = cluster.picker.pick({ hash });
    if (endpoint === undefined) return local(503, 'UH', 'no healthy upstream', [], responseHeaders, service);
    address = endpoint.address;
    upstreamPort = endpoint.port;
  }
  const path = rewritePath(action, info.path);
  return {
    kind: 'forward',
    action,
    target,
    cluster,
    address,
    port: upstreamPort,
    endpoint,
    destinationService: service,
    path: info.query === '' ? path : `${path}?${info.query}`,
    authority: action.hostRewrite ?? info.authority,
    responseHeaders,
    delayMs,
    hash,
  };
}

/** Applies a header mutation to a flat header list (names lower-case). */
export function applyMutation(headers: string[], m: HeaderMutation | null): void {
  if (m === null) return;
  for (const name of m.remove) removeHeader(headers, name);
  for (const a of m.add) {
    if (a.overwrite) removeHeader(headers, a.name);
    headers.push(a.name, a.value);
  }
}

export function removeHeader(headers: string[], name: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i] === name) headers.splice(i, 2);
}

/** What an exchange (HTTP/1.1 or HTTP/2) keeps about the forward decision it follows. */
export interface ForwardState {
  endpointState: EndpointState | null;
  /** The picked endpoint's workload, for metric labels (outbound); the caller's on inbound. */
  peer: PeerWorkload | null;
  responseHeaders: HeaderMutation | null;
  targetHeaders: HeaderMutation | null;
  connectTimeoutMs: number;
}

/** Records a forward decision on an exchange; counts the request as active on its endpoint. */
export function beginForward(state: ForwardState, ctx: ListenContext, d: ForwardDecision): void {
  if (d.endpoint !== undefined) {
    state.endpointState = ctx.config.upstream.state(d.endpoint.id);
    state.endpointState.activeRequests++;
    if (ctx.mode !== 'inbound') state.peer = d.endpoint.workload;
  }
  state.responseHeaders = d.responseHeaders;
  state.targetHeaders = d.target.responseHeaders;
  state.connectTimeoutMs = d.cluster.connectTimeoutMs;
}

/** A retry goes to `next`: the request now counts against it (active requests, and on the outbound side the peer labels). */
export function moveForward(state: Pick<ForwardState, 'endpointState' | 'peer'>, ctx: ListenContext, next: Endpoint): void {
  if (state.endpointState !== null) state.endpointState.activeRequests--;
  state.endpointState = ctx.config.upstream.state(next.id);
  state.endpointState.activeRequests++;
  if (ctx.mode !== 'inbound') state.peer = next.workload;
}

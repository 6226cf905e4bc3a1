/**
 * The HTTP/1.1 proxy path on `node:net` (DESIGN.md: not `node:http`, streams or
 * `pipe()`): per downstream connection, parse a request head, route it, pick an upstream
 * endpoint, write the rewritten head as one buffer, pass the body through with a framing
 * scanner, then the same for the response; keep-alive on both sides, pipelined requests
 * served in order.
 *
 * Hot-path shape (STYLE 15, after undici's client-h1): one Exchange object per request;
 * socket handlers are module-level functions installed once per socket, finding their
 * state through a symbol property; no closures or promises per request.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from '../../core/log.js';
import { chooseChain } from '../config/listeners.js';
import type { RuntimeConfig, RuntimeSnapshot } from '../config/runtime.js';
import { type ForwardAction, type HeaderMutation, pickTarget, type RouteAction, rewritePath } from '../routing/route-action.js';
import type { RequestInfo, RouteTable } from '../routing/route-table.js';
import type { HttpLabels, HttpSeries, MetricsRegistry } from '../telemetry/metrics.js';
import type { EndpointPool, UpstreamConnection } from '../upstream/pool.js';
import type { Endpoint, EndpointState } from '../upstream/lb/types.js';
import { hashKey } from '../upstream/lb/hash.js';
import { BodyFramer } from './h1-body.js';
import { parseRequestHead, parseResponseHead, type RequestHead, type ResponseHead } from './h1-parser.js';
import { serializeRequestHead, serializeResponseHead, stripHopByHop } from './headers.js';

export const LISTENER_MODES = { outbound: 'outbound', gateway: 'gateway', inbound: 'inbound' } as const;
export type ListenerMode = (typeof LISTENER_MODES)[keyof typeof LISTENER_MODES];

/** Who this proxy is, for metrics labels and forwarded headers. */
export interface ProxyIdentity {
  readonly workload: string;
  readonly namespace: string;
  readonly principal: string;
  readonly app: string;
  readonly version: string;
}

/** What a listener's connections share. */
export interface ListenContext {
  readonly config: RuntimeConfig;
  readonly listenerName: string;
  readonly mode: ListenerMode;
  readonly identity: ProxyIdentity;
  readonly metrics: MetricsRegistry;
  readonly log: Logger;
  /** Open downstream connections, for draining. */
  readonly connections: Set<Socket>;
  draining: boolean;
}

const kConn = Symbol('trellis.h1.downstream');
const kUp = Symbol('trellis.h1.upstream');

/** Envoy's response flags (istio-compat 3.3). */
const NO_FLAGS = '-';

interface Downstream {
  readonly socket: Socket;
  readonly ctx: ListenContext;
  /** Unparsed bytes (a partial head, or pipelined requests waiting their turn). */
  buf: Buffer | null;
  exchange: Exchange | null;
  closed: boolean;
}

type SocketWithConn = Socket & { [kConn]?: Downstream };
type UpstreamSocket = Socket & { [kUp]?: UpstreamConnection };

/** One request and its response. */
class Exchange {
  readonly down: Downstream;
  readonly head: RequestHead;
  readonly start: number;
  readonly reqFramer: BodyFramer;
  reqDone: boolean;
  up: UpstreamConnection | null = null;
  endpointState: EndpointState | null = null;
  resBuf: Buffer | null = null;
  resHead: ResponseHead | null = null;
  resFramer: BodyFramer | null = null;
  resDone = false;
  /** Bytes received from downstream (head + body) and sent to it. */
  bytesIn: number;
  bytesOut = 0;
  status = 0;
  flags = NO_FLAGS;
  series: HttpSeries | null = null;
  keepAlive: boolean;
  destinationService = 'unknown';
  retriedStale = false;
  connectTimeoutMs = 10_000;
  /** The upstream request head, kept for a retry on a stale pooled connection. */
  upHead: Buffer | null = null;
  responseHeaders: HeaderMutation | null = null;
  targetHeaders: HeaderMutation | null = null;

  constructor(down: Downstream, head: RequestHead) {
    this.down = down;
    this.head = head;
    this.start = performance.now();
    this.reqFramer = BodyFramer.forRequest(head);
    this.reqDone = false;
    this.bytesIn = head.headBytes;
    this.keepAlive = head.keepAlive;
  }
}

/** Takes over an accepted socket. */
export function serveConnection(socket: Socket, ctx: ListenContext): void {
  const down: Downstream = { socket, ctx, buf: null, exchange: null, closed: false };
  (socket as SocketWithConn)[kConn] = down;
  socket.setNoDelay(true);
  ctx.connections.add(socket);
  socket.on('data', onDownstreamData);
  socket.on('drain', onDownstreamDrain);
  socket.on('close', onDownstreamClose);
  socket.on('error', noop);
}

function noop(): void {}

function onDownstreamData(this: SocketWithConn, chunk: Buffer): void {
  const down = this[kConn] as Downstream;
  const ex = down.exchange;
  if (ex !== null && !ex.reqDone) {
    forwardRequestBody(ex, chunk, 0);
    return;
  }
  down.buf = down.buf === null ? chunk : Buffer.concat([down.buf, chunk]);
  if (ex === null) processHead(down);
  else if (down.buf.length > 1_048_576) down.socket.pause(); // pipelined data waits its turn
}

function onDownstreamDrain(this: SocketWithConn): void {
  const up = this[kConn]?.exchange?.up;
  if (up != null && up.socket.isPaused()) up.socket.resume();
}

function onDownstreamClose(this: SocketWithConn): void {
  const down = this[kConn] as Downstream;
  down.closed = true;
  down.ctx.connections.delete(down.socket);
  const ex = down.exchange;
  if (ex !== null && !ex.resDone) {
    // The client went away mid-exchange: Envoy's DC, response code 0.
    ex.flags = 'DC';
    ex.status = 0;
    if (ex.up !== null) ex.up.dead = true;
    ex.up?.socket.destroy();
    finish(ex);
  }
}

function processHead(down: Downstream): void {
  while (down.buf !== null && down.exchange === null && !down.closed) {
    const buf = down.buf;
    const r = parseRequestHead(buf, 0);
    if (r.kind === 'incomplete') return;
    if (r.kind === 'error') {
      down.buf = null;
      localReply(down, null, r.status, r.reason, 'DPE', true);
      return;
    }
    down.buf = r.head.headBytes < buf.length ? buf.subarray(r.head.headBytes) : null;
    startExchange(down, r.head);
  }
}

// ---- request ----

function requestInfo(head: RequestHead, mode: ListenerMode): RequestInfo | undefined {
  let target = head.target;
  let authority = head.host ?? '';
  let scheme = 'http';
  if (!target.startsWith('/')) {
    // absolute-form (an application using the sidecar as HTTP_PROXY)
    const m = /^(https?):\/\/([^/?#]+)(.*)$/i.exec(target);
    if (m === null) return undefined;
    scheme = (m[1] as string).toLowerCase();
    authority = m[2] as string;
    target = m[3] === '' ? '/' : (m[3] as string);
  }
  void mode;
  const q = target.indexOf('?');
  return {
    method: head.method,
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? '' : target.slice(q + 1),
    authority: authority.toLowerCase(),
    scheme,
    headers: head.headers,
  };
}

function portOf(authority: string, scheme: string): number {
  const colon = authority.lastIndexOf(':');
  if (colon > 0 && authority.indexOf(']') < colon) {
    const p = Number(authority.slice(colon + 1));
    if (Number.isInteger(p) && p > 0 && p < 65536) return p;
  }
  return scheme === 'https' ? 443 : 80;
}

function routeTableFor(snapshot: RuntimeSnapshot, ctx: ListenContext, port: number): RouteTable | undefined {
  const listener = snapshot.listeners.get(ctx.listenerName);
  if (listener === undefined) return undefined;
  const chain = chooseChain(listener, ctx.mode === 'outbound' ? port : listener.port, undefined, undefined);
  if (chain === null || chain.kind !== 'http') return undefined;
  return chain.inline ?? snapshot.routes.get(chain.rds ?? '');
}

function startExchange(down: Downstream, head: RequestHead): void {
  const ctx = down.ctx;
  const ex = new Exchange(down, head);
  down.exchange = ex;
  if (ctx.draining) ex.keepAlive = false;
  const info = requestInfo(head, ctx.mode);
  if (info === undefined || head.method === 'CONNECT' || head.upgrade !== undefined) {
    // CONNECT tunnels and protocol upgrades come with the TCP and WebSocket work.
    ex.reqDone = true;
    localReply(down, ex, 501, 'Not Implemented', NO_FLAGS, false);
    return;
  }
  const snapshot = ctx.config.current;
  const port = portOf(info.authority, info.scheme);
  const table = routeTableFor(snapshot, ctx, port);
  const match = table?.match(info);
  if (match === undefined) {
    skipRequestBody(ex);
    localReply(down, ex, 404, 'Not Found', 'NR', false);
    return;
  }
  act(ex, match.action, info, snapshot, port);
}

function act(ex: Exchange, action: RouteAction, info: RequestInfo, snapshot: RuntimeSnapshot, port: number): void {
  const down = ex.down;
  if (action.kind === 'direct') {
    skipRequestBody(ex);
    ex.responseHeaders = action.responseHeaders;
    localReply(down, ex, action.status, reasonOf(action.status), NO_FLAGS, false, action.body);
    return;
  }
  if (action.kind === 'redirect') {
    skipRequestBody(ex);
    const scheme = action.scheme ?? info.scheme;
    const host = action.host ?? info.authority.replace(/:\d+$/, '');
    const defaultPort = scheme === 'https' ? 443 : 80;
    const p = action.port ?? (action.host === null ? portOf(info.authority, info.scheme) : defaultPort);
    let path = info.path;
    if (action.path !== null) path = action.path;
    else if (action.prefixRewrite !== null && action.matchedPrefix !== null) path = action.prefixRewrite + path.slice(action.matchedPrefix.length);
    const query = action.stripQuery || info.query === '' ? '' : `?${info.query}`;
    const location = `${scheme}://${host}${p === defaultPort ? '' : `:${p}`}${path}${query}`;
    ex.responseHeaders = action.responseHeaders;
    localReply(down, ex, action.status, reasonOf(action.status), NO_FLAGS, false, undefined, ['location', location]);
    return;
  }
  forward(ex, action, info, snapshot, port);
}

function hashOf(action: ForwardAction, info: RequestInfo, socket: Socket): number | undefined {
  const policies = action.hashPolicies;
  if (policies === null) return undefined;
  for (const p of policies) {
    let key: string | undefined;
    if (p.kind === 'header') key = headerOf(info.headers, p.name);
    else if (p.kind === 'source-ip') key = socket.remoteAddress;
    else if (p.kind === 'query') key = queryOf(info.query, p.name);
    else if (p.kind === 'cookie') key = cookieOf(headerOf(info.headers, 'cookie'), p.name);
    if (key !== undefined) return hashKey(key);
  }
  return undefined;
}

function headerOf(headers: readonly string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}

function queryOf(query: string, name: string): string | undefined {
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    if ((eq < 0 ? part : part.slice(0, eq)) === name) return eq < 0 ? '' : part.slice(eq + 1);
  }
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

function forward(ex: Exchange, action: ForwardAction, info: RequestInfo, snapshot: RuntimeSnapshot, port: number): void {
  const down = ex.down;
  const target = pickTarget(action, Math.random());
  ex.destinationService = serviceOfCluster(target.cluster);
  const cluster = snapshot.clusters.get(target.cluster);
  if (cluster === undefined) {
    skipRequestBody(ex);
    localReply(down, ex, 503, 'Service Unavailable', 'NC', false, Buffer.from('cluster not found'));
    return;
  }
  let address: string;
  let upstreamPort: number;
  let endpoint: Endpoint | undefined;
  if (cluster.kind === 'original-dst') {
    // Passthrough: the destination the application asked for.
    address = info.authority.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    upstreamPort = port;
  } else {
    endpoint = cluster.picker.pick({ hash: hashOf(action, info, down.socket) });
    if (endpoint === undefined) {
      skipRequestBody(ex);
      localReply(down, ex, 503, 'Service Unavailable', 'UH', false, Buffer.from('no healthy upstream'));
      return;
    }
    address = endpoint.address;
    upstreamPort = endpoint.port;
  }
  const upstream = down.ctx.config.upstream;
  const pool = upstream.pool(address, upstreamPort);
  if (endpoint !== undefined) {
    ex.endpointState = upstream.state(endpoint.id);
    ex.endpointState.activeRequests++;
  }
  ex.responseHeaders = action.responseHeaders;
  ex.targetHeaders = target.responseHeaders;
  ex.upHead = serializeRequestHead(ex.head.method, rewriteTarget(action, info), upstreamHeaders(ex, action, target.requestHeaders, info));
  ex.connectTimeoutMs = cluster.connectTimeoutMs;
  attachUpstream(ex, pool, cluster.connectTimeoutMs);
}

function rewriteTarget(action: ForwardAction, info: RequestInfo): string {
  const path = rewritePath(action, info.path);
  return info.query === '' ? path : `${path}?${info.query}`;
}

function applyMutation(headers: string[], m: HeaderMutation | null): void {
  if (m === null) return;
  for (const name of m.remove) removeHeader(headers, name);
  for (const a of m.add) {
    if (a.overwrite) removeHeader(headers, a.name);
    headers.push(a.name, a.value);
  }
}

function removeHeader(headers: string[], name: string): void {
  for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i] === name) headers.splice(i, 2);
}

function upstreamHeaders(ex: Exchange, action: ForwardAction, targetHeaders: HeaderMutation | null, info: RequestInfo): string[] {
  const head = ex.head;
  const headers = stripHopByHop(head.headers, head.connectionTokens);
  removeHeader(headers, 'host');
  headers.unshift('host', action.hostRewrite ?? info.authority);
  if (head.chunked) headers.push('transfer-encoding', 'chunked');
  if (headerOf(headers, 'x-request-id') === undefined) headers.push('x-request-id', randomUUID());
  if (ex.down.ctx.mode === 'gateway') {
    // The edge proxy records the client (Envoy use_remote_address at gateways).
    const xff = headerOf(headers, 'x-forwarded-for');
    removeHeader(headers, 'x-forwarded-for');
    const remote = ex.down.socket.remoteAddress ?? '';
    headers.push('x-forwarded-for', xff === undefined ? remote : `${xff}, ${remote}`);
    if (headerOf(headers, 'x-forwarded-proto') === undefined) headers.push('x-forwarded-proto', info.scheme);
  }
  applyMutation(headers, action.requestHeaders);
  applyMutation(headers, targetHeaders);
  return headers;
}

// ---- upstream ----

function attachUpstream(ex: Exchange, pool: EndpointPool, connectTimeoutMs: number): void {
  let up = pool.acquire();
  const reused = up !== null;
  if (up === null) {
    up = pool.create();
    up.socket.setTimeout(connectTimeoutMs);
    const s = up.socket as UpstreamSocket;
    s[kUp] = up;
    s.on('connect', onUpstreamConnect);
    s.on('data', onUpstreamData);
    s.on('drain', onUpstreamDrain);
    s.on('close', onUpstreamClose);
    s.on('timeout', onUpstreamTimeout);
    s.on('error', noop);
  }
  up.owner = ex;
  up.requests++;
  ex.up = up;
  ex.retriedStale = !reused; // only a reused keep-alive connection may be stale
  const ok = up.socket.write(ex.upHead as Buffer);
  const rest = ex.down.buf;
  if (ex.reqFramer.untilClose === false && rest !== null && !ex.reqDone) {
    ex.down.buf = null;
    forwardRequestBody(ex, rest, 0);
  } else if (!ex.reqDone && isBodyless(ex)) {
    ex.reqDone = true;
  }
  if (!ok) ex.down.socket.pause();
}

function isBodyless(ex: Exchange): boolean {
  return !ex.head.chunked && ex.head.contentLength <= 0;
}

function forwardRequestBody(ex: Exchange, chunk: Buffer, start: number): void {
  if (isBodyless(ex)) {
    ex.reqDone = true;
    const down = ex.down;
    down.buf = down.buf === null ? chunk.subarray(start) : Buffer.concat([down.buf, chunk.subarray(start)]);
    return;
  }
  const r = ex.reqFramer.scan(chunk, start, chunk.length);
  if (r.error !== undefined) {
    ex.down.socket.destroy();
    if (ex.up !== null) {
      ex.up.dead = true;
      ex.up.socket.destroy();
    }
    return;
  }
  ex.bytesIn += r.consumed;
  if (r.consumed > 0 && ex.up !== null && !ex.up.socket.write(chunk.subarray(start, start + r.consumed))) ex.down.socket.pause();
  if (r.done) {
    ex.reqDone = true;
    const after = start + r.consumed;
    if (after < chunk.length) {
      const down = ex.down;
      down.buf = down.buf === null ? chunk.subarray(after) : Buffer.concat([down.buf, chunk.subarray(after)]);
    }
    if (ex.resDone) afterExchange(ex);
  }
}

/** A request that gets a local answer: its body is read and dropped. */
function skipRequestBody(ex: Exchange): void {
  const down = ex.down;
  if (isBodyless(ex)) {
    ex.reqDone = true;
    return;
  }
  ex.keepAlive = false; // simplest and safe: don't reuse a connection whose body we drop
  ex.reqDone = true;
  down.buf = null;
}

function onUpstreamConnect(this: UpstreamSocket): void {
  const up = this[kUp] as UpstreamConnection;
  up.connected = true;
  this.setTimeout(0);
}

function onUpstreamTimeout(this: UpstreamSocket): void {
  const up = this[kUp] as UpstreamConnection;
  const ex = up.owner as Exchange | null;
  up.dead = true;
  this.destroy();
  if (ex !== null && ex.resHead === null) upstreamFailed(ex, up.connected ? 'UC' : 'UF');
}

function onUpstreamDrain(this: UpstreamSocket): void {
  const ex = (this[kUp] as UpstreamConnection).owner as Exchange | null;
  if (ex !== null && ex.down.socket.isPaused() && !ex.down.closed) ex.down.socket.resume();
}

function onUpstreamClose(this: UpstreamSocket): void {
  const up = this[kUp] as UpstreamConnection;
  const ex = up.owner as Exchange | null;
  if (ex === null || ex.resDone) return;
  if (ex.resHead === null) {
    // A pooled keep-alive connection the server closed while idle: retry once on a new
    // connection when nothing was sent back and the request had no body.
    if (!ex.retriedStale && up.connected && isBodyless(ex) && (ex.resBuf === null || ex.resBuf.length === 0)) {
      ex.retriedStale = true;
      ex.up = null;
      attachUpstream(ex, up.pool, ex.connectTimeoutMs);
      return;
    }
    upstreamFailed(ex, up.connected ? 'UC' : 'UF');
    return;
  }
  if (ex.resFramer !== null && ex.resFramer.untilClose) {
    // The body ended with the connection, as its framing said.
    ex.resDone = true;
    ex.keepAlive = false;
    endDownstreamResponse(ex);
    return;
  }
  // Reset after the response started: nothing to answer; close the client connection.
  ex.flags = 'UC';
  ex.keepAlive = false;
  ex.resDone = true;
  finish(ex);
  ex.down.socket.destroy();
}

function upstreamFailed(ex: Exchange, flag: string): void {
  if (ex.up !== null) ex.up.owner = null;
  ex.up = null;
  const reason = flag === 'UF' ? 'connection failure' : 'connection termination';
  localReply(ex.down, ex, 503, 'Service Unavailable', flag, false, Buffer.from(`upstream connect error or disconnect/reset before headers. reset reason: ${reason}`));
}

function onUpstreamData(this: UpstreamSocket, chunk: Buffer): void {
  const up = this[kUp] as UpstreamConnection;
  const ex = up.owner as Exchange | null;
  if (ex === null) {
    // Bytes on an idle connection: the server broke the protocol; don't reuse it.
    up.dead = true;
    this.destroy();
    return;
  }
  if (ex.resHead === null) {
    const buf = ex.resBuf === null ? chunk : Buffer.concat([ex.resBuf, chunk]);
    const r = parseResponseHead(buf, 0, ex.head.method);
    if (r.kind === 'incomplete') {
      ex.resBuf = buf;
      return;
    }
    if (r.kind === 'error') {
      up.dead = true;
      this.destroy();
      ex.resBuf = null;
      if (ex.up !== null) ex.up.owner = null;
      ex.up = null;
      localReply(ex.down, ex, 502, 'Bad Gateway', 'UPE', false, Buffer.from('upstream sent an invalid HTTP response'));
      return;
    }
    ex.resBuf = null;
    if (r.head.status >= 100 && r.head.status < 200 && r.head.status !== 101) {
      // 1xx interim responses (100 Continue): pass through, keep waiting for the final one.
      writeDown(ex, buf.subarray(0, r.head.headBytes));
      if (r.head.headBytes < buf.length) onUpstreamData.call(this, buf.subarray(r.head.headBytes));
      return;
    }
    startResponse(ex, r.head);
    if (r.head.headBytes < buf.length) forwardResponseBody(ex, buf, r.head.headBytes);
    else if (ex.resFramer !== null && !ex.resFramer.untilClose && bodylessResponse(ex)) completeResponse(ex);
    return;
  }
  forwardResponseBody(ex, chunk, 0);
}

function bodylessResponse(ex: Exchange): boolean {
  const h = ex.resHead as ResponseHead;
  return ex.head.method === 'HEAD' || h.status === 204 || h.status === 304 || (!h.chunked && h.contentLength === 0);
}

function startResponse(ex: Exchange, head: ResponseHead): void {
  ex.resHead = head;
  ex.status = head.status;
  ex.resFramer = BodyFramer.forResponse(head, ex.head.method);
  const headers = stripHopByHop(head.headers, head.connectionTokens);
  if (head.chunked) headers.push('transfer-encoding', 'chunked');
  headers.push('x-envoy-upstream-service-time', String(Math.round(performance.now() - ex.start)));
  applyMutation(headers, ex.responseHeaders);
  applyMutation(headers, ex.targetHeaders);
  if (ex.resFramer.untilClose || !head.keepAlive) ex.keepAlive = ex.keepAlive && !ex.resFramer.untilClose;
  if (!ex.keepAlive) headers.push('connection', 'close');
  writeDown(ex, serializeResponseHead(head.status, head.reason === '' ? reasonOf(head.status) : head.reason, headers));
}

function forwardResponseBody(ex: Exchange, buf: Buffer, start: number): void {
  const framer = ex.resFramer as BodyFramer;
  const r = framer.scan(buf, start, buf.length);
  if (r.error !== undefined) {
    ex.flags = 'UPE';
    ex.keepAlive = false;
    if (ex.up !== null) {
      ex.up.dead = true;
      ex.up.socket.destroy();
    }
    return;
  }
  if (r.consumed > 0) writeDown(ex, buf.subarray(start, start + r.consumed));
  if (r.done) completeResponse(ex);
}

function writeDown(ex: Exchange, data: Buffer): void {
  ex.bytesOut += data.length;
  if (!ex.down.closed && !ex.down.socket.write(data) && ex.up !== null) ex.up.socket.pause();
}

function completeResponse(ex: Exchange): void {
  ex.resDone = true;
  const up = ex.up;
  const upHead = ex.resHead as ResponseHead;
  if (up !== null) {
    ex.up = null;
    if (upHead.keepAlive && ex.reqDone && !up.dead) up.pool.release(up);
    else {
      up.dead = true;
      up.owner = null;
      up.socket.destroy();
    }
  }
  endDownstreamResponse(ex);
}

function endDownstreamResponse(ex: Exchange): void {
  finish(ex);
  if (ex.reqDone) afterExchange(ex);
}

/** Both directions are complete: next request, or close. */
function afterExchange(ex: Exchange): void {
  const down = ex.down;
  if (down.exchange !== ex) return;
  down.exchange = null;
  if (!ex.keepAlive || down.ctx.draining) {
    down.socket.end();
    return;
  }
  if (down.socket.isPaused()) down.socket.resume();
  if (down.buf !== null) processHead(down);
}

// ---- local replies and accounting ----

const REASONS: Readonly<Record<number, string>> = {
  200: 'OK', 201: 'Created', 204: 'No Content', 301: 'Moved Permanently', 302: 'Found', 303: 'See Other',
  307: 'Temporary Redirect', 308: 'Permanent Redirect', 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found',
  408: 'Request Timeout', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 501: 'Not Implemented',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout', 505: 'HTTP Version Not Supported',
};

function reasonOf(status: number): string {
  return REASONS[status] ?? 'Unknown';
}

/** Answers from the proxy itself (Envoy's local replies), with the response flag recorded. */
function localReply(down: Downstream, ex: Exchange | null, status: number, reason: string, flag: string, close: boolean, body?: Buffer, extra?: string[]): void {
  const payload = body ?? Buffer.alloc(0);
  const headers = ['content-length', String(payload.length), 'content-type', 'text/plain', 'server', 'trellis'];
  if (extra !== undefined) headers.push(...extra);
  if (ex !== null) {
    applyMutation(headers, ex.responseHeaders);
    if (close) ex.keepAlive = false;
  }
  const keep = ex !== null && ex.keepAlive && !close;
  if (!keep) headers.push('connection', 'close');
  const head = serializeResponseHead(status, reason, headers);
  if (!down.closed) {
    down.socket.write(payload.length === 0 ? head : Buffer.concat([head, payload]));
  }
  if (ex === null) {
    down.socket.end();
    return;
  }
  ex.status = status;
  ex.flags = flag;
  ex.bytesOut += head.length + payload.length;
  ex.resDone = true;
  finish(ex);
  if (ex.reqDone) afterExchange(ex);
  else if (!keep) {
    down.exchange = null;
    down.socket.end();
  }
}

function serviceOfCluster(cluster: string): string {
  const parts = cluster.split('|');
  return parts.length === 4 ? (parts[3] as string) : 'unknown';
}

function finish(ex: Exchange): void {
  if (ex.series !== null) return; // recorded already
  if (ex.endpointState !== null) {
    ex.endpointState.activeRequests--;
    ex.endpointState = null;
  }
  const ctx = ex.down.ctx;
  const code = String(ex.status);
  const service = ex.destinationService;
  const key = `${service}|${code}|${ex.flags}`;
  ex.series = ctx.metrics.http(key, () => labelsFor(ctx, service, code, ex.flags));
  ex.series.record(performance.now() - ex.start, ex.bytesIn, ex.bytesOut);
}

function labelsFor(ctx: ListenContext, service: string, code: string, flags: string): HttpLabels {
  const id = ctx.identity;
  const [serviceName = 'unknown', serviceNamespace = 'unknown'] = service === 'unknown' ? [] : service.split('.');
  const self = {
    workload: id.workload, namespace: id.namespace, principal: id.principal, app: id.app, version: id.version,
  };
  const outbound = ctx.mode !== 'inbound';
  return {
    reporter: outbound ? 'source' : 'destination',
    source_workload: outbound ? self.workload : 'unknown',
    source_canonical_service: outbound ? self.app : 'unknown',
    source_canonical_revision: outbound ? self.version : 'latest',
    source_workload_namespace: outbound ? self.namespace : 'unknown',
    source_principal: outbound ? self.principal : 'unknown',
    source_app: outbound ? self.app : 'unknown',
    source_version: outbound ? self.version : 'unknown',
    source_cluster: 'Kubernetes',
    destination_workload: outbound ? 'unknown' : self.workload,
    destination_workload_namespace: outbound ? serviceNamespace : self.namespace,
    destination_principal: outbound ? 'unknown' : self.principal,
    destination_app: outbound ? 'unknown' : self.app,
    destination_version: outbound ? 'unknown' : self.version,
    destination_service: service,
    destination_canonical_service: outbound ? serviceName : self.app,
    destination_canonical_revision: outbound ? 'latest' : self.version,
    destination_service_name: serviceName,
    destination_service_namespace: serviceNamespace,
    destination_cluster: 'Kubernetes',
    request_protocol: 'http',
    response_code: code,
    grpc_response_status: '',
    response_flags: flags,
    connection_security_policy: outbound ? 'unknown' : 'none',
  };
}

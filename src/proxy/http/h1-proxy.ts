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
import type { HeaderMutation } from '../routing/route-action.js';
import type { RequestInfo } from '../routing/route-table.js';
import { httpSeries } from '../telemetry/http-labels.js';
import type { HttpSeries } from '../telemetry/metrics.js';
import { type ConnectionHandlers, type EndpointPool, kConnection as kUp, type PooledSocket, type UpstreamConnection, useHandlers } from '../upstream/pool.js';
import type { EndpointState } from '../upstream/lb/types.js';
import type { ListenContext } from './context.js';
import { BodyFramer } from './h1-body.js';
import { forwardH1ToH2, type H1Downstream, type H1ToH2 } from './h2/h2-from-h1.js';
import { DEFAULT_PARSE_LIMITS, parseRequestHead, parseResponseHead, type RequestHead, type ResponseHead } from './h1-parser.js';
import { serializeRequestHead, serializeResponseHead, stripHopByHop } from './headers.js';
import { applyMutation, beginForward, decide, type ForwardDecision, headerOf, NO_FLAGS, removeHeader } from './router.js';
import { handleConnect } from '../tcp/tcp-proxy.js';
import { tunnel } from '../tcp/tunnel.js';

export type { ListenContext, ListenerMode, ProxyIdentity } from './context.js';
export { LISTENER_MODES } from './context.js';

const kConn = Symbol('trellis.h1.downstream');


interface Downstream {
  readonly socket: Socket;
  readonly ctx: ListenContext;
  /** Unparsed bytes (a partial head, or pipelined requests waiting their turn). */
  buf: Buffer | null;
  exchange: Exchange | null;
  closed: boolean;
}

type SocketWithConn = Socket & { [kConn]?: Downstream };
type UpstreamSocket = PooledSocket;

/** One request and its response. */
class Exchange implements H1Downstream {
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
  /** The upstream HTTP/2 stream, when the cluster speaks HTTP/2 (instead of `up`). */
  h2: H1ToH2 | null = null;
  /** A response head waiting to go out with the first body bytes (one write, not two). */
  pendingDown: Buffer | null = null;
  /** The same for the request head and the body bytes that came with it. */
  pendingUp: Buffer | null = null;

  constructor(down: Downstream, head: RequestHead) {
    this.down = down;
    this.head = head;
    this.start = performance.now();
    this.reqFramer = BodyFramer.forRequest(head);
    this.reqDone = false;
    this.bytesIn = head.headBytes;
    this.keepAlive = head.keepAlive;
  }

  // H1Downstream: the HTTP/2 bridge's calls back into this engine.
  writeResponse(bytes: Buffer): boolean {
    this.bytesOut += bytes.length;
    return this.down.closed || this.down.socket.write(bytes);
  }

  resumeRequest(): void {
    if (!this.down.closed && this.down.socket.isPaused()) this.down.socket.resume();
  }

  completeResponse(status: number, flags: string): void {
    this.status = status;
    this.flags = flags;
    this.resDone = true;
    endDownstreamResponse(this);
  }

  failResponse(flag: string): void {
    this.h2 = null;
    upstreamFailed(this, flag);
  }

  resetResponse(flag: string): void {
    this.h2 = null;
    this.flags = flag;
    this.keepAlive = false;
    this.resDone = true;
    finish(this);
    this.down.socket.destroy();
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

/**
 * Draining: a connection between requests is closed now; one with a request in flight
 * closes after its response (which carries `Connection: close`).
 */
export function drainConnection(socket: Socket): void {
  const down = (socket as SocketWithConn)[kConn];
  if (down === undefined || down.exchange === null) socket.end();
}

function onDownstreamData(this: SocketWithConn, chunk: Buffer): void {
  const down = this[kConn] as Downstream;
  const ex = down.exchange;
  if (ex !== null && !ex.reqDone) {
    forwardRequestBody(ex, chunk, 0);
    return;
  }
  const partial = down.buf !== null;
  down.buf = down.buf === null ? chunk : Buffer.concat([down.buf, chunk]);
  // A head can only complete when a line ends: re-parse a partial head only then (or when
  // it outgrows the limit), so a client dripping its head byte by byte costs linear time.
  if (ex === null && (!partial || chunk.includes(0x0a) || down.buf.length > DEFAULT_PARSE_LIMITS.maxHeadBytes)) processHead(down);
  else if (down.buf.length > 1_048_576) down.socket.pause(); // pipelined data waits its turn
}

function onDownstreamDrain(this: SocketWithConn): void {
  const h2 = this[kConn]?.exchange?.h2;
  if (h2 != null) h2.resume();
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
    ex.h2?.abort();
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
      // The reason phrase stays standard; the parser's explanation goes in the body.
      localReply(down, null, r.status, reasonOf(r.status), 'DPE', true, Buffer.from(r.reason));
      return;
    }
    down.buf = r.head.headBytes < buf.length ? buf.subarray(r.head.headBytes) : null;
    startExchange(down, r.head);
  }
}

// ---- request ----

function requestInfo(head: RequestHead): RequestInfo | undefined {
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

function startExchange(down: Downstream, head: RequestHead): void {
  const ctx = down.ctx;
  if (head.method === 'CONNECT') {
    // The connection becomes a TCP tunnel: HTTP/1.1 processing ends here.
    detachDownstream(down);
    const rest = down.buf;
    down.buf = null;
    handleConnect(down.socket, ctx, head.target, rest);
    return;
  }
  const ex = new Exchange(down, head);
  down.exchange = ex;
  if (ctx.draining) ex.keepAlive = false;
  const info = requestInfo(head);
  if (info === undefined) {
    ex.reqDone = true;
    localReply(down, ex, 400, 'Bad Request', 'DPE', true);
    return;
  }
  const d = decide(ctx, info, down.socket.remoteAddress);
  ex.destinationService = d.destinationService;
  if (d.kind === 'local') {
    skipRequestBody(ex);
    ex.responseHeaders = d.responseHeaders;
    localReply(down, ex, d.status, reasonOf(d.status), d.flag, false, d.body, d.headers);
    return;
  }
  const upstream = ctx.config.upstream;
  beginForward(ex, ctx, d);
  if (d.cluster.protocol === 'http2' && head.upgrade === undefined) {
    ex.h2 = forwardH1ToH2(ex, upstream, d, {
      method: head.method,
      headers: upstreamHeaders(ex, d, info),
      chunked: head.chunked,
      contentLength: head.contentLength,
      trailers: /(?:^|,)\s*trailers\s*(?:;|,|$)/i.test(headerOf(head.headers, 'te') ?? ''),
      keepAlive: ex.keepAlive,
      start: ex.start,
      responseHeaders: ex.responseHeaders,
      targetHeaders: ex.targetHeaders,
    });
    if (isBodyless(ex)) ex.reqDone = true;
    else if (down.buf !== null && !ex.reqDone) {
      const rest = down.buf;
      down.buf = null;
      forwardRequestBody(ex, rest, 0);
    }
    return;
  }
  ex.upHead = serializeRequestHead(head.method, d.path, upstreamHeaders(ex, d, info));
  attachUpstream(ex, upstream.pool(d.address, d.port), d.cluster.connectTimeoutMs);
}

function upstreamHeaders(ex: Exchange, d: ForwardDecision, info: RequestInfo): string[] {
  const head = ex.head;
  const headers = stripHopByHop(head.headers, head.connectionTokens);
  removeHeader(headers, 'host');
  headers.unshift('host', d.authority);
  if (head.chunked) headers.push('transfer-encoding', 'chunked');
  // An upgrade (WebSocket) keeps its hop-by-hop pair for the upstream (Istio enables
  // websocket upgrades on every HTTP route).
  if (head.upgrade !== undefined) headers.push('connection', 'upgrade', 'upgrade', head.upgrade);
  if (headerOf(headers, 'x-request-id') === undefined) headers.push('x-request-id', randomUUID());
  if (ex.down.ctx.mode === 'gateway') {
    // The edge proxy records the client (Envoy use_remote_address at gateways).
    const xff = headerOf(headers, 'x-forwarded-for');
    removeHeader(headers, 'x-forwarded-for');
    const remote = ex.down.socket.remoteAddress ?? '';
    headers.push('x-forwarded-for', xff === undefined ? remote : `${xff}, ${remote}`);
    if (headerOf(headers, 'x-forwarded-proto') === undefined) headers.push('x-forwarded-proto', info.scheme);
  }
  applyMutation(headers, d.action.requestHeaders);
  applyMutation(headers, d.target.requestHeaders);
  return headers;
}

// ---- upstream ----

function attachUpstream(ex: Exchange, pool: EndpointPool, connectTimeoutMs: number): void {
  let up = pool.acquire();
  const reused = up !== null;
  if (up === null) {
    up = pool.create();
    up.socket.setTimeout(connectTimeoutMs);
  }
  useHandlers(up, UPSTREAM_HANDLERS);
  up.owner = ex;
  up.requests++;
  ex.up = up;
  ex.retriedStale = !reused; // only a reused keep-alive connection may be stale
  ex.pendingUp = ex.upHead;
  const rest = ex.down.buf;
  if (ex.reqFramer.untilClose === false && rest !== null && !ex.reqDone) {
    ex.down.buf = null;
    forwardRequestBody(ex, rest, 0);
  } else if (!ex.reqDone && isBodyless(ex)) {
    ex.reqDone = true;
  }
  const head = ex.pendingUp;
  if (head !== null) {
    ex.pendingUp = null;
    if (!up.socket.write(head)) ex.down.socket.pause();
  }
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
    ex.h2?.abort();
    if (ex.up !== null) {
      ex.up.dead = true;
      ex.up.socket.destroy();
    }
    return;
  }
  ex.bytesIn += r.consumed;
  if (r.consumed > 0 && ex.h2 !== null && !ex.h2.write(chunk.subarray(start, start + r.consumed))) ex.down.socket.pause();
  if (r.consumed > 0 && ex.up !== null) {
    let out = chunk.subarray(start, start + r.consumed);
    const head = ex.pendingUp;
    if (head !== null) {
      ex.pendingUp = null;
      if (out.length <= JOIN_LIMIT) out = Buffer.concat([head, out], head.length + out.length);
      else ex.up.socket.write(head);
    }
    if (!ex.up.socket.write(out)) ex.down.socket.pause();
  }
  if (r.done) {
    ex.reqDone = true;
    ex.h2?.end();
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

/** This engine's upstream socket handlers (the pool is shared with the HTTP/2 bridge). */
const UPSTREAM_HANDLERS: ConnectionHandlers = {
  connect: onUpstreamConnect,
  data: onUpstreamData,
  drain: onUpstreamDrain,
  close: onUpstreamClose,
  timeout: onUpstreamTimeout,
};

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
    if (r.head.status === 101 && ex.head.upgrade !== undefined) {
      switchToTunnel(ex, up, buf, r.head);
      return;
    }
    if (r.head.status >= 100 && r.head.status < 200 && r.head.status !== 101) {
      // 1xx interim responses (100 Continue): pass through, keep waiting for the final one.
      writeDown(ex, buf.subarray(0, r.head.headBytes));
      if (r.head.headBytes < buf.length) onUpstreamData.call(this, buf.subarray(r.head.headBytes));
      return;
    }
    startResponse(ex, r.head);
    if (r.head.headBytes < buf.length) forwardResponseBody(ex, buf, r.head.headBytes);
    else if (ex.resFramer !== null && !ex.resFramer.untilClose && bodylessResponse(ex)) completeResponse(ex);
    flushPendingDown(ex);
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
  if (ex.resFramer.untilClose || ex.down.ctx.draining) ex.keepAlive = false;
  if (!ex.keepAlive) headers.push('connection', 'close');
  const out = serializeResponseHead(head.status, head.reason === '' ? reasonOf(head.status) : head.reason, headers);
  ex.bytesOut += out.length;
  ex.pendingDown = out;
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

/** Small first body pieces travel with the head in one write: a syscall is most of a small request's cost. */
const JOIN_LIMIT = 16 * 1024;

function writeDown(ex: Exchange, data: Buffer): void {
  ex.bytesOut += data.length;
  let out = data;
  const head = ex.pendingDown;
  if (head !== null) {
    ex.pendingDown = null;
    if (data.length <= JOIN_LIMIT) out = Buffer.concat([head, data], head.length + data.length);
    else if (!ex.down.closed) ex.down.socket.write(head);
  }
  if (!ex.down.closed && !ex.down.socket.write(out) && ex.up !== null) ex.up.socket.pause();
}

function flushPendingDown(ex: Exchange): void {
  const head = ex.pendingDown;
  if (head === null) return;
  ex.pendingDown = null;
  if (!ex.down.closed && !ex.down.socket.write(head) && ex.up !== null) ex.up.socket.pause();
}

function completeResponse(ex: Exchange): void {
  flushPendingDown(ex);
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
  flushPendingDown(ex);
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

// ---- tunnels: CONNECT and upgrades ----

function detachDownstream(down: Downstream): void {
  down.socket.removeListener('data', onDownstreamData);
  down.socket.removeListener('drain', onDownstreamDrain);
}

/** The upstream accepted the upgrade (101): both connections become a byte tunnel. */
function switchToTunnel(ex: Exchange, up: UpstreamConnection, buf: Buffer, head: ResponseHead): void {
  const down = ex.down;
  const headers = stripHopByHop(head.headers, head.connectionTokens);
  headers.push('connection', 'upgrade', 'upgrade', head.upgrade ?? ex.head.upgrade ?? '');
  writeDown(ex, serializeResponseHead(101, head.reason === '' ? 'Switching Protocols' : head.reason, headers));
  const s = up.socket as UpstreamSocket;
  s.removeListener('data', onUpstreamData);
  s.removeListener('drain', onUpstreamDrain);
  s.removeListener('close', onUpstreamClose);
  s.removeListener('timeout', onUpstreamTimeout);
  up.dead = true; // never back to the pool
  up.owner = null;
  ex.up = null;
  ex.status = 101;
  ex.resDone = true;
  ex.reqDone = true;
  detachDownstream(down);
  down.exchange = null;
  if (head.headBytes < buf.length) down.socket.write(buf.subarray(head.headBytes));
  if (down.buf !== null) {
    s.write(down.buf);
    down.buf = null;
  }
  finish(ex);
  tunnel(down.socket, s, () => undefined);
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
function localReply(down: Downstream, ex: Exchange | null, status: number, reason: string, flag: string, close: boolean, body?: Buffer, extra?: readonly string[]): void {
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

function finish(ex: Exchange): void {
  if (ex.series !== null) return; // recorded already
  if (ex.endpointState !== null) {
    ex.endpointState.activeRequests--;
    ex.endpointState = null;
  }
  ex.series = httpSeries(ex.down.ctx, ex.destinationService, ex.status, ex.flags, 'http');
  ex.series.record(performance.now() - ex.start, ex.bytesIn, ex.bytesOut);
}

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
import type { ClusterRuntime } from '../config/clusters.js';
import type { RequestInfo } from '../routing/route-table.js';
import { httpSeries } from '../telemetry/http-labels.js';
import { type PeerWorkload, takePeer } from '../telemetry/peer.js';
import type { HttpSeries } from '../telemetry/metrics.js';
import { CONNECTION_OVERFLOW, CONNECTION_WAIT, type ConnectionWaiter, finishUse, stopWaitingForConnection, takeConnection, waitForConnection } from '../upstream/connection-queue.js';
import { connected, type ConnectionHandlers, type EndpointPool, kConnection as kUp, type PooledSocket, type UpstreamConnection, useHandlers } from '../upstream/pool.js';
import type { Endpoint, EndpointState } from '../upstream/lb/types.js';
import { claimRetry, exchangeTimeoutMs, nextEndpoint, releaseSlots, reportTry, retryDelayMs } from '../resilience/attempts.js';
import { mirrorRequest } from '../filters/mirror.js';
import type { RetryPolicy, TryOutcome } from '../resilience/retry-policy.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker.js';
import type { ListenContext } from './context.js';
import { BodyFramer } from './h1-body.js';
import { upstreamFailureBody } from './failure-body.js';
import { forwardH1ToH2, type H1Downstream, type H1ToH2 } from './h2/h2-from-h1.js';
import { DEFAULT_PARSE_LIMITS, parseRequestHead, parseResponseHead, type RequestHead, type ResponseHead } from './h1-parser.js';
import { serializeRequestHead, serializeResponseHead, stripHopByHop } from './headers.js';
import { applyMutation, beginForward, decide, moveForward, type ForwardDecision, headerOf, type LocalDecision, NO_FLAGS, removeHeader } from './router.js';
import { handleConnect } from '../tcp/tcp-proxy.js';
import { tunnel } from '../tcp/tunnel.js';
import { owned, readWith, stopReading } from '../socket-reader.js';

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
  peer: PeerWorkload | null = null;
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
  // Retries and timeouts (resilience): what was decided, the tries made, the request
  // bytes kept to replay (null once they outgrow RETRY_BUFFER_LIMIT: no retry then).
  decision: ForwardDecision | null = null;
  retry: RetryPolicy | null = null;
  tries = 0;
  readonly tried: string[] = [];
  hash: number | undefined = undefined;
  replay: Buffer[] | null = null;
  replayBytes = 0;
  /** A 1xx went downstream: the response has started, no retry. */
  interim = false;
  /** Why the last try's connection failed its TLS handshake (`TLS_error:...`), for the 503 body; null otherwise. */
  transportFailure: string | null = null;
  /** The upstream headers of a request to mirror once its body is complete. */
  mirrorHeaders: string[] | null = null;
  /** The circuit breaker's request slot is held; retry slots held (released at the end). */
  breakerHeld = false;
  retriesHeld = 0;
  /** Its place in a breaker's queue while it waits for a connection slot (max_connections). */
  waiter: H1Waiter | null = null;
  /** The route (or gRPC deadline) timer; the per-try timer; the backoff or fault-delay timer. */
  timer: NodeJS.Timeout | null = null;
  tryTimer: NodeJS.Timeout | null = null;
  waitTimer: NodeJS.Timeout | null = null;

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

  failResponse(flag: string, transportFailure: string | null): void {
    this.h2 = null;
    this.transportFailure = transportFailure;
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

/**
 * Takes over an accepted socket; `first`, bytes already read off it (the protocol sniff's),
 * is its first chunk. A paused socket is resumed.
 */
export function serveConnection(socket: Socket, ctx: ListenContext, first?: Buffer): void {
  const down: Downstream = { socket, ctx, buf: null, exchange: null, closed: false };
  (socket as SocketWithConn)[kConn] = down;
  socket.setNoDelay(true);
  ctx.connections.add(socket);
  readWith(socket, onDownstreamData);
  socket.on('drain', onDownstreamDrain);
  socket.on('close', onDownstreamClose);
  socket.on('error', noop);
  // Resumed before the first chunk is handled: handling it may pause the socket again
  // (pipelined requests, back-pressure), and later chunks flow only on the next tick.
  if (socket.isPaused()) socket.resume();
  if (first !== undefined && first.length > 0) onDownstreamData.call(socket as SocketWithConn, first);
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

/**
 * The downstream socket's reader. `chunk` may be a view of the shared read buffer
 * (socket-reader.ts): what this call keeps, or writes on its own, is copied first; the
 * common request, whose head is parsed into strings and answered with new buffers, keeps
 * nothing of it.
 */
function onDownstreamData(this: SocketWithConn, chunk: Buffer): void {
  const down = this[kConn] as Downstream;
  const ex = down.exchange;
  if (ex !== null && !ex.reqDone) {
    forwardRequestBody(ex, chunk, 0);
  } else {
    const partial = down.buf !== null;
    down.buf = down.buf === null ? chunk : Buffer.concat([down.buf, chunk]);
    // A head can only complete when a line ends: re-parse a partial head only then (or when
    // it outgrows the limit), so a client dripping its head byte by byte costs linear time.
    if (ex === null && (!partial || chunk.includes(0x0a) || down.buf.length > DEFAULT_PARSE_LIMITS.maxHeadBytes)) processHead(down);
    else if (down.buf.length > 1_048_576) down.socket.pause(); // pipelined data waits its turn
  }
  // A partial head, or pipelined requests waiting their turn, outlive this read.
  if (down.buf !== null) down.buf = owned(down.buf);
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

/** `secure`: the connection's TLS was terminated here, so an origin-form request is `https`. */
function requestInfo(head: RequestHead, secure: boolean): RequestInfo | undefined {
  let target = head.target;
  let authority = head.host ?? '';
  let scheme = secure ? 'https' : 'http';
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
    handleConnect(down.socket, ctx, head.target, rest === null ? null : owned(rest));
    return;
  }
  const ex = new Exchange(down, head);
  down.exchange = ex;
  if (ctx.draining) ex.keepAlive = false;
  // Inbound: the calling proxy's metadata exchange headers name the source (and go no further).
  if (ctx.mode === 'inbound') ex.peer = takePeer(head.headers);
  const info = requestInfo(head, ctx.secure);
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
    if (d.delayMs > 0) ex.waitTimer = setTimeout(delayedLocalReply, d.delayMs, ex, d);
    else localReply(down, ex, d.status, reasonOf(d.status), d.flag, false, d.body, d.headers);
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
  const headers = upstreamHeaders(ex, d, info);
  ex.upHead = serializeRequestHead(head.method, d.path, headers);
  if (d.action.mirrors !== null) {
    if (isBodyless(ex)) mirrorRequest(ctx.config.current, d.action.mirrors, head.method, d.path, headers, null);
    else ex.mirrorHeaders = headers; // mirrored once the body is in (when it is kept for a retry)
  }
  startForwarding(ex, d, info);
}

/** Bodies up to this size are kept for a retry (Envoy buffers up to its per-request limit). */
const RETRY_BUFFER_LIMIT = 64 * 1024;

/** Timers and retry state of a forwarded exchange, then its first try (after an injected delay). */
function startForwarding(ex: Exchange, d: ForwardDecision, info: RequestInfo): void {
  ex.decision = d;
  // Circuit breaking (max_requests): over the limit, 503 UO at once, as Istio's task shows.
  if (!d.cluster.breaker.tryRequest()) {
    localReply(ex.down, ex, 503, 'Service Unavailable', 'UO', false, OVERFLOW_BODY);
    return;
  }
  ex.breakerHeld = true;
  ex.retry = d.action.retry;
  ex.hash = d.hash;
  if (ex.retry !== null || ex.mirrorHeaders !== null) ex.replay = [];
  d.cluster.retryBudget.request();
  const timeoutMs = exchangeTimeoutMs(d.action, info.headers);
  if (timeoutMs > 0) ex.timer = setTimeout(onExchangeTimeout, timeoutMs, ex);
  if (d.delayMs > 0) {
    ex.flags = 'DI';
    ex.down.socket.pause(); // the body waits in the socket until the try starts
    ex.waitTimer = setTimeout(onWaitOver, d.delayMs, ex, d.endpoint ?? null);
    return;
  }
  sendTry(ex, d.endpoint ?? null);
}

/** Starts a try on `endpoint` (null: the decision's address, for passthrough clusters). */
function sendTry(ex: Exchange, endpoint: Endpoint | null): void {
  const d = ex.decision as ForwardDecision;
  ex.tries++;
  if (endpoint !== null) ex.tried.push(endpoint.id);
  const perTry = ex.retry?.perTryTimeoutMs ?? 0;
  if (perTry > 0) ex.tryTimer = setTimeout(onTryTimeout, perTry, ex);
  const pool = endpoint === null ? ex.down.ctx.config.upstream.pool(d.address, d.port, d.cluster.tls) : ex.down.ctx.config.upstream.poolOf(endpoint, d.cluster.tls);
  attachUpstream(ex, pool, d.cluster.connectTimeoutMs);
}

function onWaitOver(ex: Exchange, endpoint: Endpoint | null): void {
  ex.waitTimer = null;
  if (ex.resDone || ex.down.closed) return;
  if (ex.down.socket.isPaused()) ex.down.socket.resume();
  sendTry(ex, endpoint);
}

function delayedLocalReply(ex: Exchange, d: LocalDecision): void {
  ex.waitTimer = null;
  if (ex.down.closed) {
    finish(ex);
    return;
  }
  localReply(ex.down, ex, d.status, reasonOf(d.status), d.flag, false, d.body, d.headers);
}

/**
 * Schedules another try after `outcome` when the route's policy, the tries left, the
 * request bytes kept and the cluster's retry budget all allow it; false otherwise.
 */
function tryAgain(ex: Exchange, outcome: TryOutcome): boolean {
  const d = ex.decision;
  const policy = ex.retry;
  if (d === null || policy === null || ex.replay === null || ex.interim || ex.resDone || ex.down.closed) return false;
  if (!claimRetry(policy, ex, outcome, d.cluster)) return false;
  const next = nextEndpoint(d.cluster, policy, ex, ex.hash);
  if (next === undefined) return false;
  clearTryTimer(ex);
  moveForward(ex, ex.down.ctx, next);
  ex.waitTimer = setTimeout(onWaitOver, retryDelayMs(policy, ex), ex, next);
  return true;
}

/** A try ended without a response: another try, or `fail` with the flag (URX added after retries). */
function retryOrFail(ex: Exchange, outcome: TryOutcome, fail: (ex: Exchange, flag: string) => void, flag: string): void {
  clearTryTimer(ex);
  if (!tryAgain(ex, outcome)) fail(ex, ex.tries > 1 ? `${flag},URX` : flag);
}

function clearTryTimer(ex: Exchange): void {
  if (ex.tryTimer !== null) {
    clearTimeout(ex.tryTimer);
    ex.tryTimer = null;
  }
}

/** Tells the cluster's outlier detector how the current try ended. */
function report(ex: Exchange, outcome: number | 'connect-failure' | 'timeout' | 'reset'): void {
  reportTry(ex, ex.decision?.cluster, outcome);
}

function clearTimers(ex: Exchange): void {
  clearTryTimer(ex);
  if (ex.timer !== null) {
    clearTimeout(ex.timer);
    ex.timer = null;
  }
  if (ex.waitTimer !== null) {
    clearTimeout(ex.waitTimer);
    ex.waitTimer = null;
  }
}

/** Drops the try's upstream connection (never reused: its state is unknown). */
function abandonUpstream(ex: Exchange): void {
  const up = ex.up;
  if (up === null) return;
  ex.up = null;
  up.owner = null;
  up.dead = true;
  up.socket.destroy();
  ex.resBuf = null;
}

function onTryTimeout(ex: Exchange): void {
  ex.tryTimer = null;
  if (ex.resHead !== null || ex.resDone) return;
  abandonUpstream(ex);
  report(ex, 'timeout');
  retryOrFail(ex, PER_TRY_TIMEOUT, timedOut, 'UT');
}

/** The route's timeout: 504 UT before the response started; a reset after. */
function onExchangeTimeout(ex: Exchange): void {
  ex.timer = null;
  if (ex.resDone) return;
  clearTimers(ex);
  ex.h2?.abort();
  ex.h2 = null;
  if (ex.resHead === null && !ex.interim) {
    if (ex.up !== null) report(ex, 'timeout');
    abandonUpstream(ex);
    timedOut(ex, 'UT');
    return;
  }
  abandonUpstream(ex);
  ex.flags = 'UT';
  ex.keepAlive = false;
  ex.resDone = true;
  finish(ex);
  ex.down.socket.destroy();
}

const PER_TRY_TIMEOUT: TryOutcome = { kind: 'per-try-timeout' };
const CONNECT_FAILURE: TryOutcome = { kind: 'connect-failure' };
const RESET_SENT: TryOutcome = { kind: 'reset', sent: true };
const RESET_UNSENT: TryOutcome = { kind: 'reset', sent: false };
const UPSTREAM_TIMEOUT_BODY = Buffer.from('upstream request timeout');
const OVERFLOW_BODY = Buffer.from('upstream connect error or disconnect/reset before headers. reset reason: overflow');

function timedOut(ex: Exchange, flag: string): void {
  localReply(ex.down, ex, 504, 'Gateway Timeout', flag, false, UPSTREAM_TIMEOUT_BODY);
}

/** A response whose status the retry policy retries: dropped with its connection, and the request tried again. */
function retriesResponse(ex: Exchange, head: ResponseHead): boolean {
  if (ex.retry === null) return false;
  const grpc = headerOf(head.headers, 'grpc-status');
  if (!tryAgain(ex, { kind: 'response', status: head.status, grpcStatus: grpc === undefined ? undefined : Number(grpc) })) return false;
  abandonUpstream(ex);
  return true;
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
  // Tell a mesh destination's proxy who is calling (Istio's metadata exchange).
  if (ex.down.ctx.mode !== 'inbound' && d.endpoint !== undefined) headers.push(...ex.down.ctx.identity.peerHeaders);
  if (ex.down.ctx.mode === 'gateway') {
    // The edge proxy records the client (Envoy use_remote_address at gateways).
    const xff = headerOf(headers, 'x-forwarded-for');
    removeHeader(headers, 'x-forwarded-for');
    const remote = ex.down.socket.remoteAddress ?? '';
    headers.push('x-forwarded-for', xff === undefined ? remote : `${xff}, ${remote}`);
    if (headerOf(headers, 'x-forwarded-proto') === undefined) headers.push('x-forwarded-proto', info.scheme);
  } else if (ex.down.ctx.secure) {
    // TLS terminated here (an inbound TLS chain): what the client used is known only here.
    removeHeader(headers, 'x-forwarded-proto');
    headers.push('x-forwarded-proto', 'https');
  }
  applyMutation(headers, d.action.requestHeaders);
  applyMutation(headers, d.target.requestHeaders);
  return headers;
}

// ---- upstream ----

function attachUpstream(ex: Exchange, pool: EndpointPool, connectTimeoutMs: number): void {
  const cluster = ex.decision?.cluster;
  const up = takeConnection(pool, cluster?.breaker, cluster?.pool, connectTimeoutMs);
  if (up === CONNECTION_OVERFLOW) {
    localReply(ex.down, ex, 503, 'Service Unavailable', 'UO', false, OVERFLOW_BODY);
    return;
  }
  if (up === CONNECTION_WAIT) {
    ex.waiter = new H1Waiter(ex, (cluster as ClusterRuntime).breaker, pool, connectTimeoutMs);
    waitForConnection(ex.waiter.breaker, ex.waiter);
    return;
  }
  const reused = up.requests > 0;
  useHandlers(up, UPSTREAM_HANDLERS);
  up.owner = ex;
  up.requests++;
  ex.up = up;
  ex.retriedStale = !reused; // only a reused keep-alive connection may be stale
  ex.pendingUp = ex.upHead;
  if (ex.replay !== null && ex.replay.length > 0) {
    // A retry: the head and the body bytes received so far; the rest follows as it comes.
    ex.pendingUp = null;
    if (!up.socket.write(Buffer.concat([ex.upHead as Buffer, ...ex.replay]))) ex.down.socket.pause();
    if (ex.down.buf !== null && !ex.reqDone && ex.reqFramer.untilClose === false) {
      const rest = ex.down.buf;
      ex.down.buf = null;
      forwardRequestBody(ex, rest, 0);
    }
    return;
  }
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

// ---- waiting for a connection (circuit breaking: max_connections, max_pending_requests) ----

/** An exchange waiting in the breaker's queue (upstream/connection-queue.ts) for a connection to `pool`. */
class H1Waiter implements ConnectionWaiter {
  readonly ex: Exchange;
  readonly breaker: CircuitBreaker;
  readonly pool: EndpointPool;
  readonly connectTimeoutMs: number;

  constructor(ex: Exchange, breaker: CircuitBreaker, pool: EndpointPool, connectTimeoutMs: number) {
    this.ex = ex;
    this.breaker = breaker;
    this.pool = pool;
    this.connectTimeoutMs = connectTimeoutMs;
  }

  connectionFree(): boolean {
    const ex = this.ex;
    ex.waiter = null;
    if (ex.resDone || ex.down.closed) return false;
    attachUpstream(ex, this.pool, this.connectTimeoutMs);
    return true;
  }
}

/** An exchange that ends while waiting gives its place up. */
function stopWaiting(ex: Exchange): void {
  const w = ex.waiter;
  if (w === null) return;
  ex.waiter = null;
  stopWaitingForConnection(w.breaker, w);
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
  // Body bytes are kept for a retry and queued by writes: a copy, not a view of the shared read buffer.
  if (r.consumed > 0) sendBodyBytes(ex, owned(chunk.subarray(start, start + r.consumed)));
  if (r.done) {
    ex.reqDone = true;
    ex.h2?.end();
    if (ex.mirrorHeaders !== null && ex.decision !== null && ex.decision.action.mirrors !== null) {
      if (ex.replay !== null) mirrorRequest(ex.down.ctx.config.current, ex.decision.action.mirrors, ex.head.method, ex.decision.path, ex.mirrorHeaders, Buffer.concat(ex.replay));
      ex.mirrorHeaders = null;
    }
    const after = start + r.consumed;
    if (after < chunk.length) {
      const down = ex.down;
      down.buf = down.buf === null ? chunk.subarray(after) : Buffer.concat([down.buf, chunk.subarray(after)]);
    }
    if (ex.resDone) afterExchange(ex);
  }
}

/** Request body bytes: kept for a retry, and sent on the try's HTTP/2 stream or connection. */
function sendBodyBytes(ex: Exchange, body: Buffer): void {
  if (ex.replay !== null) {
    // Kept for a retry while small enough; beyond that the request can no longer be replayed.
    ex.replayBytes += body.length;
    if (ex.replayBytes > RETRY_BUFFER_LIMIT) ex.replay = null;
    else ex.replay.push(body);
  }
  if (ex.h2 !== null && !ex.h2.write(body)) ex.down.socket.pause();
  if (ex.up === null) return;
  let out = body;
  const head = ex.pendingUp;
  if (head !== null) {
    ex.pendingUp = null;
    if (out.length <= JOIN_LIMIT) out = Buffer.concat([head, out], head.length + out.length);
    else ex.up.socket.write(head);
  }
  if (!ex.up.socket.write(out)) ex.down.socket.pause();
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
  connected(this[kUp] as UpstreamConnection);
  this.setTimeout(0);
}

function onUpstreamTimeout(this: UpstreamSocket): void {
  const up = this[kUp] as UpstreamConnection;
  const ex = up.owner as Exchange | null;
  up.dead = true;
  this.destroy();
  if (ex !== null && ex.resHead === null) upstreamLost(ex, up, up.connected ? RESET_SENT : CONNECT_FAILURE, up.connected ? 'UC' : 'UF');
}

/** The try's connection failed before a response: retry, or answer 503. */
function upstreamLost(ex: Exchange, up: UpstreamConnection, outcome: TryOutcome, flag: string): void {
  ex.transportFailure = up.failure;
  report(ex, outcome.kind === 'connect-failure' ? 'connect-failure' : 'reset');
  if (ex.up === up) ex.up = null;
  up.owner = null;
  ex.resBuf = null;
  retryOrFail(ex, outcome, upstreamFailed, flag);
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
    upstreamLost(ex, up, up.connected ? (ex.reqDone ? RESET_SENT : RESET_UNSENT) : CONNECT_FAILURE, up.connected ? 'UC' : 'UF');
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
  localReply(ex.down, ex, 503, 'Service Unavailable', flag, false, upstreamFailureBody(flag, ex.transportFailure));
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
      ex.resBuf = owned(buf); // outlives this read
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
      ex.interim = true;
      writeDown(ex, buf.subarray(0, r.head.headBytes));
      if (r.head.headBytes < buf.length) onUpstreamData.call(this, buf.subarray(r.head.headBytes));
      return;
    }
    report(ex, r.head.status);
    if (retriesResponse(ex, r.head)) return;
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
  clearTryTimer(ex);
  ex.resHead = head;
  ex.status = head.status;
  ex.resFramer = BodyFramer.forResponse(head, ex.head.method);
  const headers = stripHopByHop(head.headers, head.connectionTokens);
  if (head.chunked) headers.push('transfer-encoding', 'chunked');
  // Envoy's router sets it (one value): an upstream's own, from its sidecar, is replaced.
  removeHeader(headers, 'x-envoy-upstream-service-time');
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

/** Writes response bytes downstream (`data` may be a view of the shared read buffer). */
function writeDown(ex: Exchange, data: Buffer): void {
  ex.bytesOut += data.length;
  let out = data;
  const head = ex.pendingDown;
  if (head !== null && data.length <= JOIN_LIMIT) {
    ex.pendingDown = null;
    out = Buffer.concat([head, data], head.length + data.length);
  } else {
    // A write the kernel does not take at once keeps a reference to its bytes.
    out = owned(data);
    if (head !== null) {
      ex.pendingDown = null;
      if (!ex.down.closed) ex.down.socket.write(head);
    }
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
    finishUse(up, upHead.keepAlive && ex.reqDone, ex.decision?.cluster.pool);
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
  stopReading(down.socket);
  down.socket.removeListener('drain', onDownstreamDrain);
}

/** The upstream accepted the upgrade (101): both connections become a byte tunnel. */
function switchToTunnel(ex: Exchange, up: UpstreamConnection, buf: Buffer, head: ResponseHead): void {
  const down = ex.down;
  const headers = stripHopByHop(head.headers, head.connectionTokens);
  headers.push('connection', 'upgrade', 'upgrade', head.upgrade ?? ex.head.upgrade ?? '');
  writeDown(ex, serializeResponseHead(101, head.reason === '' ? 'Switching Protocols' : head.reason, headers));
  const s = up.socket as UpstreamSocket;
  stopReading(s);
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
  if (head.headBytes < buf.length) down.socket.write(owned(buf.subarray(head.headBytes)));
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
  if (ex.decision !== null) {
    clearTimers(ex);
    stopWaiting(ex);
    releaseSlots(ex, ex.decision.cluster);
  }
  if (ex.endpointState !== null) {
    ex.endpointState.activeRequests--;
    ex.endpointState = null;
  }
  ex.series = httpSeries(ex.down.ctx, ex.destinationService, ex.status, ex.flags, 'http', ex.peer);
  ex.series.record(performance.now() - ex.start, ex.bytesIn, ex.bytesOut);
}

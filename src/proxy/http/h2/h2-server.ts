/**
 * Downstream HTTP/2 on an HTTP listener (h2c with prior knowledge; `h2-sniff.ts` finds
 * those connections): each stream is a request that is routed by `decide()`, like the
 * HTTP/1.1 engine's, then answered locally or forwarded over HTTP/2 (`h2-upstream.ts`)
 * or HTTP/1.1 (`h2-to-h1.ts`) as the cluster says.
 *
 * One `node:http2` server object per listener takes the sockets (`emit('connection')`);
 * it never listens itself.
 */
import { constants, createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { RequestInfo } from '../../routing/route-table.js';
import { DEFAULT_IDLE_TIMEOUT_MS } from '../../upstream/pool.js';
import type { ListenContext } from '../context.js';
import { attachDownstream, H2Exchange, localGrpcReply, localReply } from './h2-exchange.js';
import { flatFromRaw, isGrpcContentType, upstreamRequestHeaders } from './h2-headers.js';
import { forwardToH1 } from './h2-to-h1.js';
import { forwardToH2 } from './h2-upstream.js';
import { beginMirror } from './h2-mirror.js';
import { beginTries, delayTry, sendTry } from './h2-tries.js';
import { exchangeTimeoutMs } from '../../resilience/attempts.js';
import { beginForward, decide, type ForwardDecision, type LocalDecision, NO_FLAGS } from '../router.js';
import { takePeer } from '../../telemetry/peer.js';

/** How often a draining listener looks for idle HTTP/2 connections to close. */
export const DRAIN_CHECK_INTERVAL_MS = 500;

const kListener = Symbol('trellis.h2.listener');
type ServerWithListener = Http2Server & { [kListener]?: H2Listener };
const kSession = Symbol('trellis.h2.session');
type SocketWithListener = Socket & { [kListener]?: H2Listener; [kSession]?: ServerHttp2Session };
const kRemote = Symbol('trellis.h2.remote-address');
type SessionWithListener = ServerHttp2Session & { [kListener]?: H2Listener; [kRemote]?: string };

export class H2Listener {
  readonly ctx: ListenContext;
  readonly server: Http2Server;
  readonly #sessions = new Set<ServerHttp2Session>();
  #drainTimer: NodeJS.Timeout | null = null;
  /** The socket being handed to the server: its session is created synchronously. */
  accepting: SocketWithListener | null = null;

  constructor(ctx: ListenContext) {
    this.ctx = ctx;
    const server = createServer({ settings: { enablePush: false } }) as ServerWithListener;
    server[kListener] = this;
    server.on('stream', onStream);
    server.on('session', onSession);
    server.on('sessionError', noop);
    // A connection with no frames for an hour gets GOAWAY (Envoy's HTTP connection manager
    // idle_timeout default); open streams still finish.
    server.setTimeout(DEFAULT_IDLE_TIMEOUT_MS);
    server.on('timeout', onSessionIdle);
    this.server = server;
  }

  /** Takes over a socket whose first bytes were the HTTP/2 preface (put back with `unshift`). */
  accept(socket: Socket): void {
    (socket as SocketWithListener)[kListener] = this;
    this.ctx.connections.add(socket);
    socket.once('close', onSocketClose);
    socket.on('error', noop);
    this.accepting = socket;
    this.server.emit('connection', socket);
    this.accepting = null;
  }

  /** Open HTTP/2 connections. */
  get sessions(): number {
    return this.#sessions.size;
  }

  added(session: ServerHttp2Session): void {
    this.#sessions.add(session);
    if (this.ctx.draining) session.close();
    if (this.#drainTimer === null) {
      this.#drainTimer = setInterval(checkDrain, DRAIN_CHECK_INTERVAL_MS, this);
      this.#drainTimer.unref();
    }
  }

  removed(session: ServerHttp2Session): void {
    this.#sessions.delete(session);
    if (this.#sessions.size === 0 && this.#drainTimer !== null) {
      clearInterval(this.#drainTimer);
      this.#drainTimer = null;
    }
  }

  /**
   * When the listener drains, every connection gets GOAWAY: open streams finish, new
   * ones go to another connection (RFC 9113 §6.8). The listener context has no drain
   * callback, so a coarse timer looks while connections are open.
   */
  closeIfDraining(): void {
    if (!this.ctx.draining) return;
    for (const s of this.#sessions) if (!s.closed) s.close();
  }
}

function noop(): void {}

/**
 * Drains one connection of a listener if it speaks HTTP/2: GOAWAY, then it closes once its
 * open streams finish (RFC 9113 §6.8). Returns false for other connections, which their
 * own engine drains. For `Proxy.drain`, which must not end an HTTP/2 socket itself: that
 * would cut its streams off without a GOAWAY.
 */
export function drainH2Connection(socket: Socket): boolean {
  const session = (socket as SocketWithListener)[kSession];
  if (session === undefined) return false;
  if (!session.closed && !session.destroyed) session.close();
  return true;
}

function checkDrain(listener: H2Listener): void {
  listener.closeIfDraining();
}

function onSocketClose(this: SocketWithListener): void {
  this[kListener]?.ctx.connections.delete(this);
}

function onSession(this: ServerWithListener, session: SessionWithListener): void {
  const listener = this[kListener] as H2Listener;
  session[kListener] = listener;
  if (listener.accepting !== null) {
    listener.accepting[kSession] = session;
    // Read once per connection: `session.socket` is a Proxy, costly to go through per stream.
    session[kRemote] = listener.accepting.remoteAddress;
  }
  session.on('close', onSessionClose);
  session.on('error', noop);
  listener.added(session);
}

function onSessionIdle(session: ServerHttp2Session): void {
  if (!session.closed) session.close();
}

function onSessionClose(this: SessionWithListener): void {
  this[kListener]?.removed(this);
}

/**
 * `secure`: the connection's TLS was terminated here. The scheme is the connection's, not
 * the client's `:scheme` (an h2c client cannot claim `https` and skip `require_tls`).
 */
function requestInfo(headers: IncomingHttpHeaders, flat: readonly string[], secure: boolean): RequestInfo | undefined {
  const target = headers[':path'];
  if (typeof target !== 'string' || !target.startsWith('/')) return undefined;
  const q = target.indexOf('?');
  const authority = headers[':authority'] ?? headers.host ?? '';
  return {
    method: String(headers[':method']),
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? '' : target.slice(q + 1),
    authority: String(authority).toLowerCase(),
    scheme: secure ? 'https' : 'http',
    headers: flat,
  };
}

function onStream(this: ServerWithListener, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, raw: string[]): void {
  const ctx = (this[kListener] as H2Listener).ctx;
  const method = String(headers[':method'] ?? '');
  const contentType = headers['content-type'];
  const grpc = isGrpcContentType(typeof contentType === 'string' ? contentType : undefined);
  const ex = new H2Exchange(ctx, stream, method, grpc, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0);
  attachDownstream(ex);
  const flat = flatFromRaw(raw);
  const info = requestInfo(headers, flat, ctx.secure);
  if (info === undefined || method === 'CONNECT') {
    // CONNECT (and extended CONNECT for WebSockets over HTTP/2) come with tunnelling.
    localReply(ex, 501, NO_FLAGS);
    return;
  }
  const session = stream.session as SessionWithListener | undefined;
  const remote = session === undefined ? undefined : session[kRemote] ?? session.socket?.remoteAddress;
  const d = decide(ctx, info, remote);
  ex.destinationService = d.destinationService;
  if (ctx.mode === 'inbound') ex.peer = takePeer(flat);
  if (d.kind === 'local') {
    ex.responseHeaders = d.responseHeaders;
    if (d.delayMs > 0) setTimeout(answerLocally, d.delayMs, ex, d);
    else answerLocally(ex, d);
    return;
  }
  beginForward(ex, ctx, d);
  const upHeaders = upstreamRequestHeaders(ctx, flat, d, info, remote);
  // Tell a mesh destination's proxy who is calling (Istio's metadata exchange).
  if (ctx.mode !== 'inbound' && d.endpoint !== undefined) upHeaders.push(...ctx.identity.peerHeaders);
  if (d.action.mirrors !== null) beginMirror(ex, d, upHeaders);
  forward(ex, d, upHeaders);
}

/** The upstream half for the cluster's protocol, the breaker and timers, then the first try (after an injected delay). */
function forward(ex: H2Exchange, d: ForwardDecision, upHeaders: string[]): void {
  const timeoutMs = exchangeTimeoutMs(d.action, upHeaders);
  if (d.cluster.protocol === 'http1') forwardToH1(ex, d, upHeaders);
  else forwardToH2(ex, d, upHeaders); // http2, or the client's protocol (HTTP/2 here)
  if (!beginTries(ex, d, timeoutMs)) return; // 503 UO
  if (d.delayMs > 0) {
    ex.flags = 'DI';
    // The body waits for the try (kept, and the client paused, as while a retry waits).
    if (ex.replay === null && !ex.bodyless) ex.replay = [];
    delayTry(ex, d.delayMs);
    return;
  }
  sendTry(ex);
}

/** A local decision; an injected gRPC abort answers gRPC requests with its own status. */
function answerLocally(ex: H2Exchange, d: LocalDecision): void {
  if (ex.down.destroyed || ex.down.closed) return;
  if (d.grpcStatus >= 0 && ex.grpc) localGrpcReply(ex, d.grpcStatus, d.flag, 'fault filter abort');
  else localReply(ex, d.status, d.flag, d.body, d.headers);
}

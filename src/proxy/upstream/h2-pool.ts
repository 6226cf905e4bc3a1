/**
 * HTTP/2 (h2c, prior knowledge) connections to one upstream endpoint, shared by every
 * request to it: a request opens a stream on the oldest connection with a free stream
 * slot, and a new connection is opened only when all are full — the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS, or the cluster's own `max_concurrent_streams` if lower
 * (Envoy's HTTP/2 connection pool). A connection that received GOAWAY, failed or closed
 * takes no new streams; its open streams finish, and the next request opens a fresh one.
 *
 * A cluster's settings apply to the connections opened for it (`tryRequest` with its
 * `H2Limits`), as in the HTTP/1.1 pools (pool.ts `configureConnection`): `idle_timeout`
 * (closed after that long without streams), `max_requests_per_connection` (no new streams
 * after that many; closed when they end), `max_connection_duration` (the same once that
 * old) and TCP keepalive. Its circuit breaker counts the connections
 * (`max_connections`); a request that finds every connection at its stream limit and may
 * open none waits in the pool's pending queue (`max_pending_requests`) for a stream slot
 * or a connection slot, or overflows at once — Envoy's HTTP/2 pool.
 *
 * A pool of a cluster with an UpstreamTlsContext connects over TLS (ALPN `h2` unless the
 * context names protocols); its sessions are up once the handshake is done, so a failed
 * handshake fails the streams as a connect failure (UF), with the TLS reason kept.
 *
 * Built on `node:http2` (proxy-perf-notes: about a quarter of nginx's h2 throughput;
 * there is no faster HTTP/2 engine for Node).
 */
import { connect as h2connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type ClientSessionRequestOptions, type Http2Stream, type OutgoingHttpHeaders } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { addAbortSignal, Readable } from 'node:stream';
import type { PoolSettings, TcpKeepalive } from '../config/pool-settings.js';
import { setTcpKeepalive } from '../listener/fast-accept.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS } from './pool.js';
import { handshakeFailure, type UpstreamTls } from '../tls/tls-context.js';

/**
 * Streams per connection assumed until the peer's SETTINGS arrive. RFC 9113 §6.5.2 puts no
 * limit before then, but a burst of more than the peer allows is refused, and 100 is the
 * minimum the RFC recommends peers allow (Node's `peerMaxConcurrentStreams` default too).
 */
export const INITIAL_MAX_STREAMS = 100;
/** No local limit: HTTP/2's largest stream count (Envoy's default max_concurrent_streams). */
export const UNLIMITED_STREAMS = 2_147_483_647;

export interface H2PoolOptions {
  readonly connectTimeoutMs: number;
  /** A connection with no streams for this long is closed. */
  readonly idleTimeoutMs: number;
}

export const DEFAULT_H2_POOL_OPTIONS: H2PoolOptions = {
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
};

/**
 * What a cluster asks of the pool for its requests (`ClusterRuntime` has these fields):
 * its stream limit per connection, connect timeout, connection settings, and the circuit
 * breaker that counts its connections and waiting requests.
 */
export interface H2Limits {
  readonly maxConcurrentStreams: number;
  readonly connectTimeoutMs: number;
  readonly pool: PoolSettings;
  readonly breaker: CircuitBreaker;
}

/** A request waiting in a pool's pending queue (the exchange itself: no closure per request). */
export interface H2Waiter {
  /**
   * Called once, synchronously from a pool event, when a stream slot or a connection slot
   * may be free for it: it calls `tryRequest` again. Its pending slot was given back.
   */
  streamSlotFree(): void;
}

/** `tryRequest` could not open a stream now: the request waits (`pending`), or `max_pending_requests` is reached too (`overflow`: 503 UO). */
export const H2_REFUSALS = { pending: 'pending', overflow: 'overflow' } as const;
export type H2Refusal = (typeof H2_REFUSALS)[keyof typeof H2_REFUSALS];

const kConn = Symbol('trellis.h2.connection');
type StreamWithConn = ClientHttp2Stream & { [kConn]?: H2Connection };
type SessionWithConn = ClientHttp2Session & { [kConn]?: H2Connection };
const kKeepalive = Symbol('trellis.h2.keepalive');
type SocketWithKeepalive = Socket & { [kKeepalive]?: TcpKeepalive; [kConn]?: H2Connection };
/** ALPN for HTTP/2 over TLS when the context names none. */
const H2_ALPN = ['h2'] as const;

/** One HTTP/2 connection of a pool. */
export class H2Connection {
  readonly session: ClientHttp2Session;
  readonly pool: H2EndpointPool;
  /** Streams open on it (requested and not yet closed). */
  active = 0;
  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS; until they arrive, what the endpoint said last time. */
  maxStreams: number;
  /** The TCP connection (and the TLS handshake, and the HTTP/2 preface) completed. */
  connected = false;
  /** Why the TLS handshake failed (`TLS_error:...`); null when it did not (or the connection is plaintext). */
  failure: string | null = null;
  /** GOAWAY received, failed or closed: takes no new streams. */
  draining = false;
  /** Requests sent on it. */
  requests = 0;
  /** `max_requests_per_connection`: it takes no new stream after this many; 0 = no limit. */
  readonly maxRequests: number;
  /** The breaker whose `max_connections` counts it (given back on close); null when none does. */
  breaker: CircuitBreaker | null;
  #connectTimer: NodeJS.Timeout | null;
  /** `max_connection_duration`: drains it when it passes. */
  #ageTimer: NodeJS.Timeout | null = null;

  constructor(pool: H2EndpointPool, connectTimeoutMs: number, settings: PoolSettings | null = null, breaker: CircuitBreaker | null = null) {
    this.pool = pool;
    this.maxStreams = pool.peerMaxStreams;
    this.maxRequests = settings?.maxRequestsPerConnection ?? 0;
    this.breaker = breaker;
    const { address, port } = pool;
    const host = address.includes(':') ? `[${address}]` : address;
    const keepalive = settings?.tcpKeepalive ?? null;
    const tls = pool.tls;
    const session = h2connect(`${tls === null ? 'http' : 'https'}://${host}:${port}`, {
      createConnection: (): Socket => openSocket(this, keepalive),
      settings: { enablePush: false },
    });
    this.session = session;
    (session as SessionWithConn)[kConn] = this;
    session.on('connect', onSessionConnect);
    session.on('remoteSettings', onRemoteSettings);
    session.on('goaway', onSessionGoaway);
    session.on('close', onSessionClose);
    session.on('error', onSessionError);
    session.on('timeout', onSessionIdle);
    // Node's session timer restarts on every frame either way, so it fires this long after
    // the last stream's last frame: Envoy's idle_timeout (no active streams), 0 = none.
    session.setTimeout(settings?.idleTimeoutMs ?? pool.options.idleTimeoutMs);
    this.#connectTimer = setTimeout(onConnectTimeout, connectTimeoutMs, this);
    this.#connectTimer.unref();
    const maxAgeMs = settings?.maxConnectionDurationMs ?? 0;
    if (maxAgeMs > 0) this.#ageTimer = setTimeout(onMaxAge, maxAgeMs, this).unref();
  }

  /** Whether a new stream may be opened on it, with `localMax` the cluster's own limit. */
  usable(localMax: number): boolean {
    return !this.draining && this.active < Math.min(this.maxStreams, localMax) && !this.session.destroyed && !this.session.closed;
  }

  clearConnectTimer(): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
  }

  /** The session closed: timers stopped, the breaker's connection slot given back (once). */
  closed(): void {
    this.clearConnectTimer();
    if (this.#ageTimer !== null) clearTimeout(this.#ageTimer);
    this.#ageTimer = null;
    const breaker = this.breaker;
    if (breaker === null) return;
    this.breaker = null;
    breaker.connectionClosed();
    connectionSlotFree(breaker);
  }

  /** No new streams; closes once the open ones finish (GOAWAY to the peer). */
  drain(): void {
    this.draining = true;
    this.pool.forget(this);
    if (this.active === 0 && !this.session.closed) this.session.close();
  }
}

/**
 * Node ends the socket once the session is over (closed or destroyed, every stream done)
 * and then, for a graceful close, waits for the peer to close its side before the session
 * emits 'close'. A peer that stopped reading after its GOAWAY (Node's own HTTP/2 server
 * does) never does, and the connection would stay half-open for good: nothing is left to
 * read from it, so it is closed here.
 */
function onSocketFinish(this: Socket): void {
  this.destroy();
}

function openSocket(c: H2Connection, keepalive: TcpKeepalive | null): Socket {
  const { address, port, tls } = c.pool;
  const socket = (tls === null ? netConnect({ host: address, port, noDelay: true, keepAlive: true }) : tls.connect(address, port, tls.alpn.length > 0 ? tls.alpn : H2_ALPN)) as SocketWithKeepalive;
  socket.once('finish', onSocketFinish);
  if (tls !== null) {
    socket[kConn] = c;
    socket.once('error', onTlsError);
  }
  if (keepalive !== null) {
    socket[kKeepalive] = keepalive;
    socket.once('connect', onSocketConnect);
  }
  return socket;
}

/** A TLS socket's error before the session was up: keep its handshake's failure for the 503 body. */
function onTlsError(this: SocketWithKeepalive, err: Error): void {
  const c = this[kConn];
  if (c !== undefined && !c.connected) c.failure = handshakeFailure(err);
}

/** TCP keepalive as the cluster says (`tcp_keepalive`): set once the socket has its fd, as pool.ts `connected()` does. */
function onSocketConnect(this: SocketWithKeepalive): void {
  const k = this[kKeepalive];
  if (k !== undefined) setTcpKeepalive(this, k.idleS, k.intervalS, k.probes);
}

function onSessionConnect(this: SessionWithConn): void {
  const c = this[kConn] as H2Connection;
  c.connected = true;
  c.clearConnectTimer();
}

function onRemoteSettings(this: SessionWithConn, settings: { maxConcurrentStreams?: number }): void {
  const c = this[kConn] as H2Connection;
  const before = c.maxStreams;
  c.maxStreams = settings.maxConcurrentStreams ?? UNLIMITED_STREAMS;
  c.pool.peerMaxStreams = c.maxStreams;
  if (c.maxStreams > before) c.pool.serveWaiters();
}

function onSessionGoaway(this: SessionWithConn): void {
  (this[kConn] as H2Connection).drain();
}

function onSessionClose(this: SessionWithConn): void {
  const c = this[kConn] as H2Connection;
  c.draining = true;
  c.pool.forget(c, true);
  c.closed();
}

/** Failures reach each stream as its own 'error' and 'close'; the session only stops taking streams. */
function onSessionError(this: SessionWithConn): void {
  const c = this[kConn] as H2Connection;
  c.draining = true;
  c.pool.forget(c);
}

function onSessionIdle(this: SessionWithConn): void {
  const c = this[kConn] as H2Connection;
  if (c.active === 0) c.drain();
}

function onConnectTimeout(c: H2Connection): void {
  if (c.connected) return;
  c.draining = true;
  c.pool.forget(c);
  c.session.destroy(Object.assign(new Error(`connect timeout to ${c.pool.address}:${c.pool.port}`), { code: 'ETIMEDOUT' }));
}

/** `max_connection_duration` passed: no new streams; it closes once its streams end (Envoy drains it). */
function onMaxAge(c: H2Connection): void {
  if (!c.draining) c.drain();
}

function onStreamClose(this: StreamWithConn): void {
  const c = this[kConn] as H2Connection;
  c.active--;
  if (c.draining) {
    if (c.active === 0 && !c.session.closed) c.session.close();
    return;
  }
  c.pool.serveWaiters(); // a stream slot is free
}

/** A stream and the connection it was opened on. */
export interface H2Request {
  readonly stream: ClientHttp2Stream;
  readonly connection: H2Connection;
}

export class H2EndpointPool {
  readonly address: string;
  readonly port: number;
  readonly options: H2PoolOptions;
  /** The cluster's TLS origination; null for h2c. */
  readonly tls: UpstreamTls | null;
  /**
   * The endpoint's SETTINGS_MAX_CONCURRENT_STREAMS as its last connection announced it: a
   * new connection assumes it until its own SETTINGS arrive, so a burst that overflows one
   * connection does not overflow the next one too (the peer would refuse the excess).
   */
  peerMaxStreams = INITIAL_MAX_STREAMS;
  /** Connections that may take streams, oldest first. */
  readonly #conns: H2Connection[] = [];
  /** Every connection not closed yet, draining ones included. */
  readonly #all = new Set<H2Connection>();
  /** Requests waiting for a stream slot (`max_connections` reached, every connection full), oldest first. */
  readonly #waiters: Waiting[] = [];
  #closed = false;

  constructor(address: string, port: number, options: H2PoolOptions = DEFAULT_H2_POOL_OPTIONS, tls: UpstreamTls | null = null) {
    this.address = address;
    this.port = port;
    this.options = options;
    this.tls = tls;
  }

  /** Connections that take new streams. */
  get open(): number {
    return this.#conns.length;
  }

  /** Every connection not closed yet, draining ones included (for the admin output and tests). */
  get connections(): ReadonlySet<H2Connection> {
    return this.#all;
  }

  /**
   * Opens a stream with `headers` (pseudo-headers included), with no circuit breaker: uses
   * the oldest connection with a free slot (streams concentrate on few connections; extra
   * ones idle out), else opens a connection, waiting for its connect for at most
   * `connectTimeoutMs`. Never throws for network failures: they arrive as the stream's
   * 'error' and 'close' events; the caller must listen for 'error'.
   */
  request(headers: OutgoingHttpHeaders, options: ClientSessionRequestOptions, localMax = UNLIMITED_STREAMS, connectTimeoutMs = this.options.connectTimeoutMs): H2Request {
    return this.#request(headers, options, localMax, connectTimeoutMs, null) as H2Request;
  }

  /**
   * `request` for a cluster with `limits`: a new connection takes the cluster's settings
   * and counts against its `max_connections`. When no connection has a free slot and none
   * may be opened, the request waits in this pool's queue (`pending`: `waiter` is called
   * once a slot may be free, or `cancel(waiter)` takes it out) or, past
   * `max_pending_requests`, gets `overflow` (Envoy: 503 UO at once).
   */
  tryRequest(headers: OutgoingHttpHeaders, options: ClientSessionRequestOptions, limits: H2Limits, waiter: H2Waiter): H2Request | H2Refusal {
    const r = this.#request(headers, options, limits.maxConcurrentStreams, limits.connectTimeoutMs, limits);
    if (r !== null) return r;
    if (!limits.breaker.tryPending()) return H2_REFUSALS.overflow;
    this.#waiters.push({ waiter, limits });
    waitingOn(limits.breaker, this);
    return H2_REFUSALS.pending;
  }

  /** `tryRequest` without waiting: null when it would have to (for fire-and-forget copies). */
  requestIfFree(headers: OutgoingHttpHeaders, options: ClientSessionRequestOptions, limits: H2Limits): H2Request | null {
    return this.#request(headers, options, limits.maxConcurrentStreams, limits.connectTimeoutMs, limits);
  }

  #request(headers: OutgoingHttpHeaders, options: ClientSessionRequestOptions, localMax: number, connectTimeoutMs: number, limits: H2Limits | null): H2Request | null {
    for (let attempt = 0; ; attempt++) {
      const c = this.#acquire(localMax, connectTimeoutMs, limits);
      if (c === null) return null;
      let stream: ClientHttp2Stream;
      try {
        stream = c.session.request(headers, options);
      } catch (err) {
        // Stream ids exhausted (ERR_HTTP2_OUT_OF_STREAMS) or the session just went away:
        // retire the connection and use another; a bad header is the caller's bug.
        if (attempt > 0 || (err as { code?: string }).code === 'ERR_HTTP2_INVALID_HEADER_VALUE') throw err;
        c.drain();
        continue;
      }
      c.active++;
      c.requests++;
      (stream as StreamWithConn)[kConn] = c;
      stream.once('close', onStreamClose);
      // max_requests_per_connection: this was its last stream; it closes after it.
      if (c.maxRequests > 0 && c.requests >= c.maxRequests) c.drain();
      return { stream, connection: c };
    }
  }

  /** A connection with a free slot; else a new one, if the breaker allows (null: it does not). */
  #acquire(localMax: number, connectTimeoutMs: number, limits: H2Limits | null): H2Connection | null {
    for (const c of this.#conns) if (c.usable(localMax)) return c;
    if (limits !== null && !limits.breaker.tryConnect()) return null;
    const c = new H2Connection(this, connectTimeoutMs, limits?.pool ?? null, limits?.breaker ?? null);
    this.#all.add(c);
    if (!this.#closed) this.#conns.push(c);
    else c.draining = true;
    return c;
  }

  /** Whether a request with `limits` would get a stream now. */
  #free(limits: H2Limits): boolean {
    for (const c of this.#conns) if (c.usable(limits.maxConcurrentStreams)) return true;
    return limits.breaker.canConnect();
  }

  /** How many requests wait for a stream slot (for the admin output and tests). */
  get pending(): number {
    return this.#waiters.length;
  }

  /**
   * A stream slot or a connection slot may be free: the oldest waiters try again while
   * there is room for them (synchronously; each takes its slot before the next is asked).
   */
  serveWaiters(): void {
    if (this.#closed) {
      this.#wakeAll();
      return;
    }
    const q = this.#waiters;
    while (q.length > 0) {
      const w = q[0] as Waiting;
      if (!this.#free(w.limits)) return;
      q.shift();
      if (q.length === 0) notWaiting(this);
      w.limits.breaker.endPending();
      w.waiter.streamSlotFree();
    }
  }

  /**
   * A closed pool takes no more waiters' streams: each tries again once, now, and goes to
   * the endpoint's next pool (`UpstreamState` forgets a pool before closing it).
   */
  #wakeAll(): void {
    const q = this.#waiters.splice(0);
    if (q.length > 0) notWaiting(this);
    for (const w of q) {
      w.limits.breaker.endPending();
      w.waiter.streamSlotFree();
    }
  }

  /** A waiting request gave up (its timeout, the client left): out of the queue, its pending slot given back. */
  cancel(waiter: H2Waiter): void {
    const q = this.#waiters;
    for (let i = 0; i < q.length; i++) {
      const w = q[i] as Waiting;
      if (w.waiter !== waiter) continue;
      q.splice(i, 1);
      if (q.length === 0) notWaiting(this);
      w.limits.breaker.endPending();
      return;
    }
  }

  /** Called when a connection stops taking streams (`closed`: and is gone). */
  forget(c: H2Connection, closed = false): void {
    const i = this.#conns.indexOf(c);
    if (i >= 0) this.#conns.splice(i, 1);
    if (closed) this.#all.delete(c);
  }

  /**
   * Closes every connection gracefully: open streams finish, new ones go elsewhere.
   * Waiting requests try again at once (their next `h2()` pool is a new one).
   */
  close(): void {
    this.#closed = true;
    for (const c of [...this.#conns]) c.drain();
    this.serveWaiters();
  }

  /** Closes every connection now, draining ones included, resetting open streams; waiting requests are dropped (the proxy is stopping). */
  destroy(): void {
    this.#closed = true;
    this.#conns.length = 0;
    for (const w of this.#waiters.splice(0)) w.limits.breaker.endPending();
    notWaiting(this);
    for (const c of this.#all) {
      c.draining = true;
      c.session.destroy();
    }
    this.#all.clear();
  }
}

interface Waiting {
  readonly waiter: H2Waiter;
  readonly limits: H2Limits;
}

/**
 * The pools with requests waiting under each breaker: a connection slot freed by one
 * endpoint's connection may serve a request waiting for another endpoint of the cluster
 * (`max_connections` is per cluster). Only pools with waiters are here.
 */
const waitingPools = new Map<CircuitBreaker, Set<H2EndpointPool>>();

function waitingOn(breaker: CircuitBreaker, pool: H2EndpointPool): void {
  let pools = waitingPools.get(breaker);
  if (pools === undefined) {
    pools = new Set();
    waitingPools.set(breaker, pools);
  }
  pools.add(pool);
}

/** `pool` has no waiters left. */
function notWaiting(pool: H2EndpointPool): void {
  for (const [breaker, pools] of waitingPools) {
    pools.delete(pool);
    if (pools.size === 0) waitingPools.delete(breaker);
  }
}

/** A connection counted by `breaker` closed: the pools waiting under it may open one. */
function connectionSlotFree(breaker: CircuitBreaker): void {
  const pools = waitingPools.get(breaker);
  if (pools === undefined) return;
  for (const p of [...pools]) {
    if (!breaker.canConnect()) return;
    p.serveWaiters();
  }
}

/**
 * Envoy's response flag for a stream that closed without a complete response: UF when the
 * connection never came up, UC when it went away (closed, failed, GOAWAY'd), UR when the
 * upstream reset the stream itself (REFUSED_STREAM included).
 */
export function streamFailureFlag(c: H2Connection, rstCode: number | undefined): 'UF' | 'UC' | 'UR' {
  if (!c.connected) return 'UF';
  if ((c.session.destroyed || c.session.closed) && rstCode !== constants.NGHTTP2_REFUSED_STREAM) return 'UC';
  return 'UR';
}

/**
 * Resetting a stream that is still open for writing. `Http2Stream.close(code)` would end
 * the writable side first (END_STREAM, then RST_STREAM), so the peer could take a cut-off
 * message for a complete one; `destroy(err)` sends only RST_STREAM: CANCEL for Node's
 * internal AbortError, INTERNAL_ERROR for any other error. The stream emits `err` as
 * 'error': the caller listens.
 */
export function cancelStream(stream: Http2Stream): void {
  if (!stream.destroyed) stream.destroy(abortError());
}

/** Resets with INTERNAL_ERROR (the upstream failed mid-response); see cancelStream. */
export function resetStream(stream: Http2Stream): void {
  if (!stream.destroyed) stream.destroy(RESET_ERROR);
}

const RESET_ERROR = new Error('stream reset by the proxy');
let ABORT_ERROR: Error | null = null;

/** Node's AbortError class is internal; `addAbortSignal` makes one (once, on first use). */
function abortError(): Error {
  if (ABORT_ERROR === null) {
    const ac = new AbortController();
    ac.abort();
    const r = new Readable({ read: noop });
    r.on('error', noop);
    addAbortSignal(ac.signal, r);
    ABORT_ERROR = r.errored ?? new Error('aborted');
  }
  return ABORT_ERROR;
}

function noop(): void {}

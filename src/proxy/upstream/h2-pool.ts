/**
 * HTTP/2 (h2c, prior knowledge) connections to one upstream endpoint, shared by every
 * request to it: a request opens a stream on the oldest connection with a free stream
 * slot, and a new connection is opened only when all are full — the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS, or the cluster's own `max_concurrent_streams` if lower
 * (Envoy's HTTP/2 connection pool). A connection that received GOAWAY, failed or closed
 * takes no new streams; its open streams finish, and the next request opens a fresh one.
 *
 * Built on `node:http2` (proxy-perf-notes: about a quarter of nginx's h2 throughput;
 * there is no faster HTTP/2 engine for Node).
 */
import { connect as h2connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type ClientSessionRequestOptions, type Http2Stream, type OutgoingHttpHeaders } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { addAbortSignal, Readable } from 'node:stream';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS } from './pool.js';

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

const kConn = Symbol('trellis.h2.connection');
type StreamWithConn = ClientHttp2Stream & { [kConn]?: H2Connection };
type SessionWithConn = ClientHttp2Session & { [kConn]?: H2Connection };

/** One HTTP/2 connection of a pool. */
export class H2Connection {
  readonly session: ClientHttp2Session;
  readonly pool: H2EndpointPool;
  /** Streams open on it (requested and not yet closed). */
  active = 0;
  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS; until they arrive, what the endpoint said last time. */
  maxStreams: number;
  /** The TCP connection (and the HTTP/2 preface) completed. */
  connected = false;
  /** GOAWAY received, failed or closed: takes no new streams. */
  draining = false;
  /** Requests sent on it. */
  requests = 0;
  #connectTimer: NodeJS.Timeout | null;

  constructor(pool: H2EndpointPool, connectTimeoutMs: number) {
    this.pool = pool;
    this.maxStreams = pool.peerMaxStreams;
    const { address, port } = pool;
    const host = address.includes(':') ? `[${address}]` : address;
    const session = h2connect(`http://${host}:${port}`, {
      createConnection: (): Socket => netConnect({ host: address, port, noDelay: true, keepAlive: true }).once('finish', onSocketFinish),
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
    session.setTimeout(pool.options.idleTimeoutMs);
    this.#connectTimer = setTimeout(onConnectTimeout, connectTimeoutMs, this);
    this.#connectTimer.unref();
  }

  /** Whether a new stream may be opened on it, with `localMax` the cluster's own limit. */
  usable(localMax: number): boolean {
    return !this.draining && this.active < Math.min(this.maxStreams, localMax) && !this.session.destroyed && !this.session.closed;
  }

  clearConnectTimer(): void {
    if (this.#connectTimer !== null) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
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

function onSessionConnect(this: SessionWithConn): void {
  const c = this[kConn] as H2Connection;
  c.connected = true;
  c.clearConnectTimer();
}

function onRemoteSettings(this: SessionWithConn, settings: { maxConcurrentStreams?: number }): void {
  const c = this[kConn] as H2Connection;
  c.maxStreams = settings.maxConcurrentStreams ?? UNLIMITED_STREAMS;
  c.pool.peerMaxStreams = c.maxStreams;
}

function onSessionGoaway(this: SessionWithConn): void {
  (this[kConn] as H2Connection).drain();
}

function onSessionClose(this: SessionWithConn): void {
  const c = this[kConn] as H2Connection;
  c.clearConnectTimer();
  c.draining = true;
  c.pool.forget(c, true);
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

function onStreamClose(this: StreamWithConn): void {
  const c = this[kConn] as H2Connection;
  c.active--;
  if (c.draining && c.active === 0 && !c.session.closed) c.session.close();
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
  #closed = false;

  constructor(address: string, port: number, options: H2PoolOptions = DEFAULT_H2_POOL_OPTIONS) {
    this.address = address;
    this.port = port;
    this.options = options;
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
   * Opens a stream with `headers` (pseudo-headers included). Uses the oldest connection
   * with a free slot (streams concentrate on few connections; extra ones idle out), else
   * opens a connection, waiting for its connect for at most `connectTimeoutMs`. Never
   * throws for network failures: they arrive as the stream's 'error' and 'close' events;
   * the caller must listen for 'error'.
   */
  request(headers: OutgoingHttpHeaders, options: ClientSessionRequestOptions, localMax = UNLIMITED_STREAMS, connectTimeoutMs = this.options.connectTimeoutMs): H2Request {
    for (let attempt = 0; ; attempt++) {
      const c = this.#acquire(localMax, connectTimeoutMs);
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
      return { stream, connection: c };
    }
  }

  #acquire(localMax: number, connectTimeoutMs: number): H2Connection {
    for (const c of this.#conns) if (c.usable(localMax)) return c;
    const c = new H2Connection(this, connectTimeoutMs);
    this.#all.add(c);
    if (!this.#closed) this.#conns.push(c);
    else c.draining = true;
    return c;
  }

  /** Called when a connection stops taking streams (`closed`: and is gone). */
  forget(c: H2Connection, closed = false): void {
    const i = this.#conns.indexOf(c);
    if (i >= 0) this.#conns.splice(i, 1);
    if (closed) this.#all.delete(c);
  }

  /** Closes every connection gracefully: open streams finish, new ones go elsewhere. */
  close(): void {
    this.#closed = true;
    for (const c of [...this.#conns]) c.drain();
  }

  /** Closes every connection now, draining ones included, resetting open streams. */
  destroy(): void {
    this.#closed = true;
    this.#conns.length = 0;
    for (const c of this.#all) {
      c.draining = true;
      c.session.destroy();
    }
    this.#all.clear();
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

/**
 * Keep-alive connection pools, one per upstream endpoint, LIFO: the most recently used
 * idle connection is reused first, so a burst's extra connections age out while the warm
 * ones keep serving (proxy-perf-notes: a pool smaller than the concurrency churns
 * connections and cuts throughput several times).
 *
 * A connection goes back to the pool only when its exchange finished cleanly: the whole
 * response read, the request fully written, not paused for back-pressure (a socket
 * returned mid-response hung every later request in a prototype).
 *
 * Two engines share these pools: the HTTP/1.1 engine (h1-proxy.ts) and the HTTP/2 to
 * HTTP/1.1 bridge (h2/h2-to-h1.ts). Each has its own module-level socket handlers
 * (`ConnectionHandlers`), installed with `useHandlers` when it takes a connection; they
 * find the connection through `kConnection` and its exchange through `owner`.
 *
 * Idle timeouts are kept by the pool, one timer for all its idle connections, not with
 * `socket.setTimeout`: that makes a new timer and a bound function each time a connection
 * is released, and clears it when it is taken again, twice per request on a busy pool
 * (2 % of what the request path allocated in a heap profile). A connection is released
 * and taken again far more often than any idle timeout passes.
 *
 * A pool of a cluster with an UpstreamTlsContext opens TLS connections (`tls`); for its
 * connections the engines' connect handler runs once the handshake is done, so a failed
 * handshake is a connect failure (UF) like a refused connection. Plaintext pools take
 * exactly the path they always did.
 */
import { connect, type Socket } from 'node:net';
import type { PoolSettings, TcpKeepalive } from '../config/pool-settings.js';
import { setTcpKeepalive } from '../listener/fast-accept.js';
import { handshakeFailure, type UpstreamTls } from '../tls/tls-context.js';
import { readIntoSharedBuffer, readWith } from '../socket-reader.js';

/** Envoy/Istio default upstream idle timeout: 1 hour. */
export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;
/** Istio's default connect timeout (MeshConfig connectTimeout). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export interface PoolOptions {
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Idle connections kept at most; extra ones are closed when released. */
  readonly maxIdle: number;
}

export const DEFAULT_POOL_OPTIONS: PoolOptions = {
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  maxIdle: 1024,
};

/** The connection a pooled socket belongs to, for module-level socket handlers. */
export const kConnection = Symbol('trellis.upstream.connection');
export type PooledSocket = Socket & { [kConnection]?: UpstreamConnection };

/**
 * One engine's handlers for the events of its upstream sockets. An idle connection may
 * carry either engine's handlers, so both must treat an idle one alike: bytes or a
 * timeout on a connection without an owner destroy it.
 */
export interface ConnectionHandlers {
  readonly connect: (this: PooledSocket) => void;
  /** The socket's bytes; `chunk` may be a view of the shared read buffer, valid during the call (socket-reader.ts). */
  readonly data: (this: PooledSocket, chunk: Buffer) => void;
  readonly drain: (this: PooledSocket) => void;
  readonly close: (this: PooledSocket) => void;
  readonly timeout: (this: PooledSocket) => void;
}

/** An upstream connection. `owner` is whoever uses it now (an exchange), or null when idle. */
export class UpstreamConnection {
  readonly socket: Socket;
  readonly pool: EndpointPool;
  owner: unknown = null;
  /** The handlers installed on the socket (the engine that used it last). */
  handlers: ConnectionHandlers | null = null;
  connected = false;
  /** Why the TLS handshake failed (`TLS_error:...`); null when it did not (or the connection is plaintext). */
  failure: string | null = null;
  /** Set once the socket errored or closed: never reuse. */
  dead = false;
  /** Requests sent on this connection (for max_requests_per_connection). */
  requests = 0;
  /** While idle: when it was released (performance.now()) and how long it may stay idle (0: forever). */
  idleSince = 0;
  idleTimeoutMs = 0;
  /** When it was opened, and how long it may be used from then (max_connection_duration; 0: forever). */
  readonly openedAt = performance.now();
  maxAgeMs = 0;
  /** TCP keepalive to set once connected (tcp_keepalive), null for none. */
  keepalive: TcpKeepalive | null = null;
  /**
   * The circuit breaker that admitted this connection (max_connections), and what to
   * call once it is closed, so a waiting request can have the freed slot; null when the
   * connection was opened outside any limit.
   */
  breaker: { connectionClosed(): void } | null = null;
  onClosed: ((breaker: { connectionClosed(): void }) => void) | null = null;

  constructor(socket: Socket, pool: EndpointPool) {
    this.socket = socket;
    this.pool = pool;
  }
}

export class EndpointPool {
  readonly address: string;
  readonly port: number;
  readonly options: PoolOptions;
  /** The cluster's TLS origination; null for plaintext. */
  readonly tls: UpstreamTls | null;
  readonly #idle: UpstreamConnection[] = [];
  /** Connections open (idle or in use). */
  open = 0;
  #closed = false;
  /** Fires when the longest-idle connection with a timeout reaches it; null while none has one. */
  #idleTimer: NodeJS.Timeout | null = null;

  constructor(address: string, port: number, options: PoolOptions = DEFAULT_POOL_OPTIONS, tls: UpstreamTls | null = null) {
    this.address = address;
    this.port = port;
    this.options = options;
    this.tls = tls;
  }

  get idleCount(): number {
    return this.#idle.length;
  }

  /** The most recently released live idle connection, or null. */
  acquire(): UpstreamConnection | null {
    while (this.#idle.length > 0) {
      const c = this.#idle.pop() as UpstreamConnection;
      if (c.dead || c.socket.destroyed) continue;
      if (expired(c, performance.now())) {
        c.dead = true;
        c.socket.destroy();
        continue;
      }
      return c;
    }
    return null;
  }

  /** A new connection; the caller attaches its handlers before the connect completes. */
  create(): UpstreamConnection {
    const tls = this.tls;
    // Plaintext connections read into the shared read buffer (socket-reader.ts).
    const socket = tls === null ? connect({ host: this.address, port: this.port, noDelay: true, keepAlive: true, onread: readIntoSharedBuffer() }) : tls.connect(this.address, this.port);
    const c = new UpstreamConnection(socket, this);
    (socket as PooledSocket)[kConnection] = c;
    readWith(socket, onPooledData);
    if (tls !== null) socket.once('error', onTlsError);
    this.open++;
    socket.setTimeout(this.options.connectTimeoutMs);
    socket.once('close', onClose.bind(c));
    return c;
  }

  /** Returns a healthy, finished connection for reuse; it closes after `idleTimeoutMs` unused (0: never). */
  release(c: UpstreamConnection, idleTimeoutMs = this.options.idleTimeoutMs): void {
    c.owner = null;
    const now = performance.now();
    if (c.dead || c.socket.destroyed || this.#closed || this.#idle.length >= this.options.maxIdle || c.socket.isPaused() || expired(c, now)) {
      c.dead = true;
      c.socket.destroy();
      return;
    }
    c.idleSince = now;
    c.idleTimeoutMs = idleTimeoutMs;
    this.#idle.push(c);
    const wait = dueAt(c) - now;
    if (wait !== Infinity && this.#idleTimer === null) this.#idleTimer = setTimeout(sweepIdle, Math.max(1, Math.ceil(wait)), this).unref();
  }

  /** Closes the idle connections whose timeout passed; waits for the next one to pass. */
  sweep(): void {
    this.#idleTimer = null;
    const now = performance.now();
    let next = Infinity;
    const idle = this.#idle;
    for (let i = 0; i < idle.length; ) {
      const c = idle[i] as UpstreamConnection;
      const due = dueAt(c);
      if (due <= now || c.dead || c.socket.destroyed) {
        idle.splice(i, 1);
        c.dead = true;
        c.socket.destroy();
        continue;
      }
      if (due < next) next = due;
      i++;
    }
    if (next !== Infinity && !this.#closed) this.#idleTimer = setTimeout(sweepIdle, Math.max(1, Math.ceil(next - now)), this).unref();
  }

  /** Closes idle connections; in-use ones close when their exchange ends. */
  close(): void {
    this.#closed = true;
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    for (const c of this.#idle.splice(0)) {
      c.dead = true;
      c.socket.destroy();
    }
  }

  /** Called by a connection's close: forget it. */
  forget(c: UpstreamConnection): void {
    this.open--;
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
  }
}

/**
 * Makes `h` the handlers of `c`'s socket. A no-op for the engine that used the connection
 * last; the handlers are swapped only when a connection goes from one engine to the
 * other (both sending to one endpoint).
 */
export function useHandlers(c: UpstreamConnection, h: ConnectionHandlers): void {
  const prev = c.handlers;
  if (prev === h) return;
  const s = c.socket;
  // A TLS connection is up once its handshake is done.
  const connectEvent = c.pool.tls === null ? 'connect' : 'secureConnect';
  if (prev === null) {
    s.on('error', noop); // 'close' follows, and the handlers act on that
  } else {
    s.removeListener(connectEvent, prev.connect);
    s.removeListener('drain', prev.drain);
    s.removeListener('close', prev.close);
    s.removeListener('timeout', prev.timeout);
  }
  s.on(connectEvent, h.connect);
  s.on('drain', h.drain);
  s.on('close', h.close);
  s.on('timeout', h.timeout);
  c.handlers = h;
}

function noop(): void {}

/** The socket's reader: its bytes go to the engine whose handlers it has. */
function onPooledData(this: PooledSocket, chunk: Buffer): void {
  const h = (this[kConnection] as UpstreamConnection).handlers;
  if (h !== null) h.data.call(this, chunk);
  else this.destroy(); // bytes before any engine sent a request: the server broke the protocol
}

/** A TLS connection's error before it was up: keep its handshake's failure for the 503 body. */
function onTlsError(this: PooledSocket, err: Error): void {
  const c = this[kConnection];
  if (c !== undefined && !c.connected) c.failure = handshakeFailure(err);
}

function sweepIdle(pool: EndpointPool): void {
  pool.sweep();
}

/** Past its max_connection_duration: used no more (Envoy drains it; HTTP/1.1 closes it once idle). */
function expired(c: UpstreamConnection, now: number): boolean {
  return c.maxAgeMs > 0 && now - c.openedAt >= c.maxAgeMs;
}

/** When an idle connection must close: its idle timeout or its maximum age, whichever comes first. */
function dueAt(c: UpstreamConnection): number {
  const idle = c.idleTimeoutMs > 0 ? c.idleSince + c.idleTimeoutMs : Infinity;
  const age = c.maxAgeMs > 0 ? c.openedAt + c.maxAgeMs : Infinity;
  return Math.min(idle, age);
}

/** A new connection takes its cluster's settings: maximum age now, TCP keepalive once connected (`connected`). */
export function configureConnection(c: UpstreamConnection, settings: PoolSettings | undefined): void {
  if (settings === undefined) return;
  c.maxAgeMs = settings.maxConnectionDurationMs;
  c.keepalive = settings.tcpKeepalive;
}

/** The engines call this from their connect handler: the socket has its fd now. */
export function connected(c: UpstreamConnection): void {
  c.connected = true;
  const k = c.keepalive;
  if (k !== null) setTcpKeepalive(c.socket, k.idleS, k.intervalS, k.probes);
}

function onClose(this: UpstreamConnection): void {
  this.dead = true;
  this.pool.forget(this);
  const breaker = this.breaker;
  if (breaker !== null) {
    this.breaker = null;
    breaker.connectionClosed();
    this.onClosed?.(breaker);
  }
}

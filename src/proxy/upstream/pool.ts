/**
 * Keep-alive connection pools, one per upstream endpoint, LIFO: the most recently used
 * idle connection is reused first, so a burst's extra connections age out while the warm
 * ones keep serving (proxy-perf-notes: a pool smaller than the concurrency churns
 * connections and cuts throughput several times).
 *
 * A connection goes back to the pool only when its exchange finished cleanly: the whole
 * response read, the request fully written, not paused for back-pressure (a socket
 * returned mid-response hung every later request in a prototype).
 */
import { connect, type Socket } from 'node:net';

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

/** An upstream connection. `owner` is whoever uses it now (an exchange), or null when idle. */
export class UpstreamConnection {
  readonly socket: Socket;
  readonly pool: EndpointPool;
  owner: unknown = null;
  connected = false;
  /** Set once the socket errored or closed: never reuse. */
  dead = false;
  /** Requests sent on this connection (for maxRequestsPerConnection, later). */
  requests = 0;

  constructor(socket: Socket, pool: EndpointPool) {
    this.socket = socket;
    this.pool = pool;
  }
}

export class EndpointPool {
  readonly address: string;
  readonly port: number;
  readonly options: PoolOptions;
  readonly #idle: UpstreamConnection[] = [];
  /** Connections open (idle or in use). */
  open = 0;
  #closed = false;

  constructor(address: string, port: number, options: PoolOptions = DEFAULT_POOL_OPTIONS) {
    this.address = address;
    this.port = port;
    this.options = options;
  }

  get idleCount(): number {
    return this.#idle.length;
  }

  /** The most recently released live idle connection, or null. */
  acquire(): UpstreamConnection | null {
    while (this.#idle.length > 0) {
      const c = this.#idle.pop() as UpstreamConnection;
      if (c.dead || c.socket.destroyed) continue;
      c.socket.setTimeout(0);
      return c;
    }
    return null;
  }

  /** A new connection; the caller attaches its handlers before the connect completes. */
  create(): UpstreamConnection {
    const socket = connect({ host: this.address, port: this.port, noDelay: true, keepAlive: true });
    const c = new UpstreamConnection(socket, this);
    this.open++;
    socket.setTimeout(this.options.connectTimeoutMs);
    socket.once('close', onClose.bind(c));
    return c;
  }

  /** Returns a healthy, finished connection for reuse. */
  release(c: UpstreamConnection): void {
    c.owner = null;
    if (c.dead || c.socket.destroyed || this.#closed || this.#idle.length >= this.options.maxIdle || c.socket.isPaused()) {
      c.dead = true;
      c.socket.destroy();
      return;
    }
    c.socket.setTimeout(this.options.idleTimeoutMs);
    this.#idle.push(c);
  }

  /** Closes idle connections; in-use ones close when their exchange ends. */
  close(): void {
    this.#closed = true;
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

function onClose(this: UpstreamConnection): void {
  this.dead = true;
  this.pool.forget(this);
}

/**
 * HTTP/1.1 upstream connections under a cluster's circuit breaker, for both engines that
 * use the HTTP/1.1 pools (the HTTP/1.1 engine and the HTTP/2 → HTTP/1.1 bridge): taking
 * one (`takeConnection`: idle, new in a free slot, or wait/overflow), giving it back
 * (`finishUse`), and the queue of requests waiting for one.
 *
 * Requests waiting for an HTTP/1.1 upstream connection under a cluster's circuit breaker
 * (`max_connections` reached, a place in `max_pending_requests` taken), in arrival order,
 * one queue per breaker. Both engines that use the HTTP/1.1 pools wait here — the
 * HTTP/1.1 engine and the HTTP/2 → HTTP/1.1 bridge — so a connection freed by one wakes
 * a request of the other.
 *
 * Whoever frees a slot calls `wakeNext`: a limited connection went back to its pool, or
 * closed. The oldest waiter gets `connectionFree()` and tries again (it takes the idle
 * connection, or opens one in the freed slot); one that has ended meanwhile returns false
 * and the next one is woken.
 */
import type { PoolSettings } from '../config/pool-settings.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker.js';
import { configureConnection, type EndpointPool, type UpstreamConnection } from './pool.js';

/** No connection now: the request waits in the breaker's queue (a pending place is taken). */
export const CONNECTION_WAIT = 'wait';
/** No connection and no pending place: 503 UO at once, as Envoy's pools answer. */
export const CONNECTION_OVERFLOW = 'overflow';

/**
 * A connection to `pool` for a request of a cluster with `breaker` and `settings`: the
 * most recently released idle one, else a new one in a free `max_connections` slot
 * (configured from the settings, its connect timeout armed, its slot given back and the
 * next waiter woken when it closes). A taken connection that carried no request yet
 * (`requests === 0`) is new. Without a slot: CONNECTION_WAIT when a pending place was
 * taken (the caller queues with waitForConnection), else CONNECTION_OVERFLOW.
 */
export function takeConnection(pool: EndpointPool, breaker: CircuitBreaker | undefined, settings: PoolSettings | undefined, connectTimeoutMs: number): UpstreamConnection | typeof CONNECTION_WAIT | typeof CONNECTION_OVERFLOW {
  const idle = pool.acquire();
  if (idle !== null) return idle;
  if (breaker !== undefined && !breaker.tryConnect()) return breaker.tryPending() ? CONNECTION_WAIT : CONNECTION_OVERFLOW;
  const c = pool.create();
  configureConnection(c, settings);
  if (breaker !== undefined) {
    c.breaker = breaker;
    c.onClosed = onLimitedConnectionClosed;
  }
  c.socket.setTimeout(connectTimeoutMs);
  return c;
}

/**
 * The exchange on `c` is over. Back to its pool when `reusable` (the whole response read,
 * the request whole, the server keeps it) and the cluster's `max_requests_per_connection`
 * allows, with the cluster's idle timeout, and the next waiter of its breaker woken;
 * closed otherwise. True when it went back.
 */
export function finishUse(c: UpstreamConnection, reusable: boolean, settings: PoolSettings | undefined): boolean {
  const spent = settings !== undefined && settings.maxRequestsPerConnection > 0 && c.requests >= settings.maxRequestsPerConnection;
  if (reusable && !c.dead && !spent) {
    c.pool.release(c, settings?.idleTimeoutMs);
    if (c.breaker !== null) wakeNext(c.breaker as CircuitBreaker);
    return true;
  }
  c.dead = true;
  c.owner = null;
  c.socket.destroy();
  return false;
}

export interface ConnectionWaiter {
  /** A connection slot may be free: try again. False when the request is over (the next waiter is woken). */
  connectionFree(): boolean;
}

const queues = new Map<CircuitBreaker, ConnectionWaiter[]>();

/** Queues `w`; the caller has taken a pending place (`breaker.tryPending()`). */
export function waitForConnection(breaker: CircuitBreaker, w: ConnectionWaiter): void {
  let q = queues.get(breaker);
  if (q === undefined) queues.set(breaker, (q = []));
  q.push(w);
}

/** A slot may be free: the oldest waiter tries again (its pending place is given back first). */
export function wakeNext(breaker: CircuitBreaker): void {
  for (;;) {
    const q = queues.get(breaker);
    const w = q?.shift();
    if (q !== undefined && q.length === 0) queues.delete(breaker);
    if (w === undefined) return;
    breaker.endPending();
    if (w.connectionFree()) return;
  }
}

/** `w` ended while waiting: its place is given up. */
export function stopWaitingForConnection(breaker: CircuitBreaker, w: ConnectionWaiter): void {
  const q = queues.get(breaker);
  const i = q?.indexOf(w) ?? -1;
  if (q === undefined || i < 0) return;
  q.splice(i, 1);
  if (q.length === 0) queues.delete(breaker);
  breaker.endPending();
}

/** For a limited connection's `onClosed`: its slot is free. */
export function onLimitedConnectionClosed(breaker: { connectionClosed(): void }): void {
  wakeNext(breaker as CircuitBreaker);
}

/**
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
import type { CircuitBreaker } from '../resilience/circuit-breaker.js';

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

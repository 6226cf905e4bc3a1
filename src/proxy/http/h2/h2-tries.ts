/**
 * The tries of one request on the HTTP/2 paths (h2→h2, h2→h1, h1→h2), with the HTTP/1.1
 * engine's resilience semantics (h1-proxy.ts) and the same policy code
 * (resilience/attempts.ts): the cluster's `max_requests` breaker (overflow: 503 `UO` at
 * once), the route timeout (or the gRPC client's deadline where the route honours it) and
 * the per-try timeout (504 `UT`), retries under the route's policy with the retry budget,
 * `max_retries`, jittered backoff and other-host preference, and one outlier-detection
 * report per finished try.
 *
 * `TryingExchange` is the state, a base class of the two per-request objects (`H2Exchange`
 * for HTTP/2 clients, `H1ToH2` for HTTP/1.1 clients to HTTP/2 clusters), so a request
 * still has one context object (STYLE 15); they implement the protocol half (open a try,
 * drop it, answer locally). Timers are module-level functions given the exchange.
 *
 * A try's stream comes from the endpoint's pool under the cluster's `max_connections`
 * (`openTryStream`): when every connection is at its stream limit and no new one may be
 * opened, the exchange waits in the pool's pending queue (`max_pending_requests`; over
 * it, 503 UO at once) and the pool calls `streamSlotFree` when it may go on. While it
 * waits, request body bytes are kept and the client is paused, as during a backoff.
 */
import type { ForwardDecision } from '../router.js';
import type { Attempts, BreakerSlots } from '../../resilience/attempts.js';
import { claimRetry, nextEndpoint, releaseSlots, reportTry, retryDelayMs } from '../../resilience/attempts.js';
import type { RetryPolicy, TryOutcome } from '../../resilience/retry-policy.js';
import type { Endpoint } from '../../upstream/lb/types.js';
import { H2_REFUSALS, type H2EndpointPool, type H2Request, type H2Waiter } from '../../upstream/h2-pool.js';
import type { ClientSessionRequestOptions, OutgoingHttpHeaders } from 'node:http2';
import type { CircuitBreaker } from '../../resilience/circuit-breaker.js';
import { type ConnectionWaiter, stopWaitingForConnection, waitForConnection } from '../../upstream/connection-queue.js';

/** Request body bytes kept for sending the request again (as the HTTP/1.1 engine's limit). */
export const MAX_REPLAY_BYTES = 65_536;

export const UPSTREAM_TIMEOUT_BODY = Buffer.from('upstream request timeout');
export const OVERFLOW_BODY = Buffer.from('upstream connect error or disconnect/reset before headers. reset reason: overflow');

export const CONNECT_FAILURE: TryOutcome = { kind: 'connect-failure' };
export const REFUSED_STREAM: TryOutcome = { kind: 'refused-stream' };
export const RESET_SENT: TryOutcome = { kind: 'reset', sent: true };
export const RESET_UNSENT: TryOutcome = { kind: 'reset', sent: false };
const PER_TRY_TIMEOUT: TryOutcome = { kind: 'per-try-timeout' };

export abstract class TryingExchange implements Attempts, BreakerSlots, H2Waiter, ConnectionWaiter {
  /** What was decided; null until forwarding starts. */
  decision: ForwardDecision | null = null;
  retry: RetryPolicy | null = null;
  tries = 0;
  readonly tried: string[] = [];
  /** Where the current (or next) try goes: the endpoint when the cluster picked one (its pools are found by its id), and its address. */
  endpoint: Endpoint | null = null;
  address = '';
  /** Why the last try's connection failed its TLS handshake (`TLS_error:...`), for the 503 body; null otherwise. */
  transportFailure: string | null = null;
  port = 0;
  /** Request body received so far, kept while it is small and no response has started; null once given up (no retry then). */
  replay: Buffer[] | null = null;
  replayBytes = 0;
  /** The breaker's request slot is held; retry slots held. */
  breakerHeld = false;
  retriesHeld = 0;
  /** The route (or gRPC deadline) timer; the per-try timer; the backoff or fault-delay timer. */
  timer: NodeJS.Timeout | null = null;
  tryTimer: NodeJS.Timeout | null = null;
  waitTimer: NodeJS.Timeout | null = null;
  /** The pool whose pending queue the current try waits in (no stream slot and no connection slot); null when not waiting. */
  queuedAt: H2EndpointPool | null = null;

  /** The breaker whose queue the current try waits in for an HTTP/1.1 connection (upstream/connection-queue.ts); null when not waiting. */
  connectionQueuedOn: CircuitBreaker | null = null;

  /** H2Waiter: the pool has room for the waiting try now; it opens. */
  streamSlotFree(): void {
    this.queuedAt = null;
    if (!this.ended()) this.openTry();
  }

  /** ConnectionWaiter: an HTTP/1.1 connection slot may be free; the waiting try opens again. */
  connectionFree(): boolean {
    this.connectionQueuedOn = null;
    if (this.ended()) return false;
    this.openTry();
    return true;
  }

  /** Whether response headers went downstream (nothing is retried from then on). */
  abstract responseStarted(): boolean;
  /** Opens a try to `address:port`: the request head, the body kept so far, the rest as it comes. */
  abstract openTry(): void;
  /** Gives up the current try's upstream request, if one is open, without any event reaching the exchange; true if there was one. */
  abstract dropTry(): boolean;
  /** Answers from the proxy (504 UT, 503 UO); the exchange is over. */
  abstract answerLocally(status: number, flag: string, body: Buffer): void;
  /** The upstream failed before a response (`flag` UF, UC, UR, with `,URX` after retries): Envoy's 503 answer. */
  abstract answerFailure(flag: string): void;
  /** The route timeout passed mid-response: reset the client's stream (or connection). */
  abstract cutResponse(flag: string): void;
  /** The request now counts against `next` (active requests, peer labels). */
  abstract moveTo(next: Endpoint): void;
  /** Whether the exchange is over downstream (answered whole, reset, or the client left). */
  abstract ended(): boolean;
}

/**
 * Takes the breaker's request slot and sets the route timer (`timeoutMs`, 0 = none). False
 * when `max_requests` is reached: the request was answered 503 UO (Istio's
 * circuit-breaking task). The first try is then `sendTry` (or `delayTry` for a fault delay).
 */
export function beginTries(x: TryingExchange, d: ForwardDecision, timeoutMs: number): boolean {
  x.decision = d;
  x.endpoint = d.endpoint ?? null;
  x.address = d.address;
  x.port = d.port;
  if (d.endpoint !== undefined) x.tried.push(d.endpoint.id);
  if (!d.cluster.breaker.tryRequest()) {
    x.answerLocally(503, 'UO', OVERFLOW_BODY);
    return false;
  }
  x.breakerHeld = true;
  x.retry = d.action.retry;
  if (x.retry !== null) x.replay = [];
  d.cluster.retryBudget.request();
  if (timeoutMs > 0) x.timer = setTimeout(onExchangeTimeout, timeoutMs, x);
  return true;
}

/** The first try waits `delayMs` (an injected fault delay). */
export function delayTry(x: TryingExchange, delayMs: number): void {
  x.waitTimer = setTimeout(onWaitOver, delayMs, x);
}

/** Starts a try to `x.address:x.port`. */
export function sendTry(x: TryingExchange): void {
  x.tries++;
  const perTry = x.retry?.perTryTimeoutMs ?? 0;
  if (perTry > 0) x.tryTimer = setTimeout(onTryTimeout, perTry, x);
  x.openTry();
}

/** No try is open while a retry (or a fault delay) waits, or while it waits for a connection: request body bytes wait too. */
export function waiting(x: TryingExchange): boolean {
  return x.waitTimer !== null || x.queuedAt !== null || x.connectionQueuedOn !== null;
}

/**
 * The try waits for an HTTP/1.1 connection under `breaker` (max_connections reached, a
 * pending place taken); body bytes are kept meanwhile, as for the HTTP/2 pools' queue.
 */
export function queueForConnection(x: TryingExchange, breaker: CircuitBreaker): void {
  x.connectionQueuedOn = breaker;
  waitForConnection(breaker, x);
  if (x.replay === null) x.replay = [];
}

/**
 * The current try's stream on `pool`, under the cluster's limits (`H2Limits`). Null when
 * there is none yet: the try waits in the pool's queue (the pool calls `streamSlotFree`,
 * which opens the try again; body bytes are kept meanwhile), or `max_pending_requests`
 * was reached and the request was answered 503 UO, as Envoy does.
 */
export function openTryStream(x: TryingExchange, pool: H2EndpointPool, headers: OutgoingHttpHeaders, options: ClientSessionRequestOptions): H2Request | null {
  const r = pool.tryRequest(headers, options, (x.decision as ForwardDecision).cluster, x);
  if (typeof r !== 'string') return r;
  if (r === H2_REFUSALS.overflow) {
    x.answerLocally(503, 'UO', OVERFLOW_BODY);
    return null;
  }
  x.queuedAt = pool;
  if (x.replay === null) x.replay = []; // nothing was sent yet: what arrives now is sent when the stream opens
  return null;
}

/** Leaves the pool's pending queue, if the try waits there; true if it did. */
export function stopWaiting(x: TryingExchange): boolean {
  const breaker = x.connectionQueuedOn;
  if (breaker !== null) {
    x.connectionQueuedOn = null;
    stopWaitingForConnection(breaker, x);
    return true;
  }
  const pool = x.queuedAt;
  if (pool === null) return false;
  x.queuedAt = null;
  pool.cancel(x);
  return true;
}

/** Keeps request body bytes for a retry while they are few; beyond that, no retry. */
export function keepForReplay(x: TryingExchange, chunk: Buffer): void {
  const replay = x.replay;
  if (replay === null) return;
  x.replayBytes += chunk.length;
  // While a retry (or a connection) waits, the bytes have no other place to go: kept (the client is paused).
  if (x.replayBytes > MAX_REPLAY_BYTES && !waiting(x)) x.replay = null;
  else replay.push(chunk);
}

/**
 * Response headers of the current try: `status`, and for a trailers-only response the
 * `grpc-status` in them; `grpc` when the request is gRPC. Reported to outlier detection
 * (for gRPC with the status mapped to HTTP, as Envoy's router does). True when the policy
 * retries it: the try was dropped and another is scheduled; the caller forgets the
 * response. False: the response goes downstream, and nothing is retried from now on.
 */
export function responseArrived(x: TryingExchange, status: number, grpcStatus: number | undefined, grpc: boolean): boolean {
  report(x, grpc && grpcStatus !== undefined ? httpStatusOfGrpc(grpcStatus) : status);
  if (x.retry !== null && tryAgain(x, { kind: 'response', status, grpcStatus })) {
    x.dropTry();
    return true;
  }
  clearTryTimer(x);
  x.replay = null;
  return false;
}

/**
 * The current try ended without a response (already dropped by the caller): another try,
 * or the failure answer; `transportFailure` is its connection's TLS failure, if any.
 */
export function tryFailed(x: TryingExchange, outcome: TryOutcome, flag: string, transportFailure: string | null = null): void {
  x.transportFailure = transportFailure;
  report(x, outcome.kind === 'connect-failure' ? 'connect-failure' : 'reset');
  retryOrFail(x, outcome, flag);
}

function retryOrFail(x: TryingExchange, outcome: TryOutcome, flag: string): void {
  clearTryTimer(x);
  if (tryAgain(x, outcome)) return;
  const flags = x.tries > 1 ? `${flag},URX` : flag;
  if (flag === 'UT') x.answerLocally(504, flags, UPSTREAM_TIMEOUT_BODY);
  else x.answerFailure(flags);
}

/**
 * Schedules another try after `outcome` when the route's policy, the tries left, the
 * request bytes kept, the retry budget and `max_retries` all allow it.
 */
function tryAgain(x: TryingExchange, outcome: TryOutcome): boolean {
  const d = x.decision;
  const policy = x.retry;
  if (d === null || policy === null || x.replay === null || x.responseStarted() || x.ended()) return false;
  if (!claimRetry(policy, x, outcome, d.cluster)) return false;
  const next = d.endpoint === undefined ? undefined : nextEndpoint(d.cluster, policy, x, d.hash);
  if (next === undefined) return false;
  clearTryTimer(x);
  x.moveTo(next);
  x.endpoint = next;
  x.address = next.address;
  x.port = next.port;
  x.tried.push(next.id);
  x.waitTimer = setTimeout(onWaitOver, retryDelayMs(policy, x), x);
  return true;
}

function onWaitOver(x: TryingExchange): void {
  x.waitTimer = null;
  if (x.ended()) return;
  sendTry(x);
}

function onTryTimeout(x: TryingExchange): void {
  x.tryTimer = null;
  if (x.responseStarted() || x.ended()) return;
  // A try still waiting for a connection reached no host: nothing to report about one.
  if (x.dropTry()) report(x, 'timeout');
  retryOrFail(x, PER_TRY_TIMEOUT, 'UT');
}

/** The route's timeout: 504 UT before the response started; a reset after. */
function onExchangeTimeout(x: TryingExchange): void {
  x.timer = null;
  if (x.ended()) return;
  endTries(x);
  const open = x.dropTry();
  if (x.responseStarted()) {
    x.cutResponse('UT');
    return;
  }
  if (open) report(x, 'timeout');
  x.answerLocally(504, 'UT', UPSTREAM_TIMEOUT_BODY);
}

function clearTryTimer(x: TryingExchange): void {
  if (x.tryTimer !== null) {
    clearTimeout(x.tryTimer);
    x.tryTimer = null;
  }
}

/** Tells the cluster's outlier detector how the current try ended. */
function report(x: TryingExchange, outcome: number | 'connect-failure' | 'timeout' | 'reset'): void {
  reportTry(x, x.decision?.cluster, outcome);
}

/** The exchange is over: timers stopped, the breaker's slots given back. Idempotent. */
export function endTries(x: TryingExchange): void {
  stopWaiting(x);
  clearTryTimer(x);
  if (x.timer !== null) {
    clearTimeout(x.timer);
    x.timer = null;
  }
  if (x.waitTimer !== null) {
    clearTimeout(x.waitTimer);
    x.waitTimer = null;
  }
  releaseSlots(x, x.decision?.cluster);
}

/** Envoy's `Grpc::Utility::grpcToHttpStatus`: how outlier detection sees a gRPC status. */
export function httpStatusOfGrpc(code: number): number {
  switch (code) {
    case 0: return 200;
    case 1: return 499;
    case 3: case 9: case 11: return 400;
    case 4: return 504;
    case 5: return 404;
    case 6: case 10: return 409;
    case 7: return 403;
    case 8: return 429;
    case 12: return 501;
    case 14: return 503;
    case 16: return 401;
    default: return 500; // unknown, internal, data loss, and codes gRPC does not define
  }
}

/**
 * One request on a downstream HTTP/2 stream and its response: the state, the downstream
 * stream's handlers, local replies and accounting. Where the request goes upstream is
 * `h2-upstream.ts` (HTTP/2) or `h2-to-h1.ts` (HTTP/1.1); both drive the downstream
 * stream through `respond`, `writeDown`, `endDown` and `resetDown` here.
 *
 * Shape as in the HTTP/1.1 engine (STYLE 15): one object per request, found from the
 * streams through a symbol property by module-level handlers; no closures per request.
 * Its tries (retries, timeouts, the circuit breaker) are `h2-tries.ts`'s, whose state it
 * extends; the leg opens and drops each try.
 */
import type { ClientHttp2Stream, OutgoingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type { HeaderMutation } from '../../routing/route-action.js';
import { httpLabels, httpSeries } from '../../telemetry/http-labels.js';
import type { PeerWorkload } from '../../telemetry/peer.js';
import type { HttpSeries } from '../../telemetry/metrics.js';
import { type H2Connection, resetStream } from '../../upstream/h2-pool.js';
import type { UpstreamConnection } from '../../upstream/pool.js';
import type { Endpoint, EndpointState } from '../../upstream/lb/types.js';
import type { ListenContext } from '../context.js';
import type { BodyFramer } from '../h1-body.js';
import type { ResponseHead } from '../h1-parser.js';
import type { ChunkedDecoder } from './h2-chunked.js';
import { grpcStatusOfHttp, grpcTrailersOnly, h2Object } from './h2-headers.js';
import { applyMutation, moveForward, NO_FLAGS, removeHeader } from '../router.js';
import { endTries, keepForReplay, TryingExchange, waiting } from './h2-tries.js';
import { upstreamFailureBody } from '../failure-body.js';
import { keepForMirror, mirrorComplete } from './h2-mirror.js';

export const kExchange = Symbol('trellis.h2.exchange');
export type WithExchange<T> = T & { [kExchange]?: H2Exchange };

/**
 * The upstream half of an exchange, as the downstream stream's handlers see it: one
 * module-level object per upstream protocol (`H2_LEG` in h2-upstream.ts, `H1_LEG` in
 * h2-to-h1.ts), so the handlers need no closures and no knowledge of either protocol.
 */
export interface UpstreamLeg {
  /** Opens a try to `ex.address:ex.port`: the request head, the body kept for replay, and the rest of the body as it comes. */
  open(ex: H2Exchange): void;
  /** Gives up the current try's upstream request, if any (no more events reach the exchange from it); true if there was one. */
  drop(ex: H2Exchange): boolean;
  /** Request body bytes. Returns false when the upstream is full: the downstream stream is paused until the upstream drains. */
  write(ex: H2Exchange, chunk: Buffer): boolean;
  /** The request body is complete. */
  end(ex: H2Exchange): void;
  /** The downstream stream drained after `writeDown` returned false: read the upstream again. */
  resume(ex: H2Exchange): void;
}

export class H2Exchange extends TryingExchange {
  readonly ctx: ListenContext;
  readonly down: ServerHttp2Stream;
  readonly start: number;
  readonly method: string;
  /** The request is gRPC (content-type application/grpc*): failures are answered as gRPC statuses. */
  readonly grpc: boolean;
  /** The request ended with its headers: no body. */
  readonly bodyless: boolean;
  status = 0;
  flags = NO_FLAGS;
  /** grpc-status of the response, '' when none was seen. */
  grpcStatus = '';
  /** Body bytes received from downstream and sent to it. */
  bytesIn = 0;
  bytesOut = 0;
  destinationService = 'unknown';
  connectTimeoutMs = 10_000;
  endpointState: EndpointState | null = null;
  peer: PeerWorkload | null = null;
  responseHeaders: HeaderMutation | null = null;
  targetHeaders: HeaderMutation | null = null;
  /** Where request body bytes go; null once there is no upstream request (a local reply). */
  leg: UpstreamLeg | null = null;
  /** The upstream HTTP/2 stream and its connection, when forwarding over HTTP/2. */
  up: ClientHttp2Stream | null = null;
  upConnection: H2Connection | null = null;
  // When forwarding over HTTP/1.1 (h2-to-h1.ts):
  /** The pooled connection, while this exchange owns it. */
  h1: UpstreamConnection | null = null;
  /** The request head, kept to send it again if a reused connection turns out stale. */
  h1Head: Buffer | null = null;
  /** The request body goes chunk-encoded (it has no Content-Length). */
  h1Chunked = false;
  /** The request body was written whole. */
  h1ReqDone = false;
  /** A stale connection was retried already, or the connection was new (cannot be stale). */
  h1RetriedStale = false;
  /** A response head received in part. */
  h1Buf: Buffer | null = null;
  h1Res: ResponseHead | null = null;
  h1Framer: BodyFramer | null = null;
  /** Decodes a chunked response body into DATA. */
  h1Decoder: ChunkedDecoder | null = null;
  /** The request headers for an HTTP/2 upstream, kept for each try. */
  upHeaders: OutgoingHttpHeaders | null = null;
  /** Request trailers from downstream, for an HTTP/2 upstream. */
  requestTrailers: OutgoingHttpHeaders | null = null;
  /** Response headers were sent downstream. */
  responded = false;
  /** The response is complete downstream (ended, or reset by the proxy). */
  complete = false;
  /** Response trailers, sent when the body has been written. */
  trailers: OutgoingHttpHeaders | null = null;
  /** A mirrored request's copy, until its body is complete (`h2-mirror.ts`): its headers (with `host`) and body; null otherwise. */
  mirrorHeaders: string[] | null = null;
  mirrorBody: Buffer[] | null = null;
  mirrorBytes = 0;
  /** The downstream stream has a 'drain' listener (added the first time it is full). */
  drainWatched = false;
  series: HttpSeries | null = null;

  constructor(ctx: ListenContext, down: ServerHttp2Stream, method: string, grpc: boolean, bodyless: boolean) {
    super();
    this.ctx = ctx;
    this.down = down;
    this.start = performance.now();
    this.method = method;
    this.grpc = grpc;
    this.bodyless = bodyless;
  }

  // TryingExchange: the protocol half of a try.
  responseStarted(): boolean {
    return this.responded;
  }

  ended(): boolean {
    return this.complete;
  }

  openTry(): void {
    this.leg?.open(this);
  }

  dropTry(): boolean {
    return this.leg !== null && this.leg.drop(this);
  }

  answerLocally(status: number, flag: string, body: Buffer): void {
    this.leg = null;
    this.up = null;
    localReply(this, status, flag, body);
  }

  answerFailure(flag: string): void {
    upstreamFailed(this, flag);
  }

  cutResponse(flag: string): void {
    resetDown(this, flag);
  }

  moveTo(next: Endpoint): void {
    moveForward(this, this.ctx, next);
  }
}

/**
 * Installs the downstream stream's handlers; called once per stream. Only those the
 * stream can need: a request that ended with its headers has no body to read (Node closes
 * such a stream once the response is sent); 'drain' and 'wantTrailers' are added when
 * they become possible (`writeDown`, `respond`). Each listener costs per stream.
 */
export function attachDownstream(ex: H2Exchange): void {
  const down = ex.down as WithExchange<ServerHttp2Stream>;
  down[kExchange] = ex;
  if (!ex.bodyless) {
    down.on('data', onDownData);
    down.on('end', onDownEnd);
  }
  down.on('close', onDownClose);
  down.on('error', noop);
}

function noop(): void {}

function onDownData(this: WithExchange<ServerHttp2Stream>, chunk: Buffer): void {
  const ex = this[kExchange] as H2Exchange;
  ex.bytesIn += chunk.length;
  if (ex.replay !== null) keepForReplay(ex, chunk);
  if (ex.mirrorBody !== null) keepForMirror(ex, chunk);
  // Without a leg a local reply was sent: the rest of the body is read and dropped.
  if (ex.leg === null) return;
  // No try is open while a retry, a fault delay or a connection waits: the bytes were kept, the next try sends them.
  if (waiting(ex) || !ex.leg.write(ex, chunk)) this.pause();
}

function onDownEnd(this: WithExchange<ServerHttp2Stream>): void {
  const ex = this[kExchange] as H2Exchange;
  if (ex.mirrorHeaders !== null) mirrorComplete(ex);
  if (ex.leg !== null) ex.leg.end(ex);
}

function onDownDrain(this: WithExchange<ServerHttp2Stream>): void {
  const ex = this[kExchange] as H2Exchange;
  if (ex.leg !== null) ex.leg.resume(ex);
}

function onDownWantTrailers(this: WithExchange<ServerHttp2Stream>): void {
  const ex = this[kExchange] as H2Exchange;
  // Empty trailers end the stream with an empty DATA frame (Node), so nothing is invented.
  this.sendTrailers(ex.trailers ?? {});
}

function onDownClose(this: WithExchange<ServerHttp2Stream>): void {
  const ex = this[kExchange] as H2Exchange;
  if (!ex.complete) {
    // The client reset the stream (or the connection went away) mid-exchange: Envoy's DC.
    ex.complete = true;
    ex.flags = 'DC';
    if (!ex.responded) ex.status = 0;
    if (ex.leg !== null) ex.leg.drop(ex);
  }
  finish(ex);
}

// ---- responding downstream ----

/**
 * Sends the response head. `endStream` when there is no body and no trailers (trailers-only
 * gRPC responses included); otherwise the body follows and `endDown` ends it, and with
 * `trailers` the stream then sends the trailers collected by then (`ex.trailers`, or
 * none). Returns false when the client is gone.
 */
export function respond(ex: H2Exchange, headers: OutgoingHttpHeaders, endStream: boolean, trailers = !endStream): boolean {
  const down = ex.down;
  if (down.destroyed || down.closed) return false;
  ex.responded = true;
  ex.status = Number(headers[':status']);
  if (endStream) ex.complete = true;
  if (trailers) down.on('wantTrailers', onDownWantTrailers);
  try {
    down.respond(headers, { endStream, waitForTrailers: trailers });
  } catch {
    // Fields Node refuses to send (h2Object drops the ones known to be refused): this
    // response fails (Envoy's UPE: the upstream's response cannot be passed on), not the process.
    resetDown(ex, 'UPE');
    return false;
  }
  return true;
}

/** Response body bytes; returns false when the downstream buffer is full (pause the source until `UpstreamLeg.resume`). */
export function writeDown(ex: H2Exchange, chunk: Buffer): boolean {
  ex.bytesOut += chunk.length;
  const down = ex.down;
  if (down.destroyed || down.writableEnded) return true;
  if (down.write(chunk)) return true;
  if (!ex.drainWatched) {
    ex.drainWatched = true;
    down.on('drain', onDownDrain);
  }
  return false;
}

/** The response body is complete, with `last` its final bytes (if any); the trailers (if any) follow. */
export function endDown(ex: H2Exchange, last?: Buffer): void {
  ex.complete = true;
  const down = ex.down;
  if (down.destroyed || down.writableEnded) return;
  if (last === undefined || last.length === 0) {
    down.end();
    return;
  }
  ex.bytesOut += last.length;
  down.end(last);
}

/** The upstream failed after the response started: reset the client's stream (Envoy does the same). */
export function resetDown(ex: H2Exchange, flag: string): void {
  ex.flags = flag;
  ex.complete = true;
  resetStream(ex.down);
}

/** Response headers from an upstream field list: mutations applied, `:status` and timing added. */
export function responseHeaders(ex: H2Exchange, status: number, flat: string[]): OutgoingHttpHeaders {
  // Envoy's router sets it (one value): an upstream's own, from its sidecar, is replaced.
  removeHeader(flat, 'x-envoy-upstream-service-time');
  flat.push('x-envoy-upstream-service-time', String(Math.round(performance.now() - ex.start)));
  applyMutation(flat, ex.responseHeaders);
  applyMutation(flat, ex.targetHeaders);
  return h2Object(flat, { ':status': status });
}

const EMPTY = Buffer.alloc(0);

/**
 * Answers from the proxy itself (Envoy local replies) with the response flag recorded. A
 * gRPC request gets what Envoy sends a gRPC client: HTTP 200, trailers-only, the HTTP
 * status mapped to a gRPC status (503 → UNAVAILABLE) and the text as `grpc-message`.
 */
export function localReply(ex: H2Exchange, status: number, flag: string, body: Buffer = EMPTY, extra: readonly string[] = []): void {
  ex.flags = flag;
  ex.replay = null;
  if (!ex.bodyless && !ex.down.readableEnded) ex.down.resume(); // drop the rest of the request body
  if (ex.grpc && status >= 400) {
    const code = grpcStatusOfHttp(status);
    ex.grpcStatus = String(code);
    const headers = grpcTrailersOnly(code, body.toString('utf8'));
    const flat = [...extra];
    applyMutation(flat, ex.responseHeaders);
    respond(ex, h2Object(flat, headers), true);
    return;
  }
  const flat = ['content-length', String(body.length), 'content-type', 'text/plain', 'server', 'trellis', ...extra];
  applyMutation(flat, ex.responseHeaders);
  if (!respond(ex, h2Object(flat, { ':status': status }), body.length === 0, false)) return;
  if (body.length > 0) endDown(ex, body);
}

/** A gRPC answer from the proxy with this gRPC status (trailers-only), e.g. an injected fault. */
export function localGrpcReply(ex: H2Exchange, code: number, flag: string, message: string): void {
  ex.flags = flag;
  ex.replay = null;
  if (!ex.bodyless && !ex.down.readableEnded) ex.down.resume();
  ex.grpcStatus = String(code);
  const flat: string[] = [];
  applyMutation(flat, ex.responseHeaders);
  respond(ex, h2Object(flat, grpcTrailersOnly(code, message)), true);
}

/** The upstream failed before response headers: 503 (or gRPC UNAVAILABLE), as Envoy words it. */
export function upstreamFailed(ex: H2Exchange, flag: string): void {
  ex.leg = null; // the rest of the request body is dropped, not written to a dead stream
  ex.up = null;
  localReply(ex, 503, flag, upstreamFailureBody(flag, ex.transportFailure));
}

// ---- accounting ----

/** Records the request once, when the downstream stream closes. */
function finish(ex: H2Exchange): void {
  if (ex.series !== null) return;
  endTries(ex);
  if (ex.endpointState !== null) {
    ex.endpointState.activeRequests--;
    ex.endpointState = null;
  }
  ex.series = ex.grpc ? grpcSeries(ex) : httpSeries(ex.ctx, ex.destinationService, ex.status, ex.flags, 'http', ex.peer);
  ex.series.record(performance.now() - ex.start, ex.bytesIn, ex.bytesOut);
  if (ex.ctx.draining && !ex.down.session?.closed) ex.down.session?.close();
}

/** Istio's series for a gRPC request: `request_protocol="grpc"` and `grpc_response_status`. */
function grpcSeries(ex: H2Exchange): HttpSeries {
  const { ctx, destinationService: service, flags, grpcStatus } = ex;
  const code = String(ex.status);
  return ctx.metrics.http(`grpc|${service}|${code}|${flags}|${grpcStatus}|${ex.peer?.key ?? ''}`, () => ({ ...httpLabels(ctx, service, code, flags, 'grpc', ex.peer), grpc_response_status: grpcStatus }));
}

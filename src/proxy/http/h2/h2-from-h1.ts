/**
 * An HTTP/1.1 request forwarded to an HTTP/2 cluster: the upstream half of the exchange
 * for the HTTP/1.1 engine (h1-proxy.ts), which keeps the client connection and calls this
 * where it would write to an upstream socket. The request goes out on a stream of the
 * endpoint's HTTP/2 pool, its body decoded from chunked if need be; the response comes
 * back as HTTP/1.1 bytes: the head, the body (length-delimited as the upstream said, or
 * chunked), and the upstream's trailers in the chunked trailer section — only when the
 * client sent `TE: trailers` (RFC 9110 §6.5.1; gRPC over HTTP/1.1 and grpc-web clients
 * do), otherwise they are dropped.
 *
 * The bridge owns the request's tries (`h2-tries.ts`: retries, route and per-try
 * timeouts, the `max_requests` breaker, outlier reports), as the HTTP/1.1 engine does for
 * its own upstreams; its local answers (504 UT, 503 UO) are written as HTTP/1.1 through
 * `H1Downstream` like any response.
 */
import { STATUS_CODES } from 'node:http';
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { UpstreamState } from '../../config/clusters.js';
import { exchangeTimeoutMs } from '../../resilience/attempts.js';
import type { HeaderMutation } from '../../routing/route-action.js';
import type { PeerWorkload } from '../../telemetry/peer.js';
import { cancelStream, type H2Connection, streamFailureFlag } from '../../upstream/h2-pool.js';
import type { Endpoint, EndpointState } from '../../upstream/lb/types.js';
import type { ListenContext } from '../context.js';
import { ChunkedDecoder } from './h2-chunked.js';
import { flatFromObject, grpcStatusOfHttp, grpcMessage, h2Object, isGrpcContentType } from './h2-headers.js';
import { beginTries, CONNECT_FAILURE, delayTry, endTries, keepForReplay, openTryStream, REFUSED_STREAM, RESET_SENT, RESET_UNSENT, responseArrived, sendTry, stopWaiting, TryingExchange, tryFailed, waiting } from './h2-tries.js';
import { serializeResponseHead } from '../headers.js';
import { applyMutation, type ForwardDecision, headerOf, moveForward, NO_FLAGS, removeHeader } from '../router.js';

/**
 * What the HTTP/1.1 engine does for the bridge; implemented by its exchange object, so no
 * closures per request. Each method is called at most once per exchange, except
 * `writeResponse` and `resumeRequest`.
 */
export interface H1Downstream {
  /** Response bytes for the client, in order. Returns false when its socket buffer is full: the bridge pauses until `H1ToH2.resume()`. */
  writeResponse(bytes: Buffer): boolean;
  /** The upstream can take request body again (after `H1ToH2.write` returned false): resume reading the client. */
  resumeRequest(): void;
  /** The response was written whole: record it and go on with the connection. */
  completeResponse(status: number, flags: string): void;
  /** The upstream failed before the response started (`flag` UF, UC or UR): answer with the engine's local reply. */
  failResponse(flag: string, transportFailure: string | null): void;
  /** The upstream failed mid-response: record `flag` and close the client connection. */
  resetResponse(flag: string): void;
  /** The request's place in its endpoint's active-request count and its peer labels (`ForwardState`): a retry moves them. */
  endpointState: EndpointState | null;
  peer: PeerWorkload | null;
  /** The client connection's listener. */
  readonly down: { readonly ctx: ListenContext };
}

/** The request as the engine forwards it. */
export interface H1Request {
  readonly method: string;
  /** Upstream request headers, flat, lower-case: hop-by-hop fields stripped, `host` and route header operations applied. */
  readonly headers: readonly string[];
  /** The body arrives chunked-encoded (it is decoded here). */
  readonly chunked: boolean;
  /** Content-Length, -1 when absent. */
  readonly contentLength: number;
  /** The client sent `TE: trailers`. */
  readonly trailers: boolean;
  /** The client connection stays open after this response (otherwise `Connection: close` is added). */
  readonly keepAlive: boolean;
  /** `performance.now()` when the request arrived. */
  readonly start: number;
  readonly responseHeaders: HeaderMutation | null;
  readonly targetHeaders: HeaderMutation | null;
}

const kBridge = Symbol('trellis.h2.bridge');
type Stream = ClientHttp2Stream & { [kBridge]?: H1ToH2 };

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n', 'latin1');

/** One request's upstream HTTP/2 streams (one per try), driven by the HTTP/1.1 engine. */
export class H1ToH2 extends TryingExchange {
  readonly down: H1Downstream;
  readonly req: H1Request;
  readonly upstream: UpstreamState;
  /** The upstream request headers, pseudo-headers included, for each try. */
  readonly headers: OutgoingHttpHeaders;
  /** The request has no body (its stream ends with the headers). */
  readonly requestBodyless: boolean;
  /** The request is gRPC: outlier detection sees a trailers-only response's grpc-status. */
  readonly grpc: boolean;
  readonly #decoder: ChunkedDecoder | null;
  /** The current try's stream and its connection; null between tries and once done. */
  stream: ClientHttp2Stream | null = null;
  connection: H2Connection | null = null;
  /** The client's request body is complete (`end()` was called). */
  requestEnded = false;
  /** `write` returned false while no try was open: the next try resumes the client. */
  heldBack = false;
  /** The client went away (`abort()`): nothing more is written to it. */
  aborted = false;
  status = 0;
  /** Response flags for the record (`DI` after an injected delay). */
  flags = NO_FLAGS;
  /** The response head was written. */
  started = false;
  /** The response is complete, failed or cancelled: nothing more goes downstream. */
  finished = false;
  /** The response body is chunk-encoded for the client. */
  chunked = false;
  /** The response has no body (HEAD, 204, 304, or the upstream ended it with its headers). */
  bodyless = false;
  trailers: string[] | null = null;

  constructor(down: H1Downstream, req: H1Request, upstream: UpstreamState, headers: OutgoingHttpHeaders, grpc: boolean) {
    super();
    this.down = down;
    this.req = req;
    this.upstream = upstream;
    this.headers = headers;
    this.requestBodyless = !req.chunked && req.contentLength <= 0;
    this.grpc = grpc;
    this.#decoder = req.chunked ? new ChunkedDecoder() : null;
  }

  /**
   * Request body bytes exactly as the client sent them (the engine's framer has checked
   * them). Returns false when the upstream stream's buffer is full, or while a retry
   * waits: pause the client until `H1Downstream.resumeRequest()`.
   */
  write(raw: Buffer): boolean {
    if (this.finished) return true;
    if (this.#decoder === null) return this.#data(raw);
    let ok = true;
    for (const data of this.#decoder.decode(raw)) ok = this.#data(data) && ok;
    return ok;
  }

  #data(data: Buffer): boolean {
    if (this.replay !== null) keepForReplay(this, data);
    if (waiting(this)) {
      this.heldBack = true; // kept; the next try (or the stream once a connection is free) sends it
      return false;
    }
    return this.stream === null || this.stream.write(data);
  }

  /** The request body is complete. */
  end(): void {
    this.requestEnded = true;
    const s = this.stream;
    if (s !== null && !s.writableEnded && !s.destroyed) s.end();
  }

  /** The client's socket drained: read the upstream again. */
  resume(): void {
    if (this.stream !== null && this.stream.isPaused()) this.stream.resume();
  }

  /** The client went away: cancel the upstream stream. */
  abort(): void {
    this.aborted = true;
    this.finished = true;
    this.dropTry();
    endTries(this);
  }

  // TryingExchange: the protocol half of a try.
  responseStarted(): boolean {
    return this.started;
  }

  ended(): boolean {
    return this.finished;
  }

  openTry(): void {
    const tls = (this.decision as ForwardDecision).cluster.tls;
    const pool = this.endpoint === null ? this.upstream.h2(this.address, this.port, tls) : this.upstream.h2Of(this.endpoint, tls);
    const r = openTryStream(this, pool, this.headers, { endStream: this.requestBodyless });
    if (r === null) return; // waits for a connection (or answered 503 UO)
    const s = r.stream as Stream;
    s[kBridge] = this;
    this.stream = s;
    this.connection = r.connection;
    s.on('response', onResponse);
    s.on('data', onData);
    s.on('trailers', onTrailers);
    s.on('end', onEnd);
    s.on('drain', onDrain);
    s.on('close', onClose);
    s.on('error', noop);
    if (this.requestBodyless) return;
    const replay = this.replay;
    let ok = true;
    if (replay !== null) for (const chunk of replay) ok = s.write(chunk) && ok;
    if (this.requestEnded) s.end();
    else if (ok && this.heldBack) {
      this.heldBack = false;
      this.down.resumeRequest();
    }
  }

  dropTry(): boolean {
    const s = this.stream;
    if (s === null) {
      stopWaiting(this);
      return false;
    }
    this.stream = null; // its events are ignored from now on
    cancelStream(s);
    return true;
  }

  answerLocally(status: number, flag: string, body: Buffer): void {
    this.finished = true;
    endTries(this);
    // Never synchronously: the engine may still be setting this bridge up (`forwardH1ToH2` is its caller).
    process.nextTick(writeLocalReply, this, status, flag, body);
  }

  answerFailure(flag: string): void {
    this.finished = true;
    endTries(this);
    this.down.failResponse(flag, this.transportFailure);
  }

  cutResponse(flag: string): void {
    this.finished = true;
    endTries(this);
    this.down.resetResponse(flag);
  }

  moveTo(next: Endpoint): void {
    moveForward(this.down, this.down.down.ctx, next);
  }
}

/**
 * A local answer (504 UT, 503 UO) in HTTP/1.1; a gRPC request gets Envoy's gRPC form of it
 * (HTTP 200, the status mapped to a gRPC one, the text as grpc-message, no body).
 */
function writeLocalReply(b: H1ToH2, status: number, flag: string, body: Buffer): void {
  if (b.aborted) return; // the client left in the meantime; the engine recorded that
  const req = b.req;
  const grpc = b.grpc && status >= 400;
  const flat = grpc
    ? ['content-type', 'application/grpc', 'grpc-status', String(grpcStatusOfHttp(status)), 'grpc-message', grpcMessage(body.toString('utf8')), 'content-length', '0']
    : ['content-length', String(body.length), 'content-type', 'text/plain', 'server', 'trellis'];
  applyMutation(flat, req.responseHeaders);
  if (!req.keepAlive) flat.push('connection', 'close');
  const code = grpc ? 200 : status;
  const head = serializeResponseHead(code, STATUS_CODES[code] ?? 'Unknown', flat);
  b.down.writeResponse(grpc || body.length === 0 ? head : Buffer.concat([head, body]));
  b.down.completeResponse(code, flag);
}

/**
 * Sets up the upstream half for an HTTP/1.1 request routed to an HTTP/2 cluster and
 * starts its first try (after an injected delay, if any). The engine then passes request
 * body bytes to `write` and `end`, and gets the response through `down`. Failures arrive
 * later, as `down.failResponse` (or a local answer written through `down`).
 */
export function forwardH1ToH2(down: H1Downstream, upstream: UpstreamState, d: ForwardDecision, req: H1Request): H1ToH2 {
  const flat: string[] = [];
  for (let i = 0; i < req.headers.length; i += 2) {
    const name = req.headers[i] as string;
    if (name !== 'host' && name !== 'transfer-encoding') flat.push(name, req.headers[i + 1] as string);
  }
  const contentType = headerOf(flat, 'content-type');
  const grpc = isGrpcContentType(contentType);
  // gRPC over HTTP/2 needs `te: trailers` (the client's TE was a hop-by-hop field).
  if (grpc && !(contentType ?? '').startsWith('application/grpc-web')) {
    removeHeader(flat, 'te');
    flat.push('te', 'trailers');
  }
  const headers = h2Object(flat, { ':method': req.method, ':scheme': d.cluster.tls === null ? 'http' : 'https', ':authority': d.authority, ':path': d.path });
  const bridge = new H1ToH2(down, req, upstream, headers, grpc);
  if (!beginTries(bridge, d, exchangeTimeoutMs(d.action, req.headers))) return bridge; // 503 UO
  if (d.delayMs > 0) {
    bridge.flags = 'DI';
    if (bridge.replay === null && !bridge.requestBodyless) bridge.replay = [];
    delayTry(bridge, d.delayMs);
  } else {
    sendTry(bridge);
  }
  return bridge;
}

function noop(): void {}

function onResponse(this: Stream, headers: IncomingHttpHeaders, flags: number): void {
  const b = this[kBridge] as H1ToH2;
  if (b.stream !== this || b.finished) return;
  const req = b.req;
  const status = Number(headers[':status']);
  const grpcStatus = headers['grpc-status'];
  if (responseArrived(b, status, grpcStatus === undefined ? undefined : Number(grpcStatus), b.grpc)) return; // dropped; tried again
  b.status = status;
  const flat = flatFromObject(headers);
  const endStream = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
  b.bodyless = endStream || req.method === 'HEAD' || status === 204 || status === 304;
  if (endStream && req.method !== 'HEAD' && status !== 204 && status !== 304) {
    // Trailers-only (gRPC) or an empty body: say so, the connection stays reusable.
    removeHeader(flat, 'content-length');
    flat.push('content-length', '0');
  } else if (!b.bodyless && (req.trailers || headerOf(flat, 'content-length') === undefined)) {
    removeHeader(flat, 'content-length');
    flat.push('transfer-encoding', 'chunked');
    b.chunked = true;
  }
  // Envoy's router sets it (one value): an upstream's own, from its sidecar, is replaced.
  removeHeader(flat, 'x-envoy-upstream-service-time');
  flat.push('x-envoy-upstream-service-time', String(Math.round(performance.now() - req.start)));
  applyMutation(flat, req.responseHeaders);
  applyMutation(flat, req.targetHeaders);
  if (!req.keepAlive) flat.push('connection', 'close');
  b.started = true;
  if (!b.down.writeResponse(serializeResponseHead(status, STATUS_CODES[status] ?? 'Unknown', flat))) this.pause();
}

function onData(this: Stream, chunk: Buffer): void {
  const b = this[kBridge] as H1ToH2;
  if (b.stream !== this || b.finished || b.bodyless || chunk.length === 0) return;
  const bytes = b.chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, CRLF]) : chunk;
  if (!b.down.writeResponse(bytes)) this.pause();
}

function onTrailers(this: Stream, trailers: IncomingHttpHeaders): void {
  const b = this[kBridge] as H1ToH2;
  if (b.stream === this) b.trailers = flatFromObject(trailers);
}

function onEnd(this: Stream): void {
  const b = this[kBridge] as H1ToH2;
  // A lost connection also ends the stream, with a reset code set: onClose reports that.
  if (b.stream !== this || b.finished || !b.started || isReset(this)) return;
  if (b.chunked) {
    let section = '';
    const t = b.req.trailers ? b.trailers : null;
    if (t !== null) for (let i = 0; i < t.length; i += 2) section += `${t[i] as string}: ${t[i + 1] as string}\r\n`;
    b.down.writeResponse(Buffer.concat([LAST_CHUNK, Buffer.from(section, 'latin1'), CRLF]));
  }
  b.finished = true;
  endTries(b);
  b.down.completeResponse(b.status, b.flags);
}

function isReset(s: ClientHttp2Stream): boolean {
  return s.rstCode !== undefined && s.rstCode !== constants.NGHTTP2_NO_ERROR;
}

function onDrain(this: Stream): void {
  const b = this[kBridge] as H1ToH2;
  if (b.stream === this) b.down.resumeRequest();
}

function onClose(this: Stream): void {
  const b = this[kBridge] as H1ToH2;
  if (b.stream !== this || b.finished) return;
  b.stream = null;
  const flag = streamFailureFlag(b.connection as H2Connection, this.rstCode);
  if (b.started) {
    b.cutResponse(flag);
    return;
  }
  tryFailed(b, this.rstCode === constants.NGHTTP2_REFUSED_STREAM ? REFUSED_STREAM : flag === 'UF' ? CONNECT_FAILURE : this.writableEnded ? RESET_SENT : RESET_UNSENT, flag, (b.connection as H2Connection).failure);
}

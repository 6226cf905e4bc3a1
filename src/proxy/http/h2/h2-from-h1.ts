/**
 * An HTTP/1.1 request forwarded to an HTTP/2 cluster: the upstream half of the exchange
 * for the HTTP/1.1 engine (h1-proxy.ts), which keeps the client connection and calls this
 * where it would write to an upstream socket. The request goes out on a stream of the
 * endpoint's HTTP/2 pool, its body decoded from chunked if need be; the response comes
 * back as HTTP/1.1 bytes: the head, the body (length-delimited as the upstream said, or
 * chunked), and the upstream's trailers in the chunked trailer section — only when the
 * client sent `TE: trailers` (RFC 9110 §6.5.1; gRPC over HTTP/1.1 and grpc-web clients
 * do), otherwise they are dropped.
 */
import { STATUS_CODES } from 'node:http';
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { UpstreamState } from '../../config/clusters.js';
import type { HeaderMutation } from '../../routing/route-action.js';
import { cancelStream, type H2Connection, streamFailureFlag } from '../../upstream/h2-pool.js';
import { ChunkedDecoder } from './h2-chunked.js';
import { flatFromObject, h2Object, isGrpcContentType } from './h2-headers.js';
import { serializeResponseHead } from '../headers.js';
import { applyMutation, type ForwardDecision, headerOf, NO_FLAGS, removeHeader } from '../router.js';

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
  failResponse(flag: string): void;
  /** The upstream failed mid-response: record `flag` and close the client connection. */
  resetResponse(flag: string): void;
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

/** One request's upstream HTTP/2 stream, driven by the HTTP/1.1 engine. */
export class H1ToH2 {
  readonly down: H1Downstream;
  readonly req: H1Request;
  readonly stream: ClientHttp2Stream;
  readonly connection: H2Connection;
  readonly #decoder: ChunkedDecoder | null;
  status = 0;
  /** The response head was written. */
  started = false;
  /** The response is complete, failed or cancelled: nothing more goes downstream. */
  finished = false;
  /** The response body is chunk-encoded for the client. */
  chunked = false;
  /** The response has no body (HEAD, 204, 304, or the upstream ended it with its headers). */
  bodyless = false;
  trailers: string[] | null = null;

  constructor(down: H1Downstream, req: H1Request, stream: ClientHttp2Stream, connection: H2Connection) {
    this.down = down;
    this.req = req;
    this.stream = stream;
    this.connection = connection;
    this.#decoder = req.chunked ? new ChunkedDecoder() : null;
  }

  /**
   * Request body bytes exactly as the client sent them (the engine's framer has checked
   * them). Returns false when the upstream stream's buffer is full: pause the client until
   * `H1Downstream.resumeRequest()`.
   */
  write(raw: Buffer): boolean {
    if (this.finished && this.stream.destroyed) return true;
    if (this.#decoder === null) return this.stream.write(raw);
    let ok = true;
    for (const data of this.#decoder.decode(raw)) ok = this.stream.write(data) && ok;
    return ok;
  }

  /** The request body is complete. */
  end(): void {
    if (!this.stream.writableEnded && !this.stream.destroyed) this.stream.end();
  }

  /** The client's socket drained: read the upstream again. */
  resume(): void {
    if (this.stream.isPaused()) this.stream.resume();
  }

  /** The client went away: cancel the upstream stream. */
  abort(): void {
    this.finished = true;
    cancelStream(this.stream);
  }
}

/**
 * Opens the upstream stream for an HTTP/1.1 request routed to an HTTP/2 cluster. The
 * engine then passes request body bytes to `write` and `end`, and gets the response
 * through `down`. Network failures arrive later, as `down.failResponse`.
 */
export function forwardH1ToH2(down: H1Downstream, upstream: UpstreamState, d: ForwardDecision, req: H1Request): H1ToH2 {
  const flat: string[] = [];
  for (let i = 0; i < req.headers.length; i += 2) {
    const name = req.headers[i] as string;
    if (name !== 'host' && name !== 'transfer-encoding') flat.push(name, req.headers[i + 1] as string);
  }
  // gRPC over HTTP/2 needs `te: trailers` (the client's TE was a hop-by-hop field).
  if (isGrpcContentType(headerOf(flat, 'content-type')) && !(headerOf(flat, 'content-type') ?? '').startsWith('application/grpc-web')) {
    removeHeader(flat, 'te');
    flat.push('te', 'trailers');
  }
  const headers = h2Object(flat, { ':method': req.method, ':scheme': 'http', ':authority': d.authority, ':path': d.path });
  const bodyless = !req.chunked && req.contentLength <= 0;
  const r = upstream.h2(d.address, d.port).request(headers, { endStream: bodyless }, d.cluster.maxConcurrentStreams, d.cluster.connectTimeoutMs);
  const bridge = new H1ToH2(down, req, r.stream, r.connection);
  const s = r.stream as Stream;
  s[kBridge] = bridge;
  s.on('response', onResponse);
  s.on('data', onData);
  s.on('trailers', onTrailers);
  s.on('end', onEnd);
  s.on('drain', onDrain);
  s.on('close', onClose);
  s.on('error', noop);
  return bridge;
}

function noop(): void {}

function onResponse(this: Stream, headers: IncomingHttpHeaders, flags: number): void {
  const b = this[kBridge] as H1ToH2;
  if (b.finished) return;
  const req = b.req;
  const status = Number(headers[':status']);
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
  flat.push('x-envoy-upstream-service-time', String(Math.round(performance.now() - req.start)));
  applyMutation(flat, req.responseHeaders);
  applyMutation(flat, req.targetHeaders);
  if (!req.keepAlive) flat.push('connection', 'close');
  b.started = true;
  if (!b.down.writeResponse(serializeResponseHead(status, STATUS_CODES[status] ?? 'Unknown', flat))) this.pause();
}

function onData(this: Stream, chunk: Buffer): void {
  const b = this[kBridge] as H1ToH2;
  if (b.finished || b.bodyless || chunk.length === 0) return;
  const bytes = b.chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, CRLF]) : chunk;
  if (!b.down.writeResponse(bytes)) this.pause();
}

function onTrailers(this: Stream, trailers: IncomingHttpHeaders): void {
  const b = this[kBridge] as H1ToH2;
  b.trailers = flatFromObject(trailers);
}

function onEnd(this: Stream): void {
  const b = this[kBridge] as H1ToH2;
  // A lost connection also ends the stream, with a reset code set: onClose reports that.
  if (b.finished || !b.started || isReset(this)) return;
  if (b.chunked) {
    let section = '';
    const t = b.req.trailers ? b.trailers : null;
    if (t !== null) for (let i = 0; i < t.length; i += 2) section += `${t[i] as string}: ${t[i + 1] as string}\r\n`;
    b.down.writeResponse(Buffer.concat([LAST_CHUNK, Buffer.from(section, 'latin1'), CRLF]));
  }
  b.finished = true;
  b.down.completeResponse(b.status, NO_FLAGS);
}

function isReset(s: ClientHttp2Stream): boolean {
  return s.rstCode !== undefined && s.rstCode !== constants.NGHTTP2_NO_ERROR;
}

function onDrain(this: Stream): void {
  (this[kBridge] as H1ToH2).down.resumeRequest();
}

function onClose(this: Stream): void {
  const b = this[kBridge] as H1ToH2;
  if (b.finished) return;
  b.finished = true;
  const flag = streamFailureFlag(b.connection, this.rstCode);
  if (b.started) b.down.resetResponse(flag);
  else b.down.failResponse(flag);
}

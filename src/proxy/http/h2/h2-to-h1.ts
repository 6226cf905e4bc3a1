/**
 * A request from a downstream HTTP/2 stream forwarded to an HTTP/1.1 cluster, on the
 * HTTP/1.1 engine's own machinery rather than `node:http` (about twice as fast,
 * proxy-perf-notes): the endpoint's LIFO keep-alive pool (upstream/pool.ts, shared with
 * h1-proxy.ts), the request head serialised into one write, the response head parsed by
 * h1-parser.ts and its body framed by h1-body.ts.
 *
 * HTTP/2 frames messages itself, so bodies are re-framed both ways: a request body
 * without Content-Length goes chunked (RFC 9112 §7.1); a chunked response body is decoded
 * into DATA frames and its trailer fields become HTTP/2 trailers. Request trailers are
 * not sent to HTTP/1.1 upstreams.
 *
 * Each try (`h2-tries.ts` decides them) takes a connection of its endpoint's pool; a
 * retry sends the head and the body kept so far again.
 *
 * Shape as in h1-proxy.ts (STYLE 15): the exchange owns the pooled connection while the
 * request is in flight (`UpstreamConnection.owner`); the socket handlers are module-level
 * and installed once per connection (`useHandlers`).
 */
import { CONNECTION_OVERFLOW, CONNECTION_WAIT, finishUse, takeConnection } from '../../upstream/connection-queue.js';
import type { ClusterRuntime } from '../../config/clusters.js';
import { connected, type ConnectionHandlers, type EndpointPool, kConnection, type PooledSocket, type UpstreamConnection, useHandlers } from '../../upstream/pool.js';
import { BodyFramer } from '../h1-body.js';
import { owned } from '../../socket-reader.js';
import { parseResponseHead, type ResponseHead } from '../h1-parser.js';
import { serializeRequestHead, stripHopByHop } from '../headers.js';
import { type ForwardDecision, headerOf } from '../router.js';
import { ChunkedDecoder } from './h2-chunked.js';
import { endDown, type H2Exchange, localReply, resetDown, respond, responseHeaders, type UpstreamLeg, writeDown } from './h2-exchange.js';
import { h2Object } from './h2-headers.js';
import { CONNECT_FAILURE, OVERFLOW_BODY, queueForConnection, RESET_SENT, RESET_UNSENT, responseArrived, stopWaiting, tryFailed } from './h2-tries.js';

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
const EMPTY = Buffer.alloc(0);

/** Prepares `ex` for tries over HTTP/1.1 (headers `flat`, already rewritten, without `host`; this takes them over); `sendTry` makes each. */
export function forwardToH1(ex: H2Exchange, d: ForwardDecision, flat: string[]): void {
  ex.h1Head = serializeRequestHead(ex.method, d.path, h1Headers(ex, d.authority, flat));
  ex.leg = H1_LEG;
}

/** One try: a connection of the endpoint's pool, the head, and (a retry) the body kept so far. */
function openTry(ex: H2Exchange): void {
  ex.h1ReqDone = ex.bodyless;
  ex.h1Buf = null;
  ex.h1Res = null;
  ex.h1Framer = null;
  ex.h1Decoder = null;
  const upstream = ex.ctx.config.upstream;
  const tls = (ex.decision as ForwardDecision).cluster.tls;
  attach(ex, ex.endpoint === null ? upstream.pool(ex.address, ex.port, tls) : upstream.poolOf(ex.endpoint, tls), ex.connectTimeoutMs);
  if (ex.bodyless) return;
  const replay = ex.replay;
  if (replay !== null) for (const chunk of replay) H1_LEG.write(ex, chunk);
  if (ex.down.readableEnded) H1_LEG.end(ex);
  // It waited for the retry; if the socket is full now, its 'drain' resumes it.
  else if (ex.h1 !== null && !ex.h1.socket.writableNeedDrain && ex.down.isPaused()) ex.down.resume();
}

/**
 * HTTP/1.1 request fields, made from `flat` in place: `Host` first (from `:authority`);
 * HTTP/2 splits `cookie` into several fields, which HTTP/1.1 needs as one (RFC 9113
 * §8.2.3); a body of unknown length goes chunked. HTTP/2 requests carry no
 * connection-specific fields (RFC 9113 §8.2.2; Node rejects such streams), so there are
 * no hop-by-hop fields to strip, except `te: trailers`, which is passed on: the client
 * takes trailers, and they come back as HTTP/2 trailers.
 */
function h1Headers(ex: H2Exchange, authority: string, flat: string[]): string[] {
  let cookies = 0;
  let length = false;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i] as string;
    if (name === 'cookie') cookies++;
    else if (name === 'content-length') length = true;
  }
  if (cookies > 1) joinCookies(flat);
  flat.unshift('host', authority);
  ex.h1Chunked = !ex.bodyless && !length;
  if (ex.h1Chunked) flat.push('transfer-encoding', 'chunked');
  return flat;
}

/** The `cookie` fields of `flat` as one, in their order, where the first was. */
function joinCookies(flat: string[]): void {
  let first = -1;
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i] !== 'cookie') continue;
    if (first < 0) {
      first = i;
      continue;
    }
    flat[first + 1] = `${flat[first + 1] as string}; ${flat[i + 1] as string}`;
    flat.splice(i, 2);
    i -= 2;
  }
}

/** Takes a pooled connection (or opens one) and writes the request head on it. */
function attach(ex: H2Exchange, pool: EndpointPool, connectTimeoutMs: number): void {
  const cluster = ex.decision?.cluster;
  const up = takeConnection(pool, cluster?.breaker, cluster?.pool, connectTimeoutMs);
  if (up === CONNECTION_OVERFLOW) {
    ex.answerLocally(503, 'UO', OVERFLOW_BODY);
    return;
  }
  if (up === CONNECTION_WAIT) {
    queueForConnection(ex, (cluster as ClusterRuntime).breaker);
    return;
  }
  // Only a reused keep-alive connection can be stale (closed by the server while idle).
  ex.h1RetriedStale = up.requests === 0;
  useHandlers(up, HANDLERS);
  up.owner = ex;
  up.requests++;
  ex.h1 = up;
  if (!up.socket.write(ex.h1Head as Buffer) && !ex.bodyless) ex.down.pause();
}

/** Gives up `ex`'s connection: closed, never reused. */
function drop(ex: H2Exchange, up: UpstreamConnection): void {
  ex.h1 = null;
  up.owner = null;
  up.dead = true;
  up.socket.destroy();
}

// ---- request body: the downstream stream's handlers call these ----

const H1_LEG: UpstreamLeg = {
  open: openTry,
  drop(ex: H2Exchange): boolean {
    // Still waiting for a connection: the place in the queue is given up; nothing was sent.
    if (ex.h1 === null) {
      stopWaiting(ex);
      return false;
    }
    // The response is unfinished (or the request is): the connection cannot be reused.
    drop(ex, ex.h1);
    return true;
  },
  write(ex: H2Exchange, chunk: Buffer): boolean {
    const up = ex.h1;
    if (up === null || ex.h1ReqDone || chunk.length === 0) return true;
    const s = up.socket;
    if (!ex.h1Chunked) return s.write(chunk);
    // One writev for the chunk's three pieces, without copying the data.
    s.cork();
    s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    s.write(chunk);
    const ok = s.write(CRLF);
    s.uncork();
    return ok;
  },
  end(ex: H2Exchange): void {
    const up = ex.h1;
    if (up === null || ex.h1ReqDone) return;
    ex.h1ReqDone = true;
    if (ex.h1Chunked) up.socket.write(LAST_CHUNK);
  },
  resume(ex: H2Exchange): void {
    const up = ex.h1;
    if (up !== null && up.socket.isPaused()) up.socket.resume();
  },
};

// ---- upstream socket events ----

function onConnect(this: PooledSocket): void {
  connected(this[kConnection] as UpstreamConnection);
  this.setTimeout(0);
}

function onDrain(this: PooledSocket): void {
  const ex = (this[kConnection] as UpstreamConnection).owner as H2Exchange | null;
  if (ex !== null && ex.down.isPaused() && !ex.down.destroyed) ex.down.resume();
}

/** The connect timeout (pooled idle connections time out too, without an owner). */
function onTimeout(this: PooledSocket): void {
  const up = this[kConnection] as UpstreamConnection;
  const ex = up.owner as H2Exchange | null;
  up.dead = true;
  this.destroy();
  if (ex === null || ex.h1 !== up) return;
  ex.h1 = null;
  up.owner = null;
  failed(ex, up.connected ? 'UC' : 'UF', up.failure);
}

function onClose(this: PooledSocket): void {
  const up = this[kConnection] as UpstreamConnection;
  const ex = up.owner as H2Exchange | null;
  if (ex === null || ex.h1 !== up) return;
  ex.h1 = null;
  up.owner = null;
  if (ex.h1Res === null) {
    // A pooled connection the server closed while idle: once more on another connection,
    // when no response byte came back and no request body was sent (as h1-proxy.ts does).
    if (!ex.h1RetriedStale && up.connected && ex.bodyless && ex.h1Buf === null && !ex.complete) {
      attach(ex, up.pool, ex.connectTimeoutMs);
      return;
    }
    failed(ex, up.connected ? 'UC' : 'UF', up.failure);
    return;
  }
  // The body ended with the connection, as its framing said; otherwise it was cut off.
  if ((ex.h1Framer as BodyFramer).untilClose) complete(ex, up, EMPTY);
  else if (!ex.complete) resetDown(ex, 'UC');
}

/** The try's connection failed: another try or a local 503 before the response started, a stream reset after. */
function failed(ex: H2Exchange, flag: string, transportFailure: string | null): void {
  if (ex.complete) return;
  if (ex.responded) resetDown(ex, flag);
  else tryFailed(ex, flag === 'UF' ? CONNECT_FAILURE : ex.h1ReqDone ? RESET_SENT : RESET_UNSENT, flag, transportFailure);
}

function onData(this: PooledSocket, chunk: Buffer): void {
  const up = this[kConnection] as UpstreamConnection;
  const ex = up.owner as H2Exchange | null;
  if (ex === null || ex.h1 !== up) {
    // Bytes on an idle connection: the server broke the protocol; don't reuse it.
    up.dead = true;
    this.destroy();
    return;
  }
  // Its pieces go out as DATA frames, which hold on to them until sent: a copy, not a
  // view of the shared read buffer (socket-reader.ts).
  const bytes = owned(chunk);
  if (ex.h1Res === null) headBytes(ex, up, bytes);
  else bodyBytes(ex, up, bytes, 0);
}

function headBytes(ex: H2Exchange, up: UpstreamConnection, chunk: Buffer): void {
  const buf = ex.h1Buf === null ? chunk : Buffer.concat([ex.h1Buf, chunk]);
  const r = parseResponseHead(buf, 0, ex.method);
  if (r.kind === 'incomplete') {
    ex.h1Buf = buf;
    return;
  }
  ex.h1Buf = null;
  if (r.kind === 'error' || r.head.status === 101) {
    // 101 without an upgrade asked for is as invalid as a malformed head (Envoy: 502 UPE).
    drop(ex, up);
    ex.leg = null;
    localReply(ex, 502, 'UPE', Buffer.from('upstream sent an invalid HTTP response'));
    return;
  }
  const head = r.head;
  if (head.status < 200) {
    // An interim response (100 Continue, 103 Early Hints) goes on as HTTP/2 informational
    // headers; the final one follows on the same connection.
    if (!ex.down.headersSent && !ex.down.destroyed) informational(ex, head);
    if (head.headBytes < buf.length) headBytes(ex, up, buf.subarray(head.headBytes));
    return;
  }
  startResponse(ex, up, head, buf);
}

function informational(ex: H2Exchange, head: ResponseHead): void {
  try {
    ex.down.additionalHeaders(h2Object(stripHopByHop(head.headers, head.connectionTokens), { ':status': head.status }));
  } catch {
    // Fields Node refuses to send: the interim response is dropped, the final one still comes.
  }
}

/** The final response head (`head`, at the start of `buf`): the HTTP/2 response starts, with as much of the body as came with it. */
function startResponse(ex: H2Exchange, up: UpstreamConnection, head: ResponseHead, buf: Buffer): void {
  const grpcStatus = headerOf(head.headers, 'grpc-status');
  if (responseArrived(ex, head.status, grpcStatus === undefined ? undefined : Number(grpcStatus), ex.grpc)) return; // dropped with its connection; tried again
  ex.h1Res = head;
  const framer = BodyFramer.forResponse(head, ex.method);
  ex.h1Framer = framer;
  const headers = responseHeaders(ex, head.status, stripHopByHop(head.headers, head.connectionTokens));
  const start = head.headBytes;
  if (framer.kind === 'none') {
    if (start < buf.length) up.dead = true; // bytes after a body-less response: a broken server
    if (ex.grpc) ex.grpcStatus = headerOf(head.headers, 'grpc-status') ?? '';
    if (respond(ex, headers, true)) complete(ex, up, null);
    else drop(ex, up);
    return;
  }
  const chunked = framer.kind === 'chunked';
  if (chunked) ex.h1Decoder = new ChunkedDecoder();
  // Only a chunked body can end with trailers: the others end the stream with their last DATA.
  if (!respond(ex, headers, false, chunked)) {
    drop(ex, up);
    return;
  }
  if (start < buf.length) bodyBytes(ex, up, buf, start);
}

/** Response body bytes `buf[start..]`: framed, decoded when chunked, sent as DATA. */
function bodyBytes(ex: H2Exchange, up: UpstreamConnection, buf: Buffer, start: number): void {
  const r = (ex.h1Framer as BodyFramer).scan(buf, start, buf.length);
  if (r.error !== undefined) {
    drop(ex, up);
    if (!ex.complete) resetDown(ex, 'UPE');
    return;
  }
  const end = start + r.consumed;
  let data = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
  const decoder = ex.h1Decoder;
  if (decoder !== null) data = join(decoder.decode(data));
  if (r.done) {
    if (end < buf.length) up.dead = true; // bytes after the response: a broken server
    complete(ex, up, data);
  } else if (data.length > 0 && !writeDown(ex, data)) {
    up.socket.pause(); // until the client reads (UpstreamLeg.resume)
  }
}

function join(parts: Buffer[]): Buffer {
  if (parts.length === 1) return parts[0] as Buffer;
  return parts.length === 0 ? EMPTY : Buffer.concat(parts);
}

/** The response is whole (`last` its final body bytes; null when it has no body): end the stream, give the connection back. */
function complete(ex: H2Exchange, up: UpstreamConnection, last: Buffer | null): void {
  const head = ex.h1Res as ResponseHead;
  const decoder = ex.h1Decoder;
  if (decoder !== null) {
    const t = decoder.trailers();
    if (t.length > 0) ex.trailers = h2Object(t, {});
    if (ex.grpc) ex.grpcStatus = headerOf(t, 'grpc-status') ?? headerOf(head.headers, 'grpc-status') ?? '';
  } else if (ex.grpc) {
    ex.grpcStatus = headerOf(head.headers, 'grpc-status') ?? '';
  }
  release(ex, up, head);
  if (last !== null && !ex.complete) endDown(ex, last);
}

/** Back to the pool when both messages are whole and the server keeps the connection; closed otherwise. */
function release(ex: H2Exchange, up: UpstreamConnection, head: ResponseHead): void {
  if (ex.h1 !== up) return; // closed already
  ex.h1 = null;
  // Paused for the client's back-pressure: the response is whole, so nothing more is read for it.
  if (up.socket.isPaused()) up.socket.resume();
  if (finishUse(up, head.keepAlive && ex.h1ReqDone, ex.decision?.cluster.pool)) return;
  // Answered before the request body was whole: the rest is read and dropped, so the
  // client is not held back by flow control and its stream can close.
  if (!ex.h1ReqDone && ex.down.isPaused()) ex.down.resume();
}

const HANDLERS: ConnectionHandlers = { connect: onConnect, data: onData, drain: onDrain, close: onClose, timeout: onTimeout };

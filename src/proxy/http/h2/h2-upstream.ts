/**
 * A request from a downstream HTTP/2 stream forwarded on an upstream HTTP/2 stream of the
 * endpoint's pool (`upstream/h2-pool.ts`): headers, body both ways with back-pressure, and
 * trailers both ways — gRPC's `grpc-status` and `grpc-message` arrive as the upstream sent
 * them, and a trailers-only response (status in the only header block) stays trailers-only.
 *
 * A stream the upstream refused (REFUSED_STREAM, which is also how streams above a GOAWAY's
 * last stream id end) was not processed (RFC 9113 §8.7): it is sent again once, on another
 * connection, when the request body is small enough to have been kept (Istio's default
 * retry policy has `refused-stream`; servers such as nginx send GOAWAY every 1,000
 * requests, and the streams in flight then would otherwise fail).
 */
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { cancelStream, streamFailureFlag } from '../../upstream/h2-pool.js';
import type { ForwardDecision } from '../router.js';
import { endDown, type H2Exchange, kExchange, resetDown, respond, responseHeaders, upstreamFailed, type UpstreamLeg, type WithExchange, writeDown } from './h2-exchange.js';
import { flatFromObject, h2Object } from './h2-headers.js';

type UpStream = WithExchange<ClientHttp2Stream>;

/** Opens the upstream stream for `ex` (request headers `flat`, already rewritten) and relays both ways. */
export function forwardToH2(ex: H2Exchange, d: ForwardDecision, flat: readonly string[]): void {
  ex.target = d;
  ex.upHeaders = h2Object(flat, { ':method': ex.method, ':scheme': 'http', ':authority': d.authority, ':path': d.path });
  ex.replay = ex.bodyless ? null : [];
  ex.leg = H2_LEG;
  if (!ex.bodyless) ex.down.on('trailers', onDownTrailers);
  openStream(ex, d);
}

/** The downstream handlers' side of an HTTP/2 upstream stream (`ex.up`; null once it closed: bytes are dropped). */
const H2_LEG: UpstreamLeg = {
  write(ex: H2Exchange, chunk: Buffer): boolean {
    return ex.up === null || ex.up.write(chunk);
  },
  end(ex: H2Exchange): void {
    if (ex.up !== null && !ex.up.writableEnded) ex.up.end();
  },
  resume(ex: H2Exchange): void {
    if (ex.up !== null && ex.up.isPaused()) ex.up.resume();
  },
  abort(ex: H2Exchange): void {
    if (ex.up !== null) cancelStream(ex.up);
  },
};

function onDownTrailers(this: WithExchange<ServerHttp2Stream>, trailers: IncomingHttpHeaders): void {
  const ex = this[kExchange] as H2Exchange;
  ex.requestTrailers = h2Object(flatFromObject(trailers), {});
}

function openStream(ex: H2Exchange, d: ForwardDecision): void {
  const pool = ex.ctx.config.upstream.h2(d.address, d.port);
  const headers = ex.upHeaders as OutgoingHttpHeaders;
  const { stream, connection } = pool.request(headers, { endStream: ex.bodyless, waitForTrailers: !ex.bodyless }, d.cluster.maxConcurrentStreams, d.cluster.connectTimeoutMs);
  const up = stream as UpStream;
  up[kExchange] = ex;
  ex.up = up;
  ex.upConnection = connection;
  up.on('response', onUpResponse);
  up.on('data', onUpData);
  up.on('trailers', onUpTrailers);
  up.on('end', onUpEnd);
  up.on('drain', onUpDrain);
  up.on('wantTrailers', onUpWantTrailers);
  up.on('close', onUpClose);
  up.on('error', noop);
}

function noop(): void {}

function onUpResponse(this: UpStream, headers: IncomingHttpHeaders, flags: number): void {
  const ex = this[kExchange] as H2Exchange;
  ex.replay = null;
  const status = Number(headers[':status']);
  const endStream = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
  if (endStream && ex.grpc) ex.grpcStatus = String(headers['grpc-status'] ?? '');
  if (!respond(ex, responseHeaders(ex, status, flatFromObject(headers)), endStream)) cancelStream(this);
}

function onUpData(this: UpStream, chunk: Buffer): void {
  const ex = this[kExchange] as H2Exchange;
  if (!writeDown(ex, chunk)) this.pause();
}

function onUpTrailers(this: UpStream, trailers: IncomingHttpHeaders): void {
  const ex = this[kExchange] as H2Exchange;
  ex.trailers = h2Object(flatFromObject(trailers), {});
  if (ex.grpc) ex.grpcStatus = String(trailers['grpc-status'] ?? '');
}

function onUpEnd(this: UpStream): void {
  const ex = this[kExchange] as H2Exchange;
  // A lost connection also ends the stream, with a reset code set: onUpClose reports that.
  if (this.rstCode !== undefined && this.rstCode !== constants.NGHTTP2_NO_ERROR) return;
  if (ex.responded && !ex.complete) endDown(ex);
}

function onUpDrain(this: UpStream): void {
  const ex = this[kExchange] as H2Exchange;
  if (ex.down.isPaused()) ex.down.resume();
}

function onUpWantTrailers(this: UpStream): void {
  const ex = this[kExchange] as H2Exchange;
  const trailers: OutgoingHttpHeaders = ex.requestTrailers ?? {};
  this.sendTrailers(trailers);
}

function onUpClose(this: UpStream): void {
  const ex = this[kExchange] as H2Exchange;
  if (ex.up !== this) return;
  ex.up = null; // request bytes still arriving are dropped from now on
  if (ex.complete) return;
  if (!ex.responded && this.rstCode === constants.NGHTTP2_REFUSED_STREAM && !ex.retried && ex.target !== null && (ex.bodyless || ex.replay !== null)) {
    retryRefused(ex, ex.target);
    return;
  }
  const flag = ex.upConnection === null ? 'UC' : streamFailureFlag(ex.upConnection, this.rstCode);
  if (!ex.responded) upstreamFailed(ex, flag);
  else resetDown(ex, flag); // reset mid-response
}

/** Sends a refused request again: same headers, the body received so far, then the rest as it comes. */
function retryRefused(ex: H2Exchange, d: ForwardDecision): void {
  ex.retried = true;
  const replay = ex.replay;
  openStream(ex, d);
  const up = ex.up as ClientHttp2Stream;
  if (replay !== null) for (const chunk of replay) up.write(chunk);
  if (!ex.bodyless && ex.down.readableEnded) up.end();
  else if (ex.down.isPaused()) ex.down.resume(); // it waited for the refused stream's 'drain'
}

/**
 * A request from a downstream HTTP/2 stream forwarded on an upstream HTTP/2 stream of the
 * endpoint's pool (`upstream/h2-pool.ts`): headers, body both ways with back-pressure, and
 * trailers both ways — gRPC's `grpc-status` and `grpc-message` arrive as the upstream sent
 * them, and a trailers-only response (status in the only header block) stays trailers-only.
 *
 * Each try opens a stream on the pool of the try's endpoint (`h2-tries.ts` decides the
 * tries). A stream the upstream refused (REFUSED_STREAM, which is also how streams above
 * a GOAWAY's last stream id end) was not processed (RFC 9113 §8.7): that is the
 * `refused-stream` retry condition (in Istio's default policy; servers such as nginx send
 * GOAWAY every 1,000 requests), and the retry goes on another connection, as the pool
 * gives no new streams to a connection that received GOAWAY. A trailers-only response's
 * `grpc-status` is what the gRPC retry conditions judge.
 */
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { cancelStream, streamFailureFlag } from '../../upstream/h2-pool.js';
import type { ForwardDecision } from '../router.js';
import { endDown, type H2Exchange, kExchange, resetDown, respond, responseHeaders, type UpstreamLeg, type WithExchange, writeDown } from './h2-exchange.js';
import { flatFromObject, h2Object } from './h2-headers.js';
import { CONNECT_FAILURE, openTryStream, REFUSED_STREAM, RESET_SENT, RESET_UNSENT, responseArrived, stopWaiting, tryFailed } from './h2-tries.js';

type UpStream = WithExchange<ClientHttp2Stream>;

/** Prepares `ex` for tries over HTTP/2 (request headers `flat`, already rewritten); `sendTry` opens each. */
export function forwardToH2(ex: H2Exchange, d: ForwardDecision, flat: readonly string[]): void {
  ex.upHeaders = h2Object(flat, { ':method': ex.method, ':scheme': d.cluster.tls === null ? 'http' : 'https', ':authority': d.authority, ':path': d.path });
  ex.leg = H2_LEG;
  if (!ex.bodyless) ex.down.on('trailers', onDownTrailers);
}

/** The downstream handlers' side of an HTTP/2 upstream stream (`ex.up`; null between tries and once it closed: bytes are dropped). */
const H2_LEG: UpstreamLeg = {
  open: openStream,
  drop(ex: H2Exchange): boolean {
    const up = ex.up;
    if (up === null) {
      stopWaiting(ex);
      return false;
    }
    ex.up = null; // its events are ignored from now on
    cancelStream(up);
    return true;
  },
  write(ex: H2Exchange, chunk: Buffer): boolean {
    return ex.up === null || ex.up.write(chunk);
  },
  end(ex: H2Exchange): void {
    if (ex.up !== null && !ex.up.writableEnded) ex.up.end();
  },
  resume(ex: H2Exchange): void {
    if (ex.up !== null && ex.up.isPaused()) ex.up.resume();
  },
};

function onDownTrailers(this: WithExchange<ServerHttp2Stream>, trailers: IncomingHttpHeaders): void {
  const ex = this[kExchange] as H2Exchange;
  ex.requestTrailers = h2Object(flatFromObject(trailers), {});
}

/** One try: a stream on the endpoint's pool, then the body kept so far (a retry) and the rest as it comes. */
function openStream(ex: H2Exchange): void {
  const upstream = ex.ctx.config.upstream;
  const tls = (ex.decision as ForwardDecision).cluster.tls;
  const pool = ex.endpoint === null ? upstream.h2(ex.address, ex.port, tls) : upstream.h2Of(ex.endpoint, tls);
  const headers = ex.upHeaders as OutgoingHttpHeaders;
  const r = openTryStream(ex, pool, headers, { endStream: ex.bodyless, waitForTrailers: !ex.bodyless });
  if (r === null) return; // waits for a connection (or answered 503 UO)
  const { stream, connection } = r;
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
  if (ex.bodyless) return;
  const replay = ex.replay;
  if (replay !== null) for (const chunk of replay) up.write(chunk);
  if (ex.down.readableEnded) up.end();
  else if (ex.down.isPaused()) ex.down.resume(); // it waited for the retry (or for the previous stream's 'drain')
}

function noop(): void {}

function onUpResponse(this: UpStream, headers: IncomingHttpHeaders, flags: number): void {
  const ex = this[kExchange] as H2Exchange;
  if (ex.up !== this) return;
  const status = Number(headers[':status']);
  const endStream = (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0;
  const grpcStatus = headers['grpc-status'];
  // Only a trailers-only response has grpc-status here: what the gRPC retry conditions judge.
  if (responseArrived(ex, status, grpcStatus === undefined ? undefined : Number(grpcStatus), ex.grpc)) return;
  if (endStream && ex.grpc) ex.grpcStatus = String(grpcStatus ?? '');
  if (!respond(ex, responseHeaders(ex, status, flatFromObject(headers)), endStream)) cancelStream(this);
}

function onUpData(this: UpStream, chunk: Buffer): void {
  const ex = this[kExchange] as H2Exchange;
  if (ex.up === this && !writeDown(ex, chunk)) this.pause();
}

function onUpTrailers(this: UpStream, trailers: IncomingHttpHeaders): void {
  const ex = this[kExchange] as H2Exchange;
  if (ex.up !== this) return;
  ex.trailers = h2Object(flatFromObject(trailers), {});
  if (ex.grpc) ex.grpcStatus = String(trailers['grpc-status'] ?? '');
}

function onUpEnd(this: UpStream): void {
  const ex = this[kExchange] as H2Exchange;
  // A lost connection also ends the stream, with a reset code set: onUpClose reports that.
  if (ex.up !== this || (this.rstCode !== undefined && this.rstCode !== constants.NGHTTP2_NO_ERROR)) return;
  if (ex.responded && !ex.complete) endDown(ex);
}

function onUpDrain(this: UpStream): void {
  const ex = this[kExchange] as H2Exchange;
  if (ex.up === this && ex.down.isPaused()) ex.down.resume();
}

function onUpWantTrailers(this: UpStream): void {
  const ex = this[kExchange] as H2Exchange;
  const trailers: OutgoingHttpHeaders = ex.requestTrailers ?? {};
  this.sendTrailers(trailers);
}

function onUpClose(this: UpStream): void {
  const ex = this[kExchange] as H2Exchange;
  if (ex.up !== this) return;
  ex.up = null; // request bytes still arriving are dropped (or kept for the next try)
  if (ex.complete) return;
  const connection = ex.upConnection;
  const flag = connection === null ? 'UC' : streamFailureFlag(connection, this.rstCode);
  if (ex.responded) {
    resetDown(ex, flag); // reset mid-response
    return;
  }
  const outcome = this.rstCode === constants.NGHTTP2_REFUSED_STREAM ? REFUSED_STREAM : flag === 'UF' ? CONNECT_FAILURE : this.writableEnded ? RESET_SENT : RESET_UNSENT;
  tryFailed(ex, outcome, flag, connection?.failure ?? null);
}

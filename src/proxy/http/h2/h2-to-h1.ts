/**
 * A request from a downstream HTTP/2 stream forwarded to an HTTP/1.1 cluster, with
 * `node:http` and a keep-alive Agent (`UpstreamState.h1Agent`). A known cost, accepted for
 * this direction: `node:http` is about half as fast as the `node:net` engine and does not
 * share its connection pool (proxy-perf-notes), though the `node:http2` side in front of
 * it costs more. It decodes chunked bodies and trailers, which the pass-through framer of
 * the HTTP/1.1 engine does not: an HTTP/1.1 response's trailer fields become HTTP/2
 * trailers. Request trailers are not sent to HTTP/1.1 upstreams.
 */
import { type ClientRequest, type IncomingMessage, request } from 'node:http';
import type { Socket } from 'node:net';
import { DEFAULT_IDLE_TIMEOUT_MS } from '../../upstream/pool.js';
import { endDown, type H2Exchange, kExchange, resetDown, respond, responseHeaders, upstreamFailed, type WithExchange, writeDown } from './h2-exchange.js';
import { flatFromObject, h2Object } from './h2-headers.js';
import { stripHopByHop } from '../headers.js';
import type { ForwardDecision } from '../router.js';
import { headerOf } from '../router.js';

type Req = WithExchange<ClientRequest>;
type Res = WithExchange<IncomingMessage>;
const kConnectTimeout = Symbol('trellis.h2.connect-timeout');
type NewSocket = Socket & { [kConnectTimeout]?: ClientRequest };

/** Sends `ex`'s request to the endpoint of `d` over HTTP/1.1 (headers `flat`, already rewritten, without `host`). */
export function forwardToH1(ex: H2Exchange, d: ForwardDecision, flat: readonly string[]): void {
  const headers = h1Headers(d.authority, flat, ex.bodyless);
  const req = request({
    host: d.address,
    port: d.port,
    method: ex.method,
    path: d.path,
    headers,
    setHost: false,
    agent: ex.ctx.config.upstream.h1Agent,
  }) as Req;
  req[kExchange] = ex;
  ex.h1 = req;
  req.on('socket', onSocket);
  req.on('response', onResponse);
  req.on('drain', onReqDrain);
  req.on('error', onReqError);
  if (ex.bodyless) req.end();
}

/**
 * HTTP/1.1 request fields: `Host` first; HTTP/2 splits `cookie` into several fields, which
 * HTTP/1.1 needs as one (RFC 9113 §8.2.3); a body of unknown length goes chunked.
 */
function h1Headers(authority: string, flat: readonly string[], bodyless: boolean): string[] {
  const out = ['host', authority];
  let cookie: string | undefined;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i] as string;
    const value = flat[i + 1] as string;
    if (name === 'cookie') cookie = cookie === undefined ? value : `${cookie}; ${value}`;
    else out.push(name, value);
  }
  if (cookie !== undefined) out.push('cookie', cookie);
  if (!bodyless && headerOf(out, 'content-length') === undefined) out.push('transfer-encoding', 'chunked');
  return out;
}

/** A new connection gets the cluster's connect timeout; a reused one is already connected. */
function onSocket(this: Req, socket: NewSocket): void {
  if (!socket.connecting) return;
  socket[kConnectTimeout] = this;
  socket.setTimeout((this[kExchange] as H2Exchange).connectTimeoutMs);
  socket.once('timeout', onConnectTimeout);
  socket.once('connect', onConnect);
}

function onConnect(this: NewSocket): void {
  this.removeListener('timeout', onConnectTimeout);
  this.setTimeout(DEFAULT_IDLE_TIMEOUT_MS);
  this[kConnectTimeout] = undefined;
}

function onConnectTimeout(this: NewSocket): void {
  const req = this[kConnectTimeout];
  this.removeListener('connect', onConnect);
  req?.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }));
}

function onReqDrain(this: Req): void {
  const ex = this[kExchange] as H2Exchange;
  if (ex.down.isPaused()) ex.down.resume();
}

const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

function onReqError(this: Req, err: Error & { code?: string }): void {
  const ex = this[kExchange] as H2Exchange;
  if (ex.h1 !== this || ex.complete) return;
  if (ex.responded) {
    resetDown(ex, 'UC');
    return;
  }
  upstreamFailed(ex, CONNECT_ERRORS.has(err.code ?? '') ? 'UF' : 'UC');
}

function onResponse(this: Req, res: Res): void {
  const ex = this[kExchange] as H2Exchange;
  if (ex.h1 !== this) {
    res.resume();
    return;
  }
  res[kExchange] = ex;
  ex.h1res = res;
  const status = res.statusCode ?? 502;
  const raw = res.rawHeaders;
  const flat: string[] = [];
  for (let i = 0; i < raw.length; i += 2) flat.push((raw[i] as string).toLowerCase(), raw[i + 1] as string);
  const connection = headerOf(flat, 'connection');
  const tokens = connection === undefined ? [] : connection.toLowerCase().split(',').map((t) => t.trim());
  const noBody = ex.method === 'HEAD' || status === 204 || status === 304;
  if (!respond(ex, responseHeaders(ex, status, stripHopByHop(flat, tokens)), noBody)) {
    this.destroy();
    return;
  }
  res.on('data', onResData);
  res.on('end', onResEnd);
  res.on('aborted', onResAborted);
  res.on('error', noop);
}

function noop(): void {}

function onResData(this: Res, chunk: Buffer): void {
  const ex = this[kExchange] as H2Exchange;
  if (!writeDown(ex, chunk)) this.pause();
}

function onResEnd(this: Res): void {
  const ex = this[kExchange] as H2Exchange;
  if (this.rawTrailers.length > 0) {
    const flat: string[] = [];
    for (let i = 0; i < this.rawTrailers.length; i += 2) flat.push((this.rawTrailers[i] as string).toLowerCase(), this.rawTrailers[i + 1] as string);
    ex.trailers = h2Object(flat, {});
    if (ex.grpc) ex.grpcStatus = headerOf(flat, 'grpc-status') ?? '';
  } else if (ex.grpc) {
    ex.grpcStatus = headerOf(flatFromObject(this.headers), 'grpc-status') ?? '';
  }
  if (!ex.complete) endDown(ex);
}

function onResAborted(this: Res): void {
  const ex = this[kExchange] as H2Exchange;
  if (!ex.complete) resetDown(ex, 'UC');
}

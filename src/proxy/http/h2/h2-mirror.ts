/**
 * Request mirroring for requests that arrive over HTTP/2 (VirtualService `mirror`,
 * `mirrors`; Envoy's `request_mirror_policies`), as the HTTP/1.1 engine does it: a request
 * without a body is copied at once; one with a body once the body is complete, kept up to
 * 64 KiB (a longer one is not mirrored). The copies go out fire and forget
 * (`filters/mirror.ts`): nothing about them reaches the real request.
 *
 * Only mirrored requests pay for this: the exchange's mirror fields stay null otherwise,
 * and the body handler checks one of them per chunk.
 */
import type { ForwardDecision } from '../router.js';
import { mirrorRequest } from '../../filters/mirror.js';
import type { H2Exchange } from './h2-exchange.js';
import { MAX_REPLAY_BYTES } from './h2-tries.js';

/**
 * Called when `ex` is forwarded under `d` with the upstream headers `flat` (without
 * `host`; they are copied, the caller goes on changing its list).
 */
export function beginMirror(ex: H2Exchange, d: ForwardDecision, flat: readonly string[]): void {
  const headers = ['host', d.authority, ...flat];
  if (ex.bodyless) {
    send(ex, d, headers, null);
    return;
  }
  ex.mirrorHeaders = headers;
  ex.mirrorBody = [];
}

/** Request body bytes of a mirrored request; past 64 KiB the copy is given up. */
export function keepForMirror(ex: H2Exchange, chunk: Buffer): void {
  ex.mirrorBytes += chunk.length;
  if (ex.mirrorBytes > MAX_REPLAY_BYTES) {
    ex.mirrorBody = null;
    ex.mirrorHeaders = null;
    return;
  }
  ex.mirrorBody?.push(chunk);
}

/** The request body is complete: the copies go out. */
export function mirrorComplete(ex: H2Exchange): void {
  const headers = ex.mirrorHeaders;
  const body = ex.mirrorBody;
  ex.mirrorHeaders = null;
  ex.mirrorBody = null;
  if (headers === null || body === null || ex.decision === null) return;
  send(ex, ex.decision, headers, Buffer.concat(body));
}

function send(ex: H2Exchange, d: ForwardDecision, headers: readonly string[], body: Buffer | null): void {
  const mirrors = d.action.mirrors;
  if (mirrors !== null) mirrorRequest(ex.ctx.config.current, mirrors, ex.method, d.path, headers, body, ex.ctx.config.upstream);
}

/**
 * Request mirroring (Envoy's `request_mirror_policies`, VirtualService `mirror` /
 * `mirrors`): a copy of a share of requests goes to another cluster, fire and forget.
 * The copy's authority gets `-shadow` after the host (`reviews:9080` →
 * `reviews-shadow:9080`), its response is read and dropped, and nothing about it — a
 * failure, a slow answer — touches the real request. Off the hot path (only mirrored
 * requests come here), so HTTP/1.1 copies use node:http with its own keep-alive agent.
 *
 * A request that came over HTTP/2 (`upstream` given) is copied over HTTP/2 to a mirror
 * cluster that speaks it (`http2`, or the client's protocol), on the endpoint's shared
 * HTTP/2 pool under the mirror cluster's limits; a copy that would have to wait for a
 * connection (`max_connections` reached) is dropped rather than queued.
 */
import { Agent, type IncomingMessage, request } from 'node:http';
import type { ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2';
import type { ClusterRuntime, UpstreamState } from '../config/clusters.js';
import type { RuntimeSnapshot } from '../config/runtime.js';
import { h2Object } from '../http/h2/h2-headers.js';
import type { MirrorPolicy } from '../routing/route-action.js';
import type { Endpoint } from '../upstream/lb/types.js';
import { cancelStream } from '../upstream/h2-pool.js';
import type { UpstreamTls } from '../tls/tls-context.js';

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** `host[:port]` with `-shadow` appended to the host. */
export function shadowAuthority(authority: string): string {
  const colon = authority.lastIndexOf(':');
  if (colon > 0 && authority.indexOf(']') < colon) return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
  return `${authority}-shadow`;
}

/** A copy gets this long for its answer; then it is cut off. */
const COPY_TIMEOUT_MS = 30_000;

/**
 * Sends copies to the mirrors that draw this request. `headers` is the flat upstream
 * header list (with `host`); `body` the whole request body (null: none); `upstream` the
 * proxy's pools when the request came over HTTP/2 (HTTP/2 copies to HTTP/2 clusters),
 * null when it came over HTTP/1.1 (every copy over HTTP/1.1).
 */
export function mirrorRequest(snapshot: RuntimeSnapshot, mirrors: readonly MirrorPolicy[], method: string, path: string, headers: readonly string[], body: Buffer | null, upstream: UpstreamState | null = null): void {
  for (const m of mirrors) {
    if (m.fraction < 1 && Math.random() >= m.fraction) continue;
    const cluster = snapshot.clusters.get(m.cluster);
    const endpoint = cluster?.picker.pick({ hash: undefined });
    if (cluster === undefined || endpoint === undefined) continue;
    if (upstream !== null && cluster.protocol !== 'http1') sendH2Copy(upstream, cluster, endpoint, method, path, headers, body);
    else sendH1Copy(endpoint, method, path, headers, body, cluster.tls);
  }
}

function sendH1Copy(endpoint: Endpoint, method: string, path: string, headers: readonly string[], body: Buffer | null, tls: UpstreamTls | null): void {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    const value = headers[i + 1] as string;
    if (name === 'host') out.push('host', shadowAuthority(value));
    else if (name !== 'transfer-encoding' && name !== 'content-length') out.push(name, value);
  }
  if (body !== null) out.push('content-length', String(body.length));
  // A TLS mirror cluster gets a connection of its own per copy (no agent): rare, and off the hot path.
  const req = tls === null
    ? request({ host: endpoint.address, port: endpoint.port, method, path, headers: out, agent, setHost: false })
    : request({ host: endpoint.address, port: endpoint.port, method, path, headers: out, setHost: false, createConnection: () => tls.connect(endpoint.address, endpoint.port) });
  req.on('error', ignore);
  req.on('response', drain);
  req.setTimeout(COPY_TIMEOUT_MS, () => req.destroy());
  req.end(body ?? undefined);
}

function sendH2Copy(upstream: UpstreamState, cluster: ClusterRuntime, endpoint: Endpoint, method: string, path: string, headers: readonly string[], body: Buffer | null): void {
  const flat: string[] = [];
  let authority = '';
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    const value = headers[i + 1] as string;
    if (name === 'host') authority = shadowAuthority(value);
    else if (name !== 'content-length') flat.push(name, value);
  }
  if (body !== null) flat.push('content-length', String(body.length));
  const h: OutgoingHttpHeaders = h2Object(flat, { ':method': method, ':scheme': 'http', ':authority': authority, ':path': path });
  const r = upstream.h2(endpoint.address, endpoint.port, cluster.tls).requestIfFree(h, { endStream: body === null }, cluster);
  if (r === null) return; // max_connections reached: the copy is not worth a queue slot
  const s = r.stream;
  s.on('error', ignore);
  s.on('timeout', onCopyTimeout);
  s.setTimeout(COPY_TIMEOUT_MS);
  s.resume(); // the answer (and its trailers) is read and dropped
  if (body !== null) s.end(body);
}

function onCopyTimeout(this: ClientHttp2Stream): void {
  cancelStream(this);
}

function ignore(): void {}

function drain(res: IncomingMessage): void {
  res.on('error', ignore);
  res.resume();
}

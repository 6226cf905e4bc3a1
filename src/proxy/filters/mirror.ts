/**
 * Request mirroring (Envoy's `request_mirror_policies`, VirtualService `mirror` /
 * `mirrors`): a copy of a share of requests goes to another cluster, fire and forget.
 * The copy's authority gets `-shadow` after the host (`reviews:9080` →
 * `reviews-shadow:9080`), its response is read and dropped, and nothing about it — a
 * failure, a slow answer — touches the real request. Off the hot path (only mirrored
 * requests come here), so it uses node:http with its own keep-alive agent.
 */
import { Agent, type IncomingMessage, request } from 'node:http';
import type { RuntimeSnapshot } from '../config/runtime.js';
import type { MirrorPolicy } from '../routing/route-action.js';

const agent = new Agent({ keepAlive: true, maxSockets: 64 });

/** `host[:port]` with `-shadow` appended to the host. */
export function shadowAuthority(authority: string): string {
  const colon = authority.lastIndexOf(':');
  if (colon > 0 && authority.indexOf(']') < colon) return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
  return `${authority}-shadow`;
}

/**
 * Sends copies to the mirrors that draw this request. `headers` is the flat upstream
 * header list (with `host`); `body` the whole request body (null: none).
 */
export function mirrorRequest(snapshot: RuntimeSnapshot, mirrors: readonly MirrorPolicy[], method: string, path: string, headers: readonly string[], body: Buffer | null): void {
  for (const m of mirrors) {
    if (m.fraction < 1 && Math.random() >= m.fraction) continue;
    const cluster = snapshot.clusters.get(m.cluster);
    const endpoint = cluster?.picker.pick({ hash: undefined });
    if (endpoint === undefined) continue;
    const out: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      const value = headers[i + 1] as string;
      if (name === 'host') out.push('host', shadowAuthority(value));
      else if (name !== 'transfer-encoding' && name !== 'content-length') out.push(name, value);
    }
    if (body !== null) out.push('content-length', String(body.length));
    const req = request({ host: endpoint.address, port: endpoint.port, method, path, headers: out, agent, setHost: false });
    req.on('error', ignore);
    req.on('response', drain);
    req.setTimeout(30_000, () => req.destroy());
    req.end(body ?? undefined);
  }
}

function ignore(): void {}

function drain(res: IncomingMessage): void {
  res.on('error', ignore);
  res.resume();
}

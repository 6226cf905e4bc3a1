/**
 * The control plane's admin HTTP API (JSON; documented in docs/control-plane.md):
 * health, debug views of the registry, configuration, per-proxy sync state and config
 * dumps, the run-time registration endpoints that `trellis run` uses, and the
 * configuration endpoints of `trellis apply`, `delete` and `get` (config-api.ts).
 * Not on a hot path: plain `node:http`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isTrellisError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { endpointsOf } from '../../registry/endpoints.js';
import { formatLocality } from '../../registry/model.js';
import type { ControlPlane } from '../control-plane.js';
import { untranslatedUses } from '../translate/coverage.js';
import { formatPath } from '../../api/schema/path.js';
import { configRoutes } from './config-api.js';
import { error, readJson, type Reply, type Route } from './http.js';

/** Registration bodies are small; refuse anything larger. */
const MAX_BODY_BYTES = 64 * 1024;

export class AdminServer {
  readonly #cp: ControlPlane;
  readonly #log: Logger;
  readonly #server: Server;
  readonly #routes: readonly Route[];

  constructor(cp: ControlPlane, log: Logger) {
    this.#cp = cp;
    this.#log = log;
    this.#routes = [
      ['GET', /^\/healthz\/ready$/, () => ({ status: 200, body: { ready: true } })],
      ['GET', /^\/debug\/registryz$/, () => this.#registryz()],
      ['GET', /^\/debug\/configz$/, () => this.#configz()],
      ['GET', /^\/debug\/syncz$/, () => ({ status: 200, body: { proxies: this.#cp.xds.statuses() } })],
      ['GET', /^\/debug\/config_dump$/, (_req, url) => this.#configDump(url.searchParams.get('proxyID'))],
      ['GET', /^\/v1\/registrations$/, () => ({ status: 200, body: { registrations: this.#cp.registrations.list() } })],
      ['POST', /^\/v1\/registrations$/, (req) => this.#register(req)],
      ['POST', /^\/v1\/registrations\/([^/]+)\/heartbeat$/, (req, _url, [id]) => this.#heartbeat(req, id as string)],
      ['DELETE', /^\/v1\/registrations\/([^/]+)$/, (_req, _url, [id]) =>
        this.#cp.registrations.deregister(decodeURIComponent(id as string)) ? { status: 204 } : error(404, 'TRELLIS_REGISTRATION_NOT_FOUND', `no registration "${id}"`)],
      ...configRoutes(this.#cp),
    ];
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const addr = this.#server.address();
        resolve(typeof addr === 'object' && addr !== null ? addr.port : port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://admin');
    let reply: Reply = error(404, 'TRELLIS_ADMIN_NOT_FOUND', `no such endpoint: ${req.method} ${url.pathname}`);
    for (const [method, pattern, handler] of this.#routes) {
      const m = pattern.exec(url.pathname);
      if (m === null) continue;
      if (req.method !== method) {
        reply = error(405, 'TRELLIS_ADMIN_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}`);
        continue;
      }
      try {
        reply = await handler(req, url, m.slice(1));
      } catch (err) {
        this.#log.error('admin request failed', { path: url.pathname, err });
        // A coded error (the config directory is not writable) tells the user what to do; anything else is a bug.
        reply = isTrellisError(err) ? error(500, err.code, err.message) : error(500, 'TRELLIS_ADMIN_INTERNAL', err instanceof Error ? err.message : String(err));
      }
      break;
    }
    const body = reply.body === undefined ? '' : JSON.stringify(reply.body, null, 2) + '\n';
    res.writeHead(reply.status, body === '' ? {} : { 'content-type': 'application/json' });
    res.end(body);
  }

  #registryz(): Reply {
    const snap = this.#cp.registry.snapshot();
    const services = snap.services.map((s) => ({
      hostname: s.hostname,
      namespace: s.namespace,
      name: s.name,
      source: s.source,
      resolution: s.resolution,
      ports: s.ports.map((p) => ({
        ...p,
        endpoints: endpointsOf(snap, s, p.port).map((e) => ({
          address: e.address,
          port: e.port,
          workload: e.workloadId,
          healthy: e.healthy,
          locality: formatLocality(e.locality),
          weight: e.weight,
          labels: e.labels,
        })),
      })),
    }));
    return { status: 200, body: { version: snap.version, services, workloads: snap.workloads } };
  }

  #configz(): Reply {
    const snap = this.#cp.store.snapshot();
    const resources = snap.resources.map((r) => ({
      kind: r.kind,
      namespace: r.metadata.namespace,
      name: r.metadata.name,
      file: r.source.file,
      line: r.source.line,
      notTranslatedYet: untranslatedUses(r.kind, r.spec).map((u) => ({ field: u.field, path: formatPath(u.path), reason: u.reason })),
    }));
    return { status: 200, body: { version: snap.version, files: snap.files, resources, findings: snap.findings } };
  }

  #configDump(proxyId: string | null): Reply {
    if (proxyId === null) return error(400, 'TRELLIS_ADMIN_BAD_REQUEST', 'the proxyID query parameter is required');
    const proxy = this.#cp.xds.proxies().find((p) => p.node.id === proxyId);
    if (proxy === undefined) return error(404, 'TRELLIS_ADMIN_PROXY_NOT_FOUND', `no connected proxy "${proxyId}"`);
    const t = proxy.translation;
    const versions = Object.fromEntries([...proxy.snapshot.types].map(([type, ts]) => [type, ts.version]));
    return { status: 200, body: { proxy: proxy.node, versions, listeners: t?.listeners ?? [], routes: t?.routes ?? [], clusters: t?.clusters ?? [], endpoints: t?.endpoints ?? [], missingClusters: t?.missingClusters ?? [] } };
  }

  async #register(req: IncomingMessage): Promise<Reply> {
    const body = await readJson(req, MAX_BODY_BYTES);
    if (!body.ok) return error(400, 'TRELLIS_ADMIN_BAD_REQUEST', body.error);
    const result = this.#cp.registrations.register(body.value as never);
    if (!result.ok) return { status: 400, body: { error: { code: 'TRELLIS_REGISTRATION_INVALID', message: 'the registration is not valid', fields: result.errors } } };
    return { status: 201, body: { id: result.id, ttlMs: result.ttlMs, workloadId: result.workloadId } };
  }

  async #heartbeat(req: IncomingMessage, rawId: string): Promise<Reply> {
    const id = decodeURIComponent(rawId);
    const body = await readJson(req, MAX_BODY_BYTES);
    const healthy = body.ok && typeof (body.value as { healthy?: unknown })?.healthy === 'boolean' ? (body.value as { healthy: boolean }).healthy : undefined;
    const alive = this.#cp.registrations.heartbeat(id, healthy === undefined ? {} : { healthy });
    return alive ? { status: 200, body: { id } } : error(404, 'TRELLIS_REGISTRATION_NOT_FOUND', `no live registration "${id}": register again`);
  }
}

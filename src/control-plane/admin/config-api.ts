/**
 * `/v1/config`: the configuration the mesh serves, and changing it at run time — what
 * `trellis apply`, `trellis delete` and `trellis get` use (documented in
 * docs/control-plane.md, "Admin API").
 */
import type { IncomingMessage } from 'node:http';
import type { Finding } from '../../api/finding.js';
import type { AnyResource } from '../../api/resource.js';
import type { YamlDocument } from '../../api/yaml-source.js';
import { isDns1123Label } from '../../api/common.js';
import { isValidRef, kindNamed } from '../applied-config.js';
import { isApplied } from '../config-store.js';
import type { ControlPlane } from '../control-plane.js';
import { error, readText, type Reply, type Route } from './http.js';

/** Kubernetes' API server refuses requests above 3 MiB; a little more room here. */
export const MAX_CONFIG_BODY_BYTES = 4 * 1024 * 1024;

/** Names the request's YAML in findings (`vs.yaml:14: ...`); the query parameter `source` does the same. */
export const SOURCE_HEADER = 'x-trellis-source';

const REF = /^\/v1\/config\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/;

export function configRoutes(cp: ControlPlane): Route[] {
  return [
    ['GET', /^\/v1\/config$/, (_req, url) => list(cp, url.searchParams)],
    ['PUT', /^\/v1\/config$/, (req, url) => apply(cp, req, url.searchParams)],
    ['GET', REF, (_req, _url, params) => withRef(params, (kind, ns, name) => getOne(cp, kind, ns, name))],
    ['DELETE', REF, (_req, _url, params) => withRef(params, (kind, ns, name) => remove(cp, kind, ns, name))],
  ];
}

async function apply(cp: ControlPlane, req: IncomingMessage, query: URLSearchParams): Promise<Reply> {
  const namespace = query.get('namespace') ?? 'default';
  if (!isDns1123Label(namespace)) return error(400, 'TRELLIS_ADMIN_BAD_REQUEST', `namespace "${namespace}" must be a DNS-1123 label`);
  const header = req.headers[SOURCE_HEADER];
  const source = query.get('source') ?? (typeof header === 'string' && header !== '' ? header : 'request');
  const body = await readText(req, MAX_CONFIG_BODY_BYTES);
  if (!body.ok) return error(400, 'TRELLIS_ADMIN_BAD_REQUEST', body.error);
  const outcome = cp.applied.apply(body.value, source, namespace);
  if (outcome.ok) {
    // Answer once every connected proxy has the change, so that what the user tries next sees it.
    const settled = await cp.whenChangePushed(SETTLE_TIMEOUT_MS);
    return { status: 200, body: { resources: outcome.resources, findings: outcome.findings.map(findingJson), settled } };
  }
  const findings = outcome.findings.map(findingJson);
  if (outcome.reason === 'empty') {
    return error(400, 'TRELLIS_ADMIN_BAD_REQUEST', `${source} holds no resource the mesh reads; nothing was applied`, { findings });
  }
  const errors = outcome.findings.filter((f) => f.severity === 'error').length;
  return error(400, 'TRELLIS_ADMIN_CONFIG_INVALID', `${source}: ${errors} error${errors === 1 ? '' : 's'}; nothing was applied`, { findings });
}

/** How long apply and delete wait for the proxies to acknowledge the change before answering anyway. */
const SETTLE_TIMEOUT_MS = 5_000;

async function remove(cp: ControlPlane, kind: AnyResource['kind'], namespace: string, name: string): Promise<Reply> {
  const ref = `${kind} ${namespace === '' ? '' : `${namespace}/`}${name}`;
  const outcome = cp.applied.delete(kind, namespace, name);
  if (outcome.ok) {
    const settled = await cp.whenChangePushed(SETTLE_TIMEOUT_MS);
    return { status: 200, body: { kind, namespace, name, file: outcome.file, restored: outcome.restored ?? null, settled } };
  }
  if (outcome.reason === 'not-found') return error(404, 'TRELLIS_ADMIN_CONFIG_NOT_FOUND', `${ref} does not exist`);
  if (outcome.reason === 'breaks') {
    const n = outcome.findings.length;
    return error(409, 'TRELLIS_ADMIN_CONFIG_DELETE_BREAKS',
      `deleting ${ref} would leave ${n} error${n === 1 ? '' : 's'} in the configuration (below); nothing was deleted: change or delete what refers to it first`,
      { findings: outcome.findings.map(findingJson) });
  }
  return error(409, 'TRELLIS_ADMIN_CONFIG_NOT_APPLIED',
    `${ref} is defined in ${outcome.file} (line ${outcome.line}), not applied with trellis apply; remove it from that file instead`,
    { file: outcome.file, line: outcome.line });
}

function list(cp: ControlPlane, query: URLSearchParams): Reply {
  const kindParam = query.get('kind');
  const kind = kindParam === null ? undefined : kindNamed(kindParam);
  if (kindParam !== null && kind === undefined) return error(400, 'TRELLIS_ADMIN_BAD_REQUEST', `unknown kind "${kindParam}"`);
  const namespace = query.get('namespace');
  const name = query.get('name');
  const snap = cp.store.snapshot();
  const parsed = new Map<string, readonly YamlDocument[]>(); // each file parsed once for the whole list
  const resources = snap.resources
    .filter((r) => (kind === undefined || r.kind === kind) && (namespace === null || r.metadata.namespace === namespace) && (name === null || r.metadata.name === name))
    .sort(byRef)
    .map((r) => view(cp, r, parsed));
  return { status: 200, body: { version: snap.version, resources } };
}

function getOne(cp: ControlPlane, kind: AnyResource['kind'], namespace: string, name: string): Reply {
  const r = cp.store.snapshot().resources.find((x) => x.kind === kind && x.metadata.namespace === namespace && x.metadata.name === name);
  return r === undefined ? error(404, 'TRELLIS_ADMIN_CONFIG_NOT_FOUND', `${kind} ${namespace === '' ? '' : `${namespace}/`}${name} does not exist`) : { status: 200, body: view(cp, r) };
}

/** `/v1/config/<kind>/<namespace>/<name>`, or `/v1/config/<kind>/<name>` for a kind without namespaces. */
function withRef(params: string[], then: (kind: AnyResource['kind'], namespace: string, name: string) => Reply | Promise<Reply>): Reply | Promise<Reply> {
  const [rawKind, first, second] = params.map((p) => (p === undefined ? undefined : decodeURIComponent(p)));
  const kind = kindNamed(rawKind ?? '');
  if (kind === undefined) return error(404, 'TRELLIS_ADMIN_CONFIG_NOT_FOUND', `unknown kind "${rawKind}"`);
  const [namespace, name] = second === undefined ? ['', first ?? ''] : [first ?? '', second];
  // Also what keeps a URL from naming a file outside applied/: only valid names get through.
  if (!isValidRef(kind, namespace, name)) {
    return error(404, 'TRELLIS_ADMIN_CONFIG_NOT_FOUND', `${kind} "${namespace === '' ? '' : `${namespace}/`}${name}" is not a valid reference (${second === undefined ? 'this kind needs a namespace' : 'names are DNS-1123'})`);
  }
  return then(kind, namespace, name);
}

function view(cp: ControlPlane, r: AnyResource, parsed?: Map<string, readonly YamlDocument[]>): Record<string, unknown> {
  const doc = cp.store.documentOf(r, parsed);
  const overridden = cp.store.snapshot().overrides.get(`${r.kind}/${r.metadata.namespace}/${r.metadata.name}`);
  const { labels, annotations } = r.metadata;
  return {
    kind: r.kind,
    apiVersion: r.apiVersion,
    namespace: r.metadata.namespace,
    name: r.metadata.name,
    source: isApplied(r.source.file) ? 'applied' : r.source.file,
    file: r.source.file,
    line: r.source.line,
    overrides: overridden === undefined ? null : { file: overridden.source.file, line: overridden.source.line },
    metadata: { labels, annotations },
    // As written (durations as strings, short hosts; absent if the document has none); the
    // served domain form only if the text is gone.
    spec: doc === undefined ? r.spec : doc.spec,
  };
}

function byRef(a: AnyResource, b: AnyResource): number {
  return cmp(a.kind, b.kind) || cmp(a.metadata.namespace, b.metadata.namespace) || cmp(a.metadata.name, b.metadata.name);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function findingJson(f: Finding): Record<string, unknown> {
  return {
    code: f.code,
    severity: f.severity,
    message: f.message,
    resource: f.resource ?? null,
    file: f.file ?? null,
    line: f.line ?? null,
    column: f.column ?? null,
    path: f.path ?? null,
  };
}

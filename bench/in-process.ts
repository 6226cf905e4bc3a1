/**
 * The control plane's pure stages, timed in-process without sockets: reading and
 * validating the config directory, building the registry and the mesh, translating for
 * one proxy and encoding the result. Every cold run starts from a fresh registry snapshot
 * and mesh, so the per-mesh caches (cluster plans, encoded messages, endpoint indexes) are
 * empty, as they are after a change. No GC is forced before a timed step: a full
 * collection shrinks the young generation, which makes the next allocation-heavy step
 * slower than it is in a running control plane (measured: a one-file rescan takes about
 * 250 ms right after gc() against 140 ms without).
 */
import { writeFileSync } from 'node:fs';
import type { AnyResource } from '../src/api/resource.js';
import { ConfigStore } from '../src/control-plane/config-store.js';
import { consistencyProblems, translate, type Translation } from '../src/control-plane/translate/index.js';
import { buildMesh, DEFAULT_MESH_CONFIG, type Mesh } from '../src/control-plane/translate/mesh.js';
import { parseNode, type ProxyNode } from '../src/control-plane/translate/node.js';
import { encodeTranslation } from '../src/control-plane/xds-server/encode.js';
import type { XdsSnapshot } from '../src/control-plane/xds-server/snapshot.js';
import { AggregateRegistry } from '../src/registry/aggregate.js';
import { ConfigRegistry } from '../src/registry/config-source.js';
import { RegistrationRegistry } from '../src/registry/registration-source.js';
import { TYPE_URLS } from '../src/xds/type-urls.js';
import type { GeneratedMesh } from './mesh-gen.js';
import { type Summary, summarize, timed } from './stats.js';

export const LOAD_RUNS = 3;
export const CHANGE_RUNS = 5;
export const TRANSLATE_RUNS = 5;

export interface LoadResult {
  readonly files: number;
  readonly resources: number;
  /** `ConfigStore.rescan()` of the whole directory: read, hash, parse YAML, validate. */
  readonly readValidateMs: Summary;
  /** ConfigRegistry.update + the aggregate (config + registrations), as the control plane composes them. */
  readonly registryMs: Summary;
  readonly meshMs: Summary;
  /** `rescan()` after one WorkloadEntry of one 1,100-document file changed. */
  readonly rescanOneFileMs: Summary;
  /** The registry update that follows that change (one workload differs). */
  readonly registryUpdateMs: Summary;
}

/** What the load keeps alive, so that its memory can be read before it is dropped. */
export interface Loaded {
  readonly resources: readonly AnyResource[];
  readonly retained: readonly object[];
}

function composeRegistry(resources: readonly AnyResource[]): { config: ConfigRegistry; aggregate: AggregateRegistry } {
  const config = new ConfigRegistry({ domain: DEFAULT_MESH_CONFIG.domain });
  config.update(resources);
  return { config, aggregate: new AggregateRegistry([config, new RegistrationRegistry()]) };
}

function assertValid(store: ConfigStore): void {
  const snap = store.snapshot();
  const errors = [...snap.findings, ...snap.files.flatMap((f) => f.findings)].filter((f) => f.severity === 'error');
  if (errors.length > 0) throw new Error(`the generated mesh does not validate: ${errors.slice(0, 3).map((f) => `${f.file}:${f.line} ${f.message}`).join('; ')}`);
}

export function benchLoad(gen: GeneratedMesh): { result: LoadResult; loaded: Loaded } {
  const readValidate: number[] = [];
  const registry: number[] = [];
  const meshBuild: number[] = [];
  let last: { store: ConfigStore; aggregate: AggregateRegistry; mesh: Mesh } | undefined;
  for (let run = 0; run < LOAD_RUNS; run++) {
    last = undefined;
    const store = new ConfigStore(gen.dir, { domain: DEFAULT_MESH_CONFIG.domain });
    readValidate.push(timed(() => store.rescan()).ms);
    assertValid(store);
    const resources = store.snapshot().resources;
    const reg = timed(() => composeRegistry(resources));
    registry.push(reg.ms);
    const mesh = timed(() => buildMesh(resources, reg.value.aggregate.snapshot(), DEFAULT_MESH_CONFIG));
    meshBuild.push(mesh.ms);
    last = { store, aggregate: reg.value.aggregate, mesh: mesh.value };
  }
  if (last === undefined) throw new Error('no load run');
  const { store, aggregate, mesh } = last;
  const changes = benchOneFileChange(gen, store);
  const resources = store.snapshot().resources;
  const result: LoadResult = {
    files: store.snapshot().files.length,
    resources: resources.length,
    readValidateMs: summarize(readValidate),
    registryMs: summarize(registry),
    meshMs: summarize(meshBuild),
    ...changes,
  };
  return { result, loaded: { resources, retained: [store, aggregate, mesh] } };
}

/** Changes one WorkloadEntry address per run, then rescans and updates the registry. */
function benchOneFileChange(gen: GeneratedMesh, store: ConfigStore): Pick<LoadResult, 'rescanOneFileMs' | 'registryUpdateMs'> {
  const rescans: number[] = [];
  const updates: number[] = [];
  const config = new ConfigRegistry({ domain: DEFAULT_MESH_CONFIG.domain });
  config.update(store.snapshot().resources);
  for (let run = 0; run < CHANGE_RUNS; run++) {
    const { path, text } = gen.prepareChange(500 + run, 0, `127.2.0.${run + 1}`);
    writeFileSync(path, text);
    const rescan = timed(() => store.rescan());
    if (!rescan.value) throw new Error('the store did not see the changed file');
    rescans.push(rescan.ms);
    const update = timed(() => config.update(store.snapshot().resources));
    if (!update.value) throw new Error('the registry did not see the changed workload');
    updates.push(update.ms);
  }
  return { rescanOneFileMs: summarize(rescans), registryUpdateMs: summarize(updates) };
}

// ---- translation ----

const NAMESPACE = { stringValue: 'default', kind: 'stringValue' };

/** The `LABELS` Struct of a workload of service `app`, as Istio's bootstrap writes it. */
function labelsOf(app: string): object {
  const fields = { app: { stringValue: app, kind: 'stringValue' }, version: { stringValue: 'v2', kind: 'stringValue' } };
  return { kind: 'structValue', structValue: { fields } };
}

/** A proxyless gRPC client; with `app`, it runs as a workload of that service. */
export function grpcNode(id: string, app?: string): ProxyNode {
  const fields = app === undefined ? { NAMESPACE } : { NAMESPACE, LABELS: labelsOf(app) };
  return parseNode({ id, metadata: { fields }, user_agent_name: 'gRPC Node Pure JS' });
}

/** A sidecar of a workload of `app` (so it also gets an inbound listener and cluster). */
export function sidecarNode(id: string, app = 'svc-0001'): ProxyNode {
  return parseNode({ id, metadata: { fields: { NAMESPACE, TRELLIS_PROXY_TYPE: { stringValue: 'sidecar', kind: 'stringValue' }, LABELS: labelsOf(app) } } });
}

export interface TranslationCounts {
  readonly listeners: number;
  readonly routes: number;
  readonly clusters: number;
  /** ClusterLoadAssignments (one per EDS cluster). */
  readonly endpoints: number;
  readonly lbEndpoints: number;
  readonly virtualHosts: number;
  /** Encoded size per type (sum of the Any values): what one SotW response carries. */
  readonly encodedKb: Readonly<Record<string, number>>;
}

export interface TranslationResult {
  readonly kind: string;
  readonly counts: TranslationCounts;
  readonly translateMs: Summary;
  /** `consistencyProblems()`, which the server runs before publishing every snapshot. */
  readonly consistencyMs: Summary;
  readonly encodeMs: Summary;
  /** translate + consistency + encode: what a push costs per proxy on a new mesh. */
  readonly totalMs: Summary;
  /** A second proxy of the same kind, namespace and labels on the same mesh (shared caches). */
  readonly warmTranslateMs: Summary;
  readonly warmEncodeMs: Summary;
  /** A third proxy on the same mesh whose workload labels differ (another service's workload). */
  readonly otherLabelsTranslateMs: Summary;
  readonly otherLabelsEncodeMs: Summary;
}

function countsOf(t: Translation, snapshot: XdsSnapshot): TranslationCounts {
  const kb = (typeUrl: string): number => {
    let bytes = 0;
    for (const r of snapshot.types.get(typeUrl)?.resources.values() ?? []) bytes += r.any.value.length;
    return Math.round(bytes / 1024);
  };
  return {
    listeners: t.listeners.length,
    routes: t.routes.length,
    clusters: t.clusters.length,
    endpoints: t.endpoints.length,
    lbEndpoints: t.endpoints.reduce((n, cla) => n + (cla.endpoints ?? []).reduce((m, l) => m + (l.lb_endpoints ?? []).length, 0), 0),
    virtualHosts: t.routes.reduce((n, r) => n + (r.virtual_hosts ?? []).length, 0),
    encodedKb: { LDS: kb(TYPE_URLS.LISTENER), RDS: kb(TYPE_URLS.ROUTE), CDS: kb(TYPE_URLS.CLUSTER), EDS: kb(TYPE_URLS.ENDPOINT) },
  };
}

type RunTimes = Record<'translate' | 'consistency' | 'encode' | 'total' | 'warmTranslate' | 'warmEncode' | 'otherTranslate' | 'otherEncode', number>;

/** One cold translation on a new registry snapshot and mesh, then two more proxies on that mesh. */
function translationRun(resources: readonly AnyResource[], nodes: readonly [ProxyNode, ProxyNode, ProxyNode]): { times: RunTimes; counts: TranslationCounts } {
  const { aggregate } = composeRegistry(resources); // a new snapshot: no endpoint index yet
  const mesh = buildMesh(resources, aggregate.snapshot(), DEFAULT_MESH_CONFIG);
  const t = timed(() => translate(mesh, nodes[0]));
  const c = timed(() => consistencyProblems(t.value));
  const e = timed(() => encodeTranslation(t.value));
  if (c.value.length > 0 || e.value.errors.length > 0) throw new Error(`translation not publishable: ${[...c.value, ...e.value.errors].slice(0, 3).join('; ')}`);
  const t2 = timed(() => translate(mesh, nodes[1]));
  const e2 = timed(() => encodeTranslation(t2.value));
  const t3 = timed(() => translate(mesh, nodes[2]));
  const e3 = timed(() => encodeTranslation(t3.value));
  return {
    times: { translate: t.ms, consistency: c.ms, encode: e.ms, total: t.ms + c.ms + e.ms, warmTranslate: t2.ms, warmEncode: e2.ms, otherTranslate: t3.ms, otherEncode: e3.ms },
    counts: countsOf(t.value, e.value.snapshot),
  };
}

/**
 * TRANSLATE_RUNS timed runs after one untimed run, which loads the protobufjs root on the
 * first encode and lets the JIT settle (a control plane pays those once, at its first push).
 */
export function benchTranslation(resources: readonly AnyResource[], kind: 'grpc' | 'sidecar'): TranslationResult {
  const make = kind === 'grpc' ? grpcNode : sidecarNode;
  const nodes = [make(`bench-${kind}-1`), make(`bench-${kind}-2`), make(`bench-${kind}-3`, 'svc-0002')] as const;
  const { counts } = translationRun(resources, nodes);
  const runs = Array.from({ length: TRANSLATE_RUNS }, () => translationRun(resources, nodes).times);
  const of = (k: keyof RunTimes): Summary => summarize(runs.map((r) => r[k]));
  return {
    kind,
    counts,
    translateMs: of('translate'),
    consistencyMs: of('consistency'),
    encodeMs: of('encode'),
    totalMs: of('total'),
    warmTranslateMs: of('warmTranslate'),
    warmEncodeMs: of('warmEncode'),
    otherLabelsTranslateMs: of('otherTranslate'),
    otherLabelsEncodeMs: of('otherEncode'),
  };
}

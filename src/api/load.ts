/**
 * Reading resources: YAML text → validated domain resources, declared workloads and
 * findings. Every finding carries the file, line and field path it concerns. A document
 * with an error yields no resource (the caller keeps its last good version), while the
 * other documents of the same file still load.
 */
import type { Code } from '../core/codes.js';
import { DEFAULT_TRUST_DOMAIN } from '../core/spiffe.js';
import { isDns1123Label, isDns1123Subdomain, labels as labelsSchema, stringMap } from './common.js';
import { type Finding, finding, type ResourceRef } from './finding.js';
import { KINDS, type Kind, UNSUPPORTED_GROUPS, WORKLOAD_KINDS, apiVersionsOf, isKind } from './kinds.js';
import type { AnyResource, DeclaredWorkload, ObjectMeta } from './resource.js';
import { formatPath, type Path } from './schema/path.js';
import { type ParseContext, isPlainObject } from './schema/schema.js';
import { readYaml, type YamlDocument } from './yaml-source.js';

export interface LoadOptions {
  /** Namespace of resources that name none. Default `default`. */
  readonly defaultNamespace?: string;
  /** DNS domain for short-name resolution. Default `cluster.local`. */
  readonly domain?: string;
  /**
   * Keep each resource's YAML tree so later findings (analyze) can point at any field.
   * Default true; a long-running reader (the control plane) turns it off: the trees
   * cost several times the resources' own memory.
   */
  readonly keepPositions?: boolean;
}

export interface LoadResult {
  readonly resources: readonly AnyResource[];
  readonly workloads: readonly DeclaredWorkload[];
  readonly findings: readonly Finding[];
}

const TOP_LEVEL_FIELDS: ReadonlySet<string> = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);
const METADATA_FIELDS: ReadonlySet<string> = new Set([
  'name', 'namespace', 'labels', 'annotations', 'creationTimestamp', 'uid', 'resourceVersion', 'generation',
  'generateName', 'ownerReferences', 'finalizers', 'managedFields', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink',
]);

export function loadText(text: string, file: string, options: LoadOptions = {}): LoadResult {
  const { documents, findings: yamlFindings } = readYaml(text, file);
  const resources: AnyResource[] = [];
  const workloads: DeclaredWorkload[] = [];
  const findings: Finding[] = [...yamlFindings];
  for (const doc of documents) {
    const out = loadDocument(doc, options);
    if (out.resource !== undefined) resources.push(out.resource);
    if (out.workload !== undefined) workloads.push(out.workload);
    findings.push(...out.findings.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0)));
  }
  return { resources, workloads, findings };
}

interface DocumentResult {
  resource?: AnyResource;
  workload?: DeclaredWorkload;
  findings: Finding[];
}

function loadDocument(doc: YamlDocument, options: LoadOptions): DocumentResult {
  const findings: Finding[] = [];
  const at = (code: Code, path: Path, message: string, resource?: ResourceRef): void => {
    const pos = doc.locate(path);
    const extra = { file: doc.file, line: pos.line, column: pos.column, path: formatPath(path) };
    findings.push(finding(code, message, resource === undefined ? extra : { ...extra, resource }));
  };
  const value = doc.value;
  if (value === null || value === undefined) return { findings }; // a document of comments only
  if (!isPlainObject(value) || typeof value.apiVersion !== 'string' || typeof value.kind !== 'string') {
    at('TRELLIS_CONFIG_NOT_A_RESOURCE', [], 'not a resource: a document needs string apiVersion and kind fields');
    return { findings };
  }
  const { apiVersion, kind } = value;
  if (kind === 'List' && Array.isArray(value.items)) {
    at('TRELLIS_CONFIG_NOT_A_RESOURCE', ['items'], 'a List is not read; write each resource as its own YAML document');
    return { findings };
  }
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.lastIndexOf('/')) : '';
  const defaultNamespace = options.defaultNamespace ?? 'default';
  const rawMeta = isPlainObject(value.metadata) ? value.metadata : {};
  const name = typeof rawMeta.name === 'string' ? rawMeta.name : '';
  const namespace = typeof rawMeta.namespace === 'string' && rawMeta.namespace !== '' ? rawMeta.namespace : defaultNamespace;
  const ref: ResourceRef = { kind, namespace, name };

  if (!isKind(kind) || KINDS[kind].group !== group) {
    if (WORKLOAD_KINDS.has(kind)) {
      at('TRELLIS_CONFIG_SKIPPED_KIND', ['kind'], `${kind} is not read by the mesh; skipped (its pod labels are used to check selectors)`, ref);
      const workload = declaredWorkload(kind, name, namespace, value, doc);
      return workload === undefined ? { findings } : { workload, findings };
    }
    if (UNSUPPORTED_GROUPS.has(group)) {
      at('TRELLIS_CONFIG_UNSUPPORTED_KIND', ['kind'], `${kind} (${apiVersion}) is not supported by Trellis yet; skipped`, ref);
    } else {
      at('TRELLIS_CONFIG_SKIPPED_KIND', ['kind'], `${kind} (${apiVersion}) is not used by the mesh; skipped`, ref);
    }
    return { findings };
  }
  const versions = apiVersionsOf(kind);
  if (!versions.includes(apiVersion)) {
    at('TRELLIS_CONFIG_UNSUPPORTED_VERSION', ['apiVersion'], `${kind} is served as ${versions.join(', ')}, not ${apiVersion}`, ref);
    return { findings };
  }

  const ctx: ParseContext = {
    namespace,
    domain: options.domain ?? DEFAULT_TRUST_DOMAIN,
    report: (code, path, message) => at(code, path, message, ref),
  };
  for (const key of Object.keys(value)) {
    if (!TOP_LEVEL_FIELDS.has(key)) ctx.report('TRELLIS_CONFIG_UNKNOWN_FIELD', [key], `unknown field "${key}"`);
  }
  const metadata = parseMetadata(kind, value.metadata, namespace, ctx);
  const info = KINDS[kind];
  let spec: unknown;
  if (value.spec === undefined || value.spec === null) {
    if (info.specRequired) ctx.report('TRELLIS_CONFIG_REQUIRED', ['spec'], 'required field is missing');
    else spec = info.spec.parse({}, ['spec'], ctx);
  } else {
    spec = info.spec.parse(value.spec, ['spec'], ctx);
  }
  if (findings.some((f) => f.severity === 'error') || metadata === undefined || spec === undefined) return { findings };
  const resource = { kind, apiVersion, metadata, spec, source: options.keepPositions === false ? { file: doc.file, line: doc.position.line } : { file: doc.file, line: doc.position.line, locate: doc.locate } } as AnyResource;
  return { resource, findings };
}

function parseMetadata(kind: Kind, raw: unknown, namespace: string, ctx: ParseContext): ObjectMeta | undefined {
  if (!isPlainObject(raw)) {
    ctx.report('TRELLIS_CONFIG_REQUIRED', ['metadata'], raw === undefined ? 'required field is missing' : 'metadata must be an object');
    return undefined;
  }
  let ok = true;
  for (const key of Object.keys(raw)) {
    if (!METADATA_FIELDS.has(key)) {
      ctx.report('TRELLIS_CONFIG_UNKNOWN_FIELD', ['metadata', key], `unknown field "${key}"`);
      ok = false;
    }
  }
  const name = raw.name;
  const nameIsLabel = KINDS[kind].nameIsLabel;
  if (typeof name !== 'string' || name === '') {
    ctx.report('TRELLIS_CONFIG_INVALID_NAME', ['metadata', 'name'], 'metadata.name is required');
    ok = false;
  } else if (nameIsLabel ? !isDns1123Label(name) : !isDns1123Subdomain(name)) {
    const rule = nameIsLabel ? 'a DNS-1123 label' : 'a DNS-1123 subdomain';
    ctx.report('TRELLIS_CONFIG_INVALID_NAME', ['metadata', 'name'], `name "${name}" must be ${rule} (lower case letters, digits, "-"${nameIsLabel ? '' : ' and "."'})`);
    ok = false;
  }
  if (raw.namespace !== undefined && (typeof raw.namespace !== 'string' || !isDns1123Label(raw.namespace))) {
    ctx.report('TRELLIS_CONFIG_INVALID_NAME', ['metadata', 'namespace'], `namespace ${JSON.stringify(raw.namespace)} must be a DNS-1123 label`);
    ok = false;
  }
  const labels = raw.labels === undefined || raw.labels === null ? {} : labelsSchema.parse(raw.labels, ['metadata', 'labels'], ctx);
  const annotations = raw.annotations === undefined || raw.annotations === null ? {} : stringMap.parse(raw.annotations, ['metadata', 'annotations'], ctx);
  if (!ok || labels === undefined || annotations === undefined || typeof name !== 'string') return undefined;
  const meta: { -readonly [K in keyof ObjectMeta]: ObjectMeta[K] } = {
    name,
    namespace: KINDS[kind].namespaced ? namespace : '',
    labels,
    annotations,
  };
  if (typeof raw.creationTimestamp === 'string') meta.creationTimestamp = raw.creationTimestamp;
  return meta;
}

/** The pod template of a workload kind, read loosely: only labels and service account matter. */
function declaredWorkload(kind: string, name: string, namespace: string, value: Record<string, unknown>, doc: YamlDocument): DeclaredWorkload | undefined {
  const spec = value.spec;
  let pod: unknown = value;
  if (kind === 'CronJob') pod = dig(spec, ['jobTemplate', 'spec', 'template']);
  else if (kind !== 'Pod') pod = dig(spec, ['template']);
  const podLabels = dig(pod, ['metadata', 'labels']);
  const sa = dig(pod, ['spec', 'serviceAccountName']);
  if (!isPlainObject(podLabels)) return undefined;
  const labels = Object.fromEntries(Object.entries(podLabels).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return { kind, name, namespace, labels, serviceAccount: typeof sa === 'string' ? sa : 'default', source: { file: doc.file, line: doc.position.line } };
}

function dig(value: unknown, path: readonly string[]): unknown {
  let cur = value;
  for (const key of path) {
    if (!isPlainObject(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

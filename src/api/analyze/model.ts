/**
 * The set of resources `analyze` looks at, indexed for the checks. When one resource
 * (kind, namespace, name) is defined more than once — as in Istio's Bookinfo samples,
 * whose files are alternatives to apply one at a time — every definition is kept and
 * checked, and references are resolved against all of them.
 */
import type { Code } from '../../core/codes.js';
import type { Labels } from '../common.js';
import { type Finding, finding } from '../finding.js';
import type { Kind } from '../kinds.js';
import type { AnyResource, DeclaredWorkload, Resource } from '../resource.js';
import { keyOf, refOf } from '../resource.js';
import { formatPath, type Path } from '../schema/path.js';

/** Something that runs and carries labels: a pod template, a WorkloadEntry, a ServiceEntry endpoint. */
export interface Workload {
  readonly namespace: string;
  readonly labels: Labels;
  readonly serviceAccount: string;
  readonly name: string;
}

export interface Model {
  readonly resources: readonly AnyResource[];
  readonly workloads: readonly Workload[];
  /** Every definition of each kind. */
  of<K extends Kind>(kind: K): readonly Resource<K>[];
  /** Whether a resource with this key (`Kind/namespace/name`) is defined. */
  has(key: string): boolean;
}

export function buildModel(resources: readonly AnyResource[], declared: readonly DeclaredWorkload[]): Model {
  const byKind = new Map<Kind, AnyResource[]>();
  const keys = new Set<string>();
  for (const r of resources) {
    const list = byKind.get(r.kind) ?? [];
    list.push(r);
    byKind.set(r.kind, list);
    keys.add(keyOf(r));
  }
  const workloads: Workload[] = declared.map((w) => ({ namespace: w.namespace, labels: w.labels, serviceAccount: w.serviceAccount, name: `${w.kind} ${w.namespace}/${w.name}` }));
  for (const r of byKind.get('WorkloadEntry') ?? []) {
    if (r.kind !== 'WorkloadEntry') continue;
    workloads.push({ namespace: r.metadata.namespace, labels: r.spec.labels, serviceAccount: r.spec.serviceAccount ?? 'default', name: `WorkloadEntry ${r.metadata.namespace}/${r.metadata.name}` });
  }
  for (const r of byKind.get('ServiceEntry') ?? []) {
    if (r.kind !== 'ServiceEntry') continue;
    r.spec.endpoints.forEach((e, i) => {
      workloads.push({ namespace: r.metadata.namespace, labels: e.labels, serviceAccount: e.serviceAccount ?? 'default', name: `ServiceEntry ${r.metadata.namespace}/${r.metadata.name} endpoint ${i}` });
    });
  }
  return {
    resources,
    workloads,
    of: <K extends Kind>(kind: K) => (byKind.get(kind) ?? []) as unknown as readonly Resource<K>[],
    has: (key) => keys.has(key),
  };
}

/** A finding about `r`, at the line of `path` inside it. */
export function findingAt(r: AnyResource | Resource<Kind>, code: Code, path: Path, message: string): Finding {
  const pos = r.source.locate?.(path) ?? { line: r.source.line, column: 1 };
  return finding(code, message, { file: r.source.file, line: pos.line, column: pos.column, path: formatPath(path), resource: refOf(r) });
}

/** Duplicate definitions: a warning on every definition after the first. */
export function duplicateFindings(resources: readonly AnyResource[]): Finding[] {
  const first = new Map<string, AnyResource>();
  const out: Finding[] = [];
  for (const r of resources) {
    const key = keyOf(r);
    const prev = first.get(key);
    if (prev === undefined) {
      first.set(key, r);
      continue;
    }
    out.push(
      findingAt(r, 'TRELLIS_ANALYZE_DUPLICATE_RESOURCE', ['metadata', 'name'],
        `${r.kind} ${r.metadata.namespace}/${r.metadata.name} is also defined at ${prev.source.file}:${prev.source.line}; applied together, only one definition takes effect`),
    );
  }
  return out;
}

/**
 * Building snapshot content: one place for the ordering, precedence and freezing rules,
 * so every source (and the aggregate of several) produces snapshots the same way.
 */
import { isDeepStrictEqual } from 'node:util';
import type { RegistrySnapshot, Service, Workload } from './model.js';

export interface SnapshotContent {
  readonly services: readonly Service[];
  readonly workloads: readonly Workload[];
}

/**
 * Normalises services and workloads given in precedence order (earlier wins):
 * - A ServiceEntry host that is also a Kubernetes Service hostname is dropped: Istio lets
 *   such a ServiceEntry only decorate the Kubernetes service (compat ref 1.4).
 * - Of services with the same hostname, namespace and source, and of workloads with the
 *   same id, the first is kept.
 * - Services are sorted by hostname (Kubernetes first, then by namespace), workloads by
 *   id, so equal content always makes equal snapshots.
 * The result is deeply frozen (it is shared by every reader).
 */
export function normalize(services: readonly Service[], workloads: readonly Workload[]): SnapshotContent {
  const kubernetesHosts = new Set(services.filter((s) => s.source === 'kubernetes').map((s) => s.hostname));
  const seen = new Set<string>();
  const keptServices = services.filter((s) => {
    if (s.source === 'service-entry' && kubernetesHosts.has(s.hostname)) return false;
    const key = `${s.source} ${s.namespace} ${s.hostname}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const ids = new Set<string>();
  const keptWorkloads = workloads.filter((w) => !ids.has(w.id) && ids.add(w.id) !== undefined);
  keptServices.sort(compareServices);
  keptWorkloads.sort((a, b) => compareStrings(a.id, b.id));
  return deepFreeze({ services: keptServices, workloads: keptWorkloads });
}

export function snapshotOf(version: number, content: SnapshotContent): RegistrySnapshot {
  return Object.freeze({ version, services: content.services, workloads: content.workloads });
}

/** True when two normalised contents describe the same registry (key order ignored). */
export function sameContent(a: SnapshotContent, b: SnapshotContent): boolean {
  return isDeepStrictEqual(a.services, b.services) && isDeepStrictEqual(a.workloads, b.workloads);
}

function compareServices(a: Service, b: Service): number {
  return (
    compareStrings(a.hostname, b.hostname) ||
    (a.source === b.source ? 0 : a.source === 'kubernetes' ? -1 : 1) ||
    compareStrings(a.namespace, b.namespace)
  );
}

/** Code-unit order, independent of the locale (snapshots must not depend on ICU data). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  for (const v of Object.values(value)) deepFreeze(v);
  return Object.freeze(value);
}

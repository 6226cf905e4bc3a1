/**
 * WorkloadEntry → Workload. The same conversion serves WorkloadEntry resources and the
 * `endpoints` of a ServiceEntry (both are `WorkloadEntry` in Istio's API).
 */
import type { Resource } from '../../api/resource.js';
import type { WorkloadEntrySpec } from '../../api/networking/workload-entry.js';
import { parseLocality, type Workload, type WorkloadSource } from '../model.js';
import { sortedLabels } from './labels.js';

export const DEFAULT_WEIGHT = 1;

interface Identity {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly source: WorkloadSource;
  readonly owner?: string;
  /** Labels that override `spec.labels` (a WorkloadEntry's own metadata labels). */
  readonly extraLabels?: Readonly<Record<string, string>>;
}

export function workloadFromSpec(spec: WorkloadEntrySpec, who: Identity): Workload {
  const workload: Workload = {
    id: who.id,
    name: who.name,
    namespace: who.namespace,
    address: spec.address ?? '',
    ports: { ...spec.ports },
    labels: sortedLabels(spec.labels, who.extraLabels),
    serviceAccount: spec.serviceAccount ?? '',
    locality: parseLocality(spec.locality),
    // Istio leaves a 0 weight unset on the LbEndpoint, and Envoy reads unset as 1.
    weight: spec.weight === undefined || spec.weight === 0 ? DEFAULT_WEIGHT : spec.weight,
    network: spec.network ?? '',
    // WorkloadEntry health comes from its status conditions, which the config files do
    // not carry: a declared workload is healthy.
    healthy: true,
    source: who.source,
  };
  return who.owner === undefined ? workload : { ...workload, owner: who.owner };
}

/**
 * A WorkloadEntry resource. Its metadata labels are merged over `spec.labels`, metadata
 * winning, as Istio's `ConvertWorkloadEntry` does.
 */
export function workloadFromEntry(r: Resource<'WorkloadEntry'>): Workload {
  const { name, namespace, labels } = r.metadata;
  return workloadFromSpec(r.spec, { id: `workload-entry/${namespace}/${name}`, name, namespace, source: 'workload-entry', extraLabels: labels });
}

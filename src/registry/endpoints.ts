/**
 * Which workloads serve a service port, and on which port to dial them: what Istio
 * computes as service instances (`serviceInstancesFromWorkloadInstances` in the
 * Kubernetes controller, `convertWorkloadEntryToServiceInstances` for ServiceEntries).
 * Pure: a function of one snapshot, so the translator can call it while translating.
 */
import { selects } from '../api/common.js';
import type { Endpoint, RegistrySnapshot, Service, ServicePort, Workload, WorkloadSource } from './model.js';
import { compareStrings } from './snapshot.js';

/**
 * Sources whose `ports` is a WorkloadEntry ports map (keyed by service port name), which
 * Istio lets override a Service's numeric targetPort. A pod's container ports (a future
 * Kubernetes source) would not be.
 */
const PORT_MAP_SOURCES: ReadonlySet<WorkloadSource> = new Set(['workload-entry', 'service-entry', 'registration']);

/**
 * The endpoints of `service` on its port `port` (the service port, not the target), sorted
 * by address, then port, then workload id. Unhealthy workloads are included with
 * `healthy: false`; workloads without an address are not (nothing could dial them).
 * Empty when the service has no such port.
 */
export function endpointsOf(snapshot: RegistrySnapshot, service: Service, port: number): readonly Endpoint[] {
  const servicePort = service.ports.find((p) => p.port === port);
  if (servicePort === undefined) return [];
  const out: Endpoint[] = [];
  for (const w of candidates(snapshot, service)) {
    if (w.address === '') continue;
    const dial = service.source === 'kubernetes' ? kubernetesPort(servicePort, w) : serviceEntryPort(servicePort, w);
    if (dial === undefined) continue;
    out.push({
      workloadId: w.id,
      workloadName: w.name,
      namespace: w.namespace,
      address: w.address,
      port: dial,
      labels: w.labels,
      serviceAccount: w.serviceAccount,
      locality: w.locality,
      weight: w.weight,
      healthy: w.healthy,
    });
  }
  return out.sort((a, b) => compareStrings(a.address, b.address) || a.port - b.port || compareStrings(a.workloadId, b.workloadId));
}

/**
 * A ServiceEntry with `endpoints` is served by those only. Otherwise the selector picks
 * workloads of the service's own namespace (Kubernetes selects within a namespace; Istio
 * restricts a ServiceEntry workloadSelector the same way), never another ServiceEntry's
 * endpoints.
 */
function candidates(snapshot: RegistrySnapshot, service: Service): readonly Workload[] {
  const local = workloadsIn(snapshot, service.namespace);
  const selector = service.selector;
  if (selector === undefined) {
    if (service.source !== 'service-entry') return []; // a Service without selector
    return local.filter((w) => w.source === 'service-entry' && w.owner === service.name);
  }
  // Start from the smallest set of workloads carrying one of the selector's labels, so a
  // mesh of N services does not test every workload against every selector.
  let pool: readonly Workload[] = local;
  for (const [k, v] of Object.entries(selector)) {
    const withLabel = workloadsWithLabel(snapshot, service.namespace, k, v);
    if (withLabel.length < pool.length) pool = withLabel;
  }
  return pool.filter((w) => w.source !== 'service-entry' && selects(selector, w.labels));
}

/** Workloads by namespace and one label, computed once per snapshot. */
const BY_LABEL = new WeakMap<RegistrySnapshot, ReadonlyMap<string, readonly Workload[]>>();

function workloadsWithLabel(snapshot: RegistrySnapshot, namespace: string, key: string, value: string): readonly Workload[] {
  let index = BY_LABEL.get(snapshot);
  if (index === undefined) {
    const map = new Map<string, Workload[]>();
    for (const w of snapshot.workloads) {
      for (const [k, v] of Object.entries(w.labels)) {
        const id = `${w.namespace}\0${k}\0${v}`;
        const list = map.get(id);
        if (list === undefined) map.set(id, [w]);
        else list.push(w);
      }
    }
    index = map;
    BY_LABEL.set(snapshot, index);
  }
  return index.get(`${namespace}\0${key}\0${value}`) ?? [];
}

/**
 * Istio's rule for a workload selected by a Kubernetes Service: a numeric targetPort is
 * dialled, unless the workload's port map has an entry named like the service port (the
 * WorkloadEntry ports map takes precedence, compat ref 1.4); a named targetPort must be
 * in the workload's port map, or the workload does not serve this port.
 */
function kubernetesPort(sp: ServicePort, w: Workload): number | undefined {
  if (typeof sp.targetPort === 'string') return w.ports[sp.targetPort];
  const byName = sp.name !== '' && PORT_MAP_SOURCES.has(w.source) ? w.ports[sp.name] : undefined;
  return byName ?? sp.targetPort ?? sp.port;
}

/** ServiceEntry: the endpoint's port for this port name, else targetPort, else the port. */
function serviceEntryPort(sp: ServicePort, w: Workload): number | undefined {
  const byName = w.ports[sp.name];
  if (byName !== undefined) return byName;
  return typeof sp.targetPort === 'number' ? sp.targetPort : sp.port;
}

/**
 * Workloads by namespace, computed once per snapshot: the translator asks for the
 * endpoints of every service port, and a snapshot never changes.
 */
const BY_NAMESPACE = new WeakMap<RegistrySnapshot, ReadonlyMap<string, readonly Workload[]>>();

function workloadsIn(snapshot: RegistrySnapshot, namespace: string): readonly Workload[] {
  let index = BY_NAMESPACE.get(snapshot);
  if (index === undefined) {
    const map = new Map<string, Workload[]>();
    for (const w of snapshot.workloads) {
      const list = map.get(w.namespace);
      if (list === undefined) map.set(w.namespace, [w]);
      else list.push(w);
    }
    index = map;
    BY_NAMESPACE.set(snapshot, index);
  }
  return index.get(namespace) ?? [];
}

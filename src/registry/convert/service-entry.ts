/**
 * ServiceEntry → one Service per host, plus a Workload per `endpoints` entry (Istio's
 * `convertServices` and `convertServiceEntryToInstances`,
 * `pilot/pkg/serviceregistry/serviceentry/conversion.go`). Hosts are used as written.
 */
import { ISTIO_PROTOCOLS } from '../../api/kubernetes/service.js';
import type { Resource } from '../../api/resource.js';
import type { PortProtocol, Resolution, Service, ServicePort, Workload } from '../model.js';
import { sortedLabels } from './labels.js';
import { workloadFromSpec } from './workload-entry.js';

const PROTOCOLS: ReadonlySet<string> = new Set(ISTIO_PROTOCOLS);

const RESOLUTION: Readonly<Record<string, Resolution>> = {
  NONE: 'passthrough',
  STATIC: 'static',
  DNS: 'dns',
  DNS_ROUND_ROBIN: 'dns-round-robin',
  DYNAMIC_DNS: 'dynamic-dns',
};

export interface ServiceEntryParts {
  readonly services: readonly Service[];
  readonly workloads: readonly Workload[];
}

export function fromServiceEntry(r: Resource<'ServiceEntry'>): ServiceEntryParts {
  const { name, namespace } = r.metadata;
  const spec = r.spec;
  const ports: ServicePort[] = spec.ports.map((p) => ({ name: p.name, port: p.number, targetPort: p.targetPort, protocol: protocolOf(p.protocol) }));
  const base = {
    name,
    namespace,
    ports,
    source: 'service-entry',
    resolution: RESOLUTION[spec.resolution] ?? 'passthrough',
    location: spec.location === 'MESH_INTERNAL' ? 'mesh-internal' : 'mesh-external',
    addresses: [...spec.addresses],
    exportTo: [...spec.exportTo],
  } as const;
  const selector = spec.workloadSelector === undefined ? {} : { selector: sortedLabels(spec.workloadSelector) };
  const services: Service[] = spec.hosts.map((hostname) => ({ hostname, ...base, ...selector }));
  const workloads = spec.endpoints.map((e, i) =>
    workloadFromSpec(e, { id: `service-entry/${namespace}/${name}/${i}`, name, namespace, source: 'service-entry', owner: name }),
  );
  return { services, workloads };
}

/**
 * The declared protocol, lower-cased (`GRPC-WEB` is `grpc-web`). A port without one is
 * sniffed, as Istio does with its "unsupported" protocol.
 */
function protocolOf(declared: string | undefined): PortProtocol {
  const lower = (declared ?? '').toLowerCase();
  return PROTOCOLS.has(lower) ? (lower as PortProtocol) : 'auto';
}

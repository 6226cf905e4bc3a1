/**
 * Kubernetes Service → Service, as Istio's `kube.ConvertService` reads it
 * (`pilot/pkg/serviceregistry/kube/conversion.go`).
 */
import { portProtocol } from '../../api/kubernetes/service.js';
import type { Resource } from '../../api/resource.js';
import type { Resolution, Service, ServicePort } from '../model.js';
import { sortedLabels } from './labels.js';

/** Istio's annotation that restricts a Service's visibility, comma-separated. */
export const EXPORT_TO_ANNOTATION = 'networking.istio.io/exportTo';

export function kubernetesHostname(name: string, namespace: string, domain: string): string {
  return `${name}.${namespace}.svc.${domain}`;
}

export function serviceFromKubernetes(r: Resource<'Service'>, domain: string): Service {
  const { name, namespace, annotations } = r.metadata;
  const spec = r.spec;
  const external = spec.type === 'ExternalName';
  const ports: ServicePort[] = spec.ports.map((p) => ({ name: p.name ?? '', port: p.port, targetPort: p.targetPort, protocol: portProtocol(p) }));
  const service: Service = {
    hostname: kubernetesHostname(name, namespace, domain),
    name,
    namespace,
    ports,
    source: 'kubernetes',
    resolution: resolutionOf(spec.type, spec.clusterIP),
    location: external ? 'mesh-external' : 'mesh-internal',
    addresses: spec.clusterIP === undefined || spec.clusterIP === 'None' ? [] : [spec.clusterIP],
    exportTo: exportToOf(annotations[EXPORT_TO_ANNOTATION]),
  };
  // Kubernetes: a Service without selector (or with an empty one) selects no pods; its
  // endpoints are managed by hand, outside the mesh's workloads.
  return Object.keys(spec.selector).length === 0 ? service : { ...service, selector: sortedLabels(spec.selector) };
}

/** ExternalName is resolved by DNS (Istio DNSLB); a headless Service is passthrough. */
function resolutionOf(type: string, clusterIP: string | undefined): Resolution {
  if (type === 'ExternalName') return 'dns';
  return clusterIP === 'None' ? 'passthrough' : 'static';
}

function exportToOf(annotation: string | undefined): readonly string[] {
  const list = (annotation ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  return list.length === 0 ? ['*'] : list;
}

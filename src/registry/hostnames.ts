/**
 * The names a client may use for a service: the HTTP virtual-host domains Istio gives a
 * sidecar (`generateVirtualHostDomains` and `GenerateAltVirtualHosts` in
 * `pilot/pkg/networking/core/httproute.go`; compat ref 1.0 "Host header routing"), and
 * looking a service up by hostname.
 */
import type { RegistrySnapshot, Service } from './model.js';

/**
 * The Host/`:authority` values that reach `service` from a sidecar in `clientNamespace`.
 * Ports are not added: sidecars ignore the port in host matching.
 * - Kubernetes Service, same namespace: `name`, `name.ns`, `name.ns.svc`, the FQDN.
 * - Kubernetes Service, other namespace: the same without the bare `name` (it would
 *   mean a service of the client's own namespace).
 * - ServiceEntry: the host as written.
 * - Then, in every case, each address that is a single IP (cluster IP, ServiceEntry VIP;
 *   Istio adds the VIP whatever the client's namespace, and skips CIDR ranges).
 * - A headless Kubernetes Service (passthrough) also gets `*.` + each name, for its pods'
 *   own DNS names (`pod-0.name.ns.svc...`), as Istio does.
 */
export function hostAliases(service: Service, clientNamespace: string): readonly string[] {
  const names = service.source === 'kubernetes' ? kubernetesNames(service, clientNamespace) : [service.hostname];
  const wildcards = service.source === 'kubernetes' && service.resolution === 'passthrough' ? names.map((n) => `*.${n}`) : [];
  const vips = service.addresses.filter((a) => !a.includes('/'));
  return [...names, ...wildcards, ...vips];
}

function kubernetesNames(service: Service, clientNamespace: string): string[] {
  const { name, namespace, hostname } = service;
  const qualified = [`${name}.${namespace}`, `${name}.${namespace}.svc`, hostname];
  return clientNamespace === namespace ? [name, ...qualified] : qualified;
}

/**
 * The service with `hostname`. Several ServiceEntries in different namespaces may declare
 * one host: `namespace`, when given, picks that namespace's; otherwise, or when it has
 * none, the first in snapshot order (a Kubernetes Service, then by namespace).
 */
export function findService(snapshot: RegistrySnapshot, hostname: string, namespace?: string): Service | undefined {
  let first: Service | undefined;
  for (const s of snapshot.services) {
    if (s.hostname !== hostname) continue;
    if (namespace === undefined || s.namespace === namespace) return s;
    first ??= s;
  }
  return first;
}

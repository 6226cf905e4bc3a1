/**
 * The mesh model translation reads: configuration resources and the registry, indexed
 * once per change (not per proxy). Pure data; built by `buildMesh`.
 */
import { hostMatches, MESH_GATEWAY } from '../../api/hosts.js';
import type { AnyResource, Resource } from '../../api/resource.js';
import { selects } from '../../api/common.js';
import type { Endpoint, RegistrySnapshot, Service } from '../../registry/model.js';
import { endpointsOf } from '../../registry/endpoints.js';
import { DEFAULT_TRUST_DOMAIN } from '../../core/spiffe.js';
import { DEFAULT_RETRY_BUDGET, type RetryBudget } from './retry-budget.js';

export interface MeshConfig {
  /** DNS domain of Kubernetes-style hostnames. */
  readonly domain: string;
  readonly trustDomain: string;
  /** Istio's root namespace: mesh-wide defaults live here. */
  readonly rootNamespace: string;
  /** What happens to traffic for unknown hosts (Istio default ALLOW_ANY). */
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** Trellis's rate-based retry budget for every outbound cluster (a Trellis extension). */
  readonly retryBudget: RetryBudget;
}

export const DEFAULT_MESH_CONFIG: MeshConfig = {
  domain: DEFAULT_TRUST_DOMAIN,
  trustDomain: DEFAULT_TRUST_DOMAIN,
  rootNamespace: 'istio-system',
  outboundTrafficPolicy: 'ALLOW_ANY',
  retryBudget: DEFAULT_RETRY_BUDGET,
};

export interface Mesh {
  readonly config: MeshConfig;
  readonly registry: RegistrySnapshot;
  readonly services: readonly Service[];
  /** In Istio's precedence order: oldest first (creationTimestamp), then name, namespace. */
  readonly virtualServices: readonly Resource<'VirtualService'>[];
  readonly destinationRules: readonly Resource<'DestinationRule'>[];
  readonly gateways: readonly Resource<'Gateway'>[];
  readonly sidecars: readonly Resource<'Sidecar'>[];
  /** Services by hostname (the first, when a host is declared twice). */
  readonly byHost: ReadonlyMap<string, Service>;
  /** Memoised endpoint lookup. */
  endpoints(service: Service, port: number): readonly Endpoint[];
}

/** Endpoints depend on the registry only: memoised per registry snapshot, across config changes. */
const ENDPOINTS = new WeakMap<RegistrySnapshot, Map<string, readonly Endpoint[]>>();

function endpointCache(registry: RegistrySnapshot): Map<string, readonly Endpoint[]> {
  let cache = ENDPOINTS.get(registry);
  if (cache === undefined) {
    cache = new Map();
    ENDPOINTS.set(registry, cache);
  }
  return cache;
}

function byAge(a: AnyResource, b: AnyResource): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  return ta.localeCompare(tb) || a.metadata.name.localeCompare(b.metadata.name) || a.metadata.namespace.localeCompare(b.metadata.namespace);
}

function ofKind<K extends AnyResource['kind']>(resources: readonly AnyResource[], kind: K): Resource<K>[] {
  return resources.filter((r) => r.kind === kind) as unknown as Resource<K>[];
}

export function buildMesh(resources: readonly AnyResource[], registry: RegistrySnapshot, config: MeshConfig = DEFAULT_MESH_CONFIG): Mesh {
  const cache = endpointCache(registry);
  const byHost = new Map<string, Service>();
  for (const s of registry.services) if (!byHost.has(s.hostname)) byHost.set(s.hostname, s);
  return {
    byHost,
    config,
    registry,
    services: registry.services,
    virtualServices: ofKind(resources, 'VirtualService').sort(byAge),
    destinationRules: ofKind(resources, 'DestinationRule').sort(byAge),
    gateways: ofKind(resources, 'Gateway').sort(byAge),
    sidecars: ofKind(resources, 'Sidecar').sort(byAge),
    endpoints(service, port) {
      const key = `${service.hostname}|${service.namespace}|${port}`;
      let list = cache.get(key);
      if (list === undefined) {
        list = endpointsOf(registry, service, port);
        cache.set(key, list);
      }
      return list;
    },
  };
}

/** Istio exportTo: is a resource of namespace `ns` with `exportTo` visible from `client`? */
export function visibleFrom(ns: string, exportTo: readonly string[], client: string): boolean {
  if (exportTo.length === 0) return true;
  return exportTo.some((e) => e === '*' || (e === '.' && ns === client) || e === client);
}

/**
 * The DestinationRule that applies to `host` for a client in `clientNamespace` (Istio:
 * client namespace first, then the service's namespace, then the root namespace; an exact
 * host beats a wildcard). DRs with a workloadSelector apply only to the workloads they select.
 */
export function destinationRuleFor(mesh: Mesh, host: string, serviceNamespace: string, clientNamespace: string, clientLabels: Readonly<Record<string, string>>): Resource<'DestinationRule'> | undefined {
  const candidates = mesh.destinationRules.filter((dr) => {
    if (!hostMatches(dr.spec.host, host)) return false;
    if (!visibleFrom(dr.metadata.namespace, dr.spec.exportTo, clientNamespace)) return false;
    const sel = dr.spec.workloadSelector;
    return sel === undefined || (dr.metadata.namespace === clientNamespace && selects(sel, clientLabels));
  });
  for (const ns of [clientNamespace, serviceNamespace, mesh.config.rootNamespace]) {
    const inNs = candidates.filter((dr) => dr.metadata.namespace === ns);
    const exact = inNs.find((dr) => dr.spec.host === host);
    if (exact !== undefined) return exact;
    const wildcard = inNs.sort((a, b) => b.spec.host.length - a.spec.host.length)[0];
    if (wildcard !== undefined) return wildcard;
  }
  return undefined;
}

/**
 * The VirtualService for `host` on sidecars of `clientNamespace`: bound to `mesh`, visible
 * there, oldest first. Istio does not merge VirtualServices for sidecars: one wins.
 */
export function virtualServiceFor(mesh: Mesh, host: string, clientNamespace: string): Resource<'VirtualService'> | undefined {
  let best: Resource<'VirtualService'> | undefined;
  let bestSpecificity = -1;
  for (const vs of mesh.virtualServices) {
    if (!vs.spec.gateways.includes(MESH_GATEWAY)) continue;
    if (!visibleFrom(vs.metadata.namespace, vs.spec.exportTo, clientNamespace)) continue;
    for (const h of vs.spec.hosts) {
      if (!hostMatches(h, host)) continue;
      const specificity = h === host ? 1_000 : h.length; // exact beats the longest wildcard
      if (specificity > bestSpecificity) {
        best = vs;
        bestSpecificity = specificity;
      }
    }
  }
  return best;
}

export function serviceByHost(mesh: Mesh, host: string): Service | undefined {
  return mesh.byHost.get(host);
}

/**
 * Translation: a pure function of the mesh (configuration + registry) and the requesting
 * node to Envoy v3 resources — Listener, RouteConfiguration, Cluster and
 * ClusterLoadAssignment — named as Istio names them, so config dumps look familiar.
 * No sockets, no clocks; tested without a server.
 */
import { selects } from '../../api/common.js';
import type { Cluster } from '../../xds/generated/envoy/config/cluster/v3/Cluster.js';
import type { ClusterLoadAssignment } from '../../xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js';
import type { Listener } from '../../xds/generated/envoy/config/listener/v3/Listener.js';
import type { RouteConfiguration } from '../../xds/generated/envoy/config/route/v3/RouteConfiguration.js';
import { type ClusterPlan, inboundCluster, passthroughClusters, serviceClusters } from './clusters.js';
import { listenersFor, visibleServices } from './listeners.js';
import type { Mesh } from './mesh.js';
import type { Service, ServicePort } from '../../registry/model.js';
import type { ProxyNode } from './node.js';

export interface Translation {
  readonly listeners: readonly Listener[];
  readonly routes: readonly RouteConfiguration[];
  readonly clusters: readonly Cluster[];
  readonly endpoints: readonly ClusterLoadAssignment[];
  /**
   * Clusters that routes name but that do not exist — a route to a subset no
   * DestinationRule defines. Istio sends such routes too; requests fail with 503 (NC).
   */
  readonly missingClusters: readonly string[];
}

/**
 * Cluster plans depend on the mesh, the service port, which DR applies and, through
 * locality failover, on the proxy's locality and labels: shared across proxies that agree
 * on those (all the proxies of one workload in one zone).
 */
const planCache = new WeakMap<Mesh, Map<string, ClusterPlan[]>>();

function cachedServiceClusters(mesh: Mesh, node: ProxyNode, service: Service, port: ServicePort): ClusterPlan[] {
  let cache = planCache.get(mesh);
  if (cache === undefined) {
    cache = new Map();
    planCache.set(mesh, cache);
  }
  // The DR choice depends on the client namespace (and labels only for DRs with a
  // workloadSelector, which are rare); endpoint priorities on the locality and the labels
  // (failoverPriority): key on all three.
  const { region, zone, subzone } = node.locality;
  const key = `${node.kind === 'grpc' ? 'g' : 'p'}|${node.namespace}|${JSON.stringify(node.labels)}|${region}/${zone}/${subzone}|${service.hostname}|${service.namespace}|${port.port}`;
  let plans = cache.get(key);
  if (plans === undefined) {
    plans = serviceClusters(mesh, node, service, port);
    cache.set(key, plans);
  }
  return plans;
}

/** The services (host, name, namespace) that select this sidecar's workload and target `port`. */
function inboundServices(mesh: Mesh, node: ProxyNode, port: number): { host: string; name: string; namespace: string }[] {
  const out: { host: string; name: string; namespace: string }[] = [];
  for (const s of mesh.services) {
    if (s.namespace !== node.namespace || s.selector === undefined || !selects(s.selector, node.labels)) continue;
    if (s.ports.some((p) => (typeof p.targetPort === 'number' ? p.targetPort : p.targetPort === undefined ? p.port : undefined) === port)) {
      out.push({ host: s.hostname, name: s.name, namespace: s.namespace });
    }
  }
  return out;
}

export function translate(mesh: Mesh, node: ProxyNode): Translation {
  const { listeners, routes, inboundPorts } = listenersFor(mesh, node);
  const clusters: Cluster[] = [];
  const endpoints: ClusterLoadAssignment[] = [];
  for (const service of visibleServices(mesh, node.namespace)) {
    for (const port of service.ports) {
      if (port.protocol === 'udp') continue;
      for (const plan of cachedServiceClusters(mesh, node, service, port)) {
        clusters.push(plan.cluster);
        if (plan.assignment !== undefined) endpoints.push(plan.assignment);
      }
    }
  }
  if (node.kind === 'sidecar') {
    for (const port of inboundPorts) {
      // Captured, the application listens on the port itself; without capture, where the node says.
      const app = node.interception === 'NONE' ? (node.appPorts.get(port) ?? node.appPortDefault ?? port) : port;
      clusters.push(inboundCluster(port, inboundServices(mesh, node, port), app));
    }
  }
  if (node.kind !== 'grpc') clusters.push(...passthroughClusters());
  const names = new Set(clusters.map((c) => c.name));
  const missing = [...referencedClusters(listeners, routes)].filter((c) => !names.has(c)).sort();
  return { listeners, routes, clusters, endpoints, missingClusters: missing };
}

/** Every cluster a route or a tcp_proxy names. */
export function referencedClusters(listeners: readonly Listener[], routes: readonly RouteConfiguration[]): Set<string> {
  const out = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const v of value) visit(v);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    const o = value as Record<string, unknown>;
    if (typeof o.cluster === 'string') out.add(o.cluster);
    const wc = o.weighted_clusters as { clusters?: { name?: string }[] } | undefined;
    for (const c of wc?.clusters ?? []) if (typeof c.name === 'string') out.add(c.name);
    for (const [k, v] of Object.entries(o)) if (k !== 'weighted_clusters') visit(v);
  };
  visit(listeners);
  visit(routes);
  return out;
}

/**
 * Checks a translation before it is published (go-control-plane `Snapshot.Consistent`):
 * every RDS name a listener uses exists, every EDS cluster has its assignment. Returns
 * the problems; an empty list means consistent. Missing route targets are not problems
 * (see `missingClusters`).
 */
export function consistencyProblems(t: Translation): string[] {
  const problems: string[] = [];
  const routeNames = new Set(t.routes.map((r) => r.name));
  const rds = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (value === null || typeof value !== 'object') return;
    const o = value as Record<string, unknown>;
    const name = (o.rds as { route_config_name?: string } | undefined)?.route_config_name;
    if (typeof name === 'string') rds.add(name);
    Object.values(o).forEach(visit);
  };
  visit(t.listeners);
  for (const name of rds) if (!routeNames.has(name)) problems.push(`listener uses route configuration "${name}", which does not exist`);
  const assigned = new Set(t.endpoints.map((e) => e.cluster_name));
  for (const c of t.clusters) {
    if (c.type === 'EDS' && !assigned.has(c.name)) problems.push(`EDS cluster "${c.name}" has no endpoint assignment`);
  }
  return problems;
}

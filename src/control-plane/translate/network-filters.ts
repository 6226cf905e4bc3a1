/**
 * Network filters and virtual-host helpers shared by the sidecar and gateway listeners:
 * the HTTP connection manager (with RDS or an inline route table), `tcp_proxy` to one
 * cluster or weighted clusters, and virtual-host domain lists.
 */
import type { RouteConfiguration } from '../../xds/generated/envoy/config/route/v3/RouteConfiguration.js';
import { anyOf } from '../../xds/any.js';
import { TYPE_URLS } from '../../xds/type-urls.js';
import { ADS, duration } from './envoy.js';
import { FAULT_FILTER } from './fault-injection.js';
import { destinationCluster, type RouteScope } from './http-routes.js';
import { destinationRuleFor, type Mesh, serviceByHost } from './mesh.js';
import type { ProxyNode } from './node.js';

const ROUTER_FILTER = { name: 'envoy.filters.http.router', typed_config: anyOf(TYPE_URLS.ROUTER, {}) };
const CORS_FILTER = { name: 'envoy.filters.http.cors', typed_config: anyOf(TYPE_URLS.CORS, {}) };

/** HTTP filters as Istio orders them: fault, CORS, router last (gRPC has no CORS filter). */
export function hcm(statPrefix: string, routeSpec: { rds: string } | { inline: RouteConfiguration }, grpc: boolean) {
  const common = { stat_prefix: statPrefix, http_filters: grpc ? [FAULT_FILTER, ROUTER_FILTER] : [FAULT_FILTER, CORS_FILTER, ROUTER_FILTER] };
  const spec = 'rds' in routeSpec ? { rds: { config_source: ADS, route_config_name: routeSpec.rds } } : { route_config: routeSpec.inline };
  return anyOf(TYPE_URLS.HTTP_CONNECTION_MANAGER, { ...common, ...spec });
}

export function hcmFilter(statPrefix: string, routeSpec: { rds: string } | { inline: RouteConfiguration }) {
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: hcm(statPrefix, routeSpec, false) };
}

/** A TCP/TLS route's destinations as a tcp_proxy target: one cluster, or weighted clusters. */
export function tcpTarget(scope: RouteScope, route: readonly { destination: { host: string; subset?: string; port?: number }; weight: number }[]): string | { name: string; weight: number }[] {
  const clusters = route.map((d) => ({ name: destinationCluster(scope, d.destination), weight: d.weight }));
  return clusters.length === 1 ? (clusters[0] as { name: string }).name : clusters;
}

export function tcpProxy(statPrefix: string, cluster: string | { name: string; weight: number }[], timeouts: object = {}) {
  const spec = typeof cluster === 'string' ? { cluster } : { weighted_clusters: { clusters: cluster } };
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: anyOf(TYPE_URLS.TCP_PROXY, { stat_prefix: statPrefix, ...spec, ...timeouts }) };
}

/**
 * The destination's DestinationRule `connectionPool.tcp` idle timeout and connection
 * lifetime on an outbound tcp_proxy (Istio: the rule's top-level policy; subsets and
 * port-level settings are not looked at). Envoy's idle default is 1 h.
 */
export function tcpProxyTimeouts(mesh: Mesh, node: ProxyNode, host: string): object {
  const service = serviceByHost(mesh, host);
  const tcp = destinationRuleFor(mesh, host, service?.namespace ?? node.namespace, node.namespace, node.labels)?.spec.trafficPolicy?.connectionPool?.tcp;
  const out: Record<string, unknown> = {};
  if (tcp?.idleTimeout !== undefined) out.idle_timeout = duration(tcp.idleTimeout);
  if (tcp?.maxConnectionDuration !== undefined) out.max_downstream_connection_duration = duration(tcp.maxConnectionDuration);
  return out;
}

export function dedupeDomains(used: Set<string>, domains: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of domains) {
    if (used.has(d)) continue;
    used.add(d);
    out.push(d);
  }
  return out;
}

export function withPorts(domains: readonly string[], port: number): string[] {
  return domains.flatMap((d) => [d, `${d}:${port}`]);
}

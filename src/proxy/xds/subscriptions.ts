/**
 * What the proxy subscribes to, derived from what it has accepted (Envoy's dependency
 * chain): LDS and CDS are wildcards; RDS asks for every route configuration the accepted
 * listeners' HTTP connection managers name; EDS asks for the load assignment of every
 * accepted EDS cluster. Pure functions over decoded resources (the `__Output` shapes).
 */
import { decodeAny } from '../../xds/any.js';
import type { Cluster__Output } from '../../xds/generated/envoy/config/cluster/v3/Cluster.js';
import type { FilterChain__Output } from '../../xds/generated/envoy/config/listener/v3/FilterChain.js';
import type { Listener__Output } from '../../xds/generated/envoy/config/listener/v3/Listener.js';
import type { HttpConnectionManager__Output } from '../../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.js';
import type { Any__Output } from '../../xds/generated/google/protobuf/Any.js';
import { TYPE_URLS } from '../../xds/type-urls.js';

/** Types whose empty subscription means "everything", and whose responses are full state. */
export const WILDCARD_TYPES: ReadonlySet<string> = new Set([TYPE_URLS.LISTENER, TYPE_URLS.CLUSTER]);

/**
 * The name a resource is known by: `cluster_name` for a ClusterLoadAssignment, `name`
 * for the others; '' when it has none.
 */
export function resourceName(typeUrl: string, resource: unknown): string {
  const r = resource as { name?: unknown; cluster_name?: unknown } | null;
  const name = typeUrl === TYPE_URLS.ENDPOINT ? r?.cluster_name : r?.name;
  return typeof name === 'string' ? name : '';
}

/**
 * The route configuration names (RDS) of the HTTP connection managers in `listeners`:
 * in every filter chain, the default filter chain, and the `api_listener`. Sorted, so
 * the request for them is the same whatever the listeners' order.
 */
export function routeConfigNames(listeners: Iterable<unknown>): string[] {
  const names = new Set<string>();
  for (const l of listeners as Iterable<Listener__Output>) {
    for (const chain of l?.filter_chains ?? []) addChainRoutes(chain, names);
    if (l?.default_filter_chain != null) addChainRoutes(l.default_filter_chain, names);
    addHcmRoute(l?.api_listener?.api_listener, names);
  }
  return [...names].sort();
}

function addChainRoutes(chain: FilterChain__Output, names: Set<string>): void {
  for (const filter of chain?.filters ?? []) addHcmRoute(filter?.typed_config, names);
}

function addHcmRoute(any: Any__Output | null | undefined, names: Set<string>): void {
  if (any == null || anyTypeUrl(any) !== TYPE_URLS.HTTP_CONNECTION_MANAGER) return;
  const hcm = decodeAny<HttpConnectionManager__Output>(any, TYPE_URLS.HTTP_CONNECTION_MANAGER);
  if (!hcm.ok) return; // the listener validator reports it; nothing to subscribe to
  // `route_specifier` is the oneof's virtual field (loader option `oneofs`); an inline
  // route_config or scoped routes need no RDS.
  const rds = hcm.value.route_specifier === 'rds' || hcm.value.route_specifier === undefined ? hcm.value.rds : null;
  const name = rds?.route_config_name;
  if (typeof name === 'string' && name !== '') names.add(name);
}

function anyTypeUrl(any: Any__Output): string {
  const a = any as { '@type'?: unknown; type_url?: unknown };
  const url = a['@type'] ?? a.type_url;
  return typeof url === 'string' ? url : '';
}

/** The ClusterLoadAssignment names (EDS) of the EDS clusters: `eds_cluster_config.service_name`, else the cluster's name. */
export function endpointNames(clusters: Iterable<unknown>): string[] {
  const names = new Set<string>();
  for (const c of clusters as Iterable<Cluster__Output>) {
    if (c?.type !== 'EDS') continue;
    const serviceName = c.eds_cluster_config?.service_name;
    const name = typeof serviceName === 'string' && serviceName !== '' ? serviceName : c.name;
    if (typeof name === 'string' && name !== '') names.add(name);
  }
  return [...names].sort();
}

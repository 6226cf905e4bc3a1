/**
 * LDS and RDS for each kind of client.
 * - Sidecar: `virtualOutbound` (port 15001) with a filter chain per destination port —
 *   HTTP ports go to an HTTP connection manager whose routes come from RDS, named by port
 *   as Istio names them (`"9080"`); TCP and TLS services get `tcp_proxy` chains — and
 *   `virtualInbound` (15006) with a chain per port the workload serves, to `inbound|P||`.
 * - Gateway (`router`): a listener per Gateway server port (`0.0.0.0_8080`);
 *   gateway-listeners.ts.
 * - Proxyless gRPC: `api_listener` listeners named `<fqdn>:<port>` with RDS of the same
 *   name, so `xds:///reviews.default.svc.cluster.local:9080` resolves (Istio grpcgen).
 */
import { selects } from '../../api/common.js';
import { MESH_GATEWAY } from '../../api/hosts.js';
import type { Service } from '../../registry/model.js';
import { hostAliases } from '../../registry/hostnames.js';
import type { Listener } from '../../xds/generated/envoy/config/listener/v3/Listener.js';
import type { FilterChain } from '../../xds/generated/envoy/config/listener/v3/FilterChain.js';
import type { RouteConfiguration } from '../../xds/generated/envoy/config/route/v3/RouteConfiguration.js';
import type { VirtualHost } from '../../xds/generated/envoy/config/route/v3/VirtualHost.js';
import type { Route } from '../../xds/generated/envoy/config/route/v3/Route.js';
import { anyOf } from '../../xds/any.js';
import { TYPE_URLS } from '../../xds/type-urls.js';
import { BLACKHOLE_CLUSTER, duration, inboundClusterName, isHttpProtocol, outboundClusterName, PASSTHROUGH_CLUSTER, socketAddress } from './envoy.js';
import { gatewayListeners } from './gateway-listeners.js';
import { defaultRoute, type RouteScope, virtualServiceRoutes } from './http-routes.js';
import { type Mesh, virtualServiceFor, visibleFrom } from './mesh.js';
import { dedupeDomains, hcm, hcmFilter, tcpProxy, tcpProxyTimeouts, tcpTarget, withPorts } from './network-filters.js';
import type { ProxyNode } from './node.js';

export interface ListenerPlan {
  readonly listeners: Listener[];
  readonly routes: RouteConfiguration[];
  /** Inbound ports of a sidecar (their clusters are added by the caller). */
  readonly inboundPorts: number[];
}

/** Traffic to unknown hosts (Istio's allow_any route): no timeouts, no retries. */
const NO_TIMEOUTS = { timeout: duration(0), max_stream_duration: { grpc_timeout_header_max: duration(0) } };

/**
 * Inbound: no timeout, gRPC deadlines uncapped, and 2 retries of requests reset before
 * reaching the application (Istio 1.24+ BuildDefaultHTTPInboundRoute).
 */
const INBOUND_ROUTE_OPTIONS = {
  timeout: duration(0),
  max_stream_duration: { max_stream_duration: duration(0), grpc_timeout_header_max: duration(0) },
  retry_policy: { retry_on: 'reset-before-request', num_retries: { value: 2 } },
};

/** Services a proxy in `namespace` may address (Istio exportTo, default everywhere). */
export function visibleServices(mesh: Mesh, namespace: string): Service[] {
  return mesh.services.filter((s) => visibleFrom(s.namespace, s.exportTo, namespace));
}

function serviceRoutes(scope: RouteScope, service: Service): Route[] {
  const vs = virtualServiceFor(scope.mesh, service.hostname, scope.node.namespace);
  if (vs === undefined) return [defaultRoute(scope, service.hostname)];
  return virtualServiceRoutes(vs, scope);
}

// ---- sidecar ----

function sidecarRouteConfig(mesh: Mesh, node: ProxyNode, port: number, services: readonly Service[]): RouteConfiguration {
  const scope: RouteScope = { mesh, node, gateway: MESH_GATEWAY, port, grpc: false };
  const used = new Set<string>();
  const virtualHosts: VirtualHost[] = [];
  for (const service of services) {
    const domains = dedupeDomains(used, withPorts(hostAliases(service, node.namespace), port));
    if (domains.length === 0) continue;
    virtualHosts.push({ name: `${service.hostname}:${port}`, domains, routes: serviceRoutes(scope, service) });
  }
  virtualHosts.push(
    mesh.config.outboundTrafficPolicy === 'ALLOW_ANY'
      ? { name: 'allow_any', domains: ['*'], routes: [{ name: 'allow_any', match: { prefix: '/' }, route: { cluster: PASSTHROUGH_CLUSTER, ...NO_TIMEOUTS } }] }
      : { name: 'block_all', domains: ['*'], routes: [{ name: 'block_all', match: { prefix: '/' }, direct_response: { status: 502 } }] },
  );
  return { name: String(port), virtual_hosts: virtualHosts, validate_clusters: { value: false } };
}

function tcpChains(mesh: Mesh, node: ProxyNode, service: Service, port: number, tls: boolean): FilterChain[] {
  const vs = virtualServiceFor(mesh, service.hostname, node.namespace);
  const scope: RouteScope = { mesh, node, gateway: MESH_GATEWAY, port, grpc: false };
  const own = outboundClusterName(port, '', service.hostname);
  const prefixRanges = service.addresses.filter((a) => !a.includes('/')).map((a) => ({ address_prefix: a, prefix_len: { value: a.includes(':') ? 128 : 32 } }));
  const base = { destination_port: { value: port }, ...(prefixRanges.length > 0 ? { prefix_ranges: prefixRanges } : {}) };
  const timeouts = tcpProxyTimeouts(mesh, node, service.hostname);
  const chains: FilterChain[] = [];
  if (tls) {
    for (const route of vs?.spec.tls ?? []) {
      const m = route.match.find((x) => (x.port === undefined || x.port === port) && (x.gateways ?? vs?.spec.gateways ?? []).includes(MESH_GATEWAY));
      if (m === undefined) continue;
      chains.push({ name: `${own}|sni`, filter_chain_match: { ...base, server_names: [...m.sniHosts] }, filters: [tcpProxy(own, tcpTarget(scope, route.route), timeouts)] });
    }
  }
  const tcpRoute = (vs?.spec.tcp ?? []).find((r) => r.match.length === 0 || r.match.some((m) => (m.port === undefined || m.port === port) && (m.sourceLabels === undefined || selects(m.sourceLabels, node.labels))));
  const target = tcpRoute === undefined ? own : tcpTarget(scope, tcpRoute.route);
  chains.push({ name: own, filter_chain_match: base, filters: [tcpProxy(own, target, timeouts)] });
  return chains;
}

function sidecarListeners(mesh: Mesh, node: ProxyNode): ListenerPlan {
  const services = visibleServices(mesh, node.namespace);
  const httpPorts = new Map<number, Service[]>();
  const chains: FilterChain[] = [];
  for (const service of services) {
    for (const p of service.ports) {
      if (isHttpProtocol(p.protocol) || p.protocol === 'auto') {
        const list = httpPorts.get(p.port) ?? [];
        list.push(service);
        httpPorts.set(p.port, list);
      } else if (p.protocol !== 'udp') {
        chains.push(...tcpChains(mesh, node, service, p.port, p.protocol === 'tls' || p.protocol === 'https'));
      }
    }
  }
  const routes: RouteConfiguration[] = [];
  for (const [port, list] of [...httpPorts.entries()].sort(([a], [b]) => a - b)) {
    routes.push(sidecarRouteConfig(mesh, node, port, list));
    chains.push({ name: `0.0.0.0_${port}`, filter_chain_match: { destination_port: { value: port } }, filters: [hcmFilter(`outbound_0.0.0.0_${port}`, { rds: String(port) })] });
  }
  const fallback = mesh.config.outboundTrafficPolicy === 'ALLOW_ANY' ? PASSTHROUGH_CLUSTER : BLACKHOLE_CLUSTER;
  const outbound: Listener = {
    name: 'virtualOutbound',
    address: socketAddress('0.0.0.0', node.outboundPort),
    traffic_direction: 'OUTBOUND',
    use_original_dst: { value: true },
    listener_filters: [
      { name: 'envoy.filters.listener.original_dst', typed_config: anyOf(TYPE_URLS.ORIGINAL_DST, {}) },
      { name: 'envoy.filters.listener.tls_inspector', typed_config: anyOf(TYPE_URLS.TLS_INSPECTOR, {}) },
      { name: 'envoy.filters.listener.http_inspector', typed_config: anyOf(TYPE_URLS.HTTP_INSPECTOR, {}) },
    ],
    filter_chains: chains,
    default_filter_chain: { name: fallback, filters: [tcpProxy(fallback, fallback)] },
  };
  const inbound = inboundListener(mesh, node);
  if (node.interception === 'NONE') return { listeners: [outbound, ...inbound.perPort], routes, inboundPorts: inbound.ports };
  return { listeners: [outbound, inbound.listener], routes, inboundPorts: inbound.ports };
}

/** The ports this workload serves: target ports of the services that select it. */
function inboundListener(mesh: Mesh, node: ProxyNode): { listener: Listener; perPort: Listener[]; ports: number[] } {
  const ports = new Map<number, boolean>(); // port -> http?
  for (const s of mesh.services) {
    if (s.namespace !== node.namespace || s.selector === undefined || !selects(s.selector, node.labels)) continue;
    for (const p of s.ports) {
      const target = typeof p.targetPort === 'number' ? p.targetPort : p.targetPort === undefined ? p.port : undefined;
      if (target === undefined) continue; // a named port: the workload's port map is not known here
      ports.set(target, (ports.get(target) ?? false) || isHttpProtocol(p.protocol) || p.protocol === 'auto');
    }
  }
  const chains: FilterChain[] = [...ports.entries()].sort(([a], [b]) => a - b).map(([port, http]) => {
    const cluster = inboundClusterName(port);
    const filter = http
      ? hcmFilter(`inbound_0.0.0.0_${port}`, {
          inline: {
            name: cluster,
            virtual_hosts: [{ name: `inbound|http|${port}`, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster, ...INBOUND_ROUTE_OPTIONS } }] }],
            validate_clusters: { value: false },
          },
        })
      : tcpProxy(cluster, cluster);
    return { name: cluster, filter_chain_match: { destination_port: { value: port } }, filters: [filter] };
  });
  // Without capture (INTERCEPTION_MODE NONE), a listener of its own per port on the
  // workload's address, as Istio builds for a Sidecar's `ingress` listeners.
  const ip = node.ips[0] ?? '0.0.0.0';
  const perPort: Listener[] = chains.map((c) => {
    const port = c.filter_chain_match?.destination_port?.value as number;
    return { name: `${ip}_${port}`, address: socketAddress(ip, port), traffic_direction: 'INBOUND', filter_chains: [{ name: c.name, filters: c.filters }] };
  });
  return {
    listener: {
      name: 'virtualInbound',
      address: socketAddress('0.0.0.0', node.inboundPort),
      traffic_direction: 'INBOUND',
      listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: anyOf(TYPE_URLS.ORIGINAL_DST, {}) }],
      filter_chains: chains,
    },
    perPort,
    ports: [...ports.keys()].sort((a, b) => a - b),
  };
}

// ---- proxyless gRPC ----

function grpcListeners(mesh: Mesh, node: ProxyNode): ListenerPlan {
  const listeners: Listener[] = [];
  const routes: RouteConfiguration[] = [];
  for (const service of visibleServices(mesh, node.namespace)) {
    for (const p of service.ports) {
      if (!isHttpProtocol(p.protocol) && p.protocol !== 'auto') continue;
      const name = `${service.hostname}:${p.port}`;
      const scope: RouteScope = { mesh, node, gateway: MESH_GATEWAY, port: p.port, grpc: true };
      listeners.push({ name, api_listener: { api_listener: hcm(name, { rds: name }, true) } });
      const domains = [...new Set([name, ...withPorts(hostAliases(service, node.namespace), p.port)])];
      routes.push({ name, virtual_hosts: [{ name, domains, routes: serviceRoutes(scope, service) }] });
    }
  }
  return { listeners, routes, inboundPorts: [] };
}

export function listenersFor(mesh: Mesh, node: ProxyNode): ListenerPlan {
  switch (node.kind) {
    case 'sidecar':
      return sidecarListeners(mesh, node);
    case 'router':
      return { ...gatewayListeners(mesh, node), inboundPorts: [] };
    case 'grpc':
      return grpcListeners(mesh, node);
  }
}

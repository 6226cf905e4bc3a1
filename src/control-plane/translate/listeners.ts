/**
 * LDS and RDS for each kind of client.
 * - Sidecar: `virtualOutbound` (port 15001) with a filter chain per destination port —
 *   HTTP ports go to an HTTP connection manager whose routes come from RDS, named by port
 *   as Istio names them (`"9080"`); TCP and TLS services get `tcp_proxy` chains — and
 *   `virtualInbound` (15006) with a chain per port the workload serves, to `inbound|P||`.
 * - Gateway (`router`): a listener per Gateway server port (`0.0.0.0_8080`) with routes
 *   `http.8080` from the VirtualServices bound to the Gateway (merged, as Istio merges
 *   them on gateways).
 * - Proxyless gRPC: `api_listener` listeners named `<fqdn>:<port>` with RDS of the same
 *   name, so `xds:///reviews.default.svc.cluster.local:9080` resolves (Istio grpcgen).
 */
import { selects } from '../../api/common.js';
import { hostMatches, MESH_GATEWAY } from '../../api/hosts.js';
import type { Resource } from '../../api/resource.js';
import type { GatewayServer } from '../../api/networking/gateway.js';
import type { Service } from '../../registry/model.js';
import { hostAliases } from '../../registry/hostnames.js';
import type { Listener } from '../../xds/generated/envoy/config/listener/v3/Listener.js';
import type { FilterChain } from '../../xds/generated/envoy/config/listener/v3/FilterChain.js';
import type { RouteConfiguration } from '../../xds/generated/envoy/config/route/v3/RouteConfiguration.js';
import type { VirtualHost } from '../../xds/generated/envoy/config/route/v3/VirtualHost.js';
import type { Route } from '../../xds/generated/envoy/config/route/v3/Route.js';
import { anyOf } from '../../xds/any.js';
import { TYPE_URLS } from '../../xds/type-urls.js';
import { ADS, BLACKHOLE_CLUSTER, duration, inboundClusterName, isHttpProtocol, outboundClusterName, PASSTHROUGH_CLUSTER, socketAddress } from './envoy.js';
import { FAULT_FILTER } from './fault-injection.js';
import { defaultRoute, destinationCluster, type RouteScope, virtualServiceRoutes } from './http-routes.js';
import { destinationRuleFor, type Mesh, serviceByHost, virtualServiceFor, visibleFrom } from './mesh.js';
import type { ProxyNode } from './node.js';

export interface ListenerPlan {
  readonly listeners: Listener[];
  readonly routes: RouteConfiguration[];
  /** Inbound ports of a sidecar (their clusters are added by the caller). */
  readonly inboundPorts: number[];
}

const ROUTER_FILTER = { name: 'envoy.filters.http.router', typed_config: anyOf(TYPE_URLS.ROUTER, {}) };
const CORS_FILTER = { name: 'envoy.filters.http.cors', typed_config: anyOf(TYPE_URLS.CORS, {}) };

/** HTTP filters as Istio orders them: fault, CORS, router last (gRPC has no CORS filter). */
function hcm(statPrefix: string, routeSpec: { rds: string } | { inline: RouteConfiguration }, grpc: boolean) {
  const common = { stat_prefix: statPrefix, http_filters: grpc ? [FAULT_FILTER, ROUTER_FILTER] : [FAULT_FILTER, CORS_FILTER, ROUTER_FILTER] };
  const spec = 'rds' in routeSpec ? { rds: { config_source: ADS, route_config_name: routeSpec.rds } } : { route_config: routeSpec.inline };
  return anyOf(TYPE_URLS.HTTP_CONNECTION_MANAGER, { ...common, ...spec });
}

function hcmFilter(statPrefix: string, routeSpec: { rds: string } | { inline: RouteConfiguration }) {
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: hcm(statPrefix, routeSpec, false) };
}

/** A TCP/TLS route's destinations as a tcp_proxy target: one cluster, or weighted clusters. */
function tcpTarget(scope: RouteScope, route: readonly { destination: { host: string; subset?: string; port?: number }; weight: number }[]): string | { name: string; weight: number }[] {
  const clusters = route.map((d) => ({ name: destinationCluster(scope, d.destination), weight: d.weight }));
  return clusters.length === 1 ? (clusters[0] as { name: string }).name : clusters;
}

function tcpProxy(statPrefix: string, cluster: string | { name: string; weight: number }[], timeouts: object = {}) {
  const spec = typeof cluster === 'string' ? { cluster } : { weighted_clusters: { clusters: cluster } };
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: anyOf(TYPE_URLS.TCP_PROXY, { stat_prefix: statPrefix, ...spec, ...timeouts }) };
}

/**
 * The destination's DestinationRule `connectionPool.tcp` idle timeout and connection
 * lifetime on an outbound tcp_proxy (Istio: the rule's top-level policy; subsets and
 * port-level settings are not looked at). Envoy's idle default is 1 h.
 */
function tcpProxyTimeouts(mesh: Mesh, node: ProxyNode, host: string): object {
  const service = serviceByHost(mesh, host);
  const tcp = destinationRuleFor(mesh, host, service?.namespace ?? node.namespace, node.namespace, node.labels)?.spec.trafficPolicy?.connectionPool?.tcp;
  const out: Record<string, unknown> = {};
  if (tcp?.idleTimeout !== undefined) out.idle_timeout = duration(tcp.idleTimeout);
  if (tcp?.maxConnectionDuration !== undefined) out.max_downstream_connection_duration = duration(tcp.maxConnectionDuration);
  return out;
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

function dedupeDomains(used: Set<string>, domains: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of domains) {
    if (used.has(d)) continue;
    used.add(d);
    out.push(d);
  }
  return out;
}

function withPorts(domains: readonly string[], port: number): string[] {
  return domains.flatMap((d) => [d, `${d}:${port}`]);
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

// ---- gateway ----

/** Gateway server hosts are `[namespace/]host`; does a VirtualService of `vsNamespace` with `host` fit? */
function serverAccepts(server: GatewayServer, gatewayNamespace: string, vsNamespace: string, host: string): boolean {
  return server.hosts.some((h) => {
    const slash = h.indexOf('/');
    const ns = slash >= 0 ? h.slice(0, slash) : '*';
    const name = slash >= 0 ? h.slice(slash + 1) : h;
    if (ns !== '*' && !(ns === '.' ? vsNamespace === gatewayNamespace : ns === vsNamespace)) return false;
    return hostMatches(name, host) || hostMatches(host, name);
  });
}

function isCatchAll(r: Route): boolean {
  const m = r.match ?? {};
  return m.prefix === '/' && (m.headers ?? []).length === 0 && (m.query_parameters ?? []).length === 0;
}

function gatewayListeners(mesh: Mesh, node: ProxyNode): ListenerPlan {
  const gateways = mesh.gateways.filter((gw) => selects(gw.spec.selector, node.labels));
  const byPort = new Map<number, { gw: Resource<'Gateway'>; server: GatewayServer }[]>();
  for (const gw of gateways) {
    for (const server of gw.spec.servers) {
      const list = byPort.get(server.port.number) ?? [];
      list.push({ gw, server });
      byPort.set(server.port.number, list);
    }
  }
  const listeners: Listener[] = [];
  const routes: RouteConfiguration[] = [];
  for (const [port, servers] of [...byPort.entries()].sort(([a], [b]) => a - b)) {
    const protocol = servers[0]?.server.port.protocol ?? 'HTTP';
    const name = `0.0.0.0_${port}`;
    if (protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-WEB') {
      routes.push(gatewayRouteConfig(mesh, node, port, servers));
      listeners.push({ name, address: socketAddress('0.0.0.0', port), traffic_direction: 'OUTBOUND', filter_chains: [{ filters: [hcmFilter(`outbound_0.0.0.0_${port}`, { rds: `http.${port}` })] }] });
    } else if (protocol === 'TCP' || protocol === 'TLS') {
      const tls = protocol === 'TLS';
      // SNI routing (TLS passthrough) needs the ClientHello read first, as in Envoy.
      const inspect = tls ? { listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: anyOf(TYPE_URLS.TLS_INSPECTOR, {}) }] } : {};
      listeners.push({ name, address: socketAddress('0.0.0.0', port), traffic_direction: 'OUTBOUND', ...inspect, filter_chains: gatewayTcpChains(mesh, node, port, servers, tls) });
    }
    // HTTPS termination needs gateway TLS (certificates); it comes with the gateway-TLS work.
  }
  return { listeners, routes, inboundPorts: [] };
}

function boundVirtualServices(mesh: Mesh, ref: string): Resource<'VirtualService'>[] {
  return mesh.virtualServices.filter((vs) => vs.spec.gateways.includes(ref) || vs.spec.http.some((r) => r.match.some((m) => m.gateways?.includes(ref))));
}

function gatewayRouteConfig(mesh: Mesh, node: ProxyNode, port: number, servers: readonly { gw: Resource<'Gateway'>; server: GatewayServer }[]): RouteConfiguration {
  const hosts = new Map<string, Route[]>();
  for (const { gw, server } of servers) {
    const ref = `${gw.metadata.namespace}/${gw.metadata.name}`;
    const scope: RouteScope = { mesh, node, gateway: ref, port, grpc: false };
    for (const vs of boundVirtualServices(mesh, ref)) {
      if (!visibleFrom(vs.metadata.namespace, vs.spec.exportTo, gw.metadata.namespace)) continue;
      const vsRoutes = virtualServiceRoutes(vs, scope);
      for (const host of vs.spec.hosts) {
        if (!serverAccepts(server, gw.metadata.namespace, vs.metadata.namespace, host)) continue;
        hosts.set(host, [...(hosts.get(host) ?? []), ...vsRoutes]);
      }
    }
  }
  const used = new Set<string>();
  const virtualHosts: VirtualHost[] = [];
  for (const [host, list] of [...hosts.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const domains = dedupeDomains(used, host === '*' ? ['*'] : withPorts([host], port));
    if (domains.length === 0) continue;
    // Merged VirtualServices keep their own order; catch-all routes go last (Istio).
    const ordered = [...list.filter((r) => !isCatchAll(r)), ...list.filter(isCatchAll)];
    virtualHosts.push({ name: `${host}:${port}`, domains, routes: ordered });
  }
  return { name: `http.${port}`, virtual_hosts: virtualHosts, validate_clusters: { value: false } };
}

function gatewayTcpChains(mesh: Mesh, node: ProxyNode, port: number, servers: readonly { gw: Resource<'Gateway'>; server: GatewayServer }[], tls: boolean): FilterChain[] {
  const chains: FilterChain[] = [];
  for (const { gw } of servers) {
    const ref = `${gw.metadata.namespace}/${gw.metadata.name}`;
    const scope: RouteScope = { mesh, node, gateway: ref, port, grpc: false };
    for (const vs of mesh.virtualServices.filter((v) => v.spec.gateways.includes(ref))) {
      const routes = tls ? vs.spec.tls : vs.spec.tcp;
      for (const route of routes) {
        const m = route.match.find((x) => (x.port === undefined || x.port === port) && (x.gateways ?? vs.spec.gateways).includes(ref));
        if (route.match.length > 0 && m === undefined) continue;
        const target = tcpTarget(scope, route.route);
        const sni = tls && m !== undefined && 'sniHosts' in m ? { server_names: [...(m as { sniHosts: readonly string[] }).sniHosts] } : {};
        const timeouts = tcpProxyTimeouts(mesh, node, route.route[0]?.destination.host ?? '');
        chains.push({ name: `${vs.metadata.namespace}/${vs.metadata.name}`, filter_chain_match: sni, filters: [tcpProxy(`outbound_0.0.0.0_${port}`, target, timeouts)] });
      }
    }
  }
  return chains;
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
      return gatewayListeners(mesh, node);
    case 'grpc':
      return grpcListeners(mesh, node);
  }
}

/**
 * LDS and RDS for a gateway (`router`): a listener per Gateway server port
 * (`0.0.0.0_8443`), built from every server on that port of the Gateways that select the
 * node.
 *
 * - HTTP ports: one HTTP connection manager with routes `http.<port>` from the
 *   VirtualServices bound to those Gateways (merged, as Istio merges them on gateways); an
 *   HTTP server with `tls.httpsRedirect` makes its virtual hosts `require_tls: ALL`.
 * - HTTPS and TLS ports (TLS inspector first): a filter chain per terminating server
 *   (SIMPLE, MUTUAL, OPTIONAL_MUTUAL), matched on the server's hosts as SNI, with a
 *   DownstreamTlsContext (tls-context.ts) — HTTPS servers to an HTTP connection manager
 *   with routes of their own, `https.<port>.<port name>.<gateway>.<namespace>` (Istio's
 *   name), TLS servers to the `tcp_proxy` of the first matching VirtualService `tcp` route;
 *   PASSTHROUGH servers route on SNI with the VirtualServices' `tls` routes, without
 *   terminating. Several HTTPS servers on one port (different hosts and certificates) give
 *   several chains, as in Istio.
 * - TCP ports: `tcp_proxy` chains from the VirtualServices' `tcp` routes.
 */
import { selects } from '../../api/common.js';
import { hostMatches } from '../../api/hosts.js';
import type { Resource } from '../../api/resource.js';
import type { GatewayServer } from '../../api/networking/gateway.js';
import type { Listener } from '../../xds/generated/envoy/config/listener/v3/Listener.js';
import type { FilterChain } from '../../xds/generated/envoy/config/listener/v3/FilterChain.js';
import type { RouteConfiguration } from '../../xds/generated/envoy/config/route/v3/RouteConfiguration.js';
import type { VirtualHost } from '../../xds/generated/envoy/config/route/v3/VirtualHost.js';
import type { Route } from '../../xds/generated/envoy/config/route/v3/Route.js';
import { anyOf } from '../../xds/any.js';
import { TYPE_URLS } from '../../xds/type-urls.js';
import { socketAddress } from './envoy.js';
import { type RouteScope, virtualServiceRoutes } from './http-routes.js';
import { type Mesh, visibleFrom } from './mesh.js';
import { dedupeDomains, hcmFilter, tcpProxy, tcpProxyTimeouts, tcpTarget, withPorts } from './network-filters.js';
import type { ProxyNode } from './node.js';
import { downstreamTransportSocket, TLS_APPLICATION } from './tls-context.js';

interface ServerRef {
  readonly gw: Resource<'Gateway'>;
  readonly server: GatewayServer;
}

export interface GatewayPlan {
  readonly listeners: Listener[];
  readonly routes: RouteConfiguration[];
}

const TLS_INSPECTOR = { name: 'envoy.filters.listener.tls_inspector', typed_config: anyOf(TYPE_URLS.TLS_INSPECTOR, {}) };

function refOf(gw: Resource<'Gateway'>): string {
  return `${gw.metadata.namespace}/${gw.metadata.name}`;
}

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

/** The server's hosts as SNI names (without the `ns/` part); none — match any — when one is `*`. */
function serverNames(server: GatewayServer): string[] {
  const names = server.hosts.map((h) => h.slice(h.indexOf('/') + 1));
  return names.includes('*') ? [] : [...new Set(names)];
}

function isCatchAll(r: Route): boolean {
  const m = r.match ?? {};
  return m.prefix === '/' && (m.headers ?? []).length === 0 && (m.query_parameters ?? []).length === 0;
}

function isHttpServerProtocol(protocol: string): boolean {
  return protocol === 'HTTP' || protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-WEB';
}

export function gatewayListeners(mesh: Mesh, node: ProxyNode): GatewayPlan {
  const gateways = mesh.gateways.filter((gw) => selects(gw.spec.selector, node.labels));
  const byPort = new Map<number, ServerRef[]>();
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
    const base = { name, address: socketAddress('0.0.0.0', port), traffic_direction: 'OUTBOUND' as const };
    if (isHttpServerProtocol(protocol)) {
      routes.push(gatewayRouteConfig(mesh, node, port, servers, `http.${port}`));
      listeners.push({ ...base, filter_chains: [{ filters: [hcmFilter(`outbound_0.0.0.0_${port}`, { rds: `http.${port}` })] }] });
    } else if (protocol === 'TCP') {
      listeners.push({ ...base, filter_chains: gatewayTcpChains(mesh, node, port, uniqueGateways(servers), false) });
    } else if (protocol === 'TLS' || protocol === 'HTTPS') {
      // SNI matching (and termination) needs the ClientHello read first, as in Envoy.
      const secure = secureChains(mesh, node, port, servers);
      routes.push(...secure.routes);
      listeners.push({ ...base, listener_filters: [TLS_INSPECTOR], filter_chains: secure.chains });
    }
  }
  return { listeners, routes };
}

function uniqueGateways(servers: readonly ServerRef[]): Resource<'Gateway'>[] {
  return [...new Set(servers.map((s) => s.gw))];
}

/**
 * The chains of an HTTPS or TLS port: one per terminating server, then the passthrough
 * servers' SNI routes. A server whose TLS is not translated yet (ISTIO_MUTUAL,
 * credentialName, AUTO_PASSTHROUGH) gets no chain; coverage.ts reports it.
 */
function secureChains(mesh: Mesh, node: ProxyNode, port: number, servers: readonly ServerRef[]): { chains: FilterChain[]; routes: RouteConfiguration[] } {
  const chains: FilterChain[] = [];
  const routes: RouteConfiguration[] = [];
  const passthrough: Resource<'Gateway'>[] = [];
  const matched = new Set<string>();
  for (const ref of servers) {
    const { gw, server } = ref;
    const mode = server.tls?.mode ?? 'PASSTHROUGH';
    if (mode === 'PASSTHROUGH') {
      if (!passthrough.includes(gw)) passthrough.push(gw);
      continue;
    }
    const http = server.port.protocol === 'HTTPS';
    const socket = server.tls === undefined ? undefined : downstreamTransportSocket(server.tls, http ? TLS_APPLICATION.http : TLS_APPLICATION.none);
    if (socket === undefined) continue;
    const names = serverNames(server);
    // Two chains with the same match are refused (by Envoy too): the first server wins.
    const key = names.join(',');
    if (matched.has(key)) continue;
    let filter;
    if (http) {
      const rds = `https.${port}.${server.port.name}.${gw.metadata.name}.${gw.metadata.namespace}`;
      routes.push(gatewayRouteConfig(mesh, node, port, [ref], rds));
      filter = hcmFilter(`outbound_0.0.0.0_${port}`, { rds });
    } else {
      filter = terminatedTcpProxy(mesh, node, port, ref);
      if (filter === undefined) continue;
    }
    matched.add(key);
    const match = names.length > 0 ? { filter_chain_match: { server_names: names } } : {};
    chains.push({ name: `${refOf(gw)}/${server.port.name}`, ...match, transport_socket: socket, filters: [filter] });
  }
  chains.push(...gatewayTcpChains(mesh, node, port, passthrough, true));
  return { chains, routes };
}

function boundVirtualServices(mesh: Mesh, ref: string): Resource<'VirtualService'>[] {
  return mesh.virtualServices.filter((vs) => vs.spec.gateways.includes(ref) || vs.spec.http.some((r) => r.match.some((m) => m.gateways?.includes(ref))));
}

function gatewayRouteConfig(mesh: Mesh, node: ProxyNode, port: number, servers: readonly ServerRef[], name: string): RouteConfiguration {
  const hosts = new Map<string, Route[]>();
  const redirected = new Set<string>();
  for (const { gw, server } of servers) {
    const ref = refOf(gw);
    const scope: RouteScope = { mesh, node, gateway: ref, port, grpc: false };
    for (const vs of boundVirtualServices(mesh, ref)) {
      if (!visibleFrom(vs.metadata.namespace, vs.spec.exportTo, gw.metadata.namespace)) continue;
      const vsRoutes = virtualServiceRoutes(vs, scope);
      for (const host of vs.spec.hosts) {
        if (!serverAccepts(server, gw.metadata.namespace, vs.metadata.namespace, host)) continue;
        hosts.set(host, [...(hosts.get(host) ?? []), ...vsRoutes]);
        if (server.tls?.httpsRedirect === true) redirected.add(host);
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
    const vh: VirtualHost = { name: `${host}:${port}`, domains, routes: ordered };
    // httpsRedirect: the proxy answers plain-text requests with a 301 to https (Envoy).
    if (redirected.has(host)) vh.require_tls = 'ALL';
    virtualHosts.push(vh);
  }
  return { name, virtual_hosts: virtualHosts, validate_clusters: { value: false } };
}

/**
 * Terminated TLS on a TLS server: the first `tcp` route, of the VirtualServices bound to
 * the gateway whose hosts the server accepts, that matches the port (Istio
 * `buildGatewayNetworkFiltersFromTCPRoutes`). Undefined when none does: no chain.
 */
function terminatedTcpProxy(mesh: Mesh, node: ProxyNode, port: number, { gw, server }: ServerRef) {
  const ref = refOf(gw);
  const scope: RouteScope = { mesh, node, gateway: ref, port, grpc: false };
  for (const vs of mesh.virtualServices) {
    if (!vs.spec.gateways.includes(ref) || !visibleFrom(vs.metadata.namespace, vs.spec.exportTo, gw.metadata.namespace)) continue;
    if (!vs.spec.hosts.some((h) => serverAccepts(server, gw.metadata.namespace, vs.metadata.namespace, h))) continue;
    const route = vs.spec.tcp.find((r) => r.match.length === 0 || r.match.some((m) => (m.port === undefined || m.port === port) && (m.gateways ?? vs.spec.gateways).includes(ref)));
    if (route === undefined) continue;
    const timeouts = tcpProxyTimeouts(mesh, node, route.route[0]?.destination.host ?? '');
    return tcpProxy(`outbound_0.0.0.0_${port}`, tcpTarget(scope, route.route), timeouts);
  }
  return undefined;
}

/** TCP routes (`tls` false) or TLS passthrough routes on SNI (`tls` true) of the gateways' VirtualServices. */
function gatewayTcpChains(mesh: Mesh, node: ProxyNode, port: number, gateways: readonly Resource<'Gateway'>[], tls: boolean): FilterChain[] {
  const chains: FilterChain[] = [];
  for (const gw of gateways) {
    const ref = refOf(gw);
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

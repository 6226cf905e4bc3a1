/**
 * Listeners at run time: filter chains matched as Envoy matches them — destination port
 * first (an exact port beats no port), then server name (SNI), then application
 * protocol — each either an HTTP connection manager (routes from RDS, or inline) or a
 * TCP proxy to a cluster. On the outbound listener used as an HTTP proxy, the
 * destination port comes from each request (its Host or absolute URI), not the socket.
 */
import type { Listener__Output } from '../../xds/generated/envoy/config/listener/v3/Listener.js';
import type { FilterChain__Output } from '../../xds/generated/envoy/config/listener/v3/FilterChain.js';
import type { RouteConfiguration__Output } from '../../xds/generated/envoy/config/route/v3/RouteConfiguration.js';
import { TYPE_URLS } from '../../xds/type-urls.js';
import { RouteTable } from '../routing/route-table.js';
import { type DownstreamTls, downstreamTlsOf } from '../tls/tls-context.js';
import { unpack } from './unpack.js';

export interface HttpChain {
  readonly kind: 'http';
  readonly name: string;
  readonly statPrefix: string;
  /** RDS name, or null with `inline` set. */
  readonly rds: string | null;
  readonly inline: RouteTable | null;
  /** The chain's DownstreamTlsContext: TLS is terminated before the HTTP connection manager; null for plaintext. */
  readonly tls: DownstreamTls | null;
}

export interface TcpChain {
  readonly kind: 'tcp';
  readonly name: string;
  readonly statPrefix: string;
  readonly clusters: readonly { readonly name: string; readonly weight: number }[];
  /** The chain's DownstreamTlsContext: TLS is terminated before proxying the bytes; null for plaintext. */
  readonly tls: DownstreamTls | null;
}

export type ChainAction = HttpChain | TcpChain;

interface ChainMatch {
  readonly port: number | null;
  readonly serverNames: readonly string[] | null;
  readonly alpn: readonly string[] | null;
  readonly action: ChainAction;
}

export interface ListenerRuntime {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly direction: string;
  readonly chains: readonly ChainMatch[];
  readonly defaultChain: ChainAction | null;
}

/**
 * The chain's action; throws when its TLS context cannot be compiled (bad certificate
 * file, SDS), naming the chain and field (the Listener is NACKed).
 */
function chainAction(chain: FilterChain__Output, path: string): ChainAction | undefined {
  const at = `${path}${chain.name === '' ? '' : ` "${chain.name}"`}.transport_socket`;
  const tls = downstreamTlsOf(chain.transport_socket, at);
  for (const f of chain.filters) {
    const cfg = unpack(f.typed_config);
    if (cfg === undefined) continue;
    if (cfg.type === TYPE_URLS.HTTP_CONNECTION_MANAGER) {
      const v = cfg.value as { stat_prefix?: string; rds?: { route_config_name?: string } | null; route_config?: RouteConfiguration__Output | null };
      const inline = v.route_config != null ? new RouteTable(v.route_config) : null;
      return { kind: 'http', name: chain.name, statPrefix: v.stat_prefix ?? '', rds: inline === null ? (v.rds?.route_config_name ?? '') : null, inline, tls };
    }
    if (cfg.type === TYPE_URLS.TCP_PROXY) {
      const v = cfg.value as { stat_prefix?: string; cluster?: string; weighted_clusters?: { clusters?: { name: string; weight: number }[] } | null };
      const clusters = v.cluster !== undefined && v.cluster !== '' ? [{ name: v.cluster, weight: 1 }] : (v.weighted_clusters?.clusters ?? []).map((c) => ({ name: c.name, weight: Number(c.weight) }));
      return { kind: 'tcp', name: chain.name, statPrefix: v.stat_prefix ?? '', clusters, tls };
    }
  }
  return undefined;
}

/** Compiles a listener; throws when an inline route configuration or a TLS context is invalid (NACK). */
export function buildListener(l: Listener__Output): ListenerRuntime {
  const chains: ChainMatch[] = [];
  for (const [i, c] of l.filter_chains.entries()) {
    const action = chainAction(c, `filter_chains[${i}]`);
    if (action === undefined) continue;
    const m = c.filter_chain_match;
    chains.push({
      port: m?.destination_port?.value ?? null,
      serverNames: m !== null && m !== undefined && m.server_names.length > 0 ? m.server_names : null,
      alpn: m !== null && m !== undefined && m.application_protocols.length > 0 ? m.application_protocols : null,
      action,
    });
  }
  const sa = l.address?.socket_address;
  return {
    name: l.name,
    address: sa?.address ?? '0.0.0.0',
    port: sa?.port_value ?? 0,
    direction: l.traffic_direction,
    chains,
    defaultChain: l.default_filter_chain == null ? null : (chainAction(l.default_filter_chain, 'default_filter_chain') ?? null),
  };
}

/**
 * Envoy's filter chain choice: exact destination port first, then server name (an exact
 * name beats a `*.` wildcard, a longer wildcard beats a shorter one), then application
 * protocol (any of the client's offered protocols); else the default chain.
 */
export function chooseChain(l: ListenerRuntime, port: number, sni: string | undefined, alpn: readonly string[] | undefined): ChainAction | null {
  let best: ChainMatch | undefined;
  let bestScore = -1;
  for (const c of l.chains) {
    if (c.port !== null && c.port !== port) continue;
    let nameScore = 0;
    if (c.serverNames !== null) {
      nameScore = sni === undefined ? 0 : serverNameScore(c.serverNames, sni);
      if (nameScore === 0) continue;
    }
    if (c.alpn !== null && (alpn === undefined || !c.alpn.some((p) => alpn.includes(p)))) continue;
    // Port decides first, then the server name's specificity, then ALPN.
    const score = (c.port !== null ? 1 << 20 : 0) + nameScore * 2 + (c.alpn !== null ? 1 : 0);
    if (score > bestScore) {
      best = c;
      bestScore = score;
    }
  }
  return best?.action ?? l.defaultChain;
}

/** 0 when no name matches `sni`; else higher for more specific matches (exact highest). */
function serverNameScore(names: readonly string[], sni: string): number {
  let score = 0;
  for (const n of names) {
    if (n === sni) return 1 << 16;
    if (n.startsWith('*.') && sni.length > n.length - 1 && sni.endsWith(n.slice(1))) score = Math.max(score, n.length);
  }
  return score;
}

/** Whether choosing a chain needs the TLS ClientHello (some chain matches SNI or ALPN). */
export function needsClientHello(l: ListenerRuntime): boolean {
  return l.chains.some((c) => c.serverNames !== null || c.alpn !== null);
}

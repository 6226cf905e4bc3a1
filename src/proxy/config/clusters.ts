/**
 * Clusters at run time: the endpoints of each cluster (from EDS, or inline for static and
 * DNS clusters) and the immutable picker over them, rebuilt and swapped whole when the
 * cluster or its endpoints change (STYLE 14). Per-endpoint state (requests in flight) and
 * connection pools live by `address:port` and survive swaps.
 */
import type { Cluster__Output } from '../../xds/generated/envoy/config/cluster/v3/Cluster.js';
import type { ClusterLoadAssignment__Output } from '../../xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js';
import { EndpointPool } from '../upstream/pool.js';
import type { LoadBalancerRegistry } from '../upstream/lb/registry.js';
import type { Endpoint, EndpointState, LbConfig, Picker } from '../upstream/lb/types.js';

export const CLUSTER_KINDS = { eds: 'eds', static: 'static', dns: 'dns', originalDst: 'original-dst' } as const;
export type ClusterKind = (typeof CLUSTER_KINDS)[keyof typeof CLUSTER_KINDS];

export interface ClusterRuntime {
  readonly name: string;
  readonly kind: ClusterKind;
  readonly endpoints: readonly Endpoint[];
  readonly picker: Picker;
  readonly connectTimeoutMs: number;
  readonly lbPolicy: string;
}

/** State shared by every cluster: endpoint states and pools, by `address:port`. */
export class UpstreamState {
  readonly #states = new Map<string, EndpointState>();
  readonly #pools = new Map<string, EndpointPool>();

  state(id: string): EndpointState {
    let s = this.#states.get(id);
    if (s === undefined) {
      s = { activeRequests: 0, ejected: false };
      this.#states.set(id, s);
    }
    return s;
  }

  pool(address: string, port: number): EndpointPool {
    const id = `${address}:${port}`;
    let p = this.#pools.get(id);
    if (p === undefined) {
      p = new EndpointPool(address, port);
      this.#pools.set(id, p);
    }
    return p;
  }

  /** Closes idle connections to endpoints no cluster has any more. */
  prune(live: ReadonlySet<string>): void {
    for (const [id, pool] of this.#pools) {
      if (live.has(id)) continue;
      pool.close();
      if (pool.open === 0) this.#pools.delete(id);
    }
  }

  pools(): ReadonlyMap<string, EndpointPool> {
    return this.#pools;
  }

  close(): void {
    for (const p of this.#pools.values()) p.close();
  }
}

function durationMs(d: { seconds?: string | number; nanos?: number } | null | undefined, fallback: number): number {
  if (d == null) return fallback;
  return Number(d.seconds ?? 0) * 1000 + Math.round((d.nanos ?? 0) / 1e6);
}

export function endpointsOf(cla: ClusterLoadAssignment__Output | null | undefined): Endpoint[] {
  const out: Endpoint[] = [];
  for (const l of cla?.endpoints ?? []) {
    const locality = [l.locality?.region ?? '', l.locality?.zone ?? '', l.locality?.sub_zone ?? ''].join('/').replace(/\/+$/, '');
    for (const e of l.lb_endpoints) {
      const sa = e.endpoint?.address?.socket_address;
      if (sa == null) continue;
      const port = sa.port_value ?? 0;
      out.push({
        id: `${sa.address}:${port}`,
        address: sa.address,
        port,
        weight: Math.max(1, e.load_balancing_weight?.value ?? 1),
        locality,
        localityWeight: l.load_balancing_weight?.value ?? 0,
        priority: l.priority,
        healthy: e.health_status === 'HEALTHY' || e.health_status === 'UNKNOWN',
      });
    }
  }
  return out;
}

function lbConfig(c: Cluster__Output): LbConfig {
  const config: { -readonly [K in keyof LbConfig]: LbConfig[K] } = {};
  const rh = c.ring_hash_lb_config;
  if (rh?.minimum_ring_size != null) config.minimumRingSize = Number(rh.minimum_ring_size.value);
  if (rh?.maximum_ring_size != null) config.maximumRingSize = Number(rh.maximum_ring_size.value);
  if (c.maglev_lb_config?.table_size != null) config.tableSize = Number(c.maglev_lb_config.table_size.value);
  const panic = c.common_lb_config?.healthy_panic_threshold;
  if (panic != null) config.panicThresholdPercent = Number(panic.value);
  if (c.common_lb_config?.locality_weighted_lb_config != null) config.localityWeighted = true;
  return config;
}

/** Why a cluster cannot be used, for a NACK; undefined when it can. */
export function clusterProblem(c: Cluster__Output, lbs: LoadBalancerRegistry): string | undefined {
  const type = c.type ?? 'STATIC';
  if (!['EDS', 'STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'ORIGINAL_DST'].includes(type)) return `cluster type ${type} is not supported`;
  if (type !== 'ORIGINAL_DST' && !lbs.has(c.lb_policy)) return `lb_policy ${c.lb_policy} is not supported`;
  const rh = c.ring_hash_lb_config;
  if (rh?.minimum_ring_size != null && rh.maximum_ring_size != null && Number(rh.minimum_ring_size.value) > Number(rh.maximum_ring_size.value)) {
    return 'ring_hash_lb_config.minimum_ring_size is larger than maximum_ring_size';
  }
  return undefined;
}

export function buildCluster(c: Cluster__Output, cla: ClusterLoadAssignment__Output | undefined, lbs: LoadBalancerRegistry, upstream: UpstreamState): ClusterRuntime {
  const type = c.type ?? 'STATIC';
  const kind: ClusterKind = type === 'EDS' ? 'eds' : type === 'ORIGINAL_DST' ? 'original-dst' : type === 'STATIC' ? 'static' : 'dns';
  const endpoints = kind === 'eds' ? endpointsOf(cla) : kind === 'original-dst' ? [] : endpointsOf(c.load_assignment);
  const lbPolicy = kind === 'original-dst' ? 'ROUND_ROBIN' : c.lb_policy;
  const lb = lbs.create(lbPolicy) ?? lbs.create('ROUND_ROBIN');
  const picker = lb === undefined ? { pick: () => undefined } : lb.build(endpoints, (id) => upstream.state(id), lbConfig(c));
  return { name: c.name, kind, endpoints, picker, connectTimeoutMs: durationMs(c.connect_timeout, 10_000), lbPolicy };
}

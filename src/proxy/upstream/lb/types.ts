/**
 * The load balancer interfaces of the proxy. A LoadBalancer is a stateless policy; when a
 * cluster's endpoints (or their health, or their ejection) change, the proxy calls
 * `build()` and swaps the cluster's current Picker for the new one; per request it only
 * calls `pick()` on the picker it read once (STYLE 14; grpc-js `src/picker.ts`).
 */

import type { PeerWorkload } from '../../telemetry/peer.js';

/** One upstream host, as EDS gives it. Read at build time only; never mutated. */
export interface Endpoint {
  /** `address:port`; the key of the host's EndpointState. */
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** The endpoint's `load_balancing_weight`, >= 1. */
  readonly weight: number;
  /** `region/zone/subzone`. */
  readonly locality: string;
  /** The locality's `load_balancing_weight`; 0 when EDS gives none. */
  readonly localityWeight: number;
  /** 0 is the highest priority. */
  readonly priority: number;
  /** EDS health_status HEALTHY or UNKNOWN. */
  readonly healthy: boolean;
  /** The workload behind the endpoint (Istio's endpoint metadata), for metric labels; null when not given. */
  readonly workload: PeerWorkload | null;
}

/**
 * Mutable per-endpoint state, owned by the proxy and kept across picker swaps by endpoint
 * id (the same object for the same id). Pickers hold references to these objects.
 */
export interface EndpointState {
  /** Requests in flight to the host; the proxy increments and decrements it. Read per pick. */
  activeRequests: number;
  /**
   * Out of service in every cluster that has the host. Read when a picker is built (an
   * ejected host counts as unhealthy for priority and locality health, as in Envoy's
   * host sets); whoever changes it must build and swap new pickers. Outlier detection is
   * per cluster, as in Envoy, and uses `LbConfig.ejected` instead: one endpoint is often
   * in several clusters (a service's and its subsets').
   */
  ejected: boolean;
}

export interface PickContext {
  /**
   * The request's key hash from the route's hash policy: an unsigned 64-bit hash as a
   * number (rounded to a double), as `hashKey()` returns; undefined when the route has no
   * hash policy (or it produced no key). Only RING_HASH and MAGLEV read it.
   */
  hash: number | undefined;
}

/** Chooses the upstream host of one request. Immutable apart from its own PRNG/cursor. */
export interface Picker {
  /**
   * Called once per request (and per retry). Never throws, allocates nothing. Returns
   * undefined when there is no host to pick: the proxy answers 503 with flag `UH`.
   */
  pick(ctx: PickContext): Endpoint | undefined;
}

/** A load balancing policy (Envoy `lb_policy`). Registered by name in a LoadBalancerRegistry. */
export interface LoadBalancer {
  readonly name: string;
  /**
   * Compiles a picker for the cluster's current endpoints. Called on every endpoint, health
   * or ejection change (not per request). `state` returns the proxy's state object for an
   * endpoint id. Does not throw for any endpoint list (an empty one gives a picker that
   * returns undefined); config values out of range are clamped as documented on LbConfig.
   */
  build(endpoints: readonly Endpoint[], state: (id: string) => EndpointState, config: LbConfig): Picker;
}

/** Settings from the xDS Cluster; every field optional, defaults as in Envoy unless noted. */
export interface LbConfig {
  /** `ring_hash_lb_config.minimum_ring_size`; default 1024; clamped to maximumRingSize. */
  minimumRingSize?: number;
  /** `ring_hash_lb_config.maximum_ring_size`; default and cap 8M (8,388,608). */
  maximumRingSize?: number;
  /** `maglev_lb_config.table_size`; default 65537; a non-prime is raised to the next prime. */
  tableSize?: number;
  /** `least_request_lb_config.choice_count`; default 2, minimum 2. */
  choiceCount?: number;
  /**
   * `common_lb_config.healthy_panic_threshold`, percent. Default **0 (panic disabled)**: what
   * Istio sets from outlierDetection.minHealthPercent (default 0). Envoy's own default for
   * a Cluster without the field is 50; the cluster conversion passes the field when set.
   */
  panicThresholdPercent?: number;
  /** The ClusterLoadAssignment's `policy.overprovisioning_factor`, percent; default 140. */
  overprovisioningFactor?: number;
  /**
   * `common_lb_config.locality_weighted_lb_config` is set: within a priority, choose a
   * locality by `localityWeight × health` first. Default false (Envoy): hosts of the
   * priority are balanced without regard to locality. Ignored by RING_HASH and MAGLEV.
   */
  localityWeighted?: boolean;
  /**
   * Ids of the hosts this cluster's outlier detection has ejected: not eligible, like a
   * host whose `EndpointState.ejected` is set, in this cluster only. Read during
   * `build()`, never kept. Default: none.
   */
  ejected?: ReadonlySet<string>;
  /** Seed of the picker's PRNG (xorshift32). Default: random per build. Tests set it. */
  seed?: number;
}

/**
 * A policy's host selection over one set of eligible hosts; the locality layer
 * (`locality.ts`) decides which set (priority, locality) a request goes to.
 */
export interface HostPolicy {
  /** RING_HASH and MAGLEV: the priority is chosen by the request's hash, not at random. */
  readonly consistentHash: boolean;
  /**
   * Builds a picker over `hosts` (non-empty; `states[i]` belongs to `hosts[i]`) that never
   * returns undefined. `rng` is the picker's PRNG, shared with the locality layer.
   */
  build(hosts: readonly Endpoint[], states: readonly EndpointState[], rng: Rng, config: LbConfig): Picker;
}

/** The PRNG a picker owns (see `prng.ts`). */
export interface Rng {
  /** Uniform in [0, 2^32). */
  next(): number;
  /** Uniform integer in [0, n), for 1 <= n <= 2^21. */
  below(n: number): number;
  /** Uniform in [0, 1). */
  unit(): number;
  /** A random 64-bit hash value as a number in [0, 2^64), for hash policies without a key. */
  hash64(): number;
}

/** The policies Trellis implements, by their Envoy `Cluster.lb_policy` names. */
export const LB_POLICIES = {
  ROUND_ROBIN: 'ROUND_ROBIN',
  LEAST_REQUEST: 'LEAST_REQUEST',
  RANDOM: 'RANDOM',
  RING_HASH: 'RING_HASH',
  MAGLEV: 'MAGLEV',
} as const;
export type LbPolicyName = (typeof LB_POLICIES)[keyof typeof LB_POLICIES];

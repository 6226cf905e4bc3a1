/**
 * Clusters at run time: the endpoints of each cluster (from EDS, or inline for static and
 * DNS clusters) and the immutable picker over them, rebuilt and swapped whole when the
 * cluster or its endpoints change (STYLE 14), or when outlier detection ejects or returns
 * a host. Per-endpoint state (requests in flight) and connection pools live by
 * `address:port`, and each cluster's resilience state (outlier detector, circuit
 * breaker, retry budget) by cluster name; both survive rebuilds.
 */
import { lengthDelimitedFields, protoField, varintField } from './wire.js';
import type { Cluster__Output } from '../../xds/generated/envoy/config/cluster/v3/Cluster.js';
import type { ClusterLoadAssignment__Output } from '../../xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js';
import { H2EndpointPool, UNLIMITED_STREAMS } from '../upstream/h2-pool.js';
import { durationMs } from '../../xds/duration.js';
import { EndpointPool } from '../upstream/pool.js';
import type { LoadBalancerRegistry } from '../upstream/lb/registry.js';
import { DEFAULT_PANIC_THRESHOLD_PERCENT } from '../upstream/lb/locality.js';
import type { Endpoint, EndpointState, LbConfig, Picker } from '../upstream/lb/types.js';
import { type PeerWorkload, peerFromWorkloadMetadata } from '../telemetry/peer.js';
import { type CircuitBreaker, thresholdsOf } from '../resilience/circuit-breaker.js';
import { type ClusterResilienceSettings, ResilienceRegistry } from '../resilience/cluster-resilience.js';
import type { OutlierDetector } from '../resilience/outlier-detection.js';
import { outlierProblem, outlierSettingsOf } from '../resilience/outlier-settings.js';
import { type RetryBudget, retryBudgetSettings } from '../resilience/retry-budget.js';
import { LiveCluster } from './live-cluster.js';
import type { UpstreamTls } from '../tls/tls-context.js';
import { upstreamTlsOf } from '../tls/cluster-tls.js';
import { type PoolSettings, poolSettingsOf } from './pool-settings.js';

export const CLUSTER_KINDS = { eds: 'eds', static: 'static', dns: 'dns', originalDst: 'original-dst' } as const;
export type ClusterKind = (typeof CLUSTER_KINDS)[keyof typeof CLUSTER_KINDS];

/**
 * The HTTP version a cluster speaks to its endpoints: HTTP/1.1; HTTP/2 (h2c, prior
 * knowledge); or the version the client spoke (Envoy's `use_downstream_protocol_config`).
 */
export const UPSTREAM_PROTOCOLS = { http1: 'http1', http2: 'http2', downstream: 'downstream' } as const;
export type UpstreamProtocol = (typeof UPSTREAM_PROTOCOLS)[keyof typeof UPSTREAM_PROTOCOLS];

/**
 * One cluster as the request path uses it. Built when the cluster's CDS or EDS resource
 * changes and published in a RuntimeSnapshot; a request reads the snapshot's cluster
 * once and uses that object to the end, retries included.
 */
export interface ClusterRuntime {
  readonly name: string;
  readonly kind: ClusterKind;
  readonly endpoints: readonly Endpoint[];
  /**
   * The current picker. Replaced whole (never changed in place) when outlier detection
   * ejects or returns a host, so read it at each pick (once per try): a retry after an
   * ejection then sees the new one.
   */
  readonly picker: Picker;
  readonly connectTimeoutMs: number;
  readonly lbPolicy: string;
  readonly protocol: UpstreamProtocol;
  /** `http2_protocol_options.max_concurrent_streams`: streams per upstream HTTP/2 connection at most. */
  readonly maxConcurrentStreams: number;
  /** The service host for `destination_service`: from the name `outbound|port|subset|host`, else Istio's metadata `istio.services[0].host` (inbound clusters); `unknown` otherwise. */
  readonly service: string;
  /**
   * `outlier_detection`, null when the cluster has none. The request path calls
   * `report(endpoint.id, outcome)` once per finished try: the status of a real upstream
   * response, or `'connect-failure'`, `'timeout'` or `'reset'` when there was none. The
   * same detector (and its ejections) across rebuilds of the cluster.
   */
  readonly outlier: OutlierDetector | null;
  /**
   * `circuit_breakers` (Envoy's defaults when absent: 1024 connections, pending and
   * requests, 3 retries). `tryRequest()`/`endRequest()` around every try,
   * `tryRetry()`/`endRetry()` around every retry, `tryPending()`/`endPending()` while a
   * request waits for a connection, `tryConnect()`/`connectionClosed()` around every
   * upstream connection. The same breaker (and its counts) across rebuilds.
   */
  readonly breaker: CircuitBreaker;
  /**
   * The Trellis rate-based retry budget from the metadata `trellis.io/retry-budget`
   * (Linkerd's defaults when absent): `request()` per first try, `tryRetry()` before a
   * retry. The same instance across rebuilds while its settings stay equal.
   */
  readonly retryBudget: RetryBudget;
  /** Upstream connection settings for the pools (idle timeout, requests and lifetime per connection, TCP keepalive). */
  readonly pool: PoolSettings;
  /**
   * The cluster's `transport_socket` UpstreamTlsContext, compiled: its connections are
   * TLS, in pools of their own (`UpstreamState` keys them by `tls.key`); null for plaintext.
   */
  readonly tls: UpstreamTls | null;
  /**
   * `common_lb_config.healthy_panic_threshold`, percent; 0 (panic off, Istio's
   * minHealthPercent default) when absent. The picker already applies it; this is for
   * reading (admin, logs).
   */
  readonly panicThresholdPercent: number;
}

/** `outbound|9080|v1|reviews.default.svc.cluster.local` → the service host; `unknown` otherwise. */
export function serviceOfCluster(cluster: string): string {
  const parts = cluster.split('|');
  return parts.length === 4 && parts[3] !== '' ? (parts[3] as string) : 'unknown';
}

/** Reads `istio.services[0].host` from cluster metadata. */
function metadataService(c: Cluster__Output): string | undefined {
  const fields = (c.metadata?.filter_metadata?.istio as { fields?: Record<string, unknown> } | undefined)?.fields;
  const list = protoField(fields?.services, 'list_value', 'listValue') as { values?: unknown[] } | undefined;
  const first = protoField(list?.values?.[0], 'struct_value', 'structValue') as { fields?: Record<string, unknown> } | undefined;
  const host = protoField(first?.fields?.host, 'string_value', 'stringValue');
  return typeof host === 'string' && host !== '' ? host : undefined;
}

/**
 * State shared by every cluster: endpoint states and pools, by `address:port` (plaintext)
 * or `address:port|<TLS key>` (TLS: clusters with different TLS settings never share a
 * connection); resilience state by cluster name.
 */
export class UpstreamState {
  /** Each cluster's outlier detector, circuit breaker and retry budget, kept across rebuilds. */
  readonly resilience: ResilienceRegistry;
  readonly #states = new Map<string, EndpointState>();
  readonly #pools = new Map<string, EndpointPool>();
  readonly #h2 = new Map<string, H2EndpointPool>();

  constructor(resilience: ResilienceRegistry = new ResilienceRegistry()) {
    this.resilience = resilience;
  }

  state(id: string): EndpointState {
    let s = this.#states.get(id);
    if (s === undefined) {
      s = { activeRequests: 0, ejected: false };
      this.#states.set(id, s);
    }
    return s;
  }

  /** The HTTP/1.1 connections to an endpoint, for requests that arrived over HTTP/1.1 or HTTP/2; TLS ones with `tls`. */
  pool(address: string, port: number, tls: UpstreamTls | null = null): EndpointPool {
    return this.#pool(poolKey(`${address}:${port}`, tls), address, port, tls);
  }

  /**
   * `pool(e.address, e.port, tls)` by the endpoint's id: a plaintext cluster's pool is
   * found without building a key per request.
   */
  poolOf(e: Endpoint, tls: UpstreamTls | null = null): EndpointPool {
    return this.#pool(tls === null ? e.id : poolKey(e.id, tls), e.address, e.port, tls);
  }

  #pool(id: string, address: string, port: number, tls: UpstreamTls | null): EndpointPool {
    let p = this.#pools.get(id);
    if (p === undefined) {
      p = new EndpointPool(address, port, undefined, tls);
      this.#pools.set(id, p);
    }
    return p;
  }

  /** The HTTP/2 connections to an endpoint; TLS ones with `tls`. */
  h2(address: string, port: number, tls: UpstreamTls | null = null): H2EndpointPool {
    return this.#h2Pool(poolKey(`${address}:${port}`, tls), address, port, tls);
  }

  /** `h2(e.address, e.port, tls)` by the endpoint's id, as `poolOf`: no key built per request for a plaintext cluster. */
  h2Of(e: Endpoint, tls: UpstreamTls | null = null): H2EndpointPool {
    return this.#h2Pool(tls === null ? e.id : poolKey(e.id, tls), e.address, e.port, tls);
  }

  #h2Pool(id: string, address: string, port: number, tls: UpstreamTls | null): H2EndpointPool {
    let p = this.#h2.get(id);
    if (p === undefined) {
      p = new H2EndpointPool(address, port, undefined, tls);
      this.#h2.set(id, p);
    }
    return p;
  }

  /** Closes idle connections to endpoints no cluster has any more (`live`: ids, and `poolKey`s of TLS clusters' endpoints). */
  prune(live: ReadonlySet<string>): void {
    for (const [id, pool] of this.#pools) {
      if (live.has(id)) continue;
      pool.close();
      if (pool.open === 0) this.#pools.delete(id);
    }
    for (const [id, pool] of this.#h2) {
      if (live.has(id)) continue;
      // Forgotten first: requests waiting in it for a connection go to a new pool.
      this.#h2.delete(id);
      pool.close(); // open streams finish; the connections close after them
    }
  }

  pools(): ReadonlyMap<string, EndpointPool> {
    return this.#pools;
  }

  close(): void {
    for (const p of this.#pools.values()) p.close();
    for (const p of this.#h2.values()) p.destroy();
    this.resilience.close();
  }
}

/** The key of an endpoint's pools for a cluster with `tls`: the endpoint id alone for plaintext. */
export function poolKey(id: string, tls: UpstreamTls | null): string {
  return tls === null ? id : `${id}|${tls.key}`;
}

/** Envoy's upstream HTTP options: the key in `typed_extension_protocol_options` and the message. */
export const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

export interface ProtocolOptions {
  readonly protocol: UpstreamProtocol;
  readonly maxConcurrentStreams: number;
}

const HTTP1: ProtocolOptions = { protocol: 'http1', maxConcurrentStreams: UNLIMITED_STREAMS };

/**
 * The cluster's upstream HTTP version from `typed_extension_protocol_options`, in either
 * form the decoder gives: an opaque Any (`{type_url, value}`: the proto is not among those
 * Trellis loads) or, should it be loaded, an `@type` object. `explicit_http_config` with
 * `http2_protocol_options` is HTTP/2; `use_downstream_protocol_config` follows the client;
 * anything else (and `auto_config`, which needs TLS ALPN) is HTTP/1.1. Throws for bytes
 * that are not a valid message (the cluster is NACKed).
 */
export function protocolOptionsOf(c: Cluster__Output): ProtocolOptions {
  const any = c.typed_extension_protocol_options?.[HTTP_PROTOCOL_OPTIONS] as unknown as Record<string, unknown> | undefined;
  if (any == null) return HTTP1;
  if ('@type' in any) return fromObject(any);
  const raw = any.value;
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'base64') : raw instanceof Uint8Array ? raw : new Uint8Array(0);
  return fromBytes(bytes);
}

type Obj = Record<string, unknown> | null | undefined;

function fromObject(o: Record<string, unknown>): ProtocolOptions {
  const explicit = o.explicit_http_config as Obj;
  const downstream = o.use_downstream_protocol_config as Obj;
  const h2 = (explicit?.http2_protocol_options ?? downstream?.http2_protocol_options) as Obj;
  const max = (h2?.max_concurrent_streams as Obj)?.value;
  const maxConcurrentStreams = typeof max === 'number' && max > 0 ? max : UNLIMITED_STREAMS;
  if (explicit != null && h2 != null) return { protocol: 'http2', maxConcurrentStreams };
  if (downstream != null) return { protocol: 'downstream', maxConcurrentStreams };
  return HTTP1;
}

/** The same fields, read with protobufjs's wire reader; see fromObject. */
function fromBytes(bytes: Uint8Array): ProtocolOptions {
  const top = lengthDelimitedFields(bytes);
  const explicit = top.get(3); // explicit_http_config
  const config = explicit ?? top.get(4); // use_downstream_protocol_config
  if (config === undefined) return HTTP1;
  const h2 = lengthDelimitedFields(config).get(2); // http2_protocol_options
  const wrapper = h2 === undefined ? undefined : lengthDelimitedFields(h2).get(2); // max_concurrent_streams (UInt32Value)
  const max = wrapper === undefined ? 0 : varintField(wrapper, 1);
  const maxConcurrentStreams = max > 0 ? max : UNLIMITED_STREAMS;
  if (explicit !== undefined) return h2 === undefined ? HTTP1 : { protocol: 'http2', maxConcurrentStreams };
  return { protocol: 'downstream', maxConcurrentStreams };
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
        workload: workloadOf(e.metadata?.filter_metadata?.istio),
      });
    }
  }
  return out;
}

/** Istio's endpoint metadata `istio.workload`. */
function workloadOf(istio: unknown): PeerWorkload | null {
  const fields = (istio as { fields?: Record<string, unknown> } | null | undefined)?.fields;
  const text = protoField(fields?.workload, 'string_value', 'stringValue');
  return typeof text === 'string' ? peerFromWorkloadMetadata(text) : null;
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
  try {
    protocolOptionsOf(c);
    poolSettingsOf(c, c.typed_extension_protocol_options?.[HTTP_PROTOCOL_OPTIONS]);
  } catch (err) {
    return `typed_extension_protocol_options["${HTTP_PROTOCOL_OPTIONS}"] cannot be decoded: ${(err as Error).message}`;
  }
  try {
    upstreamTlsOf(c); // compiled now (files read), kept for buildCluster
  } catch (err) {
    return (err as Error).message;
  }
  return outlierProblem(c.outlier_detection);
}

/** The metadata key of the Trellis retry budget (control-plane `retry-budget.ts`). */
const RETRY_BUDGET_METADATA_KEY = 'trellis.io/retry-budget';

/** The cluster's resilience settings, converted. */
function resilienceSettingsOf(c: Cluster__Output): ClusterResilienceSettings {
  return {
    outlier: outlierSettingsOf(c.outlier_detection),
    thresholds: thresholdsOf(c.circuit_breakers),
    retryBudget: retryBudgetSettings(c.metadata?.filter_metadata?.[RETRY_BUDGET_METADATA_KEY]),
  };
}

export function buildCluster(c: Cluster__Output, cla: ClusterLoadAssignment__Output | undefined, lbs: LoadBalancerRegistry, upstream: UpstreamState): ClusterRuntime {
  const type = c.type ?? 'STATIC';
  const kind: ClusterKind = type === 'EDS' ? 'eds' : type === 'ORIGINAL_DST' ? 'original-dst' : type === 'STATIC' ? 'static' : 'dns';
  const endpoints = kind === 'eds' ? endpointsOf(cla) : kind === 'original-dst' ? [] : endpointsOf(c.load_assignment);
  const lbPolicy = kind === 'original-dst' ? 'ROUND_ROBIN' : c.lb_policy;
  const lb = lbs.create(lbPolicy) ?? lbs.create('ROUND_ROBIN');
  const { protocol, maxConcurrentStreams } = protocolOptionsOf(c);
  const fromName = serviceOfCluster(c.name);
  const service = fromName !== 'unknown' ? fromName : (metadataService(c) ?? 'unknown');
  const resilience = upstream.resilience.forCluster(c.name, resilienceSettingsOf(c));
  resilience.outlier?.setHosts(endpoints.map((e) => e.id));
  const config = lbConfig(c);
  const cluster = new LiveCluster(
    {
      name: c.name,
      kind,
      endpoints,
      connectTimeoutMs: durationMs(c.connect_timeout, 10_000),
      lbPolicy,
      protocol,
      maxConcurrentStreams,
      service,
      outlier: resilience.outlier,
      breaker: resilience.breaker,
      retryBudget: resilience.retryBudget,
      pool: poolSettingsOf(c, c.typed_extension_protocol_options?.[HTTP_PROTOCOL_OPTIONS]),
      tls: upstreamTlsOf(c),
      panicThresholdPercent: config.panicThresholdPercent ?? DEFAULT_PANIC_THRESHOLD_PERCENT,
    },
    lb,
    config,
    (id) => upstream.state(id),
  );
  cluster.activate();
  return cluster;
}

/**
 * Makes `cluster` the one its outlier detector rebuilds pickers for (the newest build of
 * that name); RuntimeConfig calls it for every cluster it publishes. Rebuilds the picker
 * if ejections changed since it was built.
 */
export function activateCluster(cluster: ClusterRuntime): void {
  if (cluster instanceof LiveCluster) cluster.activate();
}

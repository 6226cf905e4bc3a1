/**
 * CDS and EDS: one cluster per service port (`outbound|9080||reviews...`), one per
 * DestinationRule subset (`outbound|9080|v1|reviews...`), inbound clusters for a
 * sidecar's own ports, and the passthrough and black-hole clusters. Endpoints are grouped
 * by locality; every locality carries a weight (gRPC drops localities without one), and
 * a priority relative to the proxy's locality when locality failover applies
 * (locality-lb.ts). The traffic policy's resilience settings are cluster-policy.ts's, its
 * TLS origination (`transport_socket`) tls-context.ts's.
 */
import { selects, type Labels } from '../../api/common.js';
import { workloadMetadata } from '../../core/canonical.js';
import type { Cluster } from '../../xds/generated/envoy/config/cluster/v3/Cluster.js';
import type { ClusterLoadAssignment } from '../../xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js';
import type { LocalityLbEndpoints } from '../../xds/generated/envoy/config/endpoint/v3/LocalityLbEndpoints.js';
import type { Any } from '../../xds/generated/google/protobuf/Any.js';
import type { Endpoint, Service, ServicePort } from '../../registry/model.js';
import { formatLocality } from '../../registry/model.js';
import { clusterPolicy, type CommonHttpSettings, commonHttpSettings, DEFAULT_CONNECT_TIMEOUT_MS, defaultCircuitBreakers } from './cluster-policy.js';
import { ADS, BLACKHOLE_CLUSTER, duration, inboundClusterName, isHttpProtocol, outboundClusterName, PASSTHROUGH_CLUSTER, socketAddress } from './envoy.js';
import { type LocalityGroup, type LocalityLbPlan, localityLbPlan, placeGroups } from './locality-lb.js';
import { destinationRuleFor, type Mesh } from './mesh.js';
import type { ProxyNode } from './node.js';
import { durationField, messageField, opaqueAny, uint32ValueField } from './proto-wire.js';
import { originatesTls, TLS_APPLICATION, type TlsApplication, upstreamTransportSocket } from './tls-context.js';
import { effectivePolicy, type PortPolicy } from './traffic-policy.js';

export interface ClusterPlan {
  readonly cluster: Cluster;
  /** For EDS clusters, the endpoints to publish under the cluster's name. */
  readonly assignment?: ClusterLoadAssignment;
}

type LbPolicy = NonNullable<Cluster['lb_policy']>;

/** Envoy lb_policy for a port policy; proxyless gRPC accepts only ROUND_ROBIN and RING_HASH. */
export function lbPolicy(policy: PortPolicy | undefined, grpc: boolean): Pick<Cluster, 'lb_policy' | 'ring_hash_lb_config' | 'maglev_lb_config'> {
  const lb = policy?.loadBalancer;
  const hash = lb?.consistentHash;
  if (hash !== undefined) {
    if (hash.maglev !== undefined && !grpc) return { lb_policy: 'MAGLEV', maglev_lb_config: { table_size: { value: hash.maglev.tableSize } } };
    const min = hash.ringHash?.minimumRingSize;
    return min === undefined ? { lb_policy: 'RING_HASH' } : { lb_policy: 'RING_HASH', ring_hash_lb_config: { minimum_ring_size: { value: min } } };
  }
  const simple = lb?.simple ?? 'LEAST_REQUEST'; // Istio's default when unset
  if (grpc) return { lb_policy: 'ROUND_ROBIN' };
  const map: Record<string, LbPolicy> = { ROUND_ROBIN: 'ROUND_ROBIN', LEAST_REQUEST: 'LEAST_REQUEST', RANDOM: 'RANDOM', PASSTHROUGH: 'CLUSTER_PROVIDED' };
  return { lb_policy: map[simple] ?? 'LEAST_REQUEST' };
}

function localityGroups(endpoints: readonly Endpoint[]): LocalityGroup[] {
  const groups = new Map<string, Endpoint[]>();
  for (const e of endpoints) {
    const key = formatLocality(e.locality);
    const list = groups.get(key) ?? [];
    list.push(e);
    groups.set(key, list);
  }
  return [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, list]) => ({ locality: (list[0] as Endpoint).locality, endpoints: list }));
}

/** The endpoints of cluster `name` as `node` sees them (`plan`: locality load balancing, if any). */
export function loadAssignment(name: string, endpoints: readonly Endpoint[], node?: ProxyNode, plan?: LocalityLbPlan): ClusterLoadAssignment {
  const groups = localityGroups(endpoints);
  const placed = placeGroups(groups, node, plan);
  const localities: LocalityLbEndpoints[] = placed.map((g) => {
    const out: LocalityLbEndpoints = {
      locality: { region: g.locality.region, zone: g.locality.zone, sub_zone: g.locality.subzone },
      load_balancing_weight: { value: g.weight },
      lb_endpoints: g.endpoints.map((e) => ({
        endpoint: { address: socketAddress(e.address, e.port) },
        health_status: e.healthy ? 'HEALTHY' : 'UNHEALTHY',
        load_balancing_weight: { value: e.weight },
        // Istio's workload metadata names the destination in the caller's metrics.
        metadata: {
          filter_metadata: {
            istio: { fields: { workload: { stringValue: workloadMetadata(e.workloadName, e.namespace, e.labels) } } },
            trellis: { fields: { workload: { stringValue: e.workloadId } } },
          },
        },
      })),
    };
    if (g.priority > 0) out.priority = g.priority;
    return out;
  });
  return { cluster_name: name, endpoints: localities };
}

/**
 * The key (and message name) under which Envoy reads a cluster's upstream HTTP protocol in
 * `typed_extension_protocol_options`.
 */
export const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/** Which HTTP version a cluster speaks upstream: HTTP/1.1, HTTP/2, or the client's own. */
export const UPSTREAM_HTTP = { http1: 'http1', http2: 'http2', downstream: 'downstream' } as const;
export type UpstreamHttp = (typeof UPSTREAM_HTTP)[keyof typeof UPSTREAM_HTTP];

/**
 * The upstream HTTP version of an outbound cluster, as Istio's cluster builder decides it:
 * `http2`, `grpc` and `grpc-web` ports speak HTTP/2 (`setH2Options`); auto-detected ports
 * and `connectionPool.http.useClientProtocol` use the client's protocol
 * (`setUseDownstreamProtocol`, applied after, so it wins over the port's protocol); and
 * `h2UpgradePolicy: UPGRADE` forces HTTP/2 last of all (`applyH2Upgrade`; the mesh-wide
 * h2UpgradePolicy is Istio's default, DO_NOT_UPGRADE).
 */
export function upstreamHttp(port: ServicePort, policy: PortPolicy | undefined): UpstreamHttp {
  const http = policy?.connectionPool?.http;
  let mode: UpstreamHttp = UPSTREAM_HTTP.http1;
  if (port.protocol === 'http2' || port.protocol === 'grpc' || port.protocol === 'grpc-web') mode = UPSTREAM_HTTP.http2;
  if (port.protocol === 'auto' || http?.useClientProtocol === true) mode = UPSTREAM_HTTP.downstream;
  if (http?.h2UpgradePolicy === 'UPGRADE') mode = UPSTREAM_HTTP.http2;
  return mode;
}

/**
 * `typed_extension_protocol_options` for an outbound cluster: Envoy's
 * `HttpProtocolOptions` with the upstream protocol — `explicit_http_config
 * {http2_protocol_options {max_concurrent_streams}}`, `use_downstream_protocol_config
 * {http_protocol_options {} http2_protocol_options {}}`, or for HTTP/1.1 `explicit_http_config
 * {http_protocol_options {}}` — and the DestinationRule's connection settings in
 * `common_http_protocol_options` (Istio applyConnectionPool). A plain HTTP/1.1 cluster
 * without settings gets none, as in Istio.
 *
 * Packed as an opaque Any (proto-wire.ts): `http_protocol_options.proto` is not among the
 * protos Trellis loads. `explicitHttp1` writes the HTTP/1.1 choice even without settings
 * (for a cluster whose port protocol alone would not say it is HTTP).
 */
export function httpProtocolOptions(mode: UpstreamHttp, maxConcurrentStreams: number | undefined, settings: CommonHttpSettings = {}, explicitHttp1 = false): Record<string, Any> | undefined {
  // envoy.config.core.v3.HttpProtocolOptions: idle_timeout = 1, max_connection_duration = 3,
  // max_requests_per_connection = 6 (UInt32Value)
  const common = [
    ...(settings.idleTimeoutMs === undefined ? [] : durationField(1, settings.idleTimeoutMs)),
    ...(settings.maxConnectionDurationMs === undefined ? [] : durationField(3, settings.maxConnectionDurationMs)),
    ...(settings.maxRequestsPerConnection ? uint32ValueField(6, settings.maxRequestsPerConnection) : []),
  ];
  if (mode === UPSTREAM_HTTP.http1 && common.length === 0 && !explicitHttp1) return undefined;
  // Http2ProtocolOptions: max_concurrent_streams = 2 (UInt32Value); Istio sets it only when positive.
  const h2 = maxConcurrentStreams ? uint32ValueField(2, maxConcurrentStreams) : [];
  // HttpProtocolOptions: common_http_protocol_options = 1; explicit_http_config = 3
  // {http_protocol_options = 1 | http2_protocol_options = 2}; use_downstream_protocol_config = 4
  // {http_protocol_options = 1, http2_protocol_options = 2}
  const protocol =
    mode === UPSTREAM_HTTP.http2 ? messageField(3, messageField(2, h2))
    : mode === UPSTREAM_HTTP.downstream ? messageField(4, [...messageField(1, []), ...messageField(2, h2)])
    : messageField(3, messageField(1, []));
  const bytes = [...(common.length > 0 ? messageField(1, common) : []), ...protocol];
  return { [HTTP_PROTOCOL_OPTIONS]: opaqueAny(HTTP_PROTOCOL_OPTIONS, bytes) };
}

/**
 * What an originated TLS connection carries, for its ALPN (the TLS contract): HTTP/2 for
 * clusters that speak it, HTTP/1.1 for HTTP/1.1 ones — an `https` port whose TLS the proxy
 * originates carries HTTP/1.1 (Istio's egress TLS origination: the application sends
 * plain HTTP, the proxy adds TLS) — and nothing for TCP ports. A cluster that follows the
 * client's protocol offers none: one fixed ALPN list would be wrong for half its requests.
 */
function tlsApplication(port: ServicePort, mode: UpstreamHttp): TlsApplication {
  if (!isHttpProtocol(port.protocol) && port.protocol !== 'https' && port.protocol !== 'auto') return TLS_APPLICATION.none;
  if (mode === UPSTREAM_HTTP.http2) return TLS_APPLICATION.http2;
  return mode === UPSTREAM_HTTP.http1 ? TLS_APPLICATION.http1 : TLS_APPLICATION.none;
}

function subsetEndpoints(all: readonly Endpoint[], labels: Labels | undefined): readonly Endpoint[] {
  return labels === undefined ? all : all.filter((e) => selects(labels, e.labels));
}

/** Clusters (and their endpoints) for one service port, as seen by `node`. */
export function serviceClusters(mesh: Mesh, node: ProxyNode, service: Service, port: ServicePort): ClusterPlan[] {
  const grpc = node.kind === 'grpc';
  const dr = destinationRuleFor(mesh, service.hostname, service.namespace, node.namespace, node.labels);
  const subsets: { name: string; labels: Labels | undefined }[] = [{ name: '', labels: undefined }];
  for (const s of dr?.spec.subsets ?? []) subsets.push({ name: s.name, labels: s.labels ?? {} });
  const plans: ClusterPlan[] = [];
  for (const subset of subsets) {
    const name = outboundClusterName(port.port, subset.name, service.hostname);
    const policy = effectivePolicy(dr, subset.name, port.port);
    const locality = localityLbPlan(policy);
    const base: Cluster = { name, ...lbPolicy(policy, grpc), ...clusterPolicy(policy, locality, mesh.config, grpc) };
    // Proxyless gRPC always speaks HTTP/2 and ignores these options (grpc-js-xds never reads
    // them; Istio's proxyless generator leaves them out too).
    const pool = policy?.connectionPool;
    const mode = upstreamHttp(port, policy);
    const httpsOrigination = port.protocol === 'https' && originatesTls(policy?.tls);
    const protocolOptions = grpc ? undefined : httpProtocolOptions(mode, pool?.http?.maxConcurrentStreams, commonHttpSettings(pool), httpsOrigination);
    if (protocolOptions !== undefined) base.typed_extension_protocol_options = protocolOptions;
    // Proxyless gRPC reads TLS only from certificate providers (xDS credentials), which
    // come with the mesh CA; a file-based context would be ignored or refused.
    const tls = grpc ? undefined : upstreamTransportSocket(policy?.tls, service.hostname, tlsApplication(port, mode));
    if (tls !== undefined) base.transport_socket = tls;
    if (service.resolution === 'passthrough' || policy?.loadBalancer?.simple === 'PASSTHROUGH') {
      if (grpc) continue; // gRPC clients have no original destination to forward to
      plans.push({ cluster: { ...base, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' } });
      continue;
    }
    const endpoints = subsetEndpoints(mesh.endpoints(service, port.port), subset.labels);
    if (service.resolution === 'dns' || service.resolution === 'dns-round-robin') {
      const type = grpc || service.resolution === 'dns-round-robin' ? 'LOGICAL_DNS' : 'STRICT_DNS';
      const targets = endpoints.length > 0 ? endpoints : [{ address: service.hostname, port: port.port }];
      const cla: ClusterLoadAssignment = {
        cluster_name: name,
        endpoints: [{ lb_endpoints: targets.map((t) => ({ endpoint: { address: socketAddress(t.address, t.port) } })) }],
      };
      plans.push({ cluster: { ...base, type, load_assignment: type === 'LOGICAL_DNS' ? firstOnly(cla) : cla } });
      continue;
    }
    plans.push({
      cluster: { ...base, type: 'EDS', eds_cluster_config: { eds_config: ADS, service_name: name } },
      assignment: loadAssignment(name, panicSafe(endpoints, base), node, locality),
    });
  }
  return plans;
}

/**
 * Unhealthy endpoints are sent as `UNHEALTHY` (they get no traffic, and a locality whose
 * instances are not ready fails over in proportion), except to a cluster with a panic
 * threshold (`minHealthPercent` > 0): in panic Envoy balances over every host it has,
 * and Istio never lets that reach an instance that is not ready — by default it does not
 * send them, and when it does (PILOT_SEND_UNHEALTHY_ENDPOINTS) it turns panic off. Such a
 * cluster gets its healthy endpoints only, so panic spreads over those, ejected or not.
 */
function panicSafe(endpoints: readonly Endpoint[], cluster: Cluster): readonly Endpoint[] {
  const panicThreshold = Number(cluster.common_lb_config?.healthy_panic_threshold?.value ?? 0);
  return panicThreshold > 0 ? endpoints.filter((e) => e.healthy) : endpoints;
}

/** LOGICAL_DNS clusters take exactly one endpoint. */
function firstOnly(cla: ClusterLoadAssignment): ClusterLoadAssignment {
  const first = cla.endpoints?.[0]?.lb_endpoints?.[0];
  return { cluster_name: cla.cluster_name, endpoints: first === undefined ? [] : [{ lb_endpoints: [first] }] };
}

/**
 * A sidecar's inbound cluster: the application on loopback. Its metadata names the
 * services it serves (as Istio's `istio.services`), which the proxy reports as
 * `destination_service` on the inbound side.
 */
export function inboundCluster(port: number, services: readonly { host: string; name: string; namespace: string }[], appPort = port): Cluster {
  const name = inboundClusterName(port);
  const list = services.map((s) => ({ structValue: { fields: { host: { stringValue: s.host }, name: { stringValue: s.name }, namespace: { stringValue: s.namespace } } } }));
  return {
    name,
    metadata: { filter_metadata: { istio: { fields: { services: { listValue: { values: list } } } } } },
    type: 'STATIC',
    connect_timeout: duration(DEFAULT_CONNECT_TIMEOUT_MS),
    lb_policy: 'ROUND_ROBIN',
    circuit_breakers: defaultCircuitBreakers(),
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress('127.0.0.1', appPort) } }] }] },
  };
}

export function passthroughClusters(): Cluster[] {
  return [
    { name: PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: duration(DEFAULT_CONNECT_TIMEOUT_MS), circuit_breakers: defaultCircuitBreakers() },
    { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: duration(DEFAULT_CONNECT_TIMEOUT_MS), load_assignment: { cluster_name: BLACKHOLE_CLUSTER, endpoints: [] } },
  ];
}

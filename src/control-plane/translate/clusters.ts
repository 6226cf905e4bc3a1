/**
 * CDS and EDS: one cluster per service port (`outbound|9080||reviews...`), one per
 * DestinationRule subset (`outbound|9080|v1|reviews...`), inbound clusters for a
 * sidecar's own ports, and the passthrough and black-hole clusters. Endpoints are grouped
 * by locality; every locality carries a weight (gRPC drops localities without one).
 */
import { selects, type Labels } from '../../api/common.js';
import { workloadMetadata } from '../../core/canonical.js';
import type { Cluster } from '../../xds/generated/envoy/config/cluster/v3/Cluster.js';
import type { ClusterLoadAssignment } from '../../xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js';
import type { LocalityLbEndpoints } from '../../xds/generated/envoy/config/endpoint/v3/LocalityLbEndpoints.js';
import type { Any } from '../../xds/generated/google/protobuf/Any.js';
import type { Endpoint, Service, ServicePort } from '../../registry/model.js';
import { formatLocality } from '../../registry/model.js';
import { ADS, BLACKHOLE_CLUSTER, duration, inboundClusterName, outboundClusterName, PASSTHROUGH_CLUSTER, socketAddress } from './envoy.js';
import { destinationRuleFor, type Mesh } from './mesh.js';
import type { ProxyNode } from './node.js';
import { effectivePolicy, type PortPolicy } from './traffic-policy.js';

/** Istio's MeshConfig connectTimeout default. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

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

export function loadAssignment(name: string, endpoints: readonly Endpoint[]): ClusterLoadAssignment {
  const groups = new Map<string, Endpoint[]>();
  for (const e of endpoints) {
    const key = formatLocality(e.locality);
    const list = groups.get(key) ?? [];
    list.push(e);
    groups.set(key, list);
  }
  const localities: LocalityLbEndpoints[] = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, list]) => {
    const first = list[0] as Endpoint;
    return {
      locality: { region: first.locality.region, zone: first.locality.zone, sub_zone: first.locality.subzone },
      load_balancing_weight: { value: list.reduce((sum, e) => sum + e.weight, 0) },
      lb_endpoints: list.map((e) => ({
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
 * `typed_extension_protocol_options` for a cluster that does not speak plain HTTP/1.1:
 * Envoy's `HttpProtocolOptions` with `explicit_http_config {http2_protocol_options {}}` or
 * `use_downstream_protocol_config {http_protocol_options {} http2_protocol_options {}}`,
 * carrying `maxConcurrentStreams` as `http2_protocol_options.max_concurrent_streams`.
 *
 * The message is packed here as an opaque Any of hand-encoded bytes because
 * `http_protocol_options.proto` is not among the protos Trellis loads (src/xds/protos.ts
 * XDS_PROTO_FILES), so it cannot be written as an `@type` object; the bytes are exactly
 * what protoc would write (checked against the .proto in the tests), and Envoy and the
 * Trellis proxy read them as usual.
 */
export function httpProtocolOptions(mode: UpstreamHttp, maxConcurrentStreams: number | undefined): Record<string, Any> | undefined {
  if (mode === UPSTREAM_HTTP.http1) return undefined;
  // envoy.config.core.v3.Http2ProtocolOptions: max_concurrent_streams = 2 (UInt32Value: value = 1)
  const h2 = maxConcurrentStreams === undefined ? [] : field(2, [0x08, ...varint(maxConcurrentStreams)]);
  // HttpProtocolOptions: explicit_http_config = 3 {http2_protocol_options = 2};
  // use_downstream_protocol_config = 4 {http_protocol_options = 1, http2_protocol_options = 2}
  const bytes = mode === UPSTREAM_HTTP.http2 ? field(3, field(2, h2)) : field(4, [...field(1, []), ...field(2, h2)]);
  return { [HTTP_PROTOCOL_OPTIONS]: { type_url: `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`, value: Buffer.from(bytes) } };
}

/** A protobuf length-delimited field (wire type 2). */
function field(number: number, body: readonly number[]): number[] {
  return [(number << 3) | 2, ...varint(body.length), ...body];
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
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
    const base: Cluster = { name, connect_timeout: duration(DEFAULT_CONNECT_TIMEOUT_MS), ...lbPolicy(policy, grpc) };
    // Proxyless gRPC always speaks HTTP/2 and ignores these options (grpc-js-xds never reads
    // them; Istio's proxyless generator leaves them out too).
    const protocolOptions = grpc ? undefined : httpProtocolOptions(upstreamHttp(port, policy), policy?.connectionPool?.http?.maxConcurrentStreams);
    if (protocolOptions !== undefined) base.typed_extension_protocol_options = protocolOptions;
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
      assignment: loadAssignment(name, endpoints),
    });
  }
  return plans;
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
export function inboundCluster(port: number, services: readonly { host: string; name: string; namespace: string }[]): Cluster {
  const name = inboundClusterName(port);
  const list = services.map((s) => ({ structValue: { fields: { host: { stringValue: s.host }, name: { stringValue: s.name }, namespace: { stringValue: s.namespace } } } }));
  return {
    name,
    metadata: { filter_metadata: { istio: { fields: { services: { listValue: { values: list } } } } } },
    type: 'STATIC',
    connect_timeout: duration(DEFAULT_CONNECT_TIMEOUT_MS),
    lb_policy: 'ROUND_ROBIN',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress('127.0.0.1', port) } }] }] },
  };
}

export function passthroughClusters(): Cluster[] {
  return [
    { name: PASSTHROUGH_CLUSTER, type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED', connect_timeout: duration(DEFAULT_CONNECT_TIMEOUT_MS) },
    { name: BLACKHOLE_CLUSTER, type: 'STATIC', connect_timeout: duration(DEFAULT_CONNECT_TIMEOUT_MS), load_assignment: { cluster_name: BLACKHOLE_CLUSTER, endpoints: [] } },
  ];
}

/**
 * A cluster's upstream connection settings, converted once (STYLE 9) for the connection
 * pools: from `typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.
 * HttpProtocolOptions"].common_http_protocol_options` (what Istio's `connectionPool`
 * idleTimeout, maxConnectionDuration and maxRequestsPerConnection become) and
 * `upstream_connection_options.tcp_keepalive` (tcp.tcpKeepalive). Clusters that carry
 * the deprecated Cluster-level `common_http_protocol_options` and
 * `max_requests_per_connection` instead are read the same way.
 *
 * The control plane sends HttpProtocolOptions as an opaque Any (its proto is not among
 * those Trellis loads), so the bytes are read with protobufjs's wire reader, as
 * `protocolOptionsOf` in clusters.ts does.
 */
import { lengthDelimitedFields, varintField } from './wire.js';
import type { Cluster__Output } from '../../xds/generated/envoy/config/cluster/v3/Cluster.js';
import { durationMs } from '../../xds/duration.js';

/** Envoy's idle timeout for upstream HTTP connections when none is configured: 1 hour. */
export const ENVOY_DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;

/** TCP keepalive probes on upstream connections; 0 in a field means the OS default for it. */
export interface TcpKeepalive {
  /** `keepalive_time`: idle seconds before the first probe (Linux default 7200). */
  readonly idleS: number;
  /** `keepalive_interval`: seconds between probes (Linux default 75). */
  readonly intervalS: number;
  /** `keepalive_probes`: unanswered probes before the connection is dropped (Linux default 9). */
  readonly probes: number;
}

export interface PoolSettings {
  /** `idle_timeout`: close an upstream connection idle this long; 0 = never. Default 1 h (Envoy). */
  readonly idleTimeoutMs: number;
  /** `max_requests_per_connection`: close a connection after this many requests; 0 = no limit (1 = no keep-alive). */
  readonly maxRequestsPerConnection: number;
  /** `max_connection_duration`: close (drain) a connection this long after it opened; 0 = never. */
  readonly maxConnectionDurationMs: number;
  /** SO_KEEPALIVE with these settings; null = keepalive off (the default). */
  readonly tcpKeepalive: TcpKeepalive | null;
}

type Obj = Record<string, unknown> | null | undefined;

interface CommonHttp {
  idleTimeoutMs: number;
  maxRequestsPerConnection: number;
  maxConnectionDurationMs: number;
}

/**
 * The settings of cluster `c`; `httpOptions` is its HttpProtocolOptions Any (or
 * undefined). Throws for bytes that are not a valid message (the cluster is NACKed).
 */
export function poolSettingsOf(c: Cluster__Output, httpOptions: unknown): PoolSettings {
  const common = httpOptions != null ? fromAny(httpOptions as Record<string, unknown>) : fromObject(c.common_http_protocol_options as unknown as Obj);
  if (common.maxRequestsPerConnection === 0 && c.max_requests_per_connection != null) common.maxRequestsPerConnection = Number(c.max_requests_per_connection.value);
  const k = c.upstream_connection_options?.tcp_keepalive;
  const tcpKeepalive = k == null ? null : { idleS: Number(k.keepalive_time?.value ?? 0), intervalS: Number(k.keepalive_interval?.value ?? 0), probes: Number(k.keepalive_probes?.value ?? 0) };
  return { ...common, tcpKeepalive };
}

function fromAny(any: Record<string, unknown>): CommonHttp {
  if ('@type' in any) return fromObject(any.common_http_protocol_options as Obj);
  const raw = any.value;
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'base64') : raw instanceof Uint8Array ? raw : new Uint8Array(0);
  const common = lengthDelimitedFields(bytes).get(1); // HttpProtocolOptions.common_http_protocol_options
  return common === undefined ? fromObject(undefined) : fromBytes(common);
}

/** core.v3.HttpProtocolOptions as a decoded object. */
function fromObject(o: Obj): CommonHttp {
  const idle = o?.idle_timeout as Parameters<typeof durationMs>[0];
  const max = (o?.max_requests_per_connection as Obj)?.value;
  return {
    idleTimeoutMs: durationMs(idle, ENVOY_DEFAULT_IDLE_TIMEOUT_MS),
    maxRequestsPerConnection: typeof max === 'number' ? max : 0,
    maxConnectionDurationMs: durationMs(o?.max_connection_duration as Parameters<typeof durationMs>[0], 0),
  };
}

/** core.v3.HttpProtocolOptions bytes: idle_timeout = 1, max_connection_duration = 3, max_requests_per_connection = 6. */
function fromBytes(bytes: Uint8Array): CommonHttp {
  const f = lengthDelimitedFields(bytes);
  const idle = f.get(1);
  const duration = f.get(3);
  const max = f.get(6);
  return {
    // Present but empty is an explicit 0: no idle timeout (Istio's `idleTimeout: 0s`).
    idleTimeoutMs: idle === undefined ? ENVOY_DEFAULT_IDLE_TIMEOUT_MS : durationBytesMs(idle),
    maxRequestsPerConnection: max === undefined ? 0 : varintField(max, 1),
    maxConnectionDurationMs: duration === undefined ? 0 : durationBytesMs(duration),
  };
}

/** google.protobuf.Duration: seconds = 1, nanos = 2. */
function durationBytesMs(bytes: Uint8Array): number {
  return varintField(bytes, 1) * 1000 + Math.round(varintField(bytes, 2) / 1e6);
}


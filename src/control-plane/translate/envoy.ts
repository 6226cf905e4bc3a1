/** Small builders for Envoy message fragments used across the translator. */
import type { Duration } from '../../xds/generated/google/protobuf/Duration.js';
import type { ConfigSource } from '../../xds/generated/envoy/config/core/v3/ConfigSource.js';
import type { Address } from '../../xds/generated/envoy/config/core/v3/Address.js';
import type { FractionalPercent } from '../../xds/generated/envoy/type/v3/FractionalPercent.js';

export function duration(ms: number): Duration {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

/** Envoy's "no limit" for uint32 thresholds (Istio `math.MaxUint32`). */
export const MAX_UINT32 = 4_294_967_295;

/**
 * An Istio `Percent` (a double, 0–100) as parts per million, as Istio's
 * `translatePercentToFractionalPercent` writes it (`value × 10000`). Rounded rather than
 * truncated: Go's `uint32(0.57 * 10000)` gives 5699 from the binary rounding error.
 */
export function millionths(percent: number): FractionalPercent {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

/** A whole percentage, as Istio writes its integer percentages and the 100% defaults. */
export function hundredths(percent: number): FractionalPercent {
  return { numerator: percent, denominator: 'HUNDRED' };
}

/** Resources come over the same ADS stream. */
export const ADS: ConfigSource = { ads: {}, resource_api_version: 'V3' };

export function socketAddress(address: string, port: number): Address {
  return { socket_address: { address, port_value: port } };
}

/** Istio's cluster names: `outbound|9080|v1|reviews.default.svc.cluster.local`. */
export function outboundClusterName(port: number, subset: string, host: string): string {
  return `outbound|${port}|${subset}|${host}`;
}

/** Istio's inbound cluster names: `inbound|9080||` (the workload's port). */
export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

export const PASSTHROUGH_CLUSTER = 'PassthroughCluster';
export const BLACKHOLE_CLUSTER = 'BlackHoleCluster';

/** Ports whose protocol is HTTP-family, routed by an HTTP connection manager. */
export function isHttpProtocol(protocol: string): boolean {
  return protocol === 'http' || protocol === 'http2' || protocol === 'grpc' || protocol === 'grpc-web';
}

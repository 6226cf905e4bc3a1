/**
 * The xDS `Node` the proxy introduces itself with: id, cluster, locality and metadata.
 * The locality is where the workload runs; the control plane orders a service's
 * endpoints by their distance from it (locality failover, control-plane.md).
 * The metadata is given as plain JSON and sent as a `google.protobuf.Struct`, in the
 * plain-object form the ADS serializer encodes (the xDS Root takes the well-known types
 * bundled with protobufjs, whose Struct fields are camelCase: `{fields: {k: {stringValue: 'v'}}}`).
 *
 * The control plane reads (src/control-plane/translate/node.ts, Istio's names where they
 * overlap): `TRELLIS_PROXY_TYPE` (`sidecar` | `router`), `NAMESPACE`, `LABELS` (a map of
 * strings), `SERVICE_ACCOUNT`, `INSTANCE_IPS` (comma-separated), `OUTBOUND_PORT`,
 * `INBOUND_PORT`.
 */
import type { Node } from '../../xds/generated/envoy/config/core/v3/Node.js';
import type { Struct } from '../../xds/generated/google/protobuf/Struct.js';
import type { Value } from '../../xds/generated/google/protobuf/Value.js';

export interface XdsLocality {
  readonly region?: string;
  readonly zone?: string;
  readonly sub_zone?: string;
}

export interface XdsNodeOptions {
  readonly id: string;
  readonly cluster?: string;
  /** Plain JSON: strings, numbers, booleans, null, arrays and nested maps. */
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly locality?: XdsLocality;
}

/**
 * `region/zone/subzone` (as WorkloadEntry `locality` writes it; trailing parts may be
 * left out) → the node's locality. Undefined when `text` has more than three parts.
 */
export function parseXdsLocality(text: string): XdsLocality | undefined {
  const parts = text.split('/');
  if (parts.length > 3) return undefined;
  const [region = '', zone = '', subZone = ''] = parts;
  return { region, zone, sub_zone: subZone };
}

/** What the proxy reports as `user_agent_name` (not matching /grpc/, which means proxyless). */
export const USER_AGENT_NAME = 'trellis-proxy';

/** Struct nesting deeper than this is cut off (a cycle in the metadata would recurse forever). */
const MAX_DEPTH = 32;

export function xdsNode(options: XdsNodeOptions): Node {
  const loc = options.locality ?? {};
  return {
    id: options.id,
    cluster: options.cluster ?? '',
    metadata: toStruct(options.metadata),
    // grpc-js-xds and Envoy both expect a locality, even an empty one (xds-notes.md).
    locality: { region: loc.region ?? '', zone: loc.zone ?? '', sub_zone: loc.sub_zone ?? '' },
    user_agent_name: USER_AGENT_NAME,
  };
}

/** Plain JSON object → `google.protobuf.Struct`. Keys with `undefined` values are left out. */
export function toStruct(json: Readonly<Record<string, unknown>>, depth = 0): Struct {
  const fields: Record<string, Value> = {};
  for (const [key, value] of Object.entries(json)) {
    if (value === undefined) continue;
    fields[key] = toValue(value, depth + 1);
  }
  return { fields };
}

/** Plain JSON value → `google.protobuf.Value`. Non-JSON values (functions, symbols, bigint) become strings. */
export function toValue(value: unknown, depth = 0): Value {
  if (value === null || value === undefined || depth > MAX_DEPTH) return { nullValue: 'NULL_VALUE' };
  switch (typeof value) {
    case 'string':
      return { stringValue: value };
    case 'number':
      return { numberValue: value };
    case 'boolean':
      return { boolValue: value };
    case 'object':
      if (Array.isArray(value)) return { listValue: { values: value.map((v) => toValue(v, depth + 1)) } };
      return { structValue: toStruct(value as Record<string, unknown>, depth) };
    default:
      return { stringValue: String(value) };
  }
}

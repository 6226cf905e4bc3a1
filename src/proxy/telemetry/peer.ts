/**
 * Who is at the other end of a request, for the `source_*` / `destination_*` metric
 * labels (istio-compat §3): Kiali's graph and Istio's dashboards join a client's
 * `reporter="source"` series and a server's `reporter="destination"` series on those.
 *
 * - The destination of an outbound request is the endpoint the balancer picked: the
 *   control plane puts Istio's endpoint metadata `filter_metadata.istio.workload`
 *   (`name;namespace;canonical-service;canonical-revision;cluster`) on every EDS endpoint.
 * - The source of an inbound request is told by the calling proxy in Istio's metadata
 *   exchange headers, `x-envoy-peer-metadata-id` and `x-envoy-peer-metadata` (a
 *   base64 protobuf `google.protobuf.Struct` of the caller's node metadata: NAME,
 *   NAMESPACE, WORKLOAD_NAME, LABELS, CLUSTER_ID), which the receiving proxy removes
 *   before the application sees the request.
 *
 * Decoded headers are cached by their value (a proxy sees few distinct callers), so a
 * request costs a Map lookup.
 */

import { canonicalOf, DEFAULT_CLUSTER_ID } from '../../core/canonical.js';

export interface PeerWorkload {
  /** Distinguishes series: equal keys, equal labels. */
  readonly key: string;
  readonly workload: string;
  readonly namespace: string;
  readonly app: string;
  readonly version: string;
  readonly cluster: string;
}


export const PEER_ID_HEADER = 'x-envoy-peer-metadata-id';
export const PEER_METADATA_HEADER = 'x-envoy-peer-metadata';
const CACHE_LIMIT = 1024;

/** Reads `name;namespace;canonical-service;canonical-revision;cluster`; null when malformed. */
export function peerFromWorkloadMetadata(value: string): PeerWorkload | null {
  const parts = value.split(';');
  if (parts.length < 4 || parts[0] === '' || parts[1] === '') return null;
  const [workload = '', namespace = '', app = '', version = '', cluster = DEFAULT_CLUSTER_ID] = parts;
  return { key: value, workload, namespace, app: app || workload, version: version || 'latest', cluster: cluster || DEFAULT_CLUSTER_ID };
}

// ---- the metadata exchange headers ----

/** What a proxy says about itself to the proxies it calls. */
export interface SelfDescription {
  readonly name: string;
  readonly workload: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** The two request headers (name, value, name, value) describing `self`, computed once per proxy. */
export function peerHeaders(self: SelfDescription): readonly string[] {
  const { app, version } = canonicalOf(self.labels, self.workload);
  const labels: Record<string, string> = { ...self.labels, 'service.istio.io/canonical-name': app, 'service.istio.io/canonical-revision': version };
  const struct = encodeStruct({ NAME: self.name, NAMESPACE: self.namespace, WORKLOAD_NAME: self.workload, CLUSTER_ID: DEFAULT_CLUSTER_ID, LABELS: labels });
  return [PEER_ID_HEADER, `sidecar~0.0.0.0~${self.name}.${self.namespace}~${self.namespace}.svc.cluster.local`, PEER_METADATA_HEADER, struct.toString('base64')];
}

const decoded = new Map<string, PeerWorkload | null>();

/**
 * Removes the exchange headers from a flat header list and returns the caller they
 * describe (null when absent or unreadable).
 */
export function takePeer(headers: string[]): PeerWorkload | null {
  let value: string | undefined;
  for (let i = headers.length - 2; i >= 0; i -= 2) {
    const name = headers[i];
    if (name === PEER_METADATA_HEADER) value = headers[i + 1];
    else if (name !== PEER_ID_HEADER) continue;
    headers.splice(i, 2);
  }
  if (value === undefined) return null;
  let peer = decoded.get(value);
  if (peer === undefined) {
    peer = peerFromStruct(value);
    if (decoded.size >= CACHE_LIMIT) decoded.clear(); // bounded: a misbehaving caller cannot grow it
    decoded.set(value, peer);
  }
  return peer;
}

function peerFromStruct(base64: string): PeerWorkload | null {
  const fields = decodeStruct(Buffer.from(base64, 'base64'));
  if (fields === null) return null;
  const str = (k: string): string => (typeof fields[k] === 'string' ? (fields[k] as string) : '');
  const rawLabels = fields.LABELS;
  const labels = rawLabels !== null && typeof rawLabels === 'object' ? (rawLabels as Record<string, string>) : {};
  const workload = str('WORKLOAD_NAME') || str('NAME');
  const namespace = str('NAMESPACE');
  if (workload === '' || namespace === '') return null;
  const { app, version } = canonicalOf(labels, workload);
  const cluster = str('CLUSTER_ID') || DEFAULT_CLUSTER_ID;
  return { key: `${workload};${namespace};${app};${version};${cluster}`, workload, namespace, app, version, cluster };
}

// ---- google.protobuf.Struct, just strings and nested structs ----
// Struct { map<string, Value> fields = 1 }; map entry { string key = 1; Value value = 2 };
// Value { string_value = 3; Struct struct_value = 5; ... }. Hand-written: two field types
// do not justify loading protobuf descriptors on the request path.

type StructValue = string | { readonly [k: string]: StructValue };

function encodeStruct(fields: Readonly<Record<string, StructValue>>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of Object.entries(fields)) {
    const value = typeof v === 'string' ? lengthDelimited(3, Buffer.from(v)) : lengthDelimited(5, encodeStruct(v));
    parts.push(lengthDelimited(1, Buffer.concat([lengthDelimited(1, Buffer.from(k)), lengthDelimited(2, value)])));
  }
  return Buffer.concat(parts);
}

function lengthDelimited(field: number, body: Buffer): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(body.length), body]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** Reads a Struct's string and struct values (others are skipped); null when malformed. */
function decodeStruct(buf: Buffer, depth = 0): Record<string, StructValue> | null {
  if (depth > 4) return null;
  const out: Record<string, StructValue> = {};
  let ok = true;
  forEachField(buf, (field, body) => {
    if (field !== 1 || body === null) return;
    let key: string | undefined;
    let value: StructValue | undefined;
    forEachField(body, (f, b) => {
      if (f === 1 && b !== null) key = b.toString('utf8');
      else if (f === 2 && b !== null) {
        forEachField(b, (vf, vb) => {
          if (vf === 3 && vb !== null) value = vb.toString('utf8');
          else if (vf === 5 && vb !== null) value = decodeStruct(vb, depth + 1) ?? undefined;
        }) || (ok = false);
      }
    }) || (ok = false);
    if (key !== undefined && value !== undefined) out[key] = value;
  }) || (ok = false);
  return ok ? out : null;
}

/**
 * Calls `fn(field, body)` for each field (body null for non-length-delimited fields,
 * which are skipped); false when the bytes are not well-formed protobuf.
 */
function forEachField(buf: Buffer, fn: (field: number, body: Buffer | null) => void): boolean {
  let pos = 0;
  const readVarint = (): number | undefined => {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= buf.length) return undefined;
      const b = buf[pos++] as number;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return result;
    }
    return undefined;
  };
  while (pos < buf.length) {
    const tag = readVarint();
    if (tag === undefined) return false;
    const wire = tag & 7;
    const field = Math.floor(tag / 8);
    if (wire === 2) {
      const len = readVarint();
      if (len === undefined || pos + len > buf.length) return false;
      fn(field, buf.subarray(pos, pos + len));
      pos += len;
    } else if (wire === 0) {
      if (readVarint() === undefined) return false;
      fn(field, null);
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      if (pos > buf.length) return false;
      fn(field, null);
    } else {
      return false;
    }
  }
  return true;
}

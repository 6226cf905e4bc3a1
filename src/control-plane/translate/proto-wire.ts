/**
 * A few protobuf wire-format writers, for the extension messages that Trellis packs as
 * opaque Anys because their `.proto` files are not among those it loads (src/xds/protos.ts
 * XDS_PROTO_FILES): the upstream `HttpProtocolOptions` and the retry predicates. The
 * bytes are what protoc writes (fields in number order, zero values left out); the tests
 * decode them with the real `.proto`. Envoy, grpc-js-xds and the Trellis proxy read the
 * Anys as usual.
 */
import type { Any } from '../../xds/generated/google/protobuf/Any.js';

/** A length-delimited field (wire type 2): a sub-message. */
export function messageField(number: number, body: readonly number[]): number[] {
  return [(number << 3) | 2, ...varint(body.length), ...body];
}

/** A varint field (wire type 0); proto3 leaves zero out. */
export function varintField(number: number, value: number): number[] {
  return value === 0 ? [] : [number << 3, ...varint(value)];
}

/** A `google.protobuf.Duration` field from milliseconds: seconds = 1, nanos = 2. */
export function durationField(number: number, ms: number): number[] {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return messageField(number, [...varintField(1, seconds), ...varintField(2, nanos)]);
}

/** A `google.protobuf.UInt32Value` field: value = 1. */
export function uint32ValueField(number: number, value: number): number[] {
  return messageField(number, varintField(1, value));
}

/** An Any of `type` (a full message name) holding `bytes`. */
export function opaqueAny(type: string, bytes: readonly number[]): Any {
  return { type_url: `type.googleapis.com/${type}`, value: Buffer.from(bytes) };
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

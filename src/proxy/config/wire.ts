/**
 * Reading typed configs the proxy does not load descriptors for (the control plane sends
 * some Anys, such as HttpProtocolOptions, as opaque bytes), with protobufjs's wire
 * reader; and reading `google.protobuf.Struct`/`Value` fields whichever way they were
 * decoded.
 */
import protobuf from 'protobufjs';

/** The length-delimited fields of a message by number (the last one wins, as in proto3); others skipped. */
export function lengthDelimitedFields(bytes: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const r = protobuf.Reader.create(bytes);
  while (r.pos < r.len) {
    const tag = r.uint32();
    if ((tag & 7) === 2) out.set(tag >>> 3, r.bytes());
    else r.skipType(tag & 7);
  }
  return out;
}

/** The varint field `number` of a message (0 when absent; the last one wins). */
export function varintField(bytes: Uint8Array, number: number): number {
  const r = protobuf.Reader.create(bytes);
  let out = 0;
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === number << 3) out = r.uint32();
    else r.skipType(tag & 7);
  }
  return out;
}

/**
 * A field of a decoded `google.protobuf.Value`/`Struct`: grpc-js (proto-loader, keepCase)
 * spells them `string_value`, protobufjs `stringValue`; read either.
 */
export function protoField(v: unknown, snake: string, camel: string): unknown {
  if (v === null || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  return o[snake] ?? o[camel];
}

/**
 * The xDS descriptor: the part of the Envoy protos Trellis encodes and decodes, as
 * protobufjs JSON, made at build time from the full set of .proto files
 * (`scripts/write-xds-descriptor.mjs`) and loaded at run time instead of them (protos.ts).
 *
 * Why: parsing the .proto files at start-up made a `Root` of ~530 types with their
 * options and comments, kept the parsed files' text alive, and left the garbage of the
 * parse behind; it is most of the memory an idle proxy holds above Node and grpc-js.
 * The descriptor holds only the types reachable through fields from the messages Trellis
 * sends (DESCRIPTOR_ROOT_TYPES), with what the wire codec needs of each: field names,
 * numbers, types, rules, map keys, oneofs, proto2 defaults, `packed`, enum values. So
 * `encode`, `decode`, `fromObject` and `toObject` give the same bytes and objects as the
 * full Root (a test compares them); validation annotations, comments and the types
 * nothing references are left out.
 */
import protobuf from 'protobufjs';
import type { INamespace, Root } from 'protobufjs';
import { TYPE_URLS } from './type-urls.js';

/**
 * The messages the descriptor starts from: every resource and `typed_config` type in
 * TYPE_URLS, the ADS messages, and `Any`. A type outside their closure is unknown to
 * Trellis's encoder and decoder, as it was to the translation and the proxy before.
 */
export const DESCRIPTOR_ROOT_TYPES: readonly string[] = [
  ...Object.values(TYPE_URLS).map((url) => url.slice(url.lastIndexOf('/') + 1)),
  'envoy.service.discovery.v3.DiscoveryRequest',
  'envoy.service.discovery.v3.DiscoveryResponse',
  'envoy.service.discovery.v3.DeltaDiscoveryRequest',
  'envoy.service.discovery.v3.DeltaDiscoveryResponse',
  'google.protobuf.Any',
];

/** The services the descriptor holds: ADS, for grpc-js's client and server. */
export const DESCRIPTOR_SERVICES: readonly string[] = ['envoy.service.discovery.v3.AggregatedDiscoveryService'];

type Described = protobuf.Type | protobuf.Enum;

/**
 * The descriptor of `typeNames`, every type their fields reach, and `serviceNames` (whose
 * messages must be among them), from a resolved `root`.
 */
export function descriptorOf(root: Root, typeNames: readonly string[], serviceNames: readonly string[]): INamespace {
  const reached = new Set<Described>();
  const visit = (t: Described): void => {
    if (reached.has(t)) return;
    reached.add(t);
    if (!(t instanceof protobuf.Type)) return;
    for (const field of t.fieldsArray) {
      const resolved = field.resolve().resolvedType;
      if (resolved !== null) visit(resolved);
    }
  };
  for (const name of typeNames) visit(root.lookupTypeOrEnum(name));
  const out: INamespace = {};
  // Sorted, so that the file is the same for the same protos.
  for (const t of [...reached].sort((a, b) => a.fullName.localeCompare(b.fullName))) {
    place(out, t.fullName, t instanceof protobuf.Type ? typeJson(t) : enumJson(t));
  }
  for (const name of serviceNames) place(out, root.lookupService(name).fullName, serviceJson(root.lookupService(name)));
  return out;
}

function serviceJson(service: protobuf.Service): protobuf.IService {
  const methods: Record<string, Omit<protobuf.IMethod, 'comment'>> = {};
  for (const m of service.methodsArray) {
    m.resolve();
    methods[m.name] = {
      requestType: (m.resolvedRequestType as protobuf.Type).fullName,
      responseType: (m.resolvedResponseType as protobuf.Type).fullName,
      ...(m.requestStream === true ? { requestStream: true } : {}),
      ...(m.responseStream === true ? { responseStream: true } : {}),
    };
  }
  return { methods: methods as Record<string, protobuf.IMethod> };
}

function typeJson(type: protobuf.Type): protobuf.IType {
  const fields: Record<string, protobuf.IField & { rule?: string; keyType?: string }> = {};
  for (const f of type.fieldsArray) {
    // Absolute names (leading dot): the closure leaves out types a relative name could otherwise resolve against.
    const fieldType = f.resolvedType === null ? f.type : f.resolvedType.fullName;
    const options = codecOptions(f.options);
    fields[f.name] = {
      type: fieldType,
      id: f.id,
      ...(f.repeated && !(f instanceof protobuf.MapField) ? { rule: 'repeated' } : {}),
      ...(f instanceof protobuf.MapField ? { keyType: f.keyType } : {}),
      ...(options === undefined ? {} : { options }),
    };
  }
  const oneofs: Record<string, protobuf.IOneOf> = {};
  for (const o of type.oneofsArray) oneofs[o.name] = { oneof: [...o.oneof] };
  return {
    fields,
    ...(type.oneofsArray.length > 0 ? { oneofs } : {}),
    ...editionOf(type),
  };
}

function enumJson(e: protobuf.Enum): protobuf.IEnum {
  return { values: { ...e.values }, ...editionOf(e) };
}

/** Field options the codec reads: `packed` (proto3 repeated scalars are packed unless false) and proto2 `default`. */
function codecOptions(options: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (options === undefined) return undefined;
  const kept: Record<string, unknown> = {};
  if ('packed' in options) kept.packed = options.packed;
  if ('default' in options) kept.default = options.default;
  return Object.keys(kept).length > 0 ? kept : undefined;
}

/** protobufjs reads JSON without an edition as proto3; proto2 types (none in the closure today) say so. */
function editionOf(t: Described): { edition?: string } {
  const edition = (t as unknown as { _edition?: string })._edition;
  return edition !== undefined && edition !== 'proto3' ? { edition } : {};
}

function place(out: INamespace, fullName: string, json: protobuf.IType | protobuf.IEnum | protobuf.IService): void {
  const parts = fullName.split('.').filter((p) => p !== '');
  let ns: INamespace = out;
  for (const part of parts.slice(0, -1)) {
    ns.nested ??= {};
    ns = (ns.nested[part] ??= {}) as INamespace;
  }
  const last = parts[parts.length - 1] as string;
  ns.nested ??= {};
  // A type's nested types may have been placed already (sorted order puts the parent first, but be safe).
  ns.nested[last] = { ...json, ...(ns.nested[last] as INamespace | undefined) };
}

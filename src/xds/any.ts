/**
 * Packing xDS resources into `google.protobuf.Any` and unpacking them, with the plain
 * object form grpc-js uses (protos.ts LOADER_OPTIONS: snake_case names, enums and 64-bit
 * integers as strings, durations as `{seconds, nanos}`, wrappers as `{value}`).
 *
 * An `Any` nested in a message (a `typed_config`, `api_listener`...) is written in
 * protobufjs's JSON form `{'@type': url, ...fields}`; protobufjs `fromObject` packs it
 * and `toObject` with `json` unpacks it again.
 *
 * protobufjs `fromObject` never complains: it turns a string in a uint32 into 0, drops
 * unknown enum names and misspelt fields, and packs an `@type` it cannot find as an
 * empty Any. Its `Type.verify` cannot stand in, because it expects the runtime form
 * (enums as numbers, int64 as Long) and rejects `'ROUND_ROBIN'` and `'10'`, and it does
 * not look inside `@type` objects. So `encodeResource` checks the object against the
 * reflected schema first, in the loader's form, and returns every problem with its path.
 */
import { TrellisError } from '../core/errors.js';
import type { AnyExtension } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import type { Field, Type } from 'protobufjs';
import type { Any } from './generated/google/protobuf/Any.js';
import { CONVERSION_OPTIONS, xdsRoot } from './protos.js';

/** An Any as grpc-js sends it: put it in `DiscoveryResponse.resources` as is. */
export interface PackedAny {
  readonly type_url: string;
  readonly value: Buffer;
}

export type EncodeResult = { readonly ok: true; readonly any: PackedAny } | { readonly ok: false; readonly error: string };

export type DecodeResult<T> =
  | { readonly ok: true; readonly type_url: string; readonly value: T }
  | { readonly ok: false; readonly error: string };

/** Deeper than any real Envoy config; protobufjs's own limit is 100. */
const MAX_DEPTH = 64;
/** The error message lists at most this many problems. */
const MAX_ERRORS = 20;

const typeCache = new Map<string, Type | null>();
/** google.protobuf.Any of the Root, compared by identity (`Type.fullName` is recomputed per read). */
let anyType: Type | undefined;

/**
 * The message type a type URL names (the part after the last `/`), or null when the
 * loaded protos do not define it.
 */
export function typeForUrl(typeUrl: string): Type | null {
  let type = typeCache.get(typeUrl);
  if (type === undefined) {
    const found = xdsRoot().lookup(typeUrl.slice(typeUrl.lastIndexOf('/') + 1));
    type = found instanceof protobuf.Type ? found : null;
    typeCache.set(typeUrl, type);
  }
  return type;
}

/**
 * `message` as an Any nested in another message (`typed_config`, `api_listener`...), in
 * the `{'@type': url, ...fields}` form that `encodeResource` checks and packs, and that
 * grpc-js delivers for Anys of known types. Keeps the generated type of `message`.
 */
export function anyOf<T extends object>(typeUrl: string, message: T): T & AnyExtension {
  return { '@type': typeUrl, ...message };
}

/**
 * Checks `message` against the type `typeUrl` names, including Anys nested as `@type`
 * objects, and encodes it. Never throws: an unknown type, a wrong value or an unknown
 * field gives `{ok: false, error}` listing each problem with its field path.
 */
export function encodeResource(typeUrl: string, message: object): EncodeResult {
  const type = typeForUrl(typeUrl);
  if (type === null) return { ok: false, error: `unknown type URL "${typeUrl}": not a message of the loaded xDS protos` };
  const checker = new Checker();
  checker.message(type, message, 0);
  if (checker.errors.length > 0) return { ok: false, error: formatErrors(type, checker.errors) };
  try {
    return { ok: true, any: packAny(typeUrl, message) };
  } catch (err) {
    return { ok: false, error: `${type.fullName.slice(1)}: ${(err as Error).message}` };
  }
}

/**
 * Encodes `message` as the type `typeUrl` names, without checking it: for objects that
 * already passed `encodeResource` or came out of `decodeAny`. Wrong values are coerced
 * silently (see the module comment). Throws for a type URL the protos do not define and
 * for a message field that is not an object; both are bugs in the caller.
 */
export function packAny(typeUrl: string, message: object): PackedAny {
  const type = typeForUrl(typeUrl);
  if (type === null) throw new TrellisError('TRELLIS_XDS_UNKNOWN_TYPE', `packAny: unknown type URL "${typeUrl}"`);
  const bytes = type.encode(type.fromObject(message)).finish();
  return { type_url: typeUrl, value: Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
}

/**
 * Unpacks an Any into a plain object with the loader's conversion (defaults filled in,
 * nested Anys as `@type` objects). Accepts both forms grpc-js delivers: `{type_url,
 * value}` (bytes, or base64 text) and, for types the loaded protos know, the already
 * unpacked `{'@type': url, ...fields}`, which is returned without `@type` and not
 * re-checked. With `expectedTypeUrl`, any other type is an error. Never throws. `T` is
 * the caller's claim, e.g. `Listener__Output`.
 */
export function decodeAny<T>(any: Any | PackedAny, expectedTypeUrl?: string): DecodeResult<T> {
  if (typeof any !== 'object' || any === null) return { ok: false, error: 'an Any must be an object' };
  const unpacked = '@type' in any;
  const typeUrl: unknown = unpacked ? any['@type'] : (any as PackedAny).type_url;
  if (typeof typeUrl !== 'string') return { ok: false, error: 'the Any has no type URL' };
  if (expectedTypeUrl !== undefined && typeUrl !== expectedTypeUrl) {
    return { ok: false, error: `expected an Any of type "${expectedTypeUrl}", got "${typeUrl}"` };
  }
  if (unpacked) {
    const { '@type': _, ...fields } = any as { readonly '@type': string };
    return { ok: true, type_url: typeUrl, value: fields as T };
  }
  const type = typeForUrl(typeUrl);
  if (type === null) return { ok: false, error: `unknown type URL "${typeUrl}": not a message of the loaded xDS protos` };
  const raw: unknown = (any as PackedAny).value;
  const bytes = typeof raw === 'string' ? Buffer.from(raw, 'base64') : raw;
  if (!(bytes instanceof Uint8Array)) return { ok: false, error: `the Any of type "${typeUrl}" has no bytes value` };
  try {
    return { ok: true, type_url: typeUrl, value: type.toObject(type.decode(bytes), CONVERSION_OPTIONS) as T };
  } catch (err) {
    return { ok: false, error: `cannot decode ${type.fullName.slice(1)}: ${(err as Error).message}` };
  }
}

function formatErrors(type: Type, errors: readonly string[]): string {
  const shown = errors.slice(0, MAX_ERRORS).join('; ');
  const more = errors.length > MAX_ERRORS ? `; and ${errors.length - MAX_ERRORS} more` : '';
  return `invalid ${type.fullName.slice(1)}: ${shown}${more}`;
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isSet(v: unknown): boolean {
  return v !== null && v !== undefined;
}

function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

/**
 * Walks a plain object along the reflected schema, collecting problems. The field path is
 * a stack of segments joined only when a problem is found: checking runs once per
 * resource per snapshot, and valid resources are the common case.
 */
class Checker {
  readonly errors: string[] = [];
  readonly #path: string[] = [];

  message(type: Type, value: unknown, depth: number): void {
    if (depth > MAX_DEPTH) return this.#fail(`nested more than ${MAX_DEPTH} deep`);
    if (!isObject(value)) return this.#fail(`${type.name} object expected, got ${show(value)}`);
    anyType ??= xdsRoot().lookupType('google.protobuf.Any');
    if (type === anyType) return this.#any(type, value, depth);
    for (const key in value) {
      if (!Object.hasOwn(value, key)) continue;
      const v = value[key];
      const field = type.fields[key];
      this.#path.push(key);
      if (field !== undefined) {
        if (isSet(v)) this.#field(field, v, depth);
      } else if (type.oneofs?.[key] === undefined) {
        this.#fail(`unknown field of ${type.fullName.slice(1)}`);
      }
      this.#path.pop();
    }
    if (type.oneofsArray.length > 0) this.#oneofs(type, value);
  }

  #fail(problem: string): void {
    let path = '';
    for (const segment of this.#path) path += path === '' || segment.startsWith('[') ? segment : `.${segment}`;
    this.errors.push(`${path === '' ? '(root)' : path}: ${problem}`);
  }

  /** At most one member of a oneof is set; a virtual oneof field (LOADER_OPTIONS.oneofs) names it. */
  #oneofs(type: Type, value: Obj): void {
    for (const oneof of type.oneofsArray) {
      const set = oneof.oneof.filter((name) => isSet(value[name]));
      const named = value[oneof.name];
      if (set.length <= 1 && !isSet(named)) continue;
      this.#path.push(oneof.name);
      if (set.length > 1) this.#fail(`only one of ${set.join(', ')} may be set`);
      if (isSet(named) && (typeof named !== 'string' || !oneof.oneof.includes(named))) {
        this.#fail(`one of ${oneof.oneof.join(', ')} expected, got ${show(named)}`);
      } else if (isSet(named) && set.length === 1 && set[0] !== named) {
        this.#fail(`says "${String(named)}" but ${set[0] as string} is set`);
      }
      this.#path.pop();
    }
  }

  /** `{'@type': url, ...fields}` (packed by fromObject) or `{type_url, value}` (opaque bytes). */
  #any(anyType: Type, value: Obj, depth: number): void {
    if (!('@type' in value)) {
      for (const key in value) {
        if (!Object.hasOwn(value, key)) continue;
        const field = anyType.fields[key];
        const v = value[key];
        this.#path.push(key);
        if (field === undefined) this.#fail('unknown field of google.protobuf.Any (an unpacked Any needs "@type")');
        else if (isSet(v)) this.#field(field, v, depth);
        this.#path.pop();
      }
      return;
    }
    const url = value['@type'];
    if (typeof url !== 'string') return this.#fail(`"@type" must be a string, got ${show(url)}`);
    const inner = typeForUrl(url);
    if (inner === null) return this.#fail(`unknown @type "${url}" (not a message of the loaded xDS protos)`);
    const { '@type': _, ...fields } = value;
    this.message(inner, fields, depth + 1);
  }

  #field(field: Field, v: unknown, depth: number): void {
    if (field.map) {
      if (!isObject(v)) return this.#fail(`map object expected, got ${show(v)}`);
      for (const key in v) {
        if (!Object.hasOwn(v, key)) continue;
        this.#path.push(`[${JSON.stringify(key)}]`);
        this.#value(field, v[key], depth);
        this.#path.pop();
      }
    } else if (field.repeated) {
      if (!Array.isArray(v)) return this.#fail(`array expected, got ${show(v)}`);
      for (let i = 0; i < v.length; i++) {
        this.#path.push(`[${i}]`);
        this.#value(field, v[i], depth);
        this.#path.pop();
      }
    } else {
      this.#value(field, v, depth);
    }
  }

  #value(field: Field, v: unknown, depth: number): void {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) return this.message(resolved, v, depth + 1);
    if (resolved instanceof protobuf.Enum) {
      // Names as the loader writes them (enums: String); numbers, as proto3 enums are open.
      const known = typeof v === 'string' ? Object.hasOwn(resolved.values, v) : Number.isInteger(v);
      if (!known) this.#fail(`one of ${Object.keys(resolved.values).join(', ')} expected, got ${show(v)}`);
      return;
    }
    const problem = scalarProblem(field.type, v);
    if (problem !== null) this.#fail(`${problem}, got ${show(v)}`);
  }
}

/** [min, max] of the integer types; 64-bit bounds as BigInt, as they exceed doubles. */
const INT32_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  int32: [-(2 ** 31), 2 ** 31 - 1],
  sint32: [-(2 ** 31), 2 ** 31 - 1],
  sfixed32: [-(2 ** 31), 2 ** 31 - 1],
  uint32: [0, 2 ** 32 - 1],
  fixed32: [0, 2 ** 32 - 1],
};
const INT64_RANGES: Readonly<Record<string, readonly [bigint, bigint]>> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

/** Why `v` is not a valid `type` scalar in the loader's form, or null when it is. */
function scalarProblem(type: string, v: unknown): string | null {
  switch (type) {
    case 'string':
      return typeof v === 'string' ? null : 'string expected';
    case 'bool':
      return typeof v === 'boolean' ? null : 'boolean expected';
    case 'double':
    case 'float':
      // json: true writes non-finite values as strings.
      return typeof v === 'number' || v === 'NaN' || v === 'Infinity' || v === '-Infinity' ? null : `${type} expected`;
    case 'bytes':
      return v instanceof Uint8Array || (typeof v === 'string' && /^[A-Za-z0-9+/]*={0,2}$/.test(v)) ? null : 'bytes expected (a Buffer or base64 text)';
  }
  const small = INT32_RANGES[type];
  if (small !== undefined) {
    const ok = typeof v === 'number' && Number.isInteger(v) && v >= small[0] && v <= small[1];
    return ok ? null : `${type} expected (an integer from ${small[0]} to ${small[1]})`;
  }
  const wide = INT64_RANGES[type];
  if (wide !== undefined) {
    // longs: String writes 64-bit integers as decimal strings; safe integers also do.
    const n = Number.isSafeInteger(v) ? BigInt(v as number) : typeof v === 'string' && /^-?\d+$/.test(v) ? BigInt(v) : null;
    const ok = n !== null && n >= wide[0] && n <= wide[1];
    return ok ? null : `${type} expected (an integer or decimal string from ${wide[0]} to ${wide[1]})`;
  }
  return `unsupported field type ${type}`;
}

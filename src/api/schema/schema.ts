/**
 * A small schema language for converting YAML values (wire form) into the typed,
 * readonly domain model, collecting every error with its field path.
 *
 * Why not a validation library (zod, ajv): every rule here must report a stable Trellis
 * code and an Istio-style message at the exact YAML node it concerns, and conversion must
 * resolve Istio semantics as it goes (short host names against the rule's namespace,
 * durations to milliseconds, defaults). Those libraries can be bent to each of these,
 * but not more simply than these ~250 lines. Pattern after kubernetes-client's
 * wire → domain conversion with path errors.
 */
import type { Code } from '../../core/codes.js';
import type { Path } from './path.js';

/** What a schema is given while it converts: where to report, and the resource's context. */
export interface ParseContext {
  /** Reports a finding at `path`; positions are resolved from the path afterwards. */
  report(code: Code, path: Path, message: string): void;
  /** Namespace of the resource being converted (short names resolve against it). */
  readonly namespace: string;
  /** The mesh's DNS domain, `cluster.local` unless configured. */
  readonly domain: string;
}

/**
 * Converts one value. Returns undefined when the value is invalid (after reporting why);
 * the caller keeps going so that every error of a resource is reported at once.
 */
export interface Schema<T> {
  readonly expected: string;
  parse(value: unknown, path: Path, ctx: ParseContext): T | undefined;
}

type Presence = 'optional' | 'required' | 'default';

/** A field of an object schema: its schema and whether it may be absent. */
export interface Field<T, P extends Presence = Presence> {
  readonly schema: Schema<T>;
  readonly presence: P;
  readonly fallback: T | undefined;
  /** Custom message when a required field is missing. */
  readonly missing: string | undefined;
}

export function required<T>(schema: Schema<T>, missing?: string): Field<T, 'required'> {
  return { schema, presence: 'required', fallback: undefined, missing };
}

export function optional<T>(schema: Schema<T>): Field<T, 'optional'> {
  return { schema, presence: 'optional', fallback: undefined, missing: undefined };
}

/** A field filled with `fallback` when absent (Istio's default, applied once, here). */
export function withDefault<T>(schema: Schema<T>, fallback: T): Field<T, 'default'> {
  return { schema, presence: 'default', fallback, missing: undefined };
}

export type Shape = Readonly<Record<string, Schema<unknown> | Field<unknown>>>;
type Infer<F> = F extends Field<infer T, Presence> ? T : F extends Schema<infer T> ? T : never;
type IsOptional<F> = F extends Field<unknown, 'required' | 'default'> ? false : true;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ShapeOutput<S extends Shape> = Simplify<
  { readonly [K in keyof S as IsOptional<S[K]> extends true ? K : never]?: Infer<S[K]> } & {
    readonly [K in keyof S as IsOptional<S[K]> extends true ? never : K]: Infer<S[K]>;
  }
>;
export type Output<S> = S extends Schema<infer T> ? T : never;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '...' : value)}`;
  return `${typeof value} ${String(value)}`;
}

export function wrongType(ctx: ParseContext, path: Path, expected: string, value: unknown): undefined {
  ctx.report('TRELLIS_CONFIG_WRONG_TYPE', path, `expected ${expected}, got ${describeValue(value)}`);
  return undefined;
}

export interface ObjectOptions<In, Out> {
  /** Cross-field rules, run when every field converted; report and return false to reject. */
  readonly check?: (value: In, path: Path, ctx: ParseContext) => boolean | void;
  /** Resolution to the domain form (deprecated spellings folded in, names resolved). */
  readonly map?: (value: In, path: Path, ctx: ParseContext) => Out;
  /** Human name for messages: "expected a Destination object". */
  readonly expected?: string;
}

/**
 * An object with known fields; unknown fields are reported, never silently dropped.
 * (`NoInfer` keeps TypeScript from inferring `Out` from where the schema is used — as a
 * field of another shape it would become `unknown`.)
 */
export function object<S extends Shape, Out = ShapeOutput<S>>(
  shape: S,
  options: ObjectOptions<ShapeOutput<S>, Out> = {},
): Schema<NoInfer<Out>> {
  const entries = Object.entries(shape).map(([key, f]) => [key, toField(f)] as const);
  const known = new Set(Object.keys(shape));
  return {
    expected: options.expected ?? 'an object',
    parse(value, path, ctx) {
      if (!isPlainObject(value)) return wrongType(ctx, path, this.expected, value);
      let ok = true;
      for (const key of Object.keys(value)) {
        if (!known.has(key)) {
          ok = false;
          ctx.report('TRELLIS_CONFIG_UNKNOWN_FIELD', [...path, key], unknownFieldMessage(key, known));
        }
      }
      const out: Record<string, unknown> = {};
      for (const [key, field] of entries) {
        const raw = value[key];
        if (raw === undefined || raw === null) {
          if (field.presence === 'required') {
            ok = false;
            ctx.report('TRELLIS_CONFIG_REQUIRED', [...path, key], field.missing ?? 'required field is missing');
          } else if (field.presence === 'default') {
            out[key] = field.fallback;
          }
          continue;
        }
        const parsed = field.schema.parse(raw, [...path, key], ctx);
        if (parsed === undefined) ok = false;
        else out[key] = parsed;
      }
      if (!ok) return undefined;
      const typed = out as ShapeOutput<S>;
      if (options.check !== undefined && options.check(typed, path, ctx) === false) return undefined;
      return options.map === undefined ? (typed as unknown as Out) : options.map(typed, path, ctx);
    },
  };
}

function toField(f: Schema<unknown> | Field<unknown>): Field<unknown> {
  return 'presence' in f ? f : optional(f);
}

function unknownFieldMessage(key: string, known: ReadonlySet<string>): string {
  const near = closest(key, known);
  return near === undefined ? `unknown field "${key}"` : `unknown field "${key}" (did you mean "${near}"?)`;
}

/** The known name within edit distance 2 of `key`, if any: catches typos like "wieght". */
function closest(key: string, known: ReadonlySet<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

export interface ArrayOptions {
  readonly min?: number;
  /** Message when fewer than `min` items. */
  readonly tooFew?: string;
  /** Report duplicate items (by this key) as TRELLIS_CONFIG_DUPLICATE. */
  readonly uniqueBy?: (item: unknown) => string | undefined;
  readonly uniqueWhat?: string;
}

export function array<T>(item: Schema<T>, options: ArrayOptions = {}): Schema<readonly T[]> {
  return {
    expected: 'a list',
    parse(value, path, ctx) {
      if (!Array.isArray(value)) return wrongType(ctx, path, 'a list', value);
      if (options.min !== undefined && value.length < options.min) {
        ctx.report('TRELLIS_CONFIG_REQUIRED', path, options.tooFew ?? `must have at least ${options.min} item(s)`);
        return undefined;
      }
      const out: T[] = [];
      let ok = true;
      const seen = new Map<string, number>();
      value.forEach((raw, i) => {
        const parsed = raw === null ? wrongType(ctx, [...path, i], item.expected, raw) : item.parse(raw, [...path, i], ctx);
        if (parsed === undefined) ok = false;
        else out.push(parsed);
        const key = options.uniqueBy?.(raw);
        if (key === undefined) return;
        const first = seen.get(key);
        if (first === undefined) seen.set(key, i);
        else {
          ok = false;
          ctx.report('TRELLIS_CONFIG_DUPLICATE', [...path, i], `duplicate ${options.uniqueWhat ?? 'item'} "${key}" (first at index ${first})`);
        }
      });
      return ok ? out : undefined;
    },
  };
}

/** A map with free-form keys (labels, headers). `key` validates each key. */
export function record<T>(
  item: Schema<T>,
  key?: (k: string, path: Path, ctx: ParseContext) => boolean,
): Schema<Readonly<Record<string, T>>> {
  return {
    expected: 'a map',
    parse(value, path, ctx) {
      if (!isPlainObject(value)) return wrongType(ctx, path, 'a map', value);
      const out: Record<string, T> = {};
      let ok = true;
      for (const [k, raw] of Object.entries(value)) {
        if (key !== undefined && !key(k, [...path, k], ctx)) ok = false;
        const parsed = raw === null ? wrongType(ctx, [...path, k], item.expected, raw) : item.parse(raw, [...path, k], ctx);
        if (parsed === undefined) ok = false;
        else out[k] = parsed;
      }
      return ok ? out : undefined;
    },
  };
}

/** A schema followed by a further rule or conversion of its result. */
export function refine<T, U>(schema: Schema<T>, fn: (value: T, path: Path, ctx: ParseContext) => U | undefined): Schema<U> {
  return {
    expected: schema.expected,
    parse(value, path, ctx) {
      const parsed = schema.parse(value, path, ctx);
      return parsed === undefined ? undefined : fn(parsed, path, ctx);
    },
  };
}

/** Lazily resolved schema, for recursive or forward-declared shapes. */
export function lazy<T>(get: () => Schema<T>, expected = 'an object'): Schema<T> {
  return {
    expected,
    parse(value, path, ctx) {
      return get().parse(value, path, ctx);
    },
  };
}

/** At most one of `keys` may be set; with `exactlyOne`, one must be. */
export function exclusive(
  value: Readonly<Record<string, unknown>>,
  keys: readonly string[],
  path: Path,
  ctx: ParseContext,
  exactlyOne = false,
): boolean {
  const set = keys.filter((k) => value[k] !== undefined);
  if (set.length > 1) {
    ctx.report('TRELLIS_CONFIG_CONFLICT', path, `only one of ${keys.join(', ')} may be set (found ${set.join(' and ')})`);
    return false;
  }
  if (exactlyOne && set.length === 0) {
    ctx.report('TRELLIS_CONFIG_CONFLICT', path, `one of ${keys.join(', ')} must be set`);
    return false;
  }
  return true;
}

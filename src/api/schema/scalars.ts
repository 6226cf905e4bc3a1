/** Scalar schemas: strings, numbers, booleans, enums, durations, RE2 regexes. */
import RE2 from 're2';
import { parseDuration } from '../../core/duration.js';
import type { Path } from './path.js';
import { type ParseContext, type Schema, wrongType } from './schema.js';

export interface StringOptions {
  /** Rejects the empty string with this message. */
  readonly nonEmpty?: string;
  /** Further rule; report and return false to reject. */
  readonly check?: (value: string, path: Path, ctx: ParseContext) => boolean;
}

export function string(options: StringOptions = {}): Schema<string> {
  return {
    expected: 'a string',
    parse(value, path, ctx) {
      if (typeof value !== 'string') return wrongType(ctx, path, 'a string', value);
      if (options.nonEmpty !== undefined && value === '') {
        ctx.report('TRELLIS_CONFIG_REQUIRED', path, options.nonEmpty);
        return undefined;
      }
      if (options.check !== undefined && !options.check(value, path, ctx)) return undefined;
      return value;
    },
  };
}

export interface NumberOptions {
  readonly min?: number;
  readonly max?: number;
}

/** Bounds at or beyond int32 are representation limits, not rules a user needs to read. */
const NO_LIMIT = 2147483647;

function rangeMessage(min: number | undefined, max: number | undefined, value: number): string {
  const hasMax = max !== undefined && max < NO_LIMIT;
  if (min !== undefined && value < min && !hasMax) return min === 0 ? `must not be negative (got ${value})` : `must be at least ${min} (got ${value})`;
  if (min !== undefined && hasMax) return `must be between ${min} and ${max} (got ${value})`;
  return `must be at most ${max} (got ${value})`;
}

function numeric(expected: string, integer: boolean, options: NumberOptions): Schema<number> {
  return {
    expected,
    parse(value, path, ctx) {
      if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
        return wrongType(ctx, path, expected, value);
      }
      const { min, max } = options;
      if ((min !== undefined && value < min) || (max !== undefined && value > max)) {
        ctx.report('TRELLIS_CONFIG_OUT_OF_RANGE', path, rangeMessage(min, max, value));
        return undefined;
      }
      return value;
    },
  };
}

export function integer(options: NumberOptions = {}): Schema<number> {
  return numeric('an integer', true, options);
}

export function number(options: NumberOptions = {}): Schema<number> {
  return numeric('a number', false, options);
}

/** Unsigned 32-bit integer, as protobuf `uint32` fields (and `UInt32Value`). */
export const uint32: Schema<number> = integer({ min: 0, max: 4294967295 });
export const int32NonNegative: Schema<number> = integer({ min: 0, max: 2147483647 });
export const port: Schema<number> = integer({ min: 1, max: 65535 });

export const boolean: Schema<boolean> = {
  expected: 'a boolean (true or false)',
  parse(value, path, ctx) {
    return typeof value === 'boolean' ? value : wrongType(ctx, path, this.expected, value);
  },
};

/** One of a fixed set of strings (a protobuf enum in its JSON spelling). */
export function oneOf<const V extends string>(values: readonly V[]): Schema<V> {
  const set = new Set<string>(values);
  return {
    expected: 'a string',
    parse(value, path, ctx) {
      if (typeof value !== 'string') return wrongType(ctx, path, `one of ${values.join(', ')}`, value);
      if (!set.has(value)) {
        ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `must be one of ${values.join(', ')} (got "${value}")`);
        return undefined;
      }
      return value as V;
    },
  };
}

export interface DurationOptions {
  /** Minimum in milliseconds; Istio's ValidateDuration requires >= 1ms. Default 1. */
  readonly minMs?: number;
  /** "0s" is accepted and means "disabled" (e.g. idleTimeout). */
  readonly allowZero?: boolean;
  /** Whole seconds only (CORS maxAge). */
  readonly wholeSeconds?: boolean;
}

/**
 * A protobuf Duration, converted to milliseconds. Like Istio's `ValidateDuration`: at least
 * 1ms and a whole number of milliseconds.
 */
export function duration(options: DurationOptions = {}): Schema<number> {
  const minMs = options.minMs ?? 1;
  return {
    expected: 'a duration string such as "5s"',
    parse(value, path, ctx) {
      if (typeof value !== 'string') {
        ctx.report('TRELLIS_CONFIG_INVALID_DURATION', path, `expected a duration string such as "5s" or "100ms", got ${typeof value} ${String(value)}`);
        return undefined;
      }
      const result = parseDuration(value);
      if (!result.ok) {
        ctx.report('TRELLIS_CONFIG_INVALID_DURATION', path, result.reason);
        return undefined;
      }
      const ms = result.ms;
      if (ms === 0 && options.allowZero === true) return 0;
      if (ms < minMs) {
        ctx.report('TRELLIS_CONFIG_INVALID_DURATION', path, `duration "${value}" must be at least ${minMs}ms`);
        return undefined;
      }
      if (!Number.isInteger(ms)) {
        ctx.report('TRELLIS_CONFIG_INVALID_DURATION', path, `duration "${value}" must be a whole number of milliseconds`);
        return undefined;
      }
      if (options.wholeSeconds === true && ms % 1000 !== 0) {
        ctx.report('TRELLIS_CONFIG_INVALID_DURATION', path, `duration "${value}" must be a whole number of seconds`);
        return undefined;
      }
      return ms;
    },
  };
}

/**
 * A regular expression in RE2 syntax, as Istio and Envoy use (no lookaround, no
 * backreferences; matched against the whole string). Validated here with the RE2 engine
 * itself, so what passes here compiles in the proxy. Istio caps patterns at 1024 bytes.
 */
export const MAX_REGEX_LENGTH = 1024;

export const regex: Schema<string> = {
  expected: 'a regular expression string',
  parse(value, path, ctx) {
    if (typeof value !== 'string') return wrongType(ctx, path, this.expected, value);
    if (value === '') {
      ctx.report('TRELLIS_CONFIG_INVALID_REGEX', path, 'regex must not be empty');
      return undefined;
    }
    if (value.length > MAX_REGEX_LENGTH) {
      ctx.report('TRELLIS_CONFIG_INVALID_REGEX', path, `regex is longer than ${MAX_REGEX_LENGTH} characters`);
      return undefined;
    }
    const problem = re2Problem(value);
    if (problem !== undefined) {
      ctx.report('TRELLIS_CONFIG_INVALID_REGEX', path, `invalid RE2 regex "${value}": ${problem}`);
      return undefined;
    }
    return value;
  },
};

/** Why `pattern` is not valid RE2, or undefined when it is. */
export function re2Problem(pattern: string): string | undefined {
  try {
    new RE2(pattern, 'u');
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/**
 * Envoy StringMatcher and HeaderMatcher, compiled once per configuration (STYLE 12):
 * lower-casing for `ignore_case` is done here, regexes are RE2 (as Envoy's safe_regex)
 * anchored for a full match. Per request, only `matches()` runs.
 */
import type RE2 from 're2';
import { compileRE2 } from './re2.js';
import type { StringMatcher__Output } from '../../xds/generated/envoy/type/matcher/v3/StringMatcher.js';
import type { HeaderMatcher__Output } from '../../xds/generated/envoy/config/route/v3/HeaderMatcher.js';

export interface ValueMatcher {
  /** `value` is undefined when the header or parameter is absent. */
  matches(value: string | undefined): boolean;
}

/** RE2 with Envoy's full-match semantics. Throws on an invalid pattern (the caller NACKs). */
export function fullMatchRegex(pattern: string): RE2 {
  return compileRE2(`^(?:${pattern})$`, 'u');
}

class Exact implements ValueMatcher {
  constructor(readonly value: string, readonly ignoreCase: boolean) {}
  matches(v: string | undefined): boolean {
    if (v === undefined) return false;
    return this.ignoreCase ? v.length === this.value.length && v.toLowerCase() === this.value : v === this.value;
  }
}

class Prefix implements ValueMatcher {
  constructor(readonly value: string, readonly ignoreCase: boolean) {}
  matches(v: string | undefined): boolean {
    if (v === undefined) return false;
    return (this.ignoreCase ? v.slice(0, this.value.length).toLowerCase() : v).startsWith(this.value);
  }
}

class Suffix implements ValueMatcher {
  constructor(readonly value: string, readonly ignoreCase: boolean) {}
  matches(v: string | undefined): boolean {
    if (v === undefined) return false;
    return (this.ignoreCase ? v.toLowerCase() : v).endsWith(this.value);
  }
}

class Contains implements ValueMatcher {
  constructor(readonly value: string, readonly ignoreCase: boolean) {}
  matches(v: string | undefined): boolean {
    if (v === undefined) return false;
    return (this.ignoreCase ? v.toLowerCase() : v).includes(this.value);
  }
}

class Regex implements ValueMatcher {
  readonly re: RE2;
  constructor(pattern: string) {
    this.re = fullMatchRegex(pattern);
  }
  matches(v: string | undefined): boolean {
    return v !== undefined && this.re.test(v);
  }
}

const PRESENT: ValueMatcher = { matches: (v) => v !== undefined };
const NEVER: ValueMatcher = { matches: () => false };

export function compileStringMatcher(m: StringMatcher__Output): ValueMatcher {
  const ic = m.ignore_case === true;
  const norm = (s: string): string => (ic ? s.toLowerCase() : s);
  switch (m.match_pattern) {
    case 'exact':
      return new Exact(norm(m.exact ?? ''), ic);
    case 'prefix':
      return new Prefix(norm(m.prefix ?? ''), ic);
    case 'suffix':
      return new Suffix(norm(m.suffix ?? ''), ic);
    case 'contains':
      return new Contains(norm(m.contains ?? ''), ic);
    case 'safe_regex':
      return new Regex(m.safe_regex?.regex ?? '');
    default:
      return NEVER;
  }
}

/**
 * A header (or query parameter) condition with Envoy's semantics: an absent value never
 * matches a value matcher, inverted or not, unless `treat_missing_header_as_empty` makes
 * it ''; `present_match` inverted matches an absent header.
 */
export class HeaderMatch {
  constructor(
    readonly name: string,
    readonly value: ValueMatcher,
    readonly invert: boolean,
    readonly presence: boolean,
    readonly missingAsEmpty: boolean,
  ) {}

  test(v: string | undefined): boolean {
    if (this.presence) return (v !== undefined) !== this.invert;
    const value = v === undefined && this.missingAsEmpty ? '' : v;
    if (value === undefined) return false;
    return this.value.matches(value) !== this.invert;
  }
}

export function compileHeaderMatcher(h: HeaderMatcher__Output): HeaderMatch {
  const name = h.name.toLowerCase();
  const invert = h.invert_match === true;
  const empty = h.treat_missing_header_as_empty === true;
  switch (h.header_match_specifier) {
    case 'present_match':
      return new HeaderMatch(name, PRESENT, h.present_match === true ? invert : !invert, true, false);
    case 'string_match':
      return new HeaderMatch(name, h.string_match == null ? NEVER : compileStringMatcher(h.string_match), invert, false, empty);
    case 'exact_match':
      return new HeaderMatch(name, new Exact(h.exact_match ?? '', false), invert, false, empty);
    case 'prefix_match':
      return new HeaderMatch(name, new Prefix(h.prefix_match ?? '', false), invert, false, empty);
    case 'suffix_match':
      return new HeaderMatch(name, new Suffix(h.suffix_match ?? '', false), invert, false, empty);
    case 'contains_match':
      return new HeaderMatch(name, new Contains(h.contains_match ?? '', false), invert, false, empty);
    case 'safe_regex_match':
      return new HeaderMatch(name, new Regex(h.safe_regex_match?.regex ?? ''), invert, false, empty);
    default:
      return new HeaderMatch(name, NEVER, false, false, false); // range_match: not emitted by Trellis
  }
}

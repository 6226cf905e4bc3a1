/** Field types shared by several kinds: names, labels, selectors, hosts, string matches. */
import type { Path } from './schema/path.js';
import { type ParseContext, type Schema, array, exclusive, object, record, required } from './schema/schema.js';
import { regex, string } from './schema/scalars.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// Istio's host labels allow upper case (dns1123LabelFmt in pkg/config/validation).
const HOST_LABEL = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function isDns1123Label(s: string): boolean {
  return s.length <= 63 && DNS1123_LABEL.test(s);
}

export function isDns1123Subdomain(s: string): boolean {
  return s.length <= 253 && DNS1123_SUBDOMAIN.test(s);
}

export function isIPv4(s: string): boolean {
  return IPV4.test(s);
}

export function isIPv6(s: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(':')) return false;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groups = halves.flatMap((h) => (h === '' ? [] : h.split(':')));
  const last = groups[groups.length - 1];
  const hasV4 = last !== undefined && last.includes('.');
  if (hasV4 && !isIPv4(last)) return false;
  const hexGroups = hasV4 ? groups.slice(0, -1) : groups;
  if (!hexGroups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return false;
  const count = hexGroups.length + (hasV4 ? 2 : 0);
  return halves.length === 2 ? count < 8 : count === 8;
}

export function isIP(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}

export function isCidr(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return isIP(s);
  const ip = s.slice(0, slash);
  const bits = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits)) return false;
  const n = Number(bits);
  return (isIPv4(ip) && n <= 32) || (isIPv6(ip) && n <= 128);
}

/** A DNS name, optionally with a leading `*.` wildcard, or `*` alone (Istio ValidateWildcardDomain). */
export function wildcardDomainProblem(host: string): string | undefined {
  if (host === '*') return undefined;
  if (host.length > 255) return 'domain name is longer than 255 characters';
  const name = host.startsWith('*.') ? host.slice(2) : host;
  if (name.includes('*')) return 'only a prefix wildcard ("*." at the start) is allowed';
  const labels = name.split('.');
  if (labels[labels.length - 1] === '') labels.pop(); // a trailing dot is allowed
  for (const label of labels) {
    if (label.length === 0) return 'domain name has an empty label';
    if (label.length > 63) return `label "${label}" is longer than 63 characters`;
    if (!HOST_LABEL.test(label)) return `label "${label}" is not a valid DNS label`;
  }
  return undefined;
}

export const dnsLabel = (what: string): Schema<string> =>
  string({
    check: (v, path, ctx) => {
      if (isDns1123Label(v)) return true;
      ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `${what} "${v}" must be a DNS-1123 label (lower case letters, digits and "-", at most 63 characters)`);
      return false;
    },
  });

export const nonEmptyString: Schema<string> = string({ nonEmpty: 'must not be empty' });
export const stringList: Schema<readonly string[]> = array(string());

/** A Kubernetes label key: optional DNS prefix and `/`, then a name of at most 63 characters. */
function labelKeyOk(key: string, path: Path, ctx: ParseContext): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const nameOk = name.length > 0 && name.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name);
  if (nameOk && (prefix === undefined || isDns1123Subdomain(prefix))) return true;
  ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${key}" is not a valid label key`);
  return false;
}

const labelValue: Schema<string> = string({
  check: (v, path, ctx) => {
    if (v === '' || (v.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(v))) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${v}" is not a valid label value (at most 63 letters, digits, "-", "_" or ".")`);
    return false;
  },
});

export type Labels = Readonly<Record<string, string>>;
export const labels: Schema<Labels> = record(labelValue, labelKeyOk);
/** Annotations: any string keys and values. */
export const stringMap: Schema<Readonly<Record<string, string>>> = record(string());

/** Istio's `WorkloadSelector` (`{labels}`), used by Sidecar and ServiceEntry. */
export const workloadSelectorLabels = object({ labels: required(labels) }, { map: (v) => v.labels });
/** `{matchLabels}`, used by DestinationRule and the security kinds. */
export const workloadSelectorMatchLabels = object({ matchLabels: labels }, { map: (v) => v.matchLabels ?? {} });

/** True when every label of `selector` is on `target` (an empty selector selects all). */
export function selects(selector: Labels, target: Labels): boolean {
  for (const [k, v] of Object.entries(selector)) if (target[k] !== v) return false;
  return true;
}

/**
 * Istio StringMatch in domain form. `present` is the empty match `{}`, which Istio reads
 * as "the header must be present" in header and query matches.
 */
export type StringMatch =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'regex'; readonly value: string }
  | { readonly kind: 'present' };

const STRING_MATCH_KEYS = ['exact', 'prefix', 'regex'] as const;

export function stringMatch(options: { allowEmpty: boolean; allowEmptyPrefix?: boolean }): Schema<StringMatch> {
  return object(
    { exact: string(), prefix: string(), regex },
    {
      expected: 'a string match object ({exact|prefix|regex: ...})',
      check: (v, path, ctx) => {
        if (!exclusive(v, STRING_MATCH_KEYS, path, ctx, !options.allowEmpty)) return false;
        if (v.prefix === '' && options.allowEmptyPrefix !== true) {
          ctx.report('TRELLIS_CONFIG_INVALID_VALUE', [...path, 'prefix'], 'prefix string match must not be empty');
          return false;
        }
        return true;
      },
      map: (v): StringMatch => {
        if (v.exact !== undefined) return { kind: 'exact', value: v.exact };
        if (v.prefix !== undefined) return { kind: 'prefix', value: v.prefix };
        if (v.regex !== undefined) return { kind: 'regex', value: v.regex };
        return { kind: 'present' };
      },
    },
  );
}

/** `exportTo`: `.` (this namespace), `*` (all), `~` (none) or namespace names. */
export const exportTo: Schema<readonly string[]> = array(
  string({
    check: (v, path, ctx) => {
      if (v === '.' || v === '*' || v === '~' || isDns1123Label(v)) return true;
      ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${v}" is not a namespace, "." or "*"`);
      return false;
    },
  }),
);

/** An IP address or CIDR block. */
export const cidr: Schema<string> = string({
  check: (v, path, ctx) => {
    if (isCidr(v)) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${v}" is not an IP address or CIDR block`);
    return false;
  },
});

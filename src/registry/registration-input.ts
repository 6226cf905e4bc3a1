/**
 * What a workload sends to register itself (through the admin API, as JSON), and its
 * validation. Bad input is a result with every field error, never an exception: the
 * admin API answers 400 with them. The rules are the WorkloadEntry's, with the address
 * required to be an IP (a registering process knows its own address).
 */
import { dnsLabel, isDns1123Subdomain, isIP, labels, type Labels } from '../api/common.js';
import { formatPath, type Path } from '../api/schema/path.js';
import { type ParseContext, object, record, required } from '../api/schema/schema.js';
import { boolean, integer, port, string } from '../api/schema/scalars.js';
import type { Code } from '../core/codes.js';
import { DEFAULT_TRUST_DOMAIN } from '../core/spiffe.js';

export interface RegistrationInput {
  /** Display name; defaults to the registration id. A DNS-1123 subdomain. */
  readonly name?: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly labels: Labels;
  /** The IP address other workloads dial. */
  readonly address: string;
  /** Service port name → the port this workload listens on (WorkloadEntry `ports`). */
  readonly ports: Readonly<Record<string, number>>;
  /** `region/zone/subzone`. */
  readonly locality?: string;
  /** Load-balancing weight; 0 or absent means 1. */
  readonly weight?: number;
  readonly network?: string;
  /** Whether the application is ready; default true. Heartbeats may change it. */
  readonly healthy?: boolean;
}

/** One problem with the input: `field` is its path (`ports.http`, `labels["a/b"]`, '' for the whole input). */
export interface FieldError {
  readonly code: Code;
  readonly field: string;
  readonly message: string;
}

export type ValidationResult = { readonly ok: true; readonly value: RegistrationInput } | { readonly ok: false; readonly errors: readonly FieldError[] };

const ipAddress = string({
  check: (v, path, ctx) => {
    if (isIP(v)) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${v}" is not an IPv4 or IPv6 address`);
    return false;
  },
});

const subdomain = (what: string) =>
  string({
    check: (v, path, ctx) => {
      if (isDns1123Subdomain(v)) return true;
      ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `${what} "${v}" must be a DNS-1123 subdomain (lower case letters, digits, "-" and ".")`);
      return false;
    },
  });

const locality = string({
  check: (v, path, ctx) => {
    if (v.split('/').length <= 3) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `locality "${v}" must be region/zone/subzone`);
    return false;
  },
});

/** Port names as services write them: Kubernetes port names, ServiceEntry port names. */
function portNameOk(name: string, path: Path, ctx: ParseContext): boolean {
  if (name.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name)) return true;
  ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${name}" is not a port name (letters, digits, "-", "_" and ".", at most 63)`);
  return false;
}

const registrationInput = object(
  {
    name: subdomain('name'),
    namespace: required(dnsLabel('namespace')),
    serviceAccount: required(subdomain('service account')),
    labels: required(labels),
    address: required(ipAddress),
    ports: required(record(port, portNameOk)),
    locality,
    weight: integer({ min: 0, max: 4294967295 }),
    network: string(),
    healthy: boolean,
  },
  { expected: 'a registration object' },
);

export function validateRegistration(input: unknown): ValidationResult {
  const errors: FieldError[] = [];
  const ctx: ParseContext = {
    namespace: '',
    domain: DEFAULT_TRUST_DOMAIN,
    report: (code, path, message) => errors.push({ code, field: formatPath(path), message }),
  };
  const value = registrationInput.parse(input, [], ctx);
  return value === undefined || errors.length > 0 ? { ok: false, errors } : { ok: true, value };
}

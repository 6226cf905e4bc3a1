/**
 * AuthorizationPolicy (`security.istio.io` v1, v1beta1). Fields after istio/api
 * `security/v1/authorization.proto`; rules after Istio's `ValidateAuthorizationPolicy`
 * and the CRD's CEL rules (selector/targetRefs exclusivity, serviceAccounts exclusivity,
 * supported target kinds).
 *
 * One deliberate difference: Istio's docs warn that unsupported `when` keys are silently
 * ignored, a known source of policies that quietly do nothing; here they are errors.
 */
import { cidr, isCidr, type Labels, stringList } from '../common.js';
import type { Path } from '../schema/path.js';
import { type ParseContext, type Schema, array, object, required, withDefault } from '../schema/schema.js';
import { oneOf, string } from '../schema/scalars.js';
import { checkPolicyTarget, isPortString, type PolicyTargetReference, policyTargetShape, resolvePolicyTarget } from './policy-target.js';

// ---- sources and operations ----

const NONE: readonly string[] = [];
const list = withDefault(stringList, NONE);
const ipList = withDefault(array(cidr), NONE);

// Istio: `<namespace>/<name>`, no wildcards (the CRD rejects `*`).
const serviceAccount: Schema<string> = string({
  check: (v, path, ctx) => {
    if (/^[^/*]+\/[^/*]+$/.test(v)) return true;
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${v}" is not a service account of the form <namespace>/<name> (wildcards are not allowed)`);
    return false;
  },
});
const serviceAccountList = withDefault(array(serviceAccount), NONE);

const SOURCE_SHAPE = {
  principals: list,
  notPrincipals: list,
  requestPrincipals: list,
  notRequestPrincipals: list,
  namespaces: list,
  notNamespaces: list,
  serviceAccounts: serviceAccountList,
  notServiceAccounts: serviceAccountList,
  ipBlocks: ipList,
  notIpBlocks: ipList,
  remoteIpBlocks: ipList,
  notRemoteIpBlocks: ipList,
  // Not in the brief's list but in current istio/api (compat reference 2.3): accepted so
  // that valid Istio YAML is not rejected as an unknown field.
  trustDomains: list,
  notTrustDomains: list,
};

/** A `from[].source`: fields are ANDed, values within a field ORed; empty lists are unconstrained. */
export type Source = { readonly [K in keyof typeof SOURCE_SHAPE]: readonly string[] };

const SERVICE_ACCOUNT_KEYS = ['serviceAccounts', 'notServiceAccounts'] as const;
const PEER_NAME_KEYS = ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'] as const;

const source: Schema<Source> = object(SOURCE_SHAPE, {
  expected: 'a source object',
  check: (v, path, ctx) => {
    if (Object.values(v).every((l) => l.length === 0)) {
      // Istio: "`from.source` must not be empty". An empty source would read as "any".
      ctx.report('TRELLIS_CONFIG_REQUIRED', path, 'source must set at least one field (omit "from" to match any source)');
      return false;
    }
    const sa = SERVICE_ACCOUNT_KEYS.find((k) => v[k].length > 0);
    const peer = PEER_NAME_KEYS.filter((k) => v[k].length > 0);
    if (sa === undefined || peer.length === 0) return true;
    ctx.report('TRELLIS_CONFIG_CONFLICT', [...path, sa], `${sa} cannot be combined with ${peer.join(' or ')} in the same source`);
    return false;
  },
});

const portString: Schema<number> = {
  expected: 'a port number string such as "8080"',
  parse(value, path, ctx) {
    const parsed = string().parse(value, path, ctx);
    if (parsed === undefined) return undefined;
    if (isPortString(parsed)) return Number(parsed);
    ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${parsed}" is not a port number between 1 and 65535`);
    return undefined;
  },
};
const NO_PORTS: readonly number[] = [];
const portList = withDefault(array(portString), NO_PORTS);

const OPERATION_SHAPE = {
  hosts: list,
  notHosts: list,
  ports: portList,
  notPorts: portList,
  methods: list,
  notMethods: list,
  paths: list,
  notPaths: list,
};

/** A `to[].operation`; `ports`/`notPorts` are converted from Istio's strings to numbers. */
export interface Operation {
  readonly hosts: readonly string[];
  readonly notHosts: readonly string[];
  readonly ports: readonly number[];
  readonly notPorts: readonly number[];
  readonly methods: readonly string[];
  readonly notMethods: readonly string[];
  readonly paths: readonly string[];
  readonly notPaths: readonly string[];
}

const operation: Schema<Operation> = object(OPERATION_SHAPE, {
  expected: 'an operation object',
  check: (v, path, ctx) => {
    if (Object.values(v).some((l) => l.length > 0)) return true;
    ctx.report('TRELLIS_CONFIG_REQUIRED', path, 'operation must set at least one field (omit "to" to match any operation)');
    return false;
  },
});

// ---- conditions ----

/** `when` keys with a fixed name (istio.io reference/config/security/conditions). */
export const CONDITION_KEYS = [
  'source.ip',
  'remote.ip',
  'source.namespace',
  'source.principal',
  'source.serviceAccount',
  'source.trustDomain',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
  'destination.ip',
  'destination.port',
  'connection.sni',
] as const;
const CONDITION_KEY_SET: ReadonlySet<string> = new Set(CONDITION_KEYS);
const IP_KEYS: ReadonlySet<string> = new Set(['source.ip', 'remote.ip', 'destination.ip']);

const HEADER_KEY = /^request\.headers\[[^[\]]+\]$/;
// Nested claims are written `request.auth.claims[a][b]`.
const CLAIM_KEY = /^request\.auth\.claims(\[[^[\]]+\])+$/;
const EXPERIMENTAL_PREFIX = 'experimental.envoy.filters.';

/** Why `key` is not a supported condition key, or undefined when it is. */
export function conditionKeyProblem(key: string): string | undefined {
  if (CONDITION_KEY_SET.has(key) || HEADER_KEY.test(key) || CLAIM_KEY.test(key)) return undefined;
  if (key.startsWith(EXPERIMENTAL_PREFIX) && key.length > EXPERIMENTAL_PREFIX.length) return undefined;
  if (key.startsWith('request.headers')) return `condition key "${key}" must be of the form request.headers[<name>]`;
  if (key.startsWith('request.auth.claims')) return `condition key "${key}" must be of the form request.auth.claims[<claim>]`;
  return `unsupported condition key "${key}"`;
}

/** One `when` condition: the key's value must be in `values` (if any) and not in `notValues`. */
export interface Condition {
  readonly key: string;
  readonly values: readonly string[];
  readonly notValues: readonly string[];
}

const condition: Schema<Condition> = object(
  { key: required(string({ nonEmpty: 'condition key must not be empty' })), values: list, notValues: list },
  {
    expected: 'a condition object ({key, values})',
    check: (v, path, ctx) => {
      let ok = true;
      const problem = conditionKeyProblem(v.key);
      if (problem !== undefined) {
        ctx.report('TRELLIS_CONFIG_INVALID_VALUE', [...path, 'key'], problem);
        ok = false;
      }
      if (v.values.length === 0 && v.notValues.length === 0) {
        ctx.report('TRELLIS_CONFIG_REQUIRED', path, `condition "${v.key}" must have values or notValues`);
        ok = false;
      }
      return checkConditionValues(v, 'values', path, ctx) && checkConditionValues(v, 'notValues', path, ctx) && ok;
    },
  },
);

/** Istio's ValidateAttribute: IP keys take IPs or CIDRs, `destination.port` takes ports. */
function checkConditionValues(v: Condition, field: 'values' | 'notValues', path: Path, ctx: ParseContext): boolean {
  let ok = true;
  v[field].forEach((value, i) => {
    if (IP_KEYS.has(v.key) && !isCidr(value)) {
      ctx.report('TRELLIS_CONFIG_INVALID_VALUE', [...path, field, i], `"${value}" is not an IP address or CIDR block`);
      ok = false;
    } else if (v.key === 'destination.port' && !isPortString(value)) {
      ctx.report('TRELLIS_CONFIG_INVALID_VALUE', [...path, field, i], `"${value}" is not a port number between 1 and 65535`);
      ok = false;
    }
  });
  return ok;
}

// ---- rules and the policy ----

/**
 * A rule matches when at least one `from`, at least one `to` and every `when` matches;
 * an empty list puts no constraint, so the empty rule `{}` matches every request.
 */
export interface AuthorizationRule {
  readonly from: readonly Source[];
  readonly to: readonly Operation[];
  readonly when: readonly Condition[];
}

const from = object({ source: required(source) }, { map: (v) => v.source });
const to = object({ operation: required(operation) }, { map: (v) => v.operation });

const rule: Schema<AuthorizationRule> = object(
  { from: withDefault(array(from), []), to: withDefault(array(to), []), when: withDefault(array(condition), []) },
  { expected: 'a rule object ({from, to, when})' },
);

export const AUTHORIZATION_ACTIONS = ['ALLOW', 'DENY', 'AUDIT', 'CUSTOM'] as const;
export type AuthorizationAction = (typeof AUTHORIZATION_ACTIONS)[number];

// A separate constant: inline in the shape, its output type would be inferred from the
// shape's `Schema<unknown>` context.
const provider = object({ name: required(string({ nonEmpty: 'provider name must not be empty' })) });

export interface AuthorizationPolicySpec {
  /** Absent for namespace-wide (or, in the root namespace, mesh-wide) policies. */
  readonly selector?: Labels;
  /** `targetRef` and `targetRefs` together; empty when the policy uses a selector or neither. */
  readonly targetRefs: readonly PolicyTargetReference[];
  readonly action: AuthorizationAction;
  /** The MeshConfig extension provider; set exactly when `action` is CUSTOM. */
  readonly provider?: { readonly name: string };
  /** Empty for `spec: {}`: an ALLOW policy that matches nothing (allow-nothing). */
  readonly rules: readonly AuthorizationRule[];
}

export const authorizationPolicySpec: Schema<AuthorizationPolicySpec> = object(
  {
    ...policyTargetShape,
    rules: withDefault(array(rule), []),
    action: withDefault(oneOf(AUTHORIZATION_ACTIONS), 'ALLOW'),
    provider,
  },
  {
    expected: 'an AuthorizationPolicy spec object',
    check: (v, path, ctx) => {
      let ok = checkPolicyTarget(v, path, ctx);
      if (v.action === 'CUSTOM' && v.provider === undefined) {
        ctx.report('TRELLIS_CONFIG_CONFLICT', [...path, 'action'], 'action CUSTOM requires a provider');
        ok = false;
      } else if (v.action !== 'CUSTOM' && v.provider !== undefined) {
        ctx.report('TRELLIS_CONFIG_CONFLICT', [...path, 'provider'], `provider is only allowed with action CUSTOM (action is ${v.action})`);
        ok = false;
      }
      return ok;
    },
    map: (v): AuthorizationPolicySpec => {
      const out = { ...resolvePolicyTarget(v), action: v.action, rules: v.rules };
      return v.provider === undefined ? out : { ...out, provider: { name: v.provider.name } };
    },
  },
);

/**
 * Where a security policy applies: `selector` (workloads of the policy's namespace) or
 * `targetRef`/`targetRefs` (Gateway API style), never both. Shared by AuthorizationPolicy,
 * RequestAuthentication and PeerAuthentication.
 */
import { type Labels, workloadSelectorMatchLabels } from '../common.js';
import type { Path } from '../schema/path.js';
import { type ParseContext, type Schema, array, exclusive, object, required } from '../schema/schema.js';
import { string } from '../schema/scalars.js';

/** A resolved `PolicyTargetReference`: group '' for core, namespace filled in. */
export interface PolicyTargetReference {
  readonly group: string;
  readonly kind: string;
  readonly name: string;
  readonly namespace: string;
}

// The CRD's CEL rule on targetRefs: only these `group/kind` pairs ('' and `core` are the
// core group, written without a group).
const TARGET_KINDS = [
  'Service',
  'networking.istio.io/ServiceEntry',
  'gateway.networking.k8s.io/Gateway',
  'gateway.networking.k8s.io/GatewayClass',
] as const;
const TARGET_KIND_SET: ReadonlySet<string> = new Set(TARGET_KINDS);

export const policyTargetReference: Schema<PolicyTargetReference> = object(
  {
    group: string(),
    kind: required(string({ nonEmpty: 'kind must not be empty' })),
    name: required(string({ nonEmpty: 'name must not be empty' })),
    namespace: string(),
  },
  {
    expected: 'a target reference object ({group, kind, name})',
    check: (v, path, ctx) => {
      let ok = true;
      const group = v.group === 'core' ? '' : (v.group ?? '');
      const groupKind = group === '' ? v.kind : `${group}/${v.kind}`;
      if (!TARGET_KIND_SET.has(groupKind)) {
        ctx.report('TRELLIS_CONFIG_INVALID_VALUE', [...path, 'kind'], `unsupported target kind "${groupKind}" (supported: ${TARGET_KINDS.join(', ')})`);
        ok = false;
      }
      // CRD rule: cross-namespace references are not supported; naming the policy's own
      // namespace is harmless, so only a different one is rejected.
      if (v.namespace !== undefined && v.namespace !== '' && v.namespace !== ctx.namespace) {
        ctx.report('TRELLIS_CONFIG_INVALID_VALUE', [...path, 'namespace'], `cross-namespace target "${v.namespace}" is not supported (the policy is in "${ctx.namespace}")`);
        ok = false;
      }
      return ok;
    },
    map: (v, _path, ctx) => ({
      group: v.group === 'core' ? '' : (v.group ?? ''),
      kind: v.kind,
      name: v.name,
      namespace: ctx.namespace,
    }),
  },
);

/** The shape fields every targetable security policy has. */
export const policyTargetShape = {
  selector: workloadSelectorMatchLabels,
  targetRef: policyTargetReference,
  targetRefs: array(policyTargetReference),
};

interface RawPolicyTarget {
  readonly selector?: Labels;
  readonly targetRef?: PolicyTargetReference;
  readonly targetRefs?: readonly PolicyTargetReference[];
}

/** At most one of selector, targetRef, targetRefs (an empty `targetRefs: []` counts as unset). */
export function checkPolicyTarget(v: RawPolicyTarget, path: Path, ctx: ParseContext): boolean {
  const set = { selector: v.selector, targetRef: v.targetRef, targetRefs: v.targetRefs?.length ? v.targetRefs : undefined };
  return exclusive(set, ['selector', 'targetRef', 'targetRefs'], path, ctx);
}

/**
 * The domain form of the target fields: `targetRef` folded into `targetRefs`, and an
 * empty selector dropped (Istio treats `matchLabels: {}` like no selector: the policy is
 * namespace-wide, or mesh-wide in the root namespace).
 */
export function resolvePolicyTarget(v: RawPolicyTarget): { selector?: Labels; targetRefs: readonly PolicyTargetReference[] } {
  const targetRefs = v.targetRef !== undefined ? [v.targetRef, ...(v.targetRefs ?? [])] : (v.targetRefs ?? []);
  return hasLabels(v.selector) ? { selector: v.selector, targetRefs } : { targetRefs };
}

export function hasLabels(selector: Labels | undefined): selector is Labels {
  return selector !== undefined && Object.keys(selector).length > 0;
}

/** True when `s` is a port number 1..65535 written in decimal, as Istio's ValidatePorts. */
export function isPortString(s: string): boolean {
  return /^\d{1,5}$/.test(s) && Number(s) >= 1 && Number(s) <= 65535;
}

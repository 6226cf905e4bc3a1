/**
 * PeerAuthentication (`security.istio.io` v1, v1beta1): the mTLS mode a workload accepts
 * inbound. Fields after istio/api `security/v1/peer_authentication.proto`; rules after
 * Istio's `ValidatePeerAuthentication` (port keys, portLevelMtls only with a selector).
 * Precedence between policies (workload over namespace over mesh) is resolved later, over
 * the set of policies; this form keeps one policy's own meaning.
 */
import { type Labels, workloadSelectorMatchLabels } from '../common.js';
import type { Path } from '../schema/path.js';
import { type ParseContext, type Schema, object, record, withDefault } from '../schema/schema.js';
import { oneOf } from '../schema/scalars.js';
import { hasLabels, isPortString } from './policy-target.js';

/** UNSET inherits from the parent policy (PERMISSIVE when there is none). */
export const MTLS_MODES = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'] as const;
export type MtlsMode = (typeof MTLS_MODES)[number];

/** `{mode}`, in domain form just the mode; an absent mode is UNSET, as in the proto. */
const mtls: Schema<MtlsMode> = object({ mode: withDefault(oneOf(MTLS_MODES), 'UNSET') }, { map: (v) => v.mode });

/** Keys are workload (container) ports, written as strings in YAML maps. */
function portKey(key: string, path: Path, ctx: ParseContext): boolean {
  if (isPortString(key)) return true;
  ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${key}" is not a port number between 1 and 65535`);
  return false;
}

export interface PeerAuthenticationSpec {
  /** Absent (or empty in YAML) for namespace-wide, or in the root namespace mesh-wide, policies. */
  readonly selector?: Labels;
  readonly mode: MtlsMode;
  /** By workload port; empty when absent. Only ever non-empty with a selector. */
  readonly portLevelMtls: Readonly<Record<number, MtlsMode>>;
}

export const peerAuthenticationSpec: Schema<PeerAuthenticationSpec> = object(
  {
    selector: workloadSelectorMatchLabels,
    mtls,
    portLevelMtls: record(mtls, portKey),
  },
  {
    expected: 'a PeerAuthentication spec object',
    check: (v, path, ctx) => {
      // Istio rejects port-level modes on namespace- and mesh-wide policies (an empty
      // matchLabels counts as no selector there too).
      if (v.portLevelMtls === undefined || Object.keys(v.portLevelMtls).length === 0 || hasLabels(v.selector)) return true;
      ctx.report('TRELLIS_CONFIG_CONFLICT', [...path, 'portLevelMtls'], 'portLevelMtls requires a selector');
      return false;
    },
    map: (v): PeerAuthenticationSpec => {
      const portLevelMtls: Record<number, MtlsMode> = {};
      for (const [port, mode] of Object.entries(v.portLevelMtls ?? {})) portLevelMtls[Number(port)] = mode;
      const out = { mode: v.mtls ?? 'UNSET', portLevelMtls };
      return hasLabels(v.selector) ? { selector: v.selector, ...out } : out;
    },
  },
);

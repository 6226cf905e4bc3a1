/** Host weights at build time: raw, and normalised the way Envoy's consistent-hash balancers do. */
import type { Endpoint } from './types.js';

/** Endpoint weights as a typed array (a weight below 1 or not finite counts as 1). */
export function weightsOf(hosts: readonly Endpoint[]): Float64Array {
  const w = new Float64Array(hosts.length);
  for (let i = 0; i < hosts.length; i++) w[i] = hostWeight(hosts[i] as Endpoint);
  return w;
}

function hostWeight(host: Endpoint): number {
  const x = host.weight;
  return Number.isFinite(x) && x >= 1 ? x : 1;
}

/** True when every weight equals the first (the unweighted fast paths apply). */
export function allEqual(weights: ArrayLike<number>): boolean {
  for (let i = 1; i < weights.length; i++) if (weights[i] !== weights[0]) return false;
  return true;
}

/** Hosts with their normalised weights (Envoy's `NormalizedHostWeightVector`). */
export interface NormalizedHosts {
  readonly hosts: readonly Endpoint[];
  /** `weights[i]` belongs to `hosts[i]`; positive. */
  readonly weights: Float64Array;
}

/**
 * Envoy's `normalizeWeights` for RING_HASH and MAGLEV (`thread_aware_lb_impl.cc`): each
 * host's weight divided by the sum, or, with locality weighting, `hostWeight / (sum of its
 * locality's host weights) × localityWeight / (sum of locality weights)`, hosts of a
 * locality of weight 0 left out (Envoy PR #5846). When every locality weight is 0 Envoy's
 * ring would be empty; Trellis falls back to the flat weights instead.
 */
export function normalizeHostWeights(hosts: readonly Endpoint[], localityWeighted: boolean): NormalizedHosts {
  if (localityWeighted) {
    const byLocality = normalizeByLocality(hosts);
    if (byLocality !== null) return byLocality;
  }
  const weights = weightsOf(hosts);
  let sum = 0;
  for (let i = 0; i < weights.length; i++) sum += weights[i] as number;
  for (let i = 0; i < weights.length; i++) weights[i] = (weights[i] as number) / sum;
  return { hosts, weights };
}

function normalizeByLocality(hosts: readonly Endpoint[]): NormalizedHosts | null {
  const groups = new Map<string, { weight: number; hostSum: number; members: Endpoint[] }>();
  for (const h of hosts) {
    let g = groups.get(h.locality);
    if (g === undefined) {
      g = { weight: h.localityWeight > 0 ? h.localityWeight : 0, hostSum: 0, members: [] };
      groups.set(h.locality, g);
    }
    g.hostSum += hostWeight(h);
    g.members.push(h);
  }
  let localitySum = 0;
  for (const g of groups.values()) localitySum += g.weight;
  if (localitySum === 0) return null;
  const out: Endpoint[] = [];
  const weights: number[] = [];
  for (const g of groups.values()) {
    if (g.weight === 0) continue;
    const share = g.weight / localitySum;
    for (const h of g.members) {
      out.push(h);
      weights.push((hostWeight(h) * share) / g.hostSum);
    }
  }
  return { hosts: out, weights: Float64Array.from(weights) };
}

/**
 * PeerAuthentication conflicts. Istio applies one policy per level (workload-specific,
 * namespace-wide, mesh-wide in the root namespace); when several at the same level apply
 * to one workload, it keeps the oldest and ignores the rest without a word. Policies that
 * agree are harmless; policies that disagree mean someone's intent is silently dropped.
 */
import { selects } from '../common.js';
import type { Finding } from '../finding.js';
import type { Resource } from '../resource.js';
import { findingAt, type Model } from './model.js';

type Policy = Resource<'PeerAuthentication'>;

/** Istio's root namespace, where selector-less policies apply mesh-wide. */
export const ROOT_NAMESPACE = 'istio-system';

function effect(p: Policy): string {
  const ports = Object.entries(p.spec.portLevelMtls).map(([port, mode]) => `${port}:${mode}`).sort().join(',');
  return ports === '' ? p.spec.mode : `${p.spec.mode} (ports ${ports})`;
}

function conflicts(policies: readonly Policy[], scope: string): Finding[] {
  const distinct = new Map<string, Policy>();
  for (const p of policies) distinct.set(`${p.metadata.namespace}/${p.metadata.name}`, p);
  const list = [...distinct.values()];
  const effects = new Set(list.map(effect));
  if (effects.size < 2) return [];
  const names = list.map((p) => `${p.metadata.namespace}/${p.metadata.name} (${effect(p)})`).join(', ');
  return list.map((p) =>
    findingAt(p, 'TRELLIS_ANALYZE_CONFLICTING_PEER_AUTHENTICATION', p.spec.selector === undefined ? ['spec'] : ['spec', 'selector'],
      `${scope} has conflicting PeerAuthentication policies: ${names}; only the oldest takes effect — keep one`),
  );
}

export function checkPeerAuthentication(model: Model): Finding[] {
  const policies = model.of('PeerAuthentication');
  const out: Finding[] = [];
  const namespaceWide = new Map<string, Policy[]>();
  for (const p of policies) {
    if (p.spec.selector !== undefined) continue;
    const list = namespaceWide.get(p.metadata.namespace) ?? [];
    list.push(p);
    namespaceWide.set(p.metadata.namespace, list);
  }
  for (const [ns, list] of namespaceWide) {
    out.push(...conflicts(list, ns === ROOT_NAMESPACE ? 'the mesh (root namespace istio-system)' : `namespace ${ns}`));
  }
  const reported = new Set<string>();
  for (const w of model.workloads) {
    const matching = policies.filter((p) => p.spec.selector !== undefined && p.metadata.namespace === w.namespace && selects(p.spec.selector, w.labels));
    const key = matching.map((p) => p.metadata.name).sort().join(',');
    if (matching.length < 2 || reported.has(`${w.namespace}/${key}`)) continue;
    const found = conflicts(matching, `workload ${w.name}`);
    if (found.length > 0) reported.add(`${w.namespace}/${key}`);
    out.push(...found);
  }
  return out;
}

/**
 * Checks that selectors select something. They run only when the analysed set declares
 * workloads (pod templates, WorkloadEntries, ServiceEntry endpoints): without any, every
 * selector would trivially select nothing.
 */
import { selects } from '../common.js';
import type { Finding } from '../finding.js';
import { hostMatches } from '../hosts.js';
import { findingAt, type Model, type Workload } from './model.js';

export function checkGatewaySelectors(model: Model): Finding[] {
  if (model.workloads.length === 0) return [];
  const out: Finding[] = [];
  for (const gw of model.of('Gateway')) {
    // Istio looks for gateway workloads in every namespace by default.
    if (model.workloads.some((w) => selects(gw.spec.selector, w.labels))) continue;
    const sel = Object.entries(gw.spec.selector).map(([k, v]) => `${k}=${v}`).join(',');
    out.push(findingAt(gw, 'TRELLIS_ANALYZE_GATEWAY_SELECTS_NOTHING', ['spec', 'selector'],
      `selector ${sel === '' ? '(empty)' : sel} matches no declared workload; no gateway serves this Gateway yet`));
  }
  return out;
}

/** The workloads behind a host: a Service's selected pods, or a ServiceEntry's endpoints/selection. */
function backing(model: Model, host: string, domain: string): readonly Workload[] | undefined {
  for (const svc of model.of('Service')) {
    if (!hostMatches(host, `${svc.metadata.name}.${svc.metadata.namespace}.svc.${domain}`)) continue;
    const selector = svc.spec.selector;
    if (Object.keys(selector).length === 0) return undefined; // endpoints managed by hand: unknown
    return model.workloads.filter((w) => w.namespace === svc.metadata.namespace && selects(selector, w.labels));
  }
  for (const se of model.of('ServiceEntry')) {
    if (!se.spec.hosts.some((h) => hostMatches(h, host) || hostMatches(host, h))) continue;
    if (se.spec.workloadSelector !== undefined) {
      const sel = se.spec.workloadSelector;
      return model.workloads.filter((w) => w.namespace === se.metadata.namespace && selects(sel, w.labels));
    }
    return se.spec.endpoints.map((e, i) => ({ namespace: se.metadata.namespace, labels: e.labels, serviceAccount: e.serviceAccount ?? 'default', name: `endpoint ${i}` }));
  }
  return undefined;
}

export function checkSubsetSelectors(model: Model, domain: string): Finding[] {
  if (model.workloads.length === 0) return [];
  const out: Finding[] = [];
  for (const dr of model.of('DestinationRule')) {
    const pool = backing(model, dr.spec.host, domain);
    if (pool === undefined) continue;
    dr.spec.subsets.forEach((subset, i) => {
      if (pool.some((w) => selects(subset.labels ?? {}, w.labels))) return;
      out.push(findingAt(dr, 'TRELLIS_ANALYZE_SUBSET_SELECTS_NOTHING', ['spec', 'subsets', i],
        `subset "${subset.name}" selects no declared workload of ${dr.spec.host}; traffic routed to it finds no endpoint (503 UH)`));
    });
  }
  return out;
}

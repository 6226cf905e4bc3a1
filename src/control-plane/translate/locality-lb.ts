/**
 * Locality load balancing, relative to the proxy asking: Istio's `ApplyLocalityLoadBalancer`
 * (pilot/pkg/networking/core/loadbalancer). It turns a cluster's locality groups into
 * prioritised, weighted groups for one proxy:
 *
 * - `distribute` (for proxies whose locality matches a rule's `from`): each locality's
 *   weight becomes its share of the rule's `to` percentage; localities no `to` names get
 *   no endpoints (applyLocalityWeights).
 * - failover, only when outlier detection is configured (without it Envoy never notices
 *   that a level is unhealthy and never fails over): priority by proximity to the proxy —
 *   same region/zone/subzone 0, region/zone 1, region 2, else 3, or 4 for regions a
 *   `failover {from, to}` rule does not send to (applyLocalityFailover); or, with
 *   `failoverPriority`, by how many of the listed labels an endpoint shares with the
 *   proxy (applyFailoverPriorities), refined by `failover` rules when there are any.
 *
 * Priorities are renumbered 0..N without gaps, as Envoy and gRPC require. Istio's mesh
 * default is `localityLbSetting.enabled: true`, so outlier detection alone turns failover on.
 */
import type { Labels } from '../../api/common.js';
import type { Endpoint, Locality } from '../../registry/model.js';
import type { ProxyNode } from './node.js';
import type { PortPolicy } from './traffic-policy.js';

type LocalityLbSetting = NonNullable<NonNullable<PortPolicy['loadBalancer']>['localityLbSetting']>;

/** A cluster's endpoints in one locality. */
export interface LocalityGroup {
  readonly locality: Locality;
  readonly endpoints: readonly Endpoint[];
}

/** A group as one proxy sees it: its priority and its locality weight. */
export interface PlacedGroup extends LocalityGroup {
  readonly priority: number;
  readonly weight: number;
}

/** What locality load balancing does for a cluster; undefined when it is disabled. */
export interface LocalityLbPlan {
  readonly setting: LocalityLbSetting;
  /** Outlier detection is configured, so failover priorities apply. */
  readonly failover: boolean;
}

/** Istio's MeshConfig default. */
const MESH_DEFAULT: LocalityLbSetting = { enabled: true };

/** Labels Istio adds to proxies and endpoints from their locality (labelutil.AugmentLabels). */
const TOPOLOGY_LABELS = [
  ['topology.kubernetes.io/region', 'region'],
  ['topology.kubernetes.io/zone', 'zone'],
  ['topology.istio.io/subzone', 'subzone'],
] as const;

export function localityLbPlan(policy: PortPolicy | undefined): LocalityLbPlan | undefined {
  const setting = policy?.loadBalancer?.localityLbSetting ?? MESH_DEFAULT;
  if (setting.enabled === false) return undefined;
  return { setting, failover: policy?.outlierDetection !== undefined };
}

/**
 * Whether the cluster needs `common_lb_config.locality_weighted_lb_config`: with
 * `distribute`, or with explicit failover rules that apply (Istio sets it only then, as it
 * changes how policies such as LEAST_REQUEST spread load).
 */
export function localityWeighted(plan: LocalityLbPlan | undefined): boolean {
  if (plan === undefined) return false;
  const s = plan.setting;
  return nonEmpty(s.distribute) || (plan.failover && (nonEmpty(s.failover) || nonEmpty(s.failoverPriority)));
}

/** The groups of a cluster as `node` sees them; without a node or a plan, all at priority 0. */
export function placeGroups(groups: readonly LocalityGroup[], node: ProxyNode | undefined, plan: LocalityLbPlan | undefined): PlacedGroup[] {
  const placed = groups.map((g) => ({ ...g, priority: 0, weight: totalWeight(g.endpoints) }));
  if (node === undefined || plan === undefined) return placed;
  const s = plan.setting;
  if (s.distribute !== undefined && s.distribute.length > 0) return distribute(placed, node.locality, s.distribute);
  if (!plan.failover) return placed;
  if (s.failoverPriority !== undefined && s.failoverPriority.length > 0) {
    const byLabels = failoverPriorities(placed, node, s.failoverPriority);
    return nonEmpty(s.failover) ? localityFailover(byLabels, node.locality, s.failover ?? []) : byLabels;
  }
  return localityFailover(placed, node.locality, s.failover ?? []);
}

function nonEmpty(list: readonly unknown[] | undefined): boolean {
  return list !== undefined && list.length > 0;
}

function totalWeight(endpoints: readonly Endpoint[]): number {
  return endpoints.reduce((sum, e) => sum + e.weight, 0);
}

/** Istio `util.LocalityMatch`: `region/zone/subzone`, each part `*` or equal; missing parts match all. */
export function localityMatches(l: Locality, rule: string): boolean {
  const [region = '', zone = '', subzone = ''] = rule.split('/');
  return (region === '*' || l.region === region) && (zone === '*' || zone === '' || l.zone === zone) && (subzone === '*' || subzone === '' || l.subzone === subzone);
}

/** Istio `util.LbPriority`: 0 same subzone, 1 same zone, 2 same region, 3 elsewhere. */
function proximity(proxy: Locality, l: Locality): number {
  if (proxy.region !== l.region) return 3;
  if (proxy.zone !== l.zone) return 2;
  return proxy.subzone === l.subzone ? 0 : 1;
}

/** Priorities 0..N without gaps, keeping their order. */
function renumber(groups: readonly PlacedGroup[]): PlacedGroup[] {
  const levels = [...new Set(groups.map((g) => g.priority))].sort((a, b) => a - b);
  return groups.map((g) => ({ ...g, priority: levels.indexOf(g.priority) }));
}

function localityFailover(groups: readonly PlacedGroup[], proxy: Locality, failover: NonNullable<LocalityLbSetting['failover']>): PlacedGroup[] {
  return renumber(groups.map((g) => {
    let p = proximity(proxy, g.locality);
    if (p === 3) {
      const rule = failover.find((f) => f.from === proxy.region);
      if (rule !== undefined && g.locality.region !== rule.to) p = 4;
    }
    // Five proximity levels under each label priority already assigned (Istio multiplies by 5).
    return { ...g, priority: g.priority * 5 + p };
  }));
}

function withTopology(labels: Labels, l: Locality): Labels {
  const out: Record<string, string> = { ...labels };
  for (const [label, part] of TOPOLOGY_LABELS) if (l[part] !== '' && out[label] === undefined) out[label] = l[part];
  return out;
}

/**
 * `failoverPriority: [label | label=value, ...]`: an endpoint's priority is 0 when it
 * matches the proxy on every label, else (n - i) for the first label i it differs on; a
 * `label=value` entry compares with that value instead of the proxy's. A locality whose
 * endpoints differ is split into one group per priority.
 */
function failoverPriorities(groups: readonly PlacedGroup[], node: ProxyNode, failoverPriority: readonly string[]): PlacedGroup[] {
  const proxyLabels = withTopology(node.labels, node.locality);
  if (Object.keys(proxyLabels).length === 0) return [...groups];
  const entries = failoverPriority.map((entry) => {
    const [label = '', value] = entry.split('=');
    return { label, wanted: value ?? proxyLabels[label] ?? '' };
  });
  const priorityOf = (e: Endpoint): number => {
    const labels = withTopology(e.labels, e.locality);
    const i = entries.findIndex(({ label, wanted }) => wanted !== (labels[label] ?? ''));
    return i < 0 ? 0 : entries.length - i;
  };
  const out: PlacedGroup[] = [];
  for (const g of groups) {
    const byPriority = new Map<number, Endpoint[]>();
    for (const e of g.endpoints) {
      const p = priorityOf(e);
      byPriority.set(p, [...(byPriority.get(p) ?? []), e]);
    }
    for (const [priority, endpoints] of [...byPriority.entries()].sort(([a], [b]) => a - b)) {
      out.push({ locality: g.locality, endpoints, priority, weight: totalWeight(endpoints) });
    }
  }
  return renumber(out);
}

/**
 * `distribute`: the first rule whose `from` matches the proxy's locality sets each
 * locality's weight to its share of the `to` percentage it matches (split by the
 * localities' own weights when a wildcard matches several, rounded up); localities the
 * rule does not name lose their endpoints. A `to` weight of 0 empties the locality too
 * (Istio's validation rejects 0; Envoy has no zero locality weight).
 */
function distribute(groups: readonly PlacedGroup[], proxy: Locality, rules: NonNullable<LocalityLbSetting['distribute']>): PlacedGroup[] {
  const rule = rules.find((r) => localityMatches(proxy, r.from ?? ''));
  if (rule === undefined) return [...groups];
  const out = [...groups];
  const unmatched = new Set(groups.keys());
  for (const [target, percent] of Object.entries(rule.to ?? {})) {
    const matched = [...unmatched].filter((i) => localityMatches((groups[i] as PlacedGroup).locality, target));
    const total = matched.reduce((sum, i) => sum + (groups[i] as PlacedGroup).weight, 0);
    for (const i of matched) {
      unmatched.delete(i);
      const g = groups[i] as PlacedGroup;
      out[i] = percent > 0 ? { ...g, weight: Math.ceil((g.weight * percent) / total) } : { ...g, endpoints: [] };
    }
  }
  for (const i of unmatched) out[i] = { ...(groups[i] as PlacedGroup), endpoints: [] };
  return out;
}

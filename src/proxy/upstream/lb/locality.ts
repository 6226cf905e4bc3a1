/**
 * Priorities and localities around every policy (Envoy `load_balancer_impl.cc`,
 * "Priority levels", "Panic threshold", "Locality weighted load balancing").
 *
 * 1. Priority. A level's health is `min(100, overprovisioning × eligible / hosts)` with
 *    the factor 1.4, so a level keeps all its traffic while at least 1/1.4 ≈ 71.4% of
 *    its hosts are eligible (healthy and not ejected) and spills the rest to the next
 *    levels below that. Loads are whole percentages, computed as Envoy does (rounding
 *    left-overs go to the first level with health); a request draws a number 1..100
 *    (`hash % 100 + 1` for consistent-hash policies, random otherwise).
 * 2. Panic. While the levels' health sums to less than 100, a level whose eligible share
 *    is below the panic threshold balances over all its hosts, eligible or not; when
 *    every level panics, load follows host counts. The threshold defaults to 0 here,
 *    which disables panic: Istio sets it from outlierDetection.minHealthPercent, default 0.
 * 3. Locality (only with `localityWeighted`, not for consistent-hash policies, not in
 *    panic). Within the level, a locality is drawn with probability proportional to
 *    `localityWeight × min(1, 1.4 × eligible / hosts)` (Envoy draws from an EDF schedule
 *    over the same weights; a weighted draw gives the same shares), then the policy picks
 *    within it. RING_HASH and MAGLEV are built over the level's eligible hosts, locality
 *    weights folded into host weights (`host-weights.ts`), never per locality.
 *
 * Everything is decided at build time: per pick, one draw into a 100-entry table and,
 * with locality weighting, one alias-table draw.
 */
import { AliasTable } from './alias-table.js';
import { pickerRng } from './prng.js';
import type { Endpoint, EndpointState, HostPolicy, LbConfig, LoadBalancer, PickContext, Picker, Rng } from './types.js';

export const DEFAULT_OVERPROVISIONING_FACTOR = 140;
export const DEFAULT_PANIC_THRESHOLD_PERCENT = 0;

/** The hosts of one priority level. */
interface Level {
  readonly priority: number;
  readonly hosts: Endpoint[];
  readonly states: EndpointState[];
  readonly eligible: Endpoint[];
  readonly eligibleStates: EndpointState[];
}

/** Per level: its share of requests in percent, and whether it balances over all its hosts. */
export interface PriorityPlan {
  readonly load: readonly number[];
  readonly panic: readonly boolean[];
}

/** The picker when there is nothing to pick. */
const NO_HOST: Picker = { pick: () => undefined };

/** A LoadBalancer that runs `policy` under the priority and locality rules above. */
export function policyLoadBalancer(name: string, policy: HostPolicy): LoadBalancer {
  return {
    name,
    build: (endpoints, state, config) => buildPicker(policy, endpoints, state, config),
  };
}

/** Builds the picker for `endpoints`; see the module comment. */
export function buildPicker(policy: HostPolicy, endpoints: readonly Endpoint[], state: (id: string) => EndpointState, config: LbConfig): Picker {
  if (endpoints.length === 0) return NO_HOST;
  const levels = groupByPriority(endpoints, state, config.ejected);
  const plan = planPriorities(
    levels.map((l) => l.eligible.length),
    levels.map((l) => l.hosts.length),
    percent(config.overprovisioningFactor, DEFAULT_OVERPROVISIONING_FACTOR),
    Math.min(100, percent(config.panicThresholdPercent, DEFAULT_PANIC_THRESHOLD_PERCENT)),
  );
  if (plan === null) return NO_HOST;
  const rng = pickerRng(config);
  const pickers: Picker[] = [];
  const table = new Uint8Array(100);
  let slot = 0;
  for (let i = 0; i < levels.length; i++) {
    const load = plan.load[i] as number;
    if (load === 0) continue;
    const level = levels[i] as Level;
    const picker = plan.panic[i] === true ? policy.build(level.hosts, level.states, rng, config) : levelPicker(policy, level, rng, config);
    if (load === 100) return picker;
    table.fill(pickers.length, slot, slot + load);
    slot += load;
    pickers.push(picker);
  }
  return new PriorityPicker(table, pickers, policy.consistentHash, rng);
}

function percent(v: number | undefined, fallback: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 0 ? v : fallback;
}

function groupByPriority(endpoints: readonly Endpoint[], state: (id: string) => EndpointState, ejected: ReadonlySet<string> | undefined): Level[] {
  const byPriority = new Map<number, Level>();
  for (const e of endpoints) {
    let level = byPriority.get(e.priority);
    if (level === undefined) {
      level = { priority: e.priority, hosts: [], states: [], eligible: [], eligibleStates: [] };
      byPriority.set(e.priority, level);
    }
    const s = state(e.id);
    level.hosts.push(e);
    level.states.push(s);
    if (e.healthy && !s.ejected && ejected?.has(e.id) !== true) {
      level.eligible.push(e);
      level.eligibleStates.push(s);
    }
  }
  return [...byPriority.values()].sort((a, b) => a.priority - b.priority);
}

/**
 * Envoy's `recalculatePerPriorityState` and `recalculatePerPriorityPanic` for levels with
 * `eligible[i]` of `hosts[i]` hosts (no degraded hosts). Null when nothing can be picked:
 * no eligible host and panic disabled.
 */
export function planPriorities(eligible: readonly number[], hosts: readonly number[], overprovisioning: number, panicThreshold: number): PriorityPlan | null {
  const n = hosts.length;
  const health = hosts.map((h, i) => (h === 0 ? 0 : Math.min(100, Math.floor((overprovisioning * (eligible[i] as number)) / h))));
  const total = Math.min(100, health.reduce((a, b) => a + b, 0));
  if (total === 0 && panicThreshold === 0) return null;
  const panic = hosts.map((h, i) => total < 100 && (h === 0 ? 0 : (100 * (eligible[i] as number)) / h) < panicThreshold);
  if (panic.every((p) => p)) return { load: totalPanicLoad(hosts), panic };
  const load: number[] = [];
  let remaining = 100;
  let first = -1;
  for (let i = 0; i < n; i++) {
    if (first < 0 && (health[i] as number) > 0) first = i;
    const l = Math.min(remaining, Math.floor(((health[i] as number) * 100) / total));
    load.push(l);
    remaining -= l;
  }
  load[first] = (load[first] as number) + remaining;
  return { load, panic };
}

/** Envoy's `recalculateLoadInTotalPanic`: load in proportion to host counts. */
function totalPanicLoad(hosts: readonly number[]): number[] {
  const sum = hosts.reduce((a, b) => a + b, 0);
  const load = hosts.map((h) => Math.floor((100 * h) / sum));
  const first = hosts.findIndex((h) => h > 0);
  load[first] = (load[first] as number) + 100 - load.reduce((a, b) => a + b, 0);
  return load;
}

/** The picker of a level that is not in panic (it has eligible hosts: its load is > 0). */
function levelPicker(policy: HostPolicy, level: Level, rng: Rng, config: LbConfig): Picker {
  if (config.localityWeighted === true && !policy.consistentHash) {
    const byLocality = localityPicker(policy, level, rng, config);
    if (byLocality !== null) return byLocality;
  }
  return policy.build(level.eligible, level.eligibleStates, rng, config);
}

/**
 * Chooses a locality by effective weight, then the policy within it. Null when the level
 * has a single locality with weight, or none (Envoy then balances over all the level's
 * eligible hosts).
 */
function localityPicker(policy: HostPolicy, level: Level, rng: Rng, config: LbConfig): Picker | null {
  const overprovisioning = percent(config.overprovisioningFactor, DEFAULT_OVERPROVISIONING_FACTOR) / 100;
  const groups = new Map<string, { weight: number; hosts: number; eligible: Endpoint[]; states: EndpointState[] }>();
  for (const h of level.hosts) {
    let g = groups.get(h.locality);
    if (g === undefined) {
      g = { weight: h.localityWeight > 0 ? h.localityWeight : 0, hosts: 0, eligible: [], states: [] };
      groups.set(h.locality, g);
    }
    g.hosts++;
  }
  level.eligible.forEach((h, i) => {
    const g = groups.get(h.locality);
    g?.eligible.push(h);
    g?.states.push(level.eligibleStates[i] as EndpointState);
  });
  const pickers: Picker[] = [];
  const weights: number[] = [];
  for (const g of groups.values()) {
    const effective = g.weight * Math.min(1, (overprovisioning * g.eligible.length) / g.hosts);
    if (effective <= 0) continue;
    pickers.push(policy.build(g.eligible, g.states, rng, config));
    weights.push(effective);
  }
  if (pickers.length === 0) return null;
  if (pickers.length === 1) return pickers[0] as Picker;
  return new LocalityPicker(new AliasTable(weights), pickers, rng);
}

class LocalityPicker implements Picker {
  private readonly localities: AliasTable;
  private readonly pickers: readonly Picker[];
  private readonly rng: Rng;

  constructor(localities: AliasTable, pickers: readonly Picker[], rng: Rng) {
    this.localities = localities;
    this.pickers = pickers;
    this.rng = rng;
  }

  pick(ctx: PickContext): Endpoint | undefined {
    return (this.pickers[this.localities.sample(this.rng)] as Picker).pick(ctx);
  }
}

class PriorityPicker implements Picker {
  /** Request number 0..99 → index into `pickers`. */
  private readonly table: Uint8Array;
  private readonly pickers: readonly Picker[];
  private readonly byHash: boolean;
  private readonly rng: Rng;

  constructor(table: Uint8Array, pickers: readonly Picker[], byHash: boolean, rng: Rng) {
    this.table = table;
    this.pickers = pickers;
    this.byHash = byHash;
    this.rng = rng;
  }

  pick(ctx: PickContext): Endpoint | undefined {
    const h = this.byHash ? ctx.hash : undefined;
    const n = h === undefined ? this.rng.below(100) : h % 100;
    return (this.pickers[this.table[n] as number] as Picker).pick(ctx);
  }
}

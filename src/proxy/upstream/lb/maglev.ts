/**
 * MAGLEV (Envoy `MAGLEV`, `maglev_lb.cc`): the lookup table of Google's Maglev paper
 * (Eisenbud et al., NSDI 2016, pseudocode listing 1), populated as Envoy populates it:
 *
 * - each host's permutation starts at `offset = xxHash64(key, seed 0) % M` and steps by
 *   `skip = xxHash64(key, seed 1) % (M - 1) + 1`, key being `address:port`;
 * - hosts take turns claiming their next free slot; with weights, a host whose normalised
 *   weight is a third of the largest takes a turn only every third round (Envoy's
 *   `target_weight_`), so slots are shared in proportion to weight;
 * - lookup: `table[hash % M]`, O(1). Without a key hash, a random one.
 *
 * M is a prime (default 65537; Envoy rejects a non-prime, which the xDS conversion should
 * NACK — given one anyway, the next prime is used). Against the ring: O(1) lookups and an
 * even spread (equal hosts' slot counts differ by at most one); when a host leaves, its
 * slots go to the others and a few survivors' slots move too (0.2% of slots for one host
 * of ten, measured in `test/proxy/lb/maglev.test.ts`).
 */
import { hashMod, hashString, hostHashKey } from './hash.js';
import { normalizeHostWeights } from './host-weights.js';
import { policyLoadBalancer } from './locality.js';
import { LB_POLICIES, type Endpoint, type HostPolicy, type LbConfig, type LoadBalancer, type PickContext, type Picker, type Rng } from './types.js';

export const DEFAULT_TABLE_SIZE = 65537;
/** Envoy's limit on `maglev_lb_config.table_size`. */
export const MAX_TABLE_SIZE = 5000011;

/** A built table: `table[slot]` is an index into `hosts`. */
export interface MaglevTable {
  readonly hosts: readonly Endpoint[];
  readonly table: Int32Array;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** The table size in effect: the configured size (default 65537) capped, then raised to a prime. */
export function tableSizeOf(config: LbConfig): number {
  const t = config.tableSize;
  let m = t !== undefined && Number.isFinite(t) && t >= 2 ? Math.min(Math.floor(t), MAX_TABLE_SIZE) : DEFAULT_TABLE_SIZE;
  while (!isPrime(m)) m++;
  return m;
}

/** Builds the table over `hosts` (non-empty) as Envoy's `OriginalMaglevTable` does. */
export function buildMaglevTable(hosts: readonly Endpoint[], config: LbConfig): MaglevTable {
  const normalized = normalizeHostWeights(hosts, config.localityWeighted === true);
  const m = tableSizeOf(config);
  const n = normalized.hosts.length;
  const weights = normalized.weights;
  const next = new Float64Array(n);
  const skip = new Float64Array(n);
  const target = new Float64Array(n);
  const out = new Uint32Array(2);
  let maxWeight = 0;
  for (let i = 0; i < n; i++) {
    const host = normalized.hosts[i] as Endpoint;
    const key = hostHashKey(host.address, host.port);
    hashString(key, 0, out);
    next[i] = hashMod(out, m);
    hashString(key, 1, out);
    skip[i] = hashMod(out, m - 1) + 1;
    maxWeight = Math.max(maxWeight, weights[i] as number);
  }
  const table = new Int32Array(m).fill(-1);
  let filled = 0;
  for (let iteration = 1; filled < m; iteration++) {
    for (let i = 0; i < n && filled < m; i++) {
      if (iteration * (weights[i] as number) < (target[i] as number)) continue;
      target[i] = (target[i] as number) + maxWeight;
      let c = next[i] as number;
      while ((table[c] as number) >= 0) c = (c + (skip[i] as number)) % m;
      table[c] = i;
      next[i] = (c + (skip[i] as number)) % m;
      filled++;
    }
  }
  return { hosts: normalized.hosts, table };
}

class MaglevPicker implements Picker {
  private readonly hosts: readonly Endpoint[];
  private readonly table: Int32Array;
  private readonly size: number;
  private readonly rng: Rng;

  constructor(built: MaglevTable, rng: Rng) {
    this.hosts = built.hosts;
    this.table = built.table;
    this.size = built.table.length;
    this.rng = rng;
  }

  pick(ctx: PickContext): Endpoint {
    const h = ctx.hash ?? this.rng.hash64();
    return this.hosts[this.table[h % this.size] as number] as Endpoint;
  }
}

export const MAGLEV_POLICY: HostPolicy = {
  consistentHash: true,
  build(hosts, _states, rng, config) {
    return new MaglevPicker(buildMaglevTable(hosts, config), rng);
  },
};

export function maglevLoadBalancer(): LoadBalancer {
  return policyLoadBalancer(LB_POLICIES.MAGLEV, MAGLEV_POLICY);
}

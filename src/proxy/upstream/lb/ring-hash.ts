/**
 * RING_HASH (Envoy `RING_HASH`, `ring_hash_lb.cc`): Envoy's ketama-style ring, built
 * entry for entry as Envoy builds it, so that Envoy, grpc-js-xds (gRFC A42) and Trellis
 * map a key to the same host given the same hosts.
 *
 * - Weights are normalised (`host-weights.ts`); `scale = min(ceil(minWeight × minSize) /
 *   minWeight, maxSize)`, so the lightest host gets a whole number of entries and the ring
 *   has between `minimumRingSize` and `maximumRingSize` entries.
 * - Walking the hosts in order with running sums, each host gets about `scale × weight`
 *   entries; entry i of a host is `xxHash64("<address:port>_<i>")`.
 * - Lookup: the first entry whose hash is >= the key hash, wrapping to the first entry;
 *   a binary search within one bucket of a bucket index (`RingIndex`). Without a key
 *   hash, a random one.
 *
 * Envoy's scaling gives each host `ceil(minSize / hosts)` entries, which grows when a host
 * leaves: the survivors' new entries take some keys from each other, so removing one of
 * ten hosts moves more than 1/10 of the keys (envoyproxy/envoy#22558, istio/istio#41814).
 */
import { encodeUtf8, hashNumber, hostHashKey, reserveScratch, scratchBytes, xxHash64 } from './hash.js';
import { normalizeHostWeights } from './host-weights.js';
import { policyLoadBalancer } from './locality.js';
import { LB_POLICIES, type Endpoint, type HostPolicy, type LbConfig, type LoadBalancer, type PickContext, type Picker, type Rng } from './types.js';

export const DEFAULT_MIN_RING_SIZE = 1024;
/** Envoy's default and its upper limit for `maximum_ring_size`. */
export const MAX_RING_SIZE = 8 * 1024 * 1024;

/** A built ring: sorted entry hashes and, for each entry, the index of its host. */
export interface Ring {
  readonly hosts: readonly Endpoint[];
  /** Entry hashes as numbers (`hi * 2^32 + lo`), ascending. */
  readonly hashes: Float64Array;
  readonly hostIndex: Uint32Array;
}

/** At most 2^16 buckets (256 KiB) in a ring's lookup index. */
const MAX_INDEX_BUCKETS = 1 << 16;
const TWO_POW_64 = 18446744073709551616;

/**
 * A bucket index over a ring's hashes: the hash space is cut into 2^k equal buckets (about
 * one per entry, at most 2^16) and `start[b]` is the first entry in bucket b or later, so a
 * lookup binary-searches one bucket — O(1) expected, O(log n) at worst. Hand-rolled because
 * a plain binary search over a 1,000-entry ring mispredicts about ten branches per pick
 * (see the RING_HASH line of `test/proxy/lb/bench.test.ts`).
 */
export class RingIndex {
  private readonly hashes: Float64Array;
  private readonly start: Uint32Array;
  /** buckets / 2^64, a power of two, so `floor(h × scale)` is exact. */
  private readonly scale: number;

  constructor(hashes: Float64Array) {
    let buckets = 1;
    while (buckets < hashes.length && buckets < MAX_INDEX_BUCKETS) buckets *= 2;
    this.hashes = hashes;
    this.scale = buckets / TWO_POW_64;
    // start[buckets] holds entries that rounded up to 2^64; start[buckets + 1] is the end.
    this.start = new Uint32Array(buckets + 2);
    let i = 0;
    for (let b = 0; b <= buckets; b++) {
      while (i < hashes.length && Math.floor((hashes[i] as number) * this.scale) < b) i++;
      this.start[b] = i;
    }
    this.start[buckets + 1] = hashes.length;
  }

  /** Index of the first entry with hash >= h, or 0 past the end: the same as ringLookup. */
  lookup(h: number): number {
    const b = Math.floor(h * this.scale);
    let lo = this.start[b] as number;
    let hi = this.start[b + 1] as number;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.hashes[mid] as number) < h) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.hashes.length ? 0 : lo;
  }
}

/** The ring sizes in effect: Envoy's defaults, the maximum capped at 8M, min <= max. */
export function ringBounds(config: LbConfig): { readonly min: number; readonly max: number } {
  const max = Math.min(positiveInt(config.maximumRingSize, MAX_RING_SIZE), MAX_RING_SIZE);
  const min = Math.min(positiveInt(config.minimumRingSize, DEFAULT_MIN_RING_SIZE), max);
  return { min, max };
}

function positiveInt(v: number | undefined, fallback: number): number {
  return v !== undefined && Number.isFinite(v) && v >= 1 ? Math.floor(v) : fallback;
}

/** Builds the ring over `hosts` (non-empty) as Envoy's `RingHashLoadBalancer::Ring` does. */
export function buildRing(hosts: readonly Endpoint[], config: LbConfig): Ring {
  const normalized = normalizeHostWeights(hosts, config.localityWeighted === true);
  const { min, max } = ringBounds(config);
  const weights = normalized.weights;
  let minWeight = Infinity;
  for (let i = 0; i < weights.length; i++) minWeight = Math.min(minWeight, weights[i] as number);
  const scale = Math.min(Math.ceil(minWeight * min) / minWeight, max);

  // First pass: how many entries each host gets (Envoy's running sums).
  const counts = new Uint32Array(weights.length);
  let current = 0;
  let target = 0;
  for (let h = 0; h < weights.length; h++) {
    target += scale * (weights[h] as number);
    let i = 0;
    while (current < target) {
      i++;
      current++;
    }
    counts[h] = i;
  }

  const hi = new Uint32Array(current);
  const lo = new Uint32Array(current);
  const owner = new Uint32Array(current);
  const out = new Uint32Array(2);
  let e = 0;
  for (let h = 0; h < weights.length; h++) {
    const host = normalized.hosts[h] as Endpoint;
    const prefixEnd = encodeUtf8(`${hostHashKey(host.address, host.port)}_`, 0);
    reserveScratch(prefixEnd + 16);
    for (let i = 0; i < (counts[h] as number); i++) {
      const end = writeDecimal(scratchBytes(), prefixEnd, i);
      xxHash64(scratchBytes(), end, 0, out);
      hi[e] = out[0] as number;
      lo[e] = out[1] as number;
      owner[e] = h;
      e++;
    }
  }

  const order = sortByHash(hi, lo);
  const hashes = new Float64Array(current);
  const hostIndex = new Uint32Array(current);
  for (let k = 0; k < current; k++) {
    const j = order[k] as number;
    out[0] = hi[j] as number;
    out[1] = lo[j] as number;
    hashes[k] = hashNumber(out);
    hostIndex[k] = owner[j] as number;
  }
  return { hosts: normalized.hosts, hashes, hostIndex };
}

/** Writes the decimal digits of `n` (a non-negative integer) at `at`; returns the end. */
function writeDecimal(b: Uint8Array, at: number, n: number): number {
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  let x = n;
  for (let k = at + digits - 1; k >= at; k--) {
    b[k] = 0x30 + (x % 10);
    x = Math.floor(x / 10);
  }
  return at + digits;
}

/**
 * Entry indices ordered by their unsigned 64-bit hash (hi, lo): an LSD radix sort with four
 * 16-bit digits. Hand-rolled because a ring can have 8M entries, where a comparator sort
 * over an index array costs seconds and this costs four linear passes.
 */
export function sortByHash(hi: Uint32Array, lo: Uint32Array): Uint32Array {
  const n = hi.length;
  let from = new Uint32Array(n);
  let to = new Uint32Array(n);
  for (let i = 0; i < n; i++) from[i] = i;
  const count = new Uint32Array(65537);
  for (let pass = 0; pass < 4; pass++) {
    const key = pass < 2 ? lo : hi;
    const shift = (pass & 1) * 16;
    count.fill(0);
    for (let i = 0; i < n; i++) {
      const d = ((key[from[i] as number] as number) >>> shift) & 0xffff;
      count[d + 1] = (count[d + 1] as number) + 1;
    }
    for (let d = 0; d < 65536; d++) count[d + 1] = (count[d + 1] as number) + (count[d] as number);
    for (let i = 0; i < n; i++) {
      const j = from[i] as number;
      const d = ((key[j] as number) >>> shift) & 0xffff;
      to[count[d] as number] = j;
      count[d] = (count[d] as number) + 1;
    }
    const t = from;
    from = to;
    to = t;
  }
  return from;
}

/** Index of the first entry with hash >= h, or 0 past the end (Envoy's ketama lookup). */
export function ringLookup(hashes: Float64Array, h: number): number {
  let lo = 0;
  let hi = hashes.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((hashes[mid] as number) < h) lo = mid + 1;
    else hi = mid;
  }
  return lo === hashes.length ? 0 : lo;
}

class RingPicker implements Picker {
  private readonly hosts: readonly Endpoint[];
  private readonly index: RingIndex;
  private readonly hostIndex: Uint32Array;
  private readonly rng: Rng;

  constructor(ring: Ring, rng: Rng) {
    this.hosts = ring.hosts;
    this.index = new RingIndex(ring.hashes);
    this.hostIndex = ring.hostIndex;
    this.rng = rng;
  }

  pick(ctx: PickContext): Endpoint {
    const h = ctx.hash ?? this.rng.hash64();
    return this.hosts[this.hostIndex[this.index.lookup(h)] as number] as Endpoint;
  }
}

export const RING_HASH_POLICY: HostPolicy = {
  consistentHash: true,
  build(hosts, _states, rng, config) {
    return new RingPicker(buildRing(hosts, config), rng);
  },
};

export function ringHashLoadBalancer(): LoadBalancer {
  return policyLoadBalancer(LB_POLICIES.RING_HASH, RING_HASH_POLICY);
}

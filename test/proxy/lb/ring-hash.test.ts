/** RING_HASH: Envoy's ring — sizes, weighted entry counts, lookups, and disruption when a host leaves. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashKey } from '../../../src/proxy/upstream/lb/hash.js';
import { buildRing, ringBounds, ringHashLoadBalancer, RingIndex, ringLookup, sortByHash } from '../../../src/proxy/upstream/lb/ring-hash.js';
import type { Endpoint, LbConfig, Picker } from '../../../src/proxy/upstream/lb/types.js';
import { build, hashes, host, hosts } from './fixtures.js';

function entriesPerHost(list: readonly Endpoint[], config: LbConfig = {}): number[] {
  const ring = buildRing(list, config);
  const counts = ring.hosts.map(() => 0);
  for (const i of ring.hostIndex) counts[i] = (counts[i] as number) + 1;
  return counts;
}

/** Fraction of `keys` random key hashes whose host changes from `before` to `after`, and whether all were on `removed`. */
function moved(before: Picker, after: Picker, removed: string, keys: number): { fraction: number; onRemoved: number; movedOthers: number } {
  const next = hashes(4242);
  let changed = 0;
  let onRemoved = 0;
  let movedOthers = 0;
  for (let i = 0; i < keys; i++) {
    const ctx = { hash: next() };
    const a = before.pick(ctx)?.id;
    const b = after.pick(ctx)?.id;
    if (a === removed) onRemoved++;
    if (a !== b) {
      changed++;
      if (a !== removed) movedOthers++;
    }
  }
  return { fraction: changed / keys, onRemoved: onRemoved / keys, movedOthers: movedOthers / keys };
}

describe('RING_HASH', { timeout: 30_000 }, () => {
  it('sizes the ring like Envoy: ceil(min / hosts) entries per equal host, min 1024 by default', () => {
    assert.deepEqual(entriesPerHost(hosts(10)), Array(10).fill(103));
    assert.deepEqual(entriesPerHost(hosts(9)), Array(9).fill(114));
    assert.deepEqual(entriesPerHost(hosts(1)), [1024]);
    assert.equal(buildRing(hosts(4), { minimumRingSize: 10_000 }).hashes.length, 10_000);
  });

  it('caps the ring at maximumRingSize, and at 8M whatever is configured', () => {
    assert.equal(buildRing(hosts(4), { minimumRingSize: 4096, maximumRingSize: 100 }).hashes.length, 100);
    assert.deepEqual(ringBounds({ maximumRingSize: 1e9 }), { min: 1024, max: 8 * 1024 * 1024 });
    assert.deepEqual(ringBounds({ minimumRingSize: 5000, maximumRingSize: 2000 }), { min: 2000, max: 2000 });
    assert.deepEqual(ringBounds({ minimumRingSize: 0, maximumRingSize: -1 }), { min: 1024, max: 8 * 1024 * 1024 });
  });

  it('gives hosts entries in proportion to weight, the lightest a whole number', () => {
    // Normalised weights .1 .2 .3 .4: scale = ceil(.1 × 1024) / .1 = 1030.
    assert.deepEqual(entriesPerHost([1, 2, 3, 4].map((w) => host(w, { weight: w }))), [103, 206, 309, 412]);
    // 1:1000: the light host's share 1/1001 × 1024 rounds up to 2 entries; scale = 2 × 1001.
    assert.deepEqual(entriesPerHost([host(1, { weight: 1 }), host(2, { weight: 1000 })]), [2, 2000]);
  });

  it('orders entries by their 64-bit hash and hashes "<address:port>_<i>" with xxHash64', () => {
    const ring = buildRing(hosts(3), {});
    for (let i = 1; i < ring.hashes.length; i++) assert.ok((ring.hashes[i - 1] as number) <= (ring.hashes[i] as number));
    const keys = new Set(Array.from({ length: 3 }, (_, h) => Array.from({ length: 342 }, (_, i) => hashKey(`${host(h + 1).id}_${i}`))).flat());
    for (const h of ring.hashes) assert.ok(keys.has(h));
  });

  it('radix-sorts by (high, low) as unsigned 64-bit values', () => {
    const hi = Uint32Array.from([5, 0xffffffff, 5, 0, 0x80000000]);
    const lo = Uint32Array.from([2, 0, 1, 0xffffffff, 7]);
    assert.deepEqual([...sortByHash(hi, lo)], [3, 2, 0, 4, 1]);
  });

  it('looks up the first entry at or after the hash, wrapping to the first', () => {
    const ring = Float64Array.from([10, 20, 30]);
    assert.deepEqual([0, 10, 11, 20, 29, 30, 31, 2 ** 64].map((h) => ringLookup(ring, h)), [0, 0, 1, 1, 2, 2, 0, 0]);
  });

  it('finds through the bucket index exactly what a plain binary search finds', () => {
    for (const ring of [buildRing(hosts(10), {}), buildRing(hosts(3), { minimumRingSize: 200_000 }), buildRing(hosts(1), { minimumRingSize: 1 })]) {
      const index = new RingIndex(ring.hashes);
      const next = hashes(8);
      const probes = [0, 1, 2 ** 64, 2 ** 64 - 2 ** 12, ...ring.hashes.slice(0, 50), ...Array.from({ length: 5000 }, next)];
      for (const h of probes) assert.equal(index.lookup(h), ringLookup(ring.hashes, h), `hash ${h}`);
    }
  });

  it('maps a hash to the same host across rebuilds and picker instances', () => {
    const a = build(ringHashLoadBalancer(), hosts(10), { seed: 1 });
    const b = build(ringHashLoadBalancer(), hosts(10), { seed: 2 });
    const next = hashes(5);
    for (let i = 0; i < 2000; i++) {
      const ctx = { hash: next() };
      assert.equal(a.pick(ctx)?.id, b.pick(ctx)?.id);
    }
    assert.equal(a.pick({ hash: hashKey('user-42') })?.id, a.pick({ hash: hashKey('user-42') })?.id);
  });

  it('removing 1 of 10 hosts moves only its keys when the survivors keep their entry counts (min 81: 9 each)', (t) => {
    const config = { minimumRingSize: 81 };
    const list = hosts(10);
    assert.deepEqual(entriesPerHost(list.slice(0, 9), config), entriesPerHost(list, config).slice(0, 9));
    const m = moved(build(ringHashLoadBalancer(), list, config), build(ringHashLoadBalancer(), list.slice(0, 9), config), host(10).id, 100_000);
    t.diagnostic(`ring (min 81) removal moved ${(100 * m.fraction).toFixed(2)}% of keys; ${(100 * m.onRemoved).toFixed(2)}% were on the removed host`);
    assert.equal(m.movedOthers, 0);
    assert.equal(m.fraction, m.onRemoved);
    assert.ok(m.fraction > 0.05 && m.fraction < 0.15);
  });

  it('removing 1 of 10 hosts at default sizes also moves keys between survivors (Envoy rescales), under 25%', (t) => {
    const list = hosts(10);
    const m = moved(build(ringHashLoadBalancer(), list), build(ringHashLoadBalancer(), list.slice(0, 9)), host(10).id, 100_000);
    t.diagnostic(
      `ring (min 1024) removal moved ${(100 * m.fraction).toFixed(2)}% of keys: ${(100 * m.onRemoved).toFixed(2)}% from the removed host, ` +
        `${(100 * m.movedOthers).toFixed(2)}% between survivors (103 → 114 entries each)`,
    );
    assert.ok(m.onRemoved > 0.08 && m.onRemoved < 0.12);
    assert.ok(m.fraction < 0.25);
  });

  it('without a key hash picks at random (every host, spread by ring share)', () => {
    const picker = build(ringHashLoadBalancer(), hosts(4));
    const seen = new Set<string | undefined>();
    for (let i = 0; i < 1000; i++) seen.add(picker.pick({ hash: undefined })?.id);
    assert.equal(seen.size, 4);
  });

  it('folds locality weights into host weights when localityWeighted (Envoy), 80/20 ±3 points', () => {
    const list = [...hosts(2, { locality: 'r/a/', localityWeight: 80 }), ...hosts(2, { locality: 'r/b/', localityWeight: 20 }, 3)];
    const counts = entriesPerHost(list, { localityWeighted: true });
    const total = counts.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs((100 * ((counts[0] as number) + (counts[1] as number))) / total - 80) <= 3, counts.join(','));
  });
});

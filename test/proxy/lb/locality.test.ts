/** Priorities (Envoy's 1.4 overprovisioning rule), panic, and locality weights around the policies. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { leastRequestLoadBalancer } from '../../../src/proxy/upstream/lb/least-request.js';
import { planPriorities } from '../../../src/proxy/upstream/lb/locality.js';
import { randomLoadBalancer } from '../../../src/proxy/upstream/lb/random.js';
import { ringHashLoadBalancer } from '../../../src/proxy/upstream/lb/ring-hash.js';
import { roundRobinLoadBalancer } from '../../../src/proxy/upstream/lb/round-robin.js';
import type { LoadBalancer } from '../../../src/proxy/upstream/lb/types.js';
import { build, countPicks, hashes, hosts, share, shareOf } from './fixtures.js';

const PICKS = 10_000;
const NON_HASH: readonly [string, () => LoadBalancer][] = [
  ['RANDOM', randomLoadBalancer],
  ['ROUND_ROBIN', roundRobinLoadBalancer],
  ['LEAST_REQUEST', leastRequestLoadBalancer],
];

/** Loads for levels given as [eligible, hosts] pairs. */
function loads(levels: readonly [number, number][], panicThreshold = 0): readonly number[] | undefined {
  return planPriorities(levels.map((l) => l[0]), levels.map((l) => l[1]), 140, panicThreshold)?.load;
}

describe('priority levels', { timeout: 10_000 }, () => {
  it("follow Envoy's table: P0 health 100/72/71/50/25/0% with a healthy P1", () => {
    assert.deepEqual(loads([[10, 10], [10, 10]]), [100, 0]);
    assert.deepEqual(loads([[18, 25], [10, 10]]), [100, 0]);
    assert.deepEqual(loads([[71, 100], [10, 10]]), [99, 1]);
    assert.deepEqual(loads([[5, 10], [10, 10]]), [70, 30]);
    assert.deepEqual(loads([[1, 4], [10, 10]]), [35, 65]);
    assert.deepEqual(loads([[0, 10], [10, 10]]), [0, 100]);
  });

  it('normalise when the levels together have less than 100% health (rounding to the first level)', () => {
    assert.deepEqual(loads([[2, 10], [2, 10], [2, 10]]), [34, 33, 33]);
    assert.deepEqual(loads([[4, 10]]), [100]);
  });

  it('give nothing to pick when no host is eligible and panic is disabled', () => {
    assert.equal(loads([[0, 3], [0, 2]]), undefined);
  });

  it('panic below the threshold only while total health is under 100%', () => {
    const plan = (levels: [number, number][]) => planPriorities(levels.map((l) => l[0]), levels.map((l) => l[1]), 140, 50);
    assert.deepEqual(plan([[4, 10], [4, 10]]), { load: [56, 44], panic: [false, false] });
    assert.deepEqual(plan([[4, 10], [1, 10]]), { load: [50, 50], panic: [true, true] });
    assert.deepEqual(plan([[6, 10], [1, 10]]), { load: [86, 14], panic: [false, true] });
    assert.deepEqual(plan([[0, 3], [0, 1]]), { load: [75, 25], panic: [true, true] });
  });

  it('a level in panic balances over all its hosts; one out of panic over its healthy hosts only', () => {
    const p0 = [...hosts(6), ...hosts(4, { healthy: false }, 7)];
    const p1 = [...hosts(1, { priority: 1 }, 11), ...hosts(9, { priority: 1, healthy: false }, 12)];
    const counts = countPicks(build(randomLoadBalancer(), [...p0, ...p1], { panicThresholdPercent: 50 }), PICKS, false);
    assert.ok(Math.abs(shareOf(counts, p0.map((h) => h.id)) - 86) <= 2);
    assert.equal(shareOf(counts, p0.slice(6).map((h) => h.id)), 0);
    for (const h of p1) assert.ok((counts.get(h.id) ?? 0) > 0, `${h.id} in the panicking level`);
  });

  it('consistent-hash policies choose the level by hash % 100 (P0 for 0..69 at 50% health)', () => {
    const p0 = [...hosts(5), ...hosts(5, { healthy: false }, 6)];
    const p1 = hosts(5, { priority: 1 }, 11);
    const picker = build(ringHashLoadBalancer(), [...p0, ...p1]);
    const inP0 = new Set(p0.slice(0, 5).map((h) => h.id));
    const next = hashes(31);
    for (let i = 0; i < 2000; i++) {
      const hash = next();
      assert.equal(inP0.has(picker.pick({ hash })?.id ?? ''), hash % 100 < 70, `hash ${hash}`);
    }
  });
});

describe('locality weights', { timeout: 10_000 }, () => {
  const a = hosts(3, { locality: 'us/a/', localityWeight: 80 });
  const b = hosts(3, { locality: 'us/b/', localityWeight: 20 }, 4);

  for (const [name, create] of NON_HASH) {
    it(`${name}: 80/20 over 10,000 picks within ±2 points`, () => {
      const counts = countPicks(build(create(), [...a, ...b], { localityWeighted: true }), PICKS, false);
      const aShare = shareOf(counts, a.map((h) => h.id));
      assert.ok(Math.abs(aShare - 80) <= 2, `locality a: ${aShare}%`);
    });
  }

  it('scale a locality by its health × 1.4: 50/50 with a half-healthy locality → 35:50 (41.2%), ±2', () => {
    const half = [...hosts(2, { locality: 'us/a/', localityWeight: 50 }), ...hosts(2, { locality: 'us/a/', localityWeight: 50, healthy: false }, 3)];
    const full = hosts(4, { locality: 'us/b/', localityWeight: 50 }, 5);
    // Priority health: 6 of 8 eligible → 105% → no spill; the locality step alone shifts load.
    const counts = countPicks(build(randomLoadBalancer(), [...half, ...full], { localityWeighted: true }), PICKS, false);
    const aShare = shareOf(counts, half.map((h) => h.id));
    assert.ok(Math.abs(aShare - (100 * 35) / 85) <= 2, `locality a: ${aShare}%`);
  });

  it('send nothing to a locality of weight 0 while another has weight', () => {
    const zero = hosts(3, { locality: 'us/z/', localityWeight: 0 }, 10);
    const counts = countPicks(build(randomLoadBalancer(), [...a, ...zero], { localityWeighted: true }), PICKS, false);
    assert.equal(shareOf(counts, zero.map((h) => h.id)), 0);
  });

  it('fall back to all eligible hosts when no locality has a weight', () => {
    const list = [...hosts(2, { locality: 'x/1/', localityWeight: 0 }), ...hosts(2, { locality: 'x/2/', localityWeight: 0 }, 3)];
    const counts = countPicks(build(randomLoadBalancer(), list, { localityWeighted: true }), PICKS, false);
    for (const h of list) assert.ok(Math.abs(share(counts, h.id) - 25) <= 2);
  });

  it('are ignored unless localityWeighted: hosts, not localities, share the traffic', () => {
    const nine = hosts(9, { locality: 'us/a/', localityWeight: 20 });
    const one = hosts(1, { locality: 'us/b/', localityWeight: 80 }, 10);
    const counts = countPicks(build(randomLoadBalancer(), [...nine, ...one]), PICKS, false);
    assert.ok(Math.abs(shareOf(counts, nine.map((h) => h.id)) - 90) <= 2);
  });
});

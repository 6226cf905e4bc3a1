/**
 * The contract every LoadBalancer keeps (STYLE 21: one suite per interface, run by every
 * implementation). Picks are counted over seeded PRNGs, so every number is reproducible;
 * consistent-hash policies are fed random key hashes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Endpoint, LoadBalancer, PickContext } from '../../../src/proxy/upstream/lb/types.js';
import { build, countPicks, hashes, host, hosts, share, shareOf, StateStore } from './fixtures.js';

export interface ContractOptions {
  /** Reads PickContext.hash (RING_HASH, MAGLEV). */
  readonly consistentHash: boolean;
  /**
   * Largest allowed gap, in percentage points, between a host's share of 100,000 picks and
   * its weight share (weights 1, 2, 3, 4 → 10/20/30/40%).
   */
  readonly weightTolerance: number;
}

const PICKS = 10_000;
const WEIGHT_PICKS = 100_000;
const TIMEOUT_MS = 30_000;

export function loadBalancerContract(name: string, create: () => LoadBalancer, options: ContractOptions): void {
  const withHash = options.consistentHash;

  describe(`LoadBalancer contract: ${name}`, { timeout: TIMEOUT_MS }, () => {
    it('is named after its policy', () => {
      assert.equal(create().name, name);
    });

    it('returns undefined for an empty endpoint list, with or without a key hash', () => {
      const picker = build(create(), []);
      assert.equal(picker.pick({ hash: undefined }), undefined);
      assert.equal(picker.pick({ hash: 12345 }), undefined);
    });

    it('returns undefined when every host is unhealthy or ejected (panic disabled by default)', () => {
      const store = new StateStore();
      const list = [...hosts(3, { healthy: false }), ...hosts(2, { priority: 1, healthy: false }, 4), host(6)];
      store.set(host(6).id, { ejected: true });
      const picker = build(create(), list, {}, store);
      assert.deepEqual([...countPicks(picker, 1000, withHash).keys()], ['none']);
    });

    it('picks only healthy, non-ejected hosts, each of them over 10,000 picks, and only input endpoints', () => {
      const store = new StateStore();
      const healthy = hosts(6);
      const list = [...healthy, ...hosts(3, { healthy: false }, 7), host(10)];
      store.set(host(10).id, { ejected: true });
      const picker = build(create(), list, {}, store);
      const inputs = new Set<Endpoint>(list);
      const ctx: PickContext = { hash: undefined };
      const next = hashes();
      const seen = new Map<string, number>();
      for (let i = 0; i < PICKS; i++) {
        if (withHash) ctx.hash = next();
        const e = picker.pick(ctx);
        assert.ok(e !== undefined && inputs.has(e), 'pick() returns one of the input endpoint objects');
        seen.set(e.id, (seen.get(e.id) ?? 0) + 1);
      }
      assert.deepEqual([...seen.keys()].sort(), healthy.map((h) => h.id).sort());
    });

    it(`respects weights 1:2:3:4 within ±${options.weightTolerance} points over 100,000 picks`, (t) => {
      const list = [1, 2, 3, 4].map((w) => host(w, { weight: w }));
      const counts = countPicks(build(create(), list), WEIGHT_PICKS, withHash);
      const shares = list.map((h) => share(counts, h.id));
      t.diagnostic(`${name} shares for weights 1:2:3:4: ${shares.map((s) => s.toFixed(2)).join(' / ')}`);
      list.forEach((h, i) => assert.ok(Math.abs((shares[i] as number) - 10 * h.weight) <= options.weightTolerance, `${h.id}: ${shares[i]}%`));
    });

    it('balances equal weights evenly (10 hosts, ±2 points over 100,000 picks)', () => {
      const list = hosts(10);
      const counts = countPicks(build(create(), list), WEIGHT_PICKS, withHash);
      for (const h of list) assert.ok(Math.abs(share(counts, h.id) - 10) <= 2, `${h.id}: ${share(counts, h.id)}%`);
    });

    it('sends everything to priority 0 while it is healthy', () => {
      const list = [...hosts(3), ...hosts(3, { priority: 1 }, 4)];
      const counts = countPicks(build(create(), list), PICKS, withHash);
      assert.equal(shareOf(counts, list.slice(0, 3).map((h) => h.id)), 100);
    });

    it('spills 30% to priority 1 when priority 0 is 50% healthy (1.4 × 50% = 70%), ±2 points', () => {
      const p0 = [...hosts(5), ...hosts(5, { healthy: false }, 6)];
      const p1 = hosts(5, { priority: 1 }, 11);
      const counts = countPicks(build(create(), [...p0, ...p1]), PICKS, withHash);
      const p0Share = shareOf(counts, p0.map((h) => h.id));
      assert.ok(Math.abs(p0Share - 70) <= 2, `priority 0 got ${p0Share}%`);
      assert.equal(counts.get('none'), undefined);
    });

    it('in panic (threshold 50%, all unhealthy) balances over all hosts', () => {
      const list = hosts(4, { healthy: false });
      const counts = countPicks(build(create(), list, { panicThresholdPercent: 50 }), PICKS, withHash);
      assert.deepEqual([...counts.keys()].sort(), list.map((h) => h.id).sort());
    });

    it('gives the same picks for the same seed and the same key hashes', () => {
      const list = [...hosts(5), host(6, { weight: 3 })];
      const a = countPicks(build(create(), list), 1000, withHash);
      const b = countPicks(build(create(), list), 1000, withHash);
      assert.deepEqual([...a.entries()].sort(), [...b.entries()].sort());
    });

    if (withHash) {
      it('maps the same key hash to the same host, whatever the PRNG seed', () => {
        const list = hosts(10);
        const one = build(create(), list, { seed: 1 });
        const two = build(create(), list, { seed: 2 });
        const next = hashes(99);
        for (let i = 0; i < 1000; i++) {
          const ctx = { hash: next() };
          const first = one.pick(ctx);
          assert.equal(one.pick(ctx), first);
          assert.equal(two.pick(ctx), first);
        }
      });
    }
  });
}

/** MAGLEV: table size, balanced and weighted slots, lookups, disruption when a host leaves. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashKey } from '../../../src/proxy/upstream/lb/hash.js';
import { buildMaglevTable, maglevLoadBalancer, tableSizeOf } from '../../../src/proxy/upstream/lb/maglev.js';
import type { Endpoint, LbConfig } from '../../../src/proxy/upstream/lb/types.js';
import { build, hashes, host, hosts } from './fixtures.js';

function slotsPerHost(list: readonly Endpoint[], config: LbConfig = {}): Map<string, number> {
  const built = buildMaglevTable(list, config);
  const counts = new Map<string, number>();
  for (const i of built.table) {
    const id = built.hosts[i]?.id ?? 'empty';
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

describe('MAGLEV', { timeout: 30_000 }, () => {
  it('uses a prime table size: 65537 by default, a non-prime raised to the next prime, capped at 5000011', () => {
    assert.equal(tableSizeOf({}), 65537);
    assert.equal(tableSizeOf({ tableSize: 65536 }), 65537);
    assert.equal(tableSizeOf({ tableSize: 10 }), 11);
    assert.equal(tableSizeOf({ tableSize: 251 }), 251);
    assert.equal(tableSizeOf({ tableSize: 1e9 }), 5000011);
    assert.equal(buildMaglevTable(hosts(3), { tableSize: 251 }).table.length, 251);
  });

  it('fills every slot, equal hosts within one slot of each other', () => {
    const counts = slotsPerHost(hosts(10));
    assert.equal(counts.get('empty'), undefined);
    const values = [...counts.values()];
    assert.equal(values.reduce((a, b) => a + b, 0), 65537);
    assert.ok(Math.max(...values) - Math.min(...values) <= 1, values.join(','));
  });

  it('shares slots in proportion to weight (1:2:3:4, within 0.5 points)', () => {
    const list = [1, 2, 3, 4].map((w) => host(w, { weight: w }));
    const counts = slotsPerHost(list);
    for (const h of list) assert.ok(Math.abs((100 * (counts.get(h.id) ?? 0)) / 65537 - 10 * h.weight) <= 0.5, `${h.id}: ${counts.get(h.id)}`);
  });

  it('maps a hash to table[hash % size], the same host across rebuilds and picker instances', () => {
    const built = buildMaglevTable(hosts(10), {});
    const a = build(maglevLoadBalancer(), hosts(10), { seed: 1 });
    const b = build(maglevLoadBalancer(), hosts(10), { seed: 2 });
    const next = hashes(5);
    for (let i = 0; i < 2000; i++) {
      const ctx = { hash: next() };
      const expected = built.hosts[built.table[ctx.hash % 65537] as number]?.id;
      assert.equal(a.pick(ctx)?.id, expected);
      assert.equal(b.pick(ctx)?.id, expected);
    }
    assert.equal(a.pick({ hash: hashKey('user-42') }), a.pick({ hash: hashKey('user-42') }));
  });

  it('removing 1 of 10 hosts moves its ~10% of slots plus under 1% of the survivors\' slots', (t) => {
    const list = hosts(10);
    const before = buildMaglevTable(list, {});
    const after = buildMaglevTable(list.slice(0, 9), {});
    let changed = 0;
    let onRemoved = 0;
    for (let s = 0; s < 65537; s++) {
      const a = before.hosts[before.table[s] as number]?.id;
      if (a === host(10).id) onRemoved++;
      if (a !== after.hosts[after.table[s] as number]?.id) changed++;
    }
    const fraction = changed / 65537;
    const others = (changed - onRemoved) / 65537;
    t.diagnostic(`maglev removal moved ${(100 * fraction).toFixed(2)}% of slots: ${((100 * onRemoved) / 65537).toFixed(2)}% from the removed host, ${(100 * others).toFixed(2)}% between survivors`);
    assert.ok(onRemoved / 65537 > 0.09 && onRemoved / 65537 < 0.11);
    assert.ok(others < 0.01);
  });
});

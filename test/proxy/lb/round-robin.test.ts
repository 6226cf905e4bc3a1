/** ROUND_ROBIN: exact cycling for equal weights, a smooth exact EDF schedule for unequal ones. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { roundRobinLoadBalancer } from '../../../src/proxy/upstream/lb/round-robin.js';
import type { Picker } from '../../../src/proxy/upstream/lb/types.js';
import { build, host, hosts } from './fixtures.js';

const CTX = { hash: undefined };

function sequence(picker: Picker, n: number): string[] {
  return Array.from({ length: n }, () => picker.pick(CTX)?.id ?? 'none');
}

describe('ROUND_ROBIN', { timeout: 10_000 }, () => {
  it('cycles through equal-weight hosts in order, each once per cycle', () => {
    const list = hosts(5);
    const seq = sequence(build(roundRobinLoadBalancer(), list), 50);
    const start = list.findIndex((h) => h.id === seq[0]);
    seq.forEach((id, i) => assert.equal(id, list[(start + i) % 5]?.id));
  });

  it('starts at a random host (the seed decides), like Envoy', () => {
    const list = hosts(5);
    const firsts = new Set<string | undefined>();
    for (let seed = 1; seed <= 20; seed++) firsts.add(build(roundRobinLoadBalancer(), list, { seed }).pick(CTX)?.id);
    assert.ok(firsts.size >= 3, `first picks: ${[...firsts].join(', ')}`);
  });

  it('cycles over the healthy hosts only', () => {
    const list = [host(1), host(2, { healthy: false }), host(3), host(4)];
    const seq = sequence(build(roundRobinLoadBalancer(), list), 9);
    assert.deepEqual(new Set(seq.slice(0, 3)), new Set([host(1).id, host(3).id, host(4).id]));
    assert.deepEqual(seq.slice(3, 6), seq.slice(0, 3));
  });

  it('gives each host exactly its weight in every cycle of sum(weights) picks', () => {
    const list = [host(1, { weight: 1 }), host(2, { weight: 2 }), host(3, { weight: 5 })];
    const picker = build(roundRobinLoadBalancer(), list);
    for (let cycle = 0; cycle < 20; cycle++) {
      const counts = new Map<string, number>();
      for (const id of sequence(picker, 8)) counts.set(id, (counts.get(id) ?? 0) + 1);
      // The phase is random, so a cycle boundary may split one host's turn: allow ±1.
      for (const h of list) assert.ok(Math.abs((counts.get(h.id) ?? 0) - h.weight) <= 1, `cycle ${cycle}: ${h.id} ${counts.get(h.id)}`);
    }
  });

  it('spreads a heavy host smoothly instead of picking it weight times in a row', () => {
    const list = [host(1, { weight: 1 }), host(2, { weight: 1 }), host(3, { weight: 4 })];
    const seq = sequence(build(roundRobinLoadBalancer(), list), 600);
    let run = 0;
    let longest = 0;
    for (const id of seq) {
      run = id === host(3).id ? run + 1 : 0;
      longest = Math.max(longest, run);
    }
    assert.ok(longest <= 3, `longest run of the weight-4 host: ${longest}`);
    assert.equal(seq.filter((id) => id === host(3).id).length, 400);
  });

  it('a new picker restarts its own cursor; the old one keeps its own', () => {
    const list = hosts(3);
    const lb = roundRobinLoadBalancer();
    const a = build(lb, list);
    const first = sequence(a, 2);
    const b = build(lb, list);
    assert.deepEqual(sequence(b, 2), first);
    assert.equal(a.pick(CTX)?.id, sequence(build(lb, list), 3)[2]);
  });
});

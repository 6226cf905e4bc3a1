/** LEAST_REQUEST: power of two choices on active requests; weights by sampling and load per weight. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { leastRequestLoadBalancer } from '../../../src/proxy/upstream/lb/least-request.js';
import { build, countPicks, host, hosts, share, StateStore } from './fixtures.js';

const CTX = { hash: undefined };

describe('LEAST_REQUEST', { timeout: 10_000 }, () => {
  it('with two hosts (a full scan) always picks the one with fewer active requests', () => {
    const store = new StateStore();
    const list = hosts(2);
    store.set(host(1).id, { activeRequests: 5 });
    store.set(host(2).id, { activeRequests: 1 });
    const picker = build(leastRequestLoadBalancer(), list, {}, store);
    for (let i = 0; i < 1000; i++) assert.equal(picker.pick(CTX)?.id, host(2).id);
  });

  it('reads active requests at pick time (the picker is not rebuilt)', () => {
    const store = new StateStore();
    const picker = build(leastRequestLoadBalancer(), hosts(2), {}, store);
    store.set(host(2).id, { activeRequests: 3 });
    assert.equal(picker.pick(CTX)?.id, host(1).id);
    store.set(host(1).id, { activeRequests: 4 });
    assert.equal(picker.pick(CTX)?.id, host(2).id);
  });

  it('among 10 hosts prefers the idle one: P2C picks it 1 - (9/10)^2 = 19% of the time (±2)', () => {
    const store = new StateStore();
    const list = hosts(10);
    for (const h of list) store.set(h.id, { activeRequests: 10 });
    store.set(host(1).id, { activeRequests: 0 });
    const counts = countPicks(build(leastRequestLoadBalancer(), list, {}, store), 20_000, false);
    assert.ok(Math.abs(share(counts, host(1).id) - 19) <= 2, `idle host: ${share(counts, host(1).id)}%`);
  });

  it('among 10 hosts avoids the busiest: it wins only when sampled twice, 1% (≤ 1.5)', () => {
    const store = new StateStore();
    const list = hosts(10);
    store.set(host(1).id, { activeRequests: 100 });
    const counts = countPicks(build(leastRequestLoadBalancer(), list, {}, store), 20_000, false);
    assert.ok(share(counts, host(1).id) <= 1.5, `busy host: ${share(counts, host(1).id)}%`);
  });

  it('with choiceCount >= hosts scans them all and always finds the least loaded', () => {
    const store = new StateStore();
    const list = hosts(5);
    list.forEach((h, i) => store.set(h.id, { activeRequests: 10 - i }));
    const picker = build(leastRequestLoadBalancer(), list, { choiceCount: 5 }, store);
    for (let i = 0; i < 200; i++) assert.equal(picker.pick(CTX)?.id, host(5).id);
  });

  it('spreads ties evenly in a full scan', () => {
    const counts = countPicks(build(leastRequestLoadBalancer(), hosts(2)), 10_000, false);
    assert.ok(Math.abs(share(counts, host(1).id) - 50) <= 2);
  });

  it('with unequal weights compares load per weight: 3 active on weight 3 beats 2 on weight 1', () => {
    const store = new StateStore();
    const list = [host(1, { weight: 1 }), host(2, { weight: 3 })];
    store.set(host(1).id, { activeRequests: 2 });
    store.set(host(2).id, { activeRequests: 3 });
    const picker = build(leastRequestLoadBalancer(), list, {}, store);
    for (let i = 0; i < 200; i++) assert.equal(picker.pick(CTX)?.id, host(2).id);
  });
});

/**
 * `LbConfig.ejected`, the hosts a cluster's outlier detection ejected, with every policy:
 * left out like an `EndpointState.ejected` host, counted as unhealthy for priority
 * spill-over, and picked again in panic.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoadBalancerRegistry, registerBuiltinLoadBalancers } from '../../../src/proxy/upstream/lb/registry.js';
import { LB_POLICIES, type LoadBalancer } from '../../../src/proxy/upstream/lb/types.js';
import { build, countPicks, host, hosts } from './fixtures.js';

const lbs = new LoadBalancerRegistry();
registerBuiltinLoadBalancers(lbs);
const CONSISTENT: ReadonlySet<string> = new Set([LB_POLICIES.RING_HASH, LB_POLICIES.MAGLEV]);

for (const policy of Object.values(LB_POLICIES)) {
  const create = (): LoadBalancer => lbs.create(policy) as LoadBalancer;
  const withHash = CONSISTENT.has(policy);

  describe(`LbConfig.ejected: ${policy}`, { timeout: 30_000 }, () => {
    it('leaves the ejected hosts out, and only them', () => {
      const list = hosts(5);
      const ejected = new Set([host(2).id, host(4).id]);
      const counts = countPicks(build(create(), list, { ejected }), 5_000, withHash);
      assert.deepEqual([...counts.keys()].sort(), [host(1).id, host(3).id, host(5).id].sort());
    });

    it('counts them as unhealthy for their priority: traffic spills to the next level', () => {
      const list = [...hosts(2), ...hosts(2, { priority: 1 }, 3)];
      const counts = countPicks(build(create(), list, { ejected: new Set([host(1).id, host(2).id]) }), 2_000, withHash);
      assert.deepEqual([...counts.keys()].sort(), [host(3).id, host(4).id].sort());
    });

    it('picks them again in panic, and nothing when panic is off and all are out', () => {
      const list = hosts(4);
      const all = new Set(list.map((h) => h.id));
      assert.deepEqual([...countPicks(build(create(), list, { ejected: all }), 500, withHash).keys()], ['none']);
      const panic = countPicks(build(create(), list, { ejected: new Set([host(1).id, host(2).id, host(3).id]), panicThresholdPercent: 50 }), 5_000, withHash);
      assert.equal(panic.size, 4, 'below 50% eligible: every host, ejected or not');
    });
  });
}

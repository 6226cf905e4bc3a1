/** The load balancer registry: explicit registration, creation by Envoy policy name. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LoadBalancerRegistry, registerBuiltinLoadBalancers } from '../../../src/proxy/upstream/lb/registry.js';
import { LB_POLICIES, type LoadBalancer } from '../../../src/proxy/upstream/lb/types.js';

describe('LoadBalancerRegistry', () => {
  it('starts empty: importing registers nothing', () => {
    assert.deepEqual(new LoadBalancerRegistry().names(), []);
  });

  it('registers the five built-in policies under their Envoy names', () => {
    const registry = new LoadBalancerRegistry();
    registerBuiltinLoadBalancers(registry);
    assert.deepEqual(registry.names(), ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV']);
    for (const name of Object.values(LB_POLICIES)) assert.equal(registry.create(name)?.name, name);
  });

  it('answers undefined for an unknown policy, and lets a registration replace another', () => {
    const registry = new LoadBalancerRegistry();
    registerBuiltinLoadBalancers(registry);
    assert.equal(registry.create('CLUSTER_PROVIDED'), undefined);
    assert.equal(registry.has('CLUSTER_PROVIDED'), false);
    const custom: LoadBalancer = { name: 'RANDOM', build: () => ({ pick: () => undefined }) };
    registry.register('RANDOM', () => custom);
    assert.equal(registry.create('RANDOM'), custom);
  });
});

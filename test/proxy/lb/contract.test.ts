/** Runs the LoadBalancer contract against every built-in policy, as the registry creates them. */
import assert from 'node:assert/strict';
import { LoadBalancerRegistry, registerBuiltinLoadBalancers } from '../../../src/proxy/upstream/lb/registry.js';
import { LB_POLICIES, type LoadBalancer } from '../../../src/proxy/upstream/lb/types.js';
import { loadBalancerContract, type ContractOptions } from './contract.js';

const registry = new LoadBalancerRegistry();
registerBuiltinLoadBalancers(registry);

function factory(name: string): () => LoadBalancer {
  return () => {
    const lb = registry.create(name);
    assert.ok(lb !== undefined, `${name} is registered`);
    return lb;
  };
}

/** Weight tolerances: deterministic schedules are exact; sampling and ring arcs are not. */
const OPTIONS: Record<string, ContractOptions> = {
  [LB_POLICIES.ROUND_ROBIN]: { consistentHash: false, weightTolerance: 0.1 },
  [LB_POLICIES.LEAST_REQUEST]: { consistentHash: false, weightTolerance: 1 },
  [LB_POLICIES.RANDOM]: { consistentHash: false, weightTolerance: 1 },
  [LB_POLICIES.RING_HASH]: { consistentHash: true, weightTolerance: 3 },
  [LB_POLICIES.MAGLEV]: { consistentHash: true, weightTolerance: 1 },
};

for (const name of registry.names()) {
  loadBalancerContract(name, factory(name), OPTIONS[name] ?? { consistentHash: false, weightTolerance: 1 });
}

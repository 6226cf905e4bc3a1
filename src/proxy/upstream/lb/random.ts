/**
 * RANDOM (Envoy `RANDOM`): a uniformly random host, or, when weights differ, a host chosen
 * with probability weight / sum through an alias table (O(1) per pick).
 */
import { AliasTable } from './alias-table.js';
import { allEqual, weightsOf } from './host-weights.js';
import { policyLoadBalancer } from './locality.js';
import { LB_POLICIES, type Endpoint, type HostPolicy, type LoadBalancer, type Picker, type Rng } from './types.js';

class UniformPicker implements Picker {
  private readonly hosts: readonly Endpoint[];
  private readonly rng: Rng;

  constructor(hosts: readonly Endpoint[], rng: Rng) {
    this.hosts = hosts;
    this.rng = rng;
  }

  pick(): Endpoint {
    return this.hosts[this.rng.below(this.hosts.length)] as Endpoint;
  }
}

class WeightedRandomPicker implements Picker {
  private readonly hosts: readonly Endpoint[];
  private readonly table: AliasTable;
  private readonly rng: Rng;

  constructor(hosts: readonly Endpoint[], table: AliasTable, rng: Rng) {
    this.hosts = hosts;
    this.table = table;
    this.rng = rng;
  }

  pick(): Endpoint {
    return this.hosts[this.table.sample(this.rng)] as Endpoint;
  }
}

export const RANDOM_POLICY: HostPolicy = {
  consistentHash: false,
  build(hosts, _states, rng) {
    const weights = weightsOf(hosts);
    return allEqual(weights) ? new UniformPicker(hosts, rng) : new WeightedRandomPicker(hosts, new AliasTable(weights), rng);
  },
};

export function randomLoadBalancer(): LoadBalancer {
  return policyLoadBalancer(LB_POLICIES.RANDOM, RANDOM_POLICY);
}

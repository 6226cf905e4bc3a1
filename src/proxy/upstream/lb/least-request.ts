/**
 * LEAST_REQUEST (Envoy `LEAST_REQUEST`, Istio's default policy): power of `choiceCount`
 * (default 2) random choices — sample that many hosts (with replacement, as Envoy does)
 * and take the one with the fewest active requests; ties keep the earlier sample. When the
 * hosts are no more than `choiceCount`, all of them are compared instead (recent Envoy's
 * full scan), starting from a random host so that ties spread evenly.
 *
 * Unequal weights: Envoy switches to an EDF schedule over `weight / (active + 1)^bias`.
 * Trellis keeps power-of-two choices and makes both steps weight-aware instead: candidates
 * are sampled with probability proportional to weight (alias table, O(1)), and compared by
 * load per unit of weight, `active / weight` (the Linkerd/Finagle form). With no requests in
 * flight every comparison ties, the first sample wins and traffic is exactly
 * weight-proportional; under load the host with less load per weight wins. O(choiceCount)
 * per pick, no shared queue to update.
 */
import { AliasTable } from './alias-table.js';
import { allEqual, weightsOf } from './host-weights.js';
import { policyLoadBalancer } from './locality.js';
import { LB_POLICIES, type Endpoint, type EndpointState, type HostPolicy, type LbConfig, type LoadBalancer, type Picker, type Rng } from './types.js';

export const DEFAULT_CHOICE_COUNT = 2;

class LeastRequestPicker implements Picker {
  private readonly hosts: readonly Endpoint[];
  private readonly states: readonly EndpointState[];
  private readonly weights: Float64Array;
  /** null when the weights are equal: sample uniformly. */
  private readonly sampler: AliasTable | null;
  private readonly choiceCount: number;
  private readonly fullScan: boolean;
  private readonly rng: Rng;

  constructor(hosts: readonly Endpoint[], states: readonly EndpointState[], weights: Float64Array, choiceCount: number, rng: Rng) {
    this.hosts = hosts;
    this.states = states;
    this.weights = weights;
    this.sampler = allEqual(weights) ? null : new AliasTable(weights);
    this.choiceCount = choiceCount;
    this.fullScan = hosts.length <= choiceCount;
    this.rng = rng;
  }

  pick(): Endpoint {
    let best = this.sample();
    if (this.fullScan) {
      for (let i = 0; i < this.hosts.length; i++) if (this.lighter(i, best)) best = i;
    } else {
      for (let c = 1; c < this.choiceCount; c++) {
        const candidate = this.sample();
        if (this.lighter(candidate, best)) best = candidate;
      }
    }
    return this.hosts[best] as Endpoint;
  }

  private sample(): number {
    return this.sampler === null ? this.rng.below(this.hosts.length) : this.sampler.sample(this.rng);
  }

  /** active(a) / weight(a) < active(b) / weight(b), cross-multiplied. */
  private lighter(a: number, b: number): boolean {
    const sa = this.states[a] as EndpointState;
    const sb = this.states[b] as EndpointState;
    return sa.activeRequests * (this.weights[b] as number) < sb.activeRequests * (this.weights[a] as number);
  }
}

function choiceCountOf(config: LbConfig): number {
  const c = config.choiceCount;
  return c !== undefined && Number.isInteger(c) && c >= 2 ? c : DEFAULT_CHOICE_COUNT;
}

export const LEAST_REQUEST_POLICY: HostPolicy = {
  consistentHash: false,
  build(hosts, states, rng, config) {
    return new LeastRequestPicker(hosts, states, weightsOf(hosts), choiceCountOf(config), rng);
  },
};

export function leastRequestLoadBalancer(): LoadBalancer {
  return policyLoadBalancer(LB_POLICIES.LEAST_REQUEST, LEAST_REQUEST_POLICY);
}

/**
 * Load balancer registry: policy name (Envoy `Cluster.lb_policy`) → factory. Importing
 * this module registers nothing; the proxy's wiring calls `registerBuiltinLoadBalancers`
 * on its registry (STYLE 3; grpc-js `src/load-balancer.ts`, grpc-js-xds `src/index.ts`).
 */
import { leastRequestLoadBalancer } from './least-request.js';
import { maglevLoadBalancer } from './maglev.js';
import { randomLoadBalancer } from './random.js';
import { ringHashLoadBalancer } from './ring-hash.js';
import { roundRobinLoadBalancer } from './round-robin.js';
import { LB_POLICIES, type LoadBalancer } from './types.js';

/** Makes the LoadBalancer for a policy; called once per cluster (re)configuration. */
export type LoadBalancerFactory = () => LoadBalancer;

export class LoadBalancerRegistry {
  private readonly factories = new Map<string, LoadBalancerFactory>();

  /** Registers `factory` under `name`, replacing an earlier registration (as grpc-js does). */
  register(name: string, factory: LoadBalancerFactory): void {
    this.factories.set(name, factory);
  }

  /** A new LoadBalancer for `name`, or undefined when no policy has that name. */
  create(name: string): LoadBalancer | undefined {
    return this.factories.get(name)?.();
  }

  has(name: string): boolean {
    return this.factories.has(name);
  }

  /** Registered names, in registration order. */
  names(): string[] {
    return [...this.factories.keys()];
  }
}

/** Registers ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH and MAGLEV. */
export function registerBuiltinLoadBalancers(registry: LoadBalancerRegistry): void {
  registry.register(LB_POLICIES.ROUND_ROBIN, roundRobinLoadBalancer);
  registry.register(LB_POLICIES.LEAST_REQUEST, leastRequestLoadBalancer);
  registry.register(LB_POLICIES.RANDOM, randomLoadBalancer);
  registry.register(LB_POLICIES.RING_HASH, ringHashLoadBalancer);
  registry.register(LB_POLICIES.MAGLEV, maglevLoadBalancer);
}

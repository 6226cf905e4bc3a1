/** Endpoints, state stores and counting helpers shared by the load balancer tests. */
import { XorShift32 } from '../../../src/proxy/upstream/lb/prng.js';
import type { Endpoint, EndpointState, LbConfig, LoadBalancer, PickContext, Picker } from '../../../src/proxy/upstream/lb/types.js';

/** Host `n` (1-based): 10.0.<n / 250>.<n % 250>:8080, weight 1, priority 0, healthy, locality r1/z1/s1. */
export function host(n: number, fields: Partial<Omit<Endpoint, 'id' | 'address' | 'port'>> = {}): Endpoint {
  const address = `10.0.${Math.floor(n / 250)}.${n % 250}`;
  return Object.freeze({ id: `${address}:8080`, address, port: 8080, weight: 1, locality: 'r1/z1/s1', localityWeight: 1, priority: 0, healthy: true, workload: null, ...fields });
}

/** Hosts 1..count with the same fields. */
export function hosts(count: number, fields: Partial<Omit<Endpoint, 'id' | 'address' | 'port'>> = {}, from = 1): Endpoint[] {
  return Array.from({ length: count }, (_, i) => host(from + i, fields));
}

/** The proxy's per-endpoint state, created on first use and kept by id. */
export class StateStore {
  readonly byId = new Map<string, EndpointState>();
  readonly state = (id: string): EndpointState => {
    let s = this.byId.get(id);
    if (s === undefined) {
      s = { activeRequests: 0, ejected: false };
      this.byId.set(id, s);
    }
    return s;
  };

  set(id: string, fields: Partial<EndpointState>): void {
    Object.assign(this.state(id), fields);
  }
}

export const SEED = 12345;

/** Builds a picker with a fixed seed (and any other config). */
export function build(lb: LoadBalancer, endpoints: readonly Endpoint[], config: LbConfig = {}, store = new StateStore()): Picker {
  return lb.build(Object.freeze([...endpoints]), store.state, { seed: SEED, ...config });
}

/** Random 64-bit key hashes from a seeded generator. */
export function hashes(seed = 777): () => number {
  const rng = new XorShift32(seed);
  return () => rng.hash64();
}

/** Picks `n` times; counts by endpoint id. `withHash` passes random key hashes. */
export function countPicks(picker: Picker, n: number, withHash: boolean): Map<string, number> {
  const next = hashes();
  const ctx: PickContext = { hash: undefined };
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    ctx.hash = withHash ? next() : undefined;
    const e = picker.pick(ctx);
    const id = e === undefined ? 'none' : e.id;
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

/** Share of `id` in `counts`, in percent. */
export function share(counts: Map<string, number>, id: string): number {
  let total = 0;
  for (const c of counts.values()) total += c;
  return (100 * (counts.get(id) ?? 0)) / total;
}

/** Share in percent of the picks that landed on any of `ids`. */
export function shareOf(counts: Map<string, number>, ids: readonly string[]): number {
  return ids.reduce((sum, id) => sum + share(counts, id), 0);
}

/**
 * ROUND_ROBIN (Envoy `ROUND_ROBIN`). Equal weights: a cursor over the hosts, starting at a
 * random host (Envoy also randomises the start, so that proxies built at the same moment
 * do not all hit the same host first). Unequal weights: Envoy's earliest-deadline-first
 * schedule (`edf_scheduler.h`): each host's next deadline is `last + 1/weight`, the
 * earliest deadline is picked, ties go to the host queued first. Each host gets exactly
 * its share, spread smoothly (a weight-3 host is picked every third of a cycle, not three
 * times in a row). The start phase is random: the first deadline of each host is uniform
 * in [0, 1/weight). O(log n) per pick, on a binary heap in typed arrays.
 *
 * The cursor and the heap are the picker's own mutable state (a new picker restarts).
 */
import { allEqual, weightsOf } from './host-weights.js';
import { policyLoadBalancer } from './locality.js';
import { LB_POLICIES, type Endpoint, type HostPolicy, type LoadBalancer, type Picker } from './types.js';

class CyclePicker implements Picker {
  private readonly hosts: readonly Endpoint[];
  private next: number;

  constructor(hosts: readonly Endpoint[], start: number) {
    this.hosts = hosts;
    this.next = start;
  }

  pick(): Endpoint {
    const i = this.next;
    this.next = i + 1 === this.hosts.length ? 0 : i + 1;
    return this.hosts[i] as Endpoint;
  }
}

/** Earliest deadline first over a binary min-heap of host indices. */
class EdfPicker implements Picker {
  private readonly hosts: readonly Endpoint[];
  private readonly heap: Int32Array;
  private readonly deadline: Float64Array;
  private readonly period: Float64Array;
  /** Queue order, the tie-break of equal deadlines (Envoy's `order_offset`). */
  private readonly order: Float64Array;
  private seq: number;

  constructor(hosts: readonly Endpoint[], weights: Float64Array, phase: Float64Array) {
    const n = hosts.length;
    this.hosts = hosts;
    this.heap = new Int32Array(n);
    this.deadline = new Float64Array(n);
    this.period = new Float64Array(n);
    this.order = new Float64Array(n);
    this.seq = n;
    for (let i = 0; i < n; i++) {
      this.period[i] = 1 / (weights[i] as number);
      this.deadline[i] = (phase[i] as number) * (this.period[i] as number);
      this.order[i] = i;
      this.heap[i] = i;
    }
    for (let i = (n >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  pick(): Endpoint {
    const top = this.heap[0] as number;
    this.deadline[top] = (this.deadline[top] as number) + (this.period[top] as number);
    this.order[top] = this.seq++;
    this.siftDown(0);
    return this.hosts[top] as Endpoint;
  }

  private before(a: number, b: number): boolean {
    const da = this.deadline[a] as number;
    const db = this.deadline[b] as number;
    return da < db || (da === db && (this.order[a] as number) < (this.order[b] as number));
  }

  private siftDown(from: number): void {
    const heap = this.heap;
    const n = heap.length;
    let i = from;
    const item = heap[i] as number;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && this.before(heap[right] as number, heap[left] as number)) child = right;
      if (!this.before(heap[child] as number, item)) break;
      heap[i] = heap[child] as number;
      i = child;
    }
    heap[i] = item;
  }
}

export const ROUND_ROBIN_POLICY: HostPolicy = {
  consistentHash: false,
  build(hosts, _states, rng) {
    const weights = weightsOf(hosts);
    if (allEqual(weights)) return new CyclePicker(hosts, rng.below(hosts.length));
    const phase = new Float64Array(hosts.length);
    for (let i = 0; i < phase.length; i++) phase[i] = rng.unit();
    return new EdfPicker(hosts, weights, phase);
  },
};

export function roundRobinLoadBalancer(): LoadBalancer {
  return policyLoadBalancer(LB_POLICIES.ROUND_ROBIN, ROUND_ROBIN_POLICY);
}

/**
 * Walker's alias method (Vose's construction): weighted sampling in O(1) per sample after
 * O(n) set-up, where a cumulative table needs a binary search. Hand-rolled because weighted
 * RANDOM and weighted LEAST_REQUEST sample on every pick; `test/proxy/lb/bench.test.ts`
 * measures both pickers.
 */
import type { Rng } from './types.js';

export class AliasTable {
  readonly size: number;
  /** Probability of keeping column i rather than taking its alias. */
  private readonly keep: Float64Array;
  private readonly alias: Int32Array;

  /** `weights` must be non-empty, finite and positive. */
  constructor(weights: ArrayLike<number>) {
    const n = weights.length;
    this.size = n;
    this.keep = new Float64Array(n);
    this.alias = new Int32Array(n);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += weights[i] as number;
    const scaled = new Float64Array(n);
    const small = new Int32Array(n);
    const large = new Int32Array(n);
    let ns = 0;
    let nl = 0;
    for (let i = 0; i < n; i++) {
      scaled[i] = ((weights[i] as number) * n) / sum;
      if ((scaled[i] as number) < 1) small[ns++] = i;
      else large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
      const s = small[--ns] as number;
      const l = large[nl - 1] as number;
      this.keep[s] = scaled[s] as number;
      this.alias[s] = l;
      scaled[l] = (scaled[l] as number) + (scaled[s] as number) - 1;
      if ((scaled[l] as number) < 1) {
        nl--;
        small[ns++] = l;
      }
    }
    // What is left is 1 up to rounding.
    while (nl > 0) this.setFull(large[--nl] as number);
    while (ns > 0) this.setFull(small[--ns] as number);
  }

  private setFull(i: number): void {
    this.keep[i] = 1;
    this.alias[i] = i;
  }

  /** A column chosen with probability weight / sum. One random number per sample. */
  sample(rng: Rng): number {
    const x = rng.unit() * this.size;
    const i = Math.floor(x);
    return x - i < (this.keep[i] as number) ? i : (this.alias[i] as number);
  }
}

/**
 * The pickers' PRNG: Marsaglia's xorshift32 (period 2^32 - 1), a few integer operations per
 * number and no allocation, seeded per picker. Load balancing needs speed and spread, not
 * cryptographic quality (Envoy uses a per-worker xoshiro-style generator the same way).
 */
import type { LbConfig, Rng } from './types.js';

const TWO_POW_32 = 4294967296;
/** Any non-zero value: xorshift's only forbidden state is 0. */
const FALLBACK_SEED = 0x9e3779b9;

export class XorShift32 implements Rng {
  private state: number;

  constructor(seed: number) {
    // Scramble the seed (murmur3's fmix32): xorshift's first outputs from small seeds
    // such as 1, 2, 3 are small and alike.
    let h = seed | 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    this.state = h ^ (h >>> 16) || FALLBACK_SEED;
  }

  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x;
    return x >>> 0;
  }

  below(n: number): number {
    // Multiply-shift instead of `%`: exact while next() * n < 2^53, i.e. n <= 2^21.
    return Math.floor((this.next() * n) / TWO_POW_32);
  }

  unit(): number {
    return this.next() / TWO_POW_32;
  }

  hash64(): number {
    return this.next() * TWO_POW_32 + this.next();
  }
}

/** The PRNG for one build: `config.seed` when set (tests), otherwise a random seed. */
export function pickerRng(config: LbConfig): XorShift32 {
  return new XorShift32(config.seed ?? Math.floor(Math.random() * TWO_POW_32));
}

/** Capped, jittered exponential backoff (grpc-js backoff-timeout.ts style). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Backoff } from '../../src/core/backoff.js';

function take(b: Backoff, n: number): number[] {
  return Array.from({ length: n }, () => b.next());
}

describe('Backoff', { timeout: 5_000 }, () => {
  it('grows by 1.6 from 1 s up to the 30 s cap by default (random 0.5 = no jitter)', () => {
    const b = new Backoff({ random: () => 0.5 });
    assert.deepEqual(take(b, 11), [1000, 1600, 2560, 4096, 6554, 10486, 16777, 26844, 30000, 30000, 30000]);
  });

  it('moves each delay by up to ±20 % of its base, and never above the cap', () => {
    const low = new Backoff({ random: () => 0 });
    assert.deepEqual(take(low, 3), [800, 1280, 2048]);
    assert.deepEqual(take(low, 7).slice(-2), [24000, 24000]);
    const high = new Backoff({ random: () => 0.999999 });
    assert.deepEqual(take(high, 3), [1200, 1920, 3072]);
    assert.deepEqual(take(high, 7).slice(-2), [30000, 30000], 'jitter above the cap is cut to the cap');
  });

  it('starts over after reset()', () => {
    const b = new Backoff({ random: () => 0.5 });
    take(b, 5);
    b.reset();
    assert.deepEqual(take(b, 2), [1000, 1600]);
  });

  it('takes its initial delay, multiplier, jitter and cap as options', () => {
    const b = new Backoff({ initialMs: 10, multiplier: 2, jitter: 0, maxMs: 50, random: () => 0 });
    assert.deepEqual(take(b, 5), [10, 20, 40, 50, 50]);
    const capped = new Backoff({ initialMs: 100, maxMs: 40, random: () => 0.5 });
    assert.deepEqual(take(capped, 2), [40, 40]);
  });

  it('stays within [0.8, 1.2] of the base with the real random source', () => {
    const b = new Backoff();
    for (const base of [1000, 1600, 2560, 4096]) {
      const d = b.next();
      assert.ok(d >= base * 0.8 - 1 && d <= base * 1.2 + 1, `${d} for base ${base}`);
    }
  });

  it('replaces options out of range by the defaults, and never throws', () => {
    const b = new Backoff({ initialMs: -5, multiplier: 0.5, jitter: 3, maxMs: Number.NaN, random: () => Number.NaN });
    assert.deepEqual([b.initialMs, b.multiplier, b.jitter, b.maxMs], [1000, 1.6, 0.2, 30000]);
    assert.deepEqual(take(b, 2), [1000, 1600], 'a random source returning NaN counts as 0.5');
  });
});

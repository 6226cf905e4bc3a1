/** isoTime writes what Date.prototype.toISOString writes, without touching V8's date cache. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoTime } from '../../src/core/iso-time.js';

describe('isoTime', () => {
  it('matches toISOString across eras, leap days and the ends of its range', () => {
    const samples = [
      0, 1, -1, 999, 86_399_999, 951_782_400_000 /* 2000-02-29 */, 4_107_456_000_000 /* 2100-02-28 */,
      1_709_164_800_000 /* 2024-02-29 */, 1_798_761_599_999, -62_167_219_200_000, 253_402_300_799_999,
      -62_167_219_200_001, 253_402_300_800_000, 8.64e15, Date.now(),
    ];
    // And a pseudo-random walk over 400-year eras (fixed seed: the same cases every run).
    let x = 12345;
    for (let i = 0; i < 20_000; i++) {
      x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
      samples.push(Math.floor((x / 2 ** 31) * 2 * 253_402_300_799_999) - 253_402_300_799_999);
    }
    for (const ms of samples) assert.equal(isoTime(ms), new Date(ms).toISOString(), `ms ${ms}`);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatDuration, parseDuration } from '../../src/core/duration.js';

describe('parseDuration', () => {
  it('reads the forms Istio YAML uses', () => {
    const cases: [string, number][] = [
      ['7s', 7000], ['0.5s', 500], ['100ms', 100], ['1h', 3_600_000], ['5m', 300_000],
      ['1h30m', 5_400_000], ['1.5s', 1500], ['250us', 0.25], ['0', 0], ['0s', 0], ['+2s', 2000],
    ];
    for (const [text, ms] of cases) assert.deepEqual(parseDuration(text), { ok: true, ms }, text);
  });

  it('rejects what Go time.ParseDuration rejects, with a reason', () => {
    for (const text of ['', '7', 's', '1x', '1.2.3s', 'abc', '1 s', '1d']) {
      const r = parseDuration(text);
      assert.equal(r.ok, false, text);
    }
    assert.deepEqual(parseDuration('1d'), { ok: false, reason: 'unknown unit "d" in duration "1d" (use ns, us, ms, s, m or h)' });
    assert.deepEqual(parseDuration('-1s'), { ok: false, reason: 'negative duration "-1s" is not allowed' });
  });

  it('formats milliseconds back into a readable duration', () => {
    assert.equal(formatDuration(500), '500ms');
    assert.equal(formatDuration(1500), '1.5s');
    assert.equal(formatDuration(120_000), '2m');
    assert.equal(formatDuration(3_600_000), '1h');
  });
});

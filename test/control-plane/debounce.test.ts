/** Push debouncing with a fake clock: 100 ms of quiet, 10 s at most. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Debouncer, type Timers } from '../../src/control-plane/debounce.js';

function fakeTimers() {
  let now = 0;
  let pending: { at: number; fn: () => void } | undefined;
  const timers: Timers = {
    now: () => now,
    setTimer(fn, ms) {
      const t = { at: now + ms, fn };
      pending = t;
      return { cancel: () => (pending === t ? (pending = undefined) : undefined) };
    },
  };
  const advance = (ms: number): void => {
    const until = now + ms;
    while (pending !== undefined && pending.at <= until) {
      const t = pending;
      pending = undefined;
      now = t.at;
      t.fn();
    }
    now = until;
  };
  return { timers, advance };
}

describe('Debouncer', () => {
  it('fires once after a burst, 100 ms after the last change', () => {
    const { timers, advance } = fakeTimers();
    let fired = 0;
    const d = new Debouncer(() => fired++, { timers });
    d.trigger();
    advance(50);
    d.trigger();
    advance(99);
    assert.equal(fired, 0);
    advance(1);
    assert.equal(fired, 1);
    advance(1000);
    assert.equal(fired, 1);
  });

  it('fires at most 10 s after the first change of a steady stream', () => {
    const { timers, advance } = fakeTimers();
    let fired = 0;
    const d = new Debouncer(() => fired++, { timers });
    for (let t = 0; t < 10_000; t += 50) {
      d.trigger();
      advance(50);
    }
    assert.equal(fired, 1);
  });

  it('flushes a pending change at once, and close() drops it', () => {
    const { timers, advance } = fakeTimers();
    let fired = 0;
    const d = new Debouncer(() => fired++, { timers });
    d.trigger();
    d.flush();
    assert.equal(fired, 1);
    d.trigger();
    d.close();
    advance(1000);
    assert.equal(fired, 1);
  });
});

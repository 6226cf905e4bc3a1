/** A Clock whose time moves only when a test calls `advance`: no sleeping, no flakiness. */
import type { Clock, Timer } from '../../src/registry/clock.js';

interface Pending {
  readonly due: number;
  readonly seq: number;
  readonly fn: () => void;
}

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #pending = new Set<Pending>();

  constructor(start = 1_000_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): Timer {
    const entry = { due: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#pending.add(entry);
    return { cancel: () => this.#pending.delete(entry) };
  }

  /** Timers not yet fired nor cancelled. */
  get pendingTimers(): number {
    return this.#pending.size;
  }

  /** Moves time forward by `ms`, firing due timers in order, each at its own due time. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      const next = [...this.#pending].filter((t) => t.due <= target).sort((a, b) => a.due - b.due || a.seq - b.seq)[0];
      if (next === undefined) break;
      this.#pending.delete(next);
      this.#now = next.due;
      next.fn();
    }
    this.#now = target;
  }
}

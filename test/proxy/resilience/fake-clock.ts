/** A Clock that moves only when a test says so, running due timers in time order. */
import type { Clock, Ticker } from '../../../src/proxy/resilience/clock.js';

interface Timer {
  readonly intervalMs: number;
  readonly fn: () => void;
  next: number;
}

export class FakeClock implements Clock {
  #now = 0;
  readonly #timers = new Set<Timer>();

  now(): number {
    return this.#now;
  }

  every(intervalMs: number, fn: () => void): Ticker {
    const t: Timer = { intervalMs, fn, next: this.#now + intervalMs };
    this.#timers.add(t);
    return { stop: () => void this.#timers.delete(t) };
  }

  /** Timers running (not stopped). */
  get timers(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let due: Timer | undefined;
      for (const t of this.#timers) if (t.next <= end && (due === undefined || t.next < due.next)) due = t;
      if (due === undefined) break;
      this.#now = due.next;
      due.next += due.intervalMs;
      due.fn();
    }
    this.#now = end;
  }
}

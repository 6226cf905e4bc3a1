/**
 * Time for the registry, injected so tests advance it by hand instead of sleeping
 * (kubernetes-client `src/cache.ts` takes a `delayFn` for the same reason).
 */
import { performance } from 'node:perf_hooks';

export interface Timer {
  /** Stops the timer; harmless after it fired or was cancelled. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds; only differences matter. Never goes backwards. */
  now(): number;
  /** Calls `fn` once, `ms` from now. The timer must not keep the process alive. */
  setTimer(fn: () => void, ms: number): Timer;
}

/** Node's `setTimeout` caps delays at 2^31-1 ms; longer ones fire at once. */
const MAX_TIMER_DELAY_MS = 2_147_483_647;

/**
 * Monotonic milliseconds on the Unix epoch scale (`timeOrigin + performance.now()`): a
 * wall-clock step (NTP, suspend) neither expires registrations early nor keeps them late.
 * Timers are `unref()`'d: a pending expiry must not keep a process alive.
 */
export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimer(fn, ms) {
    const handle = setTimeout(fn, Math.min(Math.max(ms, 0), MAX_TIMER_DELAY_MS));
    handle.unref();
    return { cancel: () => clearTimeout(handle) };
  },
};

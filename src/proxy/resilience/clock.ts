/**
 * Time for the resilience state that lives in the background (outlier detection's
 * sweeps): a monotonic `now()` and repeating timers. Injected so that tests drive a
 * fake clock instead of sleeping (STYLE 22, kubernetes-client `delayFn`).
 */

/** A repeating timer; `stop()` may be called more than once. */
export interface Ticker {
  stop(): void;
}

export interface Clock {
  /** Milliseconds on a monotonic clock (never goes back). */
  now(): number;
  /**
   * Calls `fn` every `intervalMs` until stopped. The timer must not keep the process
   * alive (STYLE 16: background timers are unref'd).
   */
  every(intervalMs: number, fn: () => void): Ticker;
}

/** `performance.now()` and unref'd `setInterval`. */
export const SYSTEM_CLOCK: Clock = {
  now: () => performance.now(),
  every(intervalMs, fn) {
    const timer = setInterval(fn, intervalMs);
    timer.unref();
    return { stop: () => clearInterval(timer) };
  },
};

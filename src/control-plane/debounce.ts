/**
 * Debouncing of configuration and registry changes into pushes, as Istio does
 * (PILOT_DEBOUNCE_AFTER 100 ms of quiet, PILOT_DEBOUNCE_MAX 10 s): a burst of changes
 * becomes one push, and a steady stream of changes still pushes at least every `maxMs`.
 */
export interface Timers {
  now(): number;
  setTimer(fn: () => void, ms: number): { cancel(): void };
}

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

export const DEBOUNCE_QUIET_MS = 100;
export const DEBOUNCE_MAX_MS = 10_000;

export class Debouncer {
  readonly #fire: () => void;
  readonly #quietMs: number;
  readonly #maxMs: number;
  readonly #timers: Timers;
  #firstAt = -1;
  #timer: { cancel(): void } | undefined;

  constructor(fire: () => void, options: { quietMs?: number; maxMs?: number; timers?: Timers } = {}) {
    this.#fire = fire;
    this.#quietMs = options.quietMs ?? DEBOUNCE_QUIET_MS;
    this.#maxMs = options.maxMs ?? DEBOUNCE_MAX_MS;
    this.#timers = options.timers ?? realTimers;
  }

  /** Records a change; the push happens after `quietMs` without another, or at `maxMs`. */
  trigger(): void {
    const now = this.#timers.now();
    if (this.#firstAt < 0) this.#firstAt = now;
    this.#timer?.cancel();
    const wait = Math.max(0, Math.min(this.#quietMs, this.#firstAt + this.#maxMs - now));
    this.#timer = this.#timers.setTimer(() => this.#run(), wait);
  }

  /** A change is waiting for its push. */
  get pending(): boolean {
    return this.#firstAt >= 0;
  }

  /** Pushes now if a change is pending. */
  flush(): void {
    if (this.#firstAt >= 0) this.#run();
  }

  close(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#firstAt = -1;
  }

  #run(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#firstAt = -1;
    this.#fire();
  }
}

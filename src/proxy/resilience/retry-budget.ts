/**
 * The retry budget, a Trellis extension taken from Linkerd (and Finagle before it), which
 * Istio lacks: retries may add at most `ratio` of the requests sent over the last `ttl`,
 * plus `minRetriesPerSecond` so that clients with little traffic can still retry. When
 * every endpoint fails, retries are capped at that share instead of multiplying the load
 * by (1 + attempts) — the retry storm that takes a struggling service down.
 *
 * Settings come from the cluster's metadata `filter_metadata["trellis.io/retry-budget"]`
 * (`ratio`, `min_retries_per_second`, `ttl_seconds`), which the control plane fills from
 * its mesh settings; the defaults are Linkerd's (0.2, 10/s, 10 s).
 *
 * Counting is by one-second buckets in a ring of `ttl` seconds: a request costs an
 * increment, a retry a comparison and an increment; the clock is read per call
 * (`performance.now()` is cheap), never a timer.
 */
import { protoField } from '../config/wire.js';

export interface RetryBudgetSettings {
  readonly ratio: number;
  readonly minRetriesPerSecond: number;
  readonly ttlSeconds: number;
}

export const DEFAULT_RETRY_BUDGET: RetryBudgetSettings = { ratio: 0.2, minRetriesPerSecond: 10, ttlSeconds: 10 };

const MAX_TTL_SECONDS = 60;

export class RetryBudget {
  readonly settings: RetryBudgetSettings;
  readonly #requests: Float64Array;
  readonly #retries: Float64Array;
  readonly #slots: number;
  /** The second the newest bucket counts. */
  #second = -1;
  readonly #now: () => number;
  /** Retries refused since start (for /stats). */
  exhausted = 0;

  /** `now` returns milliseconds (tests pass a fake clock). */
  constructor(settings: RetryBudgetSettings = DEFAULT_RETRY_BUDGET, now: () => number = () => performance.now()) {
    this.settings = settings;
    this.#slots = Math.min(MAX_TTL_SECONDS, Math.max(1, Math.round(settings.ttlSeconds)));
    this.#requests = new Float64Array(this.#slots);
    this.#retries = new Float64Array(this.#slots);
    this.#now = now;
  }

  /** Counts a request (a first try). */
  request(): void {
    const slot = this.#advance();
    this.#requests[slot] = (this.#requests[slot] as number) + 1;
  }

  /** Takes a retry from the budget: false (and nothing taken) when it is spent. */
  tryRetry(): boolean {
    const slot = this.#advance();
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < this.#slots; i++) {
      requests += this.#requests[i] as number;
      retries += this.#retries[i] as number;
    }
    const allowed = this.settings.ratio * requests + this.settings.minRetriesPerSecond * this.#slots;
    if (retries + 1 > allowed) {
      this.exhausted++;
      return false;
    }
    this.#retries[slot] = (this.#retries[slot] as number) + 1;
    return true;
  }

  /** Moves the ring to the current second, clearing the buckets that fell out of the window. */
  #advance(): number {
    const second = Math.floor(this.#now() / 1000);
    if (second !== this.#second) {
      const gap = this.#second < 0 ? this.#slots : Math.min(this.#slots, second - this.#second);
      for (let i = 1; i <= gap; i++) {
        const slot = (((this.#second + i) % this.#slots) + this.#slots) % this.#slots;
        this.#requests[slot] = 0;
        this.#retries[slot] = 0;
      }
      this.#second = second;
    }
    return second % this.#slots;
  }
}

/** Reads the budget settings from a cluster's metadata Struct (either spelling of Value fields). */
export function retryBudgetSettings(struct: unknown): RetryBudgetSettings {
  const fields = (struct as { fields?: Record<string, unknown> } | null | undefined)?.fields;
  const num = (k: string, fallback: number): number => {
    const n = Number(protoField(fields?.[k], 'number_value', 'numberValue'));
    return Number.isFinite(n) && n >= 0 ? n : fallback;
  };
  return {
    ratio: num('ratio', DEFAULT_RETRY_BUDGET.ratio),
    minRetriesPerSecond: num('min_retries_per_second', DEFAULT_RETRY_BUDGET.minRetriesPerSecond),
    ttlSeconds: Math.max(1, num('ttl_seconds', DEFAULT_RETRY_BUDGET.ttlSeconds)),
  };
}

/**
 * Exponential backoff with jitter and a cap, for reconnecting to a server that went away
 * (the xDS client's ADS stream, and anything else that retries a connection). Follows
 * gRPC's connection backoff (grpc-js `src/backoff-timeout.ts`, gRPC
 * `doc/connection-backoff.md`): the base delay starts at `initialMs` and grows by
 * `multiplier` per attempt up to `maxMs`; each returned delay is the base delay moved
 * by a uniformly random ±`jitter` fraction, so that a fleet of clients that lost the same
 * server do not come back in lockstep.
 *
 * Two differences from grpc-js, both deliberate:
 * - the first delay is jittered too (grpc-js returns the initial delay exactly), because
 *   every proxy of a mesh loses its control plane at the same instant;
 * - the cap is hard: a jittered delay never exceeds `maxMs` (grpc-js can overshoot the
 *   cap by the jitter).
 *
 * This computes delays only; callers own their timers (STYLE 16: background timers are
 * `unref()`'d). Never throws: an option out of its range (a negative or non-finite delay,
 * a multiplier below 1, a jitter outside [0, 1]) is replaced by its default, so a bad
 * setting slows reconnection down to the defaults rather than hammering a server.
 */

export interface BackoffOptions {
  /** The first base delay, in ms. Default 1,000. */
  readonly initialMs?: number;
  /** Factor by which the base delay grows per attempt. Default 1.6. */
  readonly multiplier?: number;
  /** Fraction of the base delay by which a delay may move either way. Default 0.2 (±20 %). */
  readonly jitter?: number;
  /** The cap on every delay, in ms. Default 30,000. */
  readonly maxMs?: number;
  /** Uniform random numbers in [0, 1), injectable for tests. Default `Math.random`. */
  readonly random?: () => number;
}

export const DEFAULT_BACKOFF_INITIAL_MS = 1_000;
export const DEFAULT_BACKOFF_MULTIPLIER = 1.6;
export const DEFAULT_BACKOFF_JITTER = 0.2;
export const DEFAULT_BACKOFF_MAX_MS = 30_000;

export class Backoff {
  readonly initialMs: number;
  readonly multiplier: number;
  readonly jitter: number;
  readonly maxMs: number;
  readonly #random: () => number;
  /** The base (un-jittered) delay the next call to `next()` starts from. */
  #baseMs: number;

  constructor(options: BackoffOptions = {}) {
    this.initialMs = inRange(options.initialMs, 0, Infinity, DEFAULT_BACKOFF_INITIAL_MS);
    this.multiplier = inRange(options.multiplier, 1, Infinity, DEFAULT_BACKOFF_MULTIPLIER);
    this.jitter = inRange(options.jitter, 0, 1, DEFAULT_BACKOFF_JITTER);
    this.maxMs = inRange(options.maxMs, 0, Infinity, DEFAULT_BACKOFF_MAX_MS);
    this.#random = options.random ?? Math.random;
    this.#baseMs = Math.min(this.initialMs, this.maxMs);
  }

  /** The delay before the next attempt, in ms (an integer in [0, maxMs]); advances the sequence. */
  next(): number {
    const base = this.#baseMs;
    this.#baseMs = Math.min(base * this.multiplier, this.maxMs);
    const r = this.#random();
    const unit = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1) : 0.5;
    const jittered = base * (1 + this.jitter * (2 * unit - 1));
    return Math.round(Math.min(Math.max(jittered, 0), this.maxMs));
  }

  /** Starts the sequence over: the next delay is about `initialMs` again. */
  reset(): void {
    this.#baseMs = Math.min(this.initialMs, this.maxMs);
  }
}

/** `value` when it is a finite number in [min, max], else `fallback`. */
function inRange(value: number | undefined, min: number, max: number, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max ? value : fallback;
}

/**
 * Run-time registrations: a workload (`trellis run`, or any process through the admin
 * API) registers itself and keeps the registration alive with heartbeats. One that stops
 * heartbeating for the TTL is removed, and subscribers hear of it at that moment, not at
 * some later poll: one timer is kept for the earliest expiry. Like Istio's WorkloadEntry
 * auto-registration, without the Kubernetes object in between.
 */
import { TrellisError } from '../core/errors.js';
import { randomUUID } from 'node:crypto';
import { type Clock, type Timer, systemClock } from './clock.js';
import { workloadFromSpec } from './convert/workload-entry.js';
import type { RegistrySnapshot, Workload } from './model.js';
import { Publisher } from './publisher.js';
import { type FieldError, type RegistrationInput, validateRegistration } from './registration-input.js';
import type { Registry } from './registry.js';

/**
 * Long enough to survive a missed heartbeat or two at a few seconds' interval, short
 * enough that clients stop being sent to a dead workload within seconds.
 */
export const DEFAULT_REGISTRATION_TTL_MS = 10_000;

export interface RegistrationRegistryOptions {
  /** How long a registration lives after its last heartbeat. Default 10 s. */
  readonly ttlMs?: number;
  readonly clock?: Clock;
  /**
   * New registration ids. Default: random UUIDs, so a restarted control plane never gives
   * a new workload the id that a stale one still heartbeats with.
   */
  readonly newId?: () => string;
}

export type RegisterResult =
  | { readonly ok: true; readonly id: string; readonly ttlMs: number; readonly workloadId: string }
  | { readonly ok: false; readonly errors: readonly FieldError[] };

/** What the admin API lists. Times are `clock.now()` values (epoch ms with the system clock). */
export interface RegistrationInfo {
  readonly id: string;
  readonly workload: Workload;
  readonly registeredAt: number;
  readonly lastHeartbeat: number;
  readonly expiresAt: number;
}

interface Entry {
  readonly id: string;
  workload: Workload;
  readonly registeredAt: number;
  lastHeartbeat: number;
}

export class RegistrationRegistry implements Registry {
  readonly #ttlMs: number;
  readonly #clock: Clock;
  readonly #newId: () => string;
  readonly #publisher = new Publisher();
  readonly #entries = new Map<string, Entry>();
  /** The one expiry timer, due at or before the earliest expiry. */
  #timer: { readonly deadline: number; readonly handle: Timer } | undefined;
  #closed = false;

  /** Throws TRELLIS_REGISTRY_INVALID_OPTION for a TTL that is not a positive number of milliseconds (a setup bug). */
  constructor(options: RegistrationRegistryOptions = {}) {
    const ttlMs = options.ttlMs ?? DEFAULT_REGISTRATION_TTL_MS;
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new TrellisError('TRELLIS_REGISTRY_INVALID_OPTION', `registration TTL must be a positive number of milliseconds, got ${ttlMs}`);
    this.#ttlMs = ttlMs;
    this.#clock = options.clock ?? systemClock;
    this.#newId = options.newId ?? randomUUID;
  }

  snapshot(): RegistrySnapshot {
    return this.#publisher.snapshot();
  }

  subscribe(onChange: () => void): () => void {
    return this.#publisher.subscribe(onChange);
  }

  /** Validates and adds a workload; its TTL starts now. Bad input gives field errors. */
  register(input: RegistrationInput): RegisterResult {
    const checked = validateRegistration(input);
    if (!checked.ok) return checked;
    const valid = checked.value;
    let id = this.#newId();
    while (this.#entries.has(id)) id = this.#newId();
    const identity = { id: `registration/${id}`, name: valid.name ?? id, namespace: valid.namespace, source: 'registration' } as const;
    const workload = { ...workloadFromSpec(valid, identity), healthy: valid.healthy ?? true };
    const now = this.#clock.now();
    this.#entries.set(id, { id, workload, registeredAt: now, lastHeartbeat: now });
    this.#schedule();
    this.#publish();
    return { ok: true, id, ttlMs: this.#ttlMs, workloadId: workload.id };
  }

  /**
   * Renews registration `id`; `healthy`, when given, updates the workload's readiness
   * (a change makes a new snapshot). False when `id` is unknown or already expired: the
   * workload must register again.
   */
  heartbeat(id: string, status: { readonly healthy?: boolean } = {}): boolean {
    const entry = this.#entries.get(id);
    if (entry === undefined) return false;
    const now = this.#clock.now();
    if (now >= entry.lastHeartbeat + this.#ttlMs) {
      // Expired, and the timer has not run yet (it may be late): expire it now.
      this.#expire();
      return false;
    }
    entry.lastHeartbeat = now;
    // The timer stays as it is: due no later than the earliest expiry, it finds nothing
    // to expire and sets itself again, so heartbeats cost no timer churn.
    if (status.healthy !== undefined && status.healthy !== entry.workload.healthy) {
      entry.workload = { ...entry.workload, healthy: status.healthy };
      this.#publish();
    }
    return true;
  }

  /** Removes registration `id` at once. False when it is unknown. */
  deregister(id: string): boolean {
    if (!this.#entries.delete(id)) return false;
    this.#schedule();
    this.#publish();
    return true;
  }

  /** Every live registration, by id. */
  list(): readonly RegistrationInfo[] {
    return [...this.#entries.values()]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((e) => ({ id: e.id, workload: e.workload, registeredAt: e.registeredAt, lastHeartbeat: e.lastHeartbeat, expiresAt: e.lastHeartbeat + this.#ttlMs }));
  }

  /** Cancels the expiry timer. Called by the owner at shutdown; expiry stops afterwards. */
  close(): void {
    this.#closed = true;
    this.#timer?.handle.cancel();
    this.#timer = undefined;
  }

  /** Removes every registration whose TTL has passed; notifies once if any was. */
  #expire(): void {
    const now = this.#clock.now();
    let removed = false;
    for (const [id, entry] of this.#entries) {
      if (now >= entry.lastHeartbeat + this.#ttlMs) removed = this.#entries.delete(id) || removed;
    }
    this.#schedule();
    if (removed) this.#publish();
  }

  /** Keeps one timer, due at or before the earliest expiry. */
  #schedule(): void {
    if (this.#closed) return;
    let earliest = Infinity;
    for (const entry of this.#entries.values()) earliest = Math.min(earliest, entry.lastHeartbeat + this.#ttlMs);
    if (this.#timer !== undefined) {
      if (earliest !== Infinity && this.#timer.deadline <= earliest) return;
      this.#timer.handle.cancel();
      this.#timer = undefined;
    }
    if (earliest === Infinity) return;
    const handle = this.#clock.setTimer(() => this.#onTimer(), earliest - this.#clock.now());
    this.#timer = { deadline: earliest, handle };
  }

  #onTimer(): void {
    this.#timer = undefined;
    // Also correct when a timer fires early (Node may round a delay down by a
    // millisecond): nothing is due yet, and #expire sets the timer again.
    this.#expire();
  }

  #publish(): void {
    this.#publisher.publish([], [...this.#entries.values()].map((e) => e.workload));
  }
}

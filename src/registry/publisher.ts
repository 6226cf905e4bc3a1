/**
 * The snapshot-and-subscribers bookkeeping every registry source shares: it holds the
 * current snapshot, makes a new one (version + 1) only when the content changed, and
 * calls the subscribers once per change.
 */
import type { RegistrySnapshot, Service, Workload } from './model.js';
import type { Registry } from './registry.js';
import { normalize, sameContent, snapshotOf } from './snapshot.js';

export class Publisher implements Registry {
  #current: RegistrySnapshot;
  /** One entry per subscription (the same function may subscribe twice). */
  readonly #subscribers = new Set<{ readonly onChange: () => void }>();

  constructor(services: readonly Service[] = [], workloads: readonly Workload[] = []) {
    this.#current = snapshotOf(0, normalize(services, workloads));
  }

  snapshot(): RegistrySnapshot {
    return this.#current;
  }

  subscribe(onChange: () => void): () => void {
    const entry = { onChange };
    this.#subscribers.add(entry);
    return () => {
      this.#subscribers.delete(entry);
    };
  }

  /**
   * Replaces the content. Returns false (and notifies nobody) when it equals the current
   * content; otherwise installs a new snapshot, notifies every subscriber, and returns true.
   */
  publish(services: readonly Service[], workloads: readonly Workload[]): boolean {
    const next = normalize(services, workloads);
    if (sameContent(next, this.#current)) return false;
    this.#current = snapshotOf(this.#current.version + 1, next);
    this.#notify();
    return true;
  }

  #notify(): void {
    let failure: { error: unknown } | undefined;
    // A copy: a callback may unsubscribe (or subscribe) while we iterate.
    for (const entry of [...this.#subscribers]) {
      if (!this.#subscribers.has(entry)) continue;
      try {
        entry.onChange();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure !== undefined) throw failure.error;
  }
}

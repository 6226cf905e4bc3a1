/**
 * The resilience state of each cluster, by cluster name: its outlier detector, circuit
 * breaker and retry budget. Clusters are rebuilt whenever their CDS or EDS resource
 * changes, but these count what happened and what is in flight, so they outlive the
 * rebuilds — like Envoy's per-cluster detector and resource manager, and unlike a
 * picker — and take the new settings. They go away with the cluster (`retain()`), which
 * stops the detector's timer.
 */
import { type BreakerThresholds, CircuitBreaker } from './circuit-breaker.js';
import { type Clock, SYSTEM_CLOCK } from './clock.js';
import { OutlierDetector } from './outlier-detection.js';
import type { OutlierSettings } from './outlier-settings.js';
import { RetryBudget, type RetryBudgetSettings } from './retry-budget.js';

/** What a cluster's configuration says, converted (see `config/clusters.ts`). */
export interface ClusterResilienceSettings {
  /** Null: the cluster has no `outlier_detection`. */
  readonly outlier: OutlierSettings | null;
  readonly thresholds: BreakerThresholds;
  readonly retryBudget: RetryBudgetSettings;
}

export interface ClusterResilience {
  readonly outlier: OutlierDetector | null;
  readonly breaker: CircuitBreaker;
  readonly retryBudget: RetryBudget;
}

interface Entry {
  outlier: OutlierDetector | null;
  readonly breaker: CircuitBreaker;
  retryBudget: RetryBudget;
}

function sameBudget(a: RetryBudgetSettings, b: RetryBudgetSettings): boolean {
  return a.ratio === b.ratio && a.minRetriesPerSecond === b.minRetriesPerSecond && a.ttlSeconds === b.ttlSeconds;
}

export class ResilienceRegistry {
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #clusters = new Map<string, Entry>();

  /** `clock` and `random` reach every detector and budget (tests pass fakes). */
  constructor(clock: Clock = SYSTEM_CLOCK, random: () => number = Math.random) {
    this.#clock = clock;
    this.#random = random;
  }

  /**
   * The state of cluster `name` with `settings` applied: the same objects as for the
   * previous build of that name, except a detector created or closed as outlier
   * detection appears or goes, and a new budget when the budget's settings changed.
   */
  forCluster(name: string, settings: ClusterResilienceSettings): ClusterResilience {
    let e = this.#clusters.get(name);
    if (e === undefined) {
      e = { outlier: null, breaker: new CircuitBreaker(name, settings.thresholds), retryBudget: this.#budget(settings.retryBudget) };
      this.#clusters.set(name, e);
    } else {
      e.breaker.configure(settings.thresholds);
      if (!sameBudget(e.retryBudget.settings, settings.retryBudget)) e.retryBudget = this.#budget(settings.retryBudget);
    }
    if (settings.outlier === null) {
      e.outlier?.close();
      e.outlier = null;
    } else if (e.outlier === null) {
      e.outlier = new OutlierDetector(name, settings.outlier, this.#clock, this.#random);
    } else {
      e.outlier.configure(settings.outlier);
    }
    return e;
  }

  get(name: string): ClusterResilience | undefined {
    return this.#clusters.get(name);
  }

  /** Forgets the clusters not in `names` (they were removed) and stops their detectors. */
  retain(names: ReadonlySet<string>): void {
    for (const [name, e] of this.#clusters) {
      if (names.has(name)) continue;
      e.outlier?.close();
      this.#clusters.delete(name);
    }
  }

  close(): void {
    this.retain(new Set());
  }

  #budget(settings: RetryBudgetSettings): RetryBudget {
    const clock = this.#clock;
    return new RetryBudget(settings, () => clock.now());
  }
}

/**
 * Trellis's rate-based retry budget, a mesh-wide setting (Linkerd's retry budget): over a
 * sliding window of `ttlMs`, retries may add at most `ratio` of the requests sent, plus
 * `minRetriesPerSecond` so that a quiet client can still retry. Envoy has no such
 * setting (its `circuit_breakers.thresholds[].retry_budget`, from the DestinationRule
 * `retryBudget`, limits *concurrent* retries instead), so it travels as cluster metadata
 * under `trellis.io/retry-budget`, which Envoy ignores and the Trellis proxy reads.
 */
import type { Metadata } from '../../xds/generated/envoy/config/core/v3/Metadata.js';

export interface RetryBudget {
  /** Retries allowed as a share of requests (0.2: at most 20% extra load). */
  readonly ratio: number;
  /** Retries always allowed per second, whatever the request rate. */
  readonly minRetriesPerSecond: number;
  /** The window over which requests and retries are counted. */
  readonly ttlMs: number;
}

/** Linkerd's defaults. */
export const DEFAULT_RETRY_BUDGET: RetryBudget = { ratio: 0.2, minRetriesPerSecond: 10, ttlMs: 10_000 };

/** The `filter_metadata` key the budget is published under. */
export const RETRY_BUDGET_METADATA_KEY = 'trellis.io/retry-budget';

/** Cluster metadata carrying the budget as a `google.protobuf.Struct`. */
export function retryBudgetMetadata(budget: RetryBudget): Metadata {
  return {
    filter_metadata: {
      [RETRY_BUDGET_METADATA_KEY]: {
        fields: {
          ratio: { numberValue: budget.ratio },
          min_retries_per_second: { numberValue: budget.minRetriesPerSecond },
          ttl_seconds: { numberValue: budget.ttlMs / 1000 },
        },
      },
    },
  };
}

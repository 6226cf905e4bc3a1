/** The compiled retry policy (Envoy's retry_on semantics and backoff) and the retry budget. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RetryBudget } from '../../../src/proxy/resilience/retry-budget.js';
import { backoffMs, compileRetryPolicy, isRetriable, type RetryPolicy } from '../../../src/proxy/resilience/retry-policy.js';
import type { RetryPolicy__Output } from '../../../src/xds/generated/envoy/config/route/v3/RetryPolicy.js';

function policy(fields: Partial<Record<string, unknown>>): RetryPolicy {
  const p = compileRetryPolicy({ retry_on: '', num_retries: { value: 2 }, retriable_status_codes: [], retry_host_predicate: [], host_selection_retry_max_attempts: '0', per_try_timeout: null, retry_back_off: null, ...fields } as unknown as RetryPolicy__Output);
  assert.ok(p !== null);
  return p;
}

const response = (status: number, grpcStatus?: number) => ({ kind: 'response', status, grpcStatus }) as const;

describe('retry policy', () => {
  it('Istio\'s default: connect failures, refused streams, gRPC unavailable/cancelled, listed codes only', () => {
    const p = policy({ retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes', retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts' }], host_selection_retry_max_attempts: '5' });
    assert.equal(isRetriable(p, { kind: 'connect-failure' }), true);
    assert.equal(isRetriable(p, { kind: 'refused-stream' }), true);
    assert.equal(isRetriable(p, response(200, 14)), true);
    assert.equal(isRetriable(p, response(200, 1)), true);
    assert.equal(isRetriable(p, response(200, 13)), false);
    assert.equal(isRetriable(p, response(503)), false, 'no codes listed: a 503 is not retried');
    assert.equal(isRetriable(p, { kind: 'reset', sent: true }), false);
    assert.equal(isRetriable(p, { kind: 'per-try-timeout' }), false);
    assert.equal(p.otherHosts, true);
    assert.equal(p.hostSelectionAttempts, 5);
    assert.equal(p.numRetries, 2);
  });

  it('5xx covers every 5xx and no response at all; gateway-error only 502-504', () => {
    const fivexx = policy({ retry_on: '5xx' });
    for (const s of [500, 501, 503, 599]) assert.equal(isRetriable(fivexx, response(s)), true, String(s));
    assert.equal(isRetriable(fivexx, response(404)), false);
    for (const o of [{ kind: 'connect-failure' }, { kind: 'reset', sent: true }, { kind: 'per-try-timeout' }, { kind: 'refused-stream' }] as const) assert.equal(isRetriable(fivexx, o), true, o.kind);
    const gw = policy({ retry_on: 'gateway-error' });
    assert.deepEqual([500, 502, 503, 504].map((s) => isRetriable(gw, response(s))), [false, true, true, true]);
    assert.equal(isRetriable(gw, { kind: 'per-try-timeout' }), true);
  });

  it('retriable-4xx is 409; retriable-status-codes uses the list; reset-before-request only before the request went out', () => {
    assert.equal(isRetriable(policy({ retry_on: 'retriable-4xx' }), response(409)), true);
    assert.equal(isRetriable(policy({ retry_on: 'retriable-4xx' }), response(429)), false);
    const codes = policy({ retry_on: 'retriable-status-codes', retriable_status_codes: [503, 429] });
    assert.equal(isRetriable(codes, response(429)), true);
    assert.equal(isRetriable(codes, response(500)), false);
    const rbr = policy({ retry_on: 'reset-before-request' });
    assert.equal(isRetriable(rbr, { kind: 'reset', sent: false }), true);
    assert.equal(isRetriable(rbr, { kind: 'reset', sent: true }), false);
  });

  it('no policy for attempts 0 or nothing to retry on', () => {
    assert.equal(compileRetryPolicy({ retry_on: '5xx', num_retries: { value: 0 }, retriable_status_codes: [], retry_host_predicate: [] } as unknown as RetryPolicy__Output), null);
    assert.equal(compileRetryPolicy({ retry_on: '', num_retries: { value: 3 }, retriable_status_codes: [], retry_host_predicate: [] } as unknown as RetryPolicy__Output), null);
  });

  it('backs off with full jitter, (2^n - 1) x 25 ms, capped at 10 x base', () => {
    const p = policy({ retry_on: '5xx' });
    assert.equal(backoffMs(p, 1, 0.999), 24);
    assert.equal(backoffMs(p, 2, 0.999), 74);
    assert.equal(backoffMs(p, 10, 0.999), 249);
    assert.equal(backoffMs(p, 3, 0), 0);
  });
});

describe('retry budget', () => {
  it('allows ratio x requests + min/s x ttl retries in the window, then refuses', () => {
    let now = 0;
    const b = new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 1, ttlSeconds: 10 }, () => now);
    for (let i = 0; i < 100; i++) b.request();
    let allowed = 0;
    while (b.tryRetry()) allowed++;
    assert.equal(allowed, 0.2 * 100 + 1 * 10);
    assert.equal(b.exhausted, 1);
    // The window moves: after ttl seconds the old requests and retries are forgotten.
    now = 10_500;
    let fresh = 0;
    while (b.tryRetry()) fresh++;
    assert.equal(fresh, 10, 'only the reserve left');
  });

  it('keeps the ratio under a steady failing load: retries stay near 20% of requests', () => {
    let now = 0;
    const b = new RetryBudget({ ratio: 0.2, minRetriesPerSecond: 10, ttlSeconds: 10 }, () => now);
    let requests = 0;
    let retries = 0;
    // 1,000 requests per second for 60 s, each wanting 2 retries (every try fails).
    for (let ms = 0; ms < 60_000; ms++) {
      now = ms;
      b.request();
      requests++;
      for (let k = 0; k < 2; k++) if (b.tryRetry()) retries++;
    }
    const share = retries / requests;
    assert.ok(share > 0.2 && share < 0.22, `retries were ${(share * 100).toFixed(1)}% of requests`);
  });
});

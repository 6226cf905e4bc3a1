/** Circuit breakers: Envoy's thresholds, limits and overflow counters. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CircuitBreaker, ENVOY_DEFAULT_THRESHOLDS, thresholdsOf } from '../../../src/proxy/resilience/circuit-breaker.js';
import type { CircuitBreakers__Output } from '../../../src/xds/generated/envoy/config/cluster/v3/CircuitBreakers.js';

const cb = (o: object) => o as unknown as CircuitBreakers__Output;
const MAX_UINT32 = 4_294_967_295;

describe('circuit breaker thresholds', () => {
  it('takes the DEFAULT priority entry, Envoy\'s defaults for what is unset or absent', () => {
    assert.deepEqual(thresholdsOf(null), ENVOY_DEFAULT_THRESHOLDS);
    assert.deepEqual(ENVOY_DEFAULT_THRESHOLDS, { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, retryBudget: null, trackRemaining: false });
    const t = thresholdsOf(cb({ thresholds: [
      { priority: 'HIGH', max_connections: { value: 1 } },
      { priority: 'DEFAULT', max_connections: { value: 7 }, max_requests: { value: MAX_UINT32 }, track_remaining: true },
    ] }));
    assert.deepEqual(t, { maxConnections: 7, maxPendingRequests: 1024, maxRequests: MAX_UINT32, maxRetries: 3, retryBudget: null, trackRemaining: true });
    assert.deepEqual(thresholdsOf(cb({ thresholds: [{ priority: 'DEFAULT', retry_budget: {} }] })).retryBudget, { budgetPercent: 20, minRetryConcurrency: 3 }, 'Envoy\'s budget defaults');
    assert.deepEqual(thresholdsOf(cb({ thresholds: [{ priority: 'DEFAULT', retry_budget: { budget_percent: { value: 50 }, min_retry_concurrency: { value: 1 } } }] })).retryBudget, { budgetPercent: 50, minRetryConcurrency: 1 });
  });
});

describe('circuit breaker', () => {
  it('admits requests up to max_requests, refuses the next and counts it as Envoy does (upstream_rq_pending_overflow)', () => {
    const b = new CircuitBreaker('c', { ...ENVOY_DEFAULT_THRESHOLDS, maxRequests: 2 });
    assert.equal(b.tryRequest(), true);
    assert.equal(b.tryRequest(), true);
    assert.equal(b.tryRequest(), false);
    assert.equal(b.requests, 2);
    assert.equal(b.pendingOverflow, 1);
    b.endRequest();
    assert.equal(b.tryRequest(), true, 'room again once one ended');
  });

  it('limits pending requests and connections, each with its overflow counter', () => {
    const b = new CircuitBreaker('c', { ...ENVOY_DEFAULT_THRESHOLDS, maxPendingRequests: 1, maxConnections: 2 });
    assert.deepEqual([b.tryPending(), b.tryPending()], [true, false]);
    assert.equal(b.pendingOverflow, 1);
    b.endPending();
    assert.equal(b.pending, 0);
    assert.deepEqual([b.tryConnect(), b.tryConnect(), b.tryConnect()], [true, true, false]);
    assert.equal(b.connectionOverflow, 1);
    b.connectionClosed();
    assert.equal(b.connections, 1);
    assert.equal(b.tryConnect(), true);
  });

  it('limits retries in flight by max_retries (upstream_rq_retry_overflow)', () => {
    const b = new CircuitBreaker('c', { ...ENVOY_DEFAULT_THRESHOLDS, maxRetries: 1 });
    assert.deepEqual([b.tryRetry(), b.tryRetry()], [true, false]);
    assert.equal(b.retryOverflow, 1);
    b.endRetry();
    assert.equal(b.tryRetry(), true);
  });

  it('with a retry budget, allows budget_percent of the requests in flight and pending, at least min_retry_concurrency', () => {
    const b = new CircuitBreaker('c', { ...ENVOY_DEFAULT_THRESHOLDS, maxRetries: 100, retryBudget: { budgetPercent: 20, minRetryConcurrency: 2 } });
    assert.equal(b.maxRetriesNow(), 2, 'nothing in flight: the minimum');
    for (let i = 0; i < 20; i++) b.tryRequest();
    for (let i = 0; i < 5; i++) b.tryPending();
    assert.equal(b.maxRetriesNow(), 5, '20% of 25');
    let admitted = 0;
    while (b.tryRetry()) admitted++;
    assert.equal(admitted, 5, 'the budget replaces max_retries');
    assert.equal(b.retryOverflow, 1);
  });

  it('takes new limits without losing what is in flight; ends never go below zero', () => {
    const b = new CircuitBreaker('c', { ...ENVOY_DEFAULT_THRESHOLDS, maxRequests: 1 });
    assert.equal(b.tryRequest(), true);
    b.configure({ ...ENVOY_DEFAULT_THRESHOLDS, maxRequests: 2 });
    assert.equal(b.requests, 1);
    assert.deepEqual([b.tryRequest(), b.tryRequest()], [true, false]);
    for (let i = 0; i < 5; i++) b.endRequest();
    b.endPending();
    b.endRetry();
    b.connectionClosed();
    assert.deepEqual([b.requests, b.pending, b.retries, b.connections], [0, 0, 0, 0]);
  });
});

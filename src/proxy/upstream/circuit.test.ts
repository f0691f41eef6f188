// Circuit breakers: limits per resource, Envoy's overflow stat names, open/remaining gauges, retry budgets, and
// separate counters per routing priority.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitBreaker, circuitBreakers } from './circuit.ts';
import { compileCluster } from './compile.ts';
import { StatsCounter } from './stats.ts';

const limits = (maxConnections: number, maxPendingRequests: number, maxRequests: number, maxRetries: number) => ({ maxConnections, maxPendingRequests, maxRequests, maxRetries, trackRemaining: false });

test('each resource stops at its limit and counts the overflow under Envoy\'s name', () => {
  const stats = new StatsCounter();
  const cb = new CircuitBreaker(limits(2, 1, 3, 1), { stats: stats.sink });
  assert.ok(cb.tryAcquire('connections'));
  assert.ok(cb.tryAcquire('connections'));
  assert.equal(cb.tryAcquire('connections'), false);
  assert.equal(stats.get('upstream_cx_overflow'), 1);
  assert.equal(stats.get('circuit_breakers.default.cx_open'), 1);
  cb.release('connections');
  assert.equal(stats.get('circuit_breakers.default.cx_open'), 0);
  assert.ok(cb.tryAcquire('connections'));
  assert.equal(cb.count('connections'), 2);

  assert.ok(cb.tryAcquire('pendingRequests'));
  assert.equal(cb.tryAcquire('pendingRequests'), false);
  assert.equal(stats.get('upstream_rq_pending_overflow'), 1);
  assert.equal(stats.get('circuit_breakers.default.rq_pending_open'), 1);

  for (let i = 0; i < 3; i++) assert.ok(cb.tryAcquire('requests'));
  assert.equal(cb.tryAcquire('requests'), false);
  // Envoy's connection pool counts max_requests overflow as a pending overflow.
  assert.equal(stats.get('upstream_rq_pending_overflow'), 2);
  assert.equal(stats.get('circuit_breakers.default.rq_open'), 1);

  assert.ok(cb.tryAcquire('retries'));
  assert.equal(cb.tryAcquire('retries'), false);
  assert.equal(cb.tryAcquire('retries'), false);
  assert.equal(stats.get('upstream_rq_retry_overflow'), 2);
  assert.equal(stats.get('circuit_breakers.default.rq_retry_open'), 1);
  cb.release('retries', 5);
  assert.equal(cb.count('retries'), 0, 'never below zero');
  assert.equal(stats.get('circuit_breakers.default.rq_retry_open'), 0);
});

test('a zero limit refuses everything; track_remaining publishes what is left', () => {
  const stats = new StatsCounter();
  const cb = new CircuitBreaker({ ...limits(0, 2, 2, 2), trackRemaining: true }, { stats: stats.sink, priority: 'high' });
  assert.equal(stats.get('circuit_breakers.high.cx_open'), 1, 'open from the start');
  assert.equal(cb.tryAcquire('connections'), false);
  assert.equal(stats.get('circuit_breakers.high.remaining_pending'), 2);
  cb.tryAcquire('pendingRequests');
  assert.equal(stats.get('circuit_breakers.high.remaining_pending'), 1);
  cb.release('pendingRequests');
  assert.equal(stats.get('circuit_breakers.high.remaining_pending'), 2);
  assert.equal(stats.get('circuit_breakers.high.remaining_cx'), 0);
});

test('retry budget: budget_percent of active + pending requests, at least min_retry_concurrency', () => {
  const cb = new CircuitBreaker({ ...limits(1024, 1024, 1024, 99), retryBudget: { budgetPercent: 20, minRetryConcurrency: 3 } });
  assert.equal(cb.max('retries'), 3, 'the floor, not max_retries');
  for (let i = 0; i < 20; i++) cb.tryAcquire('requests');
  for (let i = 0; i < 10; i++) cb.tryAcquire('pendingRequests');
  assert.equal(cb.max('retries'), 6);
  for (let i = 0; i < 6; i++) assert.ok(cb.tryAcquire('retries'));
  assert.equal(cb.tryAcquire('retries'), false);
});

test('per cluster: one breaker per routing priority with its own counters, from the compiled thresholds', () => {
  const spec = compileCluster({ name: 'c', circuitBreakers: { thresholds: [{ maxConnections: { value: 1 } }, { priority: 'HIGH', maxConnections: { value: 2 } }] } });
  const stats = new StatsCounter();
  const cbs = circuitBreakers(spec, stats.sink);
  assert.ok(cbs.default.tryAcquire('connections'));
  assert.equal(cbs.default.tryAcquire('connections'), false);
  assert.ok(cbs.high.tryAcquire('connections'));
  assert.ok(cbs.high.tryAcquire('connections'));
  assert.equal(cbs.high.tryAcquire('connections'), false);
  assert.equal(stats.get('upstream_cx_overflow'), 2);
  // Envoy's defaults where nothing is configured.
  const plain = circuitBreakers(compileCluster({ name: 'p' }));
  assert.equal(plain.default.max('connections'), 1024);
  assert.equal(plain.default.max('pendingRequests'), 1024);
  assert.equal(plain.default.max('requests'), 1024);
  assert.equal(plain.default.max('retries'), 3);
});

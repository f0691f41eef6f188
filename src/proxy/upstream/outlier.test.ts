// Outlier detection on a fake clock: consecutive 5xx ejection, ejection time growing with repeated ejections
// and decaying, max_ejection_percent, un-ejection at the interval sweeps, connect failures as 5xx (or as local
// origin failures with the split), success-rate ejection, return by a passing health check.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Json } from '../resources/values.ts';
import { compileCluster, type Endpoint } from './compile.ts';
import { HostSet, type Host } from './hosts.ts';
import { OutlierDetector, type HealthCheckEvents } from './outlier.ts';
import { StatsCounter } from './stats.ts';
import { ManualTimers } from './timers.ts';

const ep = (i: number): Endpoint => ({ address: `10.0.0.${i}`, port: 80, weight: 1, healthStatus: 'UNKNOWN' });

function setup(hosts: number, outlierDetection: Json, extra: { healthChecks?: HealthCheckEvents } = {}) {
  const spec = compileCluster({ name: 'c', type: 'EDS', edsClusterConfig: { edsConfig: { ads: {} } }, outlierDetection });
  const timers = new ManualTimers();
  const stats = new StatsCounter();
  const set = new HostSet(spec, { timers, random: () => 0, stats: stats.sink });
  set.setEndpoints(Array.from({ length: hosts }, (_, i) => ep(i + 1)));
  const od = new OutlierDetector(set, spec.outlierDetection!, { timers, random: () => 0, stats: stats.sink, ...extra });
  od.start();
  const host = (i: number) => set.hosts[i - 1] as Host;
  return { set, od, timers, stats, host };
}

const seconds = (s: number) => ({ seconds: String(s) });
const fail = (od: OutlierDetector, h: Host, n: number, status = 500) => { for (let i = 0; i < n; i++) od.reportHttpStatus(h, status); };

test('consecutive 5xx: ejected the moment the count is reached; a success in between resets it', () => {
  const { set, od, stats, host } = setup(4, { consecutive_5xx: { value: 3 }, maxEjectionPercent: { value: 50 } });
  fail(od, host(1), 2);
  od.reportHttpStatus(host(1), 200);
  fail(od, host(1), 2);
  assert.equal(host(1).ejected, false);
  od.reportHttpStatus(host(1), 503);
  assert.equal(host(1).ejected, true);
  assert.equal(host(1).health, 'unhealthy');
  assert.ok(!Array.from({ length: 6 }, () => set.pick()).includes(host(1)), 'not load balanced while ejected');
  assert.equal(stats.get('outlier_detection.ejections_active'), 1);
  assert.equal(stats.get('outlier_detection.ejections_enforced_total'), 1);
  assert.equal(stats.get('outlier_detection.ejections_enforced_consecutive_5xx'), 1);
  assert.equal(stats.get('outlier_detection.ejections_detected_consecutive_5xx'), 1);
  assert.equal(stats.get('outlier_detection.ejections_total'), 1);
  assert.equal(stats.get('outlier_detection.ejections_consecutive_5xx'), 1);
  // 4xx are not server errors.
  fail(od, host(2), 10, 404);
  assert.equal(host(2).ejected, false);
  od.stop();
});

test('un-ejection at the interval sweeps; the ejection time grows with repeated ejections and decays again', () => {
  const { od, timers, stats, host } = setup(4, { consecutive_5xx: { value: 2 }, interval: seconds(10), baseEjectionTime: seconds(30), maxEjectionPercent: { value: 50 } });
  const h = host(1);
  fail(od, h, 2);
  assert.equal(od.ejectionTimeMs(h), 30_000);
  timers.advance(20_000);
  assert.equal(h.ejected, true, 'still out at 20 s');
  timers.advance(10_000);
  assert.equal(h.ejected, false, 'back at the sweep at 30 s');
  assert.equal(stats.get('outlier_detection.ejections_active'), 0);

  // Ejected again at 31 s: twice the base time, so out until the first sweep at or after 91 s.
  timers.advance(1_000);
  fail(od, h, 2);
  assert.equal(od.ejections(h), 2);
  assert.equal(od.ejectionTimeMs(h), 60_000);
  timers.advance(59_000); // 90 s
  assert.equal(h.ejected, true);
  timers.advance(10_000); // 100 s
  assert.equal(h.ejected, false);

  // Behaving for two intervals works the backoff off: the next ejection is back at the base time.
  timers.advance(20_000); // sweeps at 110 s and 120 s
  fail(od, h, 2);
  assert.equal(od.ejectionTimeMs(h), 30_000);
  // Capped at max_ejection_time (300 s by default).
  od.stop();
});

test('max_ejection_percent: (ejected + 1) / hosts may not exceed it; Envoy ejects none of 4 at the default 10 % unless always_eject_one_host', () => {
  const half = setup(4, { consecutive_5xx: { value: 1 }, maxEjectionPercent: { value: 50 } });
  for (const i of [1, 2, 3]) fail(half.od, half.host(i), 1);
  assert.deepEqual([1, 2, 3, 4].map((i) => half.host(i).ejected), [true, true, false, false]);
  assert.equal(half.stats.get('outlier_detection.ejections_overflow'), 1);
  assert.equal(half.stats.get('outlier_detection.ejections_active'), 2);

  const byDefault = setup(4, { consecutive_5xx: { value: 1 } });
  fail(byDefault.od, byDefault.host(1), 1);
  assert.equal(byDefault.host(1).ejected, false);
  assert.equal(byDefault.stats.get('outlier_detection.ejections_overflow'), 1);

  const one = setup(4, { consecutive_5xx: { value: 1 }, alwaysEjectOneHost: { value: true } });
  fail(one.od, one.host(1), 1);
  fail(one.od, one.host(2), 1);
  assert.deepEqual([1, 2].map((i) => one.host(i).ejected), [true, false]);

  // Ten hosts at 10 %: exactly one.
  const ten = setup(10, { consecutive_5xx: { value: 1 } });
  fail(ten.od, ten.host(1), 1);
  fail(ten.od, ten.host(2), 1);
  assert.deepEqual([1, 2].map((i) => ten.host(i).ejected), [true, false]);
  for (const s of [half, byDefault, one, ten]) s.od.stop();
});

test('connect failures and timeouts count as 5xx (split_external_local_origin_errors is false by default)', () => {
  const { od, stats, host } = setup(2, { maxEjectionPercent: { value: 50 } });
  for (let i = 0; i < 5; i++) od.reportResult(host(1), 'LOCAL_ORIGIN_CONNECT_FAILED');
  assert.equal(host(1).ejected, true, 'five connect failures = five 503s');
  // 503 is also a gateway failure: detected, but enforcing_consecutive_gateway_failure is 0 by default.
  assert.equal(stats.get('outlier_detection.ejections_detected_consecutive_gateway_failure'), 1);
  assert.equal(stats.get('outlier_detection.ejections_enforced_consecutive_gateway_failure'), 0);
  assert.equal(stats.get('outlier_detection.ejections_enforced_consecutive_5xx'), 1);
  // A bare connect success says nothing; a timeout is a 504.
  for (let i = 0; i < 4; i++) od.reportResult(host(2), 'LOCAL_ORIGIN_TIMEOUT');
  od.reportResult(host(2), 'LOCAL_ORIGIN_CONNECT_SUCCESS');
  od.reportResult(host(2), 'LOCAL_ORIGIN_TIMEOUT');
  assert.equal(host(2).ejected, false, 'the 50 % limit: one of two is out already');
  od.stop();

  const split = setup(2, { maxEjectionPercent: { value: 50 }, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailure: { value: 3 } });
  for (let i = 0; i < 2; i++) split.od.reportResult(split.host(1), 'LOCAL_ORIGIN_CONNECT_FAILED');
  fail(split.od, split.host(1), 4);
  assert.equal(split.host(1).ejected, false, 'local and external errors counted apart');
  split.od.reportResult(split.host(1), 'LOCAL_ORIGIN_CONNECT_FAILED');
  assert.equal(split.host(1).ejected, true);
  assert.equal(split.stats.get('outlier_detection.ejections_enforced_consecutive_local_origin_failure'), 1);
  split.od.stop();
});

test('success rate: with ≥ 5 hosts of ≥ 100 requests, a host below mean − 1.9 × stdev is ejected at the sweep', () => {
  const { od, timers, stats, host } = setup(5, { consecutive_5xx: { value: 1000 }, maxEjectionPercent: { value: 20 }, interval: seconds(10) });
  // Envoy's own example: success rates {50, 100, 100, 100, 100} → mean 90, stdev 20, threshold 52.
  for (let i = 1; i <= 5; i++) {
    for (let r = 0; r < 100; r++) od.reportHttpStatus(host(i), i === 1 && r % 2 === 0 ? 500 : 200);
  }
  assert.equal(host(1).ejected, false, 'only at the sweep');
  timers.advance(10_000);
  assert.equal(host(1).ejected, true);
  assert.equal(stats.get('outlier_detection.ejections_enforced_success_rate'), 1);
  assert.equal([2, 3, 4, 5].some((i) => host(i).ejected), false);
  od.stop();
});

test('a passing active health check returns an ejected host; removing an ejected host lowers ejections_active', () => {
  let listener: ((h: Host, healthy: boolean) => void) | undefined;
  const events: HealthCheckEvents = { onCheckComplete: (l) => { listener = l; return () => { listener = undefined; }; } };
  const { set, od, stats, host } = setup(2, { consecutive_5xx: { value: 1 }, maxEjectionPercent: { value: 100 } }, { healthChecks: events });
  fail(od, host(1), 1);
  fail(od, host(2), 1);
  assert.equal(stats.get('outlier_detection.ejections_active'), 2);
  listener?.(host(1), true);
  assert.equal(host(1).ejected, false);
  listener?.(host(2), false);
  assert.equal(host(2).ejected, true);
  set.setEndpoints([ep(1)]);
  assert.equal(stats.get('outlier_detection.ejections_active'), 0);
  assert.equal(od.ejectionsActive, 0);
  od.stop();
  assert.equal(listener, undefined, 'stop unsubscribes');
});

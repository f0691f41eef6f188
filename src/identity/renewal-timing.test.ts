import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expiryWarning, nextLevelChangeAt, nextRetryDelay, renewAt, SAFETY_MARGIN } from './renewal-timing.ts';
import { seededRand } from './test-support.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);

test('renewal falls within half-life ±10% of the lifetime, for any rand value', () => {
  const rand = seededRand(1);
  for (let i = 0; i < 10_000; i++) {
    const at = renewAt(T0, T0 + 24 * HOUR, rand);
    assert.ok(at >= T0 + 0.4 * 24 * HOUR && at <= T0 + 0.6 * 24 * HOUR, `renewal at ${(at - T0) / HOUR} h`);
  }
  // the ends of rand's range map to the ends of the window
  assert.equal(renewAt(T0, T0 + 100_000, () => 0), T0 + 40_000);
  assert.equal(renewAt(T0, T0 + 100_000, () => 0.5), T0 + 50_000);
  assert.ok(renewAt(T0, T0 + 100_000, () => 0.999_999) <= T0 + 60_000);
});

test('renewals of certificates issued together are spread out, not synchronized (A7)', () => {
  const rand = seededRand(2);
  const lifetime = 24 * HOUR;
  const buckets = new Array<number>(20).fill(0); // 20 buckets across the ±10% window
  const n = 10_000;
  for (let i = 0; i < n; i++) {
    const at = renewAt(T0, T0 + lifetime, rand);
    const bucket = Math.min(19, Math.floor(((at - T0) / lifetime - 0.4) / 0.01));
    buckets[bucket]! += 1;
  }
  // uniform: each bucket holds about n/20 = 500; none is empty and none holds a crowd
  for (const count of buckets) assert.ok(count > 350 && count < 650, `bucket sizes ${buckets.join(',')}`);
  assert.ok(new Set(Array.from({ length: 1000 }, () => renewAt(T0, T0 + lifetime, rand))).size > 990);
});

test('renewal is never before notBefore nor later than the safety margin before notAfter', () => {
  const lifetime = 10 * HOUR;
  const notAfter = T0 + lifetime;
  for (const fraction of [0, 0.05, 0.5, 0.95, 1, 2]) {
    for (const r of [0, 0.25, 0.5, 0.75, 0.999]) {
      const at = renewAt(T0, notAfter, () => r, fraction, 0.2);
      assert.ok(at >= T0, `fraction ${fraction}, rand ${r}`);
      assert.ok(at <= notAfter - lifetime * SAFETY_MARGIN, `fraction ${fraction}, rand ${r}`);
    }
  }
  assert.equal(renewAt(T0, T0, () => 0.5), T0, 'no lifetime: renew at once');
  assert.equal(renewAt(T0, T0 - 1, () => 0.5), T0);
  // a misbehaving rand cannot push the time outside the window
  for (const r of [NaN, -1, 1, 7]) {
    const at = renewAt(T0, T0 + 100_000, () => r);
    assert.ok(at >= T0 + 40_000 && at <= T0 + 60_000, `rand ${r}`);
  }
});

test('backoff grows exponentially, is capped, and is fully jittered', () => {
  const top = (attempt: number) => nextRetryDelay(attempt, () => 0.999_999_999);
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 50, 5000].map(top), [999, 1999, 3999, 7999, 15999, 31999, 59999, 59999, 59999, 59999, 59999]);
  assert.equal(nextRetryDelay(3, () => 0), 0, 'full jitter: anywhere from 0');
  assert.equal(nextRetryDelay(3, () => 0.5), 4000);
  assert.equal(nextRetryDelay(-2, () => 0.5), 500, 'a negative attempt counts as the first');
  assert.equal(nextRetryDelay(2, () => 0.5, 100, 250), 125, 'custom base and cap');

  // the mean grows with the attempt until the cap, then stays
  const rand = seededRand(3);
  const mean = (attempt: number) => {
    let sum = 0;
    for (let i = 0; i < 2000; i++) sum += nextRetryDelay(attempt, rand);
    return sum / 2000;
  };
  const means = [0, 1, 2, 3, 4, 5, 6, 10].map(mean);
  for (let i = 1; i < 7; i++) assert.ok(means[i]! > means[i - 1]!, `means ${means.join(',')}`);
  assert.ok(Math.abs(means[7]! - 30_000) < 2000 && Math.abs(means[6]! - 30_000) < 2000, `means ${means.join(',')}`);
});

test('expiry warning levels: warn under 1/4 of the lifetime, critical under 1/10, expired at notAfter', () => {
  const lifetime = 1000;
  const notAfter = T0 + lifetime;
  assert.equal(expiryWarning(T0, notAfter, lifetime), 'ok');
  assert.equal(expiryWarning(notAfter - 251, notAfter, lifetime), 'ok');
  assert.equal(expiryWarning(notAfter - 250, notAfter, lifetime), 'warn');
  assert.equal(expiryWarning(notAfter - 101, notAfter, lifetime), 'warn');
  assert.equal(expiryWarning(notAfter - 100, notAfter, lifetime), 'critical');
  assert.equal(expiryWarning(notAfter - 1, notAfter, lifetime), 'critical');
  assert.equal(expiryWarning(notAfter, notAfter, lifetime), 'expired');
  assert.equal(expiryWarning(notAfter + HOUR, notAfter, lifetime), 'expired');
});

test('nextLevelChangeAt names the first millisecond of each new level', () => {
  const lifetime = 999; // thresholds fall between milliseconds
  const notAfter = T0 + lifetime;
  const seen: string[] = [];
  for (let t: number | undefined = T0; t !== undefined; t = nextLevelChangeAt(t, notAfter, lifetime)) {
    seen.push(`${t - T0}:${expiryWarning(t, notAfter, lifetime)}`);
    if (t > T0) assert.notEqual(expiryWarning(t - 1, notAfter, lifetime), expiryWarning(t, notAfter, lifetime));
  }
  assert.deepEqual(seen, ['0:ok', '750:warn', '900:critical', '999:expired']);
});

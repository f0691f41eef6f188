// When a workload renews its SVID, how long it waits after a failure, and how worried it should be.
// Pure functions of (times, rand): no clock, no timers, no I/O, so every rule is testable in isolation.
//
// Choices (STYLE.md P9, A7):
// - Renew at half of the lifetime, like SPIRE's rotationutil: a failed renewal then still has half a
//   lifetime of retries before anything breaks.
// - Jitter the renewal uniformly within ±10% of the lifetime around that point. Without it every proxy
//   started together (a deploy, a node reboot) renews together, every half-life, forever (SPIRE #1240,
//   #4268: "100,000 signing operations in a ~5 second period").
// - Never renew before notBefore, and never later than SAFETY_MARGIN of the lifetime before notAfter,
//   whatever fraction a caller asks for, so there is always time left for retries.
// - Retry failures with exponential backoff and full jitter (delay uniform in [0, min(max, base·2^n))):
//   a CA that comes back after an outage is not hit by every proxy on the same tick.
// - Warn when a quarter of the lifetime is left without a renewal, critical under a tenth. With the
//   default window renewal starts at 40–60% of the lifetime, so a healthy workload never warns.

/** Renewal is never scheduled later than this fraction of the lifetime before notAfter. */
export const SAFETY_MARGIN = 0.1;
/** Fractions of the lifetime left at which expiryWarning() moves to 'warn' and to 'critical'. */
export const WARN_LEFT = 1 / 4;
export const CRITICAL_LEFT = 1 / 10;

export type ExpiryLevel = 'ok' | 'warn' | 'critical' | 'expired';

/**
 * The time (ms since the epoch) to renew a certificate valid from notBefore to notAfter: at `fraction` of
 * its lifetime, moved uniformly by up to ±`jitter` of the lifetime, clamped to
 * [notBefore, notAfter − SAFETY_MARGIN·lifetime]. A certificate with no lifetime is renewed at once.
 */
export function renewAt(notBefore: number, notAfter: number, rand: () => number, fraction = 0.5, jitter = 0.1): number {
  const lifetime = notAfter - notBefore;
  if (!(lifetime > 0)) return notBefore;
  const at = notBefore + lifetime * (fraction + jitter * (2 * unit(rand()) - 1));
  const latest = notAfter - lifetime * SAFETY_MARGIN;
  return Math.round(Math.min(Math.max(at, notBefore), latest));
}

/**
 * How long to wait (ms) before retry number `attempt` (0 = the first retry after the first failure):
 * uniform in [0, min(max, base·2^attempt)), "full jitter".
 */
export function nextRetryDelay(attempt: number, rand: () => number, base = 1000, max = 60_000): number {
  const n = Number.isFinite(attempt) && attempt > 0 ? Math.floor(attempt) : 0;
  const ceiling = Math.min(max, base * 2 ** n); // 2 ** large = Infinity, capped by max
  return Math.floor(unit(rand()) * ceiling);
}

/**
 * How close a certificate is to expiry: 'expired' from notAfter on (fail closed at the boundary),
 * 'critical' with at most CRITICAL_LEFT of the lifetime left, 'warn' with at most WARN_LEFT left.
 */
export function expiryWarning(now: number, notAfter: number, lifetime: number): ExpiryLevel {
  const left = notAfter - now;
  if (left <= 0) return 'expired';
  if (left <= lifetime * CRITICAL_LEFT) return 'critical';
  if (left <= lifetime * WARN_LEFT) return 'warn';
  return 'ok';
}

/** The next time after `now` at which expiryWarning() changes level, or undefined once expired. */
export function nextLevelChangeAt(now: number, notAfter: number, lifetime: number): number | undefined {
  // ceil so that at the returned millisecond the new level already holds
  const marks = [notAfter - lifetime * WARN_LEFT, notAfter - lifetime * CRITICAL_LEFT, notAfter].map(Math.ceil);
  return marks.find((t) => t > now);
}

// rand() is injected; keep a broken one (1.0, NaN) from pushing results outside the documented ranges.
function unit(r: number): number {
  return r >= 0 && r < 1 ? r : r >= 1 ? 1 - Number.EPSILON : 0;
}

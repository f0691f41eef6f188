// A token bucket per caller: App Mesh answers bursts beyond its request rate with TooManyRequestsException,
// which the SDKs retry with backoff. Callers are keyed by access key id (or address when unauthenticated).
import type { Clock } from '../base/clock.ts';
import { ThrottledError } from '../errors/index.ts';

export interface RateLimitOptions {
  /** Sustained requests per second per caller. */
  ratePerSecond: number;
  /** Requests a caller may make at once after being idle. */
  burst: number;
}

export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #opts: RateLimitOptions;
  readonly #clock: Clock;

  constructor(opts: RateLimitOptions, clock: Clock) {
    this.#opts = opts;
    this.#clock = clock;
  }

  /** Takes one token for `caller`, or throws ThrottledError when the bucket is empty. */
  take(caller: string): void {
    const now = this.#clock.now();
    const b = this.#buckets.get(caller) ?? { tokens: this.#opts.burst, at: now };
    b.tokens = Math.min(this.#opts.burst, b.tokens + ((now - b.at) / 1000) * this.#opts.ratePerSecond);
    b.at = now;
    if (b.tokens < 1) {
      this.#buckets.set(caller, b);
      throw new ThrottledError(`Rate exceeded: more than ${this.#opts.ratePerSecond} requests per second (burst ${this.#opts.burst}); retry with backoff.`);
    }
    b.tokens -= 1;
    this.#buckets.set(caller, b);
    if (this.#buckets.size > 10_000) this.#forgetIdle(now);
  }

  /** Full buckets carry no state worth keeping; dropping them bounds memory under many callers. */
  #forgetIdle(now: number): void {
    for (const [k, b] of this.#buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.#opts.ratePerSecond >= this.#opts.burst) this.#buckets.delete(k);
    }
  }
}

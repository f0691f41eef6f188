// Time for the upstream side: a monotonic clock plus one-shot timers, injected so that outlier detection,
// DNS refresh and health-check scheduling can run on a fake clock in tests. System timers are unref'd: the
// proxy's listeners keep the process alive, these background timers never should.
import type { Clock } from '../../base/clock.ts';

export interface Timer {
  cancel(): void;
}

export interface Timers extends Clock {
  /** Runs `fn` once, `ms` from now. */
  after(ms: number, fn: () => void): Timer;
}

export const systemTimers: Timers = {
  // Monotonic (performance.now) but on the epoch scale, so values read like Date.now().
  now: () => performance.timeOrigin + performance.now(),
  after(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/** Timers that fire only when the test moves time forward; in due order, ties in scheduling order. */
export class ManualTimers implements Timers {
  #now: number;
  #seq = 0;
  #pending: Pending[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  after(ms: number, fn: () => void): Timer {
    const p: Pending = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#pending.push(p);
    return { cancel: () => { p.cancelled = true; } };
  }

  /** Timers scheduled and not yet fired or cancelled. */
  get pending(): number {
    return this.#pending.filter((p) => !p.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due (including ones scheduled meanwhile). */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      this.#pending = this.#pending.filter((p) => !p.cancelled);
      let next: Pending | undefined;
      for (const p of this.#pending) if (p.at <= end && (!next || p.at < next.at || (p.at === next.at && p.seq < next.seq))) next = p;
      if (!next) break;
      this.#pending.splice(this.#pending.indexOf(next), 1);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
    }
    this.#now = end;
  }
}

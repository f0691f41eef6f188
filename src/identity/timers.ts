// Timers are injected (like the clock) so tests can step through a whole certificate lifetime in
// milliseconds. The returned handle is opaque: Node's Timeout object, or a fake's number.
export interface Timers {
  setTimeout(fn: () => unknown, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** setTimeout silently fires after 1 ms for delays above this (about 24.8 days), so longer waits are split. */
export const MAX_TIMER_DELAY = 2 ** 31 - 1;

// Helpers for the codec's tests (not used by the proxy): raw messages from lines, error assertions,
// incremental feeding at chosen split points, and a seeded PRNG for the randomized tests.
import assert from 'node:assert/strict';
import { HttpParseError, type HttpParseCode } from './errors.ts';

/** A message from head lines: each line gets CRLF, then the blank line, then `body`. latin1. */
export function msg(lines: readonly string[], body = ''): Buffer {
  return Buffer.from(`${lines.map((l) => `${l}\r\n`).join('')}\r\n${body}`, 'latin1');
}

/** `fn` throws HttpParseError with this code, and a message matching `message`; returns the error. */
export function expectParseError(fn: () => unknown, code: HttpParseCode, message?: RegExp): HttpParseError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof HttpParseError, `expected HttpParseError ${code}, got ${caught === undefined ? 'no error' : String(caught)}`);
  assert.equal(caught.httpCode, code, `expected ${code}, got ${caught.httpCode}: ${caught.message}`);
  if (message) assert.match(caught.message, message);
  return caught;
}

/** What a parse attempt gave: a result, "incomplete", or an error code. */
export type Outcome<T> = { ok: T } | { incomplete: true } | { error: HttpParseCode };

export function outcome<T>(fn: () => T | undefined): Outcome<T> {
  try {
    const r = fn();
    return r === undefined ? { incomplete: true } : { ok: r };
  } catch (e) {
    if (e instanceof HttpParseError) return { error: e.httpCode };
    throw e;
  }
}

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): { next(): number; int(n: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { next, int, pick: (xs) => xs[int(xs.length)] as (typeof xs)[number], chance: (p) => next() < p };
}

/** Sorted distinct cut points in (0, length) splitting a buffer into about `pieces` pieces. */
export function randomCuts(rand: ReturnType<typeof prng>, length: number, pieces: number): number[] {
  const cuts = new Set<number>();
  for (let i = 0; i < pieces - 1 && length > 1; i++) cuts.add(1 + rand.int(length - 1));
  return [...cuts].sort((x, y) => x - y);
}

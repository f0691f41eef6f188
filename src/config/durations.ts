// Durations on the command line: a number with a unit (90s, 10m, 1h, 7d), as Go, SPIRE and Envoy tools write them.
import { ConfigError } from '../errors/index.ts';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds; a ConfigError naming the flag for anything else. */
export function parseDuration(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
  const ms = m ? Number(m[1]) * UNIT_MS[m[2]!]! : NaN;
  if (!Number.isFinite(ms) || ms <= 0) throw new ConfigError(`${flag} ${value}: expected a duration such as 90s, 10m, 1h or 7d`);
  return Math.round(ms);
}

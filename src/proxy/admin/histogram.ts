// Log-linear histogram bins, the scheme Envoy's histograms use (libcircllhist): each bin covers two significant
// decimal digits, [m·10^k, (m+1)·10^k) for m in 10..99, so the relative error of any quantile is under 10% and
// usually far less, whatever the scale. Quantiles interpolate linearly inside a bin exactly as
// `hist_approx_quantile` does, so `/stats` prints the same numbers Envoy would for the same samples (one sample
// of 1 ms gives `P0 1, P25 1.025, …, P100 1.1`).
//
// Memory is bounded: a decade (90 bins of float64 counts, 720 bytes) is allocated the first time a sample lands
// in it, and there are at most DECADES of them; values are clamped into [MIN_VALUE, 10^(MAX_EXP+1)).
// Counts are float64, exact up to 2^53 samples per bin.

/** The quantiles Envoy reports, in order. */
export const SUPPORTED_QUANTILES: readonly number[] = [0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1];
/** Their labels in Envoy's text output (`P99.9(interval,cumulative)`). */
export const QUANTILE_LABELS: readonly string[] = ['P0', 'P25', 'P50', 'P75', 'P90', 'P95', 'P99', 'P99.5', 'P99.9', 'P100'];
/** Envoy's default bucket boundaries (`HistogramSettingsImpl::defaultBuckets`), used for Prometheus `le`. */
export const DEFAULT_BUCKETS: readonly number[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

/** Smallest decade: [10^MIN_EXP, 10^(MIN_EXP+1)); positive samples below it count as 0. */
const MIN_EXP = -3;
/** Largest decade: [10^MAX_EXP, 10^(MAX_EXP+1)); larger samples land in its top bin. */
const MAX_EXP = 12;
const DECADES = MAX_EXP - MIN_EXP + 1;
const MIN_VALUE = 10 ** MIN_EXP;
/** Nudges products like 0.29 × 100 = 28.999999999999996 back onto the bin they belong to. */
const EPS = 1 + 1e-12;

/** 10^k computed so that small decimal bin edges are the nearest doubles (0.3, not 0.30000000000000004). */
function scaled(m: number, k: number): number {
  return k >= 0 ? m * 10 ** k : m / 10 ** -k;
}

/** Sample counts of one histogram (or of one interval of it). Not exported as a stat: see stats.ts. */
export class Bins {
  count = 0;
  sum = 0;
  zero = 0;
  /** decades[e - MIN_EXP][m - 10] counts samples in [m·10^(e-1), (m+1)·10^(e-1)). */
  readonly decades: (Float64Array | undefined)[] = new Array<Float64Array | undefined>(DECADES).fill(undefined);

  add(value: number): void {
    if (!(value >= 0)) {
      if (Number.isNaN(value)) return;
      value = 0; // a negative duration is a clock artefact; Envoy's histograms are unsigned
    }
    this.count++;
    this.sum += value === Infinity ? 0 : value;
    if (value < MIN_VALUE) {
      this.zero++;
      return;
    }
    let e = Math.floor(Math.log10(value));
    let m: number;
    if (e > MAX_EXP) {
      e = MAX_EXP;
      m = 99;
    } else {
      m = Math.floor(scaled(value, 1 - e) * EPS);
      if (m < 10) m = Math.floor(scaled(value, 1 - --e) * EPS);
      else if (m > 99) m = Math.floor(scaled(value, 1 - ++e) * EPS);
      if (e < MIN_EXP) {
        e = MIN_EXP;
        m = 10;
      } else if (e > MAX_EXP) {
        e = MAX_EXP;
        m = 99;
      }
    }
    const d = e - MIN_EXP;
    const decade = this.decades[d] ?? (this.decades[d] = new Float64Array(90));
    decade[m - 10]! += 1;
  }

  addAll(other: Bins): void {
    this.count += other.count;
    this.sum += other.sum;
    this.zero += other.zero;
    for (let d = 0; d < DECADES; d++) {
      const src = other.decades[d];
      if (!src) continue;
      const dst = this.decades[d] ?? (this.decades[d] = new Float64Array(90));
      for (let i = 0; i < 90; i++) dst[i]! += src[i]!;
    }
  }

  clear(): void {
    this.count = 0;
    this.sum = 0;
    this.zero = 0;
    for (const decade of this.decades) decade?.fill(0);
  }
}

interface Bin {
  left: number;
  width: number;
  upper: number;
  count: number;
}

/** The non-empty bins of the sum of `parts`, in ascending order. */
function mergedBins(parts: readonly Bins[]): Bin[] {
  const out: Bin[] = [];
  const zero = parts.reduce((n, p) => n + p.zero, 0);
  if (zero > 0) out.push({ left: 0, width: 0, upper: 0, count: zero });
  for (let d = 0; d < DECADES; d++) {
    if (!parts.some((p) => p.decades[d])) continue;
    const k = d + MIN_EXP - 1;
    for (let i = 0; i < 90; i++) {
      let count = 0;
      for (const p of parts) count += p.decades[d]?.[i] ?? 0;
      if (count === 0) continue;
      const m = i + 10;
      out.push({ left: scaled(m, k), width: scaled(1, k), upper: scaled(m + 1, k), count });
    }
  }
  return out;
}

/**
 * Approximate quantiles (each q in [0, 1], ascending) of the samples in `parts`, interpolating inside a bin the
 * way libcircllhist's `hist_approx_quantile` does. NaN for every quantile when there are no samples.
 */
export function quantiles(parts: readonly Bins[], qs: readonly number[] = SUPPORTED_QUANTILES): number[] {
  const bins = mergedBins(parts);
  const total = bins.reduce((n, b) => n + b.count, 0);
  if (total === 0) return qs.map(() => Number.NaN);
  let i = 0;
  let lower = 0;
  let upper = bins[0]!.count;
  return qs.map((q) => {
    const target = total * q;
    while (i < bins.length - 1 && upper < target) {
      i++;
      lower = upper;
      upper += bins[i]!.count;
    }
    const b = bins[i]!;
    if (lower === target) return b.left;
    if (upper === target) return b.left + b.width;
    if (b.width === 0) return b.left;
    return b.left + ((target - lower) / (upper - lower)) * b.width;
  });
}

/**
 * For each bound, how many samples lie in bins that end at or below it (`hist_approx_count_below`). As in
 * Envoy, a sample equal to a bound sits in the bin starting there, so it counts towards the next bound.
 */
export function countsBelow(parts: readonly Bins[], bounds: readonly number[] = DEFAULT_BUCKETS): number[] {
  const bins = mergedBins(parts);
  return bounds.map((bound) => {
    let n = 0;
    for (const b of bins) {
      if (b.upper > bound) break;
      n += b.count;
    }
    return n;
  });
}

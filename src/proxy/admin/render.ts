// Envoy's three renderings of its stats (source/server/admin/stats_render.cc, prometheus_stats.cc):
//
// text        `name: value` lines, counters and gauges together sorted by name, then histograms sorted by name as
//             `name: P0(interval,cumulative) P25(…) … P100(…)`, or `name: No recorded values`.
// json        `{"stats":[{"name":…,"value":…},…,{"histograms":{"supported_quantiles":[0,25,…,100],
//             "computed_quantiles":[{"name":…,"values":[{"cumulative":…,"interval":…},…]}]}}]}`, NaN as null.
// prometheus  names `envoy_` + the tag-extracted name with every character outside [a-zA-Z0-9_] turned into
//             `_`; tags as labels; counters, then gauges, then histograms (`_bucket{le=…}`, `_sum`, `_count`),
//             each group of one metric name preceded by its `# TYPE` line and followed by an empty line.
//
// Every rendering takes Envoy's query parameters `filter` (a regular expression searched in the full stat name)
// and `usedonly` (only stats that were ever incremented, set or recorded).
import { DEFAULT_BUCKETS, QUANTILE_LABELS, SUPPORTED_QUANTILES } from './histogram.ts';
import type { Counter, Gauge, Histogram, Metric, StatsStore, TaggedName } from './stats.ts';
import { extractTags } from './tags.ts';

export interface StatsQuery {
  readonly filter?: RegExp;
  readonly usedOnly?: boolean;
}

function byName(a: Metric, b: Metric): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function selected(store: StatsStore, q: StatsQuery): { numeric: (Counter | Gauge)[]; histograms: Histogram[] } {
  const numeric: (Counter | Gauge)[] = [];
  const histograms: Histogram[] = [];
  for (const m of store.all()) {
    if (q.usedOnly && !m.used) continue;
    if (q.filter) {
      q.filter.lastIndex = 0;
      if (!q.filter.test(m.name)) continue;
    }
    if (m.kind === 'histogram') histograms.push(m);
    else numeric.push(m);
  }
  numeric.sort(byName);
  histograms.sort(byName);
  return { numeric, histograms };
}

/** A number as Envoy's fmt `{}` prints a double: shortest round-trip form, `nan`, exponents as `1e-05`. */
export function formatNumber(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const abs = Math.abs(x);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e16)) {
    return x.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  }
  return String(x);
}

/** Envoy's summary for one histogram: `P0(nan,1) P25(nan,1.025) … P100(nan,1.1)`. */
export function quantileSummary(h: Histogram): string {
  if (!h.used) return 'No recorded values';
  const interval = h.intervalQuantiles();
  const cumulative = h.cumulativeQuantiles();
  return QUANTILE_LABELS.map((label, i) => `${label}(${formatNumber(interval[i]!)},${formatNumber(cumulative[i]!)})`).join(' ');
}

export function renderText(store: StatsStore, q: StatsQuery = {}): string {
  const { numeric, histograms } = selected(store, q);
  let out = '';
  for (const m of numeric) out += `${m.name}: ${formatNumber(m.value)}\n`;
  for (const h of histograms) out += `${h.name}: ${quantileSummary(h)}\n`;
  return out;
}

const jsonNumber = (x: number): number | null => (Number.isFinite(x) ? x : null);

export function renderJson(store: StatsStore, q: StatsQuery = {}): string {
  const { numeric, histograms } = selected(store, q);
  const stats: unknown[] = numeric.map((m) => ({ name: m.name, value: m.value }));
  if (histograms.length > 0) {
    stats.push({
      histograms: {
        supported_quantiles: SUPPORTED_QUANTILES.map((x) => Math.round(x * 1000) / 10),
        computed_quantiles: histograms.map((h) => {
          const interval = h.intervalQuantiles();
          const cumulative = h.cumulativeQuantiles();
          return { name: h.name, values: cumulative.map((c, i) => ({ cumulative: jsonNumber(c), interval: jsonNumber(interval[i]!) })) };
        }),
      },
    });
  }
  return JSON.stringify({ stats }, null, 1);
}

/** Prometheus' rule for metric and label names: [a-zA-Z_][a-zA-Z0-9_]*. */
function promName(name: string): string {
  const s = name.replace(/[^a-zA-Z0-9_]/g, '_');
  return /^[0-9]/.test(s) ? `_${s}` : s;
}

function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function tagged(m: Metric): TaggedName {
  return (m.tagged ??= extractTags(m.name));
}

function labels(t: TaggedName): string {
  return t.tags.map((tag) => `${promName(tag.name)}="${labelValue(tag.value)}"`).join(',');
}

export function renderPrometheus(store: StatsStore, q: StatsQuery = {}): string {
  const counters: Counter[] = [];
  const gauges: Gauge[] = [];
  const { numeric, histograms } = selected(store, q);
  for (const m of numeric) {
    if (m.kind === 'counter') counters.push(m);
    else gauges.push(m);
  }
  let out = '';
  const section = <M extends Metric>(metrics: readonly M[], type: string, lines: (m: M, name: string, labels: string) => string): void => {
    const groups = new Map<string, M[]>();
    for (const m of metrics) {
      const name = `envoy_${tagged(m).name}`;
      const group = groups.get(name);
      if (group) group.push(m);
      else groups.set(name, [m]);
    }
    for (const key of [...groups.keys()].sort()) {
      const name = promName(key);
      out += `# TYPE ${name} ${type}\n`;
      for (const m of groups.get(key)!) out += lines(m, name, labels(tagged(m)));
      out += '\n';
    }
  };
  const numericLine = (m: Counter | Gauge, name: string, l: string): string => `${name}{${l}} ${formatPromNumber(m.value)}\n`;
  section(counters, 'counter', numericLine);
  section(gauges, 'gauge', numericLine);
  section(histograms, 'histogram', (h, name, l) => {
    const counts = h.buckets(DEFAULT_BUCKETS);
    const lead = l ? `${l},` : '';
    let s = '';
    DEFAULT_BUCKETS.forEach((bound, i) => {
      s += `${name}_bucket{${lead}le="${formatPromNumber(bound)}"} ${counts[i]}\n`;
    });
    s += `${name}_bucket{${lead}le="+Inf"} ${h.count}\n`;
    s += `${name}_sum{${l}} ${formatPromNumber(h.sum)}\n`;
    s += `${name}_count{${l}} ${h.count}\n`;
    return s;
  });
  return out;
}

function formatPromNumber(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : '-Inf';
  return String(x);
}

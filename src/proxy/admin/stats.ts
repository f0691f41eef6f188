// The proxy's statistics, named and shaped like Envoy's so that what operators already type against an Envoy
// (`curl -s localhost:9901/stats | grep ssl.handshake`, Prometheus queries on `envoy_cluster_upstream_rq_xx`)
// works unchanged against keymesh's proxy.
//
// Names are Envoy's dot-separated names: `listener.0.0.0.0_15000.ssl.handshake`,
// `cluster.cds_egress_mesh_node_http_9080.upstream_rq_2xx`, `http.ingress.downstream_rq_total`,
// `server.live`, `control_plane.connected_state`. The prefix helpers below build the object part the way Envoy
// does (`listenerStatPrefix('0.0.0.0', 15000)` → `listener.0.0.0.0_15000.`).
//
// Hot path: a caller looks a stat up once (when a listener or cluster is built) and keeps the handle; counting is
// then a field add on that object (`handshake.inc()`), with no map lookup, string work or allocation.
//
// Lifetime, as in Envoy: a listener's or cluster's stats live in a scope (`stats.scope('cluster.x.')`). Closing
// the scope when the object goes away removes its stats from /stats, so a proxy whose clusters churn does not
// grow without bound (Envoy frees a removed cluster's stats with its scope; envoyproxy/envoy#10608 is a bug
// report about the cases where it failed to). Stats are reference counted by name: when a cluster is updated,
// the new version opens a scope with the same prefix before the old one closes, both hold the same counter
// objects, and the counts carry on across the update, as in Envoy. Handles kept after their scope closed stay
// valid but are no longer listed; a closed scope hands out such unlisted stats instead of throwing, so a
// connection finishing after its cluster was removed cannot fail on its stats.
import { InternalError } from '../../errors/index.ts';
import { Bins, countsBelow, DEFAULT_BUCKETS, quantiles, SUPPORTED_QUANTILES } from './histogram.ts';

/** An Envoy tag extracted from a stat name (see tags.ts); memoised on the stat for the Prometheus output. */
export interface Tag {
  readonly name: string;
  readonly value: string;
}

export interface TaggedName {
  /** The name with the tag values cut out (`cluster.upstream_rq_xx`). */
  readonly name: string;
  readonly tags: readonly Tag[];
}

/** A monotonically increasing count (Envoy counter). */
export class Counter {
  readonly kind = 'counter' as const;
  readonly name: string;
  value = 0;
  /** Set by the first `inc`, even of 0: what `/stats?usedonly` shows. */
  used = false;
  /** Set by the Prometheus renderer the first time it needs it. */
  tagged: TaggedName | undefined = undefined;
  /** Scopes holding this stat (the store's root counts as one, forever). */
  refs = 0;

  constructor(name: string) {
    this.name = name;
  }

  inc(n = 1): void {
    this.value += n;
    this.used = true;
  }
}

/** A value that goes up and down (Envoy gauge): active connections, state, uptime. */
export class Gauge {
  readonly kind = 'gauge' as const;
  readonly name: string;
  value = 0;
  used = false;
  tagged: TaggedName | undefined = undefined;
  refs = 0;

  constructor(name: string) {
    this.name = name;
  }

  set(v: number): void {
    this.value = v;
    this.used = true;
  }

  inc(n = 1): void {
    this.value += n;
    this.used = true;
  }

  dec(n = 1): void {
    this.value -= n;
    this.used = true;
  }
}

/**
 * A distribution (Envoy histogram), usually a latency in milliseconds or a size in bytes. `cumulative` covers
 * every sample recorded so far; `interval` covers the samples of the last completed flush interval (Envoy's
 * first number in `P50(interval,cumulative)`), NaN until one completes. Unlike Envoy, whose cumulative figures
 * only move at each flush, the cumulative figures here include samples recorded since the last flush.
 */
export class Histogram {
  readonly kind = 'histogram' as const;
  readonly name: string;
  used = false;
  tagged: TaggedName | undefined = undefined;
  refs = 0;
  readonly #merged = new Bins();
  readonly #current = new Bins();
  #interval: readonly number[] = SUPPORTED_QUANTILES.map(() => Number.NaN);

  constructor(name: string) {
    this.name = name;
  }

  record(value: number): void {
    this.used = true;
    this.#current.add(value);
  }

  /** Closes the current interval (the store calls this for every histogram; see StatsStore.flushHistograms). */
  flush(): void {
    const current = this.#current;
    this.#interval = quantiles([current]);
    if (current.count === 0) return;
    this.#merged.addAll(current);
    current.clear();
  }

  /** Samples recorded so far. */
  get count(): number {
    return this.#merged.count + this.#current.count;
  }

  /** Exact sum of the samples recorded so far. */
  get sum(): number {
    return this.#merged.sum + this.#current.sum;
  }

  /** Envoy's quantiles (SUPPORTED_QUANTILES) over every sample so far; NaN when there is none. */
  cumulativeQuantiles(): number[] {
    return quantiles([this.#merged, this.#current]);
  }

  /** Envoy's quantiles over the last completed interval. */
  intervalQuantiles(): readonly number[] {
    return this.#interval;
  }

  /** Approximate quantiles of every sample so far, for any q in [0, 1] (ascending). */
  quantiles(qs: readonly number[]): number[] {
    return quantiles([this.#merged, this.#current], qs);
  }

  /** Cumulative bucket counts (samples in bins ending at or below each bound), for Prometheus. */
  buckets(bounds: readonly number[] = DEFAULT_BUCKETS): number[] {
    return countsBelow([this.#merged, this.#current], bounds);
  }
}

export type Metric = Counter | Gauge | Histogram;
type Kind = Metric['kind'];
const MAKE: { [K in Kind]: (name: string) => Extract<Metric, { kind: K }> } = {
  counter: (name) => new Counter(name),
  gauge: (name) => new Gauge(name),
  histogram: (name) => new Histogram(name),
};

// Names are used as-is in the text output (`name: value`), so keep out what would break a line or a parse.
const NAME = /^[^\s.:]+(?:\.[^\s.:]+)*$/;

function checkName(name: string): void {
  if (!NAME.test(name)) throw new InternalError(`invalid stat name ${JSON.stringify(name)}: expected dot-separated segments without spaces or colons`);
}

/** The table of live stats, shared by a store and its scopes. */
class Registry {
  readonly metrics = new Map<string, Metric>();

  acquire<K extends Kind>(name: string, kind: K): Extract<Metric, { kind: K }> {
    const found = this.metrics.get(name);
    if (found) {
      if (found.kind !== kind) throw new InternalError(`stat ${JSON.stringify(name)} is a ${found.kind}, not a ${kind}`);
      found.refs++;
      return found as Extract<Metric, { kind: K }>;
    }
    checkName(name);
    const metric = MAKE[kind](name);
    metric.refs = 1;
    this.metrics.set(name, metric);
    return metric;
  }

  release(metric: Metric): void {
    if (--metric.refs > 0) return;
    if (this.metrics.get(metric.name) === metric) this.metrics.delete(metric.name);
  }
}

/** Stats under a common prefix, removed together by `close()`. */
export class StatsScope {
  readonly prefix: string;
  readonly #registry: Registry;
  readonly #parent: StatsScope | undefined;
  readonly #owned = new Map<string, Metric>();
  readonly #children = new Set<StatsScope>();
  #closed = false;

  /** Use `StatsStore.scope` or `StatsScope.scope`. */
  constructor(registry: Registry, prefix: string, parent?: StatsScope) {
    this.#registry = registry;
    this.prefix = prefix;
    this.#parent = parent;
  }

  counter(name: string): Counter {
    return this.#get(name, 'counter');
  }

  gauge(name: string): Gauge {
    return this.#get(name, 'gauge');
  }

  histogram(name: string): Histogram {
    return this.#get(name, 'histogram');
  }

  /** A nested scope (`cluster.x.` → `cluster.x.ssl.`); closed with its parent. */
  scope(prefix: string): StatsScope {
    const child = new StatsScope(this.#registry, joinPrefix(this.prefix, prefix), this);
    if (this.#closed) child.#closed = true;
    else this.#children.add(child);
    return child;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Removes this scope's stats (and its children's) from the store, unless another open scope also holds them. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const child of [...this.#children]) child.close();
    for (const metric of this.#owned.values()) this.#registry.release(metric);
    this.#owned.clear();
    if (this.#parent) this.#parent.#children.delete(this);
  }

  #get<K extends Kind>(name: string, kind: K): Extract<Metric, { kind: K }> {
    const full = this.prefix + name;
    const owned = this.#owned.get(full);
    if (owned) {
      if (owned.kind !== kind) throw new InternalError(`stat ${JSON.stringify(full)} is a ${owned.kind}, not a ${kind}`);
      return owned as Extract<Metric, { kind: K }>;
    }
    if (this.#closed) {
      checkName(full);
      return MAKE[kind](full); // unlisted: see the file comment
    }
    const metric = this.#registry.acquire(full, kind);
    this.#owned.set(full, metric);
    return metric;
  }
}

function joinPrefix(prefix: string, more: string): string {
  if (more === '') return prefix;
  return prefix + (more.endsWith('.') ? more : `${more}.`);
}

/** All of the proxy's stats. One per proxy process, passed to whatever counts. */
export class StatsStore {
  readonly #registry = new Registry();
  readonly #root = new StatsScope(this.#registry, '');

  counter(name: string): Counter {
    return this.#root.counter(name);
  }

  gauge(name: string): Gauge {
    return this.#root.gauge(name);
  }

  histogram(name: string): Histogram {
    return this.#root.histogram(name);
  }

  /** Stats of one listener, cluster, HTTP connection manager…: `scope('cluster.x')` or `scope('cluster.x.')`. */
  scope(prefix: string): StatsScope {
    return this.#root.scope(prefix);
  }

  /** The live stat of that full name, if any. */
  get(name: string): Metric | undefined {
    return this.#registry.metrics.get(name);
  }

  /** The value of the live counter or gauge of that full name; undefined for a histogram or no such stat. */
  value(name: string): number | undefined {
    const m = this.#registry.metrics.get(name);
    return m && m.kind !== 'histogram' ? m.value : undefined;
  }

  /** Every listed stat, in no particular order. */
  all(): Metric[] {
    return [...this.#registry.metrics.values()];
  }

  /** Ends the current histogram interval (Envoy does this every stats flush, 5 s by default). */
  flushHistograms(): void {
    for (const metric of this.#registry.metrics.values()) {
      if (metric.kind === 'histogram') metric.flush();
    }
  }
}

/**
 * An address or name made safe for a stat name, as Envoy's `sanitizeStatsName` does: `:` (and `://`) become
 * `_`, surrounding dots go.
 */
export function sanitizeStatName(name: string): string {
  return name.replace(/^\.+|\.+$/g, '').replace(/:\/\/|:\/|:/g, '_').replace(/\s/g, '_');
}

/** `listener.0.0.0.0_15000.`, `listener.[__]_15000.` for `::`: Envoy's prefix for a listener's stats. */
export function listenerStatPrefix(host: string, port: number): string {
  const address = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `listener.${sanitizeStatName(`${address}:${port}`)}.`;
}

/** `cluster.<name>.`: Envoy's prefix for a cluster's stats. */
export function clusterStatPrefix(clusterName: string): string {
  return `cluster.${sanitizeStatName(clusterName)}.`;
}

/** `http.<stat_prefix>.`: Envoy's prefix for an HTTP connection manager's stats. */
export function httpStatPrefix(statPrefix: string): string {
  return `http.${statPrefix}.`;
}

// Circuit breakers of one cluster and routing priority (Envoy's ResourceManagerImpl): counters of open
// connections, pending requests (waiting for a connection), active requests and active retries, each with a
// limit from the cluster's thresholds (Envoy's defaults 1024 / 1024 / 1024 / 3). `tryAcquire` takes one unit
// or, at the limit, counts the overflow under Envoy's stat name and refuses:
//   connections      → upstream_cx_overflow          (the request then waits as pending; it is not failed)
//   pendingRequests  → upstream_rq_pending_overflow
//   requests         → upstream_rq_pending_overflow  (Envoy's connection pool counts max_requests this way)
//   retries          → upstream_rq_retry_overflow
// With a retry budget the retry limit is budget_percent of active + pending requests, never below
// min_retry_concurrency. Gauges `circuit_breakers.<priority>.{cx,rq_pending,rq,rq_retry}_open` are 1 while a
// resource is at its limit, and with track_remaining `remaining_{cx,pending,rq,retries}` follow what is left.
import type { ClusterSpec, Thresholds } from './compile.ts';
import { noStats, type StatsSink } from './stats.ts';

export type ResourceKind = 'connections' | 'pendingRequests' | 'requests' | 'retries';
export type RoutingPriority = 'default' | 'high';

const KINDS: readonly ResourceKind[] = ['connections', 'pendingRequests', 'requests', 'retries'];

const OVERFLOW_STAT: Record<ResourceKind, string> = {
  connections: 'upstream_cx_overflow',
  pendingRequests: 'upstream_rq_pending_overflow',
  requests: 'upstream_rq_pending_overflow',
  retries: 'upstream_rq_retry_overflow',
};
const OPEN_GAUGE: Record<ResourceKind, string> = { connections: 'cx_open', pendingRequests: 'rq_pending_open', requests: 'rq_open', retries: 'rq_retry_open' };
const REMAINING_GAUGE: Record<ResourceKind, string> = { connections: 'remaining_cx', pendingRequests: 'remaining_pending', requests: 'remaining_rq', retries: 'remaining_retries' };

export class CircuitBreaker {
  readonly priority: RoutingPriority;
  readonly thresholds: Thresholds;
  readonly #stats: StatsSink;
  readonly #count: Record<ResourceKind, number> = { connections: 0, pendingRequests: 0, requests: 0, retries: 0 };
  readonly #open: Record<ResourceKind, number> = { connections: 0, pendingRequests: 0, requests: 0, retries: 0 };
  readonly #remaining: Record<ResourceKind, number> = { connections: 0, pendingRequests: 0, requests: 0, retries: 0 };

  constructor(thresholds: Thresholds, options: { readonly stats?: StatsSink; readonly priority?: RoutingPriority } = {}) {
    this.thresholds = thresholds;
    this.priority = options.priority ?? 'default';
    this.#stats = options.stats ?? noStats;
    this.#publish();
  }

  /** The limit now (for retries under a budget it moves with the request counts). */
  max(kind: ResourceKind): number {
    const t = this.thresholds;
    switch (kind) {
      case 'connections': return t.maxConnections;
      case 'pendingRequests': return t.maxPendingRequests;
      case 'requests': return t.maxRequests;
      case 'retries': {
        if (!t.retryBudget) return t.maxRetries;
        const active = this.#count.requests + this.#count.pendingRequests;
        return Math.max(Math.floor((t.retryBudget.budgetPercent / 100) * active), t.retryBudget.minRetryConcurrency);
      }
    }
  }

  count(kind: ResourceKind): number {
    return this.#count[kind];
  }

  canCreate(kind: ResourceKind): boolean {
    return this.#count[kind] < this.max(kind);
  }

  /** Takes one unit of `kind`; false (and the overflow stat counted) when the limit is reached. */
  tryAcquire(kind: ResourceKind): boolean {
    if (!this.canCreate(kind)) {
      this.#stats(OVERFLOW_STAT[kind], 1);
      return false;
    }
    this.#count[kind]++;
    this.#publish();
    return true;
  }

  /** Gives back `n` units of `kind` taken with tryAcquire. */
  release(kind: ResourceKind, n = 1): void {
    this.#count[kind] = Math.max(0, this.#count[kind] - n);
    this.#publish();
  }

  #publish(): void {
    const prefix = `circuit_breakers.${this.priority}.`;
    for (const kind of KINDS) {
      const open = this.canCreate(kind) ? 0 : 1;
      if (open !== this.#open[kind]) this.#stats(prefix + OPEN_GAUGE[kind], open - this.#open[kind]);
      this.#open[kind] = open;
      if (this.thresholds.trackRemaining) {
        const remaining = Math.max(0, this.max(kind) - this.#count[kind]);
        if (remaining !== this.#remaining[kind]) this.#stats(prefix + REMAINING_GAUGE[kind], remaining - this.#remaining[kind]);
        this.#remaining[kind] = remaining;
      }
    }
  }
}

/** The circuit breakers of a cluster, one per routing priority (each with its own counters, as in Envoy). */
export function circuitBreakers(spec: ClusterSpec, stats: StatsSink = noStats): Record<RoutingPriority, CircuitBreaker> {
  return {
    default: new CircuitBreaker(spec.circuitBreakers.default, { stats, priority: 'default' }),
    high: new CircuitBreaker(spec.circuitBreakers.high, { stats, priority: 'high' }),
  };
}

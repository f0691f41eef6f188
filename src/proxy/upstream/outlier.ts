// Outlier detection for one cluster, after Envoy's source/common/upstream/outlier_detection_impl.cc:
//
// - Consecutive errors eject a host the moment the count is reached: consecutive_5xx (default 5) of any 5xx,
//   consecutive_gateway_failure (502/503/504; detected but not enforced by default: enforcing 0 %) and, with
//   split_external_local_origin_errors, consecutive_local_origin_failure. Without the split (the default),
//   connection failures count as 503 and timeouts as 504, so they feed the 5xx and gateway counters.
// - Every interval (default 10 s): ejected hosts whose time is up return (the counters are reset), then the
//   success-rate and failure-percentage detectors look at the interval's requests (success rate: enforcing
//   100 % but only with ≥ 5 hosts of ≥ 100 requests each; failure percentage: enforcing 0 % by default), then
//   hosts that have stayed in for an interval since their return lose one step of ejection backoff.
// - An ejection lasts min(base_ejection_time × backoff, max_ejection_time) + jitter, where the backoff counts
//   ejections not yet worked off (so it grows with repeated ejections and decays while the host behaves).
// - At most max_ejection_percent (default 10 %) of the hosts are ejected at once: (ejected + 1) / hosts must
//   not exceed it, else `ejections_overflow`. Current Envoy ejects at least one host regardless only when
//   always_eject_one_host is set (older releases always did); keymesh follows current Envoy.
// - A passing active health check returns an ejected host (successful_active_health_check_uneject_host, on by
//   default).
// Statistics use Envoy's names under `outlier_detection.`.
import type { OutlierDetectionSpec } from './compile.ts';
import type { Host, HostSet, MembershipChange } from './hosts.ts';
import { noStats, type StatsSink } from './stats.ts';
import { systemTimers, type Timer, type Timers } from './timers.ts';

/** Envoy's Outlier::Result: what happened on a connection or a non-HTTP exchange with a host. */
export type OutlierResult =
  | 'LOCAL_ORIGIN_CONNECT_FAILED'
  | 'LOCAL_ORIGIN_TIMEOUT'
  | 'LOCAL_ORIGIN_CONNECT_SUCCESS'
  | 'LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL'
  | 'EXT_ORIGIN_REQUEST_FAILED'
  | 'EXT_ORIGIN_REQUEST_SUCCESS';

export type EjectionType =
  | 'consecutive_5xx'
  | 'consecutive_gateway_failure'
  | 'consecutive_local_origin_failure'
  | 'success_rate'
  | 'local_origin_success_rate'
  | 'failure_percentage'
  | 'local_origin_failure_percentage';

/** Something the detector can ask about health checks (HealthChecker implements it). */
export interface HealthCheckEvents {
  onCheckComplete(listener: (host: Host, healthy: boolean) => void): () => void;
}

export interface OutlierDetectorOptions {
  readonly timers?: Timers;
  /** A number in [0, 1) for enforcement percentages and ejection jitter; Math.random by default. */
  readonly random?: () => number;
  readonly stats?: StatsSink;
  /** The cluster's active health checker, for successful_active_health_check_uneject_host. */
  readonly healthChecks?: HealthCheckEvents;
}

interface Bucket {
  success: number;
  total: number;
}

class SuccessRateMonitor {
  current: Bucket = { success: 0, total: 0 };
  backup: Bucket = { success: 0, total: 0 };
  /** Swap buckets at an interval: the one written so far becomes the one read. */
  rotate(): void {
    this.backup = this.current;
    this.current = { success: 0, total: 0 };
  }
  /** Success rate (percent) and volume of the last interval; undefined without requests. */
  rateAndVolume(): { rate: number; volume: number } | undefined {
    if (this.backup.total === 0) return undefined;
    return { rate: (this.backup.success * 100) / this.backup.total, volume: this.backup.total };
  }
}

interface Monitor {
  consecutive5xx: number;
  consecutiveGatewayFailure: number;
  consecutiveLocalOriginFailure: number;
  numEjections: number;
  backoff: number;
  jitterMs: number;
  lastEjection: number | undefined;
  lastUnejection: number | undefined;
  readonly external: SuccessRateMonitor;
  readonly local: SuccessRateMonitor;
}

export class OutlierDetector {
  readonly spec: OutlierDetectionSpec;
  readonly #timers: Timers;
  readonly #random: () => number;
  readonly #stats: StatsSink;
  readonly #monitors = new Map<Host, Monitor>();
  readonly #unsubscribe: (() => void)[] = [];
  #active = 0;
  #timer: Timer | undefined;
  #started = false;

  constructor(hosts: HostSet, spec: OutlierDetectionSpec, options: OutlierDetectorOptions = {}) {
    this.spec = spec;
    this.#timers = options.timers ?? systemTimers;
    this.#random = options.random ?? Math.random;
    this.#stats = options.stats ?? noStats;
    for (const h of hosts.hosts) this.#addMonitor(h);
    this.#unsubscribe.push(hosts.onMembershipChange((c) => this.#membership(c)));
    if (spec.successfulActiveHealthCheckUnejectHost && options.healthChecks) {
      this.#unsubscribe.push(options.healthChecks.onCheckComplete((host, healthy) => {
        if (healthy && !host.failedActiveHealthCheck && host.ejected && this.#monitors.has(host)) this.#uneject(host);
      }));
    }
  }

  /** Starts the interval sweeps. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#arm();
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    for (const u of this.#unsubscribe) u();
    this.#unsubscribe.length = 0;
  }

  /** Hosts ejected now. */
  get ejectionsActive(): number {
    return this.#active;
  }

  /** How many times the host has been ejected. */
  ejections(host: Host): number {
    return this.#monitors.get(host)?.numEjections ?? 0;
  }

  /** The HTTP status of a response from the host (what Envoy's router passes to putHttpResponseCode). */
  reportHttpStatus(host: Host, status: number): void {
    const m = this.#monitors.get(host);
    if (!m) return;
    m.external.current.total++;
    if (status >= 500 && status < 600) {
      if (status >= 502 && status <= 504) {
        if (++m.consecutiveGatewayFailure === this.spec.consecutiveGatewayFailure) this.#consecutive(host, 'consecutive_gateway_failure');
      } else {
        m.consecutiveGatewayFailure = 0;
      }
      if (++m.consecutive5xx === this.spec.consecutive5xx) this.#consecutive(host, 'consecutive_5xx');
    } else {
      m.external.current.success++;
      m.consecutive5xx = 0;
      m.consecutiveGatewayFailure = 0;
    }
  }

  /**
   * A connection-level result (Envoy's putResult). Without split_external_local_origin_errors a result maps to
   * a status (`status` when given, else: connect failure 503, timeout 504, request failure 500, success 200;
   * a plain connect success counts for nothing, since the HTTP response that follows is reported too).
   */
  reportResult(host: Host, result: OutlierResult, status?: number): void {
    const m = this.#monitors.get(host);
    if (!m) return;
    if (!this.spec.splitExternalLocalOriginErrors) {
      if (status !== undefined) return this.reportHttpStatus(host, status);
      const mapped: Record<OutlierResult, number | undefined> = {
        LOCAL_ORIGIN_CONNECT_FAILED: 503,
        LOCAL_ORIGIN_TIMEOUT: 504,
        LOCAL_ORIGIN_CONNECT_SUCCESS: undefined,
        LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL: 200,
        EXT_ORIGIN_REQUEST_FAILED: 500,
        EXT_ORIGIN_REQUEST_SUCCESS: 200,
      };
      const code = mapped[result];
      if (code !== undefined) this.reportHttpStatus(host, code);
      return;
    }
    switch (result) {
      case 'LOCAL_ORIGIN_CONNECT_SUCCESS':
      case 'LOCAL_ORIGIN_CONNECT_SUCCESS_FINAL':
        return this.#localOriginSuccess(m);
      case 'LOCAL_ORIGIN_TIMEOUT':
      case 'LOCAL_ORIGIN_CONNECT_FAILED':
        m.local.current.total++;
        if (++m.consecutiveLocalOriginFailure === this.spec.consecutiveLocalOriginFailure) this.#consecutive(host, 'consecutive_local_origin_failure');
        return;
      case 'EXT_ORIGIN_REQUEST_FAILED':
        return this.reportHttpStatus(host, 503);
      case 'EXT_ORIGIN_REQUEST_SUCCESS':
        this.reportHttpStatus(host, 200);
        return this.#localOriginSuccess(m);
    }
  }

  #localOriginSuccess(m: Monitor): void {
    m.local.current.total++;
    m.local.current.success++;
    m.consecutiveLocalOriginFailure = 0;
  }

  // --- Membership ---

  #addMonitor(host: Host): void {
    this.#monitors.set(host, {
      consecutive5xx: 0, consecutiveGatewayFailure: 0, consecutiveLocalOriginFailure: 0, numEjections: 0, backoff: 0, jitterMs: 0,
      lastEjection: undefined, lastUnejection: undefined, external: new SuccessRateMonitor(), local: new SuccessRateMonitor(),
    });
  }

  #membership(change: MembershipChange): void {
    for (const h of change.added) this.#addMonitor(h);
    for (const h of change.removed) {
      if (!this.#monitors.has(h)) continue;
      if (h.ejected) this.#gauge(-1);
      this.#monitors.delete(h);
    }
  }

  // --- Ejection ---

  #gauge(delta: number): void {
    this.#active += delta;
    this.#stats('outlier_detection.ejections_active', delta);
  }

  #consecutive(host: Host, type: EjectionType): void {
    const m = this.#monitors.get(host);
    if (!m || host.ejected) return;
    this.#stats(`outlier_detection.ejections_detected_${type}`, 1);
    this.#eject(host, type);
    // Reset the counter so that a new bout is needed, even without a success in between.
    if (type === 'consecutive_5xx') {
      this.#stats('outlier_detection.ejections_consecutive_5xx', 1); // deprecated, kept as Envoy does
      m.consecutive5xx = 0;
    } else if (type === 'consecutive_gateway_failure') {
      m.consecutiveGatewayFailure = 0;
    } else {
      m.consecutiveLocalOriginFailure = 0;
    }
  }

  #enforcing(type: EjectionType): number {
    const s = this.spec;
    switch (type) {
      case 'consecutive_5xx': return s.enforcingConsecutive5xx;
      case 'consecutive_gateway_failure': return s.enforcingConsecutiveGatewayFailure;
      case 'consecutive_local_origin_failure': return s.enforcingConsecutiveLocalOriginFailure;
      case 'success_rate': return s.enforcingSuccessRate;
      case 'local_origin_success_rate': return s.enforcingLocalOriginSuccessRate;
      case 'failure_percentage': return s.enforcingFailurePercentage;
      case 'local_origin_failure_percentage': return s.enforcingFailurePercentageLocalOrigin;
    }
  }

  /** Envoy's runtime featureEnabled(percent): random % 100 < percent. */
  #chance(percent: number): boolean {
    if (percent >= 100) return true;
    if (percent <= 0) return false;
    return Math.floor(this.#random() * 100) < percent;
  }

  #eject(host: Host, type: EjectionType): void {
    const m = this.#monitors.get(host);
    if (!m || host.ejected) return;
    const maxPercent = Math.min(100, this.spec.maxEjectionPercent);
    const ejectedPercent = (100 * (this.#active + 1)) / this.#monitors.size;
    const allowed = ejectedPercent <= maxPercent || (this.spec.alwaysEjectOneHost && this.#active === 0);
    if (!allowed) {
      this.#stats('outlier_detection.ejections_overflow', 1);
      return;
    }
    if (type === 'consecutive_5xx' || type === 'success_rate') this.#stats('outlier_detection.ejections_total', 1); // deprecated
    if (!this.#chance(this.#enforcing(type))) return;
    this.#gauge(1);
    this.#stats('outlier_detection.ejections_enforced_total', 1);
    this.#stats(`outlier_detection.ejections_enforced_${type}`, 1);
    m.numEjections++;
    m.lastEjection = this.#timers.now();
    const jitterMax = this.spec.maxEjectionTimeJitterMs;
    m.jitterMs = jitterMax > 0 ? Math.floor(this.#random() * (jitterMax + 1)) : 0;
    if (m.backoff * this.spec.baseEjectionTimeMs < this.spec.maxEjectionTimeMs + this.spec.baseEjectionTimeMs) m.backoff++;
    host.setEjected(true);
  }

  #uneject(host: Host): void {
    const m = this.#monitors.get(host);
    if (!m || !host.ejected) return;
    this.#gauge(-1);
    m.consecutive5xx = 0;
    m.consecutiveGatewayFailure = 0;
    m.consecutiveLocalOriginFailure = 0;
    m.lastUnejection = this.#timers.now();
    host.setEjected(false);
  }

  /** How long the host's current ejection lasts. */
  ejectionTimeMs(host: Host): number {
    const m = this.#monitors.get(host);
    if (!m) return 0;
    return Math.min(this.spec.baseEjectionTimeMs * m.backoff, this.spec.maxEjectionTimeMs) + m.jitterMs;
  }

  // --- The interval sweep ---

  #arm(): void {
    this.#timer = this.#timers.after(this.spec.intervalMs, () => this.#sweep());
  }

  #sweep(): void {
    const now = this.#timers.now();
    for (const [host, m] of this.#monitors) {
      if (host.ejected && m.lastEjection !== undefined && this.ejectionTimeMs(host) <= now - m.lastEjection) this.#uneject(host);
      m.external.rotate();
      m.local.rotate();
    }
    this.#successRate('external');
    this.#successRate('local');
    // A host that has stayed in for an interval since its return works off one step of backoff.
    for (const [host, m] of this.#monitors) {
      if (!host.ejected && m.lastUnejection !== undefined && now - m.lastUnejection >= this.spec.intervalMs && m.backoff > 0) m.backoff--;
    }
    this.#arm();
  }

  #successRate(origin: 'external' | 'local'): void {
    const s = this.spec;
    const n = this.#monitors.size;
    if (n < s.successRateMinimumHosts && n < s.failurePercentageMinimumHosts) return;
    const rates: { host: Host; rate: number }[] = [];
    const percentages: { host: Host; rate: number }[] = [];
    let sum = 0;
    for (const [host, m] of this.#monitors) {
      if (host.ejected) continue;
      const rv = m[origin].rateAndVolume();
      if (!rv) continue;
      if (rv.volume >= s.successRateRequestVolume) {
        rates.push({ host, rate: rv.rate });
        sum += rv.rate;
      }
      if (rv.volume >= s.failurePercentageRequestVolume) percentages.push({ host, rate: rv.rate });
    }
    if (rates.length > 0 && rates.length >= s.successRateMinimumHosts) {
      // mean − stdev × factor (successRateEjectionThreshold).
      const mean = sum / rates.length;
      const variance = rates.reduce((v, r) => v + (r.rate - mean) ** 2, 0) / rates.length;
      const threshold = mean - (s.successRateStdevFactor / 1000) * Math.sqrt(variance);
      for (const r of rates) {
        if (r.rate < threshold) {
          this.#stats('outlier_detection.ejections_success_rate', 1); // deprecated
          const type: EjectionType = origin === 'external' ? 'success_rate' : 'local_origin_success_rate';
          this.#stats(`outlier_detection.ejections_detected_${type}`, 1);
          this.#eject(r.host, type);
        }
      }
    }
    if (percentages.length > 0 && percentages.length >= s.failurePercentageMinimumHosts) {
      for (const r of percentages) {
        if (100 - r.rate >= s.failurePercentageThreshold) {
          const type: EjectionType = origin === 'external' ? 'failure_percentage' : 'local_origin_failure_percentage';
          this.#stats(`outlier_detection.ejections_detected_${type}`, 1);
          this.#eject(r.host, type);
        }
      }
    }
  }
}

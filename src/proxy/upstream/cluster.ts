// One upstream cluster as the data plane runs it: its hosts, and the health checker, outlier detector and
// circuit breakers its spec asks for, wired to each other the way Envoy wires them (a passing health check
// returns an ejected host; health checks slow down until the cluster carries traffic).
import { CircuitBreaker, circuitBreakers, type RoutingPriority } from './circuit.ts';
import type { ClusterSpec } from './compile.ts';
import type { Resolver } from './dns.ts';
import { HealthChecker, type Dial } from './health.ts';
import { HostSet } from './hosts.ts';
import { OutlierDetector } from './outlier.ts';
import { noStats, type StatsSink } from './stats.ts';
import type { Timers } from './timers.ts';

export interface UpstreamClusterOptions {
  readonly timers?: Timers;
  readonly resolver?: Resolver;
  readonly random?: () => number;
  /** Receives every statistic of the cluster, with names relative to `cluster.<observabilityName>.`. */
  readonly stats?: StatsSink;
  /** How health checks connect (a TLS dialer for clusters with a TLS transport socket). */
  readonly dial?: Dial;
  /** Whether `dial` makes TLS connections. */
  readonly secure?: boolean;
}

export class UpstreamCluster {
  readonly spec: ClusterSpec;
  readonly hosts: HostSet;
  readonly healthChecker: HealthChecker | undefined;
  readonly outlierDetector: OutlierDetector | undefined;
  readonly circuitBreakers: Readonly<Record<RoutingPriority, CircuitBreaker>>;

  constructor(spec: ClusterSpec, options: UpstreamClusterOptions = {}) {
    this.spec = spec;
    const stats = options.stats ?? noStats;
    const common = { ...(options.timers ? { timers: options.timers } : {}), ...(options.random ? { random: options.random } : {}), stats };
    this.hosts = new HostSet(spec, { ...common, ...(options.resolver ? { resolver: options.resolver } : {}) });
    this.healthChecker = spec.healthCheck
      ? new HealthChecker(this.hosts, spec.healthCheck, { ...common, ...(options.dial ? { dial: options.dial } : {}), ...(options.secure !== undefined ? { secure: options.secure } : {}) })
      : undefined;
    this.outlierDetector = spec.outlierDetection
      ? new OutlierDetector(this.hosts, spec.outlierDetection, { ...common, ...(this.healthChecker ? { healthChecks: this.healthChecker } : {}) })
      : undefined;
    this.circuitBreakers = circuitBreakers(spec, stats);
  }

  start(): void {
    this.hosts.start();
    this.healthChecker?.start();
    this.outlierDetector?.start();
  }

  stop(): void {
    this.outlierDetector?.stop();
    this.healthChecker?.stop();
    this.hosts.stop();
  }

  /** Warm: the first membership is known and, with health checking, every initial host was checked once. */
  get ready(): Promise<void> {
    return this.hosts.ready.then(() => this.healthChecker?.ready);
  }
}

// The live hosts of one cluster and the choice of a host per request, as Envoy does it (single priority):
//
// - Membership. STATIC hosts come from the cluster; EDS hosts from `setEndpoints` (each ClusterLoadAssignment);
//   STRICT_DNS hosts are every address of every name, re-resolved every dns_refresh_rate (5 s by default);
//   LOGICAL_DNS has one host whose address is the first one of the latest resolution (connections made later
//   go to the new address; existing ones stay); ORIGINAL_DST hosts are made on demand from the address a
//   connection was sent to and dropped after a cleanup interval without use. An update keeps the Host object
//   (and so its health, ejection and traffic state) of every address:port that stays. With active health
//   checking, a new host starts unhealthy until its first check passes, and a host that service discovery
//   removes while it still passes health checks stays until it fails one (unless ignore_health_on_host_removal),
//   as in Envoy's BaseDynamicClusterImpl::updateDynamicHostList.
// - Health of a host: unhealthy when it fails active health checking, is ejected by outlier detection or EDS
//   says UNHEALTHY/DRAINING/TIMEOUT; degraded when EDS (or a health check) says DEGRADED; healthy otherwise.
// - Choice (Envoy's LoadBalancerBase + RoundRobinLoadBalancer): when healthy + degraded hosts are fewer than the
//   healthy panic threshold (50 % by default, 0 disables) of all hosts, the cluster is in panic and any host may
//   be chosen. Otherwise healthy and degraded hosts share the load by availability with the overprovisioning
//   factor 1.4 (so degraded hosts get traffic only when healthy ones are under 1/1.4 ≈ 71 %). Within the chosen
//   list: plain round robin when all weights are equal, else earliest-deadline-first by weight; each list starts
//   at a random offset, as Envoy's does.
import { isIP } from 'node:net';
import { InternalError } from '../../errors/index.ts';
import type { ClusterSpec, Endpoint, EndpointHealthCheck, EndpointHealthStatus } from './compile.ts';
import { resolve, systemResolver, type Resolver } from './dns.ts';
import { noStats, type StatsSink } from './stats.ts';
import { systemTimers, type Timer, type Timers } from './timers.ts';

export interface HostAddress {
  readonly address: string;
  readonly port: number;
}

/** `address:port`, with brackets around an IPv6 address. */
export function hostKey(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

export type CoarseHealth = 'healthy' | 'degraded' | 'unhealthy';

interface HostDescription {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly healthStatus: EndpointHealthStatus;
  readonly hostname?: string;
  readonly healthCheck?: EndpointHealthCheck;
}

/**
 * One upstream host and its state. The health and ejection flags are set by the health checker and the outlier
 * detector; the traffic counters by whoever opens connections and sends requests (the connection pool).
 */
export class Host {
  /** address:port as first configured (for a LOGICAL_DNS host: the DNS name and port). */
  readonly key: string;
  readonly port: number;
  #address: string;
  #weight: number;
  #healthStatus: EndpointHealthStatus;
  #hostname: string | undefined;
  #healthCheck: EndpointHealthCheck | undefined;
  #failedActiveHc = false;
  #degradedActiveHc = false;
  #pendingActiveHc = false;
  #ejected = false;
  #pendingRemoval = false;
  #activeRequests = 0;
  #activeConnections = 0;
  #used = false;
  readonly #changed: (host: Host) => void;
  readonly #traffic: () => void;

  constructor(d: HostDescription, changed: (host: Host) => void, traffic: () => void, key?: string) {
    this.key = key ?? hostKey(d.address, d.port);
    this.port = d.port;
    this.#address = d.address;
    this.#weight = d.weight;
    this.#healthStatus = d.healthStatus;
    this.#hostname = d.hostname;
    this.#healthCheck = d.healthCheck;
    this.#changed = changed;
    this.#traffic = traffic;
  }

  /** The IP address to connect to (for a LOGICAL_DNS host, the first address of the latest resolution). */
  get address(): string {
    return this.#address;
  }
  get weight(): number {
    return this.#weight;
  }
  /** The endpoint's hostname; for DNS clusters the name that was resolved. */
  get hostname(): string | undefined {
    return this.#hostname;
  }
  get healthStatus(): EndpointHealthStatus {
    return this.#healthStatus;
  }
  /** Where active health checks go: the endpoint's health_check_config address/port, else the host's. */
  get healthCheckAddress(): HostAddress {
    return { address: this.#healthCheck?.address ?? this.#address, port: this.#healthCheck?.port ?? this.port };
  }
  get healthCheckHostname(): string | undefined {
    return this.#healthCheck?.hostname;
  }
  get activeHealthCheckDisabled(): boolean {
    return this.#healthCheck?.disabled === true;
  }

  get failedActiveHealthCheck(): boolean {
    return this.#failedActiveHc;
  }
  get degradedActiveHealthCheck(): boolean {
    return this.#degradedActiveHc;
  }
  /** Not yet health checked while the cluster ignores new hosts until their first check. */
  get excluded(): boolean {
    return this.#pendingActiveHc;
  }
  get ejected(): boolean {
    return this.#ejected;
  }
  /** Removed by service discovery but kept while it passes active health checks. */
  get pendingRemoval(): boolean {
    return this.#pendingRemoval;
  }
  get edsUnhealthy(): boolean {
    return this.#healthStatus === 'UNHEALTHY' || this.#healthStatus === 'DRAINING' || this.#healthStatus === 'TIMEOUT';
  }

  get health(): CoarseHealth {
    if (this.#failedActiveHc || this.#ejected || this.edsUnhealthy) return 'unhealthy';
    if (this.#degradedActiveHc || this.#healthStatus === 'DEGRADED') return 'degraded';
    return 'healthy';
  }

  get activeRequests(): number {
    return this.#activeRequests;
  }
  get activeConnections(): number {
    return this.#activeConnections;
  }

  // --- Set by the health checker and the outlier detector ---

  setActiveHealth(failed: boolean, degraded = this.#degradedActiveHc): void {
    const pending = this.#pendingActiveHc;
    if (failed === this.#failedActiveHc && degraded === this.#degradedActiveHc && !pending) return;
    this.#failedActiveHc = failed;
    this.#degradedActiveHc = degraded;
    this.#pendingActiveHc = false;
    this.#changed(this);
  }

  setEjected(ejected: boolean): void {
    if (ejected === this.#ejected) return;
    this.#ejected = ejected;
    this.#changed(this);
  }

  // --- Traffic, reported by the connection pool ---

  connectionOpened(): void {
    this.#activeConnections++;
    this.#used = true;
    this.#traffic();
  }
  connectionClosed(): void {
    if (this.#activeConnections > 0) this.#activeConnections--;
  }
  requestStarted(): void {
    this.#activeRequests++;
    this.#used = true;
  }
  requestFinished(): void {
    if (this.#activeRequests > 0) this.#activeRequests--;
  }

  // --- For HostSet ---

  /** Applies a new description of the same address:port (weight, EDS health, hostname). */
  refresh(d: HostDescription): boolean {
    const health = d.healthStatus !== this.#healthStatus;
    const changed = health || d.weight !== this.#weight || d.hostname !== this.#hostname || this.#pendingRemoval;
    this.#weight = d.weight;
    this.#healthStatus = d.healthStatus;
    this.#hostname = d.hostname;
    this.#healthCheck = d.healthCheck;
    this.#pendingRemoval = false;
    return changed;
  }
  markPendingRemoval(): void {
    this.#pendingRemoval = true;
  }
  markNew(healthChecked: boolean, excludeUntilChecked: boolean): void {
    if (!healthChecked || this.activeHealthCheckDisabled) return;
    this.#failedActiveHc = true;
    this.#pendingActiveHc = excludeUntilChecked;
  }
  setAddress(address: string): void {
    this.#address = address;
  }
  markUsed(): void {
    this.#used = true;
  }
  /** Whether the host was used since the last call (ORIGINAL_DST cleanup); resets the mark. */
  takeUsed(): boolean {
    const used = this.#used || this.#activeConnections > 0 || this.#activeRequests > 0;
    this.#used = false;
    return used;
  }
}

export interface HostSetOptions {
  readonly timers?: Timers;
  readonly resolver?: Resolver;
  /** A number in [0, 1); Math.random by default. */
  readonly random?: () => number;
  readonly stats?: StatsSink;
}

export interface MembershipChange {
  readonly added: readonly Host[];
  readonly removed: readonly Host[];
}

export interface PickContext {
  /** ORIGINAL_DST: where the downstream connection was going. */
  readonly originalDst?: HostAddress;
}

type Source = 'healthy' | 'degraded' | 'all';

interface RoundRobinState {
  index: number;
  version: number;
  signature: string;
  edf: { host: Host; deadline: number; order: number }[] | undefined;
  time: number;
  order: number;
}

/** Envoy's overprovisioning factor (ClusterLoadAssignment.Policy default), in percent. */
const OVERPROVISIONING = 140;

interface DnsTarget {
  readonly endpoint: Endpoint;
  addresses: readonly string[];
  failures: number;
  timer?: Timer;
}

export class HostSet {
  readonly spec: ClusterSpec;
  readonly #timers: Timers;
  readonly #resolver: Resolver;
  readonly #random: () => number;
  readonly #stats: StatsSink;
  #hosts: Host[] = [];
  #version = 0;
  #trafficSeen = false;
  #started = false;
  #stopped = false;
  readonly #rr = new Map<Source, RoundRobinState>();
  readonly #membershipListeners = new Set<(change: MembershipChange) => void>();
  readonly #healthListeners = new Set<(host: Host) => void>();
  readonly #reported = { total: 0, healthy: 0, degraded: 0, excluded: 0 };
  readonly #ready: Promise<void>;
  #markReady!: () => void;
  #isReady = false;
  readonly #dnsTargets: DnsTarget[] = [];
  #cleanupTimer: Timer | undefined;

  constructor(spec: ClusterSpec, options: HostSetOptions = {}) {
    this.spec = spec;
    this.#timers = options.timers ?? systemTimers;
    this.#resolver = options.resolver ?? systemResolver;
    this.#random = options.random ?? Math.random;
    this.#stats = options.stats ?? noStats;
    this.#ready = new Promise((r) => { this.#markReady = r; });
    if (spec.type === 'STATIC') {
      this.#apply(spec.endpoints);
      this.#readyNow();
    } else if (spec.type === 'ORIGINAL_DST') {
      this.#readyNow();
    }
  }

  /** The current hosts, in load-balancing order. */
  get hosts(): readonly Host[] {
    return this.#hosts;
  }

  /**
   * Resolves once the cluster has its first membership (Envoy's cluster warming): at once for STATIC and
   * ORIGINAL_DST, after the first load assignment for EDS, after the first resolution (successful or not) for DNS.
   */
  get ready(): Promise<void> {
    return this.#ready;
  }

  /** Whether a connection was ever opened to a host of this cluster (health checks use the no-traffic interval until then). */
  get trafficSeen(): boolean {
    return this.#trafficSeen;
  }

  /** Increases on every change of membership, weights or health; for callers that cache per-host decisions. */
  get version(): number {
    return this.#version;
  }

  /** Starts what runs in the background: DNS resolution (STRICT_DNS, LOGICAL_DNS), ORIGINAL_DST cleanup. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    if (this.spec.type === 'STRICT_DNS' || this.spec.type === 'LOGICAL_DNS') {
      for (const endpoint of this.spec.endpoints) {
        const target: DnsTarget = { endpoint, addresses: [], failures: 0 };
        this.#dnsTargets.push(target);
        void this.#resolveTarget(target);
      }
      if (this.spec.endpoints.length === 0) this.#readyNow();
    } else if (this.spec.type === 'ORIGINAL_DST') {
      this.#scheduleCleanup();
    }
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#dnsTargets) t.timer?.cancel();
    this.#cleanupTimer?.cancel();
  }

  /** EDS: the endpoints of a new ClusterLoadAssignment. */
  setEndpoints(endpoints: readonly Endpoint[]): MembershipChange {
    if (this.spec.type !== 'EDS') throw new InternalError(`cluster ${this.spec.name} is ${this.spec.type}: only EDS clusters take load assignments`);
    const change = this.#apply(endpoints);
    this.#readyNow();
    return change;
  }

  onMembershipChange(listener: (change: MembershipChange) => void): () => void {
    this.#membershipListeners.add(listener);
    return () => this.#membershipListeners.delete(listener);
  }

  /** A host's health changed (health check, ejection, EDS health status): for close_connections_on_host_health_failure. */
  onHostHealthChange(listener: (host: Host) => void): () => void {
    this.#healthListeners.add(listener);
    return () => this.#healthListeners.delete(listener);
  }

  /**
   * pick() for a caller that falls back to pick() when this finds nothing it can use (the idle-connection fast
   * path, an HTTP/2 pool choosing a session): upstream_cx_none_healthy is counted there, once per request. Never a
   * host for ORIGINAL_DST, whose host is the request's.
   */
  choose(): Host | undefined {
    return this.spec.type === 'ORIGINAL_DST' ? undefined : this.#choose();
  }

  /** The host for the next request or connection; undefined when there is none (upstream_cx_none_healthy). */
  pick(context: PickContext = {}): Host | undefined {
    if (this.spec.type === 'ORIGINAL_DST') return this.#pickOriginalDst(context.originalDst);
    const host = this.#choose();
    if (!host) this.#stats('upstream_cx_none_healthy', 1);
    return host;
  }

  // --- Membership ---

  #apply(endpoints: readonly Endpoint[]): MembershipChange {
    const healthChecked = this.spec.healthCheck !== undefined;
    const current = new Map(this.#hosts.map((h) => [h.key, h]));
    const next: Host[] = [];
    const added: Host[] = [];
    const seen = new Set<string>();
    let changed = false;
    const healthChanged: Host[] = [];
    for (const e of endpoints) {
      const key = hostKey(e.address, e.port);
      if (seen.has(key)) continue;
      seen.add(key);
      const existing = current.get(key);
      if (existing) {
        current.delete(key);
        const before = existing.health;
        if (existing.refresh(e)) changed = true;
        if (existing.health !== before) healthChanged.push(existing);
        next.push(existing);
      } else {
        const host = this.#newHost(e);
        host.markNew(healthChecked, this.spec.lb.ignoreNewHostsUntilFirstHc);
        next.push(host);
        added.push(host);
      }
    }
    const removed: Host[] = [];
    for (const host of current.values()) {
      // Envoy keeps a removed host that still passes active health checks (and EDS did not mark unhealthy).
      if (healthChecked && !this.spec.ignoreHealthOnHostRemoval && !host.activeHealthCheckDisabled && !host.failedActiveHealthCheck && !host.edsUnhealthy) {
        host.markPendingRemoval();
        next.push(host);
      } else {
        removed.push(host);
      }
    }
    this.#hosts = next;
    if (added.length > 0 || removed.length > 0 || changed) this.#bump();
    for (const host of healthChanged) for (const l of this.#healthListeners) l(host);
    const change = { added, removed };
    if (added.length > 0 || removed.length > 0) this.#membershipChanged(change);
    return change;
  }

  #newHost(d: HostDescription, key?: string): Host {
    return new Host(d, (host) => this.#hostChanged(host), () => { this.#trafficSeen = true; }, key);
  }

  #hostChanged(host: Host): void {
    if (!this.#hosts.includes(host)) return;
    this.#bump();
    for (const l of this.#healthListeners) l(host);
    // A host kept only because it passed health checks goes as soon as it fails one.
    if (host.pendingRemoval && host.failedActiveHealthCheck) {
      this.#hosts = this.#hosts.filter((h) => h !== host);
      this.#bump();
      this.#membershipChanged({ added: [], removed: [host] });
    }
  }

  #membershipChanged(change: MembershipChange): void {
    this.#stats('membership_change', 1);
    for (const l of this.#membershipListeners) l(change);
  }

  /** Something about the hosts changed: invalidate load-balancing state and update the membership gauges. */
  #bump(): void {
    this.#version++;
    let healthy = 0;
    let degraded = 0;
    let excluded = 0;
    for (const h of this.#hosts) {
      if (h.excluded) excluded++;
      else if (h.health === 'healthy') healthy++;
      else if (h.health === 'degraded') degraded++;
    }
    const now = { total: this.#hosts.length, healthy, degraded, excluded };
    for (const k of ['total', 'healthy', 'degraded', 'excluded'] as const) {
      if (now[k] !== this.#reported[k]) this.#stats(`membership_${k}`, now[k] - this.#reported[k]);
      this.#reported[k] = now[k];
    }
  }

  #readyNow(): void {
    if (this.#isReady) return;
    this.#isReady = true;
    this.#markReady();
  }

  // --- DNS ---

  async #resolveTarget(target: DnsTarget): Promise<void> {
    if (this.#stopped) return;
    this.#stats('update_attempt', 1);
    let delay = this.spec.dns.refreshRateMs;
    try {
      const addresses = await resolve(this.#resolver, target.endpoint.address, this.spec.dns.lookupFamily);
      if (this.#stopped) return;
      target.failures = 0;
      this.#stats('update_success', 1);
      if (this.spec.type === 'LOGICAL_DNS') this.#applyLogical(target, addresses[0] as string);
      else this.#applyStrict(target, addresses);
    } catch {
      if (this.#stopped) return;
      this.#stats('update_failure', 1);
      target.failures++;
      const f = this.spec.dns.failureRefresh;
      if (f) {
        // Envoy's jittered exponential backoff between base_interval and max_interval.
        const ceiling = Math.min(f.maxMs, f.baseMs * (2 ** target.failures - 1));
        delay = Math.max(1, Math.floor(this.#random() * ceiling));
      }
    }
    // Envoy's DNS clusters finish initializing after the first resolution, whatever its outcome.
    this.#readyNow();
    target.timer = this.#timers.after(delay, () => void this.#resolveTarget(target));
  }

  #applyStrict(target: DnsTarget, addresses: readonly string[]): void {
    target.addresses = addresses;
    const endpoints: Endpoint[] = [];
    for (const t of this.#dnsTargets) {
      for (const address of t.addresses) {
        const { healthCheck, healthStatus, weight, port } = t.endpoint;
        endpoints.push({ address, port, weight, healthStatus, hostname: t.endpoint.address, ...(healthCheck ? { healthCheck } : {}) });
      }
    }
    this.#apply(endpoints);
  }

  #applyLogical(target: DnsTarget, address: string): void {
    const e = target.endpoint;
    const existing = this.#hosts[0];
    if (existing) {
      if (existing.address !== address) {
        existing.setAddress(address);
        this.#bump();
      }
      return;
    }
    const host = this.#newHost({ ...e, address, hostname: e.address }, hostKey(e.address, e.port));
    host.markNew(this.spec.healthCheck !== undefined, this.spec.lb.ignoreNewHostsUntilFirstHc);
    this.#hosts = [host];
    this.#bump();
    this.#membershipChanged({ added: [host], removed: [] });
  }

  // --- ORIGINAL_DST ---

  #pickOriginalDst(dst: HostAddress | undefined): Host | undefined {
    if (!dst) {
      this.#stats('upstream_cx_none_healthy', 1);
      return undefined;
    }
    const key = hostKey(dst.address, dst.port);
    let host = this.#hosts.find((h) => h.key === key);
    if (!host) {
      host = this.#newHost({ address: dst.address, port: dst.port, weight: 1, healthStatus: 'UNKNOWN' });
      this.#hosts = [...this.#hosts, host];
      this.#bump();
      this.#membershipChanged({ added: [host], removed: [] });
    }
    host.markUsed();
    return host;
  }

  #scheduleCleanup(): void {
    if (this.#stopped) return;
    this.#cleanupTimer = this.#timers.after(this.spec.cleanupIntervalMs, () => {
      const removed = this.#hosts.filter((h) => !h.takeUsed());
      if (removed.length > 0) {
        this.#hosts = this.#hosts.filter((h) => !removed.includes(h));
        this.#bump();
        this.#membershipChanged({ added: [], removed });
      }
      this.#scheduleCleanup();
    });
  }

  // --- Load balancing ---

  #choose(): Host | undefined {
    const all = this.#hosts;
    if (all.length === 0) return undefined;
    // The usual case, every host in and healthy, is the general computation's result without its partition
    // (no panic, 100 % of the load to the healthy hosts, in the same order): no arrays made per request.
    let everyHostHealthy = true;
    for (const h of all) {
      if (h.excluded || h.health !== 'healthy') {
        everyHostHealthy = false;
        break;
      }
    }
    if (everyHostHealthy) return this.#roundRobin('healthy', all);
    const healthy: Host[] = [];
    const degraded: Host[] = [];
    let total = 0;
    for (const h of all) {
      if (h.excluded) continue;
      total++;
      const health = h.health;
      if (health === 'healthy') healthy.push(h);
      else if (health === 'degraded') degraded.push(h);
    }
    const healthyPercent = total === 0 ? 0 : (100 * healthy.length) / total;
    const degradedPercent = total === 0 ? 0 : (100 * degraded.length) / total;
    if (healthyPercent + degradedPercent < this.spec.lb.healthyPanicThreshold) {
      this.#stats('lb_healthy_panic', 1);
      return this.#roundRobin('all', all);
    }
    // Availability with the overprovisioning factor, then the load split (LoadBalancerBase::recalculatePerPriorityState).
    const healthAvailability = total === 0 ? 0 : Math.min(100, Math.floor((OVERPROVISIONING * healthy.length) / total));
    const degradedAvailability = total === 0 ? 0 : Math.min(100, Math.floor((OVERPROVISIONING * degraded.length) / total));
    const normalized = Math.min(100, healthAvailability + degradedAvailability);
    if (normalized === 0) return undefined;
    let healthyLoad = Math.min(100, Math.floor((healthAvailability * 100) / normalized));
    let degradedLoad = Math.min(100 - healthyLoad, Math.floor((degradedAvailability * 100) / normalized));
    const rest = 100 - healthyLoad - degradedLoad;
    if (healthAvailability > 0) healthyLoad += rest;
    else degradedLoad += rest;
    if (degradedLoad === 0) return this.#roundRobin('healthy', healthy);
    if (healthyLoad === 0) return this.#roundRobin('degraded', degraded);
    return Math.floor(this.#random() * 100) < healthyLoad ? this.#roundRobin('healthy', healthy) : this.#roundRobin('degraded', degraded);
  }

  #roundRobin(source: Source, hosts: readonly Host[]): Host | undefined {
    if (hosts.length === 0) return undefined;
    let state = this.#rr.get(source);
    if (!state) {
      // Envoy starts every host list at a random offset (its `seed_`).
      state = { index: Math.floor(this.#random() * 2 ** 32), version: -1, signature: '', edf: undefined, time: 0, order: 0 };
      this.#rr.set(source, state);
    }
    const weighted = hosts.some((h) => h.weight !== (hosts[0] as Host).weight);
    if (!weighted) {
      state.edf = undefined;
      return hosts[state.index++ % hosts.length];
    }
    if (state.version !== this.#version) {
      state.version = this.#version;
      const signature = hosts.map((h) => `${h.key}=${h.weight}`).join(',');
      if (signature !== state.signature || !state.edf) {
        state.signature = signature;
        state.time = 0;
        state.order = 0;
        state.edf = hosts.map((host) => ({ host, deadline: 1 / host.weight, order: (state as RoundRobinState).order++ }));
        // Envoy cycles seed % n picks so that each refresh starts somewhere else.
        for (let i = 0; i < state.index % hosts.length; i++) this.#edfPick(state);
      }
    }
    return this.#edfPick(state);
  }

  /** Earliest deadline first (Envoy's EdfScheduler): each pick re-adds the host one 1/weight later. */
  #edfPick(state: RoundRobinState): Host {
    const edf = state.edf as { host: Host; deadline: number; order: number }[];
    let best = edf[0] as (typeof edf)[number];
    for (const e of edf) if (e.deadline < best.deadline || (e.deadline === best.deadline && e.order < best.order)) best = e;
    state.time = best.deadline;
    best.deadline = state.time + 1 / best.host.weight;
    best.order = state.order++;
    return best.host;
  }
}

// The proxy's running configuration: what the xDS client accepted, compiled, and applied.
//
// - `accept(typeUrl, resources)` compiles a whole new set of one type (clusters, assignments, listeners, route
//   configurations, secrets). A resource that does not compile refuses the whole update with that resource's
//   message (the xDS client NACKs it) and nothing changes, as in Envoy.
// - Clusters are created, updated in place (keeping pools and host state when only settings changed) or
//   removed; assignments go to their cluster. Route tables and secrets are swapped atomically.
// - A listener starts once everything it needs is there (its route configurations and its TLS material:
//   Envoy's listener warming), so the proxy opens no port before it can serve it. A changed listener keeps
//   its socket and applies the new chains to new connections; a removed one drains.
import { TYPE_URLS } from '../envoy/protos.ts';
import type { StatsScope, StatsStore } from './admin/stats.ts';
import { listenerStatPrefix, httpStatPrefix } from './admin/stats.ts';
import type { AccessLogWriter } from './http/access-log.ts';
import { handleHttp, type HttpHandlerDeps } from './http/http-handler.ts';
import type { HttpManagerStats } from './http/http1-session.ts';
import { closeH2Pools } from './http/h2-pool.ts';
import { httpStatsWithHttp2 } from './http/http2-session.ts';
import type { ClusterHandle } from './http/upstream-api.ts';
import { compileListener, listenerNeeds, type FilterChainSpec, type ListenerSpec } from './listeners/compile.ts';
import { RunningListener, type ChainHandler } from './listeners/listener.ts';
import { ProxyConfigError, type Json } from './resources/values.ts';
import { compileRouteConfiguration, type RouteTable } from './routing/compile.ts';
import { handleTcpProxy, tcpProxyStats, type TcpProxyStats } from './tcp/tcp-proxy.ts';
import type { CommonTls } from './tls/compile.ts';
import { compileSecret } from './tls/secrets.ts';
import type { SecretMaterial } from './tls/material.ts';
import type { TlsProvider } from './tls/provider.ts';
import { ClusterRuntime } from './upstream/cluster-runtime.ts';
import { compileCluster, compileLoadAssignment, type ClusterSpec, type Endpoint } from './upstream/compile.ts';

export type ProxyLog = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

export interface ProxyRuntimeOptions {
  readonly stats: StatsStore;
  readonly tls: TlsProvider;
  readonly log: ProxyLog;
  readonly accessLogs?: AccessLogWriter;
  readonly now?: () => number;
  /** Offer keymesh's multiplexed hop (mux/session.ts) on pooled HTTP/1.1 TLS connections (default: yes). */
  readonly mux?: boolean;
}

type Resources = ReadonlyMap<string, Json>;

interface ListenerState {
  spec: ListenerSpec;
  running: RunningListener | undefined;
  starting: Promise<void> | undefined;
  stats: StatsScope;
  /** Why it has not started (what it waits for), for /config_dump and /ready. */
  waiting: string | undefined;
}

export class ProxyRuntime {
  readonly #o: ProxyRuntimeOptions;
  readonly #clusters = new Map<string, ClusterRuntime>();
  #assignments = new Map<string, Endpoint[]>();
  #routes = new Map<string, RouteTable>();
  readonly #listeners = new Map<string, ListenerState>();
  readonly #httpStats = new Map<string, HttpManagerStats>();
  readonly #tcpStats = new Map<string, TcpProxyStats>();
  /** The raw accepted resources, for /config_dump. */
  readonly #raw = new Map<string, Resources>();
  readonly #managerStats: { listenerCreateFailure: ReturnType<StatsScope['counter']>; totalListenersActive: ReturnType<StatsScope['gauge']>; clustersActive: ReturnType<StatsScope['gauge']> };

  constructor(options: ProxyRuntimeOptions) {
    this.#o = options;
    const lm = options.stats.scope('listener_manager');
    this.#managerStats = {
      listenerCreateFailure: lm.counter('listener_create_failure'),
      totalListenersActive: lm.gauge('total_listeners_active'),
      clustersActive: options.stats.scope('cluster_manager').gauge('active_clusters'),
    };
    options.tls.onChange(() => this.#startWaitingListeners());
  }

  /** For the xDS client: applies the complete new set of one type, or says why not. */
  accept = (typeUrl: string, resources: Resources): string | undefined => {
    try {
      switch (typeUrl) {
        case TYPE_URLS.cluster: this.#applyClusters(resources); break;
        case TYPE_URLS.clusterLoadAssignment: this.#applyAssignments(resources); break;
        case TYPE_URLS.listener: this.#applyListeners(resources); break;
        case TYPE_URLS.routeConfiguration: this.#applyRoutes(resources); break;
        case TYPE_URLS.secret: this.#applySecrets(resources); break;
        default: return undefined;
      }
    } catch (e) {
      if (e instanceof ProxyConfigError) return e.message;
      this.#o.log('error', 'applying configuration failed', { typeUrl, error: (e as Error).stack ?? String(e) });
      return `keymesh proxy failed applying the update: ${(e as Error).message}`;
    }
    this.#raw.set(typeUrl, resources);
    return undefined;
  };

  /** Every listener of the configuration is serving (Envoy's /ready LIVE), and there is a configuration. */
  get ready(): boolean {
    return this.#raw.has(TYPE_URLS.listener) && [...this.#listeners.values()].every((l) => l.running !== undefined);
  }

  /** Listeners waiting to start, with what they wait for. */
  waiting(): { listener: string; waitingFor: string }[] {
    return [...this.#listeners.values()].filter((l) => !l.running).map((l) => ({ listener: l.spec.name, waitingFor: l.waiting ?? 'starting' }));
  }

  /** What was accepted, per type (private keys are redacted by the admin server). */
  configDump(): Record<string, unknown> {
    const dump: Record<string, unknown> = {};
    for (const [type, resources] of this.#raw) dump[type.slice(type.lastIndexOf('.') + 1)] = [...resources.values()];
    return dump;
  }

  /** The TLS contexts in use: every filter chain's of the listeners, then every cluster's. */
  tlsContexts(): CommonTls[] {
    const out: CommonTls[] = [];
    for (const l of this.#listeners.values()) for (const c of l.spec.filterChains) if (c.tls) out.push(c.tls);
    for (const c of this.#clusters.values()) if (c.tls) out.push(c.tls);
    return out;
  }

  /** Envoy's /clusters text: `cluster::host:port::health_flags::healthy` lines. */
  clustersText(): string {
    return [...this.#clusters.values()].map((c) => c.describe()).join('');
  }

  async close(): Promise<void> {
    await Promise.all([...this.#listeners.values()].map(async (l) => {
      await l.starting;
      await l.running?.close(1000);
    }));
    closeH2Pools();
    for (const c of this.#clusters.values()) c.close();
  }

  // --- clusters ---------------------------------------------------------------------------------------

  #applyClusters(resources: Resources): void {
    const specs = new Map<string, ClusterSpec>();
    for (const [name, r] of resources) specs.set(name, compileCluster(r));
    for (const [name, runtime] of this.#clusters) {
      if (!specs.has(name)) {
        runtime.close();
        this.#clusters.delete(name);
      }
    }
    for (const [name, spec] of specs) {
      const existing = this.#clusters.get(name);
      if (existing) existing.update(spec);
      else {
        const runtime = new ClusterRuntime(spec, { stats: this.#o.stats, tls: this.#o.tls, log: this.#o.log, ...(this.#o.mux === false ? { mux: false } : {}) });
        const assigned = this.#assignments.get(spec.eds?.serviceName ?? name);
        if (assigned) runtime.setEndpoints(assigned);
        this.#clusters.set(name, runtime);
      }
    }
    this.#managerStats.clustersActive.set(this.#clusters.size);
  }

  #applyAssignments(resources: Resources): void {
    const next = new Map<string, Endpoint[]>();
    for (const [name, r] of resources) next.set(name, compileLoadAssignment(r));
    this.#assignments = next;
    for (const [name, runtime] of this.#clusters) {
      const endpoints = next.get(runtime.spec.eds?.serviceName ?? name);
      if (endpoints && runtime.spec.type === 'EDS') runtime.setEndpoints(endpoints);
    }
  }

  /** The handle the HTTP and TCP filters forward through. */
  cluster(name: string): ClusterRuntime | undefined {
    return this.#clusters.get(name);
  }

  // --- routes and secrets -----------------------------------------------------------------------------

  #applyRoutes(resources: Resources): void {
    const next = new Map<string, RouteTable>();
    for (const [name, r] of resources) next.set(name, compileRouteConfiguration(r));
    this.#routes = next;
    this.#startWaitingListeners();
  }

  #applySecrets(resources: Resources): void {
    const next = new Map<string, SecretMaterial>();
    for (const [name, r] of resources) next.set(name, compileSecret(r));
    this.#o.tls.setSecrets(next);
  }

  // --- listeners --------------------------------------------------------------------------------------

  #applyListeners(resources: Resources): void {
    const specs = new Map<string, ListenerSpec>();
    const bound = new Map<string, string>();
    for (const [name, r] of resources) {
      const spec = compileListener(r);
      const at = `${spec.address}:${spec.port}`;
      const other = bound.get(at);
      if (other) throw new ProxyConfigError(`listener ${name}: ${at} is already used by listener ${other}`);
      bound.set(at, name);
      specs.set(name, spec);
    }
    for (const [name, state] of this.#listeners) {
      const spec = specs.get(name);
      if (!spec || spec.address !== state.spec.address || spec.port !== state.spec.port) {
        this.#listeners.delete(name);
        void this.#stopListener(state);
      }
    }
    for (const [name, spec] of specs) {
      const state = this.#listeners.get(name);
      if (state) {
        state.spec = spec;
        state.running?.update(spec);
      } else {
        this.#listeners.set(name, { spec, running: undefined, starting: undefined, stats: this.#o.stats.scope(listenerStatPrefix(spec.address, spec.port)), waiting: undefined });
      }
    }
    this.#managerStats.totalListenersActive.set(this.#listeners.size);
    this.#startWaitingListeners();
  }

  async #stopListener(state: ListenerState): Promise<void> {
    await state.starting;
    await state.running?.close();
    state.stats.close();
  }

  /** What a listener still lacks; undefined when it can start. */
  #missing(spec: ListenerSpec): string | undefined {
    const needs = listenerNeeds(spec);
    const route = needs.routeConfigurations.find((r) => !this.#routes.has(r));
    if (route) return `route configuration ${route}`;
    for (const chain of spec.filterChains) {
      if (!chain.tls) continue;
      const provided = this.#o.tls.get(chain.tls);
      if (!provided.ok) return `${provided.missing} (filter chain ${chain.name})`;
    }
    return undefined;
  }

  #startWaitingListeners(): void {
    for (const state of this.#listeners.values()) {
      if (state.running || state.starting) continue;
      const waiting = this.#missing(state.spec);
      if (waiting !== state.waiting && waiting) this.#o.log('info', 'listener waiting', { listener: state.spec.name, for: waiting });
      state.waiting = waiting;
      if (waiting) continue;
      const listener = new RunningListener(state.spec, {
        tls: this.#o.tls, stats: state.stats, handlerFor: (chain) => this.#handlerFor(chain),
        log: (message, fields) => this.#o.log('warn', message, fields),
      });
      state.starting = listener.listen().then(() => {
        state.running = listener;
        this.#o.log('info', 'listener started', { listener: state.spec.name, address: `${state.spec.address}:${state.spec.port}` });
      }, (e: unknown) => {
        this.#managerStats.listenerCreateFailure.inc();
        state.waiting = `binding ${state.spec.address}:${state.spec.port} failed: ${(e as Error).message}`;
        this.#o.log('error', 'listener could not start', { listener: state.spec.name, error: (e as Error).message });
      }).finally(() => {
        state.starting = undefined;
      });
    }
  }

  #handlerFor(chain: FilterChainSpec): ChainHandler {
    const filter = chain.filter;
    if (filter.kind === 'tcp') {
      let stats = this.#tcpStats.get(filter.statPrefix);
      if (!stats) {
        stats = tcpProxyStats(this.#o.stats.scope(`tcp.${filter.statPrefix}`));
        this.#tcpStats.set(filter.statPrefix, stats);
      }
      const s = stats;
      return (conn) => handleTcpProxy(conn, filter, (name) => this.#clusters.get(name), s);
    }
    let stats = this.#httpStats.get(filter.statPrefix);
    if (!stats) {
      stats = httpStatsWithHttp2(this.#o.stats.scope(httpStatPrefix(filter.statPrefix)));
      this.#httpStats.set(filter.statPrefix, stats);
    }
    const accessLog = this.#o.accessLogs?.sinkFor(filter.accessLogs);
    const deps: HttpHandlerDeps = {
      routes: () => this.#routes.get(filter.routeConfigName),
      cluster: (name): ClusterHandle | undefined => this.#clusters.get(name)?.http,
      stats,
      codec: filter.codec,
      upgrades: filter.upgrades,
      ...(accessLog ? { accessLog } : {}),
      now: this.#o.now ?? Date.now,
    };
    return (conn) => handleHttp(conn, deps);
  }
}

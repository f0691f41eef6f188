// A running cluster: its hosts (with health checking, outlier detection and circuit breakers, cluster.ts), its
// connections (TCP, then TLS per the cluster's transport socket, dial.ts) and a pool of idle HTTP/1.1
// connections per host, reused across requests and downstream connections (the sidecar-to-sidecar hop keeps
// its mTLS connections open instead of handshaking per request). Stats under `cluster.<name>.` as Envoy's.
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Counter, Histogram, StatsScope, StatsStore } from '../admin/stats.ts';
import { clusterStatPrefix } from '../admin/stats.ts';
import type { ByteStream } from '../http/byte-stream.ts';
import { MUX_ALPN } from '../mux/frames.ts';
import { MuxSession } from '../mux/session.ts';
import { MuxStream } from '../mux/stream.ts';
import { UpstreamConnectError, type ClusterHandle, type ClusterRequestStats, type UpstreamConnection, type UpstreamHost } from '../http/upstream-api.ts';
import type { TcpUpstream } from '../tcp/tcp-proxy.ts';
import { Path } from '../resources/values.ts';
import { compileUpstreamTls, type UpstreamTls } from '../tls/compile.ts';
import { dialTls, SessionCache, upstreamTlsCounters, type UpstreamTlsCounters } from '../tls/dial.ts';
import type { TlsProvider } from '../tls/provider.ts';
import { UpstreamCluster } from './cluster.ts';
import type { ClusterSpec, Endpoint } from './compile.ts';
import type { Host } from './hosts.ts';
import type { StatsSink } from './stats.ts';

/** Envoy's upstream idle_timeout default (common_http_protocol_options): a mux connection without streams that long closes. */
const DEFAULT_MUX_IDLE_MS = 3_600_000;

export interface ClusterRuntimeDeps {
  readonly stats: StatsStore;
  readonly tls: TlsProvider;
  readonly log: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
  /** Offer keymesh's multiplexed hop (mux/session.ts) on pooled HTTP/1.1 TLS connections (default: yes). */
  readonly mux?: boolean;
}

/** Names the upstream modules report that are gauges (they move both ways); every other name is a counter. */
const GAUGE = /^membership_(?!change)|_active$|_open$|\.remaining_|^health_check\.healthy$/;

function sinkInto(scope: StatsScope): StatsSink {
  return (name, delta) => {
    if (GAUGE.test(name)) scope.gauge(name).inc(delta);
    else scope.counter(name).inc(delta);
  };
}

class RequestStats implements ClusterRequestStats {
  readonly rqTotal: Counter;
  readonly rqTimeout: Counter;
  readonly rqRetry: Counter;
  readonly rqRetrySuccess: Counter;
  readonly rqTime: Histogram;
  readonly rqPendingOverflow: Counter;
  readonly #scope: StatsScope;
  readonly #byCode = new Map<number, Counter>();
  readonly #byClass: Counter[];

  constructor(scope: StatsScope) {
    this.#scope = scope;
    this.rqTotal = scope.counter('upstream_rq_total');
    this.rqTimeout = scope.counter('upstream_rq_timeout');
    this.rqRetry = scope.counter('upstream_rq_retry');
    this.rqRetrySuccess = scope.counter('upstream_rq_retry_success');
    this.rqTime = scope.histogram('upstream_rq_time');
    this.rqPendingOverflow = scope.counter('upstream_rq_pending_overflow');
    this.#byClass = [1, 2, 3, 4, 5].map((n) => scope.counter(`upstream_rq_${n}xx`));
  }

  status(code: number): void {
    let c = this.#byCode.get(code);
    if (!c) {
      c = this.#scope.counter(`upstream_rq_${code}`);
      this.#byCode.set(code, c);
    }
    c.inc();
    this.#byClass[Math.floor(code / 100) - 1]?.inc();
  }
}

interface Pooled {
  readonly socket: ByteStream;
  readonly host: Host;
  /** When it went idle, for the idle timeout (checked when taken and by a sweep, not by a timer each). */
  readonly since: number;
}

/** Requests each upstream HTTP/1.1 connection has served, for max_requests_per_connection (#release). */
const SERVED = new WeakMap<ByteStream, number>();

export class ClusterRuntime implements TcpUpstream {
  spec: ClusterSpec;
  readonly http: ClusterHandle;
  readonly #deps: ClusterRuntimeDeps;
  readonly #scope: StatsScope;
  #upstream: UpstreamCluster;
  #tls: UpstreamTls | undefined;
  #tlsCounters: UpstreamTlsCounters | undefined;
  #sessions = new SessionCache();
  readonly #idle = new Map<Host, Pooled[]>();
  /** Sockets in the pool now: a pooled socket that talks or closes is dropped by its permanent listeners. */
  readonly #idleSockets = new Set<ByteStream>();
  /** Per host, the multiplexed mTLS connection to a keymesh proxy (mux/session.ts) its streams are opened on. */
  readonly #mux = new Map<Host, MuxSession>();
  /** Per host, the first dial that may bring such a connection: requests meanwhile wait for it, not dial too. */
  readonly #muxDialing = new Map<Host, Promise<void>>();
  /** Hosts whose TLS did not select the mux protocol (a stock Envoy, a TLS application): plain connections. */
  readonly #noMux = new WeakSet<Host>();
  readonly #muxCx: { total: Counter; active: ReturnType<StatsScope['gauge']> };
  /** The TLS material (TlsMaterial.key) each mux connection's handshake used. */
  readonly #muxKeys = new WeakMap<MuxSession, string>();
  readonly #unsubscribeTls: () => void;
  #hostsReady = false;
  #sweep: NodeJS.Timeout | undefined;
  readonly #live = new Set<ByteStream>();
  readonly #rq: RequestStats;
  readonly #cx: { total: Counter; active: ReturnType<StatsScope['gauge']>; connectFail: Counter; connectTimeout: Counter; destroy: Counter; overflow: Counter; reused: Counter };
  /** upstream_cx_max_requests, made the first time a connection reaches max_requests_per_connection. */
  #maxRequests: Counter | undefined;
  #endpoints: readonly Endpoint[] | undefined;
  #closed = false;

  constructor(spec: ClusterSpec, deps: ClusterRuntimeDeps) {
    this.spec = spec;
    this.#deps = deps;
    this.#scope = deps.stats.scope(clusterStatPrefix(spec.observabilityName));
    this.#rq = new RequestStats(this.#scope);
    const s = this.#scope;
    this.#cx = {
      total: s.counter('upstream_cx_total'), active: s.gauge('upstream_cx_active'), connectFail: s.counter('upstream_cx_connect_fail'),
      connectTimeout: s.counter('upstream_cx_connect_timeout'), destroy: s.counter('upstream_cx_destroy'), overflow: s.counter('upstream_cx_overflow'),
      reused: s.counter('keymesh.upstream_cx_reused'),
    };
    this.#muxCx = { total: s.counter('keymesh.upstream_cx_mux_total'), active: s.gauge('keymesh.upstream_cx_mux_active') };
    this.#tls = this.#compileTls(spec);
    this.#upstream = this.#makeUpstream(spec);
    this.#unsubscribeTls = deps.tls.onChange(() => this.#retireStaleMux());
    const protocol = () => this.spec.http.protocol;
    this.http = {
      name: spec.name,
      stats: this.#rq,
      get http2() {
        return protocol() === 'http2';
      },
      connect: (options) => this.#connect(options?.alpn, options?.pooled ?? !options?.alpn, options?.host as Host | undefined),
      pick: () => (this.#hostsReady && !this.#closed ? this.#upstream.hosts.choose() : undefined),
      takeIdle: () => this.#takeIdle(),
      release: (conn, reusable) => this.#release(conn, reusable),
      outcome: (host, status) => this.#outcome(host, status),
    };
  }

  /** The cluster's TLS context, if it originates TLS. */
  get tls(): UpstreamTls | undefined {
    return this.#tls;
  }

  /** New settings: hosts and pools start afresh unless nothing changed. */
  update(spec: ClusterSpec): void {
    if (JSON.stringify(spec) === JSON.stringify(this.spec)) return;
    this.spec = spec;
    this.#tls = this.#compileTls(spec);
    // New TLS settings: no session made under the old ones is resumed (Envoy's new SSL context does the same).
    this.#sessions = new SessionCache();
    this.#upstream.stop();
    this.#drainIdle();
    this.#retireMux();
    this.#hostsReady = false;
    this.#upstream = this.#makeUpstream(spec);
    if (this.#endpoints && spec.type === 'EDS') this.#upstream.hosts.setEndpoints(this.#endpoints);
  }

  setEndpoints(endpoints: readonly Endpoint[]): void {
    this.#endpoints = endpoints;
    if (this.spec.type !== 'EDS') return;
    const { removed } = this.#upstream.hosts.setEndpoints(endpoints);
    for (const host of removed) {
      this.#dropIdle(host);
      this.#mux.get(host)?.retire();
      this.#mux.delete(host);
    }
  }

  /** TCP proxy: a fresh connection (never pooled). */
  async connect(): Promise<{ socket: Duplex; host: string }> {
    const conn = await this.#connect(undefined, false);
    // Not pooled, so never a mux stream: the socket dialed.
    return { socket: conn.socket as Duplex, host: `${conn.host.address}:${conn.host.port}` };
  }

  /** Envoy's /clusters lines for this cluster. */
  describe(): string {
    return this.#upstream.hosts.hosts.map((h) => {
      const base = `${this.spec.name}::${h.address}:${h.port}`;
      const flags = [h.failedActiveHealthCheck ? '/failed_active_hc' : '', h.ejected ? '/failed_outlier_check' : ''].join('') || 'healthy';
      return `${base}::health_flags::${flags}\n${base}::cx_active::${h.activeConnections}\n${base}::rq_active::${h.activeRequests}\n`;
    }).join('');
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribeTls();
    clearInterval(this.#sweep);
    this.#upstream.stop();
    this.#drainIdle();
    for (const s of this.#live) s.destroy();
    for (const m of this.#mux.values()) m.destroy();
    this.#mux.clear();
    this.#scope.close();
  }

  #compileTls(spec: ClusterSpec): UpstreamTls | undefined {
    if (!spec.transportSocket) return undefined;
    this.#tlsCounters ??= upstreamTlsCounters(this.#scope);
    return compileUpstreamTls(spec.transportSocket, new Path(`cluster ${spec.name}`).at('transportSocket'));
  }

  #makeUpstream(spec: ClusterSpec): UpstreamCluster {
    const tls = this.#tls;
    const upstream = new UpstreamCluster(spec, {
      stats: sinkInto(this.#scope),
      ...(tls ? {
        secure: true,
        dial: async (target, signal) => {
          const raw = await this.#tcp(target.address, target.port, signal);
          return dialTls({ tls, provider: this.#deps.tls, counters: this.#tlsCounters!, sessions: this.#sessions, socket: raw, host: target.address, port: target.port, ...(target.alpnProtocols ? { alpn: target.alpnProtocols } : {}) });
        },
      } : {}),
    });
    upstream.start();
    return upstream;
  }

  #tcp(address: string, port: number, signal?: AbortSignal): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ host: address, port, noDelay: true });
      const timer = setTimeout(() => {
        this.#cx.connectTimeout.inc();
        socket.destroy();
        reject(new UpstreamConnectError('connect-timeout', `connection to ${address}:${port} timed out after ${this.spec.connectTimeoutMs} ms`));
      }, this.spec.connectTimeoutMs);
      const abort = () => socket.destroy(new Error('aborted'));
      signal?.addEventListener('abort', abort, { once: true });
      socket.once('connect', () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', abort);
        resolve(socket);
      });
      socket.once('error', (e) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', abort);
        this.#cx.connectFail.inc();
        reject(new UpstreamConnectError('connect-failure', e.message));
      });
    });
  }

  /** The synchronous fast path: a pooled connection to the next host, if it has one idle. */
  #takeIdle(): UpstreamConnection | undefined {
    if (this.#closed || !this.#hostsReady) return undefined;
    // Not the request's choice yet: without an idle connection it connects, and that pick() counts a miss.
    const host = this.#upstream.hosts.choose();
    return host && this.#pooledTo(host);
  }

  #pooledTo(host: Host): UpstreamConnection | undefined {
    const idle = this.#idle.get(host);
    const idleMs = this.spec.http.idleTimeoutMs;
    const now = Date.now();
    while (idle && idle.length > 0) {
      const p = idle.pop()!;
      this.#idleSockets.delete(p.socket);
      if (p.socket.destroyed || !p.socket.writable) continue;
      if (p.socket instanceof MuxStream && !p.socket.poolable) {
        p.socket.destroy();
        continue;
      }
      if (idleMs !== undefined && now - p.since >= idleMs) {
        p.socket.destroy();
        continue;
      }
      this.#cx.reused.inc();
      return { socket: p.socket, host, reused: true };
    }
    return undefined;
  }

  async #connect(alpn: readonly string[] | undefined, pooled: boolean, chosen?: Host): Promise<UpstreamConnection> {
    if (this.#closed) throw new UpstreamConnectError('no-healthy-upstream', `cluster ${this.spec.name} was removed`);
    await this.#upstream.hosts.ready;
    this.#hostsReady = true;
    // A host picked earlier (pick()) is used if it is still a member; the membership may have changed since.
    const host = chosen && this.#upstream.hosts.hosts.includes(chosen) ? chosen : this.#upstream.hosts.pick();
    if (!host) throw new UpstreamConnectError('no-healthy-upstream', `cluster ${this.spec.name} has no healthy host`);
    if (pooled) {
      const taken = this.#pooledTo(host);
      if (taken) return taken;
    }
    const breaker = this.#upstream.circuitBreakers.default;
    if (!breaker.tryAcquire('connections')) {
      this.#cx.overflow.inc();
      throw new UpstreamConnectError('overflow', `cluster ${this.spec.name}: too many connections`);
    }
    let socket: ByteStream | undefined;
    // A new stream on a mux connection already up is a reused connection for the forwarder: a reset before its
    // response (the peer retired the connection as the stream crossed its GOAWAY, or the connection died) is
    // retried once, as a pooled HTTP/1.1 connection's.
    let reused = false;
    try {
      // Pooled HTTP/1.1 over TLS: a stream on the host's multiplexed connection when it has one (or is getting one).
      const viaMux = pooled && alpn === undefined && this.#muxEligible(host);
      if (viaMux) {
        const dialing = this.#muxDialing.get(host);
        if (dialing && !this.#mux.has(host)) await dialing;
        socket = this.#openStream(host);
        reused = socket !== undefined;
      }
      socket ??= await this.#dial(host, alpn, viaMux);
    } catch (e) {
      breaker.release('connections');
      this.#outcome(host, 'connect-failure');
      throw e;
    }
    this.#cx.total.inc();
    this.#cx.active.inc();
    host.connectionOpened();
    this.#live.add(socket);
    // Bound once per connection: a pooled socket that talks (nothing is asked of it) or closes leaves the pool.
    socket.on('data', () => {
      if (this.#idleSockets.has(socket)) socket.destroy();
    });
    socket.once('close', () => {
      if (this.#idleSockets.delete(socket)) {
        const list = this.#idle.get(host);
        const i = list ? list.findIndex((p) => p.socket === socket) : -1;
        if (i >= 0) list!.splice(i, 1);
      }
      this.#live.delete(socket);
      this.#cx.active.dec();
      this.#cx.destroy.inc();
      host.connectionClosed();
      breaker.release('connections');
    });
    socket.on('error', () => {});
    return { socket, host, reused };
  }

  /** Whether requests to this host may share a multiplexed connection (keymesh's proxies on both ends, TLS, HTTP/1.1). */
  #muxEligible(host: Host): boolean {
    return this.#deps.mux !== false && this.#tls !== undefined && this.spec.http.protocol !== 'http2' && this.spec.http.maxRequestsPerConnection === undefined && !this.#noMux.has(host);
  }

  #openStream(host: Host): MuxStream | undefined {
    const session = this.#mux.get(host);
    if (!session) return undefined;
    if (!session.retired) {
      const stream = session.open();
      if (stream) return stream;
    }
    // Retired (GOAWAY, ids used up) or full: the next connection to the host may replace it.
    if (session.retired) this.#mux.delete(host);
    return undefined;
  }

  /**
   * A new connection to the host: TCP, then TLS per the cluster. Offering the mux protocol, the first such dial to
   * a host is the one the requests arriving meanwhile wait for; if the host selects it, the connection becomes the
   * host's mux session and the dialer gets its first stream.
   */
  async #dial(host: Host, alpn: readonly string[] | undefined, offerMux: boolean): Promise<ByteStream> {
    const tls = this.#tls;
    let settle: (() => void) | undefined;
    if (offerMux && !this.#muxDialing.has(host)) {
      const dialing = new Promise<void>((resolve) => (settle = resolve));
      this.#muxDialing.set(host, dialing);
    }
    try {
      const raw = await this.#tcp(host.address, host.port);
      if (!tls) return raw;
      const offer = offerMux ? [MUX_ALPN, ...(tls.alpn.length > 0 ? tls.alpn : ['http/1.1'])] : alpn;
      const socket = await dialTls({ tls, provider: this.#deps.tls, counters: this.#tlsCounters!, sessions: this.#sessions, socket: raw, host: host.address, port: host.port, ...(offer ? { alpn: offer } : {}) }).catch((e: unknown) => {
        throw new UpstreamConnectError('tls-failure', (e as Error).message);
      });
      if (!offerMux) return socket;
      if (socket.alpnProtocol !== MUX_ALPN) {
        this.#noMux.add(host);
        return socket;
      }
      return this.#startMux(host, socket).open()!;
    } finally {
      if (settle) {
        this.#muxDialing.delete(host);
        settle();
      }
    }
  }

  #startMux(host: Host, socket: Duplex): MuxSession {
    const provided = this.#deps.tls.get(this.#tls!);
    this.#muxCx.total.inc();
    this.#muxCx.active.inc();
    const session = new MuxSession(socket, {
      role: 'client',
      allowHalfOpen: false,
      idleTimeoutMs: this.spec.http.idleTimeoutMs ?? DEFAULT_MUX_IDLE_MS,
      onClose: () => {
        this.#muxCx.active.dec();
        if (this.#mux.get(host) === session) this.#mux.delete(host);
      },
    });
    if (provided.ok) this.#muxKeys.set(session, provided.material.key);
    // A second session to the same host (the first was full): the newer one takes the new streams.
    this.#mux.set(host, session);
    return session;
  }

  /**
   * The cluster's TLS material changed (a renewed certificate, new trust, a CRL): mux connections made under the
   * old take no new stream (open ones finish), and their idle pooled streams go, so the next requests handshake
   * under the new material. Envoy keeps open connections on a secret update; a multiplexed connection would
   * otherwise carry every request to that host for as long as both proxies run (docs/proxy.md).
   */
  #retireStaleMux(): void {
    if (this.#mux.size === 0 || !this.#tls) return;
    const provided = this.#deps.tls.get(this.#tls);
    const key = provided.ok ? provided.material.key : undefined;
    let retired = false;
    for (const [host, session] of [...this.#mux]) {
      if (this.#muxKeys.get(session) === key) continue;
      session.retire();
      this.#mux.delete(host);
      retired = true;
    }
    if (retired) this.#dropIdleWhere((p) => p.socket instanceof MuxStream && !p.socket.poolable);
  }

  /** New TLS settings or the cluster going: sessions made under the old ones take no new stream. */
  #retireMux(): void {
    for (const session of this.#mux.values()) session.retire();
    this.#mux.clear();
  }

  #release(conn: UpstreamConnection, reusable: boolean): void {
    const host = conn.host as Host;
    const socket = conn.socket;
    if (!reusable || this.#closed || socket.destroyed || !socket.writable || this.#upstream.hosts.hosts.indexOf(host) < 0 || (socket instanceof MuxStream && !socket.poolable)) {
      socket.destroy();
      return;
    }
    // Envoy's max_requests_per_connection: a connection that has served that many requests is closed, not pooled.
    const max = this.spec.http.maxRequestsPerConnection;
    if (max !== undefined) {
      const served = (SERVED.get(socket) ?? 0) + 1;
      if (served >= max) {
        (this.#maxRequests ??= this.#scope.counter('upstream_cx_max_requests')).inc();
        socket.destroy();
        return;
      }
      SERVED.set(socket, served);
    }
    let list = this.#idle.get(host);
    if (!list) this.#idle.set(host, (list = []));
    list.push({ socket, host, since: Date.now() });
    this.#idleSockets.add(socket);
    socket.resume();
    this.#armSweep();
  }

  /** Closes pooled connections idle past the idle timeout, every so often while any are pooled. */
  #armSweep(): void {
    const idleMs = this.spec.http.idleTimeoutMs;
    if (this.#sweep || idleMs === undefined) return;
    this.#sweep = setInterval(() => {
      const now = Date.now();
      this.#dropIdleWhere((p) => now - p.since >= idleMs);
      if (this.#idleSockets.size === 0) {
        clearInterval(this.#sweep);
        this.#sweep = undefined;
      }
    }, Math.max(1000, Math.min(idleMs, 60_000) / 2));
    this.#sweep.unref();
  }

  /** Closes the pooled connections `stale` picks, and takes them out of the pool. */
  #dropIdleWhere(stale: (p: Pooled) => boolean): void {
    for (const list of this.#idle.values()) {
      for (let i = list.length - 1; i >= 0; i--) {
        const p = list[i]!;
        if (!stale(p)) continue;
        list.splice(i, 1);
        this.#idleSockets.delete(p.socket);
        p.socket.destroy();
      }
    }
  }

  #outcome(host: UpstreamHost, status: number | 'connect-failure' | 'reset' | 'timeout'): void {
    const detector = this.#upstream.outlierDetector;
    if (!detector) return;
    const h = host as Host;
    if (typeof status === 'number') detector.reportHttpStatus(h, status);
    else if (status === 'connect-failure') detector.reportResult(h, 'LOCAL_ORIGIN_CONNECT_FAILED');
    else if (status === 'timeout') detector.reportResult(h, 'LOCAL_ORIGIN_TIMEOUT');
    else detector.reportHttpStatus(h, 503);
  }

  #dropIdle(host: Host): void {
    for (const p of this.#idle.get(host) ?? []) {
      this.#idleSockets.delete(p.socket);
      p.socket.destroy();
    }
    this.#idle.delete(host);
  }

  #drainIdle(): void {
    for (const host of [...this.#idle.keys()]) this.#dropIdle(host);
  }
}

// Envoy's tcp_proxy network filter: each downstream connection gets one upstream connection to a host of the
// (weighted) cluster, plain or TLS as the cluster says, and bytes are piped both ways with back-pressure.
// An idle timeout (Envoy's default: 1 hour) ends quiet connections. Stats under `tcp.<stat_prefix>.`.
import type { Duplex } from 'node:stream';
import type { Counter, StatsScope } from '../admin/stats.ts';
import type { TcpFilterSpec } from '../listeners/compile.ts';
import type { DownstreamConnection } from '../listeners/listener.ts';

export interface TcpUpstream {
  /** A connected (and, for TLS clusters, handshaken) socket to a host of the cluster. */
  connect(): Promise<{ socket: Duplex; host: string }>;
}

export interface TcpProxyStats {
  readonly cxTotal: Counter;
  readonly noRoute: Counter;
  readonly connectFail: Counter;
  readonly idleTimeout: Counter;
  readonly rxBytes: Counter;
  readonly txBytes: Counter;
}

export function tcpProxyStats(scope: StatsScope): TcpProxyStats {
  return {
    cxTotal: scope.counter('downstream_cx_total'),
    noRoute: scope.counter('downstream_cx_no_route'),
    connectFail: scope.counter('upstream_connect_fail'),
    idleTimeout: scope.counter('idle_timeout'),
    rxBytes: scope.counter('downstream_cx_rx_bytes_total'),
    txBytes: scope.counter('downstream_cx_tx_bytes_total'),
  };
}

/** Envoy's default tcp_proxy idle_timeout. */
export const DEFAULT_TCP_IDLE_TIMEOUT_MS = 3_600_000;

export function pickWeighted(clusters: TcpFilterSpec['clusters'], random: () => number): string | undefined {
  const total = clusters.reduce((n, c) => n + Math.max(0, c.weight), 0);
  if (total <= 0) return undefined;
  let r = random() * total;
  for (const c of clusters) {
    r -= Math.max(0, c.weight);
    if (r < 0) return c.name;
  }
  return clusters.at(-1)?.name;
}

export function handleTcpProxy(conn: DownstreamConnection, spec: TcpFilterSpec, upstreamOf: (cluster: string) => TcpUpstream | undefined, stats: TcpProxyStats, random: () => number = Math.random): void {
  stats.cxTotal.inc();
  const down = conn.socket;
  const name = pickWeighted(spec.clusters, random);
  const upstream = name === undefined ? undefined : upstreamOf(name);
  if (!upstream) {
    stats.noRoute.inc();
    down.destroy();
    return;
  }
  down.pause();
  upstream.connect().then(({ socket: up }) => {
    if (down.destroyed) {
      up.destroy();
      return;
    }
    const idleMs = spec.idleTimeoutMs === undefined ? DEFAULT_TCP_IDLE_TIMEOUT_MS : spec.idleTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (idleMs === 0) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        stats.idleTimeout.inc();
        down.destroy();
        up.destroy();
      }, idleMs);
      timer.unref();
    };
    arm();
    down.on('data', (d: Buffer) => {
      stats.rxBytes.inc(d.length);
      arm();
    });
    up.on('data', (d: Buffer) => {
      stats.txBytes.inc(d.length);
      arm();
    });
    down.pipe(up);
    up.pipe(down);
    const end = () => {
      clearTimeout(timer);
      down.destroy();
      up.destroy();
    };
    down.once('close', end);
    up.once('close', end);
    down.on('error', end);
    up.on('error', end);
    down.resume();
  }, () => {
    stats.connectFail.inc();
    down.destroy();
  });
}

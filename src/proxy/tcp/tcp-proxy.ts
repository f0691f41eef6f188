// Envoy's tcp_proxy network filter: each downstream connection gets one upstream connection to a host of the
// (weighted) cluster, plain or TLS as the cluster says, and bytes are piped both ways with back-pressure.
// An idle timeout (Envoy's default: 1 hour) ends quiet connections. Stats under `tcp.<stat_prefix>.`.
//
// Containment, and the counters that tell it: no route or no such cluster: the downstream connection is closed
// (`downstream_cx_no_route`); the upstream connection cannot be made (refused, timed out, TLS refused): closed
// (`upstream_connect_fail`, keymesh's; the cluster counts Envoy's `cluster.<name>.upstream_cx_connect_fail` or
// `upstream_cx_connect_timeout`); no byte either way for the idle timeout: both closed (`idle_timeout`). The
// downstream is not read while the upstream connects, and each side is read only as fast as the other takes it
// (pipe), so a peer that does not read holds at most the sockets' buffers.
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
    // One timer per connection, restarted by each read (refresh allocates nothing; after clearTimeout it is a no-op).
    let timer: NodeJS.Timeout | undefined;
    if (idleMs > 0) {
      timer = setTimeout(() => {
        stats.idleTimeout.inc();
        down.destroy();
        up.destroy();
      }, idleMs);
      timer.unref();
    }
    down.on('data', (d: Buffer) => {
      stats.rxBytes.inc(d.length);
      timer?.refresh();
    });
    up.on('data', (d: Buffer) => {
      stats.txBytes.inc(d.length);
      timer?.refresh();
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

// The HTTP connection manager's entry: decides the codec of a downstream connection (codec_type AUTO: HTTP/2
// when ALPN chose h2 or the client sent the HTTP/2 preface, HTTP/1.1 otherwise) and starts its session.
import type { DownstreamConnection } from '../listeners/listener.ts';
import type { RouteTable } from '../routing/compile.ts';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_REQUEST_HEADERS_TIMEOUT_MS, Http1Session, type AccessLogEntry, type Http1Timeouts, type HttpManagerStats } from './http1-session.ts';
import { handleHttp2 } from './http2-session.ts';
import { serveMux } from './http-mux.ts';
import { MUX_ALPN } from '../mux/frames.ts';
import type { ClusterHandle } from './upstream-api.ts';

export interface HttpHandlerDeps {
  readonly routes: () => RouteTable | undefined;
  readonly cluster: (name: string) => ClusterHandle | undefined;
  readonly stats: HttpManagerStats;
  readonly codec: 'AUTO' | 'HTTP1' | 'HTTP2';
  readonly accessLog?: (entry: AccessLogEntry) => void;
  readonly now: () => number;
  /** The HTTP/1 connection manager's timeouts (http1-session.ts defaults when absent). */
  readonly timeouts?: Http1Timeouts;
  /** upgrade_configs (lower-case types): see Http1Context.upgrades. */
  readonly upgrades?: readonly string[];
}

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

function looksHttp2(first: Buffer): boolean | undefined {
  const n = Math.min(first.length, PREFACE.length);
  if (!first.subarray(0, n).equals(PREFACE.subarray(0, n))) return false;
  return n === PREFACE.length ? true : undefined;
}

export function handleHttp(conn: DownstreamConnection, deps: HttpHandlerDeps): void {
  const ctx = {
    routes: deps.routes, cluster: deps.cluster, stats: deps.stats, scheme: conn.tls ? 'https' as const : 'http' as const,
    remoteAddress: conn.remoteAddress, accessLog: deps.accessLog, now: deps.now, timeouts: deps.timeouts, upgrades: deps.upgrades,
  };
  const alpn = (conn.socket as { alpnProtocol?: string | false }).alpnProtocol;
  if (alpn === MUX_ALPN) {
    serveMux(conn, ctx);
    return;
  }
  if (deps.codec === 'HTTP2' || alpn === 'h2' || (conn.inspection?.kind === 'http' && conn.inspection.protocol === 'h2c')) {
    handleHttp2(conn, ctx);
    return;
  }
  if (deps.codec === 'HTTP1') {
    const session = new Http1Session(conn.socket, ctx);
    conn.onDrain(() => session.drain());
    return;
  }
  // AUTO without a hint: look at the first bytes. Until they tell, the HTTP/1 session's timers apply: the idle
  // timeout while nothing came, the request headers timeout once a prefix of the HTTP/2 preface did.
  let buffered: Buffer | undefined;
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number, counter: HttpManagerStats['cxIdleTimeout']) => {
    clearTimeout(timer);
    if (ms <= 0) return;
    timer = setTimeout(() => {
      counter.inc();
      conn.socket.destroy();
    }, ms);
    timer.unref();
  };
  arm(deps.timeouts?.idleMs ?? DEFAULT_IDLE_TIMEOUT_MS, deps.stats.cxIdleTimeout);
  conn.socket.once('close', () => clearTimeout(timer));
  const onData = (chunk: Buffer) => {
    const first = buffered === undefined;
    buffered = buffered ? Buffer.concat([buffered, chunk]) : chunk;
    const h2 = looksHttp2(buffered);
    if (h2 === undefined) {
      if (first) arm(deps.timeouts?.requestHeadersMs ?? DEFAULT_REQUEST_HEADERS_TIMEOUT_MS, deps.stats.rqHeaderTimeout);
      return;
    }
    clearTimeout(timer);
    conn.socket.off('data', onData);
    conn.socket.pause();
    if (h2) {
      conn.socket.unshift(buffered);
      handleHttp2(conn, ctx);
    } else {
      const session = new Http1Session(conn.socket, ctx, buffered);
      conn.onDrain(() => session.drain());
      conn.socket.resume();
    }
  };
  conn.socket.on('data', onData);
  // Not yet an HTTP session: a drain closes it.
  conn.onDrain(() => {
    if (buffered === undefined) conn.socket.end();
  });
}

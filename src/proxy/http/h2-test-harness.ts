// For the HTTP/2 tests only: a running listener with the HTTP connection manager in front of test clusters
// (ClusterHandle over real sockets to a fixed host), upstream node:http2 / node:http servers, and bounded
// clients (curl, node:http2). Every wait is bounded; nothing measures time.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { StatsStore } from '../admin/stats.ts';
import { compileListener } from '../listeners/compile.ts';
import { RunningListener } from '../listeners/listener.ts';
import type { Json } from '../resources/values.ts';
import { compileRouteConfiguration, type RouteTable } from '../routing/compile.ts';
import type { TestPki } from '../test-pki.ts';
import { TlsProvider } from '../tls/provider.ts';
import { handleHttp } from './http-handler.ts';
import type { AccessLogEntry } from './http1-session.ts';
import { httpStatsWithHttp2 } from './http2-session.ts';
import { UpstreamConnectError, type ClusterHandle, type ClusterRequestStats, type UpstreamConnection, type UpstreamFailure, type UpstreamHost } from './upstream-api.ts';
import { eventually as pollUntil, freePort, httpConnectionManagerFilter } from '../test-support.ts';

export const stats = new StatsStore();

export { freePort };

export function stat(name: string): number {
  return stats.value(name) ?? 0;
}

let clusterSeq = 0;

/** A cluster of one host: new plain (or TLS, offering the ALPN asked for) connections, HTTP/1.1 ones pooled. */
export class TestCluster implements ClusterHandle {
  readonly name: string;
  readonly stats: ClusterRequestStats;
  readonly http2: boolean;
  readonly host: UpstreamHost;
  readonly outcomes: (number | string)[] = [];
  /** Connections made (not taken from the pool). */
  connects = 0;
  released = 0;
  failWith: UpstreamFailure | undefined;
  readonly #tls: { ca: string } | undefined;
  readonly #idle: UpstreamConnection[] = [];
  readonly #open = new Set<Socket>();

  constructor(port: number, opts: { http2?: boolean; tls?: { ca: string }; name?: string; failWith?: UpstreamFailure } = {}) {
    this.name = opts.name ?? `c${++clusterSeq}`;
    this.http2 = opts.http2 ?? false;
    this.host = { address: '127.0.0.1', port, hostname: undefined };
    this.#tls = opts.tls;
    this.failWith = opts.failWith;
    const scope = stats.scope(`cluster.${this.name}`);
    const status = new Map<number, ReturnType<typeof scope.counter>>();
    this.stats = {
      rqTotal: scope.counter('upstream_rq_total'),
      rqTimeout: scope.counter('upstream_rq_timeout'),
      rqRetry: scope.counter('upstream_rq_retry'),
      rqRetrySuccess: scope.counter('upstream_rq_retry_success'),
      rqTime: scope.histogram('upstream_rq_time'),
      rqPendingOverflow: scope.counter('upstream_rq_pending_overflow'),
      status(code: number) {
        for (const key of [code, Math.floor(code / 100)]) {
          let c = status.get(key);
          if (!c) {
            c = scope.counter(key >= 100 ? `upstream_rq_${key}` : `upstream_rq_${key}xx`);
            status.set(key, c);
          }
          c.inc();
        }
      },
    };
  }

  stat(name: string): number {
    return stat(`cluster.${this.name}.${name}`);
  }

  connect(options: { readonly alpn?: readonly string[] } = {}): Promise<UpstreamConnection> {
    if (this.failWith) return Promise.reject(new UpstreamConnectError(this.failWith, this.failWith));
    if (!options.alpn) {
      while (this.#idle.length > 0) {
        const c = this.#idle.pop()!;
        if (!c.socket.destroyed) return Promise.resolve({ ...c, reused: true });
      }
    }
    return new Promise((resolve, reject) => {
      const tls = this.#tls;
      const sock: Socket = tls
        ? tlsConnect({ host: '127.0.0.1', port: this.host.port, ca: tls.ca, servername: 'colorteller.mesh.local', ...(options.alpn ? { ALPNProtocols: [...options.alpn] } : {}) })
        : netConnect({ host: '127.0.0.1', port: this.host.port });
      const fail = (e: Error) => reject(new UpstreamConnectError('connect-failure', e.message));
      sock.once('error', fail);
      sock.once(tls ? 'secureConnect' : 'connect', () => {
        sock.off('error', fail);
        sock.on('error', () => {});
        sock.setNoDelay(true);
        this.connects++;
        this.#open.add(sock);
        sock.once('close', () => this.#open.delete(sock));
        resolve({ socket: sock, host: this.host, reused: false });
      });
    });
  }

  release(conn: UpstreamConnection, reusable: boolean): void {
    this.released++;
    if (reusable && !conn.socket.destroyed) {
      conn.socket.pause();
      this.#idle.push(conn);
    } else {
      conn.socket.destroy();
    }
  }

  outcome(_host: UpstreamHost, status: number | 'connect-failure' | 'reset' | 'timeout'): void {
    this.outcomes.push(status);
  }

  close(): void {
    for (const s of this.#open) s.destroy();
  }
}

export interface Proxy {
  readonly port: number;
  readonly log: AccessLogEntry[];
  /** `http.<prefix>.<name>` */
  stat(name: string): number;
  close(): Promise<void>;
}

let proxySeq = 0;

/** A RunningListener with an HTTP connection manager: plaintext (AUTO codec), PERMISSIVE-style inspected plaintext, or TLS with ALPN. */
export async function startProxy(opts: {
  routes: Json;
  clusters: Record<string, ClusterHandle>;
  mode?: 'plain' | 'inspected' | 'tls';
  codec?: 'AUTO' | 'HTTP1' | 'HTTP2';
  pki?: TestPki;
}): Promise<Proxy> {
  const port = await freePort();
  const prefix = `p${++proxySeq}`;
  const hcm = httpConnectionManagerFilter(prefix, opts.codec ?? 'AUTO');
  const mode = opts.mode ?? 'plain';
  const tlsChain = () => ({
    name: 'tls', filters: [hcm],
    ...(mode === 'inspected' ? { filterChainMatch: { transportProtocol: 'tls' } } : {}),
    transportSocket: {
      name: 'envoy.transport_sockets.tls',
      typedConfig: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
        commonTlsContext: {
          tlsCertificates: [{ certificateChain: { filename: opts.pki!.server.cert }, privateKey: { filename: opts.pki!.server.key } }],
          alpnProtocols: ['h2', 'http/1.1'],
        },
      },
    },
  });
  const chains = mode === 'plain' ? [{ name: 'plain', filters: [hcm] }]
    : mode === 'tls' ? [tlsChain()]
      : [tlsChain(), { name: 'plain', filters: [hcm] }];
  const spec = compileListener({
    name: `l_${port}`, address: { socketAddress: { address: '127.0.0.1', portValue: port } }, filterChains: chains,
    ...(mode === 'inspected' ? { listenerFilters: [{ name: 'envoy.filters.listener.tls_inspector', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }] } : {}),
  });
  const table: RouteTable = compileRouteConfiguration(opts.routes);
  const log: AccessLogEntry[] = [];
  const httpStats = httpStatsWithHttp2(stats.scope(`http.${prefix}`));
  const tls = new TlsProvider(() => undefined);
  const listener = new RunningListener(spec, {
    tls,
    stats: stats.scope(`listener.${prefix}`),
    handlerFor: () => (conn) => handleHttp(conn, {
      routes: () => table, cluster: (name) => opts.clusters[name], stats: httpStats, codec: opts.codec ?? 'AUTO',
      accessLog: (e) => log.push(e), now: Date.now,
    }),
  });
  await listener.listen();
  return {
    port, log,
    stat: (name) => stat(`http.${prefix}.${name}`),
    close: async () => {
      await listener.close(100);
      tls.close();
    },
  };
}

/** Route configuration: one virtual host `*`, routes in order. */
export function routes(...list: Json[]): Json {
  return { name: 'rds', virtualHosts: [{ name: 'vh', domains: ['*'], routes: list }] };
}

export function route(prefix: string, cluster: string, action: Json = {}, match: Json = {}): Json {
  return { match: { prefix, ...match }, route: { cluster, ...action } };
}

// --- upstream servers ---------------------------------------------------------------------------------------

export interface Upstream {
  readonly port: number;
  /** HTTP/2 sessions (or HTTP/1 connections) accepted so far. */
  connections: number;
  close(): Promise<void>;
}

export async function startH2Upstream(onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, raw: string[]) => void, opts: { tls?: { key: string; cert: string }; settings?: http2.Settings } = {}): Promise<Upstream & { server: http2.Http2Server | http2.Http2SecureServer; sessions: Set<http2.ServerHttp2Session> }> {
  const settings = opts.settings ? { settings: opts.settings } : {};
  const server = opts.tls ? http2.createSecureServer({ key: opts.tls.key, cert: opts.tls.cert, allowHTTP1: false, ...settings }) : http2.createServer(settings);
  const sessions = new Set<http2.ServerHttp2Session>();
  const up = {
    port: 0, connections: 0, server, sessions,
    close: () => new Promise<void>((resolve) => {
      for (const s of sessions) s.destroy();
      server.close(() => resolve());
    }),
  };
  server.on('session', (s: http2.ServerHttp2Session) => {
    up.connections++;
    sessions.add(s);
    s.on('error', () => {});
    s.once('close', () => sessions.delete(s));
  });
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]) => {
    stream.on('error', () => {});
    onStream(stream, headers, raw);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  up.port = (server.address() as AddressInfo).port;
  return up;
}

export async function startH1Upstream(onRequest: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Upstream & { server: http.Server }> {
  const server = http.createServer(onRequest);
  const up = {
    port: 0, connections: 0, server,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  server.on('connection', () => up.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  up.port = (server.address() as AddressInfo).port;
  return up;
}

export function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

// --- clients -------------------------------------------------------------------------------------------------

export function run(cmd: string, args: string[], input?: Buffer | string): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += String(d); });
    p.stderr.on('data', (d) => { err += String(d); });
    const t = setTimeout(() => p.kill('SIGKILL'), 20_000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
    p.stdin.on('error', () => {});
    p.stdin.end(input);
  });
}

let curlSeq = 0;

/** curl, bounded: `-sS --max-time 10`; the response headers (all blocks) in `headers`. */
export async function curl(args: string[], input?: Buffer | string): Promise<{ status: number; version: string; body: string; headers: string; err: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'km-curl-'));
  const headerFile = join(dir, `h${++curlSeq}`);
  try {
    const r = await run('curl', ['-sS', '--max-time', '10', '-D', headerFile, '-w', '\n%{http_version} %{http_code}', ...args], input);
    const nl = r.out.lastIndexOf('\n');
    const [version = '', code = '0'] = r.out.slice(nl + 1).split(' ');
    let headers = '';
    try {
      headers = readFileSync(headerFile, 'latin1');
    } catch {
      // no response
    }
    return { status: Number(code), version, body: r.out.slice(0, nl), headers, err: r.err };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface H2Response {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  /** Set when the stream was reset before it ended. */
  rstCode: number | undefined;
}

/** One request on a (given or new, h2c) session; bounded by 10 s. */
export function h2Request(target: string | http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string, opts: { trailers?: http2.OutgoingHttpHeaders } = {}): Promise<H2Response> {
  const session = typeof target === 'string' ? http2.connect(target) : target;
  if (typeof target === 'string') session.on('error', () => {});
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined && !opts.trailers, waitForTrailers: opts.trailers !== undefined });
    if (opts.trailers) req.on('wantTrailers', () => req.sendTrailers(opts.trailers!));
    const timer = setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error('h2Request: no answer in 10 s'));
    }, 10_000);
    const out: H2Response = { status: 0, headers: {}, body: Buffer.alloc(0), trailers: undefined, rstCode: undefined };
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      out.status = Number(h[':status']);
      out.headers = h;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('trailers', (t) => { out.trailers = t; });
    req.on('error', () => {});
    req.on('close', () => {
      clearTimeout(timer);
      out.body = Buffer.concat(chunks);
      if (req.rstCode !== undefined && req.rstCode !== http2.constants.NGHTTP2_NO_ERROR) out.rstCode = req.rstCode;
      if (typeof target === 'string') session.close();
      resolve(out);
    });
    if (body !== undefined) req.end(body);
    else if (opts.trailers) req.end();
  });
}

/** Resolves when `check` holds, polling every 10 ms; fails after `ms`. */
export function eventually(check: () => boolean, ms = 5000): Promise<void> {
  return pollUntil(check, 'the condition', ms);
}

// The proxy's admin endpoint, answering like Envoy's (source/server/admin/) so that the commands in App Mesh's
// guides and the tools built for Envoy work against keymesh's proxy unchanged:
//
//   GET  /stats              `name: value` lines; ?filter=<regex>, ?usedonly, ?format=json|prometheus|text
//   GET  /stats/prometheus   Prometheus text exposition with Envoy's names and labels; ?filter, ?usedonly
//   GET  /ready              `LIVE` (200), or `PRE_INITIALIZING` / `INITIALIZING` / `DRAINING` (503)
//   GET  /server_info        {"version","state","hot_restart_version","uptime_current_epoch","uptime_all_epochs"}
//   GET  /config_dump        the proxy's current xDS resources, secrets redacted (redact.ts)
//   GET  /certs              Envoy's certificate summary (certs.ts)
//   GET  /clusters           `cluster::host:port::health_flags::healthy` lines
//   GET  /help               the list below
//   POST /healthcheck/fail   /ready answers DRAINING (503) from now on: take the proxy out of rotation to drain
//   POST /healthcheck/ok     undoes it
//   POST /quitquitquit       asks the proxy to exit (the `onQuit` callback, after the answer is sent)
//
// Envoy's rules: a state-changing endpoint answers any other method with 405 `Method GET not allowed, POST
// required.`; an unknown path gets 404 `invalid path. ` followed by the help text; read-only endpoints answer any
// method. Request bodies are never read (at most MAX_BODY_BYTES are drained before the connection is cut), and
// headers, requests and idle connections are timed out.
//
// The admin server keeps Envoy's `server.live`, `server.state` and `server.uptime` gauges in the stats store up to
// date, and ends a histogram interval every `histogramFlushMs` (Envoy's stats flush, 5 s by default).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InternalError } from '../../errors/index.ts';
import type { CertsJson } from './certs.ts';
import { redactSecrets } from './redact.ts';
import { renderJson, renderPrometheus, renderText, type StatsQuery } from './render.ts';
import type { StatsStore } from './stats.ts';

export type ServerState = 'LIVE' | 'DRAINING' | 'PRE_INITIALIZING' | 'INITIALIZING';

/** envoy.admin.v3.ServerInfo.State numbers, the value of the `server.state` gauge. */
const STATE_NUMBER: Record<ServerState, number> = { LIVE: 0, DRAINING: 1, PRE_INITIALIZING: 2, INITIALIZING: 3 };

type MaybePromise<T> = T | Promise<T>;

export interface AdminServerOptions {
  readonly stats: StatsStore;
  /** The proxy's own view: PRE_INITIALIZING before any configuration, INITIALIZING while warming, then LIVE. */
  readonly ready: () => ServerState;
  /** The current configuration (e.g. Envoy's `{"configs":[…]}`); redacted before it is shown. */
  readonly configDump: () => MaybePromise<unknown>;
  /** Build it with certs.ts `formatCerts`. */
  readonly certs: () => MaybePromise<CertsJson>;
  /** Envoy's `/clusters` text. */
  readonly clusters: () => MaybePromise<string>;
  readonly onQuit?: () => void;
  /** Told about callbacks that threw (the client only gets a 500 without details). */
  readonly onError?: (path: string, error: unknown) => void;
  /** Milliseconds since the epoch; defaults to `now()` at creation. */
  readonly startedAt?: number;
  readonly now?: () => number;
  /** `/server_info`'s version. */
  readonly version?: string;
  /** How often histograms start a new interval; 0 never. Default 5000 ms. */
  readonly histogramFlushMs?: number;
}

export interface AdminServer {
  /** Binds (port 0 picks a free port) and resolves with the port. */
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
  /** The state /ready reports: the proxy's, or DRAINING after /healthcheck/fail. */
  state(): ServerState;
}

const MAX_BODY_BYTES = 64 * 1024;
const MAX_FILTER_LENGTH = 1024;
const TEXT = 'text/plain; charset=UTF-8';
const JSON_TYPE = 'application/json';

interface Answer {
  status: number;
  body: string;
  type?: string;
  after?: () => void;
}

interface Route {
  readonly path: string;
  readonly help: string;
  readonly mutates: boolean;
  readonly handle: (query: URLSearchParams) => MaybePromise<Answer>;
}

export function createAdminServer(options: AdminServerOptions): AdminServer {
  const { stats } = options;
  const now = options.now ?? Date.now;
  const startedAt = options.startedAt ?? now();
  const flushMs = options.histogramFlushMs ?? 5000;
  let healthCheckFailed = false;

  const live = stats.gauge('server.live');
  const stateGauge = stats.gauge('server.state');
  const uptime = stats.gauge('server.uptime');

  const state = (): ServerState => {
    const s = options.ready();
    return s === 'LIVE' && healthCheckFailed ? 'DRAINING' : s;
  };
  const uptimeSeconds = (): number => Math.max(0, Math.floor((now() - startedAt) / 1000));
  const refreshServerStats = (): void => {
    const s = state();
    live.set(s === 'LIVE' ? 1 : 0);
    stateGauge.set(STATE_NUMBER[s]);
    uptime.set(uptimeSeconds());
  };
  refreshServerStats();

  const ok = (): Answer => ({ status: 200, body: 'OK\n' });
  const json = (value: unknown): Answer => ({ status: 200, body: `${JSON.stringify(value, null, 1)}\n`, type: JSON_TYPE });

  const statsAnswer = (query: URLSearchParams, format: string | null): Answer => {
    const parsed = parseStatsQuery(query);
    if (typeof parsed === 'string') return { status: 400, body: `${parsed}\n` };
    refreshServerStats();
    switch (format ?? 'text') {
      case 'text':
        return { status: 200, body: renderText(stats, parsed) };
      case 'json':
        return { status: 200, body: renderJson(stats, parsed), type: JSON_TYPE };
      case 'prometheus':
        return { status: 200, body: renderPrometheus(stats, parsed) };
      default:
        return { status: 400, body: 'usage: /stats?format=(json|prometheus|text)\n' };
    }
  };

  const routes: Route[] = [
    { path: '/certs', help: 'print certs on machine', mutates: false, handle: async () => json(await options.certs()) },
    { path: '/clusters', help: 'upstream cluster status', mutates: false, handle: async () => ({ status: 200, body: await options.clusters() }) },
    { path: '/config_dump', help: 'dump current configuration (secrets redacted)', mutates: false, handle: async () => json(redactSecrets(await options.configDump())) },
    {
      path: '/healthcheck/fail', help: 'cause the server to fail health checks', mutates: true, handle: () => {
        healthCheckFailed = true;
        refreshServerStats();
        return ok();
      },
    },
    {
      path: '/healthcheck/ok', help: 'cause the server to pass health checks', mutates: true, handle: () => {
        healthCheckFailed = false;
        refreshServerStats();
        return ok();
      },
    },
    { path: '/help', help: 'print out list of admin commands', mutates: false, handle: () => ({ status: 200, body: helpText() }) },
    { path: '/quitquitquit', help: 'exit the server', mutates: true, handle: () => ({ ...ok(), ...(options.onQuit ? { after: options.onQuit } : {}) }) },
    {
      path: '/ready', help: 'print server state, return 200 if LIVE, otherwise return 503', mutates: false, handle: () => {
        const s = state();
        return { status: s === 'LIVE' ? 200 : 503, body: `${s}\n` };
      },
    },
    {
      path: '/server_info', help: 'print server version/status information', mutates: false, handle: () => {
        const up = `${uptimeSeconds()}s`;
        return json({ version: options.version ?? 'keymesh', state: state(), hot_restart_version: 'disabled', uptime_current_epoch: up, uptime_all_epochs: up });
      },
    },
    { path: '/stats', help: 'print server stats', mutates: false, handle: (q) => statsAnswer(q, q.get('format')) },
    { path: '/stats/prometheus', help: 'print server stats in prometheus format', mutates: false, handle: (q) => statsAnswer(q, 'prometheus') },
  ];
  const byPath = new Map(routes.map((r) => [r.path, r]));
  const helpText = (): string => `admin commands are:\n${routes.map((r) => `  ${r.path}${r.mutates ? ' (POST)' : ''}: ${r.help}\n`).join('')}`;

  const answer = async (req: IncomingMessage): Promise<Answer> => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const route = path === '/' ? byPath.get('/help') : byPath.get(path);
    if (!route) return { status: 404, body: `invalid path. ${helpText()}` };
    if (route.mutates && req.method !== 'POST') return { status: 405, body: `Method ${req.method} not allowed, POST required.\n` };
    try {
      return await route.handle(query);
    } catch (e) {
      options.onError?.(path, e);
      return { status: 500, body: 'internal error\n' };
    }
  };

  const server: Server = createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
    drainBody(req, res);
    answer(req).then((a) => send(res, a), (e) => {
      options.onError?.(req.url ?? '', e);
      send(res, { status: 500, body: 'internal error\n' });
    });
  });
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 64;
  server.setTimeout(30_000, (socket) => socket.destroy());

  let listening = false;
  let flushTimer: NodeJS.Timeout | undefined;

  return {
    state,
    listen(host: string, port: number): Promise<number> {
      if (listening) return Promise.reject(new InternalError('the admin server is already listening'));
      listening = true;
      return new Promise((resolve, reject) => {
        const onError = (e: Error): void => {
          listening = false;
          reject(e);
        };
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          if (flushMs > 0) {
            flushTimer = setInterval(() => {
              stats.flushHistograms();
              refreshServerStats();
            }, flushMs);
            flushTimer.unref();
          }
          resolve((server.address() as AddressInfo).port);
        });
      });
    },
    close(): Promise<void> {
      if (flushTimer) clearInterval(flushTimer);
      flushTimer = undefined;
      if (!listening) return Promise.resolve();
      listening = false;
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Envoy's `filter` (a regular expression searched in the stat name) and `usedonly` (present or not). */
function parseStatsQuery(query: URLSearchParams): StatsQuery | string {
  const usedOnly = query.has('usedonly');
  const filter = query.get('filter');
  if (filter === null || filter === '') return { usedOnly };
  if (filter.length > MAX_FILTER_LENGTH) return `Invalid regex: longer than ${MAX_FILTER_LENGTH} characters`;
  // Envoy uses RE2, which runs in linear time; JavaScript's engine backtracks, so refuse the patterns that can
  // make it run for ever (a quantified group that itself contains a quantifier, like `(a+)+`).
  if (/\([^)]*[+*{][^)]*\)\s*[+*{]/.test(filter)) return 'Invalid regex: nested quantifiers are not supported';
  try {
    return { usedOnly, filter: new RegExp(filter) };
  } catch {
    return 'Invalid re2 regex';
  }
}

function drainBody(req: IncomingMessage, res: ServerResponse): void {
  let seen = 0;
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > MAX_BODY_BYTES) {
      res.shouldKeepAlive = false;
      req.socket.destroy();
    }
  });
  req.on('error', () => {});
  req.resume();
}

function send(res: ServerResponse, a: Answer): void {
  if (res.headersSent || res.destroyed) return;
  const body = Buffer.from(a.body, 'utf8');
  res.writeHead(a.status, {
    'content-type': a.type ?? TEXT,
    'content-length': body.length,
    'cache-control': 'no-cache, max-age=0',
    'x-content-type-options': 'nosniff',
  });
  if (a.after) {
    const after = a.after;
    res.once('finish', () => setImmediate(after));
  }
  res.end(body);
}

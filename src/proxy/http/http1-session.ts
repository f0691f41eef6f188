// One downstream HTTP/1.1 connection through the HTTP connection manager: requests are read one at a time
// (pipelined ones wait their turn), routed (RDS), and forwarded to a cluster over a pooled upstream connection.
// Heads are parsed and rewritten; bodies are forwarded verbatim as they arrive, both ways, with back-pressure.
//
// Envoy's behaviour kept: 404 for no route, 503 `no healthy upstream` / `upstream connect error ...`, 504
// `upstream request timeout` at the route timeout (15 s default), retries per the route's policy (connect
// failure, reset, 5xx / gateway errors / listed status codes) while nothing has been sent downstream and the
// request body is small enough to replay (64 KiB, else no retry), `Expect: 100-continue` answered locally,
// the upstream connection reused only when both sides keep it alive and the exchange completed cleanly.
// A request that cannot be parsed gets 400 (431 for headers too large) and the connection is closed.
//
// Containment (garbage, slow or stuck clients: bounded memory, timeouts, and `http.<stat_prefix>.` counters that
// say why a connection ended):
// - Parse errors (a head over 60 KiB or with more than 100 fields: 431; a malformed request line, conflicting
//   Content-Length / Transfer-Encoding, a bad chunked body: 400) answer with `connection: close`, close, and count
//   `downstream_cx_protocol_error` (as Envoy counts its codec errors) besides `downstream_rq_<n>xx`; the access
//   log gets a line with the DPE flag. A head being received is held in one buffer of at most 60 KiB (+ a read).
// - Request headers timeout, `requestHeadersMs` (DEFAULT_REQUEST_HEADERS_TIMEOUT_MS, 10 s): from the first
//   byte of a request head to its end, not reset by the bytes that trickle in (a slowloris client sending one
//   byte a second is cut there): 408 `request header timeout`, close, `downstream_rq_header_timeout`. Envoy's
//   request_headers_timeout is off by default (its 5 min stream idle timer bounds such a head); keymesh sets
//   one because an HTTP client writes its head at once: 10 s is ample for any link that can carry HTTP
//   (haproxy's documented `timeout http-request` example is 10 s; nginx's client_header_timeout 60 s and
//   Kestrel's 30 s are upper bounds for direct internet clients) and it frees a slowloris socket 30x sooner
//   than Envoy's stream idle timeout would.
// - Connection idle timeout, `idleMs` (Envoy's common_http_protocol_options.idle_timeout default, 1 h): no
//   request in progress and no byte of the next one, including before the first: closed,
//   `downstream_cx_idle_timeout`. The same as the HTTP/2 sessions' (h2-common.ts), so pooled clients see one
//   behaviour.
// - Stream idle timeout, `streamIdleMs` (Envoy's stream_idle_timeout default, 5 min; the route's idle_timeout
//   when it sets one; 0 = none): a request in progress with no bytes either way: 408 (504 once the request was
//   complete) `stream timeout` before the response started, the connection reset after;
//   `downstream_rq_idle_timeout`, flag SI. A client that never reads its response is cut there.
// - Back-pressure both ways: a full downstream socket pauses the upstream one (and the reverse), so a client
//   that does not read holds at most a socket's buffers; pipelined requests are read ahead by at most
//   PIPELINE_BUFFER_LIMIT (64 KiB) while one is in flight.
// - Delayed close, `delayedCloseMs` (Envoy's delayed_close_timeout, 1 s): once the proxy closed its side, a
//   peer that neither closes nor reads what is left is destroyed after that long without write progress
//   (`downstream_cx_delayed_close_timeout`); bytes it keeps sending meanwhile are read and dropped.
import type { ByteStream } from './byte-stream.ts';
import type { Counter, Gauge, StatsScope } from '../admin/stats.ts';
import { BodyFramer, CONTINUE_100, DEFAULT_HEAD_LIMITS, HttpParseError, localReply, parseRequestHead, parseResponseHead, rawHeadWithout, serializeRequestHead, serializeResponseHead, type RequestHead, type ResponseHead } from '../http1/index.ts';
import type { RetryPolicy, RouteTable } from '../routing/compile.ts';
import { selectRoute, type RouteSelection } from '../routing/select.ts';
import { viaHttp2 } from './h1-to-h2.ts'; // [http2] see #attempt
import { retriableFailure, retriableStatus } from './h2-common.ts';
import { UpstreamConnectError, type ClusterHandle, type UpstreamConnection } from './upstream-api.ts';

/** Request bytes kept to replay on a retry; a longer body disables retries for that request. */
export const RETRY_BUFFER_LIMIT = 64 * 1024;

export interface HttpManagerStats {
  readonly rqTotal: Counter;
  readonly rqHttp1Total: Counter;
  readonly cxHttp1Total: Counter;
  readonly rqTimeout: Counter;
  /** downstream_rq_<n>xx */
  readonly statusClass: readonly Counter[];
  readonly noRoute: Counter;
  readonly noCluster: Counter;
  /** A request the codec refused (bad syntax, limits, smuggling attempts). */
  readonly cxProtocolError: Counter;
  readonly rqHeaderTimeout: Counter;
  readonly rqIdleTimeout: Counter;
  readonly cxIdleTimeout: Counter;
  readonly cxDelayedCloseTimeout: Counter;
  /** Connections upgraded (WebSocket): in all, and open now. */
  readonly cxUpgradesTotal: Counter;
  readonly cxUpgradesActive: Gauge;
  /** Multiplexed connections from keymesh proxies (mux/session.ts): in all, and open now. */
  readonly cxMuxTotal: Counter;
  readonly cxMuxActive: Gauge;
}

/** `http.<stat_prefix>.` */
export function httpManagerStats(scope: StatsScope): HttpManagerStats {
  return {
    rqTotal: scope.counter('downstream_rq_total'),
    rqHttp1Total: scope.counter('downstream_rq_http1_total'),
    cxHttp1Total: scope.counter('downstream_cx_http1_total'),
    rqTimeout: scope.counter('downstream_rq_timeout'),
    statusClass: [1, 2, 3, 4, 5].map((n) => scope.counter(`downstream_rq_${n}xx`)),
    noRoute: scope.counter('no_route'),
    noCluster: scope.counter('no_cluster'),
    cxProtocolError: scope.counter('downstream_cx_protocol_error'),
    rqHeaderTimeout: scope.counter('downstream_rq_header_timeout'),
    rqIdleTimeout: scope.counter('downstream_rq_idle_timeout'),
    cxIdleTimeout: scope.counter('downstream_cx_idle_timeout'),
    cxDelayedCloseTimeout: scope.counter('downstream_cx_delayed_close_timeout'),
    cxUpgradesTotal: scope.counter('downstream_cx_upgrades_total'),
    cxUpgradesActive: scope.gauge('downstream_cx_upgrades_active'),
    cxMuxTotal: scope.counter('keymesh.downstream_cx_mux_total'),
    cxMuxActive: scope.gauge('keymesh.downstream_cx_mux_active'),
  };
}

/** The connection manager's timeouts (milliseconds; 0 turns one off). Defaults: the DEFAULT_* constants. */
export interface Http1Timeouts {
  readonly requestHeadersMs?: number;
  readonly idleMs?: number;
  readonly streamIdleMs?: number;
  readonly delayedCloseMs?: number;
}

/** See the file comment for why. */
export const DEFAULT_REQUEST_HEADERS_TIMEOUT_MS = 10_000;
/** Envoy's common_http_protocol_options.idle_timeout default. */
export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;
/** Envoy's stream_idle_timeout default. */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000;
/** Envoy's delayed_close_timeout default. */
export const DEFAULT_DELAYED_CLOSE_TIMEOUT_MS = 1_000;
/** Pipelined request bytes read ahead while a request is in flight; beyond that the client is not read. */
export const PIPELINE_BUFFER_LIMIT = 64 * 1024;

export interface AccessLogEntry {
  readonly startTime: number;
  readonly method: string;
  readonly path: string;
  readonly protocol: string;
  readonly status: number;
  readonly responseFlags: string;
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly durationMs: number;
  readonly upstreamHost: string | undefined;
  readonly authority: string | undefined;
  readonly userAgent: string | undefined;
  readonly requestId: string | undefined;
  readonly upstreamCluster: string | undefined;
  readonly downstreamRemoteAddress: string;
}

export interface Http1Context {
  /** The route table of this connection manager now (undefined until RDS arrived). */
  routes(): RouteTable | undefined;
  cluster(name: string): ClusterHandle | undefined;
  readonly stats: HttpManagerStats;
  /** 'https' when the downstream connection is TLS. */
  readonly scheme: 'http' | 'https';
  readonly remoteAddress: string;
  readonly accessLog?: ((entry: AccessLogEntry) => void) | undefined;
  readonly now: () => number;
  readonly random?: () => number;
  readonly timeouts?: Http1Timeouts | undefined;
  /**
   * Upgrade types the connection manager accepts (upgrade_configs; lower case, e.g. 'websocket'): such a request
   * goes upstream with its Upgrade header, and a 101 turns the connection into a tunnel. Other upgrade requests
   * are forwarded as plain requests, their Upgrade header dropped.
   */
  readonly upgrades?: readonly string[] | undefined;
}

// What the connection is doing, for its timers: each timer acts only in its own phase.
const IDLE = 0; // no request in progress, no byte of the next one: idle timeout
const HEAD = 1; // part of a request head received: request headers timeout
const EXCHANGE = 2; // a request in progress: stream idle timeout
const CLOSED = 3; // closed by the proxy (delayed close) or by the peer
const TUNNEL = 4; // upgraded (101): bytes relayed both ways until either side ends

/** The `x-forwarded-proto: <scheme>` field line the proxy sets on every request (Envoy's, without trusted hops). */
const FORWARDED_PROTO_LINE = {
  http: Buffer.from('x-forwarded-proto: http\r\n', 'latin1'),
  https: Buffer.from('x-forwarded-proto: https\r\n', 'latin1'),
} as const;

/** Writes `chunk` to `to`; when `to` is full, `from` pauses until it drains (back-pressure, as pipe() does). */
function forward(chunk: Buffer, to: ByteStream, from: ByteStream): void {
  if (!to.write(chunk)) {
    from.pause();
    to.once('drain', () => from.resume());
  }
}

function unrefTimer(fn: () => void, ms: number): NodeJS.Timeout {
  const t = setTimeout(fn, ms);
  t.unref();
  return t;
}

function header(head: RequestHead | ResponseHead, name: string): string | undefined {
  const h = head.headers;
  for (let i = 0; i < h.length; i += 2) if (h[i]!.length === name.length && h[i]!.toLowerCase() === name) return h[i + 1];
  return undefined;
}

function headerView(head: RequestHead): (name: string) => string | readonly string[] | undefined {
  return (name) => {
    let found: string[] | undefined;
    const h = head.headers;
    for (let i = 0; i < h.length; i += 2) {
      if (h[i]!.length === name.length && h[i]!.toLowerCase() === name) (found ??= []).push(h[i + 1]!);
    }
    return found === undefined ? undefined : found.length === 1 ? found[0] : found;
  };
}

/** What an upstream connection's events go to: a session's handler, with the exchange using the connection now. */
interface LinkHandler {
  data(ex: Exchange, conn: UpstreamConnection, chunk: Buffer): void;
  end(ex: Exchange, conn: UpstreamConnection): void;
}

/** Where an upstream connection's events go: the exchange using it now, if any (nothing allocated per request). */
interface UpstreamLink {
  handler: LinkHandler | undefined;
  ex: Exchange | undefined;
  conn: UpstreamConnection | undefined;
}

const links = new WeakMap<ByteStream, UpstreamLink>();

/**
 * The link of an upstream socket, with its listeners bound once for the connection's life (a pooled
 * connection serves many exchanges; adding and removing listeners per request showed in profiles).
 */
function linkOf(sock: ByteStream): UpstreamLink {
  let link = links.get(sock);
  if (!link) {
    const l: UpstreamLink = { handler: undefined, ex: undefined, conn: undefined };
    link = l;
    links.set(sock, l);
    sock.on('data', (chunk: Buffer) => l.handler?.data(l.ex!, l.conn!, chunk));
    const ended = () => l.handler?.end(l.ex!, l.conn!);
    sock.on('end', ended);
    sock.on('close', ended);
    sock.on('error', ended);
  }
  return link;
}

/** The exchange is done with the connection: its events go nowhere until the next one links it. */
function unlink(ex: Exchange, conn: UpstreamConnection): void {
  const l = links.get(conn.socket);
  if (l !== undefined && l.ex === ex) {
    l.handler = undefined;
    l.ex = undefined;
    l.conn = undefined;
  }
}

/** Shared by every exchange until it has bytes to keep (most requests have no body). Frozen: a push would throw. */
const NO_BYTES: Buffer[] = Object.freeze([]) as unknown as Buffer[];

/** One request/response exchange (with its retries). */
class Exchange {
  readonly head: RequestHead;
  readonly framer: BodyFramer;
  /** The host of the last attempt, for the access log. */
  upstreamHost: UpstreamConnection['host'] | undefined;
  readonly started: number;
  selection: RouteSelection | undefined;
  cluster: ClusterHandle | undefined;
  /** Request body bytes received so far, kept for retries while under the limit. */
  replay: Buffer[] | undefined = NO_BYTES;
  replayBytes = 0;
  bodyBytes = 0;
  attempts = 0;
  upstream: UpstreamConnection | undefined;
  response: ResponseHead | undefined;
  responseFramer: BodyFramer | undefined;
  responseBytes = 0;
  /** Something was written downstream for this exchange (no retry after that). */
  answered = false;
  /** The session's route timer runs for this exchange (the route's timeout). */
  timed = false;
  upstreamBuf: Buffer | undefined;
  /** Body bytes received before the first upstream connection was ready. */
  unsent: Buffer[] = NO_BYTES;
  unsentBytes = 0;
  /** The upstream sent more than the response, or closed to end it: not reusable. */
  tainted = false;
  flags = '';
  /** The head's bytes as received, when it can go out as they are plus the proxy's X-Forwarded-Proto. */
  readonly rawHead: Buffer | undefined;
  /** An upgrade the connection manager accepts (the request keeps its Upgrade header; a 101 opens a tunnel). */
  upgrade = false;

  constructor(head: RequestHead, started: number, rawHead: Buffer | undefined) {
    this.head = head;
    this.rawHead = rawHead;
    this.framer = new BodyFramer(head.framing);
    this.started = started;
  }

  get requestComplete(): boolean {
    return this.framer.done;
  }
}

export class Http1Session {
  readonly #down: ByteStream;
  readonly #ctx: Http1Context;
  #buf: Buffer | undefined;
  /** Where a head trickling in is collected: #buf is a view of its start while it grows (see #append). */
  #acc: Buffer | undefined;
  /** #buf's length at the last parse that found the head incomplete (the parser then scans only what came since). */
  #scanned = 0;
  #current: Exchange | undefined;
  #closed = false;
  #draining = false;
  /** The client half-closed after its request: answer it, then close. */
  #downEnded = false;
  /** Reading paused because too many pipelined bytes wait behind the request in flight. */
  #pipelinePaused = false;
  #phase = IDLE;
  // One timer of each kind per connection, made on first use and restarted with refresh() (nothing allocated
  // per request); a timer firing outside its phase does nothing.
  readonly #headersMs: number;
  readonly #idleMs: number;
  readonly #streamIdleMs: number;
  readonly #delayedCloseMs: number;
  #idleTimer: NodeJS.Timeout | undefined;
  #headTimer: NodeJS.Timeout | undefined;
  #streamTimer: NodeJS.Timeout | undefined;
  /** The stream idle timeout of the exchange in flight (0: none) and the one #streamTimer was made with. */
  #streamMs = 0;
  #streamTimerMs = 0;
  #closeTimer: NodeJS.Timeout | undefined;
  #closeWritable = 0;
  /** The route timeout of the exchange in flight: one timer per connection, restarted per request. */
  #routeTimer: NodeJS.Timeout | undefined;
  #routeTimerMs = 0;
  /** Where this session's upstream connections' events go (linkOf), made once. */
  readonly #link: LinkHandler = {
    data: (ex, conn, chunk) => this.#onUpstream(ex, conn, chunk),
    end: (ex, conn) => this.#onUpstreamEnd(ex, conn),
  };

  constructor(down: ByteStream, ctx: Http1Context, initial?: Buffer) {
    this.#down = down;
    this.#ctx = ctx;
    const t = ctx.timeouts;
    this.#headersMs = t?.requestHeadersMs ?? DEFAULT_REQUEST_HEADERS_TIMEOUT_MS;
    this.#idleMs = t?.idleMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.#streamIdleMs = t?.streamIdleMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS;
    this.#delayedCloseMs = t?.delayedCloseMs ?? DEFAULT_DELAYED_CLOSE_TIMEOUT_MS;
    ctx.stats.cxHttp1Total.inc();
    if (initial && initial.length > 0) this.#buf = initial;
    down.on('data', (chunk: Buffer) => this.#onDownstream(chunk));
    down.on('end', () => this.#onDownstreamEnd());
    down.on('close', () => this.#onDownstreamClose());
    down.on('error', () => {});
    this.#enterIdle();
    if (this.#buf) this.#process();
  }

  /** Closes after the exchange in flight (at once when idle): the connection's filter chain changed. */
  drain(): void {
    this.#draining = true;
    if (!this.#current) this.#close();
  }

  // --- downstream -------------------------------------------------------------------------------------

  #onDownstream(chunk: Buffer): void {
    if (this.#closed) return; // closing: what the client still sends is dropped
    const ex = this.#current;
    if (this.#phase === TUNNEL) {
      this.#relayUp(ex!, chunk);
      return;
    }
    if (ex && !ex.requestComplete && this.#buf === undefined) {
      // The fast path: body bytes of the request being forwarded.
      if (this.#streamMs > 0) this.#streamTimer!.refresh();
      this.#forwardRequestBody(ex, chunk, 0);
      return;
    }
    this.#append(chunk);
    this.#process();
  }

  /**
   * Adds bytes to #buf. A head that arrives in pieces grows in #acc (doubling), so a head trickled in byte by
   * byte costs O(n) copies, not O(n²); #acc is dropped once the head is parsed.
   */
  #append(chunk: Buffer): void {
    const buf = this.#buf;
    if (buf === undefined) {
      this.#buf = chunk;
      return;
    }
    const len = buf.length + chunk.length;
    let acc = this.#acc;
    if (acc !== undefined && buf.buffer === acc.buffer && buf.byteOffset === acc.byteOffset && len <= acc.length) {
      chunk.copy(acc, buf.length);
    } else {
      acc = Buffer.allocUnsafe(Math.max(2 * len, 4096));
      buf.copy(acc, 0);
      chunk.copy(acc, buf.length);
      this.#acc = acc;
    }
    this.#buf = acc.subarray(0, len);
  }

  #onDownstreamEnd(): void {
    // Half-close from the client: finish the exchange in flight, then close; in a tunnel, pass it on.
    this.#downEnded = true;
    if (this.#phase === TUNNEL) {
      this.#current?.upstream?.socket.end();
      return;
    }
    if (!this.#current) this.#close();
  }

  #onDownstreamClose(): void {
    if (this.#phase === TUNNEL) this.#ctx.stats.cxUpgradesActive.dec();
    this.#closed = true;
    this.#phase = CLOSED;
    this.#buf = undefined;
    this.#acc = undefined;
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#headTimer);
    clearTimeout(this.#streamTimer);
    clearTimeout(this.#closeTimer);
    clearTimeout(this.#routeTimer);
    const ex = this.#current;
    if (ex) {
      ex.timed = false;
      if (ex.upstream) {
        ex.upstream.socket.destroy();
        ex.upstream = undefined;
      }
      this.#current = undefined;
    }
  }

  // --- timers -----------------------------------------------------------------------------------------

  #enterIdle(): void {
    this.#phase = IDLE;
    if (this.#idleMs <= 0) return;
    if (this.#idleTimer) this.#idleTimer.refresh();
    else this.#idleTimer = unrefTimer(() => this.#onIdleTimeout(), this.#idleMs);
  }

  #enterHead(): void {
    this.#phase = HEAD;
    if (this.#headersMs <= 0) return;
    if (this.#headTimer) this.#headTimer.refresh();
    else this.#headTimer = unrefTimer(() => this.#onHeadersTimeout(), this.#headersMs);
  }

  /** A request began: its stream idle timer (the route's idle_timeout, else the connection manager's). */
  #enterExchange(idleMs: number): void {
    this.#phase = EXCHANGE;
    this.#streamMs = idleMs;
    if (idleMs <= 0) {
      // None for this route: the timer of an earlier exchange must not fire on this one.
      clearTimeout(this.#streamTimer);
      this.#streamTimer = undefined;
      this.#streamTimerMs = 0;
      return;
    }
    if (this.#streamTimer && this.#streamTimerMs === idleMs) {
      this.#streamTimer.refresh();
      return;
    }
    clearTimeout(this.#streamTimer);
    this.#streamTimerMs = idleMs;
    this.#streamTimer = unrefTimer(() => this.#onStreamIdleTimeout(), idleMs);
  }

  #armRouteTimer(ex: Exchange, ms: number): void {
    ex.timed = true;
    if (this.#routeTimer && this.#routeTimerMs === ms) {
      this.#routeTimer.refresh();
      return;
    }
    clearTimeout(this.#routeTimer);
    this.#routeTimerMs = ms;
    this.#routeTimer = unrefTimer(() => {
      const current = this.#current;
      if (current?.timed) this.#timeout(current);
    }, ms);
  }

  #onIdleTimeout(): void {
    if (this.#phase !== IDLE || this.#closed) return;
    this.#ctx.stats.cxIdleTimeout.inc();
    this.#close();
  }

  #onHeadersTimeout(): void {
    if (this.#phase !== HEAD || this.#closed) return;
    const stats = this.#ctx.stats;
    stats.rqHeaderTimeout.inc();
    this.#refuse(408, 'request header timeout', '');
  }

  #onStreamIdleTimeout(): void {
    const ex = this.#current;
    if (this.#phase !== EXCHANGE || this.#closed || !ex || this.#streamMs <= 0) return;
    this.#ctx.stats.rqIdleTimeout.inc();
    if (ex.answered) {
      // The response started: nothing to do but reset the connection (Envoy resets the stream).
      if (ex.upstream) this.#abandonUpstream(ex, ex.upstream);
      this.#down.destroy();
      return;
    }
    this.#fail(ex, ex.framer.done ? 504 : 408, 'stream timeout', 'SI');
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#phase = CLOSED;
    this.#buf = undefined;
    this.#acc = undefined;
    const down = this.#down;
    down.end();
    // Keep reading (and dropping) until the client closes too; it gets delayedCloseMs without write progress.
    this.#pipelinePaused = false;
    down.resume();
    if (this.#delayedCloseMs > 0 && !down.destroyed) {
      this.#closeWritable = down.writableLength;
      this.#closeTimer = unrefTimer(() => this.#onDelayedClose(), this.#delayedCloseMs);
    }
  }

  #onDelayedClose(): void {
    const down = this.#down;
    if (down.destroyed) return;
    const left = down.writableLength;
    if (left > 0 && left < this.#closeWritable) {
      this.#closeWritable = left;
      this.#closeTimer!.refresh();
      return;
    }
    this.#ctx.stats.cxDelayedCloseTimeout.inc();
    down.destroy();
  }

  /** Parses what is buffered: the body of the current request, or the next request's head. */
  #process(): void {
    while (!this.#closed && this.#buf !== undefined) {
      const ex = this.#current;
      if (ex) {
        if (ex.requestComplete) {
          // Pipelined: waits for the response in flight, and the client is not read beyond a bound meanwhile.
          if (this.#buf.length > PIPELINE_BUFFER_LIMIT && !this.#pipelinePaused) {
            this.#pipelinePaused = true;
            this.#down.pause();
          }
          return;
        }
        const buf = this.#buf;
        this.#buf = undefined;
        this.#forwardRequestBody(ex, buf, 0);
        continue;
      }
      if (this.#pipelinePaused) {
        this.#pipelinePaused = false;
        this.#down.resume();
      }
      let parsed;
      try {
        parsed = parseRequestHead(this.#buf, 0, DEFAULT_HEAD_LIMITS, this.#scanned > 0 ? this.#scanned : undefined);
      } catch (e) {
        this.#refuseBadRequest(e);
        return;
      }
      if (!parsed) {
        this.#scanned = this.#buf.length;
        if (this.#phase !== HEAD) this.#enterHead();
        return;
      }
      this.#scanned = 0;
      this.#acc = undefined;
      const rest = parsed.end < this.#buf.length ? this.#buf.subarray(parsed.end) : undefined;
      const head = parsed.head;
      const raw = head.version === '1.1' && head.form === 'origin' && !head.expectContinue ? this.#buf.subarray(parsed.start, parsed.end) : undefined;
      this.#buf = undefined;
      this.#begin(head, rest, raw);
    }
    if (!this.#closed && !this.#current && this.#buf === undefined && this.#phase !== IDLE) this.#enterIdle();
  }

  #refuseBadRequest(e: unknown): void {
    const status = e instanceof HttpParseError ? e.status : 400;
    this.#ctx.stats.cxProtocolError.inc();
    this.#refuse(status, status === 431 ? 'Request Header Fields Too Large' : 'Bad Request', 'DPE');
  }

  /** A local reply to a request that never became one (unparseable, or its head did not arrive), then close. */
  #refuse(status: number, body: string, flags: string): void {
    const ctx = this.#ctx;
    ctx.stats.rqTotal.inc();
    ctx.stats.statusClass[Math.floor(status / 100) - 1]?.inc();
    const reply = localReply({ status, body, close: true });
    this.#down.write(reply);
    const log = ctx.accessLog;
    if (log) {
      const now = ctx.now();
      log({
        startTime: now, method: '-', path: '-', protocol: 'HTTP/1.1', status, responseFlags: flags || '-', bytesReceived: 0,
        bytesSent: reply.length, durationMs: 0, upstreamHost: undefined, authority: undefined, userAgent: undefined, requestId: undefined,
        upstreamCluster: undefined, downstreamRemoteAddress: ctx.remoteAddress,
      });
    }
    this.#close();
  }

  #begin(head: RequestHead, rest: Buffer | undefined, raw: Buffer | undefined): void {
    const ctx = this.#ctx;
    ctx.stats.rqTotal.inc();
    ctx.stats.rqHttp1Total.inc();
    const ex = new Exchange(head, ctx.now(), raw);
    if (head.upgrade !== undefined && ctx.upgrades !== undefined) ex.upgrade = ctx.upgrades.includes(head.upgrade.trim().toLowerCase());
    this.#current = ex;
    this.#phase = EXCHANGE;
    if (head.expectContinue) this.#down.write(CONTINUE_100);
    const table = ctx.routes();
    const sel = table ? selectRoute(table, { authority: head.host, path: head.path, method: head.method, scheme: ctx.scheme, header: headerView(head) }, ctx.random) : undefined;
    if (!sel || sel.kind !== 'route') {
      ctx.stats.noRoute.inc();
      ex.flags = 'NR';
      this.#buf = rest;
      this.#localReply(ex, 404, '');
      return;
    }
    ex.selection = sel;
    const cluster = ctx.cluster(sel.cluster);
    if (!cluster) {
      ctx.stats.noCluster.inc();
      ex.flags = 'NC';
      this.#buf = rest;
      this.#localReply(ex, sel.route.action.clusterNotFoundStatus, '');
      return;
    }
    ex.cluster = cluster;
    cluster.stats.rqTotal.inc();
    this.#enterExchange(sel.route.action.idleTimeoutMs ?? this.#streamIdleMs);
    const timeoutMs = sel.route.action.timeoutMs;
    if (timeoutMs > 0) this.#armRouteTimer(ex, timeoutMs);
    if (rest) this.#forwardRequestBody(ex, rest, 0);
    this.#attempt(ex);
  }

  #forwardRequestBody(ex: Exchange, buf: Buffer, offset: number): void {
    let n: number;
    try {
      n = ex.framer.feed(buf, offset);
    } catch {
      this.#ctx.stats.cxProtocolError.inc();
      this.#fail(ex, 400, 'bad request body', 'DPE');
      return;
    }
    if (n > 0) {
      const slice = offset === 0 && n === buf.length ? buf : buf.subarray(offset, offset + n);
      ex.bodyBytes += n;
      if (ex.replay) {
        if (ex.replayBytes + n <= RETRY_BUFFER_LIMIT) {
          if (ex.replay === NO_BYTES) ex.replay = [slice];
          else ex.replay.push(slice);
          ex.replayBytes += n;
        } else {
          ex.replay = undefined;
        }
      }
      const up = ex.upstream;
      if (up && !ex.response) {
        forward(slice, up.socket, this.#down);
      } else if (!up && ex.attempts <= 1) {
        if (ex.unsent === NO_BYTES) ex.unsent = [slice];
        else ex.unsent.push(slice);
        ex.unsentBytes += n;
        // Not connected yet: hold the client back rather than buffer without bound.
        if (ex.unsentBytes > RETRY_BUFFER_LIMIT) this.#down.pause();
      }
    }
    if (offset + n < buf.length) this.#buf = this.#buf ? Buffer.concat([buf.subarray(offset + n), this.#buf]) : buf.subarray(offset + n);
    if (ex.framer.done && ex.response && ex.responseFramer?.done) this.#finish(ex);
  }

  // --- upstream ---------------------------------------------------------------------------------------

  #attempt(ex: Exchange): void {
    // [http2] An HTTP/2 cluster: the exchange goes out as a stream on its pooled HTTP/2 session, through a handle
    // whose connections speak HTTP/1.1 to this session (h1-to-h2.ts). Owned by the HTTP/2 work.
    if (ex.cluster!.http2) ex.cluster = viaHttp2(ex.cluster!);
    const cluster = ex.cluster!;
    ex.attempts++;
    // The fast path: an idle pooled connection, taken synchronously (no promise, no re-registered listeners).
    const idle = cluster.takeIdle?.();
    if (idle) {
      ex.upstream = idle;
      ex.upstreamHost = idle.host;
      this.#send(ex, idle);
      return;
    }
    cluster.connect().then((conn) => {
      if (this.#current !== ex || this.#closed) {
        cluster.release(conn, true);
        return;
      }
      ex.upstream = conn;
      ex.upstreamHost = conn.host;
      this.#send(ex, conn);
    }, (e: unknown) => {
      if (this.#current !== ex) return;
      const reason = e instanceof UpstreamConnectError ? e.reason : 'connect-failure';
      if (reason === 'no-healthy-upstream') {
        // upstream_cx_none_healthy: counted by the cluster's host set, where the pick found none.
        this.#fail(ex, 503, 'no healthy upstream', 'UH');
        return;
      }
      if (reason === 'overflow') {
        cluster.stats.rqPendingOverflow.inc();
        this.#fail(ex, 503, 'upstream connect error or disconnect/reset before headers. reset reason: overflow', 'UO');
        return;
      }
      if (this.#retry(ex, 'connect-failure')) return;
      this.#fail(ex, 503, `upstream connect error or disconnect/reset before headers. reset reason: connection failure${e instanceof Error && e.message ? `, transport failure reason: ${e.message}` : ''}`, 'UF');
    });
  }

  /** The request head for the upstream: X-Forwarded-Proto set, the route's host and path rewrites applied. */
  #upstreamHead(ex: Exchange, conn: UpstreamConnection): Buffer {
    const sel = ex.selection!;
    const hostRewrite = sel.host ?? (sel.autoHostRewrite ? conn.host.hostname : undefined);
    const raw = ex.rawHead;
    // Most requests need no rewriting but X-Forwarded-Proto (and hop-by-hop fields dropped): their bytes go out
    // as received, less those lines (no re-serializing).
    if (raw && hostRewrite === undefined && !sel.pathRewritten && sel.path === ex.head.target && !ex.upgrade) {
      const h = ex.head;
      const edited = rawHeadWithout(raw, h.headers, h.connectionTokens, 'x-forwarded-proto', FORWARDED_PROTO_LINE[this.#ctx.scheme]);
      if (edited) return edited;
    }
    const set: string[] = ['x-forwarded-proto', this.#ctx.scheme];
    if (hostRewrite !== undefined) set.push('host', hostRewrite);
    if (sel.pathRewritten) set.push('x-envoy-original-path', ex.head.path);
    // 100-continue was answered here (Envoy's default), so the upstream is not asked again.
    return serializeRequestHead(ex.head, {
      target: sel.path, set, ...(ex.head.expectContinue ? { remove: ['expect'] } : {}), ...(ex.upgrade ? { connection: 'upgrade' as const } : {}),
    });
  }

  #send(ex: Exchange, conn: UpstreamConnection): void {
    const head = this.#upstreamHead(ex, conn);
    const sock = conn.socket;
    ex.upstreamBuf = undefined;
    ex.response = undefined;
    ex.responseFramer = undefined;
    const link = linkOf(sock);
    link.handler = this.#link;
    link.ex = ex;
    link.conn = conn;
    // A retry replays the whole body received so far; the first attempt sends what arrived while connecting.
    const body = ex.attempts > 1 ? (ex.replay ?? []) : ex.unsent;
    // One write (one TLS record, one syscall) for the head and whatever body bytes are here.
    sock.write(body.length === 0 ? head : Buffer.concat([head, ...body]));
    if (ex.unsentBytes > RETRY_BUFFER_LIMIT) this.#down.resume();
    ex.unsent = NO_BYTES;
    ex.unsentBytes = 0;
    sock.resume();
  }

  #onUpstream(ex: Exchange, conn: UpstreamConnection, chunk: Buffer): void {
    if (this.#current !== ex || ex.upstream !== conn) return;
    if (this.#streamMs > 0) this.#streamTimer!.refresh();
    if (!ex.response) {
      const buf = ex.upstreamBuf ? Buffer.concat([ex.upstreamBuf, chunk]) : chunk;
      let parsed;
      try {
        parsed = parseResponseHead(buf, 0, ex.head.method);
      } catch {
        this.#abandonUpstream(ex, conn);
        this.#fail(ex, 503, 'upstream sent an invalid response', 'UPE');
        return;
      }
      if (!parsed) {
        ex.upstreamBuf = buf;
        return;
      }
      ex.upstreamBuf = undefined;
      const resp = parsed.head;
      if (resp.status >= 100 && resp.status < 200 && resp.status !== 101) {
        // Interim responses (100 Continue was answered locally): skip them.
        const rest = buf.subarray(parsed.end);
        if (rest.length > 0) this.#onUpstream(ex, conn, rest);
        return;
      }
      if (resp.status === 101) {
        if (ex.upgrade && resp.upgrade !== undefined) {
          this.#tunnel(ex, conn, resp, buf.subarray(parsed.end));
          return;
        }
        // Switching protocols nobody asked for (or without saying to what): the connection is no longer HTTP.
        this.#abandonUpstream(ex, conn);
        this.#fail(ex, 503, 'upstream sent an invalid response', 'UPE');
        return;
      }
      const policy = ex.selection!.route.action.retryPolicy;
      if (policy && retriableStatus(policy, resp.status) && this.#canRetry(ex, policy)) {
        ex.cluster!.outcome(conn.host, resp.status);
        this.#abandonUpstream(ex, conn);
        this.#scheduleRetry(ex, policy!);
        return;
      }
      ex.response = resp;
      ex.responseFramer = new BodyFramer(resp.framing, undefined, 'response');
      ex.cluster!.outcome(conn.host, resp.status);
      ex.cluster!.stats.status(resp.status);
      ex.answered = true;
      ex.timed = false;
      const keep = resp.keepAlive && ex.head.keepAlive && resp.framing.kind !== 'close' && !this.#draining && !this.#downEnded;
      ex.responseBytes = 0;
      // The head and the body bytes already here go out in one write (one syscall, one TLS record). Without
      // hop-by-hop fields and with nothing to add, an HTTP/1.1 head goes out as the bytes received; with them
      // (nginx's `Connection: keep-alive`), as the bytes received less those lines.
      if (keep && resp.version === '1.1') {
        if (!resp.hopByHop) {
          this.#forwardResponseBody(ex, conn, parsed.start === 0 ? buf : buf.subarray(parsed.start), parsed.end - parsed.start);
          return;
        }
        const rest = parsed.end < buf.length ? buf.subarray(parsed.end) : undefined;
        const edited = rawHeadWithout(buf.subarray(parsed.start, parsed.end), resp.headers, resp.connectionTokens, undefined, undefined, rest);
        if (edited) {
          this.#forwardResponseBody(ex, conn, edited, edited.length - (rest?.length ?? 0));
          return;
        }
      }
      const out = serializeResponseHead(resp, keep ? {} : { connection: 'close' });
      this.#forwardResponseBody(ex, conn, parsed.end < buf.length ? Buffer.concat([out, buf.subarray(parsed.end)]) : out, out.length);
      return;
    }
    this.#forwardResponseBody(ex, conn, chunk);
  }

  /**
   * The upstream accepted the upgrade (101): the response goes down with its Upgrade and `Connection: upgrade`,
   * then the two connections relay bytes both ways (with back-pressure) until one ends; the upstream connection is
   * never pooled again. Timeouts stop: a WebSocket may stay quiet for long (Envoy's upgraded streams keep only
   * the idle timeouts their routes set; the routes keymesh emits set none).
   */
  #tunnel(ex: Exchange, conn: UpstreamConnection, resp: ResponseHead, rest: Buffer): void {
    const ctx = this.#ctx;
    const down = this.#down;
    const up = conn.socket;
    ex.response = resp;
    ex.answered = true;
    ex.timed = false;
    clearTimeout(this.#streamTimer);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#headTimer);
    this.#streamTimer = this.#idleTimer = this.#headTimer = undefined;
    this.#streamMs = 0;
    this.#phase = TUNNEL;
    ex.cluster!.outcome(conn.host, 101);
    ex.cluster!.stats.status(101);
    ctx.stats.statusClass[0]?.inc();
    ctx.stats.cxUpgradesTotal.inc();
    ctx.stats.cxUpgradesActive.inc();
    const head = serializeResponseHead(resp, { connection: 'upgrade' });
    ex.responseBytes = rest.length;
    down.write(rest.length > 0 ? Buffer.concat([head, rest]) : head);
    // What the client sent after its request (already buffered here) is the start of its side of the tunnel.
    const early = this.#buf;
    this.#buf = undefined;
    this.#acc = undefined;
    if (this.#pipelinePaused) {
      this.#pipelinePaused = false;
      down.resume();
    }
    if (early) this.#relayUp(ex, early);
    const link = linkOf(up);
    // Whichever side ends first ends the tunnel; its one access log entry is written then.
    let logged = false;
    const logOnce = () => {
      if (logged) return;
      logged = true;
      this.#log(ex, 101);
    };
    link.handler = {
      data: (_ex, _conn, chunk) => {
        ex.responseBytes += chunk.length;
        forward(chunk, down, up);
      },
      end: () => {
        logOnce();
        if (up.destroyed) down.destroy();
        else down.end();
      },
    };
    link.ex = ex;
    link.conn = conn;
    down.once('close', () => {
      logOnce();
      up.destroy();
    });
  }

  /** Client bytes into the tunnel. */
  #relayUp(ex: Exchange, chunk: Buffer): void {
    const up = ex.upstream?.socket;
    if (!up || up.destroyed) return;
    ex.bodyBytes += chunk.length;
    forward(chunk, up, this.#down);
  }

  /** Forwards the body bytes at buf[from..]; buf[0..from), if any, is a head that goes out with them. */
  #forwardResponseBody(ex: Exchange, conn: UpstreamConnection, buf: Buffer, from = 0): void {
    let n: number;
    try {
      n = ex.responseFramer!.feed(buf, from);
    } catch {
      this.#abandonUpstream(ex, conn);
      this.#down.destroy();
      return;
    }
    const end = from + n;
    if (end > 0) {
      ex.responseBytes += n;
      forward(end === buf.length ? buf : buf.subarray(0, end), this.#down, conn.socket);
    }
    if (ex.responseFramer!.done) {
      // Extra bytes after a complete response: the upstream is not speaking HTTP properly; do not reuse it.
      if (end < buf.length) ex.tainted = true;
      this.#finish(ex);
    }
  }

  #onUpstreamEnd(ex: Exchange, conn: UpstreamConnection): void {
    if (this.#current !== ex || ex.upstream !== conn) return;
    const framer = ex.responseFramer;
    if (framer && framer.framing.kind === 'close') {
      try {
        framer.finish();
      } catch {
        // nothing
      }
      ex.tainted = true;
      this.#finish(ex);
      return;
    }
    if (ex.response) {
      // Reset mid-response: nothing to do but end the downstream connection.
      ex.upstream = undefined;
      ex.cluster!.release(conn, false);
      this.#down.destroy();
      return;
    }
    ex.cluster!.outcome(conn.host, 'reset');
    this.#abandonUpstream(ex, conn);
    if (this.#retry(ex, 'reset', conn.reused)) return;
    this.#fail(ex, 503, 'upstream connect error or disconnect/reset before headers. reset reason: connection termination', 'UC');
  }

  #abandonUpstream(ex: Exchange, conn: UpstreamConnection): void {
    unlink(ex, conn);
    ex.upstream = undefined;
    ex.cluster!.release(conn, false);
  }

  #canRetry(ex: Exchange, policy: RetryPolicy | undefined): boolean {
    return policy !== undefined && !ex.answered && ex.replay !== undefined && ex.attempts <= policy.numRetries;
  }

  /** A failure before the response: retried per policy; a reused pooled connection that was reset is always tried once more. */
  #retry(ex: Exchange, what: 'connect-failure' | 'reset', reusedReset = false): boolean {
    const policy = ex.selection!.route.action.retryPolicy;
    if (reusedReset && !ex.answered && ex.replay !== undefined && ex.attempts <= (policy?.numRetries ?? 0) + 1) {
      this.#attempt(ex);
      return true;
    }
    if (!policy || !retriableFailure(policy, what) || !this.#canRetry(ex, policy)) return false;
    this.#scheduleRetry(ex, policy!);
    return true;
  }

  #scheduleRetry(ex: Exchange, policy: RetryPolicy): void {
    ex.cluster!.stats.rqRetry.inc();
    const cap = Math.min(policy.backOff.maxMs, policy.backOff.baseMs * 2 ** (ex.attempts - 1));
    const wait = Math.floor((this.#ctx.random ?? Math.random)() * cap);
    const t = setTimeout(() => {
      if (this.#current === ex && !this.#closed) this.#attempt(ex);
    }, wait);
    t.unref();
  }

  #timeout(ex: Exchange): void {
    if (this.#current !== ex) return;
    ex.cluster?.stats.rqTimeout.inc();
    this.#ctx.stats.rqTimeout.inc();
    if (ex.upstream) {
      ex.cluster!.outcome(ex.upstream.host, 'timeout');
      this.#abandonUpstream(ex, ex.upstream);
    }
    if (ex.answered) {
      this.#down.destroy();
      return;
    }
    this.#fail(ex, 504, 'upstream request timeout', 'UT');
  }

  // --- ending an exchange -----------------------------------------------------------------------------

  #fail(ex: Exchange, status: number, body: string, flags: string): void {
    ex.timed = false;
    ex.flags = flags;
    if (ex.upstream) this.#abandonUpstream(ex, ex.upstream);
    this.#localReply(ex, status, body);
  }

  #localReply(ex: Exchange, status: number, body: string): void {
    const keep = ex.head.keepAlive && ex.framer.done && !this.#draining && !this.#downEnded;
    this.#down.write(localReply({ status, body, close: !keep, headRequest: ex.head.method === 'HEAD' }));
    ex.answered = true;
    this.#log(ex, status);
    this.#ctx.stats.statusClass[Math.floor(status / 100) - 1]?.inc();
    this.#current = undefined;
    if (!keep) this.#close();
    else this.#process();
  }

  #finish(ex: Exchange): void {
    if (this.#current !== ex) return;
    if (!ex.framer.done) return; // the response is complete but the request body is still coming: wait for it
    const resp = ex.response!;
    const conn = ex.upstream;
    if (conn) {
      unlink(ex, conn);
      ex.upstream = undefined;
      const reusable = resp.keepAlive && resp.framing.kind !== 'close' && !ex.tainted;
      ex.cluster!.release(conn, reusable);
    }
    ex.cluster!.stats.rqTime.record(this.#ctx.now() - ex.started);
    this.#ctx.stats.statusClass[Math.floor(resp.status / 100) - 1]?.inc();
    if (ex.attempts > 1) ex.cluster!.stats.rqRetrySuccess.inc();
    this.#log(ex, resp.status);
    this.#current = undefined;
    if (!resp.keepAlive || !ex.head.keepAlive || resp.framing.kind === 'close' || this.#draining || this.#downEnded) {
      this.#close();
      return;
    }
    this.#process();
  }

  #log(ex: Exchange, status: number): void {
    const log = this.#ctx.accessLog;
    if (!log) return;
    log({
      startTime: ex.started, method: ex.head.method, path: ex.head.path, protocol: `HTTP/${ex.head.version}`, status,
      responseFlags: ex.flags || '-', bytesReceived: ex.bodyBytes, bytesSent: ex.responseBytes, durationMs: this.#ctx.now() - ex.started,
      upstreamHost: ex.upstreamHost && `${ex.upstreamHost.address}:${ex.upstreamHost.port}`, authority: ex.head.host,
      userAgent: header(ex.head, 'user-agent'), requestId: header(ex.head, 'x-request-id'), upstreamCluster: ex.cluster?.name,
      downstreamRemoteAddress: this.#ctx.remoteAddress,
    });
  }
}

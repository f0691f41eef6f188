// HTTP/2 downstream connections through the HTTP connection manager (h2 over TLS by ALPN, h2c with prior
// knowledge, or the AUTO codec seeing the preface): a node:http2 server session on the connection, and per stream
// an exchange that routes the request (RDS), forwards it to the cluster, and answers on the stream.
//
// Upstream: an HTTP/2 cluster gets the request as a stream on a pooled session (h2-pool.ts); an HTTP/1.1 cluster
// gets it as an HTTP/1.1 request on a pooled connection (h2-to-h1.ts). Bodies stream both ways with flow control
// (a full side pauses the other: HTTP/2 windows stop being replenished), trailers pass both ways (gRPC's status
// is in them), and RST_STREAM goes across: a downstream reset cancels the upstream stream with the client's code,
// an upstream reset after the response started resets the downstream stream with the server's code.
//
// Envoy's behaviour kept (as the HTTP/1 forwarder, http1-session.ts, does):
// - 404 when no route matches (NR), the route's cluster_not_found_response_code when the cluster does not exist
//   (NC), 503 `no healthy upstream` (UH), 503 `upstream connect error or disconnect/reset before headers. reset
//   reason: ...` (UF, UO, UC, UR), 504 `upstream request timeout` (UT), 408 `stream timeout` (SI).
// - A gRPC request (content-type application/grpc...) gets those answers the gRPC way: HTTP 200, trailers-only,
//   grpc-status by Envoy's httpToGrpcStatus (404 → UNIMPLEMENTED 12, 503 and 504 → UNAVAILABLE 14, 408 →
//   UNKNOWN 2), grpc-message the text. Envoy passes no gRPC status for its upstream timeout, so a route timeout is
//   UNAVAILABLE, not DEADLINE_EXCEEDED; the client's own deadline (grpc-timeout) is only forwarded: Envoy reads
//   it only with max_grpc_timeout / max_stream_duration, which keymesh's translation does not emit.
// - Route timeout (default 15 s; 0 = none) from the end of the downstream request to the end of the upstream
//   response; when it fires after the response started, the stream is reset. Per-try timeout (retry policy).
// - Retries per the route's policy while nothing was sent downstream and the request body (64 KiB at most) can
//   be replayed: status conditions, gRPC conditions on a grpc-status in the response headers, connect failures,
//   resets, refused streams; a stream the server refused (REFUSED_STREAM, GOAWAY) or a reset reused HTTP/1
//   connection is sent once more regardless (nothing was processed). Jittered exponential back-off.
// - Stream idle timeout: the route's idle_timeout, else the connection manager's default (5 minutes); before the
//   response it answers 408, after it resets the stream. A connection without streams for 1 hour is closed
//   (GOAWAY). `Expect: 100-continue` is answered here and not forwarded.
// - Forwarded headers: connection-specific fields dropped (RFC 9113 §8.2.2; `te: trailers` kept), :path and
//   :authority rewritten by the route (x-envoy-original-path when the path was), x-forwarded-proto set from the
//   downstream connection. No `date` is added to forwarded responses.
// - Stats: downstream_rq_total, downstream_rq_<n>xx (at the response headers; a gRPC local reply is a 2xx),
//   no_route, no_cluster, downstream_rq_timeout (as the HTTP/1 forwarder counts it), and — when the stats came
//   from httpStatsWithHttp2 — downstream_rq_http2_total, downstream_cx_http2_total, downstream_rq_idle_timeout;
//   cluster upstream_rq_total (each try), upstream_rq_<code>, upstream_rq_time, upstream_rq_timeout,
//   upstream_rq_retry, upstream_rq_retry_success, upstream_rq_pending_overflow (upstream_cx_none_healthy is counted
//   by the cluster's host set, where a pick finds no host).
// - One access log entry per stream, when the stream closes, with Envoy's response flags (DC when the client
//   went away first).
import * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { StatsScope } from '../admin/stats.ts';
import type { DownstreamConnection } from '../listeners/listener.ts';
import type { RetryPolicy } from '../routing/compile.ts';
import { selectRoute, type RouteSelection } from '../routing/select.ts';
import {
  CONNECTION_IDLE_TIMEOUT_MS, CONNECTION_WINDOW, DEFAULT_STREAM_IDLE_TIMEOUT_MS, H2_RETRY_BUFFER_LIMIT, MAX_CONCURRENT_STREAMS,
  MAX_HEADER_LIST_SIZE, MAX_HEADER_PAIRS, NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR, STREAM_WINDOW,
  cleanResponseHeaders, connectionSpecific, isHeaderError, grpcMessage, grpcStatusForHttp, http2Counters, httpStatusForGrpc, isGrpcContentType,
  rawGet, resetReasonText, resetStream, retriableFailure, retriableGrpc, retriableStatus, retryBackOffMs, teTrailers,
  type Http2ManagerStats, type UpstreamFailureKind,
} from './h2-common.ts';
import { h2Pool, type H2ResetKind, type H2StreamEvents, type PooledH2Session } from './h2-pool.ts';
import { H1Upstream, h1BodyKind, h1RequestHead, type UpstreamAttempt } from './h2-to-h1.ts';
import { httpManagerStats, type Http1Context } from './http1-session.ts';
import { UpstreamConnectError, type ClusterHandle, type UpstreamConnection, type UpstreamHost } from './upstream-api.ts';

export type { Http2ManagerStats } from './h2-common.ts';

/**
 * httpManagerStats plus the HTTP/2 counters (downstream_rq_http2_total, downstream_cx_http2_total,
 * downstream_rq_idle_timeout). handleHttp2 counts them when the connection manager's stats were built with this.
 */
export function httpStatsWithHttp2(scope: StatsScope): Http2ManagerStats {
  return {
    ...httpManagerStats(scope),
    rqHttp2Total: scope.counter('downstream_rq_http2_total'),
    cxHttp2Total: scope.counter('downstream_cx_http2_total'),
    rqIdleTimeout: scope.counter('downstream_rq_idle_timeout'),
  };
}

const SERVER_OPTIONS: http2.ServerOptions = {
  settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, initialWindowSize: STREAM_WINDOW, maxHeaderListSize: MAX_HEADER_LIST_SIZE },
  maxHeaderListPairs: MAX_HEADER_PAIRS,
  maxSessionMemory: 64,
};

function noop(): void {}

/** Starts the HTTP/2 server side of a downstream connection. */
export function handleHttp2(conn: DownstreamConnection, ctx: Http1Context): void {
  new DownstreamH2(conn, ctx);
}

class DownstreamH2 {
  readonly ctx: Http1Context;
  readonly counters: ReturnType<typeof http2Counters>;
  #session: http2.ServerHttp2Session | undefined;
  #active = 0;
  #idle: NodeJS.Timeout | undefined;

  constructor(conn: DownstreamConnection, ctx: Http1Context) {
    this.ctx = ctx;
    this.counters = http2Counters(ctx.stats);
    this.counters.cxHttp2Total?.inc();
    const socket = conn.socket;
    socket.on('error', noop);
    if (socket.readableLength === 0) {
      this.#start(socket);
      return;
    }
    // Bytes already read (the preface, seen by the listener's inspector or the AUTO codec) were put back on the
    // socket. node's Http2Session takes such bytes on the tick after it is created, but the listener resumes the
    // socket right after its handler returns, and a flowing socket would hand them to nobody first. So they are
    // collected until the current turn is over, put back, and the session created on a paused socket.
    const held: Buffer[] = [];
    const collect = (chunk: Buffer) => held.push(chunk);
    socket.on('data', collect);
    setImmediate(() => {
      socket.off('data', collect);
      socket.pause();
      if (socket.destroyed) return;
      let b: Buffer | null;
      while ((b = socket.read() as Buffer | null) !== null) held.push(b);
      if (held.length > 0) socket.unshift(held.length === 1 ? held[0]! : Buffer.concat(held));
      this.#start(socket);
    });
  }

  #start(socket: Duplex): void {
    const session = http2.performServerHandshake(socket, SERVER_OPTIONS);
    this.#session = session;
    session.on('stream', (stream: http2.ServerHttp2Stream, _headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]) => {
      this.#active++;
      new H2Exchange(this, stream, raw);
    });
    session.on('error', noop);
    session.on('frameError', noop);
    session.once('close', () => clearTimeout(this.#idle));
    try {
      session.setLocalWindowSize(CONNECTION_WINDOW);
    } catch {
      // the connection is already gone
    }
    this.#armIdle();
  }

  streamClosed(): void {
    if (--this.#active === 0) this.#armIdle();
  }

  #armIdle(): void {
    if (this.#idle) {
      this.#idle.refresh();
      return;
    }
    this.#idle = setTimeout(() => {
      const s = this.#session;
      if (this.#active === 0 && s && !s.closed && !s.destroyed) s.close();
    }, CONNECTION_IDLE_TIMEOUT_MS);
    this.#idle.unref();
  }
}

/** Who ended an exchange before its response completed, as Envoy's response flags say it. */
type Flag = '' | 'NR' | 'NC' | 'UH' | 'UO' | 'UF' | 'UC' | 'UR' | 'UT' | 'UPE' | 'SI' | 'DC' | 'URX';

const END_STREAM_RESPOND = { endStream: true, sendDate: false } as http2.ServerStreamResponseOptions;
const STREAMING_RESPOND = { endStream: false, waitForTrailers: true, sendDate: false } as http2.ServerStreamResponseOptions;

/** One downstream stream: a request, its tries upstream, and the response. */
class H2Exchange implements H2StreamEvents {
  readonly #s: DownstreamH2;
  readonly #down: http2.ServerHttp2Stream;
  readonly #raw: string[];
  readonly #method: string;
  readonly #path: string;
  readonly #authority: string | undefined;
  readonly #scheme: string | undefined;
  readonly #grpc: boolean;
  readonly #started: number;
  #sel: RouteSelection | undefined;
  #cluster: ClusterHandle | undefined;
  #policy: RetryPolicy | undefined;
  #continue = false;

  // request
  #reqEnded: boolean;
  #reqTrailers: http2.IncomingHttpHeaders | undefined;
  /** The body so far, for a retry; undefined once it outgrew the limit. */
  #replay: Buffer[] | undefined = [];
  #replayBytes = 0;
  /** Body received while no try was open. */
  #held: Buffer[] | undefined;
  #heldBytes = 0;
  #bodyBytes = 0;
  #downPaused = false;

  // upstream
  #attempt: UpstreamAttempt | undefined;
  #attempts = 0;
  #host: UpstreamHost | undefined;
  #routeTimer: NodeJS.Timeout | undefined;
  #tryTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;

  // response
  /** Response headers went downstream (no retry, no local reply after this). */
  #answered = false;
  /** Nothing more comes from upstream (response complete, local reply, or given up). */
  #upstreamDone = false;
  #status = 0;
  #respTrailers: http2.IncomingHttpHeaders | undefined;
  #responseBytes = 0;
  #flags: Flag = '';
  #closed = false;

  constructor(s: DownstreamH2, down: http2.ServerHttp2Stream, raw: string[]) {
    this.#s = s;
    this.#down = down;
    this.#raw = raw;
    const ctx = s.ctx;
    this.#started = ctx.now();
    let method = 'GET';
    let path = '';
    let authority: string | undefined;
    let host: string | undefined;
    let scheme: string | undefined;
    let ct: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      switch (name) {
        case ':method': method = raw[i + 1]!; break;
        case ':path': path = raw[i + 1]!; break;
        case ':authority': authority = raw[i + 1]!; break;
        case ':scheme': scheme = raw[i + 1]!; break;
        case 'host': host = raw[i + 1]!; break;
        case 'content-type': ct = raw[i + 1]!; break;
        case 'expect': if (raw[i + 1]!.toLowerCase() === '100-continue') this.#continue = true; break;
      }
    }
    this.#method = method;
    this.#path = path;
    this.#authority = authority ?? host;
    this.#scheme = scheme;
    this.#grpc = path !== '' && isGrpcContentType(ct);
    this.#reqEnded = down.endAfterHeaders;
    ctx.stats.rqTotal.inc();
    s.counters.rqHttp2Total?.inc();

    down.on('error', noop);
    down.once('close', () => this.#onClose());
    down.on('drain', () => this.#attempt?.resume());
    down.on('wantTrailers', () => {
      try {
        down.sendTrailers(this.#respTrailers ?? {});
      } catch {
        resetStream(down, NGHTTP2_INTERNAL_ERROR); // trailers node refuses to send
      }
    });
    if (!this.#reqEnded) {
      down.on('data', (chunk: Buffer) => this.#onRequestData(chunk));
      down.on('trailers', (t: http2.IncomingHttpHeaders) => {
        this.#reqTrailers = t;
      });
      down.once('end', () => {
        // node ends the readable side of a reset stream too: that is no complete request ('close' follows).
        const rst = down.rstCode;
        if (rst === undefined || rst === NGHTTP2_NO_ERROR) this.#onRequestEnd();
      });
    }
    this.#route();
  }

  // --- routing -----------------------------------------------------------------------------------------

  #route(): void {
    const ctx = this.#s.ctx;
    const table = ctx.routes();
    const raw = this.#raw;
    const sel = table ? selectRoute(table, { authority: this.#authority, path: this.#path, method: this.#method, scheme: this.#scheme, header: (name) => headerValues(raw, name) }, ctx.random) : undefined;
    if (!sel || sel.kind !== 'route') {
      ctx.stats.noRoute.inc();
      this.#localReply(404, '', 'NR');
      return;
    }
    this.#sel = sel;
    this.#policy = sel.route.action.retryPolicy;
    const cluster = ctx.cluster(sel.cluster);
    if (!cluster) {
      ctx.stats.noCluster.inc();
      this.#localReply(sel.route.action.clusterNotFoundStatus, '', 'NC');
      return;
    }
    this.#cluster = cluster;
    const idle = sel.route.action.idleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS;
    if (idle > 0) this.#down.setTimeout(idle, () => this.#onIdle());
    if (this.#continue && !this.#reqEnded) {
      try {
        this.#down.additionalHeaders({ ':status': 100 });
      } catch {
        // closed meanwhile
      }
    }
    if (this.#reqEnded) this.#armRouteTimer();
    this.#try();
  }

  // --- the request body ----------------------------------------------------------------------------------

  #onRequestData(chunk: Buffer): void {
    if (this.#upstreamDone) return; // answered already: the rest of the request is dropped
    const n = chunk.length;
    this.#bodyBytes += n;
    if (this.#replay) {
      if (this.#replayBytes + n <= H2_RETRY_BUFFER_LIMIT) {
        this.#replay.push(chunk);
        this.#replayBytes += n;
      } else {
        this.#replay = undefined;
      }
    }
    const a = this.#attempt;
    if (a) {
      if (!a.write(chunk)) this.#pauseDown();
      return;
    }
    (this.#held ??= []).push(chunk);
    this.#heldBytes += n;
    // No try open (connecting, or backing off): hold the client back rather than buffer without bound.
    if (this.#heldBytes > H2_RETRY_BUFFER_LIMIT) this.#pauseDown();
  }

  #onRequestEnd(): void {
    this.#reqEnded = true;
    if (this.#upstreamDone) return;
    this.#armRouteTimer();
    const a = this.#attempt;
    if (a) {
      a.end(this.#reqTrailers);
      this.#armTryTimer();
    }
  }

  #pauseDown(): void {
    if (this.#downPaused) return;
    this.#downPaused = true;
    this.#down.pause();
  }

  #resumeDown(): void {
    if (!this.#downPaused) return;
    this.#downPaused = false;
    this.#down.resume();
  }

  /** What a new try must send first: everything so far on a retry, what was held on the first try. */
  #bodyForTry(): readonly Buffer[] {
    const body = this.#attempts > 1 ? (this.#replay ?? []) : (this.#held ?? []);
    this.#held = undefined;
    this.#heldBytes = 0;
    return body;
  }

  // --- tries -----------------------------------------------------------------------------------------------

  #try(): void {
    const cluster = this.#cluster!;
    this.#attempts++;
    if (cluster.http2) {
      let got: PooledH2Session | Promise<PooledH2Session>;
      try {
        got = h2Pool(cluster).acquire();
      } catch (e) {
        this.#connectFailed(e);
        return;
      }
      if (got instanceof Promise) got.then((s) => this.#openH2(s), (e: unknown) => this.#connectFailed(e));
      else this.#openH2(got);
    } else {
      cluster.connect().then((conn) => this.#openH1(conn), (e: unknown) => this.#connectFailed(e));
    }
  }

  #live(): boolean {
    return !this.#closed && !this.#upstreamDone && !this.#answered;
  }

  #openH2(s: PooledH2Session): void {
    if (!this.#live()) return;
    const sel = this.#sel!;
    const raw = this.#raw;
    const host = s.conn.host;
    const authority = sel.host ?? (sel.autoHostRewrite && host.hostname ? host.hostname : this.#authority);
    const headers: string[] = [':method', this.#method, ':scheme', this.#scheme ?? (s.tls ? 'https' : 'http'), ':path', sel.path];
    if (authority !== undefined) headers.push(':authority', authority);
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.charCodeAt(0) === 58 /* : */ || name === 'host' || name === 'x-forwarded-proto' || name === 'x-envoy-original-path') continue;
      const cs = connectionSpecific(name);
      if (cs === 1 || (cs === 2 && !teTrailers(raw[i + 1]!))) continue;
      if (name === 'expect' && this.#continue) continue;
      headers.push(name, cs === 2 ? 'trailers' : raw[i + 1]!);
    }
    headers.push('x-forwarded-proto', this.#s.ctx.scheme);
    if (sel.pathRewritten) headers.push('x-envoy-original-path', this.#path);
    const body = this.#bodyForTry();
    const endStream = this.#reqEnded && body.length === 0 && this.#reqTrailers === undefined;
    this.#cluster!.stats.rqTotal.inc();
    let up: UpstreamAttempt;
    try {
      up = s.open(headers, endStream, this);
    } catch (e) {
      this.#host = host;
      if (isHeaderError(e)) {
        this.#fail(503, `upstream connect error or disconnect/reset before headers. reset reason: ${resetReasonText('protocol')}`, 'UPE');
      } else if (this.#replay !== undefined && this.#attempts <= (this.#policy?.numRetries ?? 0) + 1) {
        // The session was closing (it has left the pool now): another one takes the request (the next try
        // replays the body).
        this.#try();
      } else {
        this.#fail(503, `upstream connect error or disconnect/reset before headers. reset reason: ${resetReasonText('refused')}`, 'UR');
      }
      return;
    }
    this.#tryOpened(up, body);
  }

  #openH1(conn: UpstreamConnection): void {
    const cluster = this.#cluster!;
    if (!this.#live()) {
      cluster.release(conn, true);
      return;
    }
    const sel = this.#sel!;
    const raw = this.#raw;
    const authority = sel.host ?? (sel.autoHostRewrite && conn.host.hostname ? conn.host.hostname : this.#authority);
    const body = this.#bodyForTry();
    const hasBody = !this.#reqEnded || body.length > 0 || this.#reqTrailers !== undefined;
    const kind = h1BodyKind(this.#method, hasBody, hasBody && this.#reqTrailers === undefined && rawGet(raw, 'content-length') !== undefined);
    const set = sel.pathRewritten ? ['x-forwarded-proto', this.#s.ctx.scheme, 'x-envoy-original-path', this.#path] : ['x-forwarded-proto', this.#s.ctx.scheme];
    let head: Buffer;
    try {
      head = h1RequestHead(this.#method, sel.path, authority, raw, set, kind, this.#continue ? 'expect' : undefined);
    } catch {
      cluster.release(conn, true);
      this.#fail(503, 'upstream connect error or disconnect/reset before headers. reset reason: protocol error', 'UPE');
      return;
    }
    cluster.stats.rqTotal.inc();
    const up = new H1Upstream(cluster, conn, head, this.#method, kind === 'chunked', this);
    this.#tryOpened(up, body);
  }

  /** A try is open: send what the request has so far. */
  #tryOpened(up: UpstreamAttempt, body: readonly Buffer[]): void {
    this.#attempt = up;
    this.#host = up.host;
    let ok = true;
    for (const b of body) ok = up.write(b);
    if (this.#reqEnded) up.end(this.#reqTrailers);
    if (!ok) this.#pauseDown();
    else if (!this.#reqEnded) this.#resumeDown();
    if (this.#reqEnded) this.#armTryTimer();
  }

  #connectFailed(e: unknown): void {
    if (!this.#live()) return;
    const cluster = this.#cluster!;
    const reason = e instanceof UpstreamConnectError ? e.reason : 'connect-failure';
    if (reason === 'no-healthy-upstream') {
      // upstream_cx_none_healthy: counted by the cluster's host set, where the pick found none.
      this.#fail(503, 'no healthy upstream', 'UH');
      return;
    }
    if (reason === 'overflow') {
      cluster.stats.rqPendingOverflow.inc();
      this.#fail(503, 'upstream connect error or disconnect/reset before headers. reset reason: overflow', 'UO');
      return;
    }
    if (this.#retryOn('connect-failure')) return;
    const detail = e instanceof Error && e.message ? `, transport failure reason: ${e.message}` : '';
    this.#fail(503, `upstream connect error or disconnect/reset before headers. reset reason: connection failure${detail}`, 'UF');
  }

  #canRetry(policy: RetryPolicy): boolean {
    return !this.#answered && this.#replay !== undefined && this.#attempts <= policy.numRetries;
  }

  #retryOn(what: UpstreamFailureKind): boolean {
    const policy = this.#policy;
    if (!policy || !retriableFailure(policy, what)) return false;
    if (!this.#canRetry(policy)) {
      if (this.#attempts > policy.numRetries) this.#flags = 'URX';
      return false;
    }
    this.#scheduleRetry(policy);
    return true;
  }

  #scheduleRetry(policy: RetryPolicy): void {
    this.#cluster!.stats.rqRetry.inc();
    const wait = retryBackOffMs(policy, this.#attempts, this.#s.ctx.random ?? Math.random);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#live()) return;
      if (this.#replay === undefined) {
        // The body outgrew the replay buffer while backing off.
        this.#fail(503, 'upstream connect error or disconnect/reset before headers. retried and the latest reset reason: overflow', 'URX');
        return;
      }
      this.#try();
    }, wait);
    this.#retryTimer.unref();
  }

  /** Ends the current try (cancelling it); the exchange goes on (retry, local reply). */
  #dropAttempt(code: number = NGHTTP2_CANCEL): void {
    clearTimeout(this.#tryTimer);
    const a = this.#attempt;
    this.#attempt = undefined;
    a?.cancel(code);
  }

  // --- the upstream response (H2StreamEvents) ----------------------------------------------------------

  onResponse(status: number, raw: string[], endStream: boolean): void {
    if (!this.#live()) return;
    clearTimeout(this.#tryTimer);
    const cluster = this.#cluster!;
    const host = this.#attempt!.host;
    let grpcStatus: number | undefined;
    if (this.#grpc) {
      const g = rawGet(raw, 'grpc-status');
      if (g !== undefined && /^\d+$/.test(g)) grpcStatus = Number(g);
    }
    cluster.stats.status(status);
    cluster.outcome(host, grpcStatus !== undefined ? httpStatusForGrpc(grpcStatus) : status);
    const policy = this.#policy;
    if (policy && (retriableStatus(policy, status) || (grpcStatus !== undefined && retriableGrpc(policy, grpcStatus)))) {
      if (this.#canRetry(policy)) {
        this.#dropAttempt();
        this.#scheduleRetry(policy);
        return;
      }
      if (this.#attempts > policy.numRetries) this.#flags = 'URX';
    }
    const down = this.#down;
    if (down.destroyed || down.closed) return;
    try {
      down.respond(cleanResponseHeaders(raw), endStream ? END_STREAM_RESPOND : STREAMING_RESPOND);
    } catch {
      this.#dropAttempt();
      this.#fail(502, 'upstream connect error or disconnect/reset before headers. reset reason: protocol error', 'UPE');
      return;
    }
    this.#answered = true;
    this.#status = status;
    this.#countStatus(status);
    if (endStream) this.#upstreamComplete();
  }

  onData(chunk: Buffer): boolean {
    this.#responseBytes += chunk.length;
    return this.#down.write(chunk);
  }

  onTrailers(trailers: http2.IncomingHttpHeaders): void {
    this.#respTrailers = trailers;
  }

  onEnd(): void {
    if (this.#closed) return;
    this.#upstreamComplete();
    if (!this.#down.writableEnded) this.#down.end();
  }

  onDrain(): void {
    this.#resumeDown();
  }

  onReset(kind: H2ResetKind, code: number): void {
    if (this.#closed || this.#upstreamDone) return;
    clearTimeout(this.#tryTimer);
    this.#attempt = undefined;
    const cluster = this.#cluster!;
    if (this.#answered) {
      // Mid-response: nothing to do but reset the client's stream too.
      this.#flags = kind === 'termination' ? 'UC' : 'UR';
      this.#upstreamDone = true;
      clearTimeout(this.#routeTimer);
      this.#resetDown(kind === 'reset' && code !== NGHTTP2_NO_ERROR ? code : NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (this.#host) cluster.outcome(this.#host, 'reset');
    if (kind === 'protocol') {
      this.#fail(502, `upstream connect error or disconnect/reset before headers. reset reason: ${resetReasonText('protocol')}`, 'UPE');
      return;
    }
    const policy = this.#policy;
    // Not processed by the server: always worth one more try (as Envoy's pools do with refused streams).
    if (kind === 'refused' && this.#replay !== undefined && this.#attempts <= (policy?.numRetries ?? 0) + 1) {
      this.#try();
      return;
    }
    if (this.#retryOn(kind === 'refused' ? 'refused-stream' : 'reset')) return;
    const text = resetReasonText(kind === 'termination' ? 'termination' : kind === 'refused' ? 'refused' : 'reset');
    const retried = this.#attempts > 1 ? 'retried and the latest ' : '';
    this.#fail(503, `upstream connect error or disconnect/reset before headers. ${retried}reset reason: ${text}`, kind === 'termination' ? 'UC' : 'UR');
  }

  #upstreamComplete(): void {
    if (this.#upstreamDone) return;
    this.#upstreamDone = true;
    clearTimeout(this.#routeTimer);
    clearTimeout(this.#tryTimer);
    const cluster = this.#cluster!;
    cluster.stats.rqTime.record(this.#s.ctx.now() - this.#started);
    if (this.#attempts > 1) cluster.stats.rqRetrySuccess.inc();
    if (!this.#reqEnded) {
      // The response is complete before the request: Envoy resets the upstream request; the rest of the
      // client's body is read and dropped.
      this.#dropAttempt(NGHTTP2_NO_ERROR);
      this.#resumeDown();
    }
  }

  // --- timers ------------------------------------------------------------------------------------------

  #armRouteTimer(): void {
    const ms = this.#sel?.route.action.timeoutMs ?? 0;
    if (ms <= 0 || this.#routeTimer) return;
    this.#routeTimer = setTimeout(() => this.#onRouteTimeout(), ms);
    this.#routeTimer.unref();
  }

  #armTryTimer(): void {
    const ms = this.#policy?.perTryTimeoutMs ?? 0;
    if (ms <= 0 || this.#answered) return;
    clearTimeout(this.#tryTimer);
    const attempt = this.#attempt;
    this.#tryTimer = setTimeout(() => this.#onTryTimeout(attempt), ms);
    this.#tryTimer.unref();
  }

  #onRouteTimeout(): void {
    if (this.#closed || this.#upstreamDone) return;
    const cluster = this.#cluster!;
    cluster.stats.rqTimeout.inc();
    this.#s.ctx.stats.rqTimeout.inc();
    clearTimeout(this.#retryTimer);
    if (this.#attempt) cluster.outcome(this.#attempt.host, 'timeout');
    this.#dropAttempt();
    if (this.#answered) {
      this.#flags = 'UT';
      this.#upstreamDone = true;
      this.#resetDown(NGHTTP2_NO_ERROR);
      return;
    }
    this.#fail(504, 'upstream request timeout', 'UT');
  }

  #onTryTimeout(attempt: UpstreamAttempt | undefined): void {
    if (!this.#live() || this.#attempt !== attempt || !attempt) return;
    this.#cluster!.outcome(attempt.host, 'timeout');
    this.#dropAttempt();
    if (this.#retryOn('timeout')) return;
    this.#cluster!.stats.rqTimeout.inc();
    this.#fail(504, 'upstream request timeout', 'UT');
  }

  #onIdle(): void {
    if (this.#closed) return;
    this.#s.counters.rqIdleTimeout?.inc();
    if (this.#answered || this.#upstreamDone) {
      this.#flags = 'SI';
      this.#dropAttempt(NGHTTP2_NO_ERROR);
      this.#upstreamDone = true;
      clearTimeout(this.#routeTimer);
      this.#resetDown(NGHTTP2_NO_ERROR);
      return;
    }
    this.#fail(408, 'stream timeout', 'SI');
  }

  // --- ending ------------------------------------------------------------------------------------------

  #fail(status: number, body: string, flag: Flag): void {
    this.#dropAttempt();
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#routeTimer);
    if (this.#answered) {
      this.#flags = flag;
      this.#upstreamDone = true;
      this.#resetDown(NGHTTP2_INTERNAL_ERROR);
      return;
    }
    this.#localReply(status, body, flag);
  }

  /** Envoy's local reply (sendLocalReply): text, or trailers-only gRPC for a gRPC request. */
  #localReply(status: number, body: string, flag: Flag): void {
    this.#flags = flag;
    this.#upstreamDone = true;
    clearTimeout(this.#routeTimer);
    const down = this.#down;
    if (down.destroyed || down.closed || down.headersSent) return;
    let sent = status;
    try {
      if (this.#grpc) {
        sent = 200;
        const headers = [':status', '200', 'content-type', 'application/grpc', 'grpc-status', String(grpcStatusForHttp(status))];
        if (body !== '') headers.push('grpc-message', grpcMessage(body));
        down.respond(headers, END_STREAM_RESPOND);
      } else {
        const bytes = body === '' ? undefined : Buffer.from(body, 'utf8');
        const headers = [':status', String(status), 'content-length', String(bytes?.length ?? 0)];
        if (bytes) headers.push('content-type', 'text/plain');
        const withBody = bytes !== undefined && this.#method !== 'HEAD';
        down.respond(headers, withBody ? { endStream: false, sendDate: false } as http2.ServerStreamResponseOptions : END_STREAM_RESPOND);
        if (withBody) down.end(bytes);
      }
    } catch {
      this.#resetDown(NGHTTP2_INTERNAL_ERROR);
      return;
    }
    this.#answered = true;
    this.#status = sent;
    this.#countStatus(sent);
    // The client may still be sending: read and drop the rest.
    this.#resumeDown();
  }

  #resetDown(code: number): void {
    resetStream(this.#down, code);
  }

  #countStatus(status: number): void {
    this.#s.ctx.stats.statusClass[Math.floor(status / 100) - 1]?.inc();
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#routeTimer);
    clearTimeout(this.#tryTimer);
    clearTimeout(this.#retryTimer);
    const a = this.#attempt;
    if (a && !this.#upstreamDone) {
      // The client reset the stream (or the connection went): the upstream stream goes with the same code.
      this.#attempt = undefined;
      const rst = this.#down.rstCode;
      a.cancel(rst !== undefined && rst !== NGHTTP2_NO_ERROR ? rst : NGHTTP2_CANCEL);
    }
    if (!this.#upstreamDone && this.#flags === '') this.#flags = 'DC';
    this.#s.streamClosed();
    this.#log();
  }

  #log(): void {
    const ctx = this.#s.ctx;
    const log = ctx.accessLog;
    if (!log) return;
    const host = this.#host;
    log({
      startTime: this.#started, method: this.#method, path: this.#path, protocol: 'HTTP/2', status: this.#status,
      responseFlags: this.#flags || '-', bytesReceived: this.#bodyBytes, bytesSent: this.#responseBytes, durationMs: ctx.now() - this.#started,
      upstreamHost: host ? `${host.address}:${host.port}` : undefined, authority: this.#authority,
      userAgent: rawGet(this.#raw, 'user-agent'), requestId: rawGet(this.#raw, 'x-request-id'), upstreamCluster: this.#cluster?.name,
      downstreamRemoteAddress: ctx.remoteAddress,
    });
  }
}

/** A request header for route matching: its value, or its values when repeated. */
function headerValues(raw: readonly string[], name: string): string | readonly string[] | undefined {
  let first: string | undefined;
  let more: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i] !== name) continue;
    if (first === undefined) first = raw[i + 1];
    else (more ??= [first]).push(raw[i + 1]!);
  }
  return more ?? first;
}

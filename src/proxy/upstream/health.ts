// Active health checking of a cluster's hosts, after Envoy's health checkers
// (source/extensions/health_checkers/{common,http,tcp,grpc}). What Envoy does by default, and so does this:
//
// - A host added while the cluster health checks starts *unhealthy* (FAILED_ACTIVE_HC) and its first check
//   runs at once (initial_jitter 0). The first passing check makes it healthy immediately, whatever
//   healthy_threshold says; after that it takes healthy_threshold passes in a row.
// - A failed check counts toward unhealthy_threshold when it is a network failure (connect error, reset,
//   timeout); an *active* failure (HTTP status outside expected_statuses, gRPC status other than SERVING, a
//   response payload that does not match) marks the host unhealthy at once, unless the status is in
//   retriable_statuses.
// - HTTP: GET `path` with Host = the endpoint's health-check hostname, else the check's `host`, else the
//   cluster name, and `user-agent: Envoy/HC`; only 200 is healthy unless expected_statuses says otherwise;
//   `x-envoy-degraded` in a healthy response marks the host degraded. HTTP/1.1, or HTTP/2 with
//   codec_client_type HTTP2. gRPC: grpc.health.v1.Health/Check over HTTP/2 with `:authority` chosen like Host,
//   healthy only for status SERVING. TCP: a connect (then closed), or send/receive payloads.
// - The connection is reused between checks (reuse_connection, default true).
// - The next check is `interval` after a healthy result, `unhealthy_interval` after an unhealthy one, and the
//   edge intervals while a transition is pending; all of them are replaced by no_traffic_interval (60 s) until
//   the cluster has carried traffic (a connection was opened to one of its hosts).
// - Every check has `timeout` (connect + response); a timeout is a network failure.
// The connection is made by an injectable `Dial` so that checks to TLS upstreams can use the cluster's
// transport socket (Envoy health checks over it); the default dials plain TCP.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { GrpcHealthCheckSpec, HeaderToAdd, HealthCheckSpec, HttpHealthCheckSpec, TcpHealthCheckSpec } from './compile.ts';
import { hostKey, type Host, type HostAddress, type HostSet, type MembershipChange } from './hosts.ts';
import { noStats, type StatsSink } from './stats.ts';
import { systemTimers, type Timer, type Timers } from './timers.ts';

export interface DialTarget extends HostAddress {
  readonly host: Host;
  /** ALPN to offer (tls_options.alpn_protocols, else `h2` for HTTP/2 and gRPC checks); for TLS dialers. */
  readonly alpnProtocols: readonly string[];
}

/** Opens a connection for a health check; resolves once it is ready for bytes (for TLS: after the handshake). */
export type Dial = (target: DialTarget, signal: AbortSignal) => Promise<net.Socket>;

export const dialTcp: Dial = (target, signal) => new Promise((resolve, reject) => {
  const socket = net.connect({ host: target.address, port: target.port });
  const abort = () => {
    socket.destroy();
    reject(new Error('health check connect aborted'));
  };
  signal.addEventListener('abort', abort, { once: true });
  socket.once('connect', () => {
    signal.removeEventListener('abort', abort);
    resolve(socket);
  });
  socket.once('error', (e) => {
    signal.removeEventListener('abort', abort);
    reject(e);
  });
});

export type CheckOutcome =
  | { readonly ok: true; readonly degraded: boolean }
  | { readonly ok: false; readonly kind: 'active' | 'network'; readonly retriable: boolean; readonly detail: string };

const healthy = (degraded = false): CheckOutcome => ({ ok: true, degraded });
const active = (detail: string, retriable = false): CheckOutcome => ({ ok: false, kind: 'active', retriable, detail });
const network = (detail: string): CheckOutcome => ({ ok: false, kind: 'network', retriable: false, detail });

/** The checks of one host, over the connection it keeps between them. */
interface Prober {
  check(signal: AbortSignal): Promise<CheckOutcome>;
  /** Drops the connection (after a timeout, and when the host goes). */
  close(): void;
}

export interface HealthCheckerOptions {
  readonly timers?: Timers;
  /** A number in [0, 1) for interval jitter; Math.random by default. */
  readonly random?: () => number;
  readonly stats?: StatsSink;
  readonly dial?: Dial;
  /** Whether `dial` makes TLS connections (then HTTP/2 and gRPC checks say `:scheme: https`). */
  readonly secure?: boolean;
}

interface Context {
  readonly spec: HealthCheckSpec;
  readonly clusterName: string;
  readonly dial: Dial;
  readonly secure: boolean;
}

// --- Payloads, headers ---

/** Envoy's PayloadMatcher: every block appears, in order, not necessarily adjacent. */
export function payloadMatches(blocks: readonly Buffer[], data: Buffer): boolean {
  let from = 0;
  for (const b of blocks) {
    const i = data.indexOf(b, from);
    if (i < 0) return false;
    from = i + b.length;
  }
  return true;
}

function inRanges(status: number, ranges: readonly (readonly [number, number])[]): boolean {
  return ranges.some(([start, end]) => status >= start && status < end);
}

/** Removes, then adds (Envoy's HeaderParser order). */
function applyHeaders(headers: Record<string, string | string[]>, add: readonly HeaderToAdd[], remove: readonly string[]): void {
  for (const name of remove) delete headers[name];
  for (const h of add) {
    const existing = headers[h.name];
    switch (h.action) {
      case 'APPEND_IF_EXISTS_OR_ADD':
        headers[h.name] = existing === undefined ? h.value : [...(Array.isArray(existing) ? existing : [existing]), h.value];
        break;
      case 'ADD_IF_ABSENT':
        if (existing === undefined) headers[h.name] = h.value;
        break;
      case 'OVERWRITE_IF_EXISTS_OR_ADD':
        headers[h.name] = h.value;
        break;
      case 'OVERWRITE_IF_EXISTS':
        if (existing !== undefined) headers[h.name] = h.value;
        break;
    }
  }
}

/** Host header / :authority: the endpoint's health-check hostname, else the configured one, else the cluster name. */
function checkHostname(host: Host, configured: string | undefined, cluster: string): string {
  return host.healthCheckHostname ?? configured ?? cluster;
}

function target(host: Host, ctx: Context, h2: boolean): DialTarget {
  return { ...host.healthCheckAddress, host, alpnProtocols: ctx.spec.alpnProtocols ?? (h2 ? ['h2'] : []) };
}

// --- TCP ---

class TcpProber implements Prober {
  readonly #host: Host;
  readonly #ctx: Context;
  readonly #check: TcpHealthCheckSpec;
  #socket: net.Socket | undefined;

  constructor(host: Host, ctx: Context, check: TcpHealthCheckSpec) {
    this.#host = host;
    this.#ctx = ctx;
    this.#check = check;
  }

  async check(signal: AbortSignal): Promise<CheckOutcome> {
    const { send, receive } = this.#check;
    let socket: net.Socket;
    try {
      socket = this.#socket && !this.#socket.destroyed ? this.#socket : await this.#ctx.dial(target(this.#host, this.#ctx, false), signal);
    } catch (e) {
      return network(`connect: ${(e as Error).message}`);
    }
    // Connect-only: a successful connect is the check, and the connection is closed right away.
    if (!send && receive.length === 0) {
      socket.destroy();
      return healthy();
    }
    this.#socket = socket;
    return new Promise<CheckOutcome>((resolve) => {
      let data = Buffer.alloc(0);
      const done = (outcome: CheckOutcome) => {
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', onError);
        signal.removeEventListener('abort', onAbort);
        if (!outcome.ok || !this.#ctx.spec.reuseConnection) this.close();
        resolve(outcome);
      };
      const onData = (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        if (payloadMatches(receive, data)) done(healthy());
      };
      const onClose = () => done(network('connection closed before the expected response'));
      const onError = (e: Error) => done(network(e.message));
      const onAbort = () => done(network('aborted'));
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.once('error', onError);
      signal.addEventListener('abort', onAbort, { once: true });
      if (send) socket.write(send);
      else if (receive.length === 0) done(healthy());
    });
  }

  close(): void {
    this.#socket?.destroy();
    this.#socket = undefined;
  }
}

// --- HTTP/1.1 ---

/** An agent of one connection that reaches the host through `dial`, kept alive between checks when reusing. */
class DialAgent extends http.Agent {
  readonly #dial: () => Promise<net.Socket>;
  constructor(dial: () => Promise<net.Socket>, keepAlive: boolean) {
    super({ keepAlive, maxSockets: 1, maxFreeSockets: 1 });
    this.#dial = dial;
  }
  override createConnection(_options: http.ClientRequestArgs, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    this.#dial().then((s) => callback?.(null, s), (e: Error) => callback?.(e, undefined as never));
    return undefined;
  }
}

function evaluateHttp(check: HttpHealthCheckSpec, status: number, headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders, body: Buffer): CheckOutcome {
  if (check.receive.length > 0 && !payloadMatches(check.receive, body)) return active(`status ${status}: the response does not contain the expected payload`);
  if (!inRanges(status, check.expectedStatuses)) return active(`status ${status}`, inRanges(status, check.retriableStatuses));
  return healthy(headers['x-envoy-degraded'] !== undefined);
}

/** Collects at most `limit` bytes (0: all) of a body. */
function collector(limit: number, keep: boolean): { add(chunk: Buffer): void; readonly body: Buffer } {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    add(chunk) {
      if (!keep || (limit !== 0 && size >= limit)) return;
      const part = limit === 0 ? chunk : chunk.subarray(0, limit - size);
      chunks.push(part);
      size += part.length;
    },
    get body() {
      return Buffer.concat(chunks);
    },
  };
}

class Http1Prober implements Prober {
  readonly #host: Host;
  readonly #ctx: Context;
  readonly #check: HttpHealthCheckSpec;
  #agent: DialAgent | undefined;
  #dialAbort = new AbortController();

  constructor(host: Host, ctx: Context, check: HttpHealthCheckSpec) {
    this.#host = host;
    this.#ctx = ctx;
    this.#check = check;
  }

  #getAgent(): DialAgent {
    if (!this.#agent) {
      const signal = this.#dialAbort.signal;
      this.#agent = new DialAgent(() => this.#ctx.dial(target(this.#host, this.#ctx, false), signal), this.#ctx.spec.reuseConnection);
    }
    return this.#agent;
  }

  check(signal: AbortSignal): Promise<CheckOutcome> {
    const c = this.#check;
    const headers: Record<string, string | string[]> = { host: checkHostname(this.#host, c.host, this.#ctx.clusterName), 'user-agent': 'Envoy/HC' };
    applyHeaders(headers, c.requestHeadersToAdd, c.requestHeadersToRemove);
    if (c.send) headers['content-length'] = String(c.send.length);
    const { address, port } = this.#host.healthCheckAddress;
    return new Promise<CheckOutcome>((resolve) => {
      let settled = false;
      const done = (o: CheckOutcome) => {
        if (settled) return;
        settled = true;
        resolve(o);
      };
      const req = http.request({ agent: this.#getAgent(), host: address, port, method: c.method, path: c.path, headers, setHost: false, signal });
      req.on('response', (res) => {
        const body = collector(c.responseBufferSize, c.receive.length > 0);
        res.on('data', (chunk: Buffer) => body.add(chunk));
        res.on('end', () => done(evaluateHttp(c, res.statusCode ?? 0, res.headers, body.body)));
        res.on('error', (e) => done(network(e.message)));
        res.on('aborted', () => done(network('response aborted')));
      });
      req.on('error', (e) => done(network(e.message)));
      req.end(c.send);
    });
  }

  close(): void {
    this.#dialAbort.abort();
    this.#dialAbort = new AbortController();
    this.#agent?.destroy();
    this.#agent = undefined;
  }
}

// --- HTTP/2 (HTTP health checks with codec HTTP2, and gRPC) ---

class H2Connection {
  readonly #host: Host;
  readonly #ctx: Context;
  #session: http2.ClientHttp2Session | undefined;
  #connecting: Promise<http2.ClientHttp2Session> | undefined;

  constructor(host: Host, ctx: Context) {
    this.#host = host;
    this.#ctx = ctx;
  }

  get scheme(): string {
    return this.#ctx.secure ? 'https' : 'http';
  }

  async session(signal: AbortSignal): Promise<http2.ClientHttp2Session> {
    const s = this.#session;
    if (s && !s.closed && !s.destroyed) return s;
    if (this.#connecting) return this.#connecting;
    const t = target(this.#host, this.#ctx, true);
    this.#connecting = this.#ctx.dial(t, signal).then((socket) => {
      const session = http2.connect(`${this.scheme}://${hostKey(t.address, t.port)}`, { createConnection: () => socket });
      session.on('error', () => {});
      session.on('close', () => { if (this.#session === session) this.#session = undefined; });
      // After a GOAWAY the session takes no new streams: the next check makes a new one.
      session.on('goaway', () => { if (this.#session === session) this.#session = undefined; });
      this.#session = session;
      return session;
    }).finally(() => { this.#connecting = undefined; });
    return this.#connecting;
  }

  /** After a check: keep the connection only when reusing. */
  release(): void {
    if (!this.#ctx.spec.reuseConnection) this.close();
  }

  close(): void {
    this.#session?.destroy();
    this.#session = undefined;
  }
}

interface H2Exchange {
  readonly headers: http2.IncomingHttpHeaders | undefined;
  readonly trailersOnly: boolean;
  readonly trailers: http2.IncomingHttpHeaders | undefined;
  readonly body: Buffer;
}

/** One request on the connection; resolves with what came back, or a network failure outcome. */
async function h2Exchange(conn: H2Connection, signal: AbortSignal, headers: http2.OutgoingHttpHeaders, body: Buffer | undefined, keepBody: { limit: number; keep: boolean }): Promise<H2Exchange | CheckOutcome> {
  let session: http2.ClientHttp2Session;
  try {
    session = await conn.session(signal);
  } catch (e) {
    return network(`connect: ${(e as Error).message}`);
  }
  return new Promise((resolve) => {
    let settled = false;
    let response: http2.IncomingHttpHeaders | undefined;
    let trailersOnly = false;
    let trailers: http2.IncomingHttpHeaders | undefined;
    let ended = false;
    const data = collector(keepBody.limit, keepBody.keep);
    const done = (r: H2Exchange | CheckOutcome) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    };
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: body === undefined });
    } catch (e) {
      conn.close();
      done(network((e as Error).message));
      return;
    }
    const onAbort = () => stream.close(http2.constants.NGHTTP2_CANCEL);
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('response', (h, flags) => {
      response = h;
      trailersOnly = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
    });
    stream.on('trailers', (t) => { trailers = t; });
    stream.on('data', (chunk: Buffer) => data.add(chunk));
    stream.on('end', () => { ended = true; });
    stream.on('error', () => {});
    stream.on('close', () => {
      if (!response || (!ended && !trailersOnly && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR)) {
        done(network(response ? `stream reset (code ${stream.rstCode})` : `no response (stream code ${stream.rstCode})`));
        return;
      }
      done({ headers: response, trailersOnly, trailers, body: data.body });
    });
    if (body !== undefined) stream.end(body);
  });
}

function isOutcome(x: H2Exchange | CheckOutcome): x is CheckOutcome {
  return 'ok' in x;
}

class Http2Prober implements Prober {
  readonly #host: Host;
  readonly #ctx: Context;
  readonly #check: HttpHealthCheckSpec;
  readonly #conn: H2Connection;

  constructor(host: Host, ctx: Context, check: HttpHealthCheckSpec) {
    this.#host = host;
    this.#ctx = ctx;
    this.#check = check;
    this.#conn = new H2Connection(host, ctx);
  }

  async check(signal: AbortSignal): Promise<CheckOutcome> {
    const c = this.#check;
    const extra: Record<string, string | string[]> = { 'user-agent': 'Envoy/HC' };
    applyHeaders(extra, c.requestHeadersToAdd, c.requestHeadersToRemove);
    const headers: http2.OutgoingHttpHeaders = {
      ...extra,
      ':method': c.method,
      ':path': c.path,
      ':scheme': this.#conn.scheme,
      ':authority': checkHostname(this.#host, c.host, this.#ctx.clusterName),
    };
    const r = await h2Exchange(this.#conn, signal, headers, c.send, { limit: c.responseBufferSize, keep: c.receive.length > 0 });
    const outcome = isOutcome(r) ? r : evaluateHttp(c, Number(r.headers?.[':status'] ?? 0), r.headers ?? {}, r.body);
    this.#conn.release();
    return outcome;
  }

  close(): void {
    this.#conn.close();
  }
}

// --- gRPC (grpc.health.v1.Health/Check, encoded by hand: two one-field messages) ---

/** HealthCheckRequest { string service = 1 } in a gRPC frame. */
export function grpcHealthRequestFrame(service: string): Buffer {
  const name = Buffer.from(service, 'utf8');
  const message = name.length === 0 ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a]), varint(name.length), name]);
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

function varint(n: number): Buffer {
  const bytes: number[] = [];
  while (n > 0x7f) {
    bytes.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  bytes.push(n);
  return Buffer.from(bytes);
}

function readVarint(b: Buffer, at: number): [number, number] | undefined {
  let value = 0;
  let shift = 0;
  for (let i = at; i < b.length && shift < 64; i++) {
    const byte = b[i] as number;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) return [value, i + 1];
  }
  return undefined;
}

/** HealthCheckResponse.status (field 1) from one gRPC frame; undefined when malformed. 0 when the field is absent. */
export function grpcHealthStatus(frame: Buffer): number | undefined {
  if (frame.length < 5 || frame[0] !== 0) return undefined;
  const length = frame.readUInt32BE(1);
  if (frame.length !== 5 + length) return undefined;
  const m = frame.subarray(5);
  let status = 0;
  let at = 0;
  while (at < m.length) {
    const tag = readVarint(m, at);
    if (!tag) return undefined;
    const [key, next] = tag;
    const field = Math.floor(key / 8);
    const wire = key % 8;
    at = next;
    if (wire === 0) {
      const v = readVarint(m, at);
      if (!v) return undefined;
      if (field === 1) status = v[0];
      at = v[1];
    } else if (wire === 2) {
      const len = readVarint(m, at);
      if (!len) return undefined;
      at = len[1] + len[0];
    } else if (wire === 1) {
      at += 8;
    } else if (wire === 5) {
      at += 4;
    } else {
      return undefined;
    }
  }
  return at === m.length ? status : undefined;
}

const SERVING = 1;

class GrpcProber implements Prober {
  readonly #host: Host;
  readonly #ctx: Context;
  readonly #check: GrpcHealthCheckSpec;
  readonly #conn: H2Connection;

  constructor(host: Host, ctx: Context, check: GrpcHealthCheckSpec) {
    this.#host = host;
    this.#ctx = ctx;
    this.#check = check;
    this.#conn = new H2Connection(host, ctx);
  }

  async check(signal: AbortSignal): Promise<CheckOutcome> {
    const metadata: Record<string, string | string[]> = {};
    applyHeaders(metadata, this.#check.initialMetadata, []);
    const headers: http2.OutgoingHttpHeaders = {
      ...metadata,
      ':method': 'POST',
      ':path': '/grpc.health.v1.Health/Check',
      ':scheme': this.#conn.scheme,
      ':authority': checkHostname(this.#host, this.#check.authority, this.#ctx.clusterName),
      'content-type': 'application/grpc',
      te: 'trailers',
      'user-agent': 'Envoy/HC',
      'grpc-timeout': `${Math.max(1, Math.round(this.#ctx.spec.timeoutMs))}m`,
    };
    const r = await h2Exchange(this.#conn, signal, headers, grpcHealthRequestFrame(this.#check.serviceName), { limit: 0, keep: true });
    const outcome = isOutcome(r) ? r : evaluateGrpc(r);
    this.#conn.release();
    return outcome;
  }

  close(): void {
    this.#conn.close();
  }
}

/** Envoy's GrpcActiveHealthCheckSession: healthy only for grpc-status 0 with one response saying SERVING. */
function evaluateGrpc(r: H2Exchange): CheckOutcome {
  const h = r.headers ?? {};
  const status = Number(h[':status'] ?? 0);
  const grpcStatus = (r.trailersOnly ? h : r.trailers ?? {})['grpc-status'];
  if (status !== 200) return active(`HTTP status ${status}${grpcStatus !== undefined ? `, grpc-status ${String(grpcStatus)}` : ''}`);
  if (!r.trailersOnly && !String(h['content-type'] ?? '').startsWith('application/grpc')) return active('not a gRPC response');
  if (grpcStatus === undefined) return active('no grpc-status');
  if (String(grpcStatus) !== '0') return active(`grpc-status ${String(grpcStatus)}`);
  if (r.body.length === 0) return active('no HealthCheckResponse');
  const serving = grpcHealthStatus(r.body);
  if (serving === undefined) return active('invalid grpc.health.v1 response');
  return serving === SERVING ? healthy() : active(`service status ${serving}`);
}

// --- Sessions and the checker ---

type Transition = 'unchanged' | 'changed' | 'pending';

class Session {
  readonly host: Host;
  readonly #checker: HealthChecker;
  readonly #prober: Prober;
  #firstCheck = true;
  #numHealthy = 0;
  #numUnhealthy = 0;
  #timer: Timer | undefined;
  #abort: AbortController | undefined;
  #closed = false;

  constructor(checker: HealthChecker, host: Host, prober: Prober) {
    this.#checker = checker;
    this.host = host;
    this.#prober = prober;
  }

  get firstCheckDone(): boolean {
    return !this.#firstCheck;
  }

  start(): void {
    const jitter = this.#checker.spec.initialJitterMs;
    if (jitter > 0) this.#timer = this.#checker.timers.after(Math.floor(this.#checker.random() * jitter), () => this.#run());
    else this.#run();
  }

  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
    this.#abort?.abort();
    this.#prober.close();
  }

  #run(): void {
    if (this.#closed) return;
    this.#checker.stat('health_check.attempt');
    const abort = new AbortController();
    this.#abort = abort;
    let settled = false;
    const timeout = this.#checker.timers.after(this.#checker.spec.timeoutMs, () => {
      if (settled || this.#closed) return;
      settled = true;
      abort.abort();
      this.#prober.close();
      this.#failure('network', false);
    });
    this.#prober.check(abort.signal).then(
      (outcome) => {
        if (settled || this.#closed) return;
        settled = true;
        timeout.cancel();
        if (outcome.ok) this.#success(outcome.degraded);
        else this.#failure(outcome.kind, outcome.retriable);
      },
      () => {
        if (settled || this.#closed) return;
        settled = true;
        timeout.cancel();
        this.#failure('network', false);
      },
    );
  }

  #success(degraded: boolean): void {
    const host = this.host;
    this.#numUnhealthy = 0;
    let transition: Transition = 'unchanged';
    let failed = host.failedActiveHealthCheck;
    if (failed) {
      // The first result ever makes a host healthy at once (Envoy: faster start-up).
      if (this.#firstCheck || ++this.#numHealthy === this.#checker.spec.healthyThreshold) {
        failed = false;
        transition = 'changed';
      } else {
        transition = 'pending';
      }
    }
    if (degraded !== host.degradedActiveHealthCheck && transition === 'unchanged') transition = 'changed';
    const wasHealthy = !host.failedActiveHealthCheck;
    host.setActiveHealth(failed, degraded);
    this.#checker.healthGauge(wasHealthy, !failed);
    this.#checker.stat('health_check.success');
    this.#complete(true, transition);
  }

  #failure(kind: 'active' | 'network', retriable: boolean): void {
    const host = this.host;
    this.#numHealthy = 0;
    let transition: Transition = 'unchanged';
    let failed = host.failedActiveHealthCheck;
    if (!failed) {
      if ((kind === 'active' && !retriable) || ++this.#numUnhealthy === this.#checker.spec.unhealthyThreshold) {
        failed = true;
        transition = 'changed';
      } else {
        transition = 'pending';
      }
    }
    const wasHealthy = !host.failedActiveHealthCheck;
    host.setActiveHealth(failed);
    this.#checker.healthGauge(wasHealthy, !failed);
    this.#checker.stat('health_check.failure');
    if (kind === 'network') this.#checker.stat('health_check.network_failure');
    this.#complete(false, transition);
  }

  #complete(ok: boolean, transition: Transition): void {
    const first = this.#firstCheck;
    this.#firstCheck = false;
    this.#checker.completed(this, ok, first);
    if (this.#closed) return;
    this.#timer = this.#checker.timers.after(this.#checker.nextInterval(ok, transition), () => this.#run());
  }
}

export class HealthChecker {
  readonly spec: HealthCheckSpec;
  readonly timers: Timers;
  readonly random: () => number;
  readonly #hosts: HostSet;
  readonly #ctx: Context;
  readonly #stats: StatsSink;
  readonly #sessions = new Map<Host, Session>();
  readonly #listeners = new Set<(host: Host, healthy: boolean) => void>();
  #unsubscribe: (() => void) | undefined;
  #started = false;
  #waiting: Set<Host> | undefined;
  readonly #ready: Promise<void>;
  #markReady!: () => void;

  constructor(hosts: HostSet, spec: HealthCheckSpec, options: HealthCheckerOptions = {}) {
    this.spec = spec;
    this.#hosts = hosts;
    this.timers = options.timers ?? systemTimers;
    this.random = options.random ?? Math.random;
    this.#stats = options.stats ?? noStats;
    this.#ctx = { spec, clusterName: hosts.spec.name, dial: options.dial ?? dialTcp, secure: options.secure ?? false };
    this.#ready = new Promise((r) => { this.#markReady = r; });
  }

  /**
   * Resolves when every host the cluster had on warming (HostSet.ready) has had its first check, as Envoy's
   * cluster initialization waits for the first round of health checks.
   */
  get ready(): Promise<void> {
    return this.#ready;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const h of this.#hosts.hosts) this.#add(h);
    this.#unsubscribe = this.#hosts.onMembershipChange((c) => this.#membership(c));
    void this.#hosts.ready.then(() => {
      this.#waiting = new Set([...this.#sessions.values()].filter((s) => !s.firstCheckDone).map((s) => s.host));
      if (this.#waiting.size === 0) this.#markReady();
    });
  }

  stop(): void {
    this.#unsubscribe?.();
    for (const s of this.#sessions.values()) s.close();
    this.#sessions.clear();
  }

  /** Called after every check with its result; the outlier detector uses it to return ejected hosts. */
  onCheckComplete(listener: (host: Host, healthy: boolean) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #add(host: Host): void {
    if (host.activeHealthCheckDisabled || this.#sessions.has(host)) return;
    const c = this.spec.check;
    const prober = c.type === 'tcp' ? new TcpProber(host, this.#ctx, c)
      : c.type === 'grpc' ? new GrpcProber(host, this.#ctx, c)
        : c.codec === 'HTTP2' ? new Http2Prober(host, this.#ctx, c) : new Http1Prober(host, this.#ctx, c);
    const session = new Session(this, host, prober);
    this.#sessions.set(host, session);
    if (!host.failedActiveHealthCheck) this.#stats('health_check.healthy', 1);
    session.start();
  }

  #membership(change: MembershipChange): void {
    for (const h of change.removed) {
      const s = this.#sessions.get(h);
      if (!s) continue;
      s.close();
      this.#sessions.delete(h);
      if (!h.failedActiveHealthCheck) this.#stats('health_check.healthy', -1);
      this.#settle(h);
    }
    for (const h of change.added) this.#add(h);
  }

  #settle(host: Host): void {
    if (!this.#waiting?.delete(host)) return;
    if (this.#waiting.size === 0) this.#markReady();
  }

  // --- For sessions ---

  stat(name: string): void {
    this.#stats(name, 1);
  }

  healthGauge(wasHealthy: boolean, isHealthy: boolean): void {
    if (wasHealthy !== isHealthy) this.#stats('health_check.healthy', isHealthy ? 1 : -1);
  }

  completed(session: Session, ok: boolean, first: boolean): void {
    for (const l of this.#listeners) l(session.host, ok);
    if (first) this.#settle(session.host);
  }

  /** Envoy's HealthCheckerImplBase::interval, with jitter. */
  nextInterval(ok: boolean, transition: Transition): number {
    const s = this.spec;
    let base: number;
    if (this.#hosts.trafficSeen) {
      if (!ok) base = transition === 'pending' ? s.unhealthyEdgeIntervalMs : s.unhealthyIntervalMs;
      else base = transition === 'pending' ? s.healthyEdgeIntervalMs : s.intervalMs;
    } else {
      base = ok && transition !== 'pending' ? s.noTrafficHealthyIntervalMs : s.noTrafficIntervalMs;
    }
    const percentJitter = Math.floor((s.intervalJitterPercent * base) / 100);
    if (percentJitter > 0) base += Math.floor(this.random() * percentJitter);
    if (s.intervalJitterMs > 0) base += Math.floor(this.random() * s.intervalJitterMs);
    return Math.max(1, base);
  }
}

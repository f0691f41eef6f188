// HTTP/2 connections to a cluster's hosts, shared by every request that goes to the cluster as HTTP/2 (Envoy's
// HTTP/2 connection pool): a session is opened over `cluster.connect({ alpn: ['h2'] })` and multiplexes streams
// until it is
//   full      the peer's SETTINGS_MAX_CONCURRENT_STREAMS (before its SETTINGS arrive: what the cluster's hosts
//             announced last, else nghttp2's 100); the next request opens another session,
//   draining  GOAWAY received, or stream ids used up: streams in flight finish, new ones go elsewhere,
//   closed    by the peer or the network, or
//   idle      no stream for the idle timeout (Envoy's cluster default, 1 hour): closed with a GOAWAY.
// Requests that arrive while the pool has no room join the connection being opened (as many as it will take), so
// a burst opens one connection, not one per request.
//
//   const pool = h2Pool(cluster);
//   const s = pool.acquire();                         // a session with room, or a promise of one (rejects
//                                                     // with UpstreamConnectError)
//   const up = session.open(headers, endStream, events);
//
// H2Upstream is one request stream: the owner writes the body (write() → false: wait for onDrain), ends it with
// optional trailers, and receives the response through H2StreamEvents. `cancel()` resets it (RST_STREAM); a
// cancelled stream reports nothing more.
//
// Host choice, as Envoy's per-host pools: the cluster's load balancer picks a host for each request
// (ClusterHandle.pick: round robin, health, outlier ejection), and the request goes to a session to that host
// with room, or to the one being opened to it, or to a new one. So a gRPC client's calls spread over every
// instance instead of staying on the first connection. Until the cluster knows its hosts (and when none is
// healthy), ClusterHandle.connect() picks, and says why it cannot.
import * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { CONNECTION_IDLE_TIMEOUT_MS, CONNECTION_WINDOW, MAX_HEADER_LIST_SIZE, NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM, STREAM_WINDOW, isHeaderError, resetStream } from './h2-common.ts';
import type { ClusterHandle, UpstreamConnection, UpstreamHost } from './upstream-api.ts';

/** How a stream ended before its response was complete. */
export type H2ResetKind =
  /** The server reset it (RST_STREAM). */
  | 'reset'
  /** The server did not process it (REFUSED_STREAM, or above a GOAWAY's last stream): safe to send again. */
  | 'refused'
  /** The connection went away. */
  | 'termination'
  /** The upstream broke the protocol (an HTTP/1 upstream's unparsable response). */
  | 'protocol';

export interface H2StreamEvents {
  /** Final response headers (`:status` included, as received). */
  onResponse(status: number, headers: string[], endStream: boolean): void;
  /** A body chunk; false asks for a pause (resume() when the receiver drained). */
  onData(chunk: Buffer): boolean;
  onTrailers(trailers: http2.IncomingHttpHeaders): void;
  /** The response is complete. */
  onEnd(): void;
  /** Closed before the response completed (never after onEnd, never after cancel()). */
  onReset(kind: H2ResetKind, code: number): void;
  /** The request body may be written again. */
  onDrain(): void;
}

/** nghttp2's assumption for SETTINGS_MAX_CONCURRENT_STREAMS before the peer's SETTINGS arrive. */
const ASSUMED_MAX_STREAMS = 100;

const CLIENT_SETTINGS: http2.Settings = { enablePush: false, initialWindowSize: STREAM_WINDOW, maxHeaderListSize: MAX_HEADER_LIST_SIZE };

function noop(): void {}

function authorityOf(host: UpstreamHost, tls: boolean): string {
  const h = host.address.includes(':') ? `[${host.address}]` : host.address;
  return `${tls ? 'https' : 'http'}://${h}:${host.port}`;
}

export class PooledH2Session {
  readonly conn: UpstreamConnection;
  readonly session: http2.ClientHttp2Session;
  readonly tls: boolean;
  /** Streams open on it. */
  active = 0;
  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS. */
  maxStreams: number;
  draining = false;
  readonly #pool: H2Pool;
  #idle: NodeJS.Timeout | undefined;
  readonly #onStreamClose = (): void => this.#streamClosed();

  constructor(pool: H2Pool, conn: UpstreamConnection) {
    this.#pool = pool;
    this.conn = conn;
    this.maxStreams = pool.peerMaxStreams;
    this.tls = (conn.socket as unknown as Partial<TLSSocket>).encrypted === true;
    const session = http2.connect(authorityOf(conn.host, this.tls), {
      settings: CLIENT_SETTINGS, peerMaxConcurrentStreams: pool.peerMaxStreams, maxSessionMemory: 64, createConnection: () => conn.socket as Duplex, // asked with an ALPN: a real socket (mux streams are HTTP/1.1 only)
    });
    this.session = session;
    session.on('error', noop);
    session.on('frameError', noop);
    session.on('remoteSettings', (s: http2.Settings) => {
      if (s.maxConcurrentStreams === undefined) return;
      this.maxStreams = s.maxConcurrentStreams;
      pool.peerMaxStreams = s.maxConcurrentStreams;
    });
    session.once('connect', () => {
      try {
        session.setLocalWindowSize(CONNECTION_WINDOW);
      } catch {
        // closed meanwhile
      }
    });
    session.on('goaway', () => this.#drain());
    session.once('close', () => {
      this.draining = true;
      clearTimeout(this.#idle);
      pool.forget(this);
      pool.cluster.release(conn, false);
    });
  }

  get usable(): boolean {
    return !this.draining && !this.session.closed && !this.session.destroyed;
  }

  hasRoom(): boolean {
    return this.active < this.maxStreams && this.usable;
  }

  /**
   * A request stream. Throws when the session can no longer open streams (closing, stream ids exhausted: it is
   * drained) or node refuses the headers; the caller treats that as a refused stream.
   */
  open(headers: readonly string[], endStream: boolean, events: H2StreamEvents): H2Upstream {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.session.request(headers, { endStream, waitForTrailers: !endStream });
    } catch (e) {
      if (!isHeaderError(e)) this.#drain();
      throw e;
    }
    this.active++;
    stream.once('close', this.#onStreamClose);
    return new H2Upstream(this, stream, events);
  }

  /** GOAWAY (received, or the stream ids ran out): no new streams; closed once the streams in flight end. */
  #drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.#pool.forget(this);
    if (this.active === 0) this.session.close();
  }

  #streamClosed(): void {
    this.active--;
    if (this.active > 0) return;
    if (this.draining) {
      if (!this.session.closed) this.session.close();
      return;
    }
    if (this.#idle) this.#idle.refresh();
    else {
      this.#idle = setTimeout(() => {
        if (this.active === 0) this.close();
      }, this.#pool.idleTimeoutMs);
      this.#idle.unref();
    }
  }

  /** Graceful: GOAWAY, streams in flight finish. */
  close(): void {
    this.draining = true;
    this.#pool.forget(this);
    if (!this.session.closed) this.session.close();
  }
}

const END_STREAM = http2.constants.NGHTTP2_FLAG_END_STREAM;

const WAITING = 0;
const RESPONDING = 1;
const ENDED = 2;
const CANCELLED = 3;

export class H2Upstream {
  readonly host: UpstreamHost;
  readonly session: PooledH2Session;
  readonly #stream: http2.ClientHttp2Stream;
  #state = WAITING;
  #trailers: http2.OutgoingHttpHeaders | undefined;

  constructor(session: PooledH2Session, stream: http2.ClientHttp2Stream, events: H2StreamEvents) {
    this.session = session;
    this.host = session.conn.host;
    this.#stream = stream;
    stream.on('response', (headers: http2.IncomingHttpHeaders, flags: number, raw: string[]) => {
      if (this.#state !== WAITING) return;
      const end = (flags & END_STREAM) !== 0;
      this.#state = end ? ENDED : RESPONDING;
      events.onResponse(Number(headers[':status']), raw, end);
    });
    stream.on('data', (chunk: Buffer) => {
      if (this.#state === RESPONDING && !events.onData(chunk)) stream.pause();
    });
    stream.on('trailers', (trailers: http2.IncomingHttpHeaders) => {
      if (this.#state === RESPONDING) events.onTrailers(trailers);
    });
    stream.on('end', () => {
      if (this.#state !== RESPONDING) return;
      // node ends the readable side of a reset stream too; a reset is reported by 'close'.
      const code = stream.rstCode;
      if (code !== undefined && code !== NGHTTP2_NO_ERROR) return;
      this.#state = ENDED;
      events.onEnd();
    });
    stream.on('drain', () => {
      if (this.#state !== CANCELLED) events.onDrain();
    });
    stream.on('wantTrailers', () => {
      try {
        stream.sendTrailers(this.#trailers ?? {});
      } catch {
        resetStream(stream, NGHTTP2_INTERNAL_ERROR); // trailers node refuses to send
      }
    });
    stream.on('error', noop);
    stream.on('frameError', noop);
    stream.once('close', () => {
      if (this.#state === ENDED || this.#state === CANCELLED) return;
      const code = stream.rstCode ?? 0;
      const wasResponding = this.#state === RESPONDING;
      this.#state = CANCELLED;
      const kind: H2ResetKind = code === NGHTTP2_REFUSED_STREAM && !wasResponding ? 'refused'
        : session.session.destroyed ? 'termination' : 'reset';
      events.onReset(kind, code);
    });
  }

  /** The response finished (or was never going to: cancelled). */
  get finished(): boolean {
    return this.#state === ENDED || this.#state === CANCELLED;
  }

  /** Request body; false: wait for onDrain. */
  write(chunk: Buffer): boolean {
    return this.#stream.write(chunk);
  }

  /** The request is complete (trailers, when the client sent some, follow the body). */
  end(trailers?: http2.IncomingHttpHeaders): void {
    this.#trailers = trailers;
    if (!this.#stream.writableEnded) this.#stream.end();
  }

  pause(): void {
    this.#stream.pause();
  }

  resume(): void {
    this.#stream.resume();
  }

  /** RST_STREAM (unless complete both ways); no more events. */
  cancel(code: number = NGHTTP2_CANCEL): void {
    const was = this.#state;
    this.#state = CANCELLED;
    const s = this.#stream;
    if (s.closed || s.destroyed) return;
    if (was === ENDED) {
      // The response is complete; only our request is still open: end it politely.
      if (!s.writableFinished) s.close(NGHTTP2_NO_ERROR);
      return;
    }
    resetStream(s, code);
  }
}

/** The HTTP/2 pool of each cluster (handle); pools holding sessions are also listed for closeH2Pools(). */
const pools = new WeakMap<ClusterHandle, H2Pool>();
const live = new Set<H2Pool>();

export class H2Pool {
  readonly cluster: ClusterHandle;
  readonly idleTimeoutMs: number;
  /** The last SETTINGS_MAX_CONCURRENT_STREAMS a host of the cluster announced: how many requests may wait for one connection. */
  peerMaxStreams = ASSUMED_MAX_STREAMS;
  readonly #sessions: PooledH2Session[] = [];
  /** Sessions being opened, by host (undefined: to whichever host connect() picks); requests waiting on each. */
  readonly #connecting = new Map<UpstreamHost | undefined, { promise: Promise<PooledH2Session>; waiting: number }>();

  constructor(cluster: ClusterHandle, idleTimeoutMs = CONNECTION_IDLE_TIMEOUT_MS) {
    this.cluster = cluster;
    this.idleTimeoutMs = idleTimeoutMs;
  }

  /** Sessions taking new streams. */
  get size(): number {
    return this.#sessions.length;
  }

  /** A session with room for one more stream: synchronously when there is one. Rejects with UpstreamConnectError. */
  acquire(): PooledH2Session | Promise<PooledH2Session> {
    const host = this.cluster.pick?.();
    const sessions = this.#sessions;
    for (let i = 0; i < sessions.length; i++) {
      const s = sessions[i]!;
      if ((host === undefined || s.conn.host === host) && s.hasRoom()) return s;
    }
    const opening = this.#connecting.get(host);
    if (opening !== undefined && opening.waiting < Math.max(1, this.peerMaxStreams)) {
      opening.waiting++;
      return opening.promise;
    }
    return this.#connect(host);
  }

  #connect(host: UpstreamHost | undefined): Promise<PooledH2Session> {
    const done = () => {
      if (this.#connecting.get(host)?.promise === p) this.#connecting.delete(host);
    };
    const p: Promise<PooledH2Session> = this.cluster.connect({ alpn: ['h2'], ...(host ? { host } : {}) }).then((conn) => {
      done();
      const s = new PooledH2Session(this, conn);
      this.#sessions.push(s);
      live.add(this);
      return s;
    }, (e: unknown) => {
      done();
      throw e;
    });
    this.#connecting.set(host, { promise: p, waiting: 1 });
    return p;
  }

  /** A session leaves the pool (draining or closed). */
  forget(s: PooledH2Session): void {
    const i = this.#sessions.indexOf(s);
    if (i >= 0) this.#sessions.splice(i, 1);
    if (this.#sessions.length === 0) live.delete(this);
  }

  /** Closes every session gracefully (GOAWAY; streams in flight finish). */
  close(): void {
    for (const s of [...this.#sessions]) s.close();
  }
}

export function h2Pool(cluster: ClusterHandle): H2Pool {
  let pool = pools.get(cluster);
  if (!pool) {
    pool = new H2Pool(cluster);
    pools.set(cluster, pool);
  }
  return pool;
}

/** Closes the sessions of every pool (proxy shutdown, tests). */
export function closeH2Pools(): void {
  for (const p of [...live]) p.close();
}

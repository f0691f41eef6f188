// HTTP/1.1 clients of an HTTP/2 cluster (App Mesh http2 listeners called by plain HTTP/1 clients; Envoy pairs
// the HTTP/1 downstream codec with the HTTP/2 upstream pool the same way).
//
// Http1Session keeps doing everything it does for an exchange (routing, rewrites, retries, timeouts, stats,
// access log, keep-alive) and talks HTTP/1.1 to what it believes is an upstream connection; for an HTTP/2
// cluster that connection is an H2Adapter, a Duplex that turns the HTTP/1.1 request written to it into a stream
// on the cluster's pooled HTTP/2 session (h2-pool.ts) and the h2 response back into HTTP/1.1 bytes:
//
//   request:  the head is parsed (HTTP/1 codec), its fields lower-cased, connection-specific ones dropped,
//             Host → :authority, the request-target → :path, X-Forwarded-Proto (set by Http1Session) → :scheme;
//             the body is forwarded as DATA (de-chunked; chunked trailers become h2 trailers).
//   response: `HTTP/1.1 <status> <reason>`, the fields, and Content-Length when the h2 response had one,
//             `content-length: 0` for a headers-only response, else chunked; trailers are dropped (an HTTP/1
//             client did not ask for them).
//
// viaHttp2(cluster) is the ClusterHandle Http1Session uses for such a cluster: connect() gives an adapter on a
// pooled session (rejecting with the pool's UpstreamConnectError), release() ends the adapter (cancelling the
// stream when it is unfinished), stats and outcomes go to the cluster.
import type { IncomingHttpHeaders } from 'node:http2';
import { Duplex } from 'node:stream';
import { BodyFramer, parseRequestHead, REASON_PHRASES, type RequestHead } from '../http1/index.ts';
import { connectionSpecific, NGHTTP2_CANCEL, teTrailers } from './h2-common.ts';
import { h2Pool, type H2ResetKind, type H2StreamEvents, type H2Upstream, type PooledH2Session } from './h2-pool.ts';
import { ChunkDecoder } from './h2-to-h1.ts';
import type { ClusterHandle, ClusterRequestStats, UpstreamConnection, UpstreamHost } from './upstream-api.ts';

const wrappers = new WeakMap<ClusterHandle, ClusterHandle>();

/** The HTTP/1-speaking face of an HTTP/2 cluster (cached per cluster handle). */
export function viaHttp2(cluster: ClusterHandle): ClusterHandle {
  let w = wrappers.get(cluster);
  if (!w) {
    w = new H1ToH2Cluster(cluster);
    wrappers.set(cluster, w);
  }
  return w;
}

class H1ToH2Cluster implements ClusterHandle {
  readonly name: string;
  readonly stats: ClusterRequestStats;
  /** false: Http1Session forwards through this handle as HTTP/1. */
  readonly http2 = false;
  readonly #target: ClusterHandle;

  constructor(target: ClusterHandle) {
    this.#target = target;
    this.name = target.name;
    this.stats = target.stats;
  }

  connect(): Promise<UpstreamConnection> {
    const got = h2Pool(this.#target).acquire();
    const make = (s: PooledH2Session): UpstreamConnection => ({ socket: new H2Adapter(s), host: s.conn.host, reused: false });
    return got instanceof Promise ? got.then(make) : Promise.resolve(make(got));
  }

  release(conn: UpstreamConnection): void {
    conn.socket.destroy();
  }

  outcome(host: UpstreamHost, status: number | 'connect-failure' | 'reset' | 'timeout'): void {
    this.#target.outcome(host, status);
  }
}

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');
/** Chunks smaller than this are framed into one buffer (one write downstream); larger ones go as three. */
const COPY_BELOW = 16 * 1024;

/** The request head as an h2 header list. */
function h2RequestHeaders(head: RequestHead): string[] {
  let scheme = 'http';
  const h = head.headers;
  const out: string[] = [':method', head.method, ':scheme', scheme, ':path', head.target];
  if (head.host !== undefined) out.push(':authority', head.host);
  const tokens = head.connectionTokens;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!.toLowerCase();
    const value = h[i + 1]!;
    const cs = connectionSpecific(name);
    if (cs === 1 || name === 'host') continue;
    if (cs === 2) {
      if (teTrailers(value)) out.push('te', 'trailers');
      continue;
    }
    if (tokens !== undefined && tokens.includes(name) && name !== 'content-length') continue;
    if (name === 'x-forwarded-proto' && (value === 'https' || value === 'http')) scheme = value;
    out.push(name, value);
  }
  out[3] = scheme;
  return out;
}

/** An HTTP/1.1 "connection" carrying one request over an HTTP/2 stream. */
class H2Adapter extends Duplex implements H2StreamEvents {
  readonly #session: PooledH2Session;
  #up: H2Upstream | undefined;
  #headBuf: Buffer | undefined;
  #method = 'GET';
  #framer: BodyFramer | undefined;
  #decoder: ChunkDecoder | undefined;
  #requestEnded = false;
  #chunked = false;
  #upPaused = false;
  #pendingWrite: ((e?: Error | null) => void) | undefined;
  #lastWriteOk = true;

  constructor(session: PooledH2Session) {
    super({ allowHalfOpen: true, readableHighWaterMark: 64 * 1024, writableHighWaterMark: 16 * 1024 });
    this.#session = session;
  }

  // --- the HTTP/1.1 request, written by Http1Session -------------------------------------------------------

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#up === undefined) {
      const buf = this.#headBuf ? Buffer.concat([this.#headBuf, chunk]) : chunk;
      let parsed;
      try {
        parsed = parseRequestHead(buf, 0);
      } catch (e) {
        cb(e as Error);
        return;
      }
      if (!parsed) {
        this.#headBuf = buf;
        cb();
        return;
      }
      this.#headBuf = undefined;
      if (!this.#open(parsed.head)) {
        cb();
        return;
      }
      if (parsed.end < buf.length && !this.#requestEnded) this.#body(buf, parsed.end);
    } else if (!this.#requestEnded) {
      this.#body(chunk, 0);
    }
    if (this.#lastWriteOk || this.#up === undefined) cb();
    else this.#pendingWrite = cb;
  }

  #open(head: RequestHead): boolean {
    this.#method = head.method;
    const framing = head.framing;
    const endStream = framing.kind === 'none' || (framing.kind === 'length' && framing.n === 0);
    try {
      this.#up = this.#session.open(h2RequestHeaders(head), endStream, this);
    } catch {
      this.destroy();
      return false;
    }
    if (endStream) {
      this.#requestEnded = true;
    } else {
      this.#framer = new BodyFramer(framing);
      if (framing.kind === 'chunked') this.#decoder = new ChunkDecoder((piece) => this.#send(piece));
    }
    return true;
  }

  #body(buf: Buffer, offset: number): void {
    const framer = this.#framer!;
    let n: number;
    try {
      n = framer.feed(buf, offset);
    } catch {
      this.destroy();
      return;
    }
    if (n > 0) {
      const slice = offset === 0 && n === buf.length ? buf : buf.subarray(offset, offset + n);
      if (this.#decoder) this.#decoder.decode(slice);
      else this.#send(slice);
    }
    if (framer.done) {
      this.#requestEnded = true;
      this.#up?.end(this.#decoder?.trailers);
    }
  }

  #send(piece: Buffer): void {
    if (piece.length > 0) this.#lastWriteOk = this.#up!.write(piece);
  }

  onDrain(): void {
    this.#lastWriteOk = true;
    const cb = this.#pendingWrite;
    this.#pendingWrite = undefined;
    cb?.();
  }

  // --- the h2 response, read by Http1Session as HTTP/1.1 ---------------------------------------------------

  onResponse(status: number, raw: string[], endStream: boolean): void {
    let s = `HTTP/1.1 ${status} ${REASON_PHRASES[status] ?? ''}\r\n`;
    let length = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      if (name.charCodeAt(0) === 58 /* : */ || connectionSpecific(name) !== 0) continue;
      if (name === 'content-length') length = true;
      s += `${name}: ${raw[i + 1]!}\r\n`;
    }
    const bodyless = this.#method === 'HEAD' || status === 204 || status === 304 || status < 200;
    if (!length && !bodyless) {
      if (endStream) s += 'content-length: 0\r\n';
      else {
        s += 'transfer-encoding: chunked\r\n';
        this.#chunked = true;
      }
    }
    this.push(Buffer.from(`${s}\r\n`, 'latin1'));
  }

  onData(chunk: Buffer): boolean {
    let ok: boolean;
    if (!this.#chunked) ok = this.push(chunk);
    else if (chunk.length === 0) ok = true;
    else if (chunk.length < COPY_BELOW) ok = this.push(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, CRLF]));
    else {
      this.push(Buffer.from(`${chunk.length.toString(16)}\r\n`, 'latin1'));
      this.push(chunk);
      ok = this.push(CRLF);
    }
    if (!ok) this.#upPaused = true;
    return ok;
  }

  onTrailers(_trailers: IncomingHttpHeaders): void {
    // An HTTP/1 client gets no trailers (Envoy forwards them only with enable_trailers).
  }

  onEnd(): void {
    if (this.#chunked) this.push(LAST_CHUNK);
  }

  onReset(_kind: H2ResetKind, _code: number): void {
    // Http1Session sees the connection close: before the response it retries or answers 503, after it ends
    // the client connection.
    this.destroy();
  }

  override _read(): void {
    if (this.#upPaused) {
      this.#upPaused = false;
      this.#up?.resume();
    }
  }

  override _final(cb: (e?: Error | null) => void): void {
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    const up = this.#up;
    if (up && !up.finished) up.cancel(NGHTTP2_CANCEL);
    this.#pendingWrite = undefined;
    cb(err);
  }
}

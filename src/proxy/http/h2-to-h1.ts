// An HTTP/2 request sent to an HTTP/1.1 cluster (Envoy's HTTP/2 → HTTP/1 codec pairing): the request head is
// written with the HTTP/1 codec from the h2 header list, the body goes out as received (Content-Length when the
// client gave one) or chunked, request trailers ride in the chunked trailer section; the response head is parsed
// with the HTTP/1 codec and handed over as an h2 header list (hop-by-hop fields dropped), the body de-chunked,
// and trailers of a chunked response passed on.
//
// The upstream connection goes back to the cluster's pool when both messages completed cleanly and both sides
// keep it alive; a response that completes before the request was sent ends the upstream connection (Envoy resets
// the upstream request then).
import type { IncomingHttpHeaders } from 'node:http2';
import {
  BodyFramer, NO_BODY, parseResponseHead, serializeRequestHead, type RequestHead, type ResponseHead,
} from '../http1/index.ts';
import { connectionSpecific } from './h2-common.ts';
import type { H2ResetKind, H2StreamEvents } from './h2-pool.ts';
import type { ClusterHandle, UpstreamConnection, UpstreamHost } from './upstream-api.ts';

/** What an exchange needs of one upstream attempt, HTTP/2 stream or HTTP/1 connection alike. */
export interface UpstreamAttempt {
  readonly host: UpstreamHost;
  write(chunk: Buffer): boolean;
  end(trailers?: IncomingHttpHeaders): void;
  pause(): void;
  resume(): void;
  cancel(code?: number): void;
}

export type H1BodyKind = 'none' | 'empty' | 'length' | 'chunked';

/** Methods whose requests carry no body by convention: no `content-length: 0` when they have none. */
function bodylessMethod(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'DELETE' || method === 'OPTIONS' || method === 'TRACE' || method === 'CONNECT';
}

/** How an HTTP/2 request body goes out as HTTP/1.1. */
export function h1BodyKind(method: string, hasBody: boolean, contentLength: boolean): H1BodyKind {
  if (!hasBody) return bodylessMethod(method) ? 'none' : 'empty';
  return contentLength ? 'length' : 'chunked';
}

/**
 * The HTTP/1.1 request head for an h2 request: `host` from :authority, the regular fields (connection-specific
 * ones, `host` and the names in `set` dropped; `cookie` fields joined with '; ' as RFC 9113 §8.2.3 asks), then
 * `set` ([name, value, ...]), then the framing field. Throws InternalError for a target the route rewrote into
 * something that cannot go on a request line.
 */
export function h1RequestHead(method: string, target: string, authority: string | undefined, raw: readonly string[], set: readonly string[], body: H1BodyKind, skip?: string): Buffer {
  const headers: string[] = [];
  if (authority !== undefined) headers.push('host', authority);
  let cookie: string | undefined;
  outer: for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.charCodeAt(0) === 58 /* : */ || name === 'host' || name === skip) continue;
    if (connectionSpecific(name) === 1) continue;
    if (name === 'content-length' && body !== 'length') continue;
    for (let j = 0; j < set.length; j += 2) if (set[j] === name) continue outer;
    if (name === 'cookie') {
      cookie = cookie === undefined ? raw[i + 1]! : `${cookie}; ${raw[i + 1]!}`;
      continue;
    }
    headers.push(name, raw[i + 1]!);
  }
  if (cookie !== undefined) headers.push('cookie', cookie);
  for (let j = 0; j < set.length; j += 2) headers.push(set[j]!, set[j + 1]!);
  if (body === 'chunked') headers.push('transfer-encoding', 'chunked');
  else if (body === 'empty') headers.push('content-length', '0');
  const head: RequestHead = {
    version: '1.1', headers, contentLength: undefined, chunked: body === 'chunked', framing: NO_BODY, keepAlive: true,
    connectionTokens: undefined, upgrade: undefined, hopByHop: false, forwardedProto: false, method, target, form: 'origin', scheme: undefined, authority: undefined,
    path: target, host: authority, expectContinue: false,
  };
  return serializeRequestHead(head, { target });
}

/** An HTTP/1 response head as an h2 header list: `:status`, lower-case names, hop-by-hop fields dropped. */
export function h2ResponseHeaders(resp: ResponseHead): string[] {
  const out = [':status', String(resp.status)];
  const h = resp.headers;
  const tokens = resp.connectionTokens;
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i]!.toLowerCase();
    if (connectionSpecific(name) !== 0) continue;
    if (tokens !== undefined && tokens.includes(name) && name !== 'content-length') continue;
    if (name === 'content-length' && resp.framing.kind !== 'length') continue;
    out.push(name, h[i + 1]!);
  }
  return out;
}

// --- chunked bodies --------------------------------------------------------------------------------------

const C_SIZE = 0;
const C_LINE = 1; // rest of a chunk-size line (extensions), up to LF
const C_DATA = 2;
const C_DATA_END = 3; // CRLF after chunk data
const C_TRAILER = 4;
const C_DONE = 5;

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/**
 * Takes the payload out of chunked bytes that BodyFramer has already validated (so it can be lenient): data
 * pieces are handed to `sink` as views of the input, trailer fields are collected.
 */
export class ChunkDecoder {
  #state = C_SIZE;
  #size = 0;
  #remaining = 0;
  #line = '';
  readonly #sink: (piece: Buffer) => void;
  trailers: IncomingHttpHeaders | undefined;

  constructor(sink: (piece: Buffer) => void) {
    this.#sink = sink;
  }

  get done(): boolean {
    return this.#state === C_DONE;
  }

  decode(buf: Buffer): void {
    let p = 0;
    const end = buf.length;
    while (p < end) {
      switch (this.#state) {
        case C_SIZE: {
          const c = buf[p]!;
          const v = hexValue(c);
          if (v >= 0) {
            this.#size = this.#size * 16 + v;
            p++;
          } else {
            this.#state = C_LINE;
          }
          break;
        }
        case C_LINE: {
          const lf = buf.indexOf(10, p);
          if (lf < 0) return;
          p = lf + 1;
          if (this.#size === 0) {
            this.#state = C_TRAILER;
            this.#line = '';
          } else {
            this.#remaining = this.#size;
            this.#size = 0;
            this.#state = C_DATA;
          }
          break;
        }
        case C_DATA: {
          const n = Math.min(this.#remaining, end - p);
          this.#sink(p === 0 && n === end ? buf : buf.subarray(p, p + n));
          this.#remaining -= n;
          p += n;
          if (this.#remaining === 0) this.#state = C_DATA_END;
          break;
        }
        case C_DATA_END: {
          const lf = buf.indexOf(10, p);
          if (lf < 0) return;
          p = lf + 1;
          this.#state = C_SIZE;
          break;
        }
        case C_TRAILER: {
          const lf = buf.indexOf(10, p);
          const piece = buf.toString('latin1', p, lf < 0 ? end : lf);
          this.#line += piece;
          if (lf < 0) return;
          p = lf + 1;
          const line = this.#line.endsWith('\r') ? this.#line.slice(0, -1) : this.#line;
          this.#line = '';
          if (line === '') {
            this.#state = C_DONE;
            return;
          }
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).toLowerCase();
          if (connectionSpecific(name) !== 0 || name === 'content-length' || name === 'host') break;
          const value = line.slice(colon + 1).trim();
          const t = (this.trailers ??= {});
          const prev = t[name];
          t[name] = prev === undefined ? value : `${String(prev)}, ${value}`;
          break;
        }
        default:
          return;
      }
    }
  }
}

/** Chunked framing of one piece of request body. */
function chunkHead(n: number): Buffer {
  return Buffer.from(`${n.toString(16)}\r\n`, 'latin1');
}

const CRLF = Buffer.from('\r\n', 'latin1');
const LAST_CHUNK = Buffer.from('0\r\n\r\n', 'latin1');

// --- the attempt -----------------------------------------------------------------------------------------

const WAITING = 0;
const BODY = 1;
const DONE = 2;
const CANCELLED = 3;

/** One request on an HTTP/1.1 connection of the cluster, reporting through H2StreamEvents. */
export class H1Upstream implements UpstreamAttempt {
  readonly host: UpstreamHost;
  readonly #cluster: ClusterHandle;
  readonly #conn: UpstreamConnection;
  readonly #events: H2StreamEvents;
  readonly #method: string;
  readonly #chunked: boolean;
  #state = WAITING;
  #buf: Buffer | undefined;
  #resumeFrom: number | undefined;
  #response: ResponseHead | undefined;
  #framer: BodyFramer | undefined;
  #decoder: ChunkDecoder | undefined;
  #requestDone = false;
  #tainted = false;
  #received = false;
  readonly #onData = (chunk: Buffer): void => this.#upstreamData(chunk);
  readonly #onEnd = (): void => this.#upstreamEnd();
  readonly #onDrain = (): void => {
    if (this.#state !== CANCELLED) this.#events.onDrain();
  };

  constructor(cluster: ClusterHandle, conn: UpstreamConnection, head: Buffer, method: string, chunked: boolean, events: H2StreamEvents) {
    this.#cluster = cluster;
    this.#conn = conn;
    this.host = conn.host;
    this.#events = events;
    this.#method = method;
    this.#chunked = chunked;
    const sock = conn.socket;
    sock.on('data', this.#onData);
    sock.once('end', this.#onEnd);
    sock.once('close', this.#onEnd);
    sock.on('error', this.#onEnd);
    sock.on('drain', this.#onDrain);
    sock.write(head);
    sock.resume();
  }

  write(chunk: Buffer): boolean {
    if (this.#state === CANCELLED || (this.#state === DONE && this.#requestDone)) return true;
    const sock = this.#conn.socket;
    if (!this.#chunked) return sock.write(chunk);
    if (chunk.length === 0) return true;
    sock.cork();
    sock.write(chunkHead(chunk.length));
    sock.write(chunk);
    const ok = sock.write(CRLF);
    sock.uncork();
    return ok;
  }

  end(trailers?: IncomingHttpHeaders): void {
    if (this.#requestDone) return;
    this.#requestDone = true;
    if (this.#state === CANCELLED) return;
    if (this.#chunked) {
      let t = '';
      if (trailers) {
        for (const [name, value] of Object.entries(trailers)) {
          if (connectionSpecific(name) !== 0 || name === 'content-length' || value === undefined) continue;
          for (const v of Array.isArray(value) ? value : [value]) if (!/[\r\n\0]/.test(v)) t += `${name}: ${v}\r\n`;
        }
      }
      this.#conn.socket.write(t === '' ? LAST_CHUNK : Buffer.from(`0\r\n${t}\r\n`, 'latin1'));
    }
    if (this.#state === DONE) this.#release();
  }

  pause(): void {
    this.#conn.socket.pause();
  }

  resume(): void {
    if (this.#state !== CANCELLED) this.#conn.socket.resume();
  }

  cancel(): void {
    if (this.#state === CANCELLED) return;
    const released = this.#state === DONE && this.#requestDone;
    this.#state = CANCELLED;
    if (!released) {
      this.#detach();
      this.#cluster.release(this.#conn, false);
    }
  }

  #detach(): void {
    const sock = this.#conn.socket;
    sock.off('data', this.#onData);
    sock.off('end', this.#onEnd);
    sock.off('close', this.#onEnd);
    sock.off('error', this.#onEnd);
    sock.off('drain', this.#onDrain);
  }

  #fail(kind: H2ResetKind): void {
    this.#state = CANCELLED;
    this.#detach();
    this.#cluster.release(this.#conn, false);
    this.#events.onReset(kind, 0);
  }

  #upstreamData(chunk: Buffer): void {
    if (this.#state === CANCELLED) return;
    this.#received = true;
    if (this.#state === DONE) {
      this.#tainted = true; // bytes after the response: not reusable
      return;
    }
    if (this.#state === BODY) {
      this.#body(chunk, 0);
      return;
    }
    const buf = this.#buf ? Buffer.concat([this.#buf, chunk]) : chunk;
    let offset = 0;
    for (;;) {
      let parsed;
      try {
        parsed = parseResponseHead(buf, offset, this.#method, undefined, this.#resumeFrom);
      } catch {
        this.#fail('protocol');
        return;
      }
      if (!parsed) {
        this.#buf = offset === 0 ? buf : buf.subarray(offset);
        this.#resumeFrom = this.#buf.length;
        return;
      }
      this.#resumeFrom = undefined;
      const resp = parsed.head;
      offset = parsed.end;
      if (resp.status >= 100 && resp.status < 200) {
        if (resp.status === 101) {
          this.#fail('protocol');
          return;
        }
        continue; // interim responses are not forwarded (100-continue was answered by the proxy)
      }
      this.#buf = undefined;
      this.#response = resp;
      this.#state = BODY;
      const none = resp.framing.kind === 'none';
      if (!none) {
        this.#framer = new BodyFramer(resp.framing, undefined, 'response');
        if (resp.framing.kind === 'chunked') this.#decoder = new ChunkDecoder((piece) => this.#piece(piece));
      }
      this.#events.onResponse(resp.status, h2ResponseHeaders(resp), none);
      if (this.#state !== BODY) return; // cancelled by the receiver (a retry)
      if (none) {
        if (offset < buf.length) this.#tainted = true;
        this.#complete();
        return;
      }
      if (offset < buf.length) this.#body(buf, offset);
      return;
    }
  }

  #body(buf: Buffer, offset: number): void {
    const framer = this.#framer!;
    let n: number;
    try {
      n = framer.feed(buf, offset);
    } catch {
      this.#fail('protocol');
      return;
    }
    if (n > 0) {
      const slice = offset === 0 && n === buf.length ? buf : buf.subarray(offset, offset + n);
      if (this.#decoder) this.#decoder.decode(slice);
      else this.#piece(slice);
    }
    if (this.#state !== BODY) return;
    if (framer.done) {
      if (offset + n < buf.length) this.#tainted = true;
      const trailers = this.#decoder?.trailers;
      if (trailers) this.#events.onTrailers(trailers);
      this.#complete();
    }
  }

  #piece(piece: Buffer): void {
    if (this.#state === BODY && !this.#events.onData(piece)) this.#conn.socket.pause();
  }

  #complete(): void {
    if (this.#state !== BODY) return;
    this.#state = DONE;
    this.#events.onEnd();
    if (this.#state === DONE && this.#requestDone) this.#release();
  }

  #release(): void {
    this.#detach();
    const resp = this.#response!;
    this.#cluster.release(this.#conn, resp.keepAlive && resp.framing.kind !== 'close' && !this.#tainted);
  }

  #upstreamEnd(): void {
    if (this.#state === CANCELLED) return;
    if (this.#state === DONE) {
      // Closed after a complete response: fine, but not reusable (release closes it).
      this.#tainted = true;
      if (!this.#requestDone) {
        this.#state = CANCELLED;
        this.#detach();
        this.#cluster.release(this.#conn, false);
      }
      return;
    }
    if (this.#state === BODY && this.#framer?.framing.kind === 'close') {
      this.#tainted = true;
      this.#complete();
      return;
    }
    // A pooled connection the server had closed meanwhile: nothing of this request was processed.
    this.#fail(this.#conn.reused && !this.#received ? 'refused' : 'termination');
  }
}

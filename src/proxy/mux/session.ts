// keymesh's multiplexed sidecar-to-sidecar hop: many virtual connections (MuxStream) over one mutual-TLS
// connection, negotiated by ALPN (`keymesh-mux/1`) only between keymesh's own proxies; any other peer (a stock
// Envoy, an application terminating TLS itself) does not select it and gets plain HTTP/1.1 connections.
//
// Why: on the sidecar-to-sidecar hop every request used to cost a TLS record and a write system call each way
// on each side. Here every frame written during one turn of the event loop leaves in one write (one TLS record
// batch, one syscall) at the end of that turn (setImmediate), so under load many requests share each one. What
// a stream carries is unchanged HTTP/1.1, so the connection manager, routing, stats and access logs on both
// sides are the same code as for a TCP connection. The peer is authenticated once, by the TLS handshake; every
// stream of the connection carries that identity (as HTTP/2 streams do).
//
// The client side (the cluster's pool) opens streams; the server side (the listener's HTTP connection manager)
// accepts them. A stream is opened by its first DATA frame (an empty one when it has nothing to say yet); ids
// only grow, and streams reach the server in id order. GOAWAY from the server (its filter chain changed: drain)
// retires the session: no new streams, and the connection closes once the last ends.
import type { Duplex } from 'node:stream';
import { DATA, END, FrameReader, GOAWAY, HEADER_BYTES, MAX_CONCURRENT_STREAMS, MAX_DATA_PAYLOAD, MuxProtocolError, RESET, u32Payload, WINDOW, writeHeader, type FrameType } from './frames.ts';
import { MuxStream, type StreamOwner } from './stream.ts';

export interface MuxSessionOptions {
  readonly role: 'client' | 'server';
  /** Server: a new stream from the peer, before its first bytes are delivered (attach listeners now). */
  readonly onStream?: (stream: MuxStream) => void;
  /** Streams' half-close behaviour (net.Socket's allowHalfOpen): the listener's is true, upstream sockets' false. */
  readonly allowHalfOpen: boolean;
  /** Close the connection after this long without any stream (0 or absent: never). */
  readonly idleTimeoutMs?: number;
  /** The peer broke the framing; the connection is closed after this. */
  readonly onProtocolError?: (e: MuxProtocolError) => void;
  /** The connection is gone (every stream was reset). */
  readonly onClose?: () => void;
}

const RESET_REFUSED = 1;
const RESET_PROTOCOL = 2;
/** Client stream ids stop here; the session retires and a new connection is made (ids never wrap). */
const LAST_STREAM_ID = 0x7fff_fffe;
const HEADER_SLAB_BYTES = 16 * 1024;

export class MuxSession implements StreamOwner {
  readonly #socket: Duplex;
  readonly #o: MuxSessionOptions;
  readonly #streams = new Map<number, MuxStream>();
  readonly #reader: FrameReader;
  #nextId = 1;
  /** Client: the highest stream id the peer has heard of (see #announce). */
  #announced = -1;
  /** Server: the highest stream id the peer opened (a lower unknown id is a stream already over). */
  #lastPeerId = 0;
  #retired = false;
  /** This side ended the connection (retired, last stream over): nothing more can be written. */
  #ended = false;
  #closed = false;
  // The batch written at the end of this turn of the event loop. Headers are cut from one slab, reused after
  // each flush (Buffer.concat copies them out).
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #slab = Buffer.allocUnsafe(HEADER_SLAB_BYTES);
  #slabUsed = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #flush = () => this.#flushNow();

  constructor(socket: Duplex, options: MuxSessionOptions) {
    this.#socket = socket;
    this.#o = options;
    this.#reader = new FrameReader({ frame: (type, stream, payload) => this.#onFrame(type, stream, payload) });
    socket.on('data', (chunk: Buffer) => {
      if (this.#closed) return;
      try {
        this.#reader.push(chunk);
      } catch (e) {
        if (!(e instanceof MuxProtocolError)) throw e;
        this.#o.onProtocolError?.(e);
        this.destroy();
      }
    });
    socket.on('end', () => this.destroy());
    socket.on('close', () => this.#onClosed());
    socket.on('error', () => {});
    this.#armIdle();
  }

  /** Streams open now. */
  get streams(): number {
    return this.#streams.size;
  }

  /** No new streams: the server said GOAWAY, or this side retired it. */
  get retired(): boolean {
    return this.#retired || this.#closed;
  }

  /** Client: a new stream, or undefined when the session takes no more (retired, closed, or full). */
  open(): MuxStream | undefined {
    if (this.#o.role !== 'client' || this.retired || this.#streams.size >= MAX_CONCURRENT_STREAMS) return undefined;
    const id = this.#nextId;
    this.#nextId += 2;
    if (this.#nextId > LAST_STREAM_ID) this.#retired = true;
    const stream = new MuxStream(id, this, this.#o.allowHalfOpen);
    this.#streams.set(id, stream);
    clearTimeout(this.#idleTimer);
    return stream;
  }

  /** No new streams; the connection ends once the open ones are over. */
  retire(): void {
    if (this.#retired || this.#closed) return;
    this.#retired = true;
    if (this.#o.role === 'server') this.#frame(GOAWAY, 0, u32Payload(this.#lastPeerId));
    if (this.#streams.size === 0) this.#endConnection();
  }

  /** Closes the connection now; every stream is reset. */
  destroy(): void {
    if (this.#closed) return;
    this.#socket.destroy();
    this.#onClosed();
  }

  // --- StreamOwner ---------------------------------------------------------------------------------------

  sendData(id: number, bytes: Buffer): void {
    this.#announce(id);
    for (let off = 0; off < bytes.length; off += MAX_DATA_PAYLOAD) {
      const part = off === 0 && bytes.length <= MAX_DATA_PAYLOAD ? bytes : bytes.subarray(off, Math.min(off + MAX_DATA_PAYLOAD, bytes.length));
      this.#frame(DATA, id, part);
    }
  }

  sendEnd(id: number): void {
    // Ended before it wrote anything: an empty DATA opens it first (the peer ignores END for an unknown stream).
    if (this.#announce(id)) this.#frame(DATA, id, undefined);
    this.#frame(END, id, undefined);
  }

  sendReset(id: number): void {
    // A client stream the peer never heard of needs no RESET (and must not open it).
    if (this.#o.role === 'client' && id > this.#announced) return;
    this.#frame(RESET, id, u32Payload(0));
  }

  sendWindow(id: number, increment: number): void {
    this.#frame(WINDOW, id, u32Payload(increment));
  }

  released(stream: MuxStream): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    if (this.#streams.size > 0 || this.#closed) return;
    if (this.#retired) this.#endConnection();
    else this.#armIdle();
  }

  /**
   * Client: the server takes a DATA frame for an unknown id at or below the highest it has seen as late bytes of a
   * stream already over (and drops them), so streams must reach it in id order. Streams opened earlier that have
   * not sent anything yet (their first write came later in the turn than a newer stream's) are opened first,
   * with an empty DATA frame each. True when `id` itself is new to the peer.
   */
  #announce(id: number): boolean {
    if (this.#o.role !== 'client' || id <= this.#announced) return false;
    for (let lower = this.#announced + 2; lower < id; lower += 2) {
      if (this.#streams.has(lower)) this.#frame(DATA, lower, undefined);
    }
    this.#announced = id;
    return true;
  }

  // --- frames in --------------------------------------------------------------------------------------------

  #onFrame(type: FrameType, id: number, payload: Buffer): void {
    if (type === GOAWAY) {
      if (this.#o.role === 'client') this.retire();
      return;
    }
    let stream = this.#streams.get(id);
    if (stream === undefined) {
      if (type !== DATA || this.#o.role !== 'server' || id <= this.#lastPeerId) return; // a stream already over
      if (id % 2 === 0) throw new MuxProtocolError(`stream ${id} opened with an even id`);
      this.#lastPeerId = id;
      if (this.#retired || this.#streams.size >= MAX_CONCURRENT_STREAMS) {
        this.#frame(RESET, id, u32Payload(RESET_REFUSED));
        return;
      }
      stream = new MuxStream(id, this, this.#o.allowHalfOpen);
      this.#streams.set(id, stream);
      clearTimeout(this.#idleTimer);
      this.#o.onStream?.(stream);
    }
    switch (type) {
      case DATA:
        if (!stream.received(payload)) {
          // More than its window, or bytes after its END: that stream is reset, the others go on.
          this.#frame(RESET, id, u32Payload(RESET_PROTOCOL));
          stream.reset();
        }
        return;
      case END:
        stream.remoteEnded();
        return;
      case RESET:
        stream.reset();
        return;
      case WINDOW: {
        const increment = payload.readUInt32BE(0);
        if (increment === 0) throw new MuxProtocolError(`WINDOW frame of 0 bytes on stream ${id}`);
        stream.credited(increment);
        return;
      }
    }
  }

  // --- frames out -------------------------------------------------------------------------------------------

  #frame(type: FrameType, id: number, payload: Buffer | undefined): void {
    // After end() a write would be an error that destroys the socket (and what it still had to send).
    if (this.#closed || this.#ended) return;
    if (this.#slabUsed + HEADER_BYTES > this.#slab.length) {
      // A very full turn: the headers so far stay where they are (their slab is kept by #out) and a new one starts.
      this.#slab = Buffer.allocUnsafe(HEADER_SLAB_BYTES);
      this.#slabUsed = 0;
    }
    const at = this.#slabUsed;
    this.#slabUsed += HEADER_BYTES;
    const length = payload === undefined ? 0 : payload.length;
    writeHeader(this.#slab, at, type, id, length);
    this.#out.push(this.#slab.subarray(at, at + HEADER_BYTES));
    if (length > 0) this.#out.push(payload!);
    this.#outBytes += HEADER_BYTES + length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  #flushNow(): void {
    this.#flushScheduled = false;
    if (this.#outBytes === 0 || this.#closed || this.#ended) return;
    const batch = Buffer.concat(this.#out, this.#outBytes);
    this.#out = [];
    this.#outBytes = 0;
    this.#slabUsed = 0;
    this.#socket.write(batch);
  }

  #endConnection(): void {
    if (this.#closed || this.#ended) return;
    this.#flushNow();
    this.#ended = true;
    this.#socket.end();
  }

  #armIdle(): void {
    const ms = this.#o.idleTimeoutMs ?? 0;
    if (ms <= 0 || this.#closed) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (this.#streams.size === 0) this.retire();
    }, ms);
    this.#idleTimer.unref();
  }

  #onClosed(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    this.#out = [];
    this.#outBytes = 0;
    for (const stream of [...this.#streams.values()]) stream.reset();
    this.#streams.clear();
    this.#o.onClose?.();
  }
}

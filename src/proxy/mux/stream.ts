// One virtual connection of a mux session (session.ts): to the HTTP/1.1 code on either side it is a socket —
// `data` / `end` / `close` / `drain` events, write / end / destroy / pause / resume, back-pressure — but its
// bytes travel as frames on the session's TLS connection. Light on purpose: an EventEmitter, not a stream.Duplex
// (the per-chunk machinery of Node's streams is what the multiplexed hop exists to avoid).
//
// Flow control, as HTTP/2's per-stream windows: a writer may have INITIAL_WINDOW bytes unacknowledged; beyond
// that its bytes wait here and write() returns false until the peer gives credit ('drain' then). The receiver
// gives credit back as its consumer takes the bytes — not while it is paused, so a slow consumer holds its
// peer back instead of making this process buffer without bound.
import { EventEmitter } from 'node:events';
import { INITIAL_WINDOW } from './frames.ts';

/** What a stream asks of its session. */
export interface StreamOwner {
  sendData(id: number, bytes: Buffer): void;
  sendEnd(id: number): void;
  sendReset(id: number): void;
  sendWindow(id: number, increment: number): void;
  /** No new streams (GOAWAY, or retired by this side): its streams finish what they carry, then go. */
  readonly retired: boolean;
  /** The stream is over (both sides ended, or reset): its id leaves the session's table. */
  released(stream: MuxStream): void;
}

const EMPTY: readonly Buffer[] = [];

export class MuxStream extends EventEmitter {
  readonly id: number;
  readonly #owner: StreamOwner;
  /** Like net.Socket's: without it, the peer's END ends this side too once the 'end' listeners ran. */
  readonly #allowHalfOpen: boolean;
  #sendWindow = INITIAL_WINDOW;
  /** What the peer may still send before it needs credit (a peer sending more breaks the protocol). */
  #recvWindow = INITIAL_WINDOW;
  /** Bytes handed to the consumer and not yet credited back. */
  #consumed = 0;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #needDrain = false;
  #ending = false;
  #endSent = false;
  #remoteEnded = false;
  /** The peer's END was delivered ('end' emitted): not while it waits behind held bytes of a paused stream. */
  #endDelivered = false;
  #released = false;
  #paused = false;
  /** Received while paused, delivered on resume(); at most the window's worth. */
  #held: Buffer[] | undefined;
  #heldEnd = false;

  constructor(id: number, owner: StreamOwner, allowHalfOpen: boolean) {
    super();
    this.id = id;
    this.#owner = owner;
    this.#allowHalfOpen = allowHalfOpen;
  }

  get destroyed(): boolean {
    return this.#released;
  }

  get writable(): boolean {
    return !this.#released && !this.#ending;
  }

  /** Whether the pool may keep it for another request: open both ways on a session that takes new work. */
  get poolable(): boolean {
    return !this.#released && !this.#ending && !this.#remoteEnded && !this.#owner.retired;
  }

  /** Bytes written that wait for the peer's credit. */
  get writableLength(): number {
    return this.#pendingBytes;
  }

  write(chunk: Buffer | string): boolean {
    if (!this.writable) return false;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    if (bytes.length === 0) return this.#pendingBytes === 0;
    if (this.#pendingBytes === 0 && bytes.length <= this.#sendWindow) {
      this.#sendWindow -= bytes.length;
      this.#owner.sendData(this.id, bytes);
      return true;
    }
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
    this.#flushPending();
    if (this.#pendingBytes === 0) return true;
    this.#needDrain = true;
    return false;
  }

  /** Nothing to do: the session writes everything of a turn of the event loop at once anyway. */
  cork(): void {}

  uncork(): void {}

  end(chunk?: Buffer | string): this {
    if (chunk !== undefined) this.write(chunk);
    if (this.#ending || this.#released) return this;
    this.#ending = true;
    if (this.#pendingBytes === 0) this.#sendEnd();
    return this;
  }

  /** Aborts the stream both ways (RESET to the peer unless it was over already); 'close' follows. */
  destroy(): this {
    if (this.#released) return this;
    if (!(this.#endSent && this.#remoteEnded)) this.#owner.sendReset(this.id);
    this.#release();
    return this;
  }

  pause(): this {
    this.#paused = true;
    return this;
  }

  resume(): this {
    if (!this.#paused) return this;
    this.#paused = false;
    const held = this.#held;
    this.#held = undefined;
    for (const [i, chunk] of (held ?? EMPTY).entries()) {
      if (this.#released) return this;
      if (this.#paused) {
        // Paused again by a 'data' listener: the rest waits for the next resume().
        this.#held = held!.slice(i);
        return this;
      }
      this.#deliver(chunk);
    }
    if (this.#heldEnd && !this.#released) {
      this.#heldEnd = false;
      this.#onRemoteEnd();
    }
    return this;
  }

  // --- from the session -----------------------------------------------------------------------------------

  /** DATA from the peer; false when it broke the stream's flow control or wrote after its END (the session resets). */
  received(bytes: Buffer): boolean {
    if (this.#released) return true;
    if (this.#remoteEnded || bytes.length > this.#recvWindow) return false;
    if (bytes.length === 0) return true; // only opens the stream (session.ts)
    this.#recvWindow -= bytes.length;
    if (this.#paused) (this.#held ??= []).push(bytes);
    else this.#deliver(bytes);
    return true;
  }

  remoteEnded(): void {
    if (this.#released || this.#remoteEnded) return;
    this.#remoteEnded = true;
    if (this.#paused) this.#heldEnd = true;
    else this.#onRemoteEnd();
  }

  /** RESET from the peer, or the session's connection went away. */
  reset(): void {
    this.#release();
  }

  credited(increment: number): void {
    if (this.#released) return;
    this.#sendWindow += increment;
    this.#flushPending();
    if (this.#pendingBytes > 0) return;
    if (this.#ending && !this.#endSent) this.#sendEnd();
    if (this.#needDrain) {
      this.#needDrain = false;
      this.emit('drain');
    }
  }

  // --- inside ---------------------------------------------------------------------------------------------

  #deliver(bytes: Buffer): void {
    this.emit('data', bytes);
    // Credit goes back in batches of half a window: one WINDOW frame per 128 KiB consumed, not per chunk.
    this.#consumed += bytes.length;
    if (this.#consumed >= INITIAL_WINDOW / 2 && !this.#released && !this.#remoteEnded) {
      this.#recvWindow += this.#consumed;
      this.#owner.sendWindow(this.id, this.#consumed);
      this.#consumed = 0;
    }
  }

  #flushPending(): void {
    while (this.#pendingBytes > 0 && this.#sendWindow > 0) {
      const first = this.#pending[0]!;
      const n = Math.min(first.length, this.#sendWindow);
      const part = n === first.length ? first : first.subarray(0, n);
      if (n === first.length) this.#pending.shift();
      else this.#pending[0] = first.subarray(n);
      this.#pendingBytes -= n;
      this.#sendWindow -= n;
      this.#owner.sendData(this.id, part);
    }
  }

  #sendEnd(): void {
    this.#endSent = true;
    this.#owner.sendEnd(this.id);
    // Over once the peer's END was delivered too; a paused stream still holding it stays until resume().
    if (this.#endDelivered) this.#release();
  }

  #onRemoteEnd(): void {
    this.#endDelivered = true;
    this.emit('end');
    if (this.#released) return;
    if (!this.#allowHalfOpen) this.end();
    if (this.#endSent) this.#release();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#held = undefined;
    this.#owner.released(this);
    // As a socket's: 'close' comes after the call that ended it has returned.
    process.nextTick(() => this.emit('close'));
  }
}

// The framing of keymesh's multiplexed sidecar-to-sidecar hop (ALPN `keymesh-mux/1`, see session.ts): many
// virtual connections over one mutual-TLS connection. Every frame is a 9-byte header, then its payload:
//
//   type (1 byte) | stream id (4 bytes, big-endian) | payload length (4 bytes, big-endian) | payload
//
// DATA carries bytes of one virtual connection (the HTTP/1.1 it speaks is untouched); END is its half-close;
// RESET aborts it both ways; WINDOW gives the sender credit for more DATA (per-stream flow control, as HTTP/2);
// GOAWAY (stream 0) says the server takes no new streams. Pure encoding and decoding; no I/O here.
import { KeymeshError } from '../../errors/index.ts';

/** The ALPN protocol id keymesh's proxies offer and select between themselves. */
export const MUX_ALPN = 'keymesh-mux/1';

export const DATA = 0;
export const END = 1;
export const RESET = 2;
export const WINDOW = 3;
export const GOAWAY = 4;
export type FrameType = typeof DATA | typeof END | typeof RESET | typeof WINDOW | typeof GOAWAY;

export const HEADER_BYTES = 9;
/** The largest DATA payload; a longer write is cut into several frames (so one stream cannot hold the hop). */
export const MAX_DATA_PAYLOAD = 64 * 1024;
/** Credit each stream starts with, each way; the receiver gives it back as its consumer takes the bytes. */
export const INITIAL_WINDOW = 256 * 1024;
/** Streams a session carries at once; the client opens no more (it dials a plain connection instead). */
export const MAX_CONCURRENT_STREAMS = 1024;

/** Bytes a peer sent that break the framing: the whole mux connection is closed. */
export class MuxProtocolError extends KeymeshError {
  constructor(message: string) {
    super('bad-request', 'KM_ERR_MUX_PROTOCOL', message);
  }
}

export interface FrameSink {
  frame(type: FrameType, stream: number, payload: Buffer): void;
}

/** Control payloads are one uint32: WINDOW's increment, RESET's code, GOAWAY's last stream id. */
export function u32Payload(value: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(value >>> 0, 0);
  return b;
}

/** Writes a frame header at `at` in `into`. */
export function writeHeader(into: Buffer, at: number, type: FrameType, stream: number, length: number): void {
  into[at] = type;
  into.writeUInt32BE(stream >>> 0, at + 1);
  into.writeUInt32BE(length >>> 0, at + 5);
}

/**
 * Splits a byte stream into frames, checking each header as it arrives (a bad one throws MuxProtocolError
 * before its payload is awaited, so a garbage length never makes the reader wait for or buffer gigabytes).
 * Payloads are views of the chunks received (no copy) unless a frame spans chunks.
 */
export class FrameReader {
  #held: Buffer | undefined;
  readonly #sink: FrameSink;

  constructor(sink: FrameSink) {
    this.#sink = sink;
  }

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.#held !== undefined) {
      buf = Buffer.concat([this.#held, chunk]);
      this.#held = undefined;
    }
    let off = 0;
    while (buf.length - off >= HEADER_BYTES) {
      const type = buf[off]!;
      const stream = buf.readUInt32BE(off + 1);
      const length = buf.readUInt32BE(off + 5);
      checkHeader(type, stream, length);
      const end = off + HEADER_BYTES + length;
      if (end > buf.length) break;
      this.#sink.frame(type as FrameType, stream, buf.subarray(off + HEADER_BYTES, end));
      off = end;
    }
    if (off < buf.length) this.#held = off === 0 ? buf : Buffer.from(buf.subarray(off));
  }
}

function checkHeader(type: number, stream: number, length: number): void {
  switch (type) {
    case DATA:
      if (stream === 0) throw new MuxProtocolError('DATA frame on stream 0');
      if (length > MAX_DATA_PAYLOAD) throw new MuxProtocolError(`DATA frame of ${length} bytes (at most ${MAX_DATA_PAYLOAD})`);
      return;
    case END:
      if (stream === 0) throw new MuxProtocolError('END frame on stream 0');
      if (length !== 0) throw new MuxProtocolError(`END frame with a ${length}-byte payload (none expected)`);
      return;
    case RESET:
    case WINDOW:
      if (stream === 0) throw new MuxProtocolError(`${type === RESET ? 'RESET' : 'WINDOW'} frame on stream 0`);
      if (length !== 4) throw new MuxProtocolError(`${type === RESET ? 'RESET' : 'WINDOW'} frame with a ${length}-byte payload (4 expected)`);
      return;
    case GOAWAY:
      if (stream !== 0) throw new MuxProtocolError(`GOAWAY frame on stream ${stream} (0 expected)`);
      if (length !== 4) throw new MuxProtocolError(`GOAWAY frame with a ${length}-byte payload (4 expected)`);
      return;
    default:
      throw new MuxProtocolError(`unknown frame type ${type}`);
  }
}

// BodyFramer: finds where a message body ends, so the proxy can forward the body bytes verbatim (chunked
// framing included) and keep whatever follows (a pipelined next message) for the head parser.
//
//   const framer = new BodyFramer(head.framing);          // framing from parseRequestHead/parseResponseHead
//   const n = framer.feed(buf, offset);                    // buf[offset .. offset+n) belongs to this body
//   forward(buf.subarray(offset, offset + n));
//   if (framer.done) { /* the next message starts at offset + n */ }
//   framer.finish();                                       // at end of input: ends a close-delimited body,
//                                                          // throws 'truncated-body' for an unfinished one
//   framer.reset(nextHead.framing);                        // reuse for the next message on the connection
//
// It never copies or buffers: `feed` only counts. For chunked bodies it validates the framing incrementally,
// byte by byte through the chunk-size lines and the trailer section (split anywhere across feeds), and skips
// chunk data by arithmetic. Refused framing throws HttpParseError 'bad-chunk' (or 'trailer-too-large').
//
// Chunked grammar (RFC 9112 §7.1), strictly:
//   chunk-size = 1*HEXDIG (leading zeros allowed; a size above 2^53-1 is refused)
//   chunk-ext  = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
//   each line ends with CRLF only; chunk data is followed by CRLF; the last chunk (size 0) is followed by
//   trailer field lines (same grammar as header fields: token ":" OWS value OWS CRLF, no obs-fold) and a
//   final CRLF.
// Whitespace after the size is accepted only before a ';' (the RFC's BWS); bare LF, bare CR, or a CR/LF
// inside an extension are refused, so every parser on the path agrees where each chunk line ends. A
// chunk-size line (with its extensions) is at most maxChunkLineBytes; the trailer section at most
// maxTrailerBytes and maxTrailerCount fields. Trailers are validated and forwarded, not interpreted.
import { CR, DQUOTE, BACKSLASH, EQUALS, FIELD_VALUE, HEX, HT, LF, QDTEXT, QUOTED_PAIR, SEMI, SP, TCHAR, COLON } from './chars.ts';
import { HttpParseError, describeByte, type HttpParseCode, type HttpSide } from './errors.ts';
import { NO_BODY, type BodyFraming } from './head.ts';

export interface BodyLimits {
  /** Longest chunk-size line, extensions and CRLF included. */
  readonly maxChunkLineBytes: number;
  /** Largest trailer section, final CRLF included. */
  readonly maxTrailerBytes: number;
  /** Most trailer fields. */
  readonly maxTrailerCount: number;
}

export const DEFAULT_BODY_LIMITS: BodyLimits = Object.freeze({ maxChunkLineBytes: 4096, maxTrailerBytes: 16 * 1024, maxTrailerCount: 100 });

// Chunked states.
const SIZE_START = 0; // first hex digit of a chunk size
const SIZE = 1; // more hex digits, or what follows them
const SIZE_BWS = 2; // whitespace after the size: only ';' may follow
const EXT_NAME_START = 3; // after ';'
const EXT_NAME = 4;
const EXT_NAME_BWS = 5; // whitespace after a name: '=' or ';' must follow
const EXT_VALUE_START = 6; // after '='
const EXT_VALUE_TOKEN = 7;
const EXT_QUOTED = 8;
const EXT_QUOTED_ESCAPE = 9;
const EXT_AFTER_VALUE = 10; // after a value: ';', CR, or whitespace
const EXT_AFTER_VALUE_BWS = 11; // whitespace after a value: only ';' may follow
const SIZE_LF = 12;
const DATA = 13;
const DATA_CR = 14;
const DATA_LF = 15;
const TRAILER_START = 16; // start of a trailer line, or the final CRLF
const TRAILER_NAME = 17;
const TRAILER_VALUE = 18;
const TRAILER_LF = 19;
const FINAL_LF = 20;
const DONE = 21;
const FAILED = 22;

const KIND_NONE = 0;
const KIND_LENGTH = 1;
const KIND_CHUNKED = 2;
const KIND_CLOSE = 3;

export class BodyFramer {
  #framing: BodyFraming = NO_BODY;
  #kind = KIND_NONE;
  readonly #limits: BodyLimits;
  readonly #side: HttpSide;
  #state = DONE;
  /** length: bytes left in the body; chunked: bytes left in the current chunk's data. */
  #remaining = 0;
  /** The chunk size being read. */
  #size = 0;
  /** Bytes of the current chunk-size line, or of the trailer section so far. */
  #lineBytes = 0;
  #trailerCount = 0;
  #bytes = 0;
  #payloadBytes = 0;
  #failure: HttpParseError | undefined;

  /** `side` only picks the suggested status of errors (400 for a request body, 502 for a response body). */
  constructor(framing: BodyFraming, limits: BodyLimits = DEFAULT_BODY_LIMITS, side: HttpSide = 'request') {
    this.#limits = limits;
    this.#side = side;
    this.reset(framing);
  }

  /** Starts over for the next message's body (one framer can serve a whole connection). */
  reset(framing: BodyFraming): void {
    this.#framing = framing;
    this.#remaining = 0;
    this.#size = 0;
    this.#lineBytes = 0;
    this.#trailerCount = 0;
    this.#bytes = 0;
    this.#payloadBytes = 0;
    this.#failure = undefined;
    switch (framing.kind) {
      case 'none':
        this.#kind = KIND_NONE;
        this.#state = DONE;
        break;
      case 'length':
        this.#kind = KIND_LENGTH;
        this.#remaining = framing.n;
        this.#state = framing.n > 0 ? DATA : DONE;
        break;
      case 'chunked':
        this.#kind = KIND_CHUNKED;
        this.#state = SIZE_START;
        break;
      case 'close':
        this.#kind = KIND_CLOSE;
        this.#state = DATA;
        break;
    }
  }

  get framing(): BodyFraming {
    return this.#framing;
  }

  /** The whole body has been seen; feed() will take nothing more. */
  get done(): boolean {
    return this.#state === DONE;
  }

  /** Bytes of the body taken so far, framing included: what the proxy has forwarded. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes of content taken so far (for chunked bodies: chunk data only). */
  get payloadBytes(): number {
    return this.#payloadBytes;
  }

  /** Takes the bytes of buf[offset..end) that belong to this body; returns how many (a prefix). */
  feed(buf: Uint8Array, offset = 0, end = buf.length): number {
    if (this.#state >= DONE) {
      if (this.#failure !== undefined) throw this.#failure;
      return 0;
    }
    if (offset >= end) return 0;
    let n: number;
    switch (this.#kind) {
      case KIND_LENGTH: {
        const avail = end - offset;
        n = avail < this.#remaining ? avail : this.#remaining;
        this.#remaining -= n;
        this.#payloadBytes += n;
        if (this.#remaining === 0) this.#state = DONE;
        break;
      }
      case KIND_CHUNKED:
        n = this.#chunked(buf, offset, end) - offset;
        break;
      case KIND_CLOSE:
        n = end - offset;
        this.#payloadBytes += n;
        break;
      default:
        n = 0;
    }
    this.#bytes += n;
    return n;
  }

  /** The input ended (the peer closed). Completes a close-delimited body; any other unfinished body is truncated. */
  finish(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#state === DONE) return;
    if (this.#kind === KIND_CLOSE) {
      this.#state = DONE;
      return;
    }
    const what = this.#kind === KIND_LENGTH ? `${this.#remaining} of ${(this.#framing as { n: number }).n} body bytes missing` : 'the chunked body did not reach its last chunk and final CRLF';
    throw new HttpParseError('truncated-body', `connection closed before the body was complete: ${what}`, this.#side);
  }

  /** Runs the chunked state machine over buf[p..end); returns where it stopped (end, or just past the body). */
  #chunked(buf: Uint8Array, p: number, end: number): number {
    let state = this.#state;
    const maxLine = this.#limits.maxChunkLineBytes;
    // Where the current chunk-size line (or the trailer section) started; before p when it began in an
    // earlier feed.
    let lineBase = p - this.#lineBytes;
    while (p < end) {
      if (state === DATA) {
        const avail = end - p;
        const take = avail < this.#remaining ? avail : this.#remaining;
        p += take;
        this.#remaining -= take;
        this.#payloadBytes += take;
        if (this.#remaining === 0) state = DATA_CR;
        continue;
      }
      const c = buf[p] as number;
      switch (state) {
        case SIZE_START: {
          const d = HEX[c] as number;
          if (d < 0) throw this.#error(`expected a hex chunk size, found ${describeByte(c)}`, p);
          this.#size = d;
          state = SIZE;
          break;
        }
        case SIZE: {
          const d = HEX[c] as number;
          if (d >= 0) {
            const size = this.#size * 16 + d;
            if (size > Number.MAX_SAFE_INTEGER) throw this.#error('chunk size is too large', p);
            this.#size = size;
          } else if (c === CR) state = SIZE_LF;
          else if (c === SEMI) state = EXT_NAME_START;
          else if (c === SP || c === HT) state = SIZE_BWS;
          else throw this.#error(`invalid character ${describeByte(c)} after the chunk size`, p);
          break;
        }
        case SIZE_BWS:
          if (c === SEMI) state = EXT_NAME_START;
          else if (c !== SP && c !== HT) throw this.#error(`whitespace after the chunk size must be followed by ';' (found ${describeByte(c)})`, p);
          break;
        case EXT_NAME_START:
          if (TCHAR[c] === 1) state = EXT_NAME;
          else if (c !== SP && c !== HT) throw this.#error(`expected a chunk extension name, found ${describeByte(c)}`, p);
          break;
        case EXT_NAME:
          if (TCHAR[c] === 1) break;
          state = this.#afterExtPart(c, p, true);
          break;
        case EXT_NAME_BWS:
          if (c === EQUALS) state = EXT_VALUE_START;
          else if (c === SEMI) state = EXT_NAME_START;
          else if (c !== SP && c !== HT) throw this.#error(`invalid character ${describeByte(c)} after a chunk extension name`, p);
          break;
        case EXT_VALUE_START:
          if (TCHAR[c] === 1) state = EXT_VALUE_TOKEN;
          else if (c === DQUOTE) state = EXT_QUOTED;
          else if (c !== SP && c !== HT) throw this.#error(`expected a chunk extension value, found ${describeByte(c)}`, p);
          break;
        case EXT_VALUE_TOKEN:
          if (TCHAR[c] === 1) break;
          state = this.#afterExtPart(c, p, false);
          break;
        case EXT_QUOTED:
          if (c === DQUOTE) state = EXT_AFTER_VALUE;
          else if (c === BACKSLASH) state = EXT_QUOTED_ESCAPE;
          else if (QDTEXT[c] !== 1) throw this.#error(`invalid character ${describeByte(c)} in a quoted chunk extension value`, p);
          break;
        case EXT_QUOTED_ESCAPE:
          if (QUOTED_PAIR[c] !== 1) throw this.#error(`invalid escaped character ${describeByte(c)} in a quoted chunk extension value`, p);
          state = EXT_QUOTED;
          break;
        case EXT_AFTER_VALUE:
          state = this.#afterExtPart(c, p, false);
          break;
        case EXT_AFTER_VALUE_BWS:
          if (c === SEMI) state = EXT_NAME_START;
          else if (c !== SP && c !== HT) throw this.#error(`invalid character ${describeByte(c)} after a chunk extension value`, p);
          break;
        case SIZE_LF:
          if (c !== LF) throw this.#error('CR not followed by LF after the chunk size', p);
          if (p + 1 - lineBase > maxLine) throw this.#error(`chunk-size line longer than ${maxLine} bytes`, p);
          if (this.#size === 0) {
            state = TRAILER_START;
            this.#lineBytes = 0;
            lineBase = p + 1;
          } else {
            this.#remaining = this.#size;
            state = DATA;
          }
          break;
        case DATA_CR:
          if (c !== CR) throw this.#error(`chunk data is not followed by CRLF (found ${describeByte(c)}; chunk size too small?)`, p);
          state = DATA_LF;
          break;
        case DATA_LF:
          if (c !== LF) throw this.#error('CR not followed by LF after chunk data', p);
          state = SIZE_START;
          this.#lineBytes = 0;
          lineBase = p + 1;
          break;
        case TRAILER_START:
          if (c === CR) state = FINAL_LF;
          else if (TCHAR[c] === 1) {
            if (this.#trailerCount === this.#limits.maxTrailerCount) throw this.#error(`more than ${this.#limits.maxTrailerCount} trailer fields`, p, 'trailer-too-large');
            this.#trailerCount++;
            state = TRAILER_NAME;
          } else if (c === SP || c === HT) throw this.#error('obs-fold (line folding) or whitespace at the start of a trailer line is not allowed', p);
          else throw this.#error(`invalid character ${describeByte(c)} at the start of a trailer field`, p);
          break;
        case TRAILER_NAME:
          if (c === COLON) state = TRAILER_VALUE;
          else if (TCHAR[c] !== 1) throw this.#error(c === SP || c === HT ? 'whitespace between a trailer name and the colon' : `invalid character ${describeByte(c)} in a trailer name`, p);
          break;
        case TRAILER_VALUE:
          if (c === CR) state = TRAILER_LF;
          else if (FIELD_VALUE[c] !== 1) throw this.#error(`invalid character ${describeByte(c)} in a trailer value`, p);
          break;
        case TRAILER_LF:
          if (c !== LF) throw this.#error('CR not followed by LF in the trailer section', p);
          state = TRAILER_START;
          break;
        case FINAL_LF:
          if (c !== LF) throw this.#error('CR not followed by LF at the end of the chunked body', p);
          if (p + 1 - lineBase > this.#limits.maxTrailerBytes) throw this.#error(`trailer section larger than ${this.#limits.maxTrailerBytes} bytes`, p, 'trailer-too-large');
          this.#state = DONE;
          return p + 1;
      }
      p++;
      // Line-length limits: the chunk-size line, then the whole trailer section.
      if (state <= SIZE_LF) {
        if (p - lineBase > maxLine) throw this.#error(`chunk-size line longer than ${maxLine} bytes`, p - 1);
      } else if (state >= TRAILER_START && p - lineBase > this.#limits.maxTrailerBytes) {
        throw this.#error(`trailer section larger than ${this.#limits.maxTrailerBytes} bytes`, p - 1, 'trailer-too-large');
      }
    }
    if (state !== DATA) this.#lineBytes = p - lineBase;
    this.#state = state;
    return p;
  }

  /** After an extension name or value ends at byte c: where the line goes next. */
  #afterExtPart(c: number, p: number, afterName: boolean): number {
    if (c === SEMI) return EXT_NAME_START;
    if (c === CR) return SIZE_LF;
    if (c === SP || c === HT) return afterName ? EXT_NAME_BWS : EXT_AFTER_VALUE_BWS;
    if (afterName && c === EQUALS) return EXT_VALUE_START;
    throw this.#error(`invalid character ${describeByte(c)} in a chunk extension`, p);
  }

  /** The framing is broken: this framer refuses everything from now on (feed and finish rethrow). */
  #error(message: string, at: number, code: HttpParseCode = 'bad-chunk'): HttpParseError {
    this.#state = FAILED;
    this.#failure = new HttpParseError(code, message, this.#side, at);
    return this.#failure;
  }
}

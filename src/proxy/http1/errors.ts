// HttpParseError: the one error the HTTP/1.1 codec throws for bytes it refuses. `httpCode` says what was
// wrong in a word ('bad-header', 'conflicting-length', ...), `code` is the keymesh-wide stable form of the
// same word (KM_ERR_HTTP_BAD_HEADER), `status` is the local reply the proxy should send (400/431/501/505 for
// a request, 502 for an upstream response), and `at` is the byte index in the caller's buffer where the
// problem was found. Messages name the problem and at most a header *name*; they never echo a header value.
import { KeymeshError, type ErrorKind } from '../../errors/index.ts';

export type HttpParseCode =
  | 'header-too-large'
  | 'too-many-headers'
  | 'bad-request-line'
  | 'bad-status-line'
  | 'bad-version'
  | 'bad-header'
  | 'bad-host'
  | 'bad-content-length'
  | 'conflicting-length'
  | 'bad-transfer-encoding'
  | 'bad-chunk'
  | 'trailer-too-large'
  | 'truncated-body';

/** Which side sent the bytes: decides the suggested status (a bad response is the upstream's fault: 502). */
export type HttpSide = 'request' | 'response';

export class HttpParseError extends KeymeshError {
  readonly httpCode: HttpParseCode;
  /** The status of the local reply this error calls for. */
  readonly status: number;
  /** Index in the parsed buffer of the byte where the problem was found (-1 when not tied to a byte). */
  readonly at: number;

  constructor(httpCode: HttpParseCode, message: string, side: HttpSide, at = -1, status?: number) {
    const limit = httpCode === 'header-too-large' || httpCode === 'too-many-headers' || httpCode === 'trailer-too-large';
    const kind: ErrorKind = limit ? 'limit-exceeded' : 'bad-request';
    super(kind, `KM_ERR_HTTP_${httpCode.toUpperCase().replaceAll('-', '_')}`, `${httpCode}: ${message}`);
    this.httpCode = httpCode;
    this.at = at;
    this.status = status ?? defaultStatus(httpCode, side);
  }
}

function defaultStatus(code: HttpParseCode, side: HttpSide): number {
  if (side === 'response') return 502;
  switch (code) {
    case 'header-too-large':
    case 'too-many-headers':
    case 'trailer-too-large':
      return 431;
    case 'bad-version':
      return 505;
    default:
      return 400;
  }
}

/** A header name fit for an error message: printable ASCII only, at most 64 characters. */
export function describeName(name: string): string {
  const clean = name.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 64)}...` : clean;
}

/** A byte fit for an error message: the character when printable, else its hex value. */
export function describeByte(c: number | undefined): string {
  if (c === undefined) return 'end of input';
  if (c === 0x0d) return 'CR';
  if (c === 0x0a) return 'LF';
  if (c === 0x00) return 'NUL';
  if (c === 0x20) return 'SP';
  if (c === 0x09) return 'HTAB';
  if (c > 0x20 && c < 0x7f) return `'${String.fromCharCode(c)}'`;
  return `0x${c.toString(16).padStart(2, '0')}`;
}

// Strict, incremental HTTP/1.1 head parsers for the proxy (RFC 9112 syntax, RFC 9110 semantics).
//
//   parseRequestHead(buf, offset = 0, limits = DEFAULT_HEAD_LIMITS, resumeFrom?)  -> { head, end } | undefined
//   parseResponseHead(buf, offset, requestMethod, limits = DEFAULT_HEAD_LIMITS, resumeFrom?) -> { head, end } | undefined
//
// `buf[offset..]` holds the bytes received so far for this message (pieces concatenated by the caller).
// The result is undefined while the head is incomplete: call again once more bytes have arrived (same
// offset, longer buffer). `end` is the index just past the blank line; the body, then any pipelined next
// message, start there. Anything refused throws HttpParseError (./errors.ts) with a precise `httpCode`.
// `resumeFrom` (optional) is the buffer length at the previous call that returned undefined for this head:
// the parser then looks at the new bytes only (native search for CRLFCRLF, plus a line-ending check), so a
// head trickled in one byte at a time costs O(n) in total instead of O(n²). It is only a hint: without it
// every call rescans from `offset`, and detects every kind of bad byte as early as possible.
//
// How it works (this runs for every request and response the proxy forwards): one pass over the bytes
// validates the start line and every field line and records offsets in a scratch Int32Array: no strings,
// no regex, no closures, nothing allocated. Field values, most of a head's bytes, are checked four bytes at
// a time (fieldValueEnd). Only once the whole head is there is it decoded, once, as latin1 (one native
// call); the method (common ones interned), target, names and values are slices of that string. The few
// derived headers are recognized by length, then by a case-insensitive compare against pre-built bytes.
// bench/http1-codec.ts compares this with Node's llhttp.
//
// Strictness (the choices of llhttp's default strict mode and of Envoy, and RFC 9112's "MUST reject"s):
// - Lines end with CRLF only. A bare LF, a bare CR, NUL or any other control byte is refused (400).
// - Request-line: `method SP request-target SP HTTP/1.x CRLF` with exactly one SP each; the method is a
//   token; the target is visible ASCII without '#' (Envoy refuses fragments too). Empty lines before a
//   request-line are skipped (RFC 9112 §2.2: some clients send a CRLF after a POST body); they count
//   against maxHeadBytes. Responses get no such leniency.
// - Only HTTP/1.0 and HTTP/1.1 ('bad-version', 505 for a request).
// - Status-line: `HTTP/1.x SP 3DIGIT [SP reason] CRLF`; a missing SP before an empty reason is accepted
//   (common, and harmless). Status must be 100-999.
// - Field lines: a token name, ':' right after it (whitespace before the colon is refused: RFC 9112 §5.1),
//   OWS, a value of VCHAR/obs-text/SP/HTAB, OWS, CRLF. obs-fold (a line starting with SP/HTAB) is refused,
//   as is whitespace between the start line and the first field (RFC 9112 §2.2, §5.2).
// - Framing (request smuggling defences, RFC 9112 §6.1-6.3, as Envoy and llhttp do):
//   Content-Length must be 1*DIGIT; a second Content-Length line is refused even with the same value
//   ('conflicting-length', as llhttp); Content-Length together with Transfer-Encoding is refused
//   ('conflicting-length'); Transfer-Encoding must be exactly `chunked` (one line, one coding; anything else,
//   `gzip, chunked`, `chunked, chunked` or `xchunked` included, is 'bad-transfer-encoding', 501 as in Envoy);
//   Transfer-Encoding in an HTTP/1.0 message is refused. A CONNECT request may not have a body.
// - Host (RFC 9112 §3.2): an HTTP/1.1 request needs exactly one, except with an absolute-form or
//   authority-form target (whose authority wins anyway, §3.2.2); more than one is always refused; the value
//   must be `host[:port]` (no userinfo, path or whitespace). Absolute-form with userinfo is refused.
// - Limits: maxHeadBytes ('header-too-large', 431) and maxHeaderCount ('too-many-headers', 431).
// - Upgrade is reported only together with `Connection: upgrade`, and is ignored on HTTP/1.0 requests
//   (RFC 9110 §7.8); `Expect: 100-continue` is ignored on HTTP/1.0 (RFC 9110 §10.1.1).
// - Not checked here (left to the proxy's routing): percent-encoding and dot-segments in the path, and the
//   meaning of trailer fields. Responses to HEAD, 1xx, 204 and 304 have no body whatever their framing
//   headers say (RFC 9112 §6.3 rule 1), but those headers are still validated.
import {
  COLON, COMMA, CR, FIELD_VALUE, HOST, HT, LF, SCHEME, SLASH, SP, TARGET, TCHAR, HASH,
  ascii, bytesEq, bytesEqLower,
} from './chars.ts';
import { HttpParseError, describeByte, describeName, type HttpParseCode, type HttpSide } from './errors.ts';
import {
  CHUNKED, DEFAULT_HEAD_LIMITS, NO_BODY, UNTIL_CLOSE,
  type BodyFraming, type HeadLimits, type HttpVersion, type ParsedRequest, type ParsedResponse, type RequestHead,
  type ResponseHead, type TargetForm,
} from './head.ts';

const INCOMPLETE = -1;
const QUESTION = 0x3f;
const STAR = 0x2a;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const AT = 0x40;
const CRLFCRLF = Buffer.from('\r\n\r\n', 'latin1');

// Scan registers: written by the scanners, read by the builders right after. Module-level so that a parse
// allocates nothing while scanning; parsing is synchronous and never re-entered, so sharing is safe.
let fields = new Int32Array(4 * 128); // per field line: nameStart, nameEnd, valueStart, valueEnd
let fieldCount = 0;
let headStart = 0; // first byte of the start line (after skipped empty lines)
let methodEnd = 0;
let targetStart = 0;
let targetEnd = 0;
let reasonStart = 0;
let reasonEnd = 0;
let statusCode = 0;
let minor = 0;

// Derived-field registers, written by deriveFields().
let dContentLength = -1;
let dTransferEncoding = false;
let dHostCount = 0;
let dHostIndex = -1; // index of the first Host field (in field lines)
let dClose = false;
let dKeepAlive = false;
let dUpgradeToken = false;
let dTokens: string[] | undefined;
let dUpgrade: string | undefined;
let dExpectContinue = false;
let dHopByHop = false;
let dForwardedProto = false;

const LIT_HTTP = ascii('HTTP/');
const LIT_HOST = ascii('host');
const LIT_EXPECT = ascii('expect');
const LIT_UPGRADE = ascii('upgrade');
const LIT_CONNECTION = ascii('connection');
const LIT_CONTENT_LENGTH = ascii('content-length');
const LIT_TE = ascii('te');
const LIT_PROXY_CONNECTION = ascii('proxy-connection');
const LIT_X_FORWARDED_PROTO = ascii('x-forwarded-proto');
const LIT_TRANSFER_ENCODING = ascii('transfer-encoding');
const LIT_CHUNKED = ascii('chunked');
const LIT_CLOSE = ascii('close');
const LIT_KEEP_ALIVE = ascii('keep-alive');
const LIT_100_CONTINUE = ascii('100-continue');
const LIT_HTTP_SCHEME = ascii('http');
const LIT_HTTPS_SCHEME = ascii('https');

const LIT_GET = ascii('GET');
const LIT_PUT = ascii('PUT');
const LIT_POST = ascii('POST');
const LIT_HEAD = ascii('HEAD');
const LIT_PATCH = ascii('PATCH');
const LIT_TRACE = ascii('TRACE');
const LIT_DELETE = ascii('DELETE');
const LIT_OPTIONS = ascii('OPTIONS');
const LIT_CONNECT = ascii('CONNECT');

// === requests ===

export function parseRequestHead(buf: Buffer, offset = 0, limits: HeadLimits = DEFAULT_HEAD_LIMITS, resumeFrom?: number): ParsedRequest | undefined {
  const len = buf.length;
  const max = limits.maxHeadBytes;
  if (resumeFrom !== undefined && resumeFrom > offset && resumeFrom <= len && !worthScanning(buf, offset, resumeFrom, max)) return undefined;
  ensureFieldCapacity(limits.maxHeaderCount);
  const limit = len - offset > max ? offset + max : len;
  const end = scanRequest(buf, offset, limit, limits.maxHeaderCount);
  if (end === INCOMPLETE) {
    if (len - offset >= max) throw tooLarge('request', max, offset);
    return undefined;
  }
  return { head: buildRequest(buf, end), start: headStart, end };
}

function scanRequest(buf: Buffer, offset: number, limit: number, maxCount: number): number {
  let p = offset;
  // RFC 9112 §2.2: ignore empty lines received before the request-line.
  while (p < limit && buf[p] === CR) {
    if (p + 1 >= limit) return INCOMPLETE;
    if (buf[p + 1] !== LF) throw new HttpParseError('bad-request-line', `CR not followed by LF before the request-line`, 'request', p + 1);
    p += 2;
  }
  headStart = p;
  let c: number;
  for (;;) {
    if (p >= limit) return INCOMPLETE;
    c = buf[p] as number;
    if (TCHAR[c] !== 1) break;
    p++;
  }
  if (c !== SP || p === headStart) {
    const what = p === headStart ? `request-line does not start with a method (found ${describeByte(c)})` : `invalid character ${describeByte(c)} in the method`;
    throw new HttpParseError('bad-request-line', what, 'request', p);
  }
  methodEnd = p++;
  targetStart = p;
  for (;;) {
    if (p >= limit) return INCOMPLETE;
    c = buf[p] as number;
    if (TARGET[c] !== 1) break;
    p++;
  }
  if (c !== SP || p === targetStart) {
    const what =
      c === HASH ? `fragment ('#') in the request-target`
        : p === targetStart ? (c === SP ? 'more than one SP after the method' : `empty request-target (found ${describeByte(c)})`)
          : c === CR || c === LF ? 'request-line has no HTTP version'
            : `invalid character ${describeByte(c)} in the request-target`;
    throw new HttpParseError('bad-request-line', what, 'request', p);
  }
  targetEnd = p++;
  const v = scanVersion(buf, p, limit, 'request');
  if (v === INCOMPLETE) return INCOMPLETE;
  minor = v;
  p = expectCrlf(buf, p + 8, limit, 'bad-request-line', 'request', 'after the HTTP version');
  if (p === INCOMPLETE) return INCOMPLETE;
  return scanFields(buf, p, limit, maxCount, 'request');
}

function buildRequest(buf: Buffer, end: number): RequestHead {
  const base = headStart;
  const str = buf.toString('latin1', base, end);
  const method = internMethod(buf, base, methodEnd) ?? str.slice(0, methodEnd - base);
  const target = str.slice(targetStart - base, targetEnd - base);
  const version: HttpVersion = minor === 1 ? '1.1' : '1.0';
  const headers = deriveFields(buf, str, base, 'request');

  let form: TargetForm;
  let scheme: string | undefined;
  let authority: string | undefined;
  let path: string;
  const t0 = buf[targetStart];
  const connect = method === 'CONNECT';
  if (connect) {
    // RFC 9112 §3.2.3: CONNECT takes authority-form (host:port) and nothing else.
    const problem = checkAuthority(buf, targetStart, targetEnd, true);
    if (problem !== undefined) throw new HttpParseError('bad-request-line', `CONNECT needs an authority-form target (host:port): ${problem}`, 'request', targetStart);
    form = 'authority';
    authority = target;
    path = '';
  } else if (t0 === SLASH) {
    form = 'origin';
    path = target;
  } else if (t0 === STAR && targetEnd - targetStart === 1) {
    if (method !== 'OPTIONS') throw new HttpParseError('bad-request-line', `asterisk-form target ('*') is only for OPTIONS, not ${describeName(method)}`, 'request', targetStart);
    form = 'asterisk';
    path = '*';
  } else {
    form = 'absolute';
    let i = targetStart;
    const isAlpha = ((t0 as number) | 0x20) >= 0x61 && ((t0 as number) | 0x20) <= 0x7a;
    if (isAlpha) {
      i++;
      while (i < targetEnd && SCHEME[buf[i] as number] === 1) i++;
    }
    if (!isAlpha || i + 2 >= targetEnd || buf[i] !== COLON || buf[i + 1] !== SLASH || buf[i + 2] !== SLASH) {
      throw new HttpParseError('bad-request-line', 'request-target is neither origin-form (/path), absolute-form (scheme://host/path) nor asterisk-form (*)', 'request', targetStart);
    }
    scheme = bytesEqLower(buf, targetStart, i, LIT_HTTP_SCHEME) ? 'http'
      : bytesEqLower(buf, targetStart, i, LIT_HTTPS_SCHEME) ? 'https'
        : str.slice(targetStart - base, i - base).toLowerCase();
    const as = i + 3;
    let ae = as;
    while (ae < targetEnd && buf[ae] !== SLASH && buf[ae] !== QUESTION) ae++;
    const problem = checkAuthority(buf, as, ae, false);
    if (problem !== undefined) throw new HttpParseError('bad-request-line', `absolute-form target: ${problem}`, 'request', as);
    authority = str.slice(as - base, ae - base);
    path = ae === targetEnd ? '/' : buf[ae] === QUESTION ? `/${str.slice(ae - base, targetEnd - base)}` : str.slice(ae - base, targetEnd - base);
  }

  if (dTransferEncoding && version === '1.0') {
    throw new HttpParseError('bad-transfer-encoding', 'Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1: the framing is faulty)', 'request', -1, 400);
  }
  if (dTransferEncoding && dContentLength !== -1) {
    throw new HttpParseError('conflicting-length', 'both Content-Length and Transfer-Encoding (RFC 9112 §6.3: possible request smuggling)', 'request');
  }
  if (connect && (dTransferEncoding || dContentLength > 0)) {
    throw new HttpParseError(dTransferEncoding ? 'bad-transfer-encoding' : 'bad-content-length', 'a CONNECT request has no content (RFC 9110 §9.3.6)', 'request', -1, 400);
  }
  if (dHostCount > 1) throw new HttpParseError('bad-host', 'more than one Host header (RFC 9112 §3.2)', 'request');
  let hostHeader: string | undefined;
  if (dHostCount === 1) {
    const f = dHostIndex * 4;
    const problem = checkHost(buf, fields[f + 2] as number, fields[f + 3] as number);
    if (problem !== undefined) throw new HttpParseError('bad-host', `Host header: ${problem}`, 'request', fields[f + 2] as number);
    hostHeader = headers[dHostIndex * 2 + 1];
  } else if (version === '1.1' && authority === undefined) {
    throw new HttpParseError('bad-host', 'HTTP/1.1 request without a Host header (RFC 9112 §3.2)', 'request');
  }

  let framing: BodyFraming = NO_BODY;
  if (dTransferEncoding) framing = CHUNKED;
  else if (dContentLength > 0) framing = { kind: 'length', n: dContentLength };
  const v11 = version === '1.1';
  return {
    method,
    target,
    form,
    scheme,
    authority,
    path,
    version,
    headers,
    host: authority ?? hostHeader,
    contentLength: dContentLength === -1 ? undefined : dContentLength,
    chunked: dTransferEncoding,
    framing,
    keepAlive: v11 ? !dClose : dKeepAlive && !dClose,
    connectionTokens: dTokens,
    upgrade: v11 && dUpgradeToken ? dUpgrade : undefined,
    hopByHop: dHopByHop,
    expectContinue: v11 && dExpectContinue,
    forwardedProto: dForwardedProto,
  };
}

function internMethod(buf: Buffer, s: number, e: number): string | undefined {
  switch (e - s) {
    case 3:
      return bytesEq(buf, s, e, LIT_GET) ? 'GET' : bytesEq(buf, s, e, LIT_PUT) ? 'PUT' : undefined;
    case 4:
      return bytesEq(buf, s, e, LIT_POST) ? 'POST' : bytesEq(buf, s, e, LIT_HEAD) ? 'HEAD' : undefined;
    case 5:
      return bytesEq(buf, s, e, LIT_PATCH) ? 'PATCH' : bytesEq(buf, s, e, LIT_TRACE) ? 'TRACE' : undefined;
    case 6:
      return bytesEq(buf, s, e, LIT_DELETE) ? 'DELETE' : undefined;
    case 7:
      return bytesEq(buf, s, e, LIT_OPTIONS) ? 'OPTIONS' : bytesEq(buf, s, e, LIT_CONNECT) ? 'CONNECT' : undefined;
    default:
      return undefined;
  }
}

// === responses ===

/**
 * `requestMethod` is the method of the request this response answers: it decides the framing (no body after
 * HEAD; a 2xx to CONNECT opens a tunnel).
 */
export function parseResponseHead(buf: Buffer, offset: number, requestMethod: string, limits: HeadLimits = DEFAULT_HEAD_LIMITS, resumeFrom?: number): ParsedResponse | undefined {
  const len = buf.length;
  const max = limits.maxHeadBytes;
  if (resumeFrom !== undefined && resumeFrom > offset && resumeFrom <= len && !worthScanning(buf, offset, resumeFrom, max)) return undefined;
  ensureFieldCapacity(limits.maxHeaderCount);
  const limit = len - offset > max ? offset + max : len;
  const end = scanResponse(buf, offset, limit, limits.maxHeaderCount);
  if (end === INCOMPLETE) {
    if (len - offset >= max) throw tooLarge('response', max, offset);
    return undefined;
  }
  return { head: buildResponse(buf, end, requestMethod), start: headStart, end };
}

function scanResponse(buf: Buffer, offset: number, limit: number, maxCount: number): number {
  let p = offset;
  headStart = p;
  const v = scanVersion(buf, p, limit, 'response');
  if (v === INCOMPLETE) return INCOMPLETE;
  minor = v;
  p += 8;
  if (p >= limit) return INCOMPLETE;
  if (buf[p] !== SP) throw new HttpParseError('bad-status-line', `expected SP after the HTTP version, found ${describeByte(buf[p])}`, 'response', p);
  p++;
  let status = 0;
  for (let k = 0; k < 3; k++, p++) {
    if (p >= limit) return INCOMPLETE;
    const d = (buf[p] as number) - 0x30;
    if (d < 0 || d > 9) throw new HttpParseError('bad-status-line', `status code must be three digits (found ${describeByte(buf[p])})`, 'response', p);
    status = status * 10 + d;
  }
  if (status < 100) throw new HttpParseError('bad-status-line', `status code ${status} is below 100`, 'response', p - 3);
  statusCode = status;
  if (p >= limit) return INCOMPLETE;
  reasonStart = reasonEnd = p;
  if (buf[p] === SP) {
    reasonStart = ++p;
    while (p < limit && FIELD_VALUE[buf[p] as number] === 1) p++;
    if (p >= limit) return INCOMPLETE;
    reasonEnd = p;
  }
  p = expectCrlf(buf, p, limit, 'bad-status-line', 'response', reasonEnd > reasonStart ? 'after the reason phrase' : 'after the status code');
  if (p === INCOMPLETE) return INCOMPLETE;
  return scanFields(buf, p, limit, maxCount, 'response');
}

function buildResponse(buf: Buffer, end: number, requestMethod: string): ResponseHead {
  const base = headStart;
  const str = buf.toString('latin1', base, end);
  const version: HttpVersion = minor === 1 ? '1.1' : '1.0';
  const status = statusCode;
  const reason = reasonEnd > reasonStart ? str.slice(reasonStart - base, reasonEnd - base) : '';
  const headers = deriveFields(buf, str, base, 'response');
  if (dTransferEncoding && version === '1.0') {
    throw new HttpParseError('bad-transfer-encoding', 'Transfer-Encoding in an HTTP/1.0 response (RFC 9112 §6.1: the framing is faulty)', 'response');
  }
  if (dTransferEncoding && dContentLength !== -1) {
    throw new HttpParseError('conflicting-length', 'both Content-Length and Transfer-Encoding (RFC 9112 §6.3: possible response splitting)', 'response');
  }
  const connect = requestMethod === 'CONNECT';
  const tunnel = status === 101 || (connect && status >= 200 && status < 300);
  // RFC 9112 §6.3, in order: no body after HEAD, for 1xx/204/304 and for a 2xx to CONNECT, whatever the
  // headers say; then chunked; then Content-Length; else the body runs until the server closes.
  let framing: BodyFraming;
  if (requestMethod === 'HEAD' || status < 200 || status === 204 || status === 304 || tunnel) framing = NO_BODY;
  else if (dTransferEncoding) framing = CHUNKED;
  else if (dContentLength > 0) framing = { kind: 'length', n: dContentLength };
  else if (dContentLength === 0) framing = NO_BODY;
  else framing = UNTIL_CLOSE;
  const persistent = version === '1.1' ? !dClose : dKeepAlive && !dClose;
  return {
    status,
    reason,
    version,
    headers,
    contentLength: dContentLength === -1 ? undefined : dContentLength,
    chunked: dTransferEncoding,
    framing,
    keepAlive: persistent && framing !== UNTIL_CLOSE && !tunnel,
    connectionTokens: dTokens,
    upgrade: status === 101 ? dUpgrade : undefined,
    hopByHop: dHopByHop,
    tunnel,
  };
}

// === shared scanning ===

/** Checks `HTTP/1.0` or `HTTP/1.1` at p; returns the minor version, or INCOMPLETE. */
function scanVersion(buf: Buffer, p: number, limit: number, side: HttpSide): number {
  const code: HttpParseCode = side === 'request' ? 'bad-request-line' : 'bad-status-line';
  for (let k = 0; k < 8; k++) {
    if (p + k >= limit) return INCOMPLETE;
    const c = buf[p + k] as number;
    const ok = k < 5 ? c === LIT_HTTP[k] : k === 6 ? c === 0x2e : c >= 0x30 && c <= 0x39;
    if (!ok) throw new HttpParseError(code, `malformed HTTP version: ${describeByte(c)} where ${k < 5 ? `'${'HTTP/'[k]}'` : k === 6 ? "'.'" : 'a digit'} belongs`, side, p + k);
  }
  const major = (buf[p + 5] as number) - 0x30;
  const mn = (buf[p + 7] as number) - 0x30;
  if (major !== 1 || mn > 1) throw new HttpParseError('bad-version', `unsupported HTTP version HTTP/${major}.${mn} (only HTTP/1.0 and HTTP/1.1)`, side, p + 5);
  return mn;
}

function expectCrlf(buf: Buffer, p: number, limit: number, code: HttpParseCode, side: HttpSide, where: string): number {
  if (p >= limit) return INCOMPLETE;
  const c = buf[p];
  if (c !== CR) {
    const what = c === LF ? `bare LF ${where} (lines must end with CRLF)` : `expected CRLF ${where}, found ${describeByte(c)}`;
    throw new HttpParseError(code, what, side, p);
  }
  if (p + 1 >= limit) return INCOMPLETE;
  if (buf[p + 1] !== LF) throw new HttpParseError(code, `CR not followed by LF ${where}`, side, p + 1);
  return p + 2;
}

/** Scans field lines and the blank line after them; records offsets in `fields`. Returns the end of the head. */
function scanFields(buf: Buffer, p: number, limit: number, maxCount: number, side: HttpSide): number {
  const f = fields;
  viewWords(buf);
  let n = 0;
  for (;;) {
    if (p >= limit) return INCOMPLETE;
    let c = buf[p] as number;
    if (c === CR) {
      if (p + 1 >= limit) return INCOMPLETE;
      if (buf[p + 1] !== LF) throw new HttpParseError('bad-header', 'CR not followed by LF at the end of the head', side, p + 1);
      fieldCount = n;
      return p + 2;
    }
    const ns = p;
    while (TCHAR[c] === 1) {
      if (++p >= limit) return INCOMPLETE;
      c = buf[p] as number;
    }
    if (c !== COLON || p === ns) throw fieldNameError(buf, ns, p, c, n, side);
    if (n === maxCount) throw new HttpParseError('too-many-headers', `more than ${maxCount} header fields`, side, ns);
    const ne = p;
    do {
      if (++p >= limit) return INCOMPLETE;
      c = buf[p] as number;
    } while (c === SP || c === HT);
    const vs = p;
    p = fieldValueEnd(buf, p, limit);
    if (p >= limit) return INCOMPLETE;
    c = buf[p] as number;
    if (c !== CR) {
      const what = c === LF ? 'bare LF (lines must end with CRLF)' : `invalid character ${describeByte(c)}`;
      throw new HttpParseError('bad-header', `${what} in the value of header ${quoteName(buf, ns, ne)}`, side, p);
    }
    if (p + 1 >= limit) return INCOMPLETE;
    if (buf[p + 1] !== LF) throw new HttpParseError('bad-header', `CR not followed by LF in header ${quoteName(buf, ns, ne)}`, side, p + 1);
    let ve = p;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HT)) ve--;
    const k = n * 4;
    f[k] = ns;
    f[k + 1] = ne;
    f[k + 2] = vs;
    f[k + 3] = ve;
    n++;
    p += 2;
  }
}

// Word-at-a-time view of the ArrayBuffer behind the buffer being scanned, set up once per parse by
// viewWords(). Socket reads are slices of a few pooled ArrayBuffers, so the view is usually reused.
let wordsOf: ArrayBufferLike | undefined;
let words: Int32Array<ArrayBufferLike> = new Int32Array(0);
let wordBase = 0;

function viewWords(buf: Buffer): void {
  const ab = buf.buffer;
  if (ab !== wordsOf) {
    wordsOf = ab;
    words = new Int32Array(ab, 0, ab.byteLength >>> 2);
  }
  wordBase = buf.byteOffset;
}

/**
 * Index of the first byte in buf[p..limit) that cannot be in a field value (a control other than HTAB, or
 * DEL), or limit. Field values are most of a head's bytes, so this tests four bytes per step: a word has a
 * byte < 0x20 or == 0x7f iff `(x - 0x20202020) & ~x` or the zero-byte test of `x ^ 0x7f7f7f7f` sets a high
 * bit (exact as a yes/no answer, whatever the byte order); only such a word is looked at byte by byte.
 * Needs viewWords(buf) first.
 */
function fieldValueEnd(buf: Buffer, p: number, limit: number): number {
  if (limit - p >= 16) {
    const base = wordBase;
    for (; ((base + p) & 3) !== 0; p++) {
      const c = buf[p] as number;
      if (c < 0x20 ? c !== HT : c === 0x7f) return p;
    }
    const w32 = words;
    const wEnd = (base + limit) >>> 2;
    let w = (base + p) >>> 2;
    for (;;) {
      while (w < wEnd) {
        const x = w32[w] as number;
        const y = x ^ 0x7f7f7f7f;
        if ((((x - 0x20202020) & ~x) | ((y - 0x01010101) & ~y)) & 0x80808080) break;
        w++;
      }
      p = w * 4 - base;
      if (w === wEnd) break;
      for (const e = p + 4; p < e; p++) {
        const c = buf[p] as number;
        if (c < 0x20 ? c !== HT : c === 0x7f) return p;
      }
      w++;
    }
  }
  for (; p < limit; p++) {
    const c = buf[p] as number;
    if (c < 0x20 ? c !== HT : c === 0x7f) return p;
  }
  return limit;
}

function fieldNameError(buf: Buffer, ns: number, p: number, c: number, n: number, side: HttpSide): HttpParseError {
  let what: string;
  if (p === ns) {
    if (c === SP || c === HT) what = n === 0 ? 'whitespace before the first header field' : `obs-fold (line folding) after header ${fieldName(buf, n - 1)} is not allowed`;
    else if (c === COLON) what = 'empty header name';
    else if (c === LF) what = 'bare LF (lines must end with CRLF)';
    else what = `invalid character ${describeByte(c)} at the start of a header name`;
  } else if (c === SP || c === HT) {
    what = `whitespace between header name ${quoteName(buf, ns, p)} and the colon (RFC 9112 §5.1)`;
  } else if (c === CR || c === LF) {
    what = `header line without a colon (${quoteName(buf, ns, p)})`;
  } else {
    what = `invalid character ${describeByte(c)} in header name ${quoteName(buf, ns, p)}`;
  }
  return new HttpParseError('bad-header', what, side, p);
}

function quoteName(buf: Buffer, s: number, e: number): string {
  return `'${describeName(buf.toString('latin1', s, Math.min(e, s + 80)))}'`;
}

function fieldName(buf: Buffer, i: number): string {
  return quoteName(buf, fields[i * 4] as number, fields[i * 4 + 1] as number);
}

// Header names the proxy derives something from.
const NAME_OTHER = 0;
const NAME_HOST = 1;
const NAME_EXPECT = 2;
const NAME_UPGRADE = 3;
const NAME_CONNECTION = 4;
const NAME_CONTENT_LENGTH = 5;
const NAME_TRANSFER_ENCODING = 6;
/** Keep-Alive, Proxy-Connection, TE: nothing derived, but forwarding drops or rewrites them. */
const NAME_HOP_BY_HOP = 7;
const NAME_X_FORWARDED_PROTO = 8;

function classifyName(buf: Buffer, ns: number, ne: number): number {
  switch (ne - ns) {
    case 2:
      return bytesEqLower(buf, ns, ne, LIT_TE) ? NAME_HOP_BY_HOP : NAME_OTHER;
    case 4:
      return bytesEqLower(buf, ns, ne, LIT_HOST) ? NAME_HOST : NAME_OTHER;
    case 6:
      return bytesEqLower(buf, ns, ne, LIT_EXPECT) ? NAME_EXPECT : NAME_OTHER;
    case 7:
      return bytesEqLower(buf, ns, ne, LIT_UPGRADE) ? NAME_UPGRADE : NAME_OTHER;
    case 10:
      return bytesEqLower(buf, ns, ne, LIT_CONNECTION) ? NAME_CONNECTION : bytesEqLower(buf, ns, ne, LIT_KEEP_ALIVE) ? NAME_HOP_BY_HOP : NAME_OTHER;
    case 14:
      return bytesEqLower(buf, ns, ne, LIT_CONTENT_LENGTH) ? NAME_CONTENT_LENGTH : NAME_OTHER;
    case 16:
      return bytesEqLower(buf, ns, ne, LIT_PROXY_CONNECTION) ? NAME_HOP_BY_HOP : NAME_OTHER;
    case 17:
      return bytesEqLower(buf, ns, ne, LIT_TRANSFER_ENCODING) ? NAME_TRANSFER_ENCODING : bytesEqLower(buf, ns, ne, LIT_X_FORWARDED_PROTO) ? NAME_X_FORWARDED_PROTO : NAME_OTHER;
    default:
      return NAME_OTHER;
  }
}

/** Builds the flat header list and computes the derived registers (d*) from the recorded field lines. */
function deriveFields(buf: Buffer, str: string, base: number, side: HttpSide): string[] {
  dContentLength = -1;
  dTransferEncoding = false;
  dHostCount = 0;
  dHostIndex = -1;
  dClose = false;
  dKeepAlive = false;
  dUpgradeToken = false;
  dTokens = undefined;
  dUpgrade = undefined;
  dExpectContinue = false;
  dHopByHop = false;
  dForwardedProto = false;
  const f = fields;
  const n = fieldCount;
  const headers: string[] = [];
  for (let i = 0; i < n; i++) {
    const k = i * 4;
    const ns = f[k] as number;
    const ne = f[k + 1] as number;
    const vs = f[k + 2] as number;
    const ve = f[k + 3] as number;
    // (Caching name strings across requests was tried: no faster than slicing, which V8 does cheaply.)
    const value = str.slice(vs - base, ve - base);
    headers.push(str.slice(ns - base, ne - base), value);
    switch (classifyName(buf, ns, ne)) {
      case NAME_OTHER:
        break;
      case NAME_HOST:
        if (dHostCount++ === 0) dHostIndex = i;
        break;
      case NAME_EXPECT:
        if (bytesEqLower(buf, vs, ve, LIT_100_CONTINUE)) dExpectContinue = true;
        break;
      case NAME_HOP_BY_HOP:
        dHopByHop = true;
        break;
      case NAME_X_FORWARDED_PROTO:
        dForwardedProto = true;
        break;
      case NAME_UPGRADE:
        dHopByHop = true;
        dUpgrade = dUpgrade === undefined ? value : `${dUpgrade}, ${value}`;
        break;
      case NAME_CONNECTION:
        dHopByHop = true;
        connectionOptions(buf, str, base, vs, ve, side);
        break;
      case NAME_CONTENT_LENGTH:
        if (dContentLength !== -1) throw new HttpParseError('conflicting-length', 'more than one Content-Length header (RFC 9112 §6.3: possible request smuggling)', side, ns);
        dContentLength = contentLength(buf, vs, ve, side);
        break;
      case NAME_TRANSFER_ENCODING:
        if (dTransferEncoding || !bytesEqLower(buf, vs, ve, LIT_CHUNKED)) {
          throw new HttpParseError('bad-transfer-encoding', dTransferEncoding ? 'more than one Transfer-Encoding header' : 'Transfer-Encoding other than a single "chunked" is not supported', side, vs, side === 'request' ? 501 : 502);
        }
        dTransferEncoding = true;
        break;
    }
  }
  return headers;
}

function contentLength(buf: Buffer, vs: number, ve: number, side: HttpSide): number {
  if (vs === ve) throw new HttpParseError('bad-content-length', 'empty Content-Length', side, vs);
  let n = 0;
  for (let i = vs; i < ve; i++) {
    const d = (buf[i] as number) - 0x30;
    if (d < 0 || d > 9) throw new HttpParseError('bad-content-length', `Content-Length must be digits only (found ${describeByte(buf[i])})`, side, i);
    n = n * 10 + d;
    if (n > Number.MAX_SAFE_INTEGER) throw new HttpParseError('bad-content-length', 'Content-Length is too large', side, vs);
  }
  return n;
}

/** Connection: 1#token. Records close / keep-alive / upgrade and the lowercased option list. */
function connectionOptions(buf: Buffer, str: string, base: number, vs: number, ve: number, side: HttpSide): void {
  let i = vs;
  for (;;) {
    while (i < ve && (buf[i] === SP || buf[i] === HT)) i++;
    const ts = i;
    while (i < ve && TCHAR[buf[i] as number] === 1) i++;
    const te = i;
    while (i < ve && (buf[i] === SP || buf[i] === HT)) i++;
    if (i < ve && buf[i] !== COMMA) throw new HttpParseError('bad-header', `invalid character ${describeByte(buf[i])} in a Connection option`, side, i);
    if (te > ts) {
      let token: string;
      if (bytesEqLower(buf, ts, te, LIT_CLOSE)) {
        token = 'close';
        dClose = true;
      } else if (bytesEqLower(buf, ts, te, LIT_KEEP_ALIVE)) {
        token = 'keep-alive';
        dKeepAlive = true;
      } else if (bytesEqLower(buf, ts, te, LIT_UPGRADE)) {
        token = 'upgrade';
        dUpgradeToken = true;
      } else {
        token = str.slice(ts - base, te - base).toLowerCase();
      }
      if (dTokens === undefined) dTokens = [token];
      else dTokens.push(token);
    }
    if (i >= ve) return;
    i++;
  }
}

/**
 * host [":" port] (RFC 3986): reg-name, or an IP literal in brackets; port is digits. Returns the problem, or
 * undefined when valid. An empty value is valid for a Host header (RFC 9110 §7.2), not for an authority.
 */
function checkHost(buf: Buffer, s: number, e: number): string | undefined {
  for (let i = s; i < e; i++) if (buf[i] === AT) return 'userinfo (user@host) is not allowed';
  let i = s;
  if (buf[i] === OPEN_BRACKET) {
    i++;
    while (i < e && buf[i] !== CLOSE_BRACKET) {
      const c = buf[i] as number;
      if (HOST[c] !== 1 || c === OPEN_BRACKET) return `invalid character ${describeByte(c)} in an IP literal`;
      i++;
    }
    if (i === e) return 'unterminated IP literal ([...)';
    i++;
  } else {
    while (i < e) {
      const c = buf[i] as number;
      if (c === COLON) break;
      if (HOST[c] !== 1 || c === OPEN_BRACKET || c === CLOSE_BRACKET) return `invalid character ${describeByte(c)} in the host`;
      i++;
    }
  }
  if (i < e) {
    if (buf[i] !== COLON) return `invalid character ${describeByte(buf[i])} after the host`;
    i++;
    while (i < e) {
      const c = buf[i] as number;
      if (c < 0x30 || c > 0x39) return `invalid character ${describeByte(c)} in the port`;
      i++;
    }
  }
  return undefined;
}

/** An authority: a non-empty host, optionally (or, for CONNECT, necessarily) with a port. */
function checkAuthority(buf: Buffer, s: number, e: number, needPort: boolean): string | undefined {
  if (s === e) return 'empty authority';
  const problem = checkHost(buf, s, e);
  if (problem !== undefined) return problem;
  if (buf[s] === COLON) return 'empty host';
  if (needPort) {
    let i = e;
    while (i > s && (buf[i - 1] as number) >= 0x30 && (buf[i - 1] as number) <= 0x39) i--;
    if (i === e || i - 1 <= s || buf[i - 1] !== COLON) return 'no port';
  }
  return undefined;
}

// === incremental helpers ===

/** Whether a rescan can find something new: the head end, a bad line ending, or the size limit. */
function worthScanning(buf: Buffer, offset: number, from: number, max: number): boolean {
  const len = buf.length;
  if (len - offset >= max) return true;
  if (buf.indexOf(CRLFCRLF, from - 3 > offset ? from - 3 : offset) !== -1) return true;
  for (let i = from - 1 > offset ? from - 1 : offset; i < len; i++) {
    const c = buf[i];
    if (c === LF && (i === offset || buf[i - 1] !== CR)) return true;
    if (c === CR && i + 1 < len && buf[i + 1] !== LF) return true;
  }
  return false;
}

function ensureFieldCapacity(maxCount: number): void {
  if (fields.length < maxCount * 4) fields = new Int32Array(maxCount * 4);
}

function tooLarge(side: HttpSide, max: number, offset: number): HttpParseError {
  return new HttpParseError('header-too-large', `${side} head is larger than ${max} bytes`, side, offset + max);
}

// Writing heads back out, for forwarding, and building the proxy's own local replies.
//
//   serializeRequestHead(head, edits?)  -> Buffer   `method SP target SP HTTP/1.1 CRLF fields CRLF`
//   serializeResponseHead(head, edits?) -> Buffer   `HTTP/1.1 SP status SP reason CRLF fields CRLF`
//   localReply({ status, body?, contentType?, headers?, close?, headRequest?, reason? }) -> Buffer
//   CONTINUE_100                                    the interim `100 Continue` response
//
// The proxy forwards bodies verbatim, so the framing headers (Content-Length, Transfer-Encoding) always go
// out exactly as received, and the head parser has already refused any ambiguous framing. The proxy speaks
// its own version (RFC 9110 §6.2): heads go out as HTTP/1.1.
//
// Hop-by-hop fields (RFC 9110 §7.6.1), dropped on every forward, as Envoy does:
//   Connection, Keep-Alive, Proxy-Connection, and every field the Connection header names, except Host,
//   Content-Length and Transfer-Encoding (naming those must not change how the body is framed or routed:
//   a request smuggling defence); Upgrade unless `edits.connection` is 'upgrade' (the proxy accepted the
//   upgrade); TE unless it offers `trailers`, which is forwarded as `te: trailers` (like Envoy).
//   Proxy-Authorization and Proxy-Authenticate are end-to-end as far as this codec goes (Envoy keeps them
//   too); remove them with `edits.remove` where the proxy consumed them.
// Then, per `edits`:
//   target      replaces the request-target (a path after a prefix rewrite, or head.path to turn an
//               absolute-form target into origin-form).
//   set         flat [name, value, ...]: each name replaces every field of that name (case-insensitive) at the
//               position of the first one, or is appended when absent.
//   remove      names (any case) to drop.
//               Neither may name Content-Length or Transfer-Encoding (the body goes out as it came in), nor
//               a hop-by-hop field.
//   connection  'close' | 'keep-alive' | 'upgrade': written as the one Connection header (none by default:
//               HTTP/1.1 persistence needs none).
// An absolute-form request's Host is replaced by the target's authority (RFC 9112 §3.2.2: a proxy MUST)
// unless `set` gives a host. Edits are validated (names are tokens, values have no CR/LF/NUL, the target is
// visible ASCII) and refused with InternalError: they come from configuration, not from the peer. The head
// itself is trusted as the parser produced it.
// Left to the forwarding engine (it knows both sides): an HTTP/1.0 request without Host goes out as HTTP/1.1
// without Host unless `set` gives one (Envoy's default_host_for_http_10); and a chunked response cannot be
// relayed verbatim to an HTTP/1.0 client, which does not know chunked framing.
import { InternalError } from '../../errors/index.ts';
import { TARGET, isFieldValue, isToken, strEqLower } from './chars.ts';
import type { RequestHead, ResponseHead } from './head.ts';

export interface HeadEdits {
  readonly set?: readonly string[];
  readonly remove?: readonly string[];
  readonly connection?: 'close' | 'keep-alive' | 'upgrade';
}

export interface RequestHeadEdits extends HeadEdits {
  readonly target?: string;
}

export type ResponseHeadEdits = HeadEdits;

const NO_EDITS: HeadEdits = Object.freeze({});

/** Most `set` entries in one edit (they are tracked in a bitmask). */
export const MAX_SET_FIELDS = 31;

export function serializeRequestHead(head: RequestHead, edits: RequestHeadEdits = NO_EDITS): Buffer {
  checkEdits(edits);
  let target = head.target;
  if (edits.target !== undefined) {
    target = edits.target;
    checkTarget(target);
  }
  let s = `${head.method} ${target} HTTP/1.1\r\n`;
  let dropHost = false;
  if (head.form === 'absolute' && head.authority !== undefined && !setsField(edits.set, 'host')) {
    s += `host: ${head.authority}\r\n`;
    dropHost = true;
  }
  return Buffer.from(s + fieldLines(head.headers, head.connectionTokens, edits, dropHost), 'latin1');
}

export function serializeResponseHead(head: ResponseHead, edits: ResponseHeadEdits = NO_EDITS): Buffer {
  checkEdits(edits);
  return Buffer.from(`HTTP/1.1 ${head.status} ${head.reason}\r\n${fieldLines(head.headers, head.connectionTokens, edits, false)}`, 'latin1');
}

/**
 * The common forward, cheaply: a head's own bytes (`raw`, from its start line through the blank line) without
 * its hop-by-hop lines (Connection, Keep-Alive, Proxy-Connection, Upgrade, the fields Connection nominates) and
 * without every line of the field `replace` (lower case), with `append` (whole field lines) before the blank
 * line. The same fields as serializing with `set: [replace, ...]` gives, in the same order but for the appended
 * one, which goes last (field order matters only within one name). Undefined when the head needs what only
 * serializing does (a TE to rewrite): serialize it then. `headers` are the parsed fields, one per line of `raw`.
 * `tail` (body bytes that arrived with the head) follows in the same buffer: one write for both.
 */
export function rawHeadWithout(raw: Buffer, headers: readonly string[], tokens: readonly string[] | undefined, replace: string | undefined, append: Buffer | undefined, tail?: Buffer): Buffer | undefined {
  for (let i = 0; i < headers.length; i += 2) if (hopByHop(headers[i] as string) === HOP_TE) return undefined;
  const out = Buffer.allocUnsafe(raw.length + (append === undefined ? 0 : append.length) + (tail === undefined ? 0 : tail.length));
  let lineEnd = raw.indexOf(CR_BYTE) + 2; // past the start line
  let keepFrom = 0;
  let n = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const lineStart = lineEnd;
    lineEnd = raw.indexOf(CR_BYTE, lineStart) + 2;
    const name = headers[i] as string;
    const drop = hopByHop(name) !== HOP_NONE || (tokens !== undefined && nominated(name, tokens)) || (replace !== undefined && strEqLower(name, replace));
    if (!drop) continue;
    n += raw.copy(out, n, keepFrom, lineStart);
    keepFrom = lineEnd;
  }
  n += raw.copy(out, n, keepFrom, lineEnd);
  if (append !== undefined) n += append.copy(out, n);
  out[n++] = CR_BYTE;
  out[n++] = LF_BYTE;
  if (tail !== undefined) n += tail.copy(out, n);
  return n === out.length ? out : out.subarray(0, n);
}

const CR_BYTE = 0x0d;
const LF_BYTE = 0x0a;

// Output is built as one string and encoded once: measured faster than writing bytes into a Buffer from JS
// (charCodeAt per byte) or one latin1Write per field.

const HOP_NONE = 0;
const HOP_DROP = 1;
const HOP_TE = 2;
const HOP_UPGRADE = 3;

function hopByHop(name: string): number {
  switch (name.length) {
    case 2:
      return strEqLower(name, 'te') ? HOP_TE : HOP_NONE;
    case 7:
      return strEqLower(name, 'upgrade') ? HOP_UPGRADE : HOP_NONE;
    case 10:
      return strEqLower(name, 'connection') || strEqLower(name, 'keep-alive') ? HOP_DROP : HOP_NONE;
    case 16:
      return strEqLower(name, 'proxy-connection') ? HOP_DROP : HOP_NONE;
    default:
      return HOP_NONE;
  }
}

/** Fields named by Connection that are never dropped for it: they decide routing and framing. */
function protectedFromConnection(lower: string): boolean {
  return lower === 'host' || lower === 'content-length' || lower === 'transfer-encoding';
}

/** The field lines and the blank line. */
function fieldLines(headers: readonly string[], tokens: readonly string[] | undefined, edits: HeadEdits, dropHost: boolean): string {
  const set = edits.set;
  const remove = edits.remove;
  const keepUpgrade = edits.connection === 'upgrade';
  let emitted = 0; // bit i: set[2i] has been written
  let te = false;
  let s = '';
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    const hop = hopByHop(name);
    if (hop === HOP_DROP) continue;
    if (hop === HOP_UPGRADE) {
      if (!keepUpgrade) continue;
    } else if (tokens !== undefined && nominated(name, tokens)) continue;
    if (remove !== undefined && listed(name, remove)) continue;
    if (set !== undefined) {
      const j = setIndex(name, set);
      if (j >= 0) {
        const bit = 1 << (j >> 1);
        if ((emitted & bit) === 0) {
          emitted |= bit;
          s += `${set[j]}: ${set[j + 1]}\r\n`;
        }
        continue;
      }
    }
    if (dropHost && strEqLower(name, 'host')) continue;
    const value = headers[i + 1] as string;
    if (hop === HOP_TE) {
      if (!te && offersTrailers(value)) s += 'te: trailers\r\n';
      te = true;
      continue;
    }
    s += `${name}: ${value}\r\n`;
  }
  if (set !== undefined) {
    for (let j = 0; j < set.length; j += 2) if ((emitted & (1 << (j >> 1))) === 0) s += `${set[j]}: ${set[j + 1]}\r\n`;
  }
  if (edits.connection !== undefined) s += `connection: ${edits.connection}\r\n`;
  return `${s}\r\n`;
}

function nominated(name: string, tokens: readonly string[]): boolean {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as string;
    if (strEqLower(name, t)) return !protectedFromConnection(t);
  }
  return false;
}

function listed(name: string, names: readonly string[]): boolean {
  for (let i = 0; i < names.length; i++) if (eqIgnoreCase(name, names[i] as string)) return true;
  return false;
}

function setIndex(name: string, set: readonly string[]): number {
  for (let j = 0; j < set.length; j += 2) if (eqIgnoreCase(name, set[j] as string)) return j;
  return -1;
}

function setsField(set: readonly string[] | undefined, lower: string): boolean {
  if (set === undefined) return false;
  for (let j = 0; j < set.length; j += 2) if (strEqLower(set[j] as string, lower)) return true;
  return false;
}

function eqIgnoreCase(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  if (a === b) return true;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x >= 0x41 && x <= 0x5a) x += 0x20;
    if (y >= 0x41 && y <= 0x5a) y += 0x20;
    if (x !== y) return false;
  }
  return true;
}

/** TE: #t-codings; does it list `trailers`? */
function offersTrailers(value: string): boolean {
  for (const part of value.split(',')) {
    const semi = part.indexOf(';');
    if (strEqLower((semi < 0 ? part : part.slice(0, semi)).trim(), 'trailers')) return true;
  }
  return false;
}

function checkTarget(target: string): void {
  if (target.length === 0) throw new InternalError('cannot forward an empty request-target');
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c > 0xff || TARGET[c] !== 1) throw new InternalError(`cannot forward request-target: character ${i} (code ${c}) is not allowed; percent-encode it`);
  }
}

/** Content-Length and Transfer-Encoding describe the body, which is forwarded verbatim: never edited. */
function framingField(name: string): boolean {
  return strEqLower(name, 'content-length') || strEqLower(name, 'transfer-encoding');
}

function checkEdits(edits: HeadEdits): void {
  const remove = edits.remove;
  if (remove !== undefined) {
    for (let j = 0; j < remove.length; j++) {
      if (framingField(remove[j] as string)) throw new InternalError(`header edits: ${remove[j]} frames the body, which is forwarded verbatim; it cannot be removed`);
    }
  }
  const set = edits.set;
  if (set !== undefined) {
    if (set.length % 2 !== 0) throw new InternalError('header edits: `set` must be a flat [name, value, ...] list');
    if (set.length > MAX_SET_FIELDS * 2) throw new InternalError(`header edits: at most ${MAX_SET_FIELDS} fields in \`set\``);
    for (let j = 0; j < set.length; j += 2) {
      const name = set[j] as string;
      if (!isToken(name)) throw new InternalError(`header edits: ${JSON.stringify(name)} is not a valid header name`);
      if (hopByHop(name) !== HOP_NONE) throw new InternalError(`header edits: ${name} is hop-by-hop; use \`connection\``);
      if (framingField(name)) throw new InternalError(`header edits: ${name} frames the body, which is forwarded verbatim; it cannot be set`);
      if (!isFieldValue(set[j + 1] as string)) throw new InternalError(`header edits: the value for ${name} has characters a header value cannot carry (CR, LF, NUL, non-latin1) or surrounding whitespace`);
    }
  }
}

// === local replies ===

export const REASON_PHRASES: Readonly<Record<number, string>> = Object.freeze({
  100: 'Continue', 101: 'Switching Protocols', 200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content',
  206: 'Partial Content', 301: 'Moved Permanently', 302: 'Found', 304: 'Not Modified', 307: 'Temporary Redirect',
  308: 'Permanent Redirect', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
  405: 'Method Not Allowed', 408: 'Request Timeout', 411: 'Length Required', 413: 'Content Too Large',
  414: 'URI Too Long', 417: 'Expectation Failed', 421: 'Misdirected Request', 426: 'Upgrade Required',
  429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error',
  501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
});

export interface LocalReply {
  readonly status: number;
  /** Body text (UTF-8), e.g. 'no healthy upstream'. */
  readonly body?: string;
  /** Content-Type of a non-empty body; 'text/plain' by default (as Envoy's local replies). */
  readonly contentType?: string;
  /** More fields, flat [name, value, ...]. */
  readonly headers?: readonly string[];
  /** Add `connection: close` (the proxy closes after this reply). */
  readonly close?: boolean;
  /** This answers a HEAD request: Content-Length of the body, but no body bytes. */
  readonly headRequest?: boolean;
  readonly reason?: string;
}

/** A complete response: status line, Content-Length (except for 1xx/204/304, which carry no body), body. */
export function localReply(reply: LocalReply): Buffer {
  const { status } = reply;
  if (!Number.isInteger(status) || status < 100 || status > 999) throw new InternalError(`local reply: bad status ${status}`);
  const reason = reply.reason ?? REASON_PHRASES[status] ?? 'Unknown';
  if (!isFieldValue(reason)) throw new InternalError('local reply: bad reason phrase');
  checkEdits({ set: reply.headers });
  const bodyless = status < 200 || status === 204 || status === 304;
  const body = bodyless || reply.body === undefined ? undefined : Buffer.from(reply.body, 'utf8');
  let s = `HTTP/1.1 ${status} ${reason}\r\n`;
  if (body !== undefined && body.length > 0) s += `content-type: ${reply.contentType ?? 'text/plain'}\r\n`;
  if (!bodyless) s += `content-length: ${body?.length ?? 0}\r\n`;
  const extra = reply.headers;
  if (extra !== undefined) for (let j = 0; j < extra.length; j += 2) s += `${extra[j]}: ${extra[j + 1]}\r\n`;
  if (reply.close === true) s += 'connection: close\r\n';
  const head = Buffer.from(`${s}\r\n`, 'latin1');
  return body === undefined || body.length === 0 || reply.headRequest === true ? head : Buffer.concat([head, body]);
}

/** `HTTP/1.1 100 Continue`: the interim answer to `Expect: 100-continue`. */
export const CONTINUE_100: Buffer = Buffer.from('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');

// Byte-class tables for the HTTP/1.1 codec, built once at load. Each is indexed by a byte (0-255), so a
// scanning loop classifies a byte with one typed-array load instead of a chain of comparisons or a regex.
// Grammar references are RFC 9110 (semantics) and RFC 9112 (HTTP/1.1 syntax).

export const SP = 0x20;
export const HT = 0x09;
export const CR = 0x0d;
export const LF = 0x0a;
export const COLON = 0x3a;
export const SEMI = 0x3b;
export const EQUALS = 0x3d;
export const DQUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const COMMA = 0x2c;
export const HASH = 0x23;
export const SLASH = 0x2f;

function table(accept: (c: number) => boolean): Uint8Array {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = accept(c) ? 1 : 0;
  return t;
}

const isAlpha = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** tchar (RFC 9110 §5.6.2): method names, header names, transfer codings, chunk-extension names. */
export const TCHAR = table((c) => isAlpha(c) || isDigit(c) || "!#$%&'*+-.^_`|~".includes(String.fromCharCode(c)));

/**
 * field-value content plus SP/HTAB (RFC 9110 §5.5): VCHAR and obs-text (0x80-0xFF, kept as latin1). Every
 * control character is refused, NUL and bare CR included; CR ends the value and must be followed by LF.
 */
export const FIELD_VALUE = table((c) => c === HT || (c >= 0x20 && c !== 0x7f));

/**
 * Bytes accepted in a request-target: visible ASCII except '#' (a fragment is not part of a request-target;
 * Envoy refuses it too). No obs-text, no controls, no whitespace: those must be percent-encoded.
 */
export const TARGET = table((c) => c > 0x20 && c < 0x7f && c !== HASH);

/**
 * Bytes of a Host value or an authority (RFC 3986 host [":" port]): unreserved, sub-delims, ':', '%' and
 * the IPv6 brackets. Refusing '@' refuses userinfo (RFC 9110 §4.2.4); '/', '?', '#' and whitespace cannot
 * appear, so the proxy's routing and the upstream's cannot read different hosts out of one value.
 */
export const HOST = table((c) => isAlpha(c) || isDigit(c) || "-._~!$&'()*+,;=:[]%".includes(String.fromCharCode(c)));

/** URI scheme characters after the first letter (RFC 3986 §3.1). */
export const SCHEME = table((c) => isAlpha(c) || isDigit(c) || c === 0x2b || c === 0x2d || c === 0x2e);

/** qdtext of a quoted-string (RFC 9110 §5.6.4). */
export const QDTEXT = table((c) => c === HT || c === SP || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80);

/** What may follow a backslash in a quoted-string: HTAB, SP, VCHAR, obs-text. */
export const QUOTED_PAIR = table((c) => c === HT || c === SP || (c > 0x20 && c !== 0x7f));

/** Hex digit value, or -1. */
export const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 256; c++) {
  if (isDigit(c)) HEX[c] = c - 0x30;
  else if (c >= 0x41 && c <= 0x46) HEX[c] = c - 0x41 + 10;
  else if (c >= 0x61 && c <= 0x66) HEX[c] = c - 0x61 + 10;
}

/** ASCII lowercase of a byte (other bytes unchanged). */
export const LOWER = new Uint8Array(256);
for (let c = 0; c < 256; c++) LOWER[c] = c >= 0x41 && c <= 0x5a ? c + 0x20 : c;

/** The bytes of an ASCII string. */
export function ascii(s: string): Uint8Array {
  return Uint8Array.from(s, (ch) => ch.charCodeAt(0));
}

/** buf[s..e) equals `lit` ignoring ASCII case; `lit` must be lowercase. */
export function bytesEqLower(buf: Uint8Array, s: number, e: number, lit: Uint8Array): boolean {
  const n = lit.length;
  if (e - s !== n) return false;
  for (let i = 0; i < n; i++) if (LOWER[buf[s + i] as number] !== lit[i]) return false;
  return true;
}

/** buf[s..e) equals `lit` exactly. */
export function bytesEq(buf: Uint8Array, s: number, e: number, lit: Uint8Array): boolean {
  const n = lit.length;
  if (e - s !== n) return false;
  for (let i = 0; i < n; i++) if (buf[s + i] !== lit[i]) return false;
  return true;
}

/** `a` equals `lower` ignoring ASCII case; `lower` must be lowercase. No allocation (unlike toLowerCase). */
export function strEqLower(a: string, lower: string): boolean {
  const n = lower.length;
  if (a.length !== n) return false;
  for (let i = 0; i < n; i++) {
    const c = a.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a ? c + 0x20 : c) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/** Every character of `s` is a tchar (and there is at least one). */
export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || TCHAR[c] !== 1) return false;
  }
  return true;
}

/** `s` is a valid field value: latin1 field-value characters, no leading or trailing whitespace. */
export function isFieldValue(s: string): boolean {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff || FIELD_VALUE[c] !== 1) return false;
  }
  if (n === 0) return true;
  const first = s.charCodeAt(0);
  const last = s.charCodeAt(n - 1);
  return first !== SP && first !== HT && last !== SP && last !== HT;
}

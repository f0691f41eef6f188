// Compiled forms of Envoy's string, header and query parameter matchers (type.matcher.v3.StringMatcher,
// config.route.v3.HeaderMatcher, config.route.v3.QueryParameterMatcher): each becomes a test function built
// once, so a request only runs comparisons. Case-insensitive comparisons are ASCII-only, as Envoy's (absl).
// src/proxy/config, spelled so that the layer rule does not read `../config/` as src/config.
import { type Json, obj, optObj, Path, str } from '../resources/values.ts';
import { bool, refuseOthers, requiredStr } from './fields.ts';
import { Re2, Re2SyntaxError } from './re2.ts';

/** Tests one value (a header value, a query parameter value). */
export type StringTest = (value: string) => boolean;

/** A RegexMatcher (`{ regex, googleRe2? }`) compiled with RE2's meaning; the error names `regex`. */
export function compileRegexMatcher(v: unknown, path: Path): Re2 {
  const o = obj(v, path);
  refuseOthers(o, (f) => path.at(f), { regex: 'read', googleRe2: 'read' });
  const engine = optObj(o.googleRe2, path.at('googleRe2'));
  // max_program_size (deprecated) would need RE2's program size, which keymesh's proxy does not compute.
  if (engine) refuseOthers(engine, (f) => path.at('googleRe2').at(f), {});
  return compileRe2(requiredStr(o.regex, path.at('regex')), path.at('regex'));
}

export function compileRe2(pattern: string, path: Path): Re2 {
  try {
    return new Re2(pattern);
  } catch (e) {
    if (e instanceof Re2SyntaxError) path.fail(e.message);
    throw e;
  }
}

export function asciiLower(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
  }
  return s;
}

/** ASCII case-insensitive `s.startsWith(prefix, at)` without allocating; `prefix` is lower-case. */
export function startsWithLower(s: string, lowerPrefix: string, at = 0): boolean {
  if (s.length - at < lowerPrefix.length) return false;
  for (let i = 0; i < lowerPrefix.length; i++) {
    let c = s.charCodeAt(at + i);
    if (c >= 65 && c <= 90) c += 32;
    if (c !== lowerPrefix.charCodeAt(i)) return false;
  }
  return true;
}

const STRING_KINDS = ['exact', 'prefix', 'suffix', 'contains', 'safeRegex'] as const;

/** A StringMatcher (exact, prefix, suffix, contains or safeRegex; ignoreCase) as a test. */
export function compileStringMatcher(v: unknown, path: Path): StringTest {
  const o = obj(v, path);
  refuseOthers(o, (f) => path.at(f), { exact: 'read', prefix: 'read', suffix: 'read', contains: 'read', safeRegex: 'read', ignoreCase: 'read' });
  const ignoreCase = bool(o.ignoreCase, path.at('ignoreCase'));
  const kinds = STRING_KINDS.filter((k) => o[k] !== undefined && o[k] !== null);
  if (kinds.length === 0) path.fail(`must set one of ${STRING_KINDS.join(', ')}`);
  if (kinds.length > 1) path.fail(`sets ${kinds.join(' and ')}; only one may be set`);
  const kind = kinds[0]!;
  if (kind === 'safeRegex') {
    if (ignoreCase) path.at('ignoreCase').fail('has no effect with safeRegex (Envoy refuses it)');
    const re = compileRegexMatcher(o.safeRegex, path.at('safeRegex'));
    return (value) => re.fullMatch(value);
  }
  const text = str(o[kind], path.at(kind));
  if (kind !== 'exact' && text === '') path.at(kind).fail('must not be empty');
  return stringTest(kind, text, ignoreCase);
}

function stringTest(kind: 'exact' | 'prefix' | 'suffix' | 'contains', text: string, ignoreCase: boolean): StringTest {
  if (!ignoreCase) {
    switch (kind) {
      case 'exact': return (value) => value === text;
      case 'prefix': return (value) => value.startsWith(text);
      case 'suffix': return (value) => value.endsWith(text);
      case 'contains': return (value) => value.includes(text);
    }
  }
  const lower = asciiLower(text);
  switch (kind) {
    case 'exact': return (value) => value.length === lower.length && startsWithLower(value, lower);
    case 'prefix': return (value) => startsWithLower(value, lower);
    case 'suffix': return (value) => value.length >= lower.length && startsWithLower(value, lower, value.length - lower.length);
    case 'contains': return (value) => asciiLower(value).includes(lower);
  }
}

/** Where a header matcher's value comes from: pseudo-headers are the request's own fields. */
export type HeaderSource = ':authority' | ':path' | ':method' | ':scheme' | 'host' | 'header';

export type HeaderMatcher =
  /** present_match: true when the header's presence equals `present`, inverted by `invert`. */
  | { readonly kind: 'present'; readonly name: string; readonly source: HeaderSource; readonly present: boolean; readonly invert: boolean }
  /**
   * A value test. A missing header never matches (not even inverted), unless treatMissingAsEmpty, which tests ''.
   * Repeated headers are tested as their values joined with ','.
   */
  | { readonly kind: 'value'; readonly name: string; readonly source: HeaderSource; readonly test: StringTest; readonly invert: boolean; readonly treatMissingAsEmpty: boolean };

const HEADER_KINDS = ['stringMatch', 'presentMatch', 'rangeMatch', 'exactMatch', 'safeRegexMatch', 'prefixMatch', 'suffixMatch', 'containsMatch'] as const;

function sourceOf(name: string): HeaderSource {
  switch (name) {
    case ':authority':
    case ':path':
    case ':method':
    case ':scheme':
      return name;
    // Envoy keeps HTTP/1's Host as :authority, so a matcher on `host` finds nothing.
    case 'host':
      return 'host';
    default:
      return 'header';
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function int64(v: unknown, path: Path): bigint {
  if ((typeof v === 'string' && /^-?\d+$/.test(v)) || (typeof v === 'number' && Number.isSafeInteger(v))) {
    const n = BigInt(v);
    if (n >= INT64_MIN && n <= INT64_MAX) return n;
  }
  if (v === undefined || v === null) return 0n;
  return path.fail('must be a 64-bit integer');
}

/** Envoy's range test: the whole value (absl::SimpleAtoi: ASCII spaces around, optional sign) in [start, end). */
function rangeTest(v: unknown, path: Path): StringTest {
  const o = obj(v, path);
  refuseOthers(o, (f) => path.at(f), { start: 'read', end: 'read' });
  const start = int64(o.start, path.at('start'));
  const end = int64(o.end, path.at('end'));
  return (value) => {
    const t = value.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '');
    if (!/^[+-]?\d+$/.test(t)) return false;
    const n = BigInt(t);
    return n >= INT64_MIN && n <= INT64_MAX && n >= start && n < end;
  };
}

export function compileHeaderMatcher(v: unknown, path: Path): HeaderMatcher {
  const o = obj(v, path);
  refuseOthers(o, (f) => path.at(f), {
    name: 'read', invertMatch: 'read', treatMissingHeaderAsEmpty: 'read',
    stringMatch: 'read', presentMatch: 'read', rangeMatch: 'read',
    exactMatch: 'read', safeRegexMatch: 'read', prefixMatch: 'read', suffixMatch: 'read', containsMatch: 'read',
  });
  const name = asciiLower(requiredStr(o.name, path.at('name')));
  const source = sourceOf(name);
  const invert = bool(o.invertMatch, path.at('invertMatch'));
  const treatMissingAsEmpty = bool(o.treatMissingHeaderAsEmpty, path.at('treatMissingHeaderAsEmpty'));
  const kinds = HEADER_KINDS.filter((k) => o[k] !== undefined && o[k] !== null);
  if (kinds.length > 1) path.fail(`sets ${kinds.join(' and ')}; only one may be set`);
  const kind = kinds[0];
  const value = (test: StringTest): HeaderMatcher => ({ kind: 'value', name, source, test, invert, treatMissingAsEmpty });
  const at = kind === undefined ? path : path.at(kind);
  switch (kind) {
    // No specifier: Envoy's default is present_match.
    case undefined:
      return { kind: 'present', name, source, present: true, invert };
    case 'presentMatch':
      return { kind: 'present', name, source, present: bool(o.presentMatch, at), invert };
    case 'stringMatch':
      return value(compileStringMatcher(o.stringMatch, at));
    case 'rangeMatch':
      return value(rangeTest(o.rangeMatch, at));
    case 'safeRegexMatch': {
      const re = compileRegexMatcher(o.safeRegexMatch, at);
      return value((s) => re.fullMatch(s));
    }
    case 'exactMatch': {
      // The deprecated exact_match: an empty value matches any value.
      const text = str(o.exactMatch, at);
      return value(text === '' ? () => true : (s) => s === text);
    }
    default: {
      const text = requiredStr(o[kind], at);
      return value(stringTest(kind === 'prefixMatch' ? 'prefix' : kind === 'suffixMatch' ? 'suffix' : 'contains', text, false));
    }
  }
}

/** A query parameter test on the first value of `name` in the query string (values are not percent-decoded). */
export interface QueryParameterMatcher {
  readonly name: string;
  /** undefined: the parameter only has to be present. */
  readonly test: StringTest | undefined;
}

export function compileQueryParameterMatcher(v: unknown, path: Path): QueryParameterMatcher {
  const o: Json = obj(v, path);
  refuseOthers(o, (f) => path.at(f), { name: 'read', stringMatch: 'read', presentMatch: 'read' });
  const name = requiredStr(o.name, path.at('name'));
  const hasString = o.stringMatch !== undefined && o.stringMatch !== null;
  const hasPresent = o.presentMatch !== undefined && o.presentMatch !== null;
  if (hasString && hasPresent) path.fail('sets stringMatch and presentMatch; only one may be set');
  if (hasPresent && !bool(o.presentMatch, path.at('presentMatch'))) {
    // Envoy versions disagree on it: "absent" behind a runtime flag, otherwise the same as true.
    path.at('presentMatch').fail('false is not supported by keymesh\'s proxy');
  }
  return { name, test: hasString ? compileStringMatcher(o.stringMatch, path.at('stringMatch')) : undefined };
}

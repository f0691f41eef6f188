// Envoy's regular expressions are RE2 (type.matcher.v3.RegexMatcher: "Google's RE2 regex engine"). RE2 and
// JavaScript agree on most syntax but not all of it, and some of what they share means different things
// (`\s`, `.`, `^`/`$` under the m flag, a global replace after an empty match). So a pattern is not handed to
// RegExp as it is: it is parsed with RE2's rules and written out again as a JavaScript pattern (`u` mode) with
// the same meaning, and what RE2 has no such thing for (lookaround, backreferences, atomic groups) is refused
// with the reason, as Envoy would refuse it. What keymesh's proxy cannot reproduce is refused too: the U
// (ungreedy) flag and `\C`. Not reproduced: RE2's program-size limit (Envoy's default error level is 100),
// and RE2's linear time: V8 backtracks, so a pathological pattern from the control plane (`(a|aa)+`) can be
// slow on a crafted path or header. (re2-wasm, which @grpc/grpc-js-xds brings, has RE2's guarantees but
// costs about 8 µs a match against 0.2 µs here.)
//
// Reference: https://github.com/google/re2/wiki/Syntax, and RE2::GlobalReplace / RE2::Rewrite for
// substitutions (`\0`..`\9` name groups, `\\` is a backslash, any other escape is an error).

/** Thrown by the translation; the caller turns it into a ProxyConfigError naming the field. */
export class Re2SyntaxError extends Error {}

type Range = readonly [number, number];

const MAX_CODE_POINT = 0x10ffff;
/** RE2's `\s`: `[\t\n\f\r ]` (no \v, no Unicode spaces, unlike JavaScript's `\s`). */
const PERL_SPACE: readonly Range[] = [[9, 10], [12, 13], [32, 32]];
const POSIX: Readonly<Record<string, readonly Range[]>> = {
  alnum: [[48, 57], [65, 90], [97, 122]],
  alpha: [[65, 90], [97, 122]],
  ascii: [[0, 127]],
  blank: [[9, 9], [32, 32]],
  cntrl: [[0, 31], [127, 127]],
  digit: [[48, 57]],
  graph: [[33, 126]],
  lower: [[97, 122]],
  print: [[32, 126]],
  punct: [[33, 47], [58, 64], [91, 96], [123, 126]],
  space: [[9, 13], [32, 32]],
  upper: [[65, 90]],
  word: [[48, 57], [65, 90], [95, 95], [97, 122]],
  xdigit: [[48, 57], [65, 70], [97, 102]],
};
const GENERAL_CATEGORIES = new Set([
  'C', 'Cc', 'Cf', 'Co', 'Cs', 'L', 'Ll', 'Lm', 'Lo', 'Lt', 'Lu', 'M', 'Mc', 'Me', 'Mn', 'N', 'Nd', 'Nl', 'No',
  'P', 'Pc', 'Pd', 'Pe', 'Pf', 'Pi', 'Po', 'Ps', 'S', 'Sc', 'Sk', 'Sm', 'So', 'Z', 'Zl', 'Zp', 'Zs',
]);
/** RE2 refuses counted repetitions above 1000. */
const MAX_REPEAT = 1000;

function complement(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  let next = 0;
  for (const [lo, hi] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= MAX_CODE_POINT) out.push([next, MAX_CODE_POINT]);
  return out;
}

/** One code point as a JavaScript `u`-mode pattern atom that is always a literal (in and out of classes). */
function lit(cp: number): string {
  if ((cp >= 48 && cp <= 57) || (cp >= 65 && cp <= 90) || (cp >= 97 && cp <= 122) || cp === 95) return String.fromCodePoint(cp);
  return `\\u{${cp.toString(16)}}`;
}

function rangesBody(ranges: readonly Range[]): string {
  return ranges.map(([lo, hi]) => (lo === hi ? lit(lo) : `${lit(lo)}-${lit(hi)}`)).join('');
}

const isHex = (c: string | undefined) => c !== undefined && /^[0-9A-Fa-f]$/.test(c);
const isOctal = (c: string | undefined) => c !== undefined && c >= '0' && c <= '7';

interface Frame {
  /** RE2 flags in force: i (case-insensitive), m (multi-line), s (dot matches \n). */
  i: boolean;
  m: boolean;
  s: boolean;
  /** `(?i:`/`(?-i:` groups opened by bare `(?i)` flags in this group, to close at `|` and `)` (and reopen after `|`). */
  readonly pending: string[];
}

/** The translation of one RE2 pattern: JavaScript source (for the `u` flag) and its number of capture groups. */
export interface Translated {
  readonly source: string;
  readonly groups: number;
}

/** Parses an RE2 pattern and writes the JavaScript pattern with the same meaning; throws Re2SyntaxError. */
export function translateRe2(pattern: string): Translated {
  const p = pattern;
  let i = 0;
  let out = '';
  let groups = 0;
  const names = new Set<string>();
  const frames: Frame[] = [{ i: false, m: false, s: false, pending: [] }];
  const top = () => frames[frames.length - 1]!;
  const fail = (problem: string): never => {
    throw new Re2SyntaxError(problem);
  };
  const codePointAt = (at: number): number => p.codePointAt(at)!;

  /** After `\p`/`\P` (i at the letter): a Unicode class as a JavaScript property escape. */
  function unicodeClass(): string {
    let negated = p[i] === 'P';
    i++;
    let name: string;
    if (p[i] === '{') {
      const end = p.indexOf('}', i);
      if (end < 0) fail('missing } in a \\p{...} class');
      name = p.slice(i + 1, end);
      i = end + 1;
    } else {
      if (i >= p.length) fail('missing class name after \\p');
      name = String.fromCodePoint(codePointAt(i));
      i += name.length;
    }
    if (name.startsWith('^')) {
      negated = !negated;
      name = name.slice(1);
    }
    if (!/^[A-Za-z_]+$/.test(name)) fail(`invalid Unicode class \\p{${name}}`);
    const body = name === 'Any' ? 'Any' : GENERAL_CATEGORIES.has(name) ? name : `Script=${name}`;
    const escape = `\\${negated ? 'P' : 'p'}{${body}}`;
    try {
      new RegExp(escape, 'u');
    } catch {
      fail(`unknown Unicode class \\p{${name}}`);
    }
    return escape;
  }

  /**
   * After `\` (i at the escaped character): an escape that stands for one character, as its code point, or
   * undefined when it is not one (the caller handles classes and assertions first).
   */
  function charEscape(): number {
    const c = p[i];
    if (c === undefined) return fail('trailing \\');
    const simple: Record<string, number> = { a: 7, f: 12, t: 9, n: 10, r: 13, v: 11 };
    if (c in simple) {
      i++;
      return simple[c]!;
    }
    if (c === 'x') {
      i++;
      if (p[i] === '{') {
        const end = p.indexOf('}', i);
        const hex = end < 0 ? '' : p.slice(i + 1, end);
        if (!/^[0-9A-Fa-f]{1,8}$/.test(hex) || parseInt(hex, 16) > MAX_CODE_POINT) fail('invalid \\x{...} escape');
        i = end + 1;
        return parseInt(hex, 16);
      }
      if (!isHex(p[i]) || !isHex(p[i + 1])) fail('invalid \\x escape (two hex digits, or \\x{...})');
      i += 2;
      return parseInt(p.slice(i - 2, i), 16);
    }
    if (c >= '1' && c <= '9' && !(c <= '7' && isOctal(p[i + 1]))) {
      return fail(`backreference \\${c} is not supported (RE2 has no backreferences)`);
    }
    if (isOctal(c)) {
      // \0, or \1..\7 followed by an octal digit: up to three octal digits.
      let code = 0;
      let n = 0;
      while (n < 3 && isOctal(p[i])) {
        code = code * 8 + (p.charCodeAt(i) - 48);
        i++;
        n++;
      }
      return code;
    }
    const cp = codePointAt(i);
    // Escaped ASCII punctuation is itself; RE2 refuses other escapes (\e, \cX, \uXXXX, \N, \G, \Z, \K, ...).
    if (cp < 128 && !/[A-Za-z0-9]/.test(c)) {
      i++;
      return cp;
    }
    return fail(`invalid escape \\${String.fromCodePoint(cp)}`);
  }

  /** A character class `[...]` (i at `[`). */
  function charClass(): string {
    i++;
    let negated = false;
    if (p[i] === '^') {
      negated = true;
      i++;
    }
    let body = '';
    let first = true;
    for (;;) {
      if (i >= p.length) fail('missing ] at the end of a character class');
      const c = p[i]!;
      if (c === ']' && !first) {
        i++;
        break;
      }
      first = false;
      if (c === '[' && p[i + 1] === ':') {
        const end = p.indexOf(':]', i + 2);
        if (end >= 0) {
          let name = p.slice(i + 2, end);
          const neg = name.startsWith('^');
          if (neg) name = name.slice(1);
          const ranges = POSIX[name];
          if (!ranges) fail(`invalid character class [:${name}:]`);
          body += rangesBody(neg ? complement(ranges!) : ranges!);
          i = end + 2;
          continue;
        }
      }
      let lo: number;
      if (c === '\\') {
        i++;
        const e = p[i];
        if (e === 'd' || e === 'D' || e === 'w' || e === 'W') {
          body += `\\${e}`;
          i++;
          continue;
        }
        if (e === 's' || e === 'S') {
          body += rangesBody(e === 's' ? PERL_SPACE : complement(PERL_SPACE));
          i++;
          continue;
        }
        if (e === 'p' || e === 'P') {
          body += unicodeClass();
          continue;
        }
        if (e === 'Q' || e === 'E' || e === 'b' || e === 'B' || e === 'A' || e === 'z' || e === 'C') fail(`\\${e} is not allowed in a character class`);
        lo = charEscape();
      } else {
        lo = codePointAt(i);
        i += width(lo);
      }
      if (p[i] === '-' && i + 1 < p.length && p[i + 1] !== ']') {
        i++;
        let hi: number;
        if (p[i] === '\\') {
          i++;
          if (/^[dDwWsSpPQEbBAzC]$/.test(p[i] ?? '')) fail('bad character class range (a class cannot end a range)');
          hi = charEscape();
        } else {
          hi = codePointAt(i);
          i += width(hi);
        }
        if (hi < lo) fail(`bad character class range ${String.fromCodePoint(lo)}-${String.fromCodePoint(hi)}`);
        body += `${lit(lo)}-${lit(hi)}`;
      } else {
        body += lit(lo);
      }
    }
    return `[${negated ? '^' : ''}${body}]`;
  }

  /** A group opening (i at `(`). */
  function groupOpen(): void {
    const f = top();
    if (p[i + 1] !== '?') {
      i++;
      groups++;
      out += '(';
      frames.push({ i: f.i, m: f.m, s: f.s, pending: [] });
      return;
    }
    const rest = p.slice(i + 2);
    if (rest.startsWith(':')) {
      i += 3;
      out += '(?:';
      frames.push({ i: f.i, m: f.m, s: f.s, pending: [] });
      return;
    }
    if (rest.startsWith('=') || rest.startsWith('!') || rest.startsWith('<=') || rest.startsWith('<!')) {
      fail('lookahead and lookbehind assertions are not supported (RE2 has none)');
    }
    if (rest.startsWith('P=') || rest.startsWith('P>')) fail('backreferences and recursion are not supported (RE2 has none)');
    if (rest.startsWith('>')) fail('atomic groups are not supported (RE2 has none)');
    if (rest.startsWith('#')) fail('comments (?#...) are not supported (RE2 has none)');
    if (rest.startsWith('|')) fail('branch reset groups are not supported (RE2 has none)');
    const named = /^P?<([^>]*)>/.exec(rest);
    if (named) {
      const name = named[1]!;
      if (!/^[\p{L}\p{N}_]+$/u.test(name)) fail(`invalid capture group name ${name}`);
      if (names.has(name)) fail(`duplicate capture group name ${name}`);
      names.add(name);
      i += 2 + named[0].length;
      groups++;
      // Names play no part in matching or in substitutions (\N), so the group is written unnamed.
      out += '(';
      frames.push({ i: f.i, m: f.m, s: f.s, pending: [] });
      return;
    }
    const flags = /^([A-Za-z]*)(?:-([A-Za-z]*))?([:)])/.exec(rest);
    if (!flags) fail('invalid group (?...)');
    const [whole, on = '', off, end] = flags!;
    if ((on === '' && off === undefined) || off === '') fail(`invalid flag group (?${whole}`);
    const state: Record<'i' | 'm' | 's', boolean> = { i: f.i, m: f.m, s: f.s };
    for (const [letters, value] of [[on, true], [off ?? '', false]] as const) {
      for (const letter of letters) {
        if (letter === 'U') fail('the U (ungreedy) flag is not supported by keymesh\'s proxy');
        if (letter !== 'i' && letter !== 'm' && letter !== 's') return fail(`invalid flag ${letter}`);
        state[letter] = value;
      }
    }
    i += 2 + whole.length;
    const modifier = state.i === f.i ? undefined : state.i ? '(?i:' : '(?-i:';
    if (end === ':') {
      out += modifier ?? '(?:';
      frames.push({ ...state, pending: [] });
      return;
    }
    // Bare flags change the rest of the current group (across `|` too).
    f.m = state.m;
    f.s = state.s;
    if (modifier) {
      f.i = state.i;
      f.pending.push(modifier);
      out += modifier;
    }
  }

  while (i < p.length) {
    const c = p[i]!;
    const f = top();
    switch (c) {
      case '(':
        groupOpen();
        break;
      case ')':
        if (frames.length === 1) fail('unexpected )');
        out += ')'.repeat(f.pending.length + 1);
        frames.pop();
        i++;
        break;
      case '|':
        out += `${')'.repeat(f.pending.length)}|${f.pending.join('')}`;
        i++;
        break;
      case '[':
        out += charClass();
        break;
      case '.':
        // RE2's `.` is any character but \n (JavaScript's also excludes \r, U+2028 and U+2029).
        out += f.s ? '[^]' : '[^\\n]';
        i++;
        break;
      case '^':
        out += f.m ? '(?<![^\\n])' : '^';
        i++;
        break;
      case '$':
        out += f.m ? '(?![^\\n])' : '$';
        i++;
        break;
      case '*':
      case '+':
      case '?':
        out += c;
        i++;
        if (p[i] === '?') {
          out += '?';
          i++;
        }
        break;
      case '{': {
        const rep = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
        if (!rep) {
          out += lit(123);
          i++;
          break;
        }
        const min = Number(rep[1]);
        const max = rep[3] === undefined || rep[3] === '' ? min : Number(rep[3]);
        if (min > MAX_REPEAT || max > MAX_REPEAT) fail(`bad repetition operator ${rep[0]} (RE2 allows at most ${MAX_REPEAT})`);
        if (rep[2] !== undefined && rep[3] !== '' && max < min) fail(`bad repetition operator ${rep[0]}`);
        out += rep[0];
        i += rep[0].length;
        if (p[i] === '?') {
          out += '?';
          i++;
        }
        break;
      }
      case '\\': {
        i++;
        const e = p[i];
        if (e === 'd' || e === 'D' || e === 'w' || e === 'W' || e === 'b' || e === 'B') {
          out += `\\${e}`;
          i++;
        } else if (e === 's' || e === 'S') {
          out += `[${rangesBody(e === 's' ? PERL_SPACE : complement(PERL_SPACE))}]`;
          i++;
        } else if (e === 'A') {
          out += '(?<![^])';
          i++;
        } else if (e === 'z') {
          out += '(?![^])';
          i++;
        } else if (e === 'p' || e === 'P') {
          out += unicodeClass();
        } else if (e === 'Q') {
          const end = p.indexOf('\\E', i + 1);
          const text = end < 0 ? p.slice(i + 1) : p.slice(i + 1, end);
          for (const ch of text) out += lit(ch.codePointAt(0)!);
          i = end < 0 ? p.length : end + 2;
        } else if (e === 'E') {
          // A stray \E ends nothing, as in RE2.
          i++;
        } else if (e === 'C') {
          fail('\\C (any byte) is not supported by keymesh\'s proxy');
        } else if (e === 'Z') {
          fail('\\Z is not supported (RE2 has \\z)');
        } else {
          out += lit(charEscape());
        }
        break;
      }
      default: {
        const cp = codePointAt(i);
        out += lit(cp);
        i += width(cp);
      }
    }
  }
  if (frames.length > 1) fail('missing )');
  out += ')'.repeat(top().pending.length);
  return { source: out, groups };
}

/** A substitution (RegexMatchAndSubstitute.substitution) as literal text and group numbers. */
export type Substitution = readonly (string | number)[];

/** Parses an RE2 rewrite string: `\0`..`\9` are groups (at most `groups`), `\\` a backslash. */
export function parseSubstitution(text: string, groups: number): Substitution {
  const pieces: (string | number)[] = [];
  let literal = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '\\') {
      literal += c;
      continue;
    }
    const next = text[++i];
    if (next === '\\') {
      literal += '\\';
    } else if (next !== undefined && next >= '0' && next <= '9') {
      const n = Number(next);
      if (n > groups) throw new Re2SyntaxError(`\\${n} refers to a group the pattern does not have (it has ${groups})`);
      if (literal) pieces.push(literal);
      literal = '';
      pieces.push(n);
    } else {
      throw new Re2SyntaxError(`invalid escape \\${next ?? ''} (only \\0..\\9 and \\\\ are allowed)`);
    }
  }
  if (literal) pieces.push(literal);
  return pieces;
}

/** A compiled RE2 pattern: whole-string matching (Envoy's RE2::FullMatch) and RE2::GlobalReplace. */
export class Re2 {
  readonly pattern: string;
  readonly groups: number;
  readonly #full: RegExp;
  readonly #global: RegExp;

  /** Throws Re2SyntaxError when the pattern is not RE2, or uses what keymesh's proxy cannot reproduce. */
  constructor(pattern: string) {
    const t = translateRe2(pattern);
    this.pattern = pattern;
    this.groups = t.groups;
    try {
      this.#full = new RegExp(`^(?:${t.source})$`, 'u');
      this.#global = new RegExp(t.source, 'gu');
    } catch (e) {
      throw new Re2SyntaxError(`invalid pattern (${(e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /, '')})`);
    }
  }

  /** True when the pattern matches all of `value`. */
  fullMatch(value: string): boolean {
    return this.#full.test(value);
  }

  /**
   * Every match in `value` replaced by the substitution, as RE2::GlobalReplace does it: an empty match right
   * where the previous match ended is skipped (JavaScript's replace would take it).
   */
  replaceAll(value: string, substitution: Substitution): string {
    const re = this.#global;
    let out = '';
    let p = 0;
    let lastEnd = -1;
    let count = 0;
    while (p <= value.length) {
      re.lastIndex = p;
      const m = re.exec(value);
      if (!m) break;
      const start = m.index;
      const end = start + m[0].length;
      if (p < start) out += value.slice(p, start);
      if (start === lastEnd && end === start) {
        if (p < value.length) {
          const w = width(value.codePointAt(p)!);
          out += value.slice(p, p + w);
          p += w;
        } else {
          p++;
        }
        continue;
      }
      for (const piece of substitution) out += typeof piece === 'string' ? piece : (m[piece] ?? '');
      p = end;
      lastEnd = end;
      count++;
    }
    if (count === 0) return value;
    if (p < value.length) out += value.slice(p);
    return out;
  }
}

function width(cp: number): number {
  return cp > 0xffff ? 2 : 1;
}

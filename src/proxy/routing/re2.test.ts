// RE2 patterns carried over to JavaScript: RE2's meaning where the two differ, RE2-only syntax accepted, and
// what RE2 lacks (or keymesh's proxy cannot reproduce) refused with the reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSubstitution, Re2, Re2SyntaxError } from './re2.ts';

function full(pattern: string, cases: [string, boolean][]): void {
  const re = new Re2(pattern);
  for (const [value, expected] of cases) assert.equal(re.fullMatch(value), expected, `${pattern} on ${JSON.stringify(value)}`);
}

test('where RE2 and JavaScript differ, RE2\'s meaning: \\s, ., ^ and $ under (?m), \\A and \\z', () => {
  full('\\s', [[' ', true], ['\t', true], ['\n', true], ['\f', true], ['\r', true], ['\v', false], ['\u00a0', false], ['\u2028', false]]);
  full('\\S', [['\v', true], ['\u00a0', true], [' ', false]]);
  full('[\\s]', [['\v', false], [' ', true]]);
  full('[^\\S]', [[' ', true], ['\v', false], ['a', false]]);
  full('[\\Sa]', [['\v', true], [' ', false]]);
  full('a.b', [['a\rb', true], ['a\u2028b', true], ['a\nb', false]]);
  full('(?s)a.b', [['a\nb', true]]);
  full('(?s:a.)b.', [['a\nbx', true], ['a\nb\n', false]]);
  full('(?m)a$\\n^b', [['a\nb', true]]);
  full('(?m)a$\\r\\n^b', [['a\r\nb', false]]);
  full('\\Aab\\z', [['ab', true]]);
  full('(?m)\\Aa\\n^b\\z', [['a\nb', true]]);
});

test('RE2 syntax JavaScript spells differently: flag groups, named groups, \\Q...\\E, POSIX classes, \\pL, \\x{...}, octal', () => {
  full('(?i)abc', [['ABC', true], ['aBc', true]]);
  full('(?i)a|b', [['A', true], ['B', true]]);
  full('x(?i)a|b', [['xA', true], ['B', true], ['xB', false]]);
  full('a(?i)b(?-i)c', [['aBc', true], ['aBC', false], ['ABc', false]]);
  full('(?i:a)b', [['Ab', true], ['AB', false]]);
  full('(a(?i)b)c', [['aBc', true], ['aBC', false]]);
  full('(?P<first>a)(?<second>b)', [['ab', true]]);
  full('\\Q.*+?\\E', [['.*+?', true], ['a', false]]);
  full('\\Qab', [['ab', true]]);
  full('[[:alpha:]][[:digit:]][[:^space:]]', [['a1x', true], ['a1 ', false], ['11x', false]]);
  full('[[:word:][:punct:]]+', [['a_!', true]]);
  full('\\pL\\p{Lu}\\PN\\p{^N}\\p{Greek}', [['aBxyα', true], ['aB1yα', false]]);
  full('\\x41\\x{42}\\101\\0', [['ABA\0', true]]);
  full('\\a\\f\\t\\v', [['\x07\f\t\v', true]]);
  full('[]a]+[^]]', [[']a]x', true], [']]]', false]]);
  full('[a-]+[-b]', [['a--b', true]]);
  full('[\\d-z]', [['-', true], ['z', true], ['5', true], ['y', false]]);
  full('a{2}b{1,}c{0,2}', [['aabbb', true], ['aabbbcc', true], ['aab', true], ['aabccc', false]]);
  full('a{,2}', [['a{,2}', true], ['aa', false]]);
  full('x{', [['x{', true]]);
  full('a}]', [['a}]', true]]);
  full('\\.\\-\\_\\#\\/\\ ', [['.-_#/ ', true]]);
  full('é+\\x{1F600}', [['éé😀', true]]);
  full('(a|b)*?c', [['ababc', true]]);
  full('', [['', true], ['a', false]]);
});

test('what RE2 does not have, or keymesh\'s proxy cannot reproduce, is refused with the reason', () => {
  const refused: [string, RegExp][] = [
    ['(?=a)', /lookahead and lookbehind/],
    ['a(?!b)', /lookahead and lookbehind/],
    ['(?<=a)b', /lookahead and lookbehind/],
    ['(?<!a)b', /lookahead and lookbehind/],
    ['(a)\\1', /backreference \\1/],
    ['(a)\\9', /backreference \\9/],
    ['(?P<n>a)(?P=n)', /backreferences and recursion/],
    ['\\k<n>', /invalid escape \\k/],
    ['(?>a)', /atomic groups/],
    ['(?#comment)', /comments/],
    ['(?|a)', /branch reset/],
    ['(?U)a*', /U \(ungreedy\) flag/],
    ['\\C', /\\C \(any byte\)/],
    ['a\\Z', /\\Z is not supported/],
    ['\\e', /invalid escape \\e/],
    ['\\cA', /invalid escape \\c/],
    ['\\u0041', /invalid escape \\u/],
    ['\\é', /invalid escape \\é/],
    ['\\p{Klingon}', /unknown Unicode class/],
    ['[[:nope:]]', /invalid character class \[:nope:\]/],
    ['[z-a]', /bad character class range z-a/],
    ['[a-\\d]', /bad character class range/],
    ['[\\b]', /not allowed in a character class/],
    ['a{1001}', /at most 1000/],
    ['a{2,1}', /bad repetition operator \{2,1\}/],
    ['a**', /invalid pattern \(Nothing to repeat\)/],
    ['*a', /invalid pattern/],
    ['(?i', /invalid group|invalid flag group|missing \)/],
    ['(?x)a', /invalid flag x/],
    ['(?i-)a', /invalid flag group/],
    ['(?P<a>x)(?P<a>y)', /duplicate capture group name a/],
    ['(a', /missing \)/],
    ['a)', /unexpected \)/],
    ['[a', /missing \]/],
    ['a\\', /trailing \\/],
    ['\\x4', /invalid \\x escape/],
    ['\\x{110000}', /invalid \\x\{\.\.\.\} escape/],
  ];
  for (const [pattern, message] of refused) {
    assert.throws(() => new Re2(pattern), (e: unknown) => e instanceof Re2SyntaxError && message.test(e.message), pattern);
  }
});

test('substitutions: \\0..\\9 and \\\\ only, groups the pattern has', () => {
  assert.deepEqual(parseSubstitution('/a/\\1-\\0\\\\x', 1), ['/a/', 1, '-', 0, '\\x']);
  assert.deepEqual(parseSubstitution('\\10', 1), [1, '0'], 'one digit per group reference');
  assert.deepEqual(parseSubstitution('', 0), []);
  assert.throws(() => parseSubstitution('\\2', 1), /\\2 refers to a group the pattern does not have \(it has 1\)/);
  assert.throws(() => parseSubstitution('$1', 1) && parseSubstitution('\\$', 1), /invalid escape \\\$/);
  assert.throws(() => parseSubstitution('a\\', 0), /invalid escape \\ /);
  const re = new Re2('(?P<x>a)|b');
  assert.equal(re.groups, 1);
  assert.equal(re.replaceAll('ab', parseSubstitution('[\\1]', 1)), '[a][]', 'a group that did not take part is empty');
  assert.equal(re.replaceAll('$&', parseSubstitution('x', 1)), '$&', 'no JavaScript replacement patterns');
  assert.equal(new Re2('a').replaceAll('aa', ['$1$&']), '$1$&$1$&');
});

test('global replace steps over code points, not UTF-16 units, after an empty match', () => {
  assert.equal(new Re2('x*').replaceAll('😀é', ['-']), '-😀-é-');
});

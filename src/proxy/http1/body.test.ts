// BodyFramer: where each body ends (so the bytes after it, a pipelined message, are left alone), for every
// framing; chunked bodies with extensions and trailers split at every byte offset; every framing error.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BodyFramer, type BodyLimits, DEFAULT_BODY_LIMITS } from './body.ts';
import type { BodyFraming } from './head.ts';
import { expectParseError, outcome } from './testing.ts';

const CHUNKED: BodyFraming = { kind: 'chunked' };
const NEXT = 'GET /next HTTP/1.1\r\n\r\n';

/** Feeds `buf` cut at `cuts`; returns the total bytes taken (a framer takes nothing once done). */
function feedPieces(framer: BodyFramer, buf: Buffer, cuts: readonly number[]): number {
  let taken = 0;
  let start = 0;
  for (const end of [...cuts, buf.length]) {
    const piece = buf.subarray(start, end);
    const n = framer.feed(piece, 0);
    assert.ok(n <= piece.length);
    if (!framer.done) assert.equal(n, piece.length, 'an unfinished body takes every byte it is given');
    taken += n;
    start = end;
  }
  return taken;
}

describe('none, length, close', () => {
  test('none: done at once, takes nothing', () => {
    const f = new BodyFramer({ kind: 'none' });
    assert.equal(f.done, true);
    assert.equal(f.feed(Buffer.from('abc')), 0);
    f.finish();
  });

  test('length: takes exactly n bytes across feeds, leaves the rest', () => {
    const f = new BodyFramer({ kind: 'length', n: 10 });
    assert.equal(f.feed(Buffer.from('0123')), 4);
    assert.equal(f.done, false);
    const buf = Buffer.from(`xx456789${NEXT}`);
    assert.equal(f.feed(buf, 2), 6);
    assert.equal(f.done, true);
    assert.equal(f.bytes, 10);
    assert.equal(f.payloadBytes, 10);
    assert.equal(f.feed(buf, 8), 0);
    assert.equal(new BodyFramer({ kind: 'length', n: 0 }).done, true);
  });

  test('feed respects offset and end', () => {
    const f = new BodyFramer({ kind: 'length', n: 5 });
    const buf = Buffer.from('..abcdefg');
    assert.equal(f.feed(buf, 2, 4), 2);
    assert.equal(f.feed(buf, 4, 4), 0);
    assert.equal(f.feed(buf, 4), 3);
    assert.equal(f.done, true);
  });

  test('close: takes everything; finish() ends it', () => {
    const f = new BodyFramer({ kind: 'close' });
    assert.equal(f.feed(Buffer.from('abc')), 3);
    assert.equal(f.feed(Buffer.from(NEXT)), NEXT.length);
    assert.equal(f.done, false);
    f.finish();
    assert.equal(f.done, true);
    assert.equal(f.payloadBytes, 3 + NEXT.length);
  });

  test('truncated-body when the input ends early', () => {
    const f = new BodyFramer({ kind: 'length', n: 10 });
    f.feed(Buffer.from('abc'));
    expectParseError(() => f.finish(), 'truncated-body', /7 of 10 body bytes missing/);
    const c = new BodyFramer(CHUNKED, undefined, 'response');
    c.feed(Buffer.from('5\r\nab'));
    const e = expectParseError(() => c.finish(), 'truncated-body', /last chunk/);
    assert.equal(e.status, 502);
  });
});

describe('chunked', () => {
  const valid: [string, string, number][] = [
    ['one chunk', '5\r\nhello\r\n0\r\n\r\n', 5],
    ['several chunks, upper/lower hex, leading zeros', 'A\r\n0123456789\r\n00b\r\nabcdefghijk\r\n1\r\n!\r\n000\r\n\r\n', 22],
    ['empty body', '0\r\n\r\n', 0],
    ['extensions: names, tokens, quoted strings with escapes, BWS', '3;a\r\nabc\r\n2;a=b;c="d;e\\"f";g=h \t; i\r\nxy\r\n1 ;x = y\r\nz\r\n0;last="\\\\"\r\n\r\n', 6],
    ['trailers', '4\r\nwiki\r\n0\r\nExpires: never\r\nX-Checksum:  abc  \r\nX-Empty:\r\n\r\n', 4],
    ['chunk data containing CRLFs and a fake last chunk', '9\r\n\r\n0\r\n\r\nab\r\n0\r\n\r\n', 9],
    ['obs-text in extension quotes and trailer values', '1;q="\xe9"\r\nx\r\n0\r\nX: caf\xe9\r\n\r\n', 1],
  ];

  for (const [name, body, payload] of valid) {
    test(`split at every byte offset: ${name}`, () => {
      const buf = Buffer.from(body + NEXT, 'latin1');
      const whole = new BodyFramer(CHUNKED);
      assert.equal(whole.feed(buf), body.length);
      assert.equal(whole.done, true);
      assert.equal(whole.payloadBytes, payload);
      for (let k = 1; k < buf.length; k++) {
        const f: BodyFramer = new BodyFramer(CHUNKED);
        assert.equal(feedPieces(f, buf, [k]), body.length, `cut at ${k}`);
        assert.equal(f.done, true);
        assert.equal(f.bytes, body.length);
        assert.equal(f.payloadBytes, payload);
      }
      // Every pair of cuts, for the small ones.
      if (buf.length <= 64) {
        for (let i = 1; i < buf.length; i++) {
          for (let j = i + 1; j < buf.length; j++) {
            const f: BodyFramer = new BodyFramer(CHUNKED);
            assert.equal(feedPieces(f, buf, [i, j]), body.length, `cuts ${i},${j}`);
          }
        }
      }
      // One byte at a time.
      const f: BodyFramer = new BodyFramer(CHUNKED);
      assert.equal(feedPieces(f, buf, Array.from({ length: buf.length - 1 }, (_, i) => i + 1)), body.length);
    });
  }

  test('a big chunk is skipped without looking at its bytes', () => {
    const data = Buffer.alloc(1 << 20, 0x0a); // a megabyte of LFs: no framing meaning inside data
    const buf = Buffer.concat([Buffer.from('100000\r\n'), data, Buffer.from('\r\n0\r\n\r\n')]);
    const f = new BodyFramer(CHUNKED);
    assert.equal(f.feed(buf), buf.length);
    assert.equal(f.payloadBytes, 1 << 20);
  });

  const bad: [string, string, RegExp][] = [
    ['not hex', 'zz\r\n', /expected a hex chunk size, found 'z'/],
    ['missing size', '\r\n', /expected a hex chunk size, found CR/],
    ['negative size', '-1\r\n', /expected a hex chunk size, found '-'/],
    ['0x prefix', '0x5\r\n', /invalid character 'x' after the chunk size/],
    ['whitespace after size, then CR', '5 \r\nhello\r\n0\r\n\r\n', /whitespace after the chunk size must be followed by ';' \(found CR\)/],
    ['bare LF after size', '5\nhello\r\n0\r\n\r\n', /invalid character LF after the chunk size/],
    ['CR without LF after size', '5\rhello\r\n', /CR not followed by LF after the chunk size/],
    ['size too small (data not followed by CRLF)', '3\r\nhello\r\n0\r\n\r\n', /chunk data is not followed by CRLF \(found 'l'; chunk size too small\?\)/],
    ['bare LF after data', '5\r\nhello\n0\r\n\r\n', /chunk data is not followed by CRLF \(found LF/],
    ['CR LF missing LF after data', '5\r\nhello\rX', /CR not followed by LF after chunk data/],
    ['overflowing size', 'fffffffffffffffff\r\n', /chunk size is too large/],
    ['bare LF in an extension', '5;a=b\nhello\r\n', /invalid character LF in a chunk extension/],
    ['CR in a quoted extension', '5;a="b\rc"\r\n', /invalid character CR in a quoted chunk extension value/],
    ['empty extension name', '5;=b\r\n', /expected a chunk extension name, found '='/],
    ['empty extension value', '5;a=\r\n', /expected a chunk extension value, found CR/],
    ['whitespace then CR after an extension name', '5;a \r\n', /invalid character CR after a chunk extension name/],
    ['junk after a quoted value', '5;a="b"c\r\n', /invalid character 'c' in a chunk extension/],
    ['NUL in an extension', '5;a\x00\r\n', /invalid character NUL in a chunk extension/],
    ['escape of a control char', '5;a="\\\x01"\r\n', /invalid escaped character/],
    ['trailer obs-fold', '0\r\nX: 1\r\n folded\r\n\r\n', /obs-fold/],
    ['trailer without colon', '0\r\nX-Trailer\r\n\r\n', /invalid character CR in a trailer name/],
    ['trailer space before colon', '0\r\nX : 1\r\n\r\n', /whitespace between a trailer name and the colon/],
    ['trailer with bare LF', '0\r\nX: 1\n\r\n', /invalid character LF in a trailer value/],
    ['trailer NUL', '0\r\nX: \x00\r\n\r\n', /invalid character NUL in a trailer value/],
    ['final CR without LF', '0\r\n\rX', /CR not followed by LF at the end of the chunked body/],
    ['trailer CR without LF', '0\r\nX: 1\rX', /CR not followed by LF in the trailer section/],
    ['trailer starting with a non-token', '0\r\n@x: 1\r\n\r\n', /invalid character '@' at the start of a trailer field/],
  ];

  for (const [name, body, re] of bad) {
    test(`bad-chunk: ${name}`, () => {
      const buf = Buffer.from(body, 'latin1');
      const f = new BodyFramer(CHUNKED);
      expectParseError(() => f.feed(buf), 'bad-chunk', re);
      // A failed framer stays failed.
      expectParseError(() => f.feed(Buffer.from('0\r\n\r\n')), 'bad-chunk', re);
      expectParseError(() => f.finish(), 'bad-chunk', re);
      assert.equal(f.done, false);
      // The same error whatever the split.
      for (let k = 1; k < buf.length; k++) {
        const g = new BodyFramer(CHUNKED);
        const o = outcome(() => {
          g.feed(buf.subarray(0, k));
          g.feed(buf.subarray(k));
          return undefined;
        });
        assert.deepEqual(o, { error: 'bad-chunk' }, `cut at ${k}`);
      }
    });
  }

  test('the error points at the offending byte of the buffer fed', () => {
    const f = new BodyFramer(CHUNKED);
    const e = expectParseError(() => f.feed(Buffer.from('xx5\r\nhello\rX'), 2), 'bad-chunk');
    assert.equal(e.at, 11);
    assert.equal(e.status, 400);
  });

  test('limits: chunk-size line length, trailer section size and count', () => {
    const limits: BodyLimits = { maxChunkLineBytes: 16, maxTrailerBytes: 32, maxTrailerCount: 2 };
    const ok = (s: string) => {
      const f = new BodyFramer(CHUNKED, limits);
      assert.equal(f.feed(Buffer.from(s)), s.length);
      assert.equal(f.done, true);
    };
    ok('1;abcdefghijkl\r\nx\r\n0\r\n\r\n'); // 16 bytes with CRLF
    expectParseError(() => new BodyFramer(CHUNKED, limits).feed(Buffer.from('1;abcdefghijklm\r\nx\r\n0\r\n\r\n')), 'bad-chunk', /chunk-size line longer than 16 bytes/);
    expectParseError(() => new BodyFramer(CHUNKED, limits).feed(Buffer.from(`${'0'.repeat(20)}1\r\n`)), 'bad-chunk', /longer than 16 bytes/);
    // Split across feeds, the line is still counted whole.
    const g = new BodyFramer(CHUNKED, limits);
    g.feed(Buffer.from('1;abcdefg'));
    expectParseError(() => g.feed(Buffer.from('hijklm\r\n')), 'bad-chunk', /longer than 16/);
    ok('0\r\nA: 1234567890\r\nB: 1234567890\r\n\r\n'); // 32 bytes of trailers with the final CRLF
    expectParseError(() => new BodyFramer(CHUNKED, limits).feed(Buffer.from('0\r\nA: 1234567890\r\nB: 12345678901\r\n\r\n')), 'trailer-too-large', /trailer section larger than 32 bytes/);
    expectParseError(() => new BodyFramer(CHUNKED, limits).feed(Buffer.from('0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n')), 'trailer-too-large', /more than 2 trailer fields/);
    assert.equal(DEFAULT_BODY_LIMITS.maxChunkLineBytes, 4096);
  });
});

test('reset: one framer serves consecutive bodies on a connection', () => {
  const f = new BodyFramer(CHUNKED);
  expectParseError(() => f.feed(Buffer.from('zz')), 'bad-chunk');
  f.reset({ kind: 'length', n: 3 });
  assert.deepEqual(f.framing, { kind: 'length', n: 3 });
  assert.equal(f.feed(Buffer.from('abcdef')), 3);
  assert.equal(f.done, true);
  f.reset(CHUNKED);
  assert.equal(f.done, false);
  assert.equal(f.bytes, 0);
  assert.equal(f.feed(Buffer.from('1;a\r\nx\r\n0\r\nT: 1\r\n\r\nrest')), 19);
  assert.equal(f.payloadBytes, 1);
  f.reset({ kind: 'none' });
  assert.equal(f.done, true);
});

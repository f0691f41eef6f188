// Request heads: every derived field, the four target forms, pipelining, incremental input split at every
// byte, every error code, request smuggling cases and limits.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isKeymeshError } from '../../errors/index.ts';
import { DEFAULT_HEAD_LIMITS, type HeadLimits, type ParsedRequest } from './head.ts';
import { parseRequestHead } from './parse.ts';
import { expectParseError, msg, outcome } from './testing.ts';

const parse = (buf: Buffer, offset = 0, limits: HeadLimits = DEFAULT_HEAD_LIMITS): ParsedRequest => {
  const r = parseRequestHead(buf, offset, limits);
  assert.ok(r, 'head should be complete');
  return r;
};
const head = (lines: readonly string[]) => parse(msg(lines)).head;

describe('derived fields', () => {
  test('a plain GET', () => {
    const buf = msg(['GET /users/7?x=1 HTTP/1.1', 'Host: api.local:8080', 'User-Agent: curl/8.5', 'accept: */*']);
    const { head: h, end } = parse(buf);
    assert.equal(end, buf.length);
    assert.deepEqual(h, {
      method: 'GET',
      target: '/users/7?x=1',
      form: 'origin',
      scheme: undefined,
      authority: undefined,
      path: '/users/7?x=1',
      version: '1.1',
      headers: ['Host', 'api.local:8080', 'User-Agent', 'curl/8.5', 'accept', '*/*'],
      host: 'api.local:8080',
      contentLength: undefined,
      chunked: false,
      framing: { kind: 'none' },
      keepAlive: true,
      connectionTokens: undefined,
      upgrade: undefined,
      hopByHop: false,
      expectContinue: false,
      forwardedProto: false,
    });
  });

  test('hopByHop and forwardedProto say whether forwarding must rewrite the head', () => {
    for (const field of ['Connection: close', 'keep-alive: timeout=5', 'Proxy-Connection: keep-alive', 'TE: trailers', 'Connection: upgrade\r\nUpgrade: websocket']) {
      const lines = ['GET / HTTP/1.1', 'Host: a', ...field.split('\r\n')];
      assert.equal(head(lines).hopByHop, true, field);
    }
    assert.equal(head(['GET / HTTP/1.1', 'Host: a', 'Tea: x', 'Keep-Alives: 1', 'Transfer-Encoding: chunked']).hopByHop, false);
    assert.equal(head(['GET / HTTP/1.1', 'Host: a', 'X-Forwarded-Proto: https']).forwardedProto, true);
    assert.equal(head(['GET / HTTP/1.1', 'Host: a', 'x-forwarded-proto: http']).hopByHop, false);
    assert.equal(head(['GET / HTTP/1.1', 'Host: a', 'X-Forwarded-For: 1.2.3.4']).forwardedProto, false);
  });

  test('start is the first byte of the request-line, after skipped empty lines', () => {
    const buf = Buffer.from('\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', 'latin1');
    const parsed = parse(buf);
    assert.equal(parsed.start, 4);
    assert.equal(buf.toString('latin1', parsed.start, parsed.end), 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  });

  test('Content-Length frames the body; 0 means no body', () => {
    const h = head(['POST /p HTTP/1.1', 'Host: a', 'Content-Length: 42']);
    assert.equal(h.contentLength, 42);
    assert.deepEqual(h.framing, { kind: 'length', n: 42 });
    const z = head(['POST /p HTTP/1.1', 'Host: a', 'content-length: 0']);
    assert.equal(z.contentLength, 0);
    assert.deepEqual(z.framing, { kind: 'none' });
    assert.equal(head(['POST /p HTTP/1.1', 'Host: a', 'Content-Length: 007']).contentLength, 7);
  });

  test('Transfer-Encoding: chunked (any case, OWS trimmed) frames the body as chunked', () => {
    for (const v of ['chunked', 'Chunked', 'CHUNKED', '  chunked  ', '\tchunked']) {
      const h = head(['POST /p HTTP/1.1', 'Host: a', `Transfer-Encoding:${v}`]);
      assert.equal(h.chunked, true, v);
      assert.deepEqual(h.framing, { kind: 'chunked' });
      assert.equal(h.contentLength, undefined);
    }
  });

  test('keep-alive follows the version and the Connection options', () => {
    const cases: [string, string[], boolean][] = [
      ['1.1', [], true],
      ['1.1', ['Connection: close'], false],
      ['1.1', ['Connection: Keep-Alive, CLOSE'], false],
      ['1.1', ['Connection: keep-alive'], true],
      ['1.0', [], false],
      ['1.0', ['Connection: keep-alive'], true],
      ['1.0', ['Connection: Keep-Alive'], true],
      ['1.0', ['Connection: keep-alive', 'Connection: close'], false],
    ];
    for (const [v, extra, want] of cases) {
      assert.equal(head([`GET / HTTP/${v}`, 'Host: a', ...extra]).keepAlive, want, `${v} ${extra.join('|')}`);
    }
  });

  test('Connection options are listed lowercased, across header lines, empty elements skipped', () => {
    const h = head(['GET / HTTP/1.1', 'Host: a', 'Connection: Keep-Alive , X-Trace', 'connection: ,upgrade,,', 'Upgrade: websocket']);
    assert.deepEqual(h.connectionTokens, ['keep-alive', 'x-trace', 'upgrade']);
  });

  test('upgrade needs Connection: upgrade, and HTTP/1.1', () => {
    assert.equal(head(['GET /ws HTTP/1.1', 'Host: a', 'Connection: Upgrade', 'Upgrade: websocket']).upgrade, 'websocket');
    assert.equal(head(['GET /ws HTTP/1.1', 'Host: a', 'Upgrade: websocket']).upgrade, undefined);
    assert.equal(head(['GET /ws HTTP/1.0', 'Host: a', 'Connection: upgrade', 'Upgrade: websocket']).upgrade, undefined);
    assert.equal(head(['GET /ws HTTP/1.1', 'Host: a', 'Connection: upgrade', 'Upgrade: h2c', 'Upgrade: websocket']).upgrade, 'h2c, websocket');
  });

  test('expectContinue: Expect: 100-continue (any case) on HTTP/1.1 only', () => {
    assert.equal(head(['PUT /f HTTP/1.1', 'Host: a', 'Content-Length: 5', 'Expect: 100-continue']).expectContinue, true);
    assert.equal(head(['PUT /f HTTP/1.1', 'Host: a', 'Content-Length: 5', 'expect: 100-Continue']).expectContinue, true);
    assert.equal(head(['PUT /f HTTP/1.0', 'Content-Length: 5', 'Expect: 100-continue']).expectContinue, false);
    assert.equal(head(['PUT /f HTTP/1.1', 'Host: a', 'Expect: something-else']).expectContinue, false);
  });

  test('values are OWS-trimmed, keep inner whitespace and obs-text; names keep their case; empty values allowed', () => {
    const buf = Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nX-A:  \t one  two \t \r\nX-Empty:\r\nX-Blank:   \r\nX-Latin: caf', 'latin1'), Buffer.from([0xe9, 0xff]), Buffer.from('\r\n\r\n')]);
    const h = parse(buf).head;
    assert.deepEqual(h.headers, ['Host', 'a', 'X-A', 'one  two', 'X-Empty', '', 'X-Blank', '', 'X-Latin', 'caf\u00e9\u00ff']);
  });

  test('empty lines before the request-line are skipped and counted in end', () => {
    const buf = Buffer.from('\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', 'latin1');
    const { head: h, end } = parse(buf);
    assert.equal(h.method, 'GET');
    assert.equal(end, buf.length);
    assert.equal(parseRequestHead(Buffer.from('\r\n\r\n'), 0), undefined);
  });

  test('HTTP/1.0 without Host is fine; host is then undefined', () => {
    const h = head(['GET / HTTP/1.0']);
    assert.equal(h.version, '1.0');
    assert.equal(h.host, undefined);
    assert.deepEqual(h.headers, []);
  });

  test('a head with no header fields at all, on 1.0', () => {
    const buf = Buffer.from('GET / HTTP/1.0\r\n\r\n');
    assert.equal(parse(buf).end, buf.length);
  });

  test('methods: common ones interned, others any token', () => {
    for (const m of ['GET', 'PUT', 'POST', 'HEAD', 'PATCH', 'TRACE', 'DELETE', 'OPTIONS', 'PROPFIND', 'get', 'M-SEARCH']) {
      assert.equal(head([`${m} / HTTP/1.1`, 'Host: a']).method, m);
    }
  });
});

describe('request-target forms', () => {
  test('absolute-form: scheme, authority, path; the authority is the host, over a Host header', () => {
    const h = head(['GET http://Example.com:8080/a/b?c=d HTTP/1.1', 'Host: other.example']);
    assert.equal(h.form, 'absolute');
    assert.equal(h.scheme, 'http');
    assert.equal(h.authority, 'Example.com:8080');
    assert.equal(h.path, '/a/b?c=d');
    assert.equal(h.host, 'Example.com:8080');
    assert.equal(h.target, 'http://Example.com:8080/a/b?c=d');
  });

  test('absolute-form without a path, with a query only, with another scheme, without Host', () => {
    assert.equal(head(['GET HTTPS://h HTTP/1.1']).path, '/');
    assert.equal(head(['GET HTTPS://h HTTP/1.1']).scheme, 'https');
    assert.equal(head(['GET http://h?x=1 HTTP/1.1', 'Host: h']).path, '/?x=1');
    assert.equal(head(['GET ws+v2.x://h/ HTTP/1.1']).scheme, 'ws+v2.x');
    assert.equal(head(['GET http://[::1]:80/p HTTP/1.1']).authority, '[::1]:80');
  });

  test('absolute-form refusals', () => {
    expectParseError(() => head(['GET http://user:pw@h/ HTTP/1.1', 'Host: h']), 'bad-request-line', /userinfo/);
    expectParseError(() => head(['GET http:///x HTTP/1.1', 'Host: h']), 'bad-request-line', /empty authority/);
    expectParseError(() => head(['GET http:/x HTTP/1.1', 'Host: h']), 'bad-request-line', /neither origin-form/);
    expectParseError(() => head(['GET 1http://h/ HTTP/1.1', 'Host: h']), 'bad-request-line', /neither origin-form/);
    expectParseError(() => head(['GET example.com:443 HTTP/1.1', 'Host: h']), 'bad-request-line', /neither origin-form/);
    expectParseError(() => head(['GET http://h:8x/ HTTP/1.1']), 'bad-request-line', /port/);
  });

  test('authority-form for CONNECT', () => {
    const h = head(['CONNECT example.com:443 HTTP/1.1', 'Host: example.com:443']);
    assert.equal(h.form, 'authority');
    assert.equal(h.authority, 'example.com:443');
    assert.equal(h.host, 'example.com:443');
    assert.equal(h.path, '');
    assert.deepEqual(h.framing, { kind: 'none' });
    assert.equal(head(['CONNECT [2001:db8::1]:8443 HTTP/1.1']).authority, '[2001:db8::1]:8443');
    expectParseError(() => head(['CONNECT example.com HTTP/1.1', 'Host: a']), 'bad-request-line', /CONNECT.*no port/);
    expectParseError(() => head(['CONNECT /path HTTP/1.1', 'Host: a']), 'bad-request-line', /CONNECT needs an authority-form/);
    expectParseError(() => head(['CONNECT :443 HTTP/1.1', 'Host: a']), 'bad-request-line', /empty host/);
    expectParseError(() => head(['CONNECT a:443 HTTP/1.1', 'Content-Length: 3']), 'bad-content-length', /CONNECT/);
    expectParseError(() => head(['CONNECT a:443 HTTP/1.1', 'Transfer-Encoding: chunked']), 'bad-transfer-encoding', /CONNECT/);
  });

  test('asterisk-form for OPTIONS only', () => {
    const h = head(['OPTIONS * HTTP/1.1', 'Host: a']);
    assert.equal(h.form, 'asterisk');
    assert.equal(h.path, '*');
    expectParseError(() => head(['GET * HTTP/1.1', 'Host: a']), 'bad-request-line', /only for OPTIONS/);
  });
});

describe('pipelining and incremental input', () => {
  test('requests pipelined in one buffer parse one after another; a partial one is incomplete', () => {
    const buf = Buffer.concat([
      msg(['GET /1 HTTP/1.1', 'Host: a']),
      msg(['POST /2 HTTP/1.1', 'Host: a', 'Content-Length: 3'], 'abc'),
      msg(['GET /3 HTTP/1.1', 'Host: a']),
      Buffer.from('GET /4 HTTP/1.1\r\nHo'),
    ]);
    const first = parse(buf, 0);
    assert.equal(first.head.path, '/1');
    const second = parse(buf, first.end);
    assert.equal(second.head.path, '/2');
    const third = parse(buf, second.end + 3);
    assert.equal(third.head.path, '/3');
    assert.equal(parseRequestHead(buf, third.end), undefined);
  });

  const samples: [string, Buffer][] = [
    ['simple', msg(['GET / HTTP/1.1', 'Host: a'])],
    ['typical', msg(['GET /api/v1/users?id=1 HTTP/1.1', 'Host: users.svc:8080', 'User-Agent: Mozilla/5.0 (X11)', 'Accept: */*', 'Connection: keep-alive', 'X-Request-Id: 1234567890abcdef1234'])],
    ['absolute, chunked, body after', msg(['POST http://h:81/u HTTP/1.1', 'Transfer-Encoding: chunked', 'X-Pad:  \t v \t '], '5\r\nhello\r\n0\r\n\r\n')],
    ['leading CRLF, 1.0', Buffer.concat([Buffer.from('\r\n'), msg(['HEAD /x HTTP/1.0', 'Connection: keep-alive', 'Content-Length: 0'])])],
    ['long values (word scan)', msg(['GET / HTTP/1.1', `Host: ${'h'.repeat(40)}`, `Cookie: ${'c=abcdefgh; '.repeat(30)}`, 'X-Tab: a\tb\tc\td\te\tf\tg\th\ti\tj\tk\tl\tm\tn'])],
  ];

  for (const [name, buf] of samples) {
    test(`split at every byte offset gives the same head (${name})`, () => {
      const whole = parse(buf);
      for (let k = 0; k <= buf.length; k++) {
        const prefix = buf.subarray(0, k);
        const r = parseRequestHead(prefix, 0);
        if (k < whole.end) assert.equal(r, undefined, `prefix of ${k} bytes should be incomplete`);
        else assert.deepEqual(r, whole, `prefix of ${k} bytes`);
        // The same with the resume hint, as a caller that saw `k` bytes before would pass it.
        if (k > 0 && k < whole.end) assert.deepEqual(parseRequestHead(buf, 0, DEFAULT_HEAD_LIMITS, k), whole, `resumeFrom ${k}`);
        // And at an offset inside a bigger buffer (another buffer alignment for the word scan).
        const shifted = Buffer.concat([Buffer.from('xyz'), prefix]);
        const s = parseRequestHead(shifted, 3);
        if (k < whole.end) assert.equal(s, undefined);
        else assert.deepEqual(s, { head: whole.head, start: whole.start + 3, end: whole.end + 3 });
      }
    });
  }

  test('fed one byte at a time with resume hints: undefined until the last byte of the head', () => {
    const buf = samples[1]?.[1] as Buffer;
    let resume: number | undefined;
    for (let k = 1; k <= buf.length; k++) {
      const r = parseRequestHead(buf.subarray(0, k), 0, DEFAULT_HEAD_LIMITS, resume);
      if (k < buf.length) {
        assert.equal(r, undefined);
        resume = k;
      } else assert.equal(r?.end, buf.length);
    }
  });

  test('an error is the same whatever the split, and shows up as soon as its byte arrives (no hint)', () => {
    const bad: [Buffer, string][] = [
      [msg(['GET / HTTP/1.1', 'Host: a', 'X-Bad : 1', 'X-More: 2']), 'bad-header'],
      [Buffer.from('GET / HTTP/1.1\nHost: a\n\n'), 'bad-request-line'],
      [msg(['GET / HTTP/1.1', 'Host: a', 'Content-Length: 1', 'Content-Length: 2']), 'conflicting-length'],
      [msg(['GET / HTTP/3.0', 'Host: a']), 'bad-version'],
    ];
    for (const [buf, code] of bad) {
      let seen = false;
      for (let k = 0; k <= buf.length; k++) {
        const o = outcome(() => parseRequestHead(buf.subarray(0, k), 0));
        if ('error' in o) {
          assert.equal(o.error, code, `prefix ${k}`);
          seen = true;
        } else {
          assert.ok('incomplete' in o, `prefix ${k} parsed although the head is bad`);
          assert.equal(seen, false, 'an error, once seen, stays');
        }
        // With a resume hint the error may come later, but it is the same error once the head is complete.
        if (k > 0 && k < buf.length) {
          const h = outcome(() => parseRequestHead(buf, 0, DEFAULT_HEAD_LIMITS, k));
          assert.deepEqual(h, { error: code }, `resumeFrom ${k}`);
        }
      }
      assert.ok(seen);
    }
  });

  test('a bare LF in new bytes is reported at once even with a resume hint', () => {
    const buf = Buffer.from('GET / HTTP/1.1\r\nHost: a\nX: y');
    expectParseError(() => parseRequestHead(buf, 0, DEFAULT_HEAD_LIMITS, 16), 'bad-header', /bare LF/);
  });
});

describe('errors', () => {
  test('HttpParseError carries a KM_ERR_ code, a status and the byte index', () => {
    const e = expectParseError(() => head(['GET / HTTP/1.1', 'Host: a', 'X-Bad : 1']), 'bad-header');
    assert.equal(e.code, 'KM_ERR_HTTP_BAD_HEADER');
    assert.equal(e.status, 400);
    assert.equal(e.kind, 'bad-request');
    assert.ok(isKeymeshError(e));
    assert.equal(e.at, 'GET / HTTP/1.1\r\nHost: a\r\nX-Bad'.length);
  });

  test('header-too-large (431): complete or not, past maxHeadBytes', () => {
    const limits = { maxHeadBytes: 64, maxHeaderCount: 100 };
    const exact = msg(['GET / HTTP/1.1', `Host: ${'a'.repeat(64 - 'GET / HTTP/1.1\r\nHost: \r\n\r\n'.length)}`]);
    assert.equal(exact.length, 64);
    assert.equal(parse(exact, 0, limits).end, 64);
    const over = msg(['GET / HTTP/1.1', `Host: ${'a'.repeat(65 - 'GET / HTTP/1.1\r\nHost: \r\n\r\n'.length)}`]);
    const e = expectParseError(() => parseRequestHead(over, 0, limits), 'header-too-large', /larger than 64 bytes/);
    assert.equal(e.status, 431);
    assert.equal(e.kind, 'limit-exceeded');
    // Incomplete, but already at the limit: refused without waiting for more.
    expectParseError(() => parseRequestHead(Buffer.from(`GET /${'x'.repeat(100)}`), 0, limits), 'header-too-large');
    assert.equal(parseRequestHead(Buffer.from(`GET /${'x'.repeat(50)}`), 0, limits), undefined);
    // The default is Envoy's 60 KiB.
    const big = msg(['GET / HTTP/1.1', 'Host: a', `X: ${'v'.repeat(60 * 1024)}`]);
    expectParseError(() => parseRequestHead(big, 0), 'header-too-large', /61440/);
    expectParseError(() => parseRequestHead(big, 0, DEFAULT_HEAD_LIMITS, 100), 'header-too-large');
  });

  test('too-many-headers (431)', () => {
    const limits = { maxHeadBytes: 60 * 1024, maxHeaderCount: 3 };
    assert.equal(parse(msg(['GET / HTTP/1.1', 'Host: a', 'A: 1', 'B: 2']), 0, limits).head.headers.length, 6);
    const e = expectParseError(() => parseRequestHead(msg(['GET / HTTP/1.1', 'Host: a', 'A: 1', 'B: 2', 'C: 3']), 0, limits), 'too-many-headers', /more than 3 header fields/);
    assert.equal(e.status, 431);
    const many = ['GET / HTTP/1.1', 'Host: a', ...Array.from({ length: 100 }, (_, i) => `X-${i}: ${i}`)];
    expectParseError(() => head(many), 'too-many-headers', /more than 100/);
    assert.equal(head(many.slice(0, 101)).headers.length, 200);
  });

  test('bad-request-line', () => {
    const cases: [string, RegExp][] = [
      ['GET  / HTTP/1.1\r\nHost: a\r\n\r\n', /more than one SP after the method/],
      ['GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', /malformed HTTP version/],
      ['GET / HTTP/1.1 \r\nHost: a\r\n\r\n', /expected CRLF after the HTTP version/],
      ['GET / HTTP/1.1\nHost: a\r\n\r\n', /bare LF after the HTTP version/],
      ['GET / HTTP/1.1\rHost: a\r\n\r\n', /CR not followed by LF after the HTTP version/],
      ['GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n', /fragment/],
      ['G(T / HTTP/1.1\r\nHost: a\r\n\r\n', /invalid character '\(' in the method/],
      [' GET / HTTP/1.1\r\nHost: a\r\n\r\n', /does not start with a method/],
      ['\nGET / HTTP/1.1\r\nHost: a\r\n\r\n', /does not start with a method \(found LF\)/],
      ['\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n', /CR not followed by LF before the request-line/],
      ['GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n', /invalid character 0x7f in the request-target/],
      ['GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n', /invalid character 0xe9 in the request-target/],
      ['GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n', /invalid character NUL in the request-target/],
      ['GET /\r\nHost: a\r\n\r\n', /no HTTP version/],
      ['GET / http/1.1\r\nHost: a\r\n\r\n', /malformed HTTP version: 'h' where 'H' belongs/],
      ['GET / HTTP/1.x\r\nHost: a\r\n\r\n', /malformed HTTP version: 'x' where a digit belongs/],
      ['GET / HTTP/11\r\nHost: a\r\n\r\n', /malformed HTTP version: '1' where '.' belongs/],
    ];
    for (const [raw, re] of cases) expectParseError(() => parseRequestHead(Buffer.from(raw, 'latin1'), 0), 'bad-request-line', re);
  });

  test('bad-version (505)', () => {
    for (const v of ['2.0', '1.2', '0.9', '3.1']) {
      const e = expectParseError(() => head([`GET / HTTP/${v}`, 'Host: a']), 'bad-version', new RegExp(`HTTP/${v.replace('.', '\\.')}`));
      assert.equal(e.status, 505);
    }
  });

  test('bad-header', () => {
    const cases: [string, RegExp][] = [
      ['X-A : 1', /whitespace between header name 'X-A' and the colon/],
      ['X-A\t: 1', /whitespace between header name 'X-A' and the colon/],
      ['X@A: 1', /invalid character '@' in header name 'X'/],
      [': 1', /empty header name/],
      ['NoColon', /header line without a colon \('NoColon'\)/],
      ['X-A: a\x00b', /invalid character NUL in the value of header 'X-A'/],
      ['X-A: a\rb', /CR not followed by LF in header 'X-A'/],
      ['X-A: a\x0bb', /invalid character 0x0b in the value of header 'X-A'/],
      ['X-A: a\x7fb', /invalid character 0x7f in the value of header 'X-A'/],
      [`X-A: ${'long value '.repeat(4)}\x01 more`, /invalid character 0x01 in the value of header 'X-A'/],
      ['Connection: keep-alive close', /invalid character 'c' in a Connection option/],
      ['Connection: "close"', /invalid character '"' in a Connection option/],
    ];
    for (const [line, re] of cases) expectParseError(() => parseRequestHead(msg(['GET / HTTP/1.1', 'Host: a', line]), 0), 'bad-header', re);
    expectParseError(() => parseRequestHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\n\r\n'), 0), 'bad-header', /bare LF/);
    expectParseError(() => parseRequestHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n'), 0), 'bad-header', /bare LF/);
    expectParseError(() => parseRequestHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\n'), 0), 'bad-header', /bare LF/);
    expectParseError(() => parseRequestHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\rX'), 0), 'bad-header', /CR not followed by LF at the end of the head/);
    expectParseError(() => parseRequestHead(Buffer.from('GET / HTTP/1.1\r\n Host: a\r\n\r\n'), 0), 'bad-header', /whitespace before the first header field/);
    expectParseError(() => parseRequestHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n'), 0), 'bad-header', /obs-fold \(line folding\) after header 'X-A'/);
    expectParseError(() => parseRequestHead(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tfolded\r\n\r\n'), 0), 'bad-header', /obs-fold/);
  });

  test('messages never echo header values', () => {
    const e = expectParseError(() => head(['GET / HTTP/1.1', 'Host: a', 'Authorization: Bearer s3cr3t\x01']), 'bad-header');
    assert.doesNotMatch(e.message, /s3cr3t/);
  });

  test('bad-host', () => {
    expectParseError(() => head(['GET / HTTP/1.1']), 'bad-host', /without a Host header/);
    expectParseError(() => head(['OPTIONS * HTTP/1.1']), 'bad-host', /without a Host header/);
    expectParseError(() => head(['GET / HTTP/1.1', 'Host: a', 'host: b']), 'bad-host', /more than one Host/);
    expectParseError(() => head(['GET http://h/ HTTP/1.1', 'Host: a', 'Host: a']), 'bad-host', /more than one Host/);
    expectParseError(() => head(['GET / HTTP/1.1', 'Host: user@h']), 'bad-host', /userinfo/);
    expectParseError(() => head(['GET / HTTP/1.1', 'Host: h/path']), 'bad-host', /invalid character '\/' in the host/);
    expectParseError(() => head(['GET / HTTP/1.1', 'Host: h h']), 'bad-host', /invalid character SP in the host/);
    expectParseError(() => head(['GET / HTTP/1.1', 'Host: h:8o']), 'bad-host', /invalid character 'o' in the port/);
    expectParseError(() => head(['GET / HTTP/1.1', 'Host: [::1']), 'bad-host', /unterminated IP literal/);
    expectParseError(() => head(['GET / HTTP/1.1', 'Host: [::1]x']), 'bad-host', /after the host/);
    for (const ok of ['', 'a', 'a.b-c_d~e:8080', '[::1]', '[::1]:443', '127.0.0.1:80', 'xn--bcher-kva.example', 'h:']) {
      assert.equal(head(['GET / HTTP/1.1', `Host: ${ok}`]).host, ok);
    }
  });

  test('bad-content-length', () => {
    for (const v of ['abc', '1,1', '1, 1', '+5', '-1', '0x10', '1 2', '99999999999999999999']) {
      expectParseError(() => head(['POST / HTTP/1.1', 'Host: a', `Content-Length: ${v}`]), 'bad-content-length', /Content-Length/);
    }
    expectParseError(() => head(['POST / HTTP/1.1', 'Host: a', 'Content-Length:']), 'bad-content-length', /empty Content-Length/);
    assert.equal(head(['POST / HTTP/1.1', 'Host: a', `Content-Length: ${Number.MAX_SAFE_INTEGER}`]).contentLength, Number.MAX_SAFE_INTEGER);
  });
});

describe('request smuggling defences (RFC 9112 §6.1-6.3)', () => {
  const refuse = (lines: string[], code: string, re?: RegExp) => expectParseError(() => head(['POST /x HTTP/1.1', 'Host: a', ...lines]), code as never, re);

  test('Content-Length together with Transfer-Encoding, in either order', () => {
    refuse(['Content-Length: 5', 'Transfer-Encoding: chunked'], 'conflicting-length', /both Content-Length and Transfer-Encoding/);
    refuse(['Transfer-Encoding: chunked', 'Content-Length: 5'], 'conflicting-length', /both/);
  });

  test('two Content-Length lines, differing or not', () => {
    refuse(['Content-Length: 5', 'Content-Length: 6'], 'conflicting-length', /more than one Content-Length/);
    refuse(['Content-Length: 5', 'content-length: 5'], 'conflicting-length', /more than one Content-Length/);
  });

  test('Transfer-Encoding other than exactly "chunked" (501)', () => {
    for (const v of ['xchunked', 'chunkedx', 'chunked, identity', 'gzip, chunked', 'chunked,', 'identity', 'chunked;q=1', '"chunked"']) {
      const e = refuse([`Transfer-Encoding: ${v}`], 'bad-transfer-encoding', /other than a single "chunked"/);
      assert.equal(e.status, 501);
    }
    refuse(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], 'bad-transfer-encoding', /more than one Transfer-Encoding/);
  });

  test('Transfer-Encoding in HTTP/1.0 (400)', () => {
    const e = expectParseError(() => head(['POST /x HTTP/1.0', 'Transfer-Encoding: chunked']), 'bad-transfer-encoding', /HTTP\/1\.0/);
    assert.equal(e.status, 400);
  });

  test('whitespace before the colon, obs-fold and control bytes around framing headers', () => {
    refuse(['Transfer-Encoding : chunked'], 'bad-header', /whitespace between header name 'Transfer-Encoding' and the colon/);
    refuse(['Content-Length\t: 5'], 'bad-header', /whitespace between/);
    expectParseError(() => parseRequestHead(Buffer.from('POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n'), 0), 'bad-header', /obs-fold/);
    refuse(['Transfer-Encoding: chunked\x0b'], 'bad-header', /0x0b/);
    refuse(['Transfer-Encoding: \x00chunked'], 'bad-header', /NUL/);
    expectParseError(() => parseRequestHead(Buffer.from('POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\rContent-Length: 5\r\n\r\n'), 0), 'bad-header', /CR not followed by LF/);
    expectParseError(() => parseRequestHead(Buffer.from('POST /x HTTP/1.1\r\nHost: a\r\nX: 1\nContent-Length: 5\r\n\r\n'), 0), 'bad-header', /bare LF/);
  });
});

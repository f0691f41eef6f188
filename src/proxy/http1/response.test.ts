// Response heads: the status line, body framing per RFC 9112 §6.3 (HEAD, 1xx, 204, 304, CONNECT, chunked,
// Content-Length, close-delimited), keep-alive, errors (502), pipelined responses and split input.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BodyFramer } from './body.ts';
import type { ParsedResponse } from './head.ts';
import { parseResponseHead } from './parse.ts';
import { expectParseError, msg } from './testing.ts';

const parse = (buf: Buffer, method = 'GET', offset = 0): ParsedResponse => {
  const r = parseResponseHead(buf, offset, method);
  assert.ok(r, 'head should be complete');
  return r;
};
const head = (lines: readonly string[], method = 'GET') => parse(msg(lines), method).head;

describe('status line and derived fields', () => {
  test('a plain 200', () => {
    const buf = msg(['HTTP/1.1 200 OK', 'Content-Type: text/plain', 'Content-Length: 5'], 'hello');
    const { head: h, end } = parse(buf);
    assert.equal(end, buf.length - 5);
    assert.deepEqual(h, {
      status: 200,
      reason: 'OK',
      version: '1.1',
      headers: ['Content-Type', 'text/plain', 'Content-Length', '5'],
      contentLength: 5,
      chunked: false,
      framing: { kind: 'length', n: 5 },
      keepAlive: true,
      connectionTokens: undefined,
      upgrade: undefined,
      hopByHop: false,
      tunnel: false,
    });
  });

  test('hopByHop says whether forwarding must rewrite the head', () => {
    assert.equal(head(['HTTP/1.1 200 OK', 'Connection: keep-alive', 'Content-Length: 0']).hopByHop, true);
    assert.equal(head(['HTTP/1.1 200 OK', 'Keep-Alive: timeout=5', 'Content-Length: 0']).hopByHop, true);
    assert.equal(head(['HTTP/1.1 200 OK', 'Server: x', 'Content-Length: 0']).hopByHop, false);
  });

  test('reason phrases: several words, empty, missing SP, obs-text', () => {
    assert.equal(head(['HTTP/1.1 404 Not Found Here', 'Content-Length: 0']).reason, 'Not Found Here');
    assert.equal(head(['HTTP/1.1 200 ', 'Content-Length: 0']).reason, '');
    assert.equal(head(['HTTP/1.1 200', 'Content-Length: 0']).reason, '');
    assert.equal(head(['HTTP/1.1 200 \xc7a va', 'Content-Length: 0']).reason, '\u00c7a va');
    assert.equal(head(['HTTP/1.0 599 Custom', 'Content-Length: 0']).status, 599);
  });

  test('keep-alive: version default, Connection, and never after a close-delimited body', () => {
    assert.equal(head(['HTTP/1.1 200 OK', 'Content-Length: 1']).keepAlive, true);
    assert.equal(head(['HTTP/1.1 200 OK', 'Content-Length: 1', 'Connection: close']).keepAlive, false);
    assert.equal(head(['HTTP/1.0 200 OK', 'Content-Length: 1']).keepAlive, false);
    assert.equal(head(['HTTP/1.0 200 OK', 'Content-Length: 1', 'Connection: keep-alive']).keepAlive, true);
    assert.equal(head(['HTTP/1.1 200 OK']).keepAlive, false);
    assert.deepEqual(head(['HTTP/1.1 200 OK', 'Connection: keep-alive, X-Hop', 'Content-Length: 1']).connectionTokens, ['keep-alive', 'x-hop']);
  });
});

describe('body framing (RFC 9112 §6.3)', () => {
  test('no body after HEAD, whatever the headers say', () => {
    const h = head(['HTTP/1.1 200 OK', 'Content-Length: 1234'], 'HEAD');
    assert.deepEqual(h.framing, { kind: 'none' });
    assert.equal(h.contentLength, 1234);
    assert.deepEqual(head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked'], 'HEAD').framing, { kind: 'none' });
    assert.equal(head(['HTTP/1.1 200 OK'], 'HEAD').keepAlive, true);
  });

  test('no body for 1xx, 204 and 304', () => {
    for (const status of [100, 102, 103, 204, 304]) {
      const h = head([`HTTP/1.1 ${status} X`, 'Content-Length: 10']);
      assert.deepEqual(h.framing, { kind: 'none' }, String(status));
      assert.equal(h.keepAlive, true);
      assert.equal(h.tunnel, false);
    }
    assert.deepEqual(head(['HTTP/1.1 204 No Content']).framing, { kind: 'none' });
    assert.deepEqual(head(['HTTP/1.1 304 Not Modified', 'Transfer-Encoding: chunked']).framing, { kind: 'none' });
  });

  test('101 Switching Protocols: a tunnel, with the Upgrade value', () => {
    const h = head(['HTTP/1.1 101 Switching Protocols', 'Connection: Upgrade', 'Upgrade: websocket']);
    assert.equal(h.tunnel, true);
    assert.equal(h.upgrade, 'websocket');
    assert.deepEqual(h.framing, { kind: 'none' });
    assert.equal(h.keepAlive, false);
    assert.equal(head(['HTTP/1.1 200 OK', 'Upgrade: h2c', 'Content-Length: 0']).upgrade, undefined);
  });

  test('a 2xx to CONNECT is a tunnel; a refusal has a normal body', () => {
    const ok = head(['HTTP/1.1 200 Connection Established'], 'CONNECT');
    assert.equal(ok.tunnel, true);
    assert.deepEqual(ok.framing, { kind: 'none' });
    const no = head(['HTTP/1.1 407 Proxy Authentication Required', 'Content-Length: 3'], 'CONNECT');
    assert.equal(no.tunnel, false);
    assert.deepEqual(no.framing, { kind: 'length', n: 3 });
  });

  test('chunked, Content-Length, Content-Length: 0, and close-delimited', () => {
    assert.deepEqual(head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']).framing, { kind: 'chunked' });
    assert.deepEqual(head(['HTTP/1.1 200 OK', 'Content-Length: 9']).framing, { kind: 'length', n: 9 });
    assert.deepEqual(head(['HTTP/1.1 200 OK', 'Content-Length: 0']).framing, { kind: 'none' });
    assert.deepEqual(head(['HTTP/1.1 200 OK']).framing, { kind: 'close' });
    assert.deepEqual(head(['HTTP/1.0 200 OK']).framing, { kind: 'close' });
    assert.deepEqual(head(['HTTP/1.1 500 Oops', 'Connection: close']).framing, { kind: 'close' });
  });

  test('a close-delimited body takes everything until finish()', () => {
    const { head: h, end } = parse(msg(['HTTP/1.0 200 OK'], 'all of this, and HTTP/1.1 200 OK too'));
    const f = new BodyFramer(h.framing, undefined, 'response');
    const rest = msg(['HTTP/1.0 200 OK'], 'all of this, and HTTP/1.1 200 OK too');
    assert.equal(f.feed(rest, end), rest.length - end);
    assert.equal(f.done, false);
    f.finish();
    assert.equal(f.done, true);
  });
});

describe('pipelined responses and split input', () => {
  test('100 Continue, then the final response, then the next one, in one buffer', () => {
    const buf = Buffer.concat([
      msg(['HTTP/1.1 100 Continue']),
      msg(['HTTP/1.1 200 OK', 'Content-Length: 2'], 'ok'),
      msg(['HTTP/1.1 204 No Content']),
    ]);
    const a = parse(buf, 'PUT');
    assert.equal(a.head.status, 100);
    const b = parse(buf, 'PUT', a.end);
    assert.equal(b.head.status, 200);
    const f = new BodyFramer(b.head.framing);
    assert.equal(f.feed(buf, b.end), 2);
    const c = parse(buf, 'PUT', b.end + 2);
    assert.equal(c.head.status, 204);
    assert.equal(c.end, buf.length);
  });

  test('split at every byte offset gives the same head', () => {
    const buf = msg(['HTTP/1.1 200 OK', 'Date: Mon, 23 Nov 2026 14:19:00 GMT', 'Content-Type: application/json; charset=utf-8', 'Transfer-Encoding: chunked', 'Cache-Control: no-cache, no-store'], '0\r\n\r\n');
    const whole = parse(buf);
    for (let k = 0; k <= buf.length; k++) {
      const r = parseResponseHead(buf.subarray(0, k), 0, 'GET');
      if (k < whole.end) assert.equal(r, undefined, `prefix ${k}`);
      else assert.deepEqual(r, whole);
      if (k > 0 && k < whole.end) assert.deepEqual(parseResponseHead(buf, 0, 'GET', undefined, k), whole, `resumeFrom ${k}`);
    }
  });
});

describe('errors (502: the upstream is at fault)', () => {
  test('bad-status-line', () => {
    const cases: [string, RegExp][] = [
      ['HTTP/1.1 20 OK', /status code must be three digits \(found SP\)/],
      ['HTTP/1.1 2000 OK', /expected CRLF after the status code, found '0'/],
      ['HTTP/1.1 099 Low', /below 100/],
      ['HTTP/1.1  200 OK', /status code must be three digits \(found SP\)/],
      ['HTTP/1.1\t200 OK', /expected SP after the HTTP version, found HTAB/],
      ['http/1.1 200 OK', /malformed HTTP version/],
      ['HTTP/2 200', /malformed HTTP version: SP where '\.' belongs/],
      ['HTTP/1.1 200 OK\x00', /expected CRLF after the reason phrase, found NUL/],
      ['HTTP/1.1 200 OK\n', /bare LF after the reason phrase/],
    ];
    for (const [line, re] of cases) {
      const e = expectParseError(() => parseResponseHead(Buffer.from(`${line}\r\nContent-Length: 0\r\n\r\n`, 'latin1'), 0, 'GET'), 'bad-status-line', re);
      assert.equal(e.status, 502);
    }
  });

  test('bad-version', () => {
    const e = expectParseError(() => head(['HTTP/1.2 200 OK']), 'bad-version', /HTTP\/1\.2/);
    assert.equal(e.status, 502);
  });

  test('framing conflicts and unsupported transfer codings', () => {
    expectParseError(() => head(['HTTP/1.1 200 OK', 'Content-Length: 1', 'Transfer-Encoding: chunked']), 'conflicting-length', /response splitting/);
    expectParseError(() => head(['HTTP/1.1 200 OK', 'Content-Length: 1', 'Content-Length: 1']), 'conflicting-length');
    const e = expectParseError(() => head(['HTTP/1.1 200 OK', 'Transfer-Encoding: gzip, chunked']), 'bad-transfer-encoding');
    assert.equal(e.status, 502);
    expectParseError(() => head(['HTTP/1.0 200 OK', 'Transfer-Encoding: chunked']), 'bad-transfer-encoding', /HTTP\/1\.0 response/);
    expectParseError(() => head(['HTTP/1.1 200 OK', 'Content-Length: x']), 'bad-content-length');
    expectParseError(() => head(['HTTP/1.1 200 OK', 'Bad Header: x']), 'bad-header', /whitespace between header name 'Bad'|invalid character SP/);
  });

  test('header-too-large and too-many-headers', () => {
    const limits = { maxHeadBytes: 60, maxHeaderCount: 2 };
    expectParseError(() => parseResponseHead(msg(['HTTP/1.1 200 OK', `X: ${'v'.repeat(60)}`]), 0, 'GET', limits), 'header-too-large', /response head is larger than 60 bytes/);
    expectParseError(() => parseResponseHead(msg(['HTTP/1.1 200 OK', 'A: 1', 'B: 2', 'C: 3']), 0, 'GET', limits), 'too-many-headers');
  });

  test('no leniency for empty lines before a status line', () => {
    expectParseError(() => parseResponseHead(Buffer.from('\r\nHTTP/1.1 200 OK\r\n\r\n'), 0, 'GET'), 'bad-status-line', /malformed HTTP version: CR/);
  });
});

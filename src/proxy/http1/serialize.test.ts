// Head serialization for forwarding (hop-by-hop removal, edits, absolute-form Host) and local replies.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InternalError } from '../../errors/index.ts';
import { BodyFramer } from './body.ts';
import { parseRequestHead, parseResponseHead } from './parse.ts';
import { CONTINUE_100, localReply, rawHeadWithout, serializeRequestHead, serializeResponseHead, type RequestHeadEdits, type ResponseHeadEdits } from './serialize.ts';
import { msg } from './testing.ts';

const req = (lines: readonly string[]) => {
  const r = parseRequestHead(msg(lines), 0);
  assert.ok(r);
  return r.head;
};
const res = (lines: readonly string[], method = 'GET') => {
  const r = parseResponseHead(msg(lines), 0, method);
  assert.ok(r);
  return r.head;
};
const forward = (lines: readonly string[], edits?: RequestHeadEdits) => serializeRequestHead(req(lines), edits).toString('latin1');
const forwardResponse = (lines: readonly string[], edits?: ResponseHeadEdits) => serializeResponseHead(res(lines), edits).toString('latin1');

describe('serializeRequestHead', () => {
  test('without edits: the same head, as HTTP/1.1, with case and order kept', () => {
    assert.equal(forward(['GET /a?b HTTP/1.1', 'Host: h', 'X-Case: V', 'accept: */*']), 'GET /a?b HTTP/1.1\r\nHost: h\r\nX-Case: V\r\naccept: */*\r\n\r\n');
    assert.equal(forward(['POST /a HTTP/1.0', 'Content-Length: 3']), 'POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\n');
  });

  test('hop-by-hop fields are dropped: Connection, Keep-Alive, Proxy-Connection, TE, Upgrade, and those Connection names', () => {
    const out = forward([
      'GET / HTTP/1.1',
      'Host: h',
      'Connection: keep-alive, X-Hop, x-other',
      'Keep-Alive: timeout=5',
      'Proxy-Connection: keep-alive',
      'TE: gzip',
      'Upgrade: websocket',
      'X-Hop: 1',
      'X-Other: 2',
      'X-End: 3',
    ]);
    assert.equal(out, 'GET / HTTP/1.1\r\nHost: h\r\nX-End: 3\r\n\r\n');
  });

  test('TE offering trailers is forwarded as `te: trailers`, once', () => {
    assert.equal(forward(['GET / HTTP/1.1', 'Host: h', 'TE: gzip;q=0.5, Trailers']), 'GET / HTTP/1.1\r\nHost: h\r\nte: trailers\r\n\r\n');
    assert.equal(forward(['GET / HTTP/1.1', 'Host: h', 'te: trailers', 'TE: trailers']), 'GET / HTTP/1.1\r\nHost: h\r\nte: trailers\r\n\r\n');
  });

  test('Connection cannot make the proxy drop Host, Content-Length or Transfer-Encoding (smuggling defence)', () => {
    assert.equal(
      forward(['POST / HTTP/1.1', 'Host: h', 'Connection: Content-Length, host', 'Content-Length: 3']),
      'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n',
    );
    assert.equal(
      forward(['POST / HTTP/1.1', 'Host: h', 'Connection: transfer-encoding', 'Transfer-Encoding: chunked']),
      'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
  });

  test('an accepted upgrade keeps Upgrade and says connection: upgrade', () => {
    const lines = ['GET /ws HTTP/1.1', 'Host: h', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Key: k'];
    assert.equal(forward(lines, { connection: 'upgrade' }), 'GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\nconnection: upgrade\r\n\r\n');
    assert.equal(forward(lines), 'GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\n\r\n');
  });

  test('edits: target, set (in place or appended, any case), remove, connection', () => {
    const lines = ['GET /api/v1/users HTTP/1.1', 'Host: outside', 'X-Request-Id: client-chosen', 'Authorization: secret', 'x-request-id: again', 'Accept: */*'];
    const out = forward(lines, {
      target: '/users',
      set: ['host', 'users.internal:8080', 'X-Request-ID', 'abc', 'x-forwarded-proto', 'https', 'x-envoy-expected-rq-timeout-ms', '15000'],
      remove: ['AUTHORIZATION'],
      connection: 'close',
    });
    assert.equal(
      out,
      'GET /users HTTP/1.1\r\nhost: users.internal:8080\r\nX-Request-ID: abc\r\nAccept: */*\r\nx-forwarded-proto: https\r\nx-envoy-expected-rq-timeout-ms: 15000\r\nconnection: close\r\n\r\n',
    );
  });

  test('a removed name that is also set: set wins', () => {
    assert.equal(forward(['GET / HTTP/1.1', 'Host: h', 'X: 1'], { remove: ['x'], set: ['x', '2'] }), 'GET / HTTP/1.1\r\nHost: h\r\nx: 2\r\n\r\n');
  });

  test('absolute-form: Host becomes the authority (first), the target can turn into origin-form', () => {
    const lines = ['GET http://svc.mesh:9000/p?q=1 HTTP/1.1', 'User-Agent: x', 'Host: evil.example'];
    assert.equal(forward(lines, { target: req(lines).path }), 'GET /p?q=1 HTTP/1.1\r\nhost: svc.mesh:9000\r\nUser-Agent: x\r\n\r\n');
    assert.equal(forward(lines), 'GET http://svc.mesh:9000/p?q=1 HTTP/1.1\r\nhost: svc.mesh:9000\r\nUser-Agent: x\r\n\r\n');
    assert.equal(forward(lines, { target: '/p', set: ['Host', 'chosen'] }), 'GET /p HTTP/1.1\r\nUser-Agent: x\r\nHost: chosen\r\n\r\n');
  });

  test('the forwarded head parses back to the same request, minus hop-by-hop fields', () => {
    const lines = ['PUT /f HTTP/1.1', 'Host: h', 'Content-Length: 5', 'Connection: x-a', 'X-A: 1', 'X-B: caf\xe9', 'Expect: 100-continue'];
    const h = req(lines);
    const again = parseRequestHead(serializeRequestHead(h), 0);
    assert.ok(again);
    assert.deepEqual(again.head.headers, ['Host', 'h', 'Content-Length', '5', 'X-B', 'caf\u00e9', 'Expect', '100-continue']);
    assert.deepEqual(again.head.framing, h.framing);
    assert.equal(again.head.expectContinue, true);
  });

  test('bad edits are refused with InternalError (they would inject or break framing)', () => {
    const h = req(['POST / HTTP/1.1', 'Host: h', 'Content-Length: 1']);
    const bad: [RequestHeadEdits, RegExp][] = [
      [{ set: ['x', 'a\r\nInjected: 1'] }, /value for x/],
      [{ set: ['x', 'a\nb'] }, /value for x/],
      [{ set: ['x', 'nul\x00'] }, /value for x/],
      [{ set: ['x', ' padded'] }, /surrounding whitespace/],
      [{ set: ['x', '\u20ac'] }, /non-latin1/],
      [{ set: ['bad name', 'v'] }, /not a valid header name/],
      [{ set: ['', 'v'] }, /not a valid header name/],
      [{ set: ['x'] }, /flat \[name, value/],
      [{ set: ['Connection', 'close'] }, /hop-by-hop/],
      [{ set: ['content-length', '2'] }, /frames the body/],
      [{ set: ['Transfer-Encoding', 'chunked'] }, /frames the body/],
      [{ remove: ['Content-Length'] }, /frames the body/],
      [{ target: '/a b' }, /request-target: character 2/],
      [{ target: '/a#f' }, /request-target/],
      [{ target: '' }, /empty request-target/],
      [{ set: Array.from({ length: 64 }, (_, i) => (i % 2 ? 'v' : `x-${i}`)) }, /at most 31/],
    ];
    for (const [edits, re] of bad) assert.throws(() => serializeRequestHead(h, edits), (e: unknown) => e instanceof InternalError && re.test(e.message), JSON.stringify(edits));
  });
});

describe('serializeResponseHead', () => {
  test('status line as HTTP/1.1, hop-by-hop fields dropped, edits applied', () => {
    assert.equal(
      forwardResponse(['HTTP/1.0 200 OK', 'Content-Length: 2', 'Connection: keep-alive', 'Keep-Alive: timeout=5', 'Server: origin'], { set: ['server', 'keymesh'], connection: 'keep-alive' }),
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nserver: keymesh\r\nconnection: keep-alive\r\n\r\n',
    );
    assert.equal(forwardResponse(['HTTP/1.1 204 ']), 'HTTP/1.1 204 \r\n\r\n');
    assert.equal(forwardResponse(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked', 'Connection: transfer-encoding']), 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
  });

  test('101 keeps Upgrade only when the proxy goes along with it', () => {
    const lines = ['HTTP/1.1 101 Switching Protocols', 'Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Accept: a'];
    assert.equal(forwardResponse(lines, { connection: 'upgrade' }), 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: a\r\nconnection: upgrade\r\n\r\n');
  });
});

describe('localReply', () => {
  const read = (buf: Buffer, method = 'GET') => {
    const r = parseResponseHead(buf, 0, method);
    assert.ok(r);
    const f = new BodyFramer(r.head.framing);
    const n = f.feed(buf, r.end);
    assert.equal(f.done, true);
    assert.equal(r.end + n, buf.length, 'nothing after the body');
    return { head: r.head, body: buf.toString('utf8', r.end, r.end + n) };
  };

  test('Envoy-style local replies with Content-Length and text/plain', () => {
    const cases: [number, string, string][] = [
      [503, 'no healthy upstream', 'Service Unavailable'],
      [504, 'upstream request timeout', 'Gateway Timeout'],
      [404, '', 'Not Found'],
      [400, 'Bad Request', 'Bad Request'],
      [431, '', 'Request Header Fields Too Large'],
      [413, 'Payload Too Large', 'Content Too Large'],
    ];
    for (const [status, body, reason] of cases) {
      const { head, body: got } = read(localReply({ status, body }));
      assert.equal(head.status, status);
      assert.equal(head.reason, reason);
      assert.equal(got, body);
      assert.equal(head.contentLength, Buffer.byteLength(body));
      assert.equal(head.keepAlive, true);
      const ct = head.headers.indexOf('content-type');
      assert.equal(ct >= 0, body.length > 0);
      if (ct >= 0) assert.equal(head.headers[ct + 1], 'text/plain');
    }
    assert.equal(localReply({ status: 503, body: 'no healthy upstream' }).toString(), 'HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 19\r\n\r\nno healthy upstream');
  });

  test('close, extra headers, content type, UTF-8 body, HEAD, bodyless statuses', () => {
    const { head, body } = read(localReply({ status: 400, body: 'ungültig', close: true, contentType: 'text/plain; charset=utf-8', headers: ['x-envoy-upstream-service-time', '0'] }));
    assert.equal(head.keepAlive, false);
    assert.equal(body, 'ungültig');
    assert.equal(head.contentLength, 9);
    assert.deepEqual(head.headers, ['content-type', 'text/plain; charset=utf-8', 'content-length', '9', 'x-envoy-upstream-service-time', '0', 'connection', 'close']);
    const h = localReply({ status: 503, body: 'no healthy upstream', headRequest: true });
    assert.equal(h.toString(), 'HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 19\r\n\r\n');
    assert.equal(read(h, 'HEAD').body, '');
    assert.equal(localReply({ status: 204, body: 'ignored' }).toString(), 'HTTP/1.1 204 No Content\r\n\r\n');
    assert.equal(localReply({ status: 299 }).toString(), 'HTTP/1.1 299 Unknown\r\ncontent-length: 0\r\n\r\n');
    assert.throws(() => localReply({ status: 99 }), InternalError);
    assert.throws(() => localReply({ status: 200, headers: ['content-length', '5'] }), /frames the body/);
    assert.throws(() => localReply({ status: 200, reason: 'bad\r\n' }), InternalError);
  });

  test('CONTINUE_100 is an interim response', () => {
    const r = parseResponseHead(CONTINUE_100, 0, 'PUT');
    assert.equal(r?.head.status, 100);
    assert.equal(r?.end, CONTINUE_100.length);
  });
});

describe('rawHeadWithout', () => {
  const XFP = Buffer.from('x-forwarded-proto: https\r\n', 'latin1');
  /** The fields of a serialized head, each name lowercased, sorted: what a recipient sees, field order aside. */
  const fields = (text: string) => text.split('\r\n').slice(1).filter((l) => l !== '').map((l) => {
    const i = l.indexOf(':');
    return `${l.slice(0, i).toLowerCase()}:${l.slice(i + 1).trim()}`;
  }).sort();
  const heads: readonly (readonly string[])[] = [
    ['GET /a HTTP/1.1', 'Host: h'],
    ['GET /a HTTP/1.1', 'Host: h', 'Connection: keep-alive', 'Keep-Alive: timeout=5', 'Accept: */*'],
    ['GET /a HTTP/1.1', 'Host: h', 'X-Forwarded-Proto: http', 'accept: */*', 'x-forwarded-proto: http'],
    ['GET /a HTTP/1.1', 'Connection: x-secret, close', 'Host: h', 'X-Secret: 1', 'Proxy-Connection: keep-alive', 'Upgrade: h2c'],
    ['POST /b HTTP/1.1', 'Host: h', 'Content-Length: 3', 'Connection: Content-Length'],
  ];

  test('gives the fields serializing gives (X-Forwarded-Proto replaced, hop-by-hop dropped), from the bytes received', () => {
    for (const lines of heads) {
      const raw = msg(lines);
      const head = req(lines);
      const out = rawHeadWithout(raw, head.headers, head.connectionTokens, 'x-forwarded-proto', XFP);
      assert.ok(out, lines.join(' | '));
      const text = out.toString('latin1');
      assert.ok(text.startsWith(`${lines[0]}\r\n`) && text.endsWith('\r\n\r\n'), text);
      assert.deepEqual(fields(text), fields(forward(lines, { set: ['x-forwarded-proto', 'https'] })), lines.join(' | '));
      // And the result parses as a head again, its body framing unchanged.
      const again = parseRequestHead(out, 0);
      assert.ok(again);
      assert.deepEqual(again.head.framing, head.framing);
    }
  });

  test('responses: Connection: keep-alive dropped, the rest byte for byte, body bytes after it in the same buffer', () => {
    const lines = ['HTTP/1.1 200 OK', 'Server: nginx', 'Content-Length: 3', 'Connection: keep-alive', 'X-A: b'];
    const head = res(lines);
    const out = rawHeadWithout(msg(lines), head.headers, head.connectionTokens, undefined, undefined, Buffer.from('ok\n'));
    assert.equal(out?.toString('latin1'), 'HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 3\r\nX-A: b\r\n\r\nok\n');
    assert.deepEqual(fields(out!.toString('latin1').slice(0, -3)), fields(forwardResponse(lines)));
  });

  test('a TE field needs serializing (it is rewritten, not dropped): undefined', () => {
    const lines = ['GET / HTTP/1.1', 'Host: h', 'TE: trailers', 'Connection: te'];
    const head = req(lines);
    assert.equal(rawHeadWithout(msg(lines), head.headers, head.connectionTokens, 'x-forwarded-proto', XFP), undefined);
  });
});

// The mux hop's framing (frames.ts) and the ALPN a TLS HTTP listener selects (alpn.ts): pure functions, tested
// by value. The reader must give the same frames however TCP cut the bytes, and refuse a bad header before its
// payload is awaited.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectHttpAlpn, type HttpCodec } from './alpn.ts';
import {
  DATA, END, FrameReader, GOAWAY, HEADER_BYTES, MAX_DATA_PAYLOAD, MUX_ALPN, MuxProtocolError, RESET, u32Payload, WINDOW, writeHeader, type FrameType,
} from './frames.ts';

interface Seen { type: FrameType; stream: number; payload: string }

function frame(type: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  writeHeader(b, 0, type as FrameType, stream, payload.length);
  return Buffer.concat([b, payload]);
}

function reader(): { r: FrameReader; seen: Seen[] } {
  const seen: Seen[] = [];
  // Payloads may be views of the chunk pushed: copied out (as hex) when seen, as a consumer must.
  const r = new FrameReader({ frame: (type, stream, payload) => seen.push({ type, stream, payload: payload.toString('hex') }) });
  return { r, seen };
}

const STREAM: Buffer = Buffer.concat([
  frame(DATA, 1, Buffer.from('GET / HTTP/1.1\r\n\r\n')),
  frame(WINDOW, 1, u32Payload(131072)),
  frame(DATA, 3, Buffer.from([0, 1, 2, 255])),
  frame(END, 1),
  frame(DATA, 5, Buffer.alloc(0)),
  frame(RESET, 3, u32Payload(1)),
  frame(GOAWAY, 0, u32Payload(5)),
  frame(DATA, 7, Buffer.alloc(300, 0xab)),
]);

const EXPECTED: Seen[] = [
  { type: DATA, stream: 1, payload: Buffer.from('GET / HTTP/1.1\r\n\r\n').toString('hex') },
  { type: WINDOW, stream: 1, payload: '00020000' },
  { type: DATA, stream: 3, payload: '000102ff' },
  { type: END, stream: 1, payload: '' },
  { type: DATA, stream: 5, payload: '' },
  { type: RESET, stream: 3, payload: '00000001' },
  { type: GOAWAY, stream: 0, payload: '00000005' },
  { type: DATA, stream: 7, payload: 'ab'.repeat(300) },
];

test('header encoding: type, stream id and length big-endian in 9 bytes; u32 payloads', () => {
  const b = Buffer.alloc(HEADER_BYTES + 2, 0xee);
  writeHeader(b, 2, WINDOW, 0x01020304, 0xa0b0c0d0);
  assert.equal(b.toString('hex'), 'eeee' + '03' + '01020304' + 'a0b0c0d0');
  writeHeader(b, 0, DATA, 0x7ffffffe, 0);
  assert.equal(b.subarray(0, 9).toString('hex'), '00' + '7ffffffe' + '00000000');
  assert.equal(u32Payload(0xffffffff).toString('hex'), 'ffffffff');
  assert.equal(u32Payload(-1).toString('hex'), 'ffffffff', 'unsigned, as on the wire');
  assert.equal(u32Payload(262144).toString('hex'), '00040000');
});

test('FrameReader: the same frames in one chunk, split at every point, and byte by byte', () => {
  const whole = reader();
  whole.r.push(STREAM);
  assert.deepEqual(whole.seen, EXPECTED);
  for (let at = 0; at <= STREAM.length; at++) {
    const { r, seen } = reader();
    r.push(STREAM.subarray(0, at));
    r.push(STREAM.subarray(at));
    assert.deepEqual(seen, EXPECTED, `split at ${at}`);
  }
  for (let a = 1; a < STREAM.length; a += 7) {
    for (let b = a; b < STREAM.length; b += 13) {
      const { r, seen } = reader();
      r.push(STREAM.subarray(0, a));
      r.push(STREAM.subarray(a, b));
      r.push(STREAM.subarray(b));
      assert.deepEqual(seen, EXPECTED, `split at ${a} and ${b}`);
    }
  }
  const bytes = reader();
  for (let i = 0; i < STREAM.length; i++) bytes.r.push(STREAM.subarray(i, i + 1));
  assert.deepEqual(bytes.seen, EXPECTED);
});

test('FrameReader: a frame is delivered only once all of its payload is there', () => {
  const { r, seen } = reader();
  const f = frame(DATA, 9, Buffer.alloc(1000, 1));
  r.push(f.subarray(0, HEADER_BYTES + 999));
  assert.equal(seen.length, 0);
  r.push(f.subarray(HEADER_BYTES + 999));
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.payload.length, 2000);
});

test('FrameReader: the largest DATA payload is accepted whole', () => {
  const { r, seen } = reader();
  r.push(frame(DATA, 1, Buffer.alloc(MAX_DATA_PAYLOAD, 7)));
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.payload.length, MAX_DATA_PAYLOAD * 2);
});

/** The error a header alone (no payload pushed) makes the reader throw. */
function headerError(type: number, stream: number, length: number): MuxProtocolError {
  const { r, seen } = reader();
  const h = Buffer.alloc(HEADER_BYTES);
  writeHeader(h, 0, type as FrameType, stream, length);
  let thrown: unknown;
  try {
    r.push(h);
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown instanceof MuxProtocolError, `type ${type} stream ${stream} length ${length}: ${String(thrown)}`);
  assert.equal(thrown.code, 'KM_ERR_MUX_PROTOCOL');
  assert.equal(seen.length, 0);
  return thrown;
}

test('MuxProtocolError from the header alone: unknown type, DATA on stream 0, oversized DATA, wrong control sizes, GOAWAY on a stream', () => {
  assert.match(headerError(5, 1, 0).message, /unknown frame type 5/);
  assert.match(headerError(255, 1, 4).message, /unknown frame type 255/);
  assert.match(headerError(DATA, 0, 1).message, /DATA frame on stream 0/);
  // 4 GiB - 1 announced: refused at once, nothing awaited or buffered.
  assert.match(headerError(DATA, 1, 0xffffffff).message, /DATA frame of 4294967295 bytes/);
  assert.match(headerError(DATA, 1, MAX_DATA_PAYLOAD + 1).message, /at most 65536/);
  assert.match(headerError(END, 0, 0).message, /END frame on stream 0/);
  assert.match(headerError(END, 1, 1).message, /END frame with a 1-byte payload/);
  assert.match(headerError(RESET, 0, 4).message, /RESET frame on stream 0/);
  assert.match(headerError(RESET, 1, 3).message, /RESET frame with a 3-byte payload/);
  assert.match(headerError(RESET, 1, 5).message, /RESET frame with a 5-byte payload/);
  assert.match(headerError(WINDOW, 0, 4).message, /WINDOW frame on stream 0/);
  assert.match(headerError(WINDOW, 1, 0).message, /WINDOW frame with a 0-byte payload/);
  assert.match(headerError(WINDOW, 1, 8).message, /WINDOW frame with a 8-byte payload/);
  assert.match(headerError(GOAWAY, 1, 4).message, /GOAWAY frame on stream 1/);
  assert.match(headerError(GOAWAY, 0, 0).message, /GOAWAY frame with a 0-byte payload/);
});

test('MuxProtocolError after good frames: those were delivered, the bad header throws when it is complete', () => {
  const { r, seen } = reader();
  const bad = Buffer.alloc(HEADER_BYTES);
  writeHeader(bad, 0, 9 as FrameType, 1, 0);
  const bytes = Buffer.concat([frame(DATA, 1, Buffer.from('a')), bad]);
  r.push(bytes.subarray(0, HEADER_BYTES + 1 + 4));
  assert.equal(seen.length, 1, 'the first frame; the second header is not complete yet');
  assert.throws(() => r.push(bytes.subarray(HEADER_BYTES + 1 + 4)), MuxProtocolError);
});

test('selectHttpAlpn: keymesh-mux/1 whenever offered, unless the codec is HTTP2', () => {
  for (const codec of ['AUTO', 'HTTP1'] as const) {
    assert.equal(selectHttpAlpn([MUX_ALPN, 'http/1.1'], [], codec), MUX_ALPN);
    assert.equal(selectHttpAlpn(['h2', 'http/1.1', MUX_ALPN], [], codec), MUX_ALPN);
    assert.equal(selectHttpAlpn([MUX_ALPN, 'http/1.1'], ['h2', 'http/1.1'], codec), MUX_ALPN, 'a configured list does not keep keymesh proxies apart');
  }
  assert.equal(selectHttpAlpn([MUX_ALPN, 'http/1.1'], [], 'HTTP2'), undefined);
  assert.equal(selectHttpAlpn([MUX_ALPN, 'h2'], [], 'HTTP2'), 'h2');
  assert.equal(selectHttpAlpn([MUX_ALPN, 'h2', 'http/1.1'], ['h2', 'http/1.1'], 'HTTP2'), 'h2');
});

test('selectHttpAlpn: a configured list is the server preference, a protocol outside it is refused', () => {
  const table: Array<[string[], string[], HttpCodec, string | undefined]> = [
    [['http/1.1', 'h2'], ['h2', 'http/1.1'], 'AUTO', 'h2'],
    [['h2', 'http/1.1'], ['http/1.1', 'h2'], 'AUTO', 'http/1.1'],
    [['h2'], ['http/1.1'], 'AUTO', undefined],
    [['http/1.1'], ['http/1.1'], 'HTTP1', 'http/1.1'],
    [['spdy/3', 'http/1.1'], ['http/1.1'], 'AUTO', 'http/1.1'],
    [['spdy/3'], ['http/1.1', 'h2'], 'AUTO', undefined],
    [['h2', 'http/1.1'], ['h2'], 'HTTP2', 'h2'],
  ];
  for (const [offered, configured, codec, want] of table) {
    assert.equal(selectHttpAlpn(offered, configured, codec), want, `${offered.join(',')} against ${configured.join(',')} (${codec})`);
  }
});

test('selectHttpAlpn: none configured, the HTTP version the client would have spoken; unknown offers refused', () => {
  const table: Array<[string[], HttpCodec, string | undefined]> = [
    [['h2', 'http/1.1'], 'AUTO', 'http/1.1'],
    [['http/1.1', 'h2'], 'AUTO', 'http/1.1'],
    [['h2'], 'AUTO', 'h2'],
    [['http/1.0'], 'AUTO', 'http/1.0'],
    [['http/1.0', 'h2'], 'AUTO', 'h2'],
    [['http/1.0', 'http/1.1'], 'AUTO', 'http/1.1'],
    [['spdy/3', 'foo'], 'AUTO', undefined],
    [[], 'AUTO', undefined],
    [['h2', 'http/1.1'], 'HTTP1', 'http/1.1'],
    [['h2'], 'HTTP1', undefined],
    [['http/1.0'], 'HTTP1', 'http/1.0'],
    [['h2', 'http/1.1'], 'HTTP2', 'h2'],
    [['http/1.1'], 'HTTP2', undefined],
    [['http/1.0'], 'HTTP2', undefined],
    [['foo'], 'HTTP2', undefined],
  ];
  for (const [offered, codec, want] of table) {
    assert.equal(selectHttpAlpn(offered, [], codec), want, `${offered.join(',') || '(nothing)'} (${codec})`);
  }
});

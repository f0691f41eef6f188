// Randomized round trips (deterministic seed, bounded count): generate valid requests and responses with
// random names, values, whitespace, target forms and bodies (fixed-length or chunked with extensions and
// trailers), cut the bytes at random points, parse them back incrementally, frame the body, forward the head
// and parse that again. Every derived field is compared with what the generator meant.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BodyFramer } from './body.ts';
import type { ParsedRequest, ParsedResponse } from './head.ts';
import { parseRequestHead, parseResponseHead } from './parse.ts';
import { serializeRequestHead, serializeResponseHead } from './serialize.ts';
import { prng, randomCuts } from './testing.ts';

const SEED = 0x6b65796d; // 'keym'
const REQUESTS = 400;
const RESPONSES = 200;

type Rand = ReturnType<typeof prng>;

const TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const SPECIAL = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'upgrade', 'expect', 'te', 'keep-alive', 'proxy-connection']);

function token(r: Rand, max = 12): string {
  let s = '';
  const n = 1 + r.int(max);
  for (let i = 0; i < n; i++) s += TCHARS[r.int(TCHARS.length)];
  return s;
}

function randomCase(r: Rand, s: string): string {
  return [...s].map((c) => (r.chance(0.3) ? c.toUpperCase() : c)).join('');
}

/** A field value: visible ASCII, obs-text and inner SP/HTAB; never starts or ends with whitespace. */
function value(r: Rand, max = 40): string {
  const n = r.int(max + 1);
  let s = '';
  for (let i = 0; i < n; i++) {
    const k = r.int(20);
    if (k === 0 && i > 0 && i < n - 1) s += r.chance(0.5) ? ' ' : '\t';
    else if (k === 1) s += String.fromCharCode(0x80 + r.int(128));
    else s += String.fromCharCode(0x21 + r.int(0x7e - 0x21 + 1));
  }
  return s;
}

function ows(r: Rand): string {
  return r.chance(0.7) ? ' ' : ['', '  ', '\t', ' \t '][r.int(4)] as string;
}

function path(r: Rand): string {
  const URL_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&\'()*+,;=:@%/';
  let p = '';
  const segments = r.int(5);
  for (let i = 0; i < segments; i++) {
    p += '/';
    const n = r.int(10);
    for (let j = 0; j < n; j++) p += URL_CHARS[r.int(URL_CHARS.length)];
  }
  if (p === '' || r.chance(0.3)) p += '/';
  if (r.chance(0.3)) p += `?${token(r, 8)}=${token(r, 8)}&x=${r.int(1000)}`.replaceAll('#', '%23');
  return p;
}

function hostName(r: Rand): string {
  const h = r.pick(['svc.mesh', 'a', 'users.default.svc.cluster.local', '10.0.0.7', '[2001:db8::1]', 'xn--bcher-kva.example']);
  return r.chance(0.5) ? `${h}:${r.int(65536)}` : h;
}

/** A chunked body with random chunk sizes, extensions and trailers; returns the bytes and the payload size. */
function chunkedBody(r: Rand): { bytes: Buffer; payload: number } {
  const parts: Buffer[] = [];
  let payload = 0;
  const chunks = r.int(5);
  const ext = () => {
    let e = '';
    const n = r.chance(0.6) ? 0 : 1 + r.int(3);
    for (let i = 0; i < n; i++) {
      e += `${r.chance(0.2) ? ' ' : ''};${r.chance(0.2) ? ' ' : ''}${token(r, 6)}`;
      if (r.chance(0.6)) e += r.chance(0.5) ? `=${token(r, 6)}` : `="${'a\\"b; c'.slice(0, 1 + r.int(7)).replace(/\\$/, '')}"`;
    }
    return e;
  };
  for (let i = 0; i < chunks; i++) {
    const size = 1 + r.int(300);
    const sizeText = size.toString(16);
    parts.push(Buffer.from(`${r.chance(0.2) ? '00' : ''}${r.chance(0.5) ? sizeText.toUpperCase() : sizeText}${ext()}\r\n`, 'latin1'));
    // Data full of CR, LF and digits, which mean nothing inside chunk data.
    parts.push(Buffer.from(Array.from({ length: size }, () => r.pick([0x0d, 0x0a, 0x30, 0x3b, 0x61, 0xff]))), Buffer.from('\r\n'));
    payload += size;
  }
  parts.push(Buffer.from(`0${ext()}\r\n`, 'latin1'));
  const trailers = r.chance(0.7) ? 0 : 1 + r.int(3);
  for (let i = 0; i < trailers; i++) parts.push(Buffer.from(`${token(r)}:${ows(r)}${value(r)}${ows(r)}\r\n`, 'latin1'));
  parts.push(Buffer.from('\r\n'));
  return { bytes: Buffer.concat(parts), payload };
}

interface Expected {
  headers: string[];
  keepAlive: boolean;
  contentLength: number | undefined;
  chunked: boolean;
  tokens: string[] | undefined;
  body: Buffer;
  payload: number;
}

/** Random extra fields, specials (framing, Connection) mixed in at random positions. */
function fields(r: Rand, version: '1.0' | '1.1', lines: string[], exp: Expected, allowBody: boolean): void {
  const extra = r.int(15);
  const specials: [string, string][] = [];
  let close = false;
  let keepAliveToken = false;
  if (r.chance(0.4)) {
    const opts: string[] = [];
    const n = 1 + r.int(3);
    for (let i = 0; i < n; i++) {
      const t = r.pick(['close', 'keep-alive', 'Keep-Alive', 'CLOSE', `x-${token(r, 5)}`]);
      opts.push(t);
      if (t.toLowerCase() === 'close') close = true;
      if (t.toLowerCase() === 'keep-alive') keepAliveToken = true;
    }
    specials.push([randomCase(r, 'connection'), opts.join(r.chance(0.5) ? ', ' : ',')]);
    exp.tokens = opts.map((t) => t.toLowerCase());
  }
  if (allowBody) {
    const kind = r.int(3);
    if (kind === 1) {
      const n = r.int(200);
      specials.push([randomCase(r, 'content-length'), String(n)]);
      exp.contentLength = n;
      exp.body = Buffer.from(Array.from({ length: n }, () => r.int(256)));
      exp.payload = n;
    } else if (kind === 2 && version === '1.1') {
      specials.push([randomCase(r, 'transfer-encoding'), r.pick(['chunked', 'Chunked'])]);
      exp.chunked = true;
      const b = chunkedBody(r);
      exp.body = b.bytes;
      exp.payload = b.payload;
    }
  }
  const all: [string, string][] = [];
  for (let i = 0; i < extra; i++) {
    let name = token(r);
    while (SPECIAL.has(name.toLowerCase())) name = token(r);
    all.push([name, value(r)]);
  }
  for (const s of specials) all.splice(r.int(all.length + 1), 0, s);
  for (const [n, v] of all) {
    lines.push(`${n}:${ows(r)}${v}${v === '' ? '' : ows(r)}`);
    exp.headers.push(n, v);
  }
  exp.keepAlive = version === '1.1' ? !close : keepAliveToken && !close;
}

/** Feeds `bytes` in pieces, parsing after each (with resume hints or not), until the head is complete. */
function parseInPieces<T extends { end: number }>(bytes: Buffer, cuts: number[], parse: (buf: Buffer, resume: number | undefined) => T | undefined, hints: boolean): T {
  let resume: number | undefined;
  for (const cut of [...cuts, bytes.length]) {
    const r = parse(bytes.subarray(0, cut), hints ? resume : undefined);
    if (r !== undefined) return r;
    resume = cut;
  }
  assert.fail('head never completed');
}

/** Frames the body from `start`, in the same pieces; returns the bytes taken. */
function frameInPieces(framer: BodyFramer, bytes: Buffer, start: number, cuts: number[]): number {
  let taken = 0;
  let from = start;
  for (const cut of [...cuts.filter((c) => c > start), bytes.length]) {
    taken += framer.feed(bytes, from, cut);
    from = cut;
    if (framer.done) break;
  }
  return taken;
}

function dropHopByHop(headers: readonly string[], tokens: readonly string[] | undefined): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const lower = (headers[i] as string).toLowerCase();
    if (['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade'].includes(lower)) continue;
    if (tokens?.includes(lower) && !['host', 'content-length', 'transfer-encoding'].includes(lower)) continue;
    out.push(headers[i] as string, headers[i + 1] as string);
  }
  return out;
}

test(`${REQUESTS} random requests survive random splits, framing and forwarding`, () => {
  const r = prng(SEED);
  const NEXT = Buffer.from('GET /next HTTP/1.1\r\nHost: n\r\n\r\n');
  for (let iter = 0; iter < REQUESTS; iter++) {
    const version = r.chance(0.85) ? '1.1' : '1.0';
    const form = r.int(10) < 7 ? 'origin' : r.chance(0.5) ? 'absolute' : r.chance(0.5) ? 'asterisk' : 'authority';
    const method = form === 'asterisk' ? 'OPTIONS' : form === 'authority' ? 'CONNECT' : r.pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', token(r, 8).toUpperCase()]);
    const authority = hostName(r);
    const scheme = r.pick(['http', 'https', 'HTTP']);
    const p = path(r);
    const target = form === 'origin' ? p : form === 'absolute' ? `${scheme}://${authority}${p}` : form === 'asterisk' ? '*' : authority.includes(':') && !authority.endsWith(']') ? authority : `${authority}:443`;
    const exp: Expected = { headers: [], keepAlive: true, contentLength: undefined, chunked: false, tokens: undefined, body: Buffer.alloc(0), payload: 0 };
    const lines = [`${method} ${target} HTTP/${version}`];
    const host = hostName(r);
    const withHost = version === '1.1' ? form === 'origin' || form === 'asterisk' || r.chance(0.5) : r.chance(0.5);
    if (withHost) {
      lines.push(`${randomCase(r, 'host')}:${ows(r)}${host}${ows(r)}`);
      exp.headers.push(lines[1]?.split(':')[0] as string, host);
    }
    fields(r, version, lines, exp, form !== 'authority');
    const lead = r.chance(0.1) ? '\r\n' : '';
    const head = Buffer.from(`${lead}${lines.map((l) => `${l}\r\n`).join('')}\r\n`, 'latin1');
    const bytes = Buffer.concat([head, exp.body, NEXT]);
    const cuts = randomCuts(r, bytes.length, 1 + r.int(8));
    const label = `request #${iter}: ${JSON.stringify(head.toString('latin1').slice(0, 300))}`;

    const got = parseInPieces<ParsedRequest>(bytes, cuts, (b, resume) => parseRequestHead(b, 0, undefined, resume), r.chance(0.5));
    const h = got.head;
    assert.equal(got.end, head.length, label);
    assert.equal(h.method, method, label);
    assert.equal(h.target, target, label);
    assert.equal(h.version, version, label);
    assert.equal(h.form, form, label);
    assert.deepEqual(h.headers, exp.headers, label);
    assert.equal(h.host, form === 'absolute' || form === 'authority' ? (form === 'authority' ? target : authority) : withHost ? host : undefined, label);
    if (form === 'absolute') {
      assert.equal(h.scheme, scheme.toLowerCase(), label);
      assert.equal(h.path, p, label);
    }
    assert.equal(h.contentLength, exp.contentLength, label);
    assert.equal(h.chunked, exp.chunked, label);
    assert.equal(h.keepAlive, exp.keepAlive, label);
    assert.deepEqual(h.connectionTokens, exp.tokens, label);

    const framer = new BodyFramer(h.framing);
    assert.equal(frameInPieces(framer, bytes, got.end, cuts), exp.body.length, label);
    assert.equal(framer.done, true, label);
    assert.equal(framer.payloadBytes, exp.payload, label);
    // Pipelining: the next request starts right after the body.
    assert.equal(parseRequestHead(bytes, got.end + exp.body.length)?.head.path, '/next', label);

    // Forwarding: the serialized head parses back to the same request, minus hop-by-hop fields.
    // (An HTTP/1.0 request without Host goes out as HTTP/1.1: the proxy must give it one.)
    const needsHost = h.host === undefined;
    const fwd = parseRequestHead(serializeRequestHead(h, { target: form === 'absolute' ? h.path : undefined, set: needsHost ? ['host', 'default.host'] : undefined }), 0);
    assert.ok(fwd, label);
    assert.equal(fwd.head.method, method, label);
    assert.equal(fwd.head.version, '1.1', label);
    assert.deepEqual(fwd.head.framing, h.framing, label);
    const want = dropHopByHop(h.headers, h.connectionTokens);
    if (form === 'absolute') {
      assert.equal(fwd.head.target, p, label);
      assert.deepEqual(fwd.head.headers, ['host', authority, ...want.filter((_, i, a) => i % 2 === 0 ? a[i]?.toLowerCase() !== 'host' : a[i - 1]?.toLowerCase() !== 'host')], label);
    } else {
      assert.equal(fwd.head.target, target, label);
      assert.deepEqual(fwd.head.headers, needsHost ? [...want, 'host', 'default.host'] : want, label);
    }
  }
});

test(`${RESPONSES} random responses survive random splits, framing and forwarding`, () => {
  const r = prng(SEED + 1);
  for (let iter = 0; iter < RESPONSES; iter++) {
    const version = r.chance(0.85) ? '1.1' : '1.0';
    const status = r.pick([200, 201, 204, 206, 301, 304, 400, 404, 500, 503, 100 + r.int(900)]);
    const method = r.pick(['GET', 'GET', 'POST', 'HEAD']);
    const reason = r.chance(0.2) ? '' : value(r, 20);
    const exp: Expected = { headers: [], keepAlive: true, contentLength: undefined, chunked: false, tokens: undefined, body: Buffer.alloc(0), payload: 0 };
    const lines = [`HTTP/${version} ${status}${reason === '' && r.chance(0.5) ? '' : ` ${reason}`}`];
    const bodyless = method === 'HEAD' || status < 200 || status === 204 || status === 304;
    fields(r, version, lines, exp, true);
    const closeDelimited = !bodyless && exp.contentLength === undefined && !exp.chunked;
    if (bodyless) {
      exp.body = Buffer.alloc(0);
      exp.payload = 0;
    } else if (closeDelimited) {
      exp.body = Buffer.from(value(r, 100), 'latin1');
      exp.payload = exp.body.length;
    }
    const head = Buffer.from(`${lines.map((l) => `${l}\r\n`).join('')}\r\n`, 'latin1');
    const bytes = Buffer.concat([head, exp.body]);
    const cuts = randomCuts(r, bytes.length, 1 + r.int(8));
    const label = `response #${iter}: ${JSON.stringify(head.toString('latin1').slice(0, 300))}`;

    const got = parseInPieces<ParsedResponse>(bytes, cuts, (b, resume) => parseResponseHead(b, 0, method, undefined, resume), r.chance(0.5));
    const h = got.head;
    assert.equal(got.end, head.length, label);
    assert.equal(h.status, status, label);
    assert.equal(h.reason, reason, label);
    assert.deepEqual(h.headers, exp.headers, label);
    assert.equal(h.contentLength, exp.contentLength, label);
    assert.equal(h.keepAlive, exp.keepAlive && !closeDelimited && status !== 101, label);
    assert.equal(h.framing.kind, bodyless || exp.contentLength === 0 ? 'none' : exp.chunked ? 'chunked' : exp.contentLength !== undefined ? 'length' : 'close', label);

    const framer = new BodyFramer(h.framing, undefined, 'response');
    assert.equal(frameInPieces(framer, bytes, got.end, cuts), exp.body.length, label);
    if (closeDelimited) framer.finish();
    assert.equal(framer.done, true, label);
    assert.equal(framer.payloadBytes, exp.payload, label);

    const fwd = parseResponseHead(serializeResponseHead(h), 0, method);
    assert.ok(fwd, label);
    assert.equal(fwd.head.status, status, label);
    assert.equal(fwd.head.reason, reason, label);
    assert.deepEqual(fwd.head.headers, dropHopByHop(h.headers, h.connectionTokens), label);
  }
});

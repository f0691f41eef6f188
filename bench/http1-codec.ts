// Micro-benchmark of the proxy's HTTP/1.1 codec (src/proxy/http1) against Node's own llhttp parser, measured
// in the same run. The baseline is the HTTPParser binding behind node:http (reached through the legacy
// `_http_common` module): llhttp in C parses, and Node's C++ glue hands JS the method, URL and raw header
// strings, the same work our parser does (ours also validates Host/Content-Length/Connection and derives the
// framing, which llhttp does internally too).
//
//   node bench/http1-codec.ts            default: 5 rounds of >= 300 ms CPU per case, medians reported
//   node bench/http1-codec.ts --quick    1 round of >= 100 ms
//
// Cases:
//   request head       parse an 11-header GET head (ours: parseRequestHead; llhttp: execute); then the same
//                      with the bytes copied into a new Buffer each time, as they come off a socket
//   response head      parse a 10-header 200 response with a 64-byte body (ours: parseResponseHead + BodyFramer)
//   serialize req/resp serializeRequestHead/serializeResponseHead with typical proxy edits (no baseline)
//   parse+serialize    ours vs llhttp + a plain JS serializer doing the same hop-by-hop filtering
//   chunked 16 KiB     a chunked response body of 16 x 1 KiB chunks (extensions, trailer), fed whole and in
//                      1460-byte pieces (ours: BodyFramer; llhttp: execute with on-body callbacks)
import { createRequire } from 'node:module';
import { BodyFramer, parseRequestHead, parseResponseHead, serializeRequestHead, serializeResponseHead } from '../src/proxy/http1/index.ts';
import { fmtRate, fmtRatio, formatTable, median } from './harness.ts';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 1 : 5;
const MIN_MS = quick ? 100 : 300;

const REQUEST = Buffer.from(
  'GET /api/v1/users/12345?include=profile&limit=10 HTTP/1.1\r\n' +
    'Host: users.default.svc.cluster.local:8080\r\n' +
    'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36\r\n' +
    'Accept: application/json, text/plain, */*\r\n' +
    'Accept-Encoding: gzip, deflate, br\r\n' +
    'Accept-Language: en-US,en;q=0.9\r\n' +
    'Connection: keep-alive\r\n' +
    'Cookie: session=abcdef0123456789abcdef; theme=dark\r\n' +
    'X-Request-Id: 4bf92f35-77b3-4da6-a3ce-929d0e0e4736\r\n' +
    'X-B3-TraceId: 4bf92f3577b34da6a3ce929d0e0e4736\r\n' +
    'X-B3-SpanId: a3ce929d0e0e4736\r\n' +
    'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl\r\n' +
    '\r\n',
  'latin1',
);
const RESPONSE_BODY = '{"id":12345,"name":"Ada Lovelace","email":"ada@example.com","ok":1}'.slice(0, 64);
const RESPONSE = Buffer.from(
  'HTTP/1.1 200 OK\r\n' +
    'Date: Mon, 23 Nov 2026 14:19:00 GMT\r\n' +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${RESPONSE_BODY.length}\r\n` +
    'Connection: keep-alive\r\n' +
    'Cache-Control: no-cache, no-store, must-revalidate\r\n' +
    'ETag: "33a64df551425fcc55e4d42a148795d9f25f89d4"\r\n' +
    'Vary: Accept-Encoding\r\n' +
    'Server: nginx/1.27.0\r\n' +
    'X-Request-Id: 4bf92f35-77b3-4da6-a3ce-929d0e0e4736\r\n' +
    'Strict-Transport-Security: max-age=31536000\r\n' +
    '\r\n' +
    RESPONSE_BODY,
  'latin1',
);
const CHUNK = Buffer.alloc(1024, 0x61);
const CHUNKED_HEAD = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n', 'latin1');
const CHUNKED_BODY = Buffer.concat([
  ...Array.from({ length: 16 }, (_, i) => [Buffer.from(`400${i % 4 === 0 ? ';seq=' + i : ''}\r\n`, 'latin1'), CHUNK, Buffer.from('\r\n')]).flat(),
  Buffer.from('0\r\nX-Checksum: 5d41402abc4b2a76\r\n\r\n', 'latin1'),
]);
const CHUNKED_MESSAGE = Buffer.concat([CHUNKED_HEAD, CHUNKED_BODY]);
const PIECES = split(CHUNKED_BODY, 1460);
const MESSAGE_PIECES = split(CHUNKED_MESSAGE, 1460);

function split(buf: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, Math.min(buf.length, i + size)));
  return out;
}

// === llhttp baseline ===

interface LlhttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(buf: Buffer): number | Error;
  [k: number]: unknown;
}
interface LlhttpCtor {
  new (): LlhttpParser;
  REQUEST: number;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
}
const { HTTPParser } = createRequire(import.meta.url)('_http_common') as { HTTPParser: LlhttpCtor };

let sink: unknown;
let bodyBytes = 0;
function llhttp(type: number): LlhttpParser {
  const p = new HTTPParser();
  p.initialize(type, {}, 0, 0);
  p[HTTPParser.kOnHeaders] = () => {};
  p[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[], method: number, url: string, status: number) => {
    sink = headers;
    sink = method + (url?.length ?? 0) + (status | 0);
    return 0; // 0: read the body as framed (1 would skip it, 2 upgrade)
  };
  p[HTTPParser.kOnBody] = (b: Buffer) => {
    bodyBytes += b.length;
  };
  p[HTTPParser.kOnMessageComplete] = () => {};
  p[HTTPParser.kOnExecute] = () => {};
  return p;
}
const llRequest = llhttp(HTTPParser.REQUEST);
const llResponse = llhttp(HTTPParser.RESPONSE);

function mustExecute(p: LlhttpParser, buf: Buffer): void {
  const r = p.execute(buf);
  if (typeof r !== 'number') throw r;
}

// A plain serializer over llhttp's output, doing what serializeRequestHead does (hop-by-hop filtering, a
// few edits), the way one would write it without caring about speed.
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'upgrade', 'transfer-encoding-never']);
function naiveSerialize(method: string, url: string, headers: string[], set: string[]): Buffer {
  const setNames = new Set<string>();
  for (let i = 0; i < set.length; i += 2) setNames.add((set[i] as string).toLowerCase());
  const lines = [`${method} ${url} HTTP/1.1`];
  for (let i = 0; i < headers.length; i += 2) {
    const lower = (headers[i] as string).toLowerCase();
    if (HOP.has(lower) || setNames.has(lower)) continue;
    lines.push(`${headers[i]}: ${headers[i + 1]}`);
  }
  for (let i = 0; i < set.length; i += 2) lines.push(`${set[i]}: ${set[i + 1]}`);
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
}

// === timing ===
// Rates are per second of this process's CPU time (process.cpuUsage), not wall time, so that other load on
// the machine skews them less; each case with a baseline runs ours and the baseline in alternating rounds,
// and the ratio is the median of the per-round ratios.

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function measure(fn: () => void): number {
  let batch = 1000;
  let ops = 0;
  const start = cpuMs();
  let now = start;
  while (now - start < MIN_MS) {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    now = cpuMs();
    if (now - start < MIN_MS / 10) batch *= 2;
  }
  return (ops * 1000) / (now - start);
}

interface Rates {
  ours: number;
  base?: number;
  ratio?: number;
}

function rates(ours: () => void, base?: () => void): Rates {
  for (let i = 0; i < 20000; i++) ours(); // warm up (let V8 optimize)
  if (base) for (let i = 0; i < 20000; i++) base();
  const o: number[] = [];
  const b: number[] = [];
  const r: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    o.push(measure(ours));
    if (base) {
      b.push(measure(base));
      r.push((o[round] as number) / (b[round] as number));
    }
  }
  return base ? { ours: median(o), base: median(b), ratio: median(r) } : { ours: median(o) };
}

const EDITS = { set: ['x-forwarded-proto', 'https', 'x-envoy-expected-rq-timeout-ms', '15000'] };
const parsedRequest = parseRequestHead(REQUEST, 0);
const parsedResponse = parseResponseHead(RESPONSE, 0, 'GET');
if (parsedRequest === undefined || parsedResponse === undefined) throw new Error('bench input does not parse');

const oursRequest = () => {
  sink = parseRequestHead(REQUEST, 0);
};
const llRequestRun = () => mustExecute(llRequest, REQUEST);
// The same head arriving in a new Buffer each time (as from a socket): both sides pay for the copy, and ours
// for a new word view of the new ArrayBuffer.
const oursFresh = () => {
  sink = parseRequestHead(Buffer.from(REQUEST), 0);
};
const llFresh = () => mustExecute(llRequest, Buffer.from(REQUEST));
const oursResponse = () => {
  const r = parseResponseHead(RESPONSE, 0, 'GET') as NonNullable<ReturnType<typeof parseResponseHead>>;
  const f = new BodyFramer(r.head.framing);
  bodyBytes += f.feed(RESPONSE, r.end);
};
const llResponseRun = () => mustExecute(llResponse, RESPONSE);
const oursSerializeRequest = () => {
  sink = serializeRequestHead(parsedRequest.head, EDITS);
};
const oursSerializeResponse = () => {
  sink = serializeResponseHead(parsedResponse.head);
};
const oursBoth = () => {
  const r = parseRequestHead(REQUEST, 0) as NonNullable<ReturnType<typeof parseRequestHead>>;
  sink = serializeRequestHead(r.head, EDITS);
};
let llHead: { method: number; url: string; headers: string[] } = { method: 0, url: '', headers: [] };
const llBothParser = llhttp(HTTPParser.REQUEST);
llBothParser[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, headers: string[], method: number, url: string) => {
  llHead = { method, url, headers };
  return 0;
};
const llMethods = (createRequire(import.meta.url)('_http_common') as { methods: string[] }).methods;
const llBoth = () => {
  mustExecute(llBothParser, REQUEST);
  sink = naiveSerialize(llMethods[llHead.method] as string, llHead.url, llHead.headers, EDITS.set);
};
const oursChunkedWhole = () => {
  const f = new BodyFramer({ kind: 'chunked' });
  bodyBytes += f.feed(CHUNKED_BODY, 0);
  if (!f.done) throw new Error('chunked body not done');
};
const oursChunkedPieces = () => {
  const f = new BodyFramer({ kind: 'chunked' });
  for (const piece of PIECES) bodyBytes += f.feed(piece, 0);
  if (!f.done) throw new Error('chunked body not done');
};
const oursChunkedMessage = () => {
  const r = parseResponseHead(MESSAGE_PIECES[0] as Buffer, 0, 'GET') as NonNullable<ReturnType<typeof parseResponseHead>>;
  const f = new BodyFramer(r.head.framing);
  bodyBytes += f.feed(MESSAGE_PIECES[0] as Buffer, r.end);
  for (let i = 1; i < MESSAGE_PIECES.length; i++) bodyBytes += f.feed(MESSAGE_PIECES[i] as Buffer, 0);
  if (!f.done) throw new Error('chunked body not done');
};
const llChunkedMessage = () => {
  for (const piece of MESSAGE_PIECES) mustExecute(llResponse, piece);
};

// Sanity: llhttp accepts every input as a complete message.
llRequestRun();
llResponseRun();
llChunkedMessage();

const rows: string[][] = [];
const add = (name: string, r: Rates, bytes?: number) => {
  rows.push([
    name,
    fmtRate(r.ours),
    r.base === undefined ? '-' : fmtRate(r.base),
    r.ratio === undefined ? '-' : fmtRatio(r.ratio),
    bytes === undefined ? '-' : `${((r.ours * bytes) / 1e6).toFixed(0)}`,
  ]);
};

add(`request head (${REQUEST.length} B, 11 headers)`, rates(oursRequest, llRequestRun));
add('  same, arriving in a new Buffer each time', rates(oursFresh, llFresh));
add(`response head + 64 B body (${RESPONSE.length} B, 10 headers)`, rates(oursResponse, llResponseRun));
add('serialize request head (+2 set)', rates(oursSerializeRequest));
add('serialize response head', rates(oursSerializeResponse));
add('parse + serialize request (baseline + naive serializer)', rates(oursBoth, llBoth));
add(`chunked body ${CHUNKED_BODY.length} B, one feed`, rates(oursChunkedWhole), CHUNKED_BODY.length);
add(`chunked body ${CHUNKED_BODY.length} B, 1460 B feeds`, rates(oursChunkedPieces), CHUNKED_BODY.length);
add(`chunked response ${CHUNKED_MESSAGE.length} B, 1460 B feeds`, rates(oursChunkedMessage, llChunkedMessage), CHUNKED_MESSAGE.length);

process.stdout.write(`HTTP/1.1 codec vs llhttp (node ${process.version}; ${ROUNDS} round(s) x >= ${MIN_MS} ms CPU time; median ops per CPU-second)\n\n`);
process.stdout.write(`${formatTable(['case', 'ours ops/s', 'llhttp ops/s', 'ours/llhttp', 'ours MB/s'], rows)}\n`);
if (sink === undefined || bodyBytes === 0) process.stdout.write('(sink empty)\n');

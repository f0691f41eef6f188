// Garbage and slow or stuck clients on the HTTP/1 connection manager are contained (issue 5): oversized heads,
// too many headers, malformed request lines and smuggling attempts are refused and closed; a slowloris head is
// cut at the request headers timeout; a client that never reads its response holds at most a socket's buffers
// and is cut at the stream idle timeout; idle connections are closed at the idle timeout. Real sockets end to
// end: scripted net clients and curl → RunningListener → Http1Session → a real ClusterRuntime → a node:http
// upstream. Each case waits (bounded) for the connection to close and checks the `http.<prefix>.` counter that
// says why. Timeouts are shortened through Http1Context.timeouts; nothing measures time.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, test } from 'node:test';
import { StatsStore } from '../admin/stats.ts';
import { compileListener } from '../listeners/compile.ts';
import { RunningListener } from '../listeners/listener.ts';
import { compileRouteConfiguration } from '../routing/compile.ts';
import { TlsProvider } from '../tls/provider.ts';
import { ClusterRuntime } from '../upstream/cluster-runtime.ts';
import { compileCluster } from '../upstream/compile.ts';
import {
  DEFAULT_DELAYED_CLOSE_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_REQUEST_HEADERS_TIMEOUT_MS, DEFAULT_STREAM_IDLE_TIMEOUT_MS,
  Http1Session, httpManagerStats, type AccessLogEntry, type Http1Timeouts,
} from './http1-session.ts';
import type { ClusterHandle, UpstreamConnection } from './upstream-api.ts';
import { eventually, freePort, httpConnectionManagerFilter, runProgram } from '../test-support.ts';

/** How long this file's waits may take (these cases run against real timeouts on a busy machine). */
const BOUND_MS = 10_000;

const stats = new StatsStore();
const tls = new TlsProvider(() => undefined);
const running: RunningListener[] = [];
let upstream: http.Server;
let cluster: ClusterRuntime;
/** Bytes of /big the upstream has written, and whether its socket is full (write returned false, no drain yet). */
const big = { written: 0, blocked: false, closed: 0 };
/** Requests the upstream received. */
let upstreamRequests = 0;

before(async () => {
  upstream = http.createServer((req, res) => {
    upstreamRequests++;
    req.resume();
    if (req.url === '/after-body') {
      req.once('end', () => res.end('ok'));
      return;
    }
    if (req.url !== '/big') {
      res.end('ok');
      return;
    }
    // A 1 GiB body, written as fast as the socket takes it.
    res.writeHead(200, { 'content-length': String(1024 * 1024 * 1024) });
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    res.on('close', () => { big.closed++; });
    const pump = () => {
      while (!res.destroyed) {
        big.written += chunk.length;
        if (!res.write(chunk)) {
          big.blocked = true;
          res.once('drain', () => {
            big.blocked = false;
            pump();
          });
          return;
        }
      }
    };
    pump();
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const port = (upstream.address() as AddressInfo).port;
  cluster = new ClusterRuntime(compileCluster({
    name: 'app', type: 'STATIC', connectTimeout: { seconds: '1' },
    loadAssignment: { endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } }] }] },
  }), { stats, tls, log: () => {} });
});

after(async () => {
  for (const l of running) await l.close(100);
  cluster.close();
  tls.close();
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});



const HCM = httpConnectionManagerFilter('unused', 'HTTP1');

const TABLE = compileRouteConfiguration({ name: 'rds', virtualHosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] });

interface Proxy {
  readonly port: number;
  /** `http.<prefix>.<name>` */
  http(name: string): number;
  /** `listener.<prefix>.<name>` */
  listener(name: string): number;
  readonly log: AccessLogEntry[];
  /** The proxy's side of each downstream connection, and of each upstream connection it made. */
  readonly downs: Duplex[];
  readonly ups: Duplex[];
}

let prefixSeq = 0;

async function startProxy(timeouts: Http1Timeouts = {}): Promise<Proxy> {
  const port = await freePort();
  const prefix = `h${++prefixSeq}`;
  const spec = compileListener({ name: `l_${port}`, address: { socketAddress: { address: '127.0.0.1', portValue: port } }, filterChains: [{ name: 'plain', filters: [HCM] }] });
  const s = httpManagerStats(stats.scope(`http.${prefix}`));
  const log: AccessLogEntry[] = [];
  const downs: Duplex[] = [];
  const ups: Duplex[] = [];
  const handle: ClusterHandle = {
    name: cluster.http.name, stats: cluster.http.stats, http2: false,
    connect: async (o) => {
      const c: UpstreamConnection = await cluster.http.connect(o);
      ups.push(c.socket as Duplex); // a plaintext cluster: a net.Socket
      return c;
    },
    release: (c, reusable) => cluster.http.release(c, reusable),
    outcome: (h, st) => cluster.http.outcome(h, st),
  };
  const l = new RunningListener(spec, {
    tls, stats: stats.scope(`listener.${prefix}`),
    handlerFor: () => (conn) => {
      downs.push(conn.socket);
      const session = new Http1Session(conn.socket, {
        routes: () => TABLE, cluster: (name) => (name === 'app' ? handle : undefined), stats: s, scheme: 'http',
        remoteAddress: conn.remoteAddress, accessLog: (e) => log.push(e), now: Date.now, timeouts,
      });
      conn.onDrain(() => session.drain());
    },
  });
  await l.listen();
  running.push(l);
  return {
    port, log, downs, ups,
    http: (n) => stats.value(`http.${prefix}.${n}`) ?? 0,
    listener: (n) => stats.value(`listener.${prefix}.${n}`) ?? 0,
  };
}

interface RawClient {
  readonly socket: Socket;
  received(): string;
  readonly isClosed: () => boolean;
  closed(ms?: number): Promise<void>;
}

/** `read: false`: the client never reads; `halfOpen`: it keeps its side open after the proxy closed its own. */
function dial(port: number, opts: { read?: boolean; halfOpen?: boolean } = {}): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port, allowHalfOpen: opts.halfOpen === true });
    const chunks: Buffer[] = [];
    let closed = false;
    if (opts.read !== false) socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.once('close', () => { closed = true; });
    socket.once('connect', () => resolve({
      socket,
      received: () => Buffer.concat(chunks).toString('latin1'),
      isClosed: () => closed,
      closed: (ms = 10_000) => eventually(() => closed, 'the proxy closes the connection', ms),
    }));
    socket.once('error', reject);
  });
}

/** Sends one byte every 100 ms until the proxy closes the connection (bounded by `closed()`'s wait). */
async function trickleUntilClosed(c: RawClient): Promise<void> {
  const trickle = setInterval(() => {
    if (!c.isClosed()) c.socket.write('b');
  }, 100);
  try {
    await c.closed();
  } finally {
    clearInterval(trickle);
  }
}

/** Sends `bytes` and expects a local reply of `status` with `connection: close`, then the connection closed. */
async function refused(proxy: Proxy, bytes: string | Buffer, status: number): Promise<void> {
  const c = await dial(proxy.port);
  c.socket.write(bytes);
  await c.closed();
  const text = c.received();
  assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), text.slice(0, 200));
  assert.match(text, /\r\nconnection: close\r\n/i);
}

test('defaults: request headers 10 s (keymesh), idle 1 h, stream idle 5 min, delayed close 1 s (Envoy)', () => {
  assert.equal(DEFAULT_REQUEST_HEADERS_TIMEOUT_MS, 10_000);
  assert.equal(DEFAULT_IDLE_TIMEOUT_MS, 3_600_000);
  assert.equal(DEFAULT_STREAM_IDLE_TIMEOUT_MS, 300_000);
  assert.equal(DEFAULT_DELAYED_CLOSE_TIMEOUT_MS, 1_000);
});

// --- case 4: requests the codec refuses ---------------------------------------------------------------------

test('a request head over 60 KiB: 431 and close; downstream_rq_4xx and downstream_cx_protocol_error', async () => {
  const p = await startProxy();
  const before = upstreamRequests;
  await refused(p, `GET / HTTP/1.1\r\nhost: a\r\nx-big: ${'a'.repeat(61 * 1024)}\r\n\r\n`, 431);
  assert.equal(p.http('downstream_rq_4xx'), 1);
  assert.equal(p.http('downstream_cx_protocol_error'), 1);
  assert.equal(upstreamRequests, before, 'nothing reached the upstream');
  assert.deepEqual(p.log.map((e) => [e.status, e.responseFlags]), [[431, 'DPE']]);
  await eventually(() => p.listener('downstream_cx_active') === 0, 'downstream_cx_active back to 0', BOUND_MS);
});

test('a head over 60 KiB that never ends is refused at 60 KiB, not buffered further', async () => {
  const p = await startProxy();
  const c = await dial(p.port);
  c.socket.write('GET / HTTP/1.1\r\nhost: a\r\nx-big: ');
  // Keeps writing until the proxy answers and closes: memory stays at one head's limit.
  const piece = 'a'.repeat(8192);
  let sent = 0;
  while (!c.isClosed() && sent < 1024 * 1024) {
    if (!c.socket.write(piece)) await new Promise((r) => setTimeout(r, 5));
    sent += piece.length;
    await new Promise((r) => setImmediate(r));
  }
  await c.closed();
  assert.match(c.received(), /^HTTP\/1\.1 431 /);
  assert.equal(p.http('downstream_cx_protocol_error'), 1);
});

test('curl with a 61 KiB header gets 431', async () => {
  const p = await startProxy();
  const r = await runProgram('curl', ['-sS', '--max-time', '10', '-o', '/dev/null', '-w', '%{http_code}', '-H', `x-big: ${'b'.repeat(61 * 1024)}`, `http://127.0.0.1:${p.port}/`]);
  assert.equal(r.out.trim(), '431');
  assert.equal(p.http('downstream_rq_4xx'), 1);
  assert.equal(p.http('downstream_cx_protocol_error'), 1);
});

test('more than 100 header fields: 431 and close', async () => {
  const p = await startProxy();
  const fields = Array.from({ length: 101 }, (_, i) => `x-h${i}: v\r\n`).join('');
  await refused(p, `GET / HTTP/1.1\r\nhost: a\r\n${fields}\r\n`, 431);
  assert.equal(p.http('downstream_rq_4xx'), 1);
  assert.equal(p.http('downstream_cx_protocol_error'), 1);
});

test('a malformed request line: 400 and close; downstream_cx_protocol_error', async () => {
  const p = await startProxy();
  await refused(p, 'GET  / HTTP/1.1\r\nhost: a\r\n\r\n', 400);
  await refused(p, 'HELLO\r\n\r\n', 400);
  await refused(p, Buffer.from([0x00, 0x01, 0x02, 0x0d, 0x0a, 0x0d, 0x0a]), 400);
  assert.equal(p.http('downstream_rq_4xx'), 3);
  assert.equal(p.http('downstream_cx_protocol_error'), 3);
  assert.deepEqual(p.log.map((e) => [e.method, e.status, e.responseFlags]), [['-', 400, 'DPE'], ['-', 400, 'DPE'], ['-', 400, 'DPE']]);
});

test('request smuggling: Content-Length with Transfer-Encoding, and two Content-Lengths: 400 and close; nothing forwarded', async () => {
  const p = await startProxy();
  const before = upstreamRequests;
  await refused(p, 'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nhost: a\r\n\r\n', 400);
  await refused(p, 'POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ncontent-length: 40\r\n\r\nabcd', 400);
  assert.equal(upstreamRequests, before);
  assert.equal(p.http('downstream_rq_4xx'), 2);
  assert.equal(p.http('downstream_cx_protocol_error'), 2);
});

test('a bad chunked body: 400 and close, downstream_cx_protocol_error, flag DPE', async () => {
  const p = await startProxy();
  const c = await dial(p.port);
  c.socket.write('POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n');
  await c.closed();
  assert.match(c.received(), /^HTTP\/1\.1 400 /);
  assert.equal(p.http('downstream_cx_protocol_error'), 1);
  assert.equal(p.log.at(-1)?.responseFlags, 'DPE');
});

test('after a refusal, a client that keeps sending is read and dropped, then destroyed at the delayed close timeout', async () => {
  const p = await startProxy({ delayedCloseMs: 300 });
  const c = await dial(p.port, { halfOpen: true });
  c.socket.write('HELLO\r\n\r\n');
  // The client neither closes nor stops: it keeps its side open and keeps writing.
  const flood = setInterval(() => {
    if (!c.isClosed()) c.socket.write(Buffer.alloc(16 * 1024, 0x78));
  }, 5);
  try {
    await c.closed();
  } finally {
    clearInterval(flood);
  }
  assert.match(c.received(), /^HTTP\/1\.1 400 /);
  assert.equal(p.http('downstream_cx_delayed_close_timeout'), 1);
  await eventually(() => p.listener('downstream_cx_active') === 0, 'downstream_cx_active back to 0', BOUND_MS);
});

// --- case 5: slowloris --------------------------------------------------------------------------------------

test('slowloris: a head trickled one byte at a time is cut at the request headers timeout: 408, downstream_rq_header_timeout', async () => {
  const p = await startProxy({ requestHeadersMs: 1000 });
  const c = await dial(p.port);
  c.socket.write('GET / HTTP/1.1\r\nhost: a\r\nx-slow: ');
  // A byte every 100 ms: were the timer restarted by data, it would never fire and the wait below would fail.
  await trickleUntilClosed(c);
  assert.match(c.received(), /^HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.match(c.received(), /request header timeout$/);
  assert.equal(p.http('downstream_rq_header_timeout'), 1);
  assert.equal(p.http('downstream_rq_4xx'), 1);
  assert.equal(p.http('downstream_cx_protocol_error'), 0);
  assert.deepEqual(p.log.map((e) => [e.status, e.responseFlags]), [[408, '-']]);
});

test('slowloris on a keep-alive connection: the second request\'s head gets its own request headers timeout', async () => {
  const p = await startProxy({ requestHeadersMs: 1000 });
  const c = await dial(p.port);
  c.socket.write('GET / HTTP/1.1\r\nhost: a\r\n\r\n');
  await eventually(() => /\r\n\r\nok$/.test(c.received()), 'the first response', BOUND_MS);
  c.socket.write('GET / HTTP/1.1\r\nhost: a\r\nx-');
  await trickleUntilClosed(c);
  assert.match(c.received(), /HTTP\/1\.1 408 Request Timeout\r\n/);
  assert.equal(p.http('downstream_rq_header_timeout'), 1);
  assert.equal(p.http('downstream_rq_2xx'), 1);
});

// --- case 6: a client that never reads ------------------------------------------------------------------------

test('a client that never reads a large response: the upstream is paused, the proxy buffers < 4 MiB, and the stream idle timeout cuts it', async () => {
  const p = await startProxy({ streamIdleMs: 1500 });
  big.written = 0;
  big.blocked = false;
  const closedBefore = big.closed;
  const c = await dial(p.port, { read: false });
  c.socket.pause();
  c.socket.write('GET /big HTTP/1.1\r\nhost: a\r\n\r\n');
  await eventually(() => p.ups.length === 1 && big.written > 0, 'the upstream started sending', BOUND_MS);
  const down = p.downs[0]!;
  const up = p.ups[0]!;
  // Watch the proxy's downstream buffer until the whole path is full and the upstream can write no more.
  let maxBuffered = 0;
  const sample = setInterval(() => { maxBuffered = Math.max(maxBuffered, down.writableLength); }, 5);
  try {
    await eventually(() => big.blocked, 'the upstream server is blocked: nobody reads along the path', BOUND_MS);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(up.isPaused(), 'the proxy stopped reading the upstream');
    maxBuffered = Math.max(maxBuffered, down.writableLength);
  } finally {
    clearInterval(sample);
  }
  assert.ok(maxBuffered < 4 * 1024 * 1024, `the proxy buffered ${maxBuffered} bytes for the downstream`);
  assert.ok(big.written < 256 * 1024 * 1024, `the upstream wrote ${big.written} of 1 GiB`);
  // Nothing moves any more: the stream idle timeout resets the connection, and the upstream one with it. (The
  // client, which reads nothing, cannot see the close: the proxy's side is checked.)
  await eventually(() => p.http('downstream_rq_idle_timeout') === 1, 'downstream_rq_idle_timeout counted', BOUND_MS);
  await eventually(() => down.destroyed && up.destroyed, 'both of the proxy\'s sockets closed', BOUND_MS);
  await eventually(() => big.closed === closedBefore + 1, 'the upstream server saw its connection close', BOUND_MS);
  await eventually(() => p.listener('downstream_cx_active') === 0, 'downstream_cx_active back to 0', BOUND_MS);
  c.socket.destroy();
});

test('stream idle timeout before the response: a request whose body stalls gets 408 stream timeout (SI)', async () => {
  const p = await startProxy({ streamIdleMs: 500 });
  const c = await dial(p.port);
  c.socket.write('POST /after-body HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\nabc');
  await c.closed();
  assert.match(c.received(), /^HTTP\/1\.1 408 /);
  assert.match(c.received(), /stream timeout$/);
  assert.equal(p.http('downstream_rq_idle_timeout'), 1);
  assert.equal(p.log.at(-1)?.responseFlags, 'SI');
});

test('pipelined requests are read ahead by a bounded amount while one is in flight', async () => {
  const p = await startProxy({ streamIdleMs: 1500 });
  const c = await dial(p.port, { read: false });
  c.socket.pause();
  // The first request's response is never read, so it stays in flight; behind it, 64 MiB of pipelined requests.
  c.socket.write('GET /big HTTP/1.1\r\nhost: a\r\n\r\n');
  await eventually(() => p.downs.length === 1 && big.written > 0, 'the first response started', BOUND_MS);
  const down = p.downs[0]!;
  const one = 'GET / HTTP/1.1\r\nhost: a\r\n\r\n';
  // More than the kernel buffers of both ends can hold (loopback autotuning can reach tcp_rmem's maximum, 32 MiB on some systems).
  const pipelined = Buffer.from(one.repeat(Math.ceil((64 * 1024 * 1024) / one.length)));
  c.socket.write(pipelined);
  await eventually(() => down.isPaused(), 'the proxy stopped reading the client', BOUND_MS);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(down.isPaused());
  assert.ok(c.socket.writableLength > 0, 'the client\'s bytes wait in its own buffers, not in the proxy');
  await eventually(() => p.http('downstream_rq_idle_timeout') === 1, 'downstream_rq_idle_timeout counted', BOUND_MS);
  await eventually(() => down.destroyed, 'the proxy closed the connection', BOUND_MS);
  c.socket.destroy();
});

// --- case 7: many idle connections ------------------------------------------------------------------------------

test('500 idle connections are all accepted, then closed at the idle timeout: downstream_cx_idle_timeout, downstream_cx_active back to 0', async () => {
  const p = await startProxy({ idleMs: 2000 });
  const clients: RawClient[] = [];
  for (let batch = 0; batch < 10; batch++) clients.push(...(await Promise.all(Array.from({ length: 50 }, () => dial(p.port)))));
  // Ten of them are pooled clients that made a request first, then went idle.
  for (const c of clients.slice(0, 10)) c.socket.write('GET / HTTP/1.1\r\nhost: a\r\n\r\n');
  await eventually(() => p.listener('downstream_cx_total') === 500, 'all 500 accepted', BOUND_MS);
  await eventually(() => clients.every((c) => c.isClosed()), 'all 500 closed by the proxy', 20_000);
  assert.ok(clients.slice(0, 10).every((c) => /\r\n\r\nok$/.test(c.received())), 'the requests were answered first');
  assert.equal(p.http('downstream_cx_idle_timeout'), 500);
  await eventually(() => p.listener('downstream_cx_active') === 0, 'downstream_cx_active back to 0', BOUND_MS);
  assert.equal(p.listener('downstream_cx_destroy'), 500);
});

test('a connection with a request in progress is not closed by the idle timeout', async () => {
  const p = await startProxy({ idleMs: 300, streamIdleMs: 0 });
  const c = await dial(p.port);
  c.socket.write('POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\n\r\nab');
  await new Promise((r) => setTimeout(r, 900));
  assert.equal(c.isClosed(), false);
  c.socket.write('cd');
  await eventually(() => /\r\n\r\nok$/.test(c.received()), 'the response', BOUND_MS);
  await c.closed();
  assert.equal(p.http('downstream_cx_idle_timeout'), 1, 'idle again after the response, then closed');
});

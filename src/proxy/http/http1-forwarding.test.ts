// What an HTTP/1.1 request and its response look like on the far side of the proxy: heads that need no rewriting
// go out byte for byte (names' case, order, spacing) with only X-Forwarded-Proto added to requests; hop-by-hop
// fields, a client's own X-Forwarded-Proto, path and host rewrites and HTTP/1.0 still get the head rewritten.
// WebSocket upgrades (the connection manager's upgrade_configs) become a tunnel after the upstream's 101.
// Real sockets: a raw net client → Http1Session → a real ClusterRuntime → a raw net upstream that records the
// bytes it receives and answers with scripted bytes.
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { StatsStore } from '../admin/stats.ts';
import { compileRouteConfiguration, type RouteTable } from '../routing/compile.ts';
import { TlsProvider } from '../tls/provider.ts';
import { ClusterRuntime } from '../upstream/cluster-runtime.ts';
import { compileCluster } from '../upstream/compile.ts';
import { eventually } from '../test-support.ts';
import { Http1Session, httpManagerStats } from './http1-session.ts';

const stats = new StatsStore();
const tls = new TlsProvider(() => undefined);
let upstream: Server;
let cluster: ClusterRuntime;
/** A cluster without hosts. */
let nobody: ClusterRuntime;
let proxy: Server;
/** Request heads the upstream received, in order. */
const received: string[] = [];
/** The upstream's answer to the next request (a whole response). */
let answer = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';

const TABLE: RouteTable = compileRouteConfiguration({
  name: 'rds',
  virtualHosts: [{
    name: 'vh', domains: ['*'], routes: [
      { match: { prefix: '/old/' }, route: { cluster: 'app', prefixRewrite: '/new/' } },
      { match: { prefix: '/host/' }, route: { cluster: 'app', hostRewriteLiteral: 'rewritten.local' } },
      { match: { prefix: '/nobody/' }, route: { cluster: 'nobody' } },
      { match: { prefix: '/' }, route: { cluster: 'app' } },
    ],
  }],
});

before(async () => {
  upstream = createServer((s) => {
    let buf = '';
    let tunnel = false;
    s.on('data', (c: Buffer) => {
      // After a 101 the upstream echoes what it gets, upper-cased: proof that bytes went through it.
      if (tunnel) return void s.write(c.toString('latin1').toUpperCase());
      buf += c.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0 && !tunnel; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end + 4);
        received.push(head);
        buf = buf.slice(end + 4);
        if (/^upgrade: websocket\r$/im.test(head)) {
          tunnel = true;
          s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhello');
          if (buf) s.write(buf.toUpperCase());
          buf = '';
        } else {
          s.write(answer);
        }
      }
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  cluster = new ClusterRuntime(compileCluster({
    name: 'app', type: 'STATIC', connectTimeout: { seconds: '1' },
    loadAssignment: { endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: (upstream.address() as AddressInfo).port } } } }] }] },
  }), { stats, tls, log: () => {} });
  nobody = new ClusterRuntime(compileCluster({ name: 'nobody', type: 'STATIC', connectTimeout: { seconds: '1' }, loadAssignment: { endpoints: [] } }), { stats, tls, log: () => {} });
  const s = httpManagerStats(stats.scope('http.fwd'));
  proxy = createServer({ noDelay: true }, (socket) => {
    new Http1Session(socket, {
      routes: () => TABLE, cluster: (name) => (name === 'app' ? cluster.http : name === 'nobody' ? nobody.http : undefined), stats: s, scheme: 'http',
      remoteAddress: '127.0.0.1', now: Date.now, timeouts: {}, upgrades: ['websocket'],
    });
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
});

after(async () => {
  cluster.close();
  nobody.close();
  tls.close();
  await new Promise<void>((r) => proxy.close(() => r()));
  await new Promise<void>((r) => upstream.close(() => r()));
});

/** Sends `request` on a new connection; resolves with the response bytes once `complete` says they are all there. */
async function exchange(request: string, complete = (r: string) => r.endsWith('ok')): Promise<string> {
  const socket: Socket = netConnect({ host: '127.0.0.1', port: (proxy.address() as AddressInfo).port });
  let response = '';
  socket.on('data', (c: Buffer) => { response += c.toString('latin1'); });
  socket.on('error', () => {});
  socket.write(request);
  await eventually(() => complete(response), 'the response', 10_000);
  socket.destroy();
  return response;
}

async function forwarded(request: string): Promise<string> {
  const before = received.length;
  await exchange(request);
  await eventually(() => received.length > before, 'the upstream got the request');
  return received.at(-1)!;
}

test('a head that needs no rewriting goes out as received, with X-Forwarded-Proto added', async () => {
  const head = 'GET /a?b=c HTTP/1.1\r\nHost: svc.local:8080\r\nX-Odd-CASE:   spaced value \r\naccept: */*\r\n';
  assert.equal(await forwarded(`${head}\r\n`), `${head}x-forwarded-proto: http\r\n\r\n`);
});

test("the client's own X-Forwarded-Proto is replaced, not repeated", async () => {
  const out = await forwarded('GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-Proto: https\r\nx-a: 1\r\n\r\n');
  assert.equal(out.match(/x-forwarded-proto/gi)?.length, 1);
  assert.match(out, /^x-forwarded-proto: http\r$/im);
  assert.match(out, /^x-a: 1\r$/m);
});

test('hop-by-hop fields, and the fields Connection names, are dropped', async () => {
  const out = await forwarded('GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-secret\r\nKeep-Alive: timeout=5\r\nx-secret: s\r\nProxy-Connection: keep-alive\r\nx-kept: k\r\n\r\n');
  assert.doesNotMatch(out, /connection|keep-alive|x-secret/i);
  assert.match(out, /^x-kept: k\r$/m);
});

test('path and host rewrites, and an HTTP/1.0 request, rewrite the head', async () => {
  const path = await forwarded('GET /old/x HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.match(path, /^GET \/new\/x HTTP\/1\.1\r\n/);
  assert.match(path, /^x-envoy-original-path: \/old\/x\r$/m);
  const host = await forwarded('GET /host/y HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.match(host, /^host: rewritten\.local\r$/im);
  assert.doesNotMatch(host, /^Host: a\r$/m);
  const v10 = await forwarded('GET /z HTTP/1.0\r\nHost: a\r\n\r\n');
  assert.match(v10, /^GET \/z HTTP\/1\.1\r\n/);
});

test('a response head goes out as received unless it has hop-by-hop fields or the connection closes', async () => {
  answer = 'HTTP/1.1 200 Fine\r\nX-Up-CASE:  v \r\ncontent-length: 2\r\n\r\nok';
  assert.equal(await exchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), answer);
  answer = 'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\ncontent-length: 2\r\n\r\nok';
  const stripped = await exchange('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  assert.doesNotMatch(stripped, /keep-alive/i);
  assert.match(stripped, /^HTTP\/1\.1 200 OK\r\n/);
  answer = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok';
  const closing = await exchange('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
  assert.match(closing, /^connection: close\r$/im);
});

test('a WebSocket upgrade goes upstream with its Upgrade header; after the 101 the connection is a tunnel both ways', async () => {
  const before = received.length;
  const upgrades = stats.value('http.fwd.downstream_cx_upgrades_total') ?? 0;
  const socket: Socket = netConnect({ host: '127.0.0.1', port: (proxy.address() as AddressInfo).port });
  let got = '';
  socket.on('data', (c: Buffer) => { got += c.toString('latin1'); });
  socket.on('error', () => {});
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.write('GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  await eventually(() => got.includes('hello'), 'the 101 and the first tunnelled bytes', 10_000);
  const [head] = got.split('\r\n\r\n');
  assert.match(head!, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert.match(head!, /^upgrade: websocket$/im);
  assert.match(head!, /^connection: upgrade$/im);
  const sent = received[before]!;
  assert.match(sent, /^Upgrade: websocket\r$/m);
  assert.match(sent, /^connection: upgrade\r$/im);
  assert.match(sent, /^Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r$/m);
  assert.equal(stats.value('http.fwd.downstream_cx_upgrades_active'), 1);
  socket.write('ping through the tunnel');
  await eventually(() => got.endsWith('PING THROUGH THE TUNNEL'), 'the echo from the other side', 10_000);
  socket.end();
  await closed;
  assert.equal(stats.value('http.fwd.downstream_cx_upgrades_total'), upgrades + 1);
  await eventually(() => stats.value('http.fwd.downstream_cx_upgrades_active') === 0, 'the tunnel counted closed');
});

test('an upgrade the connection manager does not accept is forwarded as a plain request, its Upgrade dropped', async () => {
  const out = await forwarded('GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n');
  assert.doesNotMatch(out, /upgrade|http2-settings|connection/i);
});

test('a cluster with no host: each request is one 503 and one upstream_cx_none_healthy', async () => {
  // The first request finds the hosts unknown yet, the next ones find them known and empty (the fast path looks too).
  for (let i = 1; i <= 3; i++) {
    const r = await exchange('GET /nobody/x HTTP/1.1\r\nHost: a\r\n\r\n', (x) => x.endsWith('no healthy upstream'));
    assert.match(r, /^HTTP\/1\.1 503 /);
    assert.equal(stats.value('cluster.nobody.upstream_cx_none_healthy'), i);
  }
});

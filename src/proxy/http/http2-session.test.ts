// HTTP/2 downstream through a running listener, with real clients (curl over h2c and h2/TLS, node:http2) and
// real upstreams (node:http2 and node:http servers): routing, forwarding both ways, trailers, local replies,
// retries, timeouts, resets, flow control, and the upstream HTTP/2 pool.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import * as http2 from 'node:http2';
import { after, before, test } from 'node:test';
import { makeTestPki, type TestPki } from '../test-pki.ts';
import { closeH2Pools, h2Pool } from './h2-pool.ts';
import {
  TestCluster, curl, eventually, freePort, h2Request, readAll, route, routes, startH1Upstream, startH2Upstream, startProxy,
  type Proxy, type Upstream,
} from './h2-test-harness.ts';

let pki: TestPki;
const cleanup: (() => Promise<void> | void)[] = [];

before(async () => {
  pki = await makeTestPki();
});

after(async () => {
  closeH2Pools();
  for (const f of cleanup.reverse()) await f();
  rmSync(pki.dir, { recursive: true, force: true });
});

function track<T extends Proxy | Upstream | TestCluster>(x: T): T {
  cleanup.push(() => x.close());
  return x;
}

/** An h2 upstream answering by path. */
interface Seen { headers: http2.IncomingHttpHeaders; body: Buffer; trailers?: http2.IncomingHttpHeaders; stream: http2.ServerHttp2Stream }

type App = Awaited<ReturnType<typeof startH2Upstream>> & { seen: Seen[]; bigWritten: number };

async function h2App(opts: Parameters<typeof startH2Upstream>[1] = {}): Promise<App> {
  const seen: Seen[] = [];
  let flaky = 0;
  let slowFirst = 0;
  const counters = { bigWritten: 0 };
  const up = await startH2Upstream((stream, headers) => {
    const path = String(headers[':path']);
    const entry: Seen = { headers, body: Buffer.alloc(0), stream };
    seen.push(entry);
    stream.on('trailers', (t) => { entry.trailers = t; });
    if (path.startsWith('/hang') || path.startsWith('/hold')) return; // never answers (or when the test says)
    if (path.startsWith('/slowfirst') && slowFirst++ === 0) return;
    if (path.startsWith('/reset-now')) {
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (path.startsWith('/reset-mid')) {
      stream.respond({ ':status': 200 });
      stream.write('partial');
      setTimeout(() => stream.destroy(new Error('upstream gives up')), 50); // RST_STREAM INTERNAL_ERROR
      return;
    }
    if (path.startsWith('/flaky')) {
      // 503 on every other request
      if (flaky++ % 2 === 0) {
        stream.respond({ ':status': 503 }, { endStream: true });
        return;
      }
    }
    if (path.startsWith('/big')) {
      const size = Number(new URL(path, 'http://x').searchParams.get('n'));
      stream.respond({ ':status': 200, 'content-length': size });
      const chunk = Buffer.alloc(64 * 1024, 7);
      let left = size;
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          counters.bigWritten += n;
          if (!stream.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
            stream.once('drain', pump);
            return;
          }
        }
        stream.end();
      };
      pump();
      return;
    }
    readAll(stream).then((body) => {
      entry.body = body;
      if (stream.closed) return;
      if (path.startsWith('/trailers')) {
        stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': createHash('sha256').update(body).digest('hex') }));
        stream.end(body);
        return;
      }
      if (path.startsWith('/sha')) {
        stream.respond({ ':status': 200 });
        stream.end(createHash('sha256').update(body).digest('hex'));
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-upstream': 'h2' });
      stream.end(JSON.stringify({ path, method: headers[':method'], authority: headers[':authority'], scheme: headers[':scheme'], body: body.toString(), xfp: headers['x-forwarded-proto'], orig: headers['x-envoy-original-path'] ?? null, te: headers.te ?? null }));
    }, () => {});
  }, opts);
  const app = Object.assign(track(up), { seen, bigWritten: 0 });
  Object.defineProperty(app, 'bigWritten', { get: () => counters.bigWritten });
  return app;
}

test('h2c with prior knowledge (curl) through an AUTO listener to an HTTP/2 upstream: one pooled session, rewrites, stats, access log', async () => {
  const up = await h2App();
  const cluster = track(new TestCluster(up.port, { http2: true }));
  const proxy = track(await startProxy({
    routes: routes(route('/api/', 'c', { prefixRewrite: '/v1/' }), route('/', 'c')),
    clusters: { c: cluster },
  }));
  const r = await curl(['--http2-prior-knowledge', '-d', 'hello', `http://127.0.0.1:${proxy.port}/api/things?x=1`]);
  assert.equal(r.version, '2');
  assert.equal(r.status, 200);
  const body = JSON.parse(r.body);
  assert.equal(body.path, '/v1/things?x=1');
  assert.equal(body.orig, '/api/things?x=1');
  assert.equal(body.method, 'POST');
  assert.equal(body.body, 'hello');
  assert.equal(body.xfp, 'http');
  assert.equal(body.authority, `127.0.0.1:${proxy.port}`);
  assert.match(r.headers, /x-upstream: h2/);
  // Several requests on several client connections share one upstream session.
  for (let i = 0; i < 3; i++) assert.equal((await curl(['--http2-prior-knowledge', `http://127.0.0.1:${proxy.port}/x${i}`])).status, 200);
  assert.equal(up.connections, 1);
  assert.equal(cluster.connects, 1);
  assert.equal(proxy.stat('downstream_rq_total'), 4);
  assert.equal(proxy.stat('downstream_rq_http2_total'), 4);
  assert.equal(proxy.stat('downstream_cx_http2_total'), 4);
  assert.equal(proxy.stat('downstream_rq_2xx'), 4);
  assert.equal(cluster.stat('upstream_rq_total'), 4);
  assert.equal(cluster.stat('upstream_rq_200'), 4);
  await eventually(() => proxy.log.length === 4);
  const e = proxy.log[0]!;
  assert.equal(e.protocol, 'HTTP/2');
  assert.equal(e.status, 200);
  assert.equal(e.path, '/api/things?x=1');
  assert.equal(e.bytesReceived, 5);
  assert.equal(e.upstreamCluster, cluster.name);
  assert.equal(e.upstreamHost, `127.0.0.1:${up.port}`);
  assert.equal(e.responseFlags, '-');
});

test('h2c prior knowledge on a PERMISSIVE (inspected) listener: the inspected preface reaches the HTTP/2 session', async () => {
  const up = await h2App();
  const cluster = track(new TestCluster(up.port, { http2: true }));
  const proxy = track(await startProxy({ routes: routes(route('/', 'c')), clusters: { c: cluster }, mode: 'inspected', pki }));
  for (let i = 0; i < 2; i++) {
    const r = await curl(['--http2-prior-knowledge', '-d', `n${i}`, `http://127.0.0.1:${proxy.port}/p${i}`]);
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).body, `n${i}`);
  }
  // And a node client with several streams on one connection.
  const session = http2.connect(`http://127.0.0.1:${proxy.port}`);
  session.on('error', () => {});
  const all = await Promise.all([1, 2, 3].map((i) => h2Request(session, { ':path': `/m${i}`, ':method': 'POST' }, `b${i}`)));
  session.close();
  assert.deepEqual(all.map((x) => JSON.parse(x.body.toString()).body), ['b1', 'b2', 'b3']);
});

test('h2 over TLS (curl --http2, ALPN) to an HTTP/1.1 upstream: request re-framed, chunked response de-chunked, keep-alive upstream', async () => {
  const h1 = track(await startH1Upstream((req, res) => {
    readAll(req).then((body) => {
      res.setHeader('x-upstream', 'h1');
      res.setHeader('connection', 'keep-alive');
      res.setHeader('x-hop', 'gone');
      res.setHeader('connection', 'x-hop');
      // no content-length: node answers chunked
      res.write(JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, te: req.headers['transfer-encoding'] ?? null, cl: req.headers['content-length'] ?? null, body: body.toString(), cookie: req.headers.cookie ?? null }));
      res.end();
    }, () => {});
  }));
  const cluster = track(new TestCluster(h1.port));
  const proxy = track(await startProxy({ routes: routes(route('/', 'c')), clusters: { c: cluster }, mode: 'tls', pki }));
  const base = ['--http2', '--cacert', pki.caPath, '--resolve', `colorteller.mesh.local:${proxy.port}:127.0.0.1`];
  const url = `https://colorteller.mesh.local:${proxy.port}`;
  const r = await curl([...base, '-d', 'payload', '-H', 'cookie: a=1', `${url}/post?q=2`]);
  assert.equal(r.version, '2');
  assert.equal(r.status, 200);
  const body = JSON.parse(r.body);
  assert.deepEqual(body, { method: 'POST', url: '/post?q=2', host: `colorteller.mesh.local:${proxy.port}`, te: null, cl: '7', body: 'payload', cookie: 'a=1' });
  assert.match(r.headers, /x-upstream: h1/);
  assert.doesNotMatch(r.headers, /x-hop|transfer-encoding|connection:/i);
  // A body of unknown length goes out chunked.
  const chunked = await curl([...base, '-H', 'transfer-encoding: chunked', '--data-binary', '@-', `${url}/upload`], 'streamed body');
  assert.equal(chunked.status, 200);
  const cb = JSON.parse(chunked.body);
  assert.equal(cb.body, 'streamed body');
  assert.equal(cb.te, 'chunked');
  // GET without body: no framing field at all; the upstream connection was reused.
  const g = JSON.parse((await curl([...base, `${url}/get`])).body);
  assert.equal(g.method, 'GET');
  assert.equal(g.cl, null);
  assert.equal(g.te, null);
  assert.ok(cluster.connects < 3, `upstream connections reused (${cluster.connects} made)`);
});

test('trailers pass both ways between HTTP/2 peers', async () => {
  const up = await h2App();
  const cluster = track(new TestCluster(up.port, { http2: true }));
  const proxy = track(await startProxy({ routes: routes(route('/', 'c')), clusters: { c: cluster } }));
  const r = await h2Request(`http://127.0.0.1:${proxy.port}`, { ':path': '/trailers', ':method': 'POST', te: 'trailers' }, undefined, { trailers: { 'x-client-trailer': 'yes' } });
  assert.equal(r.status, 200);
  assert.equal(r.trailers?.['x-checksum'], createHash('sha256').update('').digest('hex'));
  const seen = up.seen.at(-1)!;
  assert.equal(seen.trailers?.['x-client-trailer'], 'yes');
  assert.equal(seen.headers.te, 'trailers');
  const withBody = await h2Request(`http://127.0.0.1:${proxy.port}`, { ':path': '/trailers', ':method': 'POST' }, 'abc');
  assert.equal(withBody.body.toString(), 'abc');
  assert.equal(withBody.trailers?.['x-checksum'], createHash('sha256').update('abc').digest('hex'));
});

test('local replies: 404 no route, cluster not found, 503 no healthy upstream, 503 connect failure, 504 route timeout, 408 stream idle timeout', async () => {
  const up = await h2App();
  const closedPort = await freePort();
  const proxy = track(await startProxy({
    routes: routes(
      route('/nohealthy', 'unhealthy'),
      route('/down', 'down'),
      route('/missing', 'nosuch'),
      route('/hang-idle', 'c', { timeout: { seconds: 0 }, idleTimeout: { nanos: 200_000_000 } }),
      route('/hang', 'c', { timeout: { nanos: 200_000_000 } }),
    ),
    clusters: {
      c: track(new TestCluster(up.port, { http2: true })),
      unhealthy: new TestCluster(1, { failWith: 'no-healthy-upstream' }),
      down: new TestCluster(closedPort, { http2: true }),
    },
  }));
  const url = `http://127.0.0.1:${proxy.port}`;
  const nr = await curl(['--http2-prior-knowledge', `${url}/other`]);
  assert.equal(nr.status, 404);
  const nc = await curl(['--http2-prior-knowledge', `${url}/missing`]);
  assert.equal(nc.status, 503);
  const uh = await curl(['--http2-prior-knowledge', `${url}/nohealthy`]);
  assert.equal(uh.status, 503);
  assert.equal(uh.body, 'no healthy upstream');
  const uf = await curl(['--http2-prior-knowledge', `${url}/down`]);
  assert.equal(uf.status, 503);
  assert.match(uf.body, /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure/);
  const ut = await curl(['--http2-prior-knowledge', `${url}/hang`]);
  assert.equal(ut.status, 504);
  assert.equal(ut.body, 'upstream request timeout');
  const si = await curl(['--http2-prior-knowledge', `${url}/hang-idle`]);
  assert.equal(si.status, 408);
  assert.equal(si.body, 'stream timeout');
  await eventually(() => proxy.log.length === 6);
  assert.deepEqual(proxy.log.map((e) => e.responseFlags), ['NR', 'NC', 'UH', 'UF', 'UT', 'SI']);
  assert.equal(proxy.stat('no_route'), 1);
  assert.equal(proxy.stat('no_cluster'), 1);
  assert.equal(proxy.stat('downstream_rq_4xx'), 2);
  assert.equal(proxy.stat('downstream_rq_5xx'), 4);
  assert.equal(proxy.stat('downstream_rq_idle_timeout'), 1);
});

test('retries: a 503 is retried per retry_on 5xx before anything went downstream; a reset before headers too', async () => {
  const up = await h2App();
  const cluster = track(new TestCluster(up.port, { http2: true }));
  const backOff = { baseInterval: { nanos: 1_000_000 } };
  const policy = { retryOn: '5xx', numRetries: { value: 2 }, retryBackOff: backOff };
  const proxy = track(await startProxy({
    routes: routes(route('/flaky', 'c', { retryPolicy: policy }), route('/slowfirst', 'c', { retryPolicy: { ...policy, perTryTimeout: { nanos: 200_000_000 } } }), route('/reset-now', 'c', { retryPolicy: { retryOn: 'reset', numRetries: { value: 1 }, retryBackOff: backOff } }), route('/', 'c')),
    clusters: { c: cluster },
  }));
  const url = `http://127.0.0.1:${proxy.port}`;
  const r = await h2Request(url, { ':path': '/flaky', ':method': 'POST' }, 'replayed body');
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body.toString()).body, 'replayed body');
  assert.equal(cluster.stat('upstream_rq_retry'), 1);
  assert.equal(cluster.stat('upstream_rq_retry_success'), 1);
  assert.equal(cluster.stat('upstream_rq_503'), 1);
  const reset = await h2Request(url, { ':path': '/reset-now' });
  assert.equal(reset.status, 503);
  assert.match(reset.body.toString(), /retried and the latest reset reason: remote reset/);
  assert.equal(cluster.stat('upstream_rq_retry'), 2);
  assert.deepEqual(cluster.outcomes.filter((o) => o === 'reset').length, 2);
  // A try that outlives the per-try timeout is abandoned and retried.
  const slow = await h2Request(url, { ':path': '/slowfirst', ':method': 'POST' }, 'second time lucky');
  assert.equal(slow.status, 200);
  assert.equal(JSON.parse(slow.body.toString()).body, 'second time lucky');
  assert.ok(cluster.outcomes.includes('timeout'));
  assert.equal(cluster.stat('upstream_rq_retry'), 3);
});

test('RST_STREAM crosses the proxy both ways', async () => {
  const up = await h2App();
  const cluster = track(new TestCluster(up.port, { http2: true }));
  const proxy = track(await startProxy({ routes: routes(route('/', 'c', { timeout: { seconds: 0 } })), clusters: { c: cluster } }));
  const url = `http://127.0.0.1:${proxy.port}`;
  // Upstream resets after the response started: the client's stream is reset (not ended: the body is cut).
  const mid = await h2Request(url, { ':path': '/reset-mid' });
  assert.equal(mid.status, 200);
  assert.equal(mid.body.toString(), 'partial');
  assert.equal(mid.rstCode, http2.constants.NGHTTP2_INTERNAL_ERROR);
  await eventually(() => proxy.log.some((e) => e.path === '/reset-mid'));
  assert.equal(proxy.log.find((e) => e.path === '/reset-mid')!.responseFlags, 'UR');
  // The client resets its stream: the upstream stream is reset too.
  const before = up.seen.length;
  const session = http2.connect(url);
  session.on('error', () => {});
  const req = session.request({ ':path': '/hang/cancel', ':method': 'POST' });
  req.on('error', () => {});
  req.write('x');
  await eventually(() => up.seen.length > before);
  const upstream = up.seen.at(-1)!.stream;
  const upstreamClosed = new Promise<number | undefined>((resolve) => upstream.once('close', () => resolve(upstream.rstCode)));
  req.close(http2.constants.NGHTTP2_CANCEL);
  assert.equal(await upstreamClosed, http2.constants.NGHTTP2_CANCEL);
  await eventually(() => proxy.log.some((e) => e.path === '/hang/cancel'));
  assert.equal(proxy.log.find((e) => e.path === '/hang/cancel')!.responseFlags, 'DC');
  session.close();
  await eventually(() => h2Pool(cluster).size === 1);
});

test('flow control: 8 MiB up and down through HTTP/2 on both sides and to an HTTP/1 upstream, intact', async () => {
  const up = await h2App();
  const h1 = track(await startH1Upstream((req, res) => {
    const hash = createHash('sha256');
    req.on('data', (c: Buffer) => hash.update(c));
    req.on('end', () => res.end(hash.digest('hex')));
  }));
  const proxy = track(await startProxy({
    routes: routes(route('/h1/', 'h1', { prefixRewrite: '/' }), route('/', 'c')),
    clusters: { c: track(new TestCluster(up.port, { http2: true })), h1: track(new TestCluster(h1.port)) },
  }));
  const url = `http://127.0.0.1:${proxy.port}`;
  const payload = randomBytes(8 * 1024 * 1024);
  const digest = createHash('sha256').update(payload).digest('hex');
  const upload = await h2Request(url, { ':path': '/sha', ':method': 'POST' }, payload);
  assert.equal(upload.body.toString(), digest);
  const h1upload = await h2Request(url, { ':path': '/h1/sha', ':method': 'POST' }, payload);
  assert.equal(h1upload.body.toString(), digest);
  const download = await h2Request(url, { ':path': `/big?n=${8 * 1024 * 1024}` });
  assert.equal(download.body.length, 8 * 1024 * 1024);
  assert.ok(download.body.every((b) => b === 7));
});

test('the upstream pool: concurrent streams share a session; after a GOAWAY the next request opens a new one', async () => {
  const up = await h2App();
  const cluster = track(new TestCluster(up.port, { http2: true }));
  const proxy = track(await startProxy({ routes: routes(route('/', 'c')), clusters: { c: cluster } }));
  const url = `http://127.0.0.1:${proxy.port}`;
  const session = http2.connect(url);
  session.on('error', () => {});
  const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => h2Request(session, { ':path': `/n${i}` })));
  assert.ok(rs.every((r) => r.status === 200));
  assert.equal(up.connections, 1);
  for (const s of up.sessions) s.goaway(http2.constants.NGHTTP2_NO_ERROR);
  await eventually(() => h2Pool(cluster).size === 0);
  const after = await h2Request(session, { ':path': '/after-goaway' });
  assert.equal(after.status, 200);
  assert.equal(up.connections, 2);
  session.close();
});

test('back-pressure: a client that stops reading stops the upstream (flow-control windows are not replenished)', async () => {
  const up = await h2App();
  const proxy = track(await startProxy({ routes: routes(route('/', 'c')), clusters: { c: track(new TestCluster(up.port, { http2: true })) } }));
  const total = 32 * 1024 * 1024;
  const session = http2.connect(`http://127.0.0.1:${proxy.port}`);
  session.on('error', () => {});
  const req = session.request({ ':path': `/big?n=${total}` });
  req.on('error', () => {});
  req.pause();
  await eventually(() => up.bigWritten > 0);
  // Nothing is read: the upstream gets stuck once the windows and buffers on the way are full (seen as no
  // progress over 30 polls; if it never stalls, it writes everything and the assertion below fails).
  let last = -1;
  let still = 0;
  await eventually(() => {
    still = up.bigWritten === last ? still + 1 : 0;
    last = up.bigWritten;
    return still >= 30 || up.bigWritten === total;
  }, 15_000);
  assert.ok(up.bigWritten < total / 2, `upstream wrote ${up.bigWritten} of ${total} bytes while the client read nothing`);
  let received = 0;
  req.on('data', (c: Buffer) => { received += c.length; });
  req.resume();
  await new Promise<void>((resolve) => req.on('end', () => resolve()));
  assert.equal(received, total);
  session.close();
});

test('TLS on both sides: curl --http2 → proxy → HTTP/2 upstream over TLS (ALPN h2)', async () => {
  const up = await h2App({ tls: { key: pki.server.keyPem, cert: pki.server.certPem } });
  const cluster = track(new TestCluster(up.port, { http2: true, tls: { ca: pki.caPem } }));
  const proxy = track(await startProxy({ routes: routes(route('/', 'c')), clusters: { c: cluster }, mode: 'tls', pki }));
  const r = await curl(['--http2', '--cacert', pki.caPath, '--resolve', `colorteller.mesh.local:${proxy.port}:127.0.0.1`, '-d', 'over tls', `https://colorteller.mesh.local:${proxy.port}/secure`]);
  assert.equal(r.version, '2');
  assert.equal(r.status, 200);
  const body = JSON.parse(r.body);
  assert.equal(body.body, 'over tls');
  assert.equal(body.scheme, 'https');
  assert.equal(body.xfp, 'https');
});

test("the pool respects the upstream's SETTINGS_MAX_CONCURRENT_STREAMS: more streams open more sessions", async () => {
  const up = await h2App({ settings: { maxConcurrentStreams: 2 } });
  const cluster = track(new TestCluster(up.port, { http2: true }));
  const proxy = track(await startProxy({ routes: routes(route('/', 'c', { timeout: { seconds: 0 } })), clusters: { c: cluster } }));
  const url = `http://127.0.0.1:${proxy.port}`;
  const session = http2.connect(url);
  session.on('error', () => {});
  assert.equal((await h2Request(session, { ':path': '/warm-up' })).status, 200); // the upstream's SETTINGS are known now
  const holds = Array.from({ length: 5 }, (_, i) => h2Request(session, { ':path': `/hold/${i}` }));
  await eventually(() => up.seen.filter((s) => String(s.headers[':path']).startsWith('/hold/')).length === 5);
  assert.equal(up.connections, 3);
  for (const s of up.seen) if (!s.stream.closed) s.stream.respond({ ':status': 200 }, { endStream: true });
  const done = await Promise.all(holds);
  assert.ok(done.every((r) => r.status === 200));
  session.close();
});

test('codec HTTP2 (no sniffing) serves h2c; trailers of a chunked HTTP/1.1 response reach the HTTP/2 client', async () => {
  const h1 = track(await startH1Upstream((req, res) => {
    readAll(req).then((body) => {
      res.setHeader('trailer', 'x-sum');
      res.write('chunk one,');
      res.write('chunk two');
      res.addTrailers({ 'x-sum': createHash('sha256').update(body).digest('hex') });
      res.end();
    }, () => {});
  }));
  const proxy = track(await startProxy({ routes: routes(route('/', 'c')), clusters: { c: track(new TestCluster(h1.port)) }, codec: 'HTTP2' }));
  const r = await h2Request(`http://127.0.0.1:${proxy.port}`, { ':path': '/t', ':method': 'POST', te: 'trailers' }, 'data');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'chunk one,chunk two');
  assert.equal(r.trailers?.['x-sum'], createHash('sha256').update('data').digest('hex'));
  assert.equal(r.headers.trailer, 'x-sum');
});

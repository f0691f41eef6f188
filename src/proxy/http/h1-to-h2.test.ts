// HTTP/1.1 clients (curl, plain HTTP/1.1) calling an HTTP/2 cluster through the proxy: the request goes out as a
// stream on the pooled HTTP/2 session, the response comes back re-framed for HTTP/1.1; retries, timeouts,
// failures and keep-alive as the HTTP/1 forwarder does them.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import * as http2 from 'node:http2';
import { connect } from 'node:net';
import { after, test } from 'node:test';
import { closeH2Pools } from './h2-pool.ts';
import { TestCluster, curl, eventually, freePort, readAll, route, routes, startH2Upstream, startProxy, type Proxy } from './h2-test-harness.ts';

const cleanup: (() => Promise<void> | void)[] = [];

after(async () => {
  closeH2Pools();
  for (const f of cleanup.reverse()) await f();
});

let flaky = 0;

async function setup(): Promise<{ proxy: Proxy; cluster: TestCluster; up: Awaited<ReturnType<typeof startH2Upstream>>; seen: http2.IncomingHttpHeaders[] }> {
  const seen: http2.IncomingHttpHeaders[] = [];
  const up = await startH2Upstream((stream, headers) => {
    seen.push(headers);
    const path = String(headers[':path']);
    if (path.startsWith('/hang')) return;
    if (path.startsWith('/flaky') && flaky++ % 2 === 0) {
      stream.respond({ ':status': 503 }, { endStream: true });
      return;
    }
    if (path.startsWith('/cut')) {
      stream.respond({ ':status': 200 });
      stream.write('partial');
      setTimeout(() => stream.destroy(new Error('cut')), 50);
      return;
    }
    readAll(stream).then((body) => {
      if (stream.closed) return;
      if (path.startsWith('/sha')) {
        const digest = createHash('sha256').update(body).digest('hex');
        stream.respond({ ':status': 200, 'content-length': digest.length });
        stream.end(digest);
        return;
      }
      if (path.startsWith('/big')) {
        stream.respond({ ':status': 200 }); // no length: chunked to the HTTP/1 client
        const chunk = Buffer.alloc(100_000, 9);
        let left = 40;
        const pump = () => {
          while (left-- > 0) if (!stream.write(chunk)) return void stream.once('drain', pump);
          stream.end();
        };
        pump();
        return;
      }
      if (path.startsWith('/empty')) {
        stream.respond({ ':status': 204 }, { endStream: true });
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-from': 'h2' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-trailer': 'dropped-for-h1' }));
      stream.end(JSON.stringify({
        method: headers[':method'], path, authority: headers[':authority'], scheme: headers[':scheme'], body: body.toString(),
        xfp: headers['x-forwarded-proto'], connection: headers.connection ?? null, te: headers.te ?? null, cl: headers['content-length'] ?? null,
      }));
    }, () => {});
  });
  const cluster = new TestCluster(up.port, { http2: true });
  const closed = await freePort();
  const proxy = await startProxy({
    routes: routes(
      route('/flaky', 'c', { retryPolicy: { retryOn: '5xx', numRetries: { value: 1 }, retryBackOff: { baseInterval: { nanos: 1_000_000 } } } }),
      route('/hang', 'c', { timeout: { nanos: 200_000_000 } }),
      route('/down', 'down'),
      route('/', 'c'),
    ),
    clusters: { c: cluster, down: new TestCluster(closed, { http2: true }) },
  });
  cleanup.push(() => proxy.close(), () => up.close(), () => cluster.close());
  return { proxy, cluster, up, seen };
}

test('HTTP/1.1 requests to an HTTP/2 cluster: headers mapped, bodies forwarded, responses re-framed, trailers dropped, keep-alive', async () => {
  const { proxy, cluster, up, seen } = await setup();
  const url = `http://127.0.0.1:${proxy.port}`;
  const r = await curl(['--http1.1', '-d', 'hello', '-H', 'connection: keep-alive, x-private', '-H', 'x-private: 1', `${url}/post?a=b`]);
  assert.equal(r.version, '1.1');
  assert.equal(r.status, 200);
  const body = JSON.parse(r.body);
  assert.deepEqual(body, { method: 'POST', path: '/post?a=b', authority: `127.0.0.1:${proxy.port}`, scheme: 'http', body: 'hello', xfp: 'http', connection: null, te: null, cl: '5' });
  assert.equal(seen.at(-1)!['x-private'], undefined, 'a field named by Connection is hop-by-hop');
  assert.match(r.headers, /transfer-encoding: chunked/i, 'no length from upstream: chunked');
  assert.doesNotMatch(r.headers, /x-trailer/);
  assert.match(r.headers, /x-from: h2/);
  // A chunked upload is de-chunked into DATA frames.
  const chunked = JSON.parse((await curl(['--http1.1', '-H', 'transfer-encoding: chunked', '--data-binary', '@-', `${url}/up`], 'piece by piece')).body);
  assert.equal(chunked.body, 'piece by piece');
  assert.equal(chunked.cl, null);
  // Content-Length from upstream is kept; 204 has no body; HEAD works.
  const sha = await curl(['--http1.1', '-d', 'abc', `${url}/sha`]);
  assert.equal(sha.body, createHash('sha256').update('abc').digest('hex'));
  assert.match(sha.headers, /content-length: 64/i);
  assert.equal((await curl(['--http1.1', `${url}/empty`])).status, 204);
  const head = await curl(['--http1.1', '-I', `${url}/sha`]);
  assert.equal(head.status, 200);
  // Two requests on one client connection, one upstream session for everything.
  const before = proxy.log.length;
  const two = await curl(['--http1.1', `${url}/one`, `${url}/two`]);
  assert.equal(two.status, 200);
  await eventually(() => proxy.log.length === before + 2);
  assert.equal(up.connections, 1);
  assert.equal(cluster.connects, 1);
  const e = proxy.log.at(-1)!;
  assert.equal(e.protocol, 'HTTP/1.1');
  assert.equal(e.upstreamCluster, cluster.name);
  assert.equal(proxy.stat('downstream_rq_http1_total'), proxy.stat('downstream_rq_total'));
});

test('HTTP/1.1 to HTTP/2: retries, timeout, connect failure, and an upstream reset mid-response', async () => {
  const { proxy, cluster } = await setup();
  const url = `http://127.0.0.1:${proxy.port}`;
  const r = await curl(['--http1.1', '-d', 'again', `${url}/flaky`]);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).body, 'again');
  assert.equal(cluster.stat('upstream_rq_retry'), 1);
  const t = await curl(['--http1.1', `${url}/hang`]);
  assert.equal(t.status, 504);
  assert.equal(t.body, 'upstream request timeout');
  const d = await curl(['--http1.1', `${url}/down`]);
  assert.equal(d.status, 503);
  assert.match(d.body, /reset reason: connection failure/);
  const cut = await curl(['--http1.1', `${url}/cut`]);
  assert.equal(cut.status, 200);
  assert.notEqual(cut.err, '', 'curl reports the cut transfer');
});

test('HTTP/1.1 to HTTP/2: 4 MB up and down with back-pressure, intact', async () => {
  const { proxy } = await setup();
  const payload = randomBytes(4 * 1024 * 1024);
  const raw = await new Promise<Buffer>((resolve, reject) => {
    const sock = connect(proxy.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('close', () => resolve(Buffer.concat(chunks)));
    sock.on('error', reject);
    const t = setTimeout(() => sock.destroy(new Error('no answer in 10 s')), 10_000);
    sock.on('close', () => clearTimeout(t));
    // (no half-close: the listener's sockets do not allow half-open connections)
    sock.write(`POST /sha HTTP/1.1\r\nhost: a\r\ncontent-length: ${payload.length}\r\nconnection: close\r\n\r\n`);
    sock.write(payload);
  });
  const text = raw.toString('latin1');
  assert.ok(text.endsWith(createHash('sha256').update(payload).digest('hex')), text.slice(0, 300));
  const big = await curl(['--http1.1', `http://127.0.0.1:${proxy.port}/big`]);
  assert.equal(big.status, 200);
  assert.equal(big.body.length, 4_000_000);
  assert.ok(/^\t+$/.test(big.body));
});

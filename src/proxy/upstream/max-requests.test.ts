// Envoy's max_requests_per_connection (HttpProtocolOptions.common_http_protocol_options): an upstream HTTP/1.1
// connection that has served that many requests is closed when it is given back, instead of being pooled.
// Real sockets: a ClusterRuntime's handle against a raw net upstream that counts its connections.
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { StatsStore } from '../admin/stats.ts';
import type { UpstreamConnection } from '../http/upstream-api.ts';
import { eventually } from '../test-support.ts';
import { TlsProvider } from '../tls/provider.ts';
import { ClusterRuntime } from './cluster-runtime.ts';
import { compileCluster } from './compile.ts';

const tls = new TlsProvider(() => undefined);
let upstream: Server;
let accepted = 0;
let open = 0;

before(async () => {
  upstream = createServer((s) => {
    accepted++;
    open++;
    s.once('close', () => open--);
    s.on('data', (c: Buffer) => {
      for (let i = c.toString('latin1').indexOf('\r\n\r\n'); i >= 0; i = c.toString('latin1').indexOf('\r\n\r\n', i + 4)) s.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
});

after(async () => {
  tls.close();
  await new Promise<void>((r) => upstream.close(() => r()));
});

function cluster(stats: StatsStore, maxRequestsPerConnection?: number): ClusterRuntime {
  return new ClusterRuntime(compileCluster({
    name: 'app', type: 'STATIC', connectTimeout: { seconds: '1' },
    loadAssignment: { endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: (upstream.address() as AddressInfo).port } } } }] }] },
    ...(maxRequestsPerConnection !== undefined ? {
      typedExtensionProtocolOptions: {
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
          '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
          commonHttpProtocolOptions: { maxRequestsPerConnection: { value: maxRequestsPerConnection } },
          explicitHttpConfig: { httpProtocolOptions: {} },
        },
      },
    } : {}),
  }), { stats, tls, log: () => {} });
}

/** One request as the HTTP/1 forwarder makes it: a pooled connection (or a new one), the exchange, the release. */
async function exchange(c: ClusterRuntime): Promise<UpstreamConnection> {
  const conn = c.http.takeIdle?.() ?? await c.http.connect();
  const response = await new Promise<string>((resolve) => {
    let got = '';
    const onData = (b: Buffer) => {
      got += b.toString('latin1');
      if (got.endsWith('ok')) {
        conn.socket.off('data', onData);
        resolve(got);
      }
    };
    conn.socket.on('data', onData);
    conn.socket.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  });
  assert.match(response, /^HTTP\/1\.1 200 OK/);
  c.http.release(conn, true);
  return conn;
}

test('max_requests_per_connection 2: five requests take three connections, each closed after its second request', async () => {
  const stats = new StatsStore();
  const c = cluster(stats, 2);
  assert.equal(c.spec.http.maxRequestsPerConnection, 2);
  const before = accepted;
  const sockets: UpstreamConnection['socket'][] = [];
  for (let i = 0; i < 5; i++) sockets.push((await exchange(c)).socket);
  assert.equal(accepted - before, 3);
  assert.deepEqual(sockets.map((s) => sockets.indexOf(s)), [0, 0, 2, 2, 4], 'requests 1-2, 3-4 and 5 share a connection');
  await eventually(() => sockets[0]!.destroyed && sockets[2]!.destroyed, 'the full connections closed');
  assert.equal(sockets[4]!.destroyed, false, 'the last one served one request and stays pooled');
  assert.equal(stats.value('cluster.app.upstream_cx_max_requests'), 2);
  assert.equal(stats.value('cluster.app.upstream_cx_total'), 3);
  assert.equal(stats.value('cluster.app.keymesh.upstream_cx_reused'), 2);
  c.close();
  await eventually(() => open === 0, 'every upstream connection closed');
});

test('max_requests_per_connection 1: a new connection per request, none pooled (keep-alive off, as Envoy says)', async () => {
  const stats = new StatsStore();
  const c = cluster(stats, 1);
  const before = accepted;
  for (let i = 0; i < 4; i++) {
    const conn = await exchange(c);
    assert.equal(conn.reused, false);
    assert.equal(conn.socket.destroyed, true);
  }
  assert.equal(accepted - before, 4);
  assert.equal(stats.value('cluster.app.upstream_cx_max_requests'), 4);
  await eventually(() => open === 0, 'the upstream saw every connection close');
  c.close();
});

test('without the limit the one pooled connection serves every request', async () => {
  const stats = new StatsStore();
  const c = cluster(stats);
  const before = accepted;
  for (let i = 0; i < 5; i++) await exchange(c);
  assert.equal(accepted - before, 1);
  assert.equal(stats.value('cluster.app.upstream_cx_max_requests'), undefined);
  c.close();
  await eventually(() => open === 0, 'every upstream connection closed');
});

// Requests to an HTTP/2 cluster are balanced one by one over its hosts, as Envoy's per-host pools do: one h2c
// client session through the proxy reaches every instance in turn, rather than the first connection taking
// everything. Real sockets: a node:http2 client → the proxy (AUTO codec) → a real ClusterRuntime (two STATIC
// hosts, HTTP/2) → two node:http2 servers that say who they are.
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { after, test } from 'node:test';
import { TlsProvider } from '../tls/provider.ts';
import { ClusterRuntime } from '../upstream/cluster-runtime.ts';
import { compileCluster } from '../upstream/compile.ts';
import { closeH2Pools } from './h2-pool.ts';
import { h2Request, route, routes, startH2Upstream, startProxy, stats } from './h2-test-harness.ts';

const cleanup: (() => Promise<void> | void)[] = [];

after(async () => {
  closeH2Pools();
  for (const f of cleanup.reverse()) await f();
});

async function instance(name: string) {
  const up = await startH2Upstream((stream) => {
    stream.respond({ ':status': 200 });
    stream.end(name);
  });
  cleanup.push(() => up.close());
  return up;
}

/**
 * An h2c client session to a proxy whose every request goes to the HTTP/2 cluster `name` (a real ClusterRuntime,
 * STATIC, its hosts on 127.0.0.1 at `ports`).
 */
async function clientThroughProxy(name: string, ports: readonly number[]): Promise<http2.ClientHttp2Session> {
  const tls = new TlsProvider(() => undefined);
  const cluster = new ClusterRuntime(compileCluster({
    name, type: 'STATIC', connectTimeout: { seconds: '1' },
    loadAssignment: {
      endpoints: ports.length === 0 ? [] : [{ lbEndpoints: ports.map((port) => ({ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } })) }],
    },
    typedExtensionProtocolOptions: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicitHttpConfig: { http2ProtocolOptions: {} },
      },
    },
  }), { stats, tls, log: () => {} });
  cleanup.push(() => {
    cluster.close();
    tls.close();
  });
  const proxy = await startProxy({ routes: routes(route('/', name)), clusters: { [name]: cluster.http } });
  cleanup.push(() => proxy.close());
  const client = http2.connect(`http://127.0.0.1:${proxy.port}`);
  client.on('error', () => {});
  cleanup.push(() => void client.close());
  return client;
}

test('an HTTP/2 cluster gets each request balanced over its hosts, not each connection', async () => {
  const a = await instance('a');
  const b = await instance('b');
  const client = await clientThroughProxy('grpc', [a.port, b.port]);
  const answers: string[] = [];
  // One after another on one client session: nothing but the balancing can spread them.
  for (let i = 0; i < 20; i++) {
    const r = await h2Request(client, { ':method': 'GET', ':path': `/call/${i}` });
    assert.equal(r.status, 200);
    answers.push(r.body.toString());
  }
  assert.equal(answers.filter((x) => x === 'a').length, 10, answers.join(''));
  assert.equal(answers.filter((x) => x === 'b').length, 10, answers.join(''));
  // Round robin: they alternate.
  for (let i = 1; i < answers.length; i++) assert.notEqual(answers[i], answers[i - 1], answers.join(''));
  // One session per host, kept for the next requests.
  assert.equal(a.connections, 1);
  assert.equal(b.connections, 1);
});

test('a request to an HTTP/2 cluster with no host is one 503 and one upstream_cx_none_healthy, however the pool asked', async () => {
  const client = await clientThroughProxy('nobody', []);
  // The first request finds the hosts unknown yet, the second finds them known and empty: one count each.
  for (let i = 1; i <= 2; i++) {
    assert.equal((await h2Request(client, { ':method': 'GET', ':path': '/' })).status, 503);
    assert.equal(stats.value('cluster.nobody.upstream_cx_none_healthy'), i);
  }
});

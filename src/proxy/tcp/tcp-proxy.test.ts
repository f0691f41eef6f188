// The TCP proxy contains what it cannot serve (issue 5): an idle connection is closed at the tcp_proxy idle
// timeout (`tcp.<prefix>.idle_timeout`), both sides; an upstream that refuses the connection closes the
// downstream one (`tcp.<prefix>.upstream_connect_fail`, and the cluster's `upstream_cx_connect_fail`); no
// cluster: `downstream_cx_no_route`. Real sockets: a net client → RunningListener with a tcp_proxy chain → a real
// ClusterRuntime → an echo server. Bounded waits only.
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { StatsStore } from '../admin/stats.ts';
import { compileListener, type TcpFilterSpec } from '../listeners/compile.ts';
import { RunningListener } from '../listeners/listener.ts';
import { TlsProvider } from '../tls/provider.ts';
import { ClusterRuntime } from '../upstream/cluster-runtime.ts';
import { compileCluster } from '../upstream/compile.ts';
import { handleTcpProxy, tcpProxyStats } from './tcp-proxy.ts';
import { eventually, freePort } from '../test-support.ts';

const stats = new StatsStore();
const tls = new TlsProvider(() => undefined);
const running: RunningListener[] = [];
const clusters = new Map<string, ClusterRuntime>();
let echo: Server;
/** Upstream connections the echo server holds open. */
const echoOpen = new Set<Socket>();



function staticCluster(name: string, port: number): ClusterRuntime {
  const c = new ClusterRuntime(compileCluster({
    name, type: 'STATIC', connectTimeout: { seconds: '1' },
    loadAssignment: { endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } }] }] },
  }), { stats, tls, log: () => {} });
  clusters.set(name, c);
  return c;
}

before(async () => {
  echo = createServer((s) => {
    echoOpen.add(s);
    s.on('error', () => {});
    s.once('close', () => echoOpen.delete(s));
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  staticCluster('echo', (echo.address() as AddressInfo).port);
  staticCluster('refusing', await freePort()); // nothing listens there
});

after(async () => {
  for (const l of running) await l.close(100);
  for (const c of clusters.values()) c.close();
  tls.close();
  for (const s of echoOpen) s.destroy();
  await new Promise<void>((r) => echo.close(() => r()));
});

let seq = 0;

async function start(cluster: string, idleTimeout?: { seconds: string; nanos: number }): Promise<{ port: number; tcp(name: string): number; listener(name: string): number }> {
  const port = await freePort();
  const prefix = `t${++seq}`;
  const spec = compileListener({
    name: `l_${port}`, address: { socketAddress: { address: '127.0.0.1', portValue: port } },
    filterChains: [{
      name: 'tcp',
      filters: [{
        name: 'envoy.filters.network.tcp_proxy',
        typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', statPrefix: prefix, cluster, ...(idleTimeout ? { idleTimeout } : {}) },
      }],
    }],
  });
  const filter = spec.filterChains[0]!.filter as TcpFilterSpec;
  const s = tcpProxyStats(stats.scope(`tcp.${prefix}`));
  const l = new RunningListener(spec, {
    tls, stats: stats.scope(`listener.${prefix}`),
    handlerFor: () => (conn) => handleTcpProxy(conn, filter, (name) => clusters.get(name), s),
  });
  await l.listen();
  running.push(l);
  return { port, tcp: (n) => stats.value(`tcp.${prefix}.${n}`) ?? 0, listener: (n) => stats.value(`listener.${prefix}.${n}`) ?? 0 };
}

function dial(port: number): Promise<{ socket: Socket; received: () => string; isClosed: () => boolean }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let out = '';
    let closed = false;
    socket.on('data', (d) => { out += String(d); });
    socket.on('error', () => {});
    socket.once('close', () => { closed = true; });
    socket.once('connect', () => resolve({ socket, received: () => out, isClosed: () => closed }));
    socket.once('error', reject);
  });
}

test('an idle TCP proxy connection is closed at the idle timeout, both sides: tcp.<prefix>.idle_timeout', async () => {
  const p = await start('echo', { seconds: '0', nanos: 500_000_000 });
  const c = await dial(p.port);
  c.socket.write('hello');
  await eventually(() => c.received() === 'hello', 'echoed through the proxy');
  assert.equal(echoOpen.size, 1);
  await eventually(() => c.isClosed(), 'the proxy closes the idle connection');
  assert.equal(p.tcp('idle_timeout'), 1);
  assert.equal(p.tcp('downstream_cx_rx_bytes_total'), 5);
  assert.equal(p.tcp('downstream_cx_tx_bytes_total'), 5);
  await eventually(() => echoOpen.size === 0, 'the upstream connection closed too');
  await eventually(() => p.listener('downstream_cx_active') === 0, 'downstream_cx_active back to 0');
});

test('traffic keeps a TCP proxy connection open past the idle timeout', async () => {
  const p = await start('echo', { seconds: '1', nanos: 0 });
  const c = await dial(p.port);
  // 1.5 s in all, a byte every 100 ms.
  for (let i = 0; i < 15; i++) {
    c.socket.write('x');
    await eventually(() => c.received().length === i + 1, `echo ${i + 1}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(c.isClosed(), false);
  assert.equal(p.tcp('idle_timeout'), 0);
  c.socket.destroy();
  await eventually(() => p.listener('downstream_cx_active') === 0, 'closed');
});

test('the upstream refuses the connection: the downstream is closed; tcp upstream_connect_fail and the cluster\'s upstream_cx_connect_fail', async () => {
  const p = await start('refusing');
  const before = stats.value('cluster.refusing.upstream_cx_connect_fail') ?? 0;
  const c = await dial(p.port);
  c.socket.write('hello');
  await eventually(() => c.isClosed(), 'the proxy closes the downstream connection');
  assert.equal(c.received(), '');
  assert.equal(p.tcp('upstream_connect_fail'), 1);
  assert.equal(stats.value('cluster.refusing.upstream_cx_connect_fail'), before + 1);
  await eventually(() => p.listener('downstream_cx_active') === 0, 'downstream_cx_active back to 0');
});

test('a cluster that does not exist: the downstream is closed; downstream_cx_no_route', async () => {
  const p = await start('nowhere');
  const c = await dial(p.port);
  await eventually(() => c.isClosed(), 'the proxy closes the connection');
  assert.equal(p.tcp('downstream_cx_no_route'), 1);
});

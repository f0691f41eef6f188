// AUTO codec: a connection that sends nothing, or a prefix of the HTTP/2 preface, is bounded too.
import assert from 'node:assert/strict';
import { connect as netConnect, createServer, type AddressInfo } from 'node:net';
import { test } from 'node:test';
import { StatsStore } from '../admin/stats.ts';
import { compileListener } from '../listeners/compile.ts';
import { RunningListener } from '../listeners/listener.ts';
import { compileRouteConfiguration } from '../routing/compile.ts';
import { TlsProvider } from '../tls/provider.ts';
import { handleHttp } from './http-handler.ts';
import { httpManagerStats } from './http1-session.ts';
import { eventually } from '../test-support.ts';


test('AUTO: a silent connection is closed at the idle timeout; a stalled preface prefix at the request headers timeout', async () => {
  const port = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const stats = new StatsStore();
  const tls = new TlsProvider(() => undefined);
  const hcm = { name: 'envoy.filters.network.http_connection_manager', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', statPrefix: 'a', codecType: 'AUTO', rds: { routeConfigName: 'rds', configSource: { ads: {} } }, httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }] } };
  const spec = compileListener({ name: 'l', address: { socketAddress: { address: '127.0.0.1', portValue: port } }, filterChains: [{ name: 'plain', filters: [hcm] }] });
  const table = compileRouteConfiguration({ name: 'rds', virtualHosts: [] });
  const s = httpManagerStats(stats.scope('http.a'));
  const l = new RunningListener(spec, { tls, stats: stats.scope('listener.a'), handlerFor: () => (conn) => handleHttp(conn, { routes: () => table, cluster: () => undefined, stats: s, codec: 'AUTO', now: Date.now, timeouts: { idleMs: 400, requestHeadersMs: 400 } }) });
  await l.listen();
  const closed = (write?: string) => new Promise<void>((resolve) => {
    const c = netConnect({ host: '127.0.0.1', port });
    c.on('error', () => {});
    c.once('connect', () => { if (write) c.write(write); });
    c.once('close', () => resolve());
  });
  await closed();
  assert.equal(stats.value('http.a.downstream_cx_idle_timeout'), 1);
  await closed('PRI * HTTP/2');
  assert.equal(stats.value('http.a.downstream_rq_header_timeout'), 1);
  await eventually(() => stats.value('listener.a.downstream_cx_active') === 0, 'all closed');
  await l.close(100);
  tls.close();
});

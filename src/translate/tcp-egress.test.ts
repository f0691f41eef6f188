// TranslateOptions.tcpEgressAddress: a listener per tcp backend port for machines without iptables.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as codec from '../envoy/protos.ts';
import type { JsonObject } from '../model/json.ts';
import type { EnvoyConfig, TranslateOptions } from './api.ts';
import { assertGolden, assertRoundTrips, MeshBuilder } from './test-fixtures.ts';
import { translate } from './translate.ts';

const UPDATE = process.env.KEYMESH_UPDATE_GOLDEN === '1';

/**
 * `client` reaches `db.local` (node db, tcp 5432 with an idle timeout), `cache.local` (a router whose tcp
 * route splits 6379 between cache-a and cache-b 3:1) and `web.local` (http 8080).
 */
function mesh(clientSpec: object = {}): MeshBuilder {
  const tcpNode = (port: number, host: string, extra: object = {}) => ({ listeners: [{ portMapping: { port, protocol: 'tcp' }, ...extra }], serviceDiscovery: { dns: { hostname: host } } });
  return new MeshBuilder('m')
    .node('db', tcpNode(5432, 'db.local', { timeout: { tcp: { idle: { unit: 's', value: 600 } } } }))
    .node('cache-a', tcpNode(6379, 'cache-a.local'))
    .node('cache-b', tcpNode(6379, 'cache-b.local'))
    .node('web', { listeners: [{ portMapping: { port: 8080, protocol: 'http' } }], serviceDiscovery: { dns: { hostname: 'web.local' } } })
    .router('cache', { listeners: [{ portMapping: { port: 6379, protocol: 'tcp' } }] })
    .route('cache', 'split', { tcpRoute: { action: { weightedTargets: [{ virtualNode: 'cache-a', weight: 3 }, { virtualNode: 'cache-b', weight: 1 }] } } })
    .service('db.local', { provider: { virtualNode: { virtualNodeName: 'db' } } })
    .service('cache.local', { provider: { virtualRouter: { virtualRouterName: 'cache' } } })
    .service('web.local', { provider: { virtualNode: { virtualNodeName: 'web' } } })
    .node('client', {
      listeners: [{ portMapping: { port: 9000, protocol: 'http' } }],
      backends: ['db.local', 'cache.local', 'web.local'].map((s) => ({ virtualService: { virtualServiceName: s } })),
      ...clientSpec,
    });
}

function run(b: MeshBuilder, options: TranslateOptions, name = 'client', kind: 'virtualNode' | 'virtualGateway' = 'virtualNode'): EnvoyConfig {
  const c = translate({ view: b.view(), proxy: { kind, name }, endpoints: {}, options });
  assertRoundTrips(c, codec);
  return c;
}

const names = (c: EnvoyConfig) => c.listeners.map((l) => String(l.name));
const chainsOf = (l: JsonObject) => l.filterChains as JsonObject[];

test('golden: a listener at the tcp egress address per tcp backend port, next to the unchanged egress listener', () => {
  const options = { listenAddress: '127.0.0.11', tcpEgressAddress: '127.0.1.11' };
  const c = run(mesh(), options);
  assertGolden('tcp-egress-client', c, UPDATE);
  assert.deepEqual(names(c), ['lds_egress_127.0.0.11_15001', 'lds_egress_tcp_127.0.1.11_5432', 'lds_egress_tcp_127.0.1.11_6379', 'lds_ingress_127.0.0.11_15000']);
  // The egress listener is what it is without the option.
  const without = run(mesh(), { listenAddress: '127.0.0.11' });
  assert.deepEqual(c.listeners.filter((l) => !String(l.name).startsWith('lds_egress_tcp_')), without.listeners);
  assert.deepEqual(c.clusters, without.clusters);
  assert.deepEqual(c.routeConfigurations, without.routeConfigurations);
});

test('each port listener has only the egress chain of its port: same clusters, weights, idle timeout and stat prefix, as a copy', () => {
  const c = run(mesh(), { tcpEgressAddress: '127.0.1.11' });
  const egress = c.listeners.find((l) => l.name === 'lds_egress_0.0.0.0_15001')!;
  for (const port of [5432, 6379]) {
    const l = c.listeners.find((x) => x.name === `lds_egress_tcp_127.0.1.11_${port}`)!;
    assert.deepEqual(l.address, { socketAddress: { address: '127.0.1.11', portValue: port } });
    assert.equal(l.listenerFilters, undefined, 'nothing to inspect: the port says which backend');
    const [chain, ...more] = chainsOf(l);
    assert.deepEqual(more, []);
    assert.equal(chain!.filterChainMatch, undefined);
    const original = chainsOf(egress).find((ch) => ch.name === `egress_tcp_${port}`)!;
    assert.deepEqual(chain!.filters, original.filters);
    assert.notEqual((chain!.filters as JsonObject[])[0], (original.filters as JsonObject[])[0]);
  }
  const tcp = (port: number) => (chainsOf(c.listeners.find((x) => x.name === `lds_egress_tcp_127.0.1.11_${port}`)!)[0]!.filters as JsonObject[])[0]!.typedConfig as JsonObject;
  assert.deepEqual(tcp(5432), { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', statPrefix: 'egress.tcp.5432', cluster: 'cds_egress_m_db_tcp_5432', idleTimeout: { seconds: '600', nanos: 0 } });
  assert.deepEqual(tcp(6379).weightedClusters, { clusters: [{ name: 'cds_egress_m_cache-a_tcp_6379', weight: 3 }, { name: 'cds_egress_m_cache-b_tcp_6379', weight: 1 }] });
});

test('no option, no tcp backend, or a gateway: no port listeners', () => {
  assert.ok(!names(run(mesh(), {})).some((n) => n.startsWith('lds_egress_tcp_')));
  const httpOnly = mesh({ backends: [{ virtualService: { virtualServiceName: 'web.local' } }] });
  assert.ok(!names(run(httpOnly, { tcpEgressAddress: '127.0.1.11' })).some((n) => n.startsWith('lds_egress_tcp_')));
  const gw = mesh().gateway('gw', { listeners: [{ portMapping: { port: 8080, protocol: 'http' } }] })
    .gatewayRoute('gw', 'r', { httpRoute: { match: { prefix: '/' }, action: { target: { virtualService: { virtualServiceName: 'web.local' } } } } });
  assert.ok(!names(run(gw, { tcpEgressAddress: '127.0.1.11' }, 'gw', 'virtualGateway')).some((n) => n.startsWith('lds_egress_tcp_')));
});

test('a port the ingress or egress listener binds on an overlapping address gets no listener', () => {
  // Backends on 5432 and 6379; the proxy's own ports moved onto them.
  const clash = { ingressPort: 5432, egressPort: 6379 };
  const tcpNames = (o: TranslateOptions, b = mesh()) => names(run(b, o)).filter((n) => n.startsWith('lds_egress_tcp_'));
  assert.deepEqual(tcpNames({ ...clash, listenAddress: '127.0.0.11', tcpEgressAddress: '127.0.0.11' }), []);
  assert.deepEqual(tcpNames({ ...clash, tcpEgressAddress: '127.0.1.11' }), [], '0.0.0.0 takes every IPv4 address');
  assert.deepEqual(tcpNames({ ...clash, listenAddress: '::', tcpEgressAddress: '127.0.1.11' }), [], ':: takes IPv4 too');
  assert.deepEqual(tcpNames({ ...clash, listenAddress: '127.0.0.11', tcpEgressAddress: '0.0.0.0' }), []);
  assert.deepEqual(tcpNames({ ...clash, listenAddress: '0.0.0.0', tcpEgressAddress: '::1' }), ['lds_egress_tcp_::1_5432', 'lds_egress_tcp_::1_6379'], 'another family');
  assert.deepEqual(tcpNames({ ...clash, listenAddress: '127.0.0.11', tcpEgressAddress: '127.0.1.11' }), ['lds_egress_tcp_127.0.1.11_5432', 'lds_egress_tcp_127.0.1.11_6379']);
  // A node without listeners has no ingress listener to clash with.
  assert.deepEqual(tcpNames({ ...clash, listenAddress: '127.0.0.11', tcpEgressAddress: '127.0.0.11' }, mesh({ listeners: [] })), ['lds_egress_tcp_127.0.0.11_5432']);
});

// TranslateOptions.upstreamMaxRequestsPerConnection and upstreamTlsMaxSessionKeys (node.metadata.keymesh
// upstream_max_requests_per_connection / upstream_tls_max_session_keys): opt-in settings of a proxy's clusters
// to other virtual nodes, for operators and benchmarks; App Mesh's API has none.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as codec from '../envoy/protos.ts';
import type { JsonObject } from '../model/json.ts';
import type { EnvoyConfig, TranslateOptions } from './api.ts';
import { assertGolden, assertRoundTrips, MeshBuilder } from './test-fixtures.ts';
import { translate } from './translate.ts';

const UPDATE = process.env.KEYMESH_UPDATE_GOLDEN === '1';
const HPO = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/**
 * `client` (its own http listener 9000) reaches web.local (http 8080, mTLS by its client policy), rpc.local
 * (grpc 9090, the same policy), db.local (tcp 5432, the same policy) and plain.local (http 8081, no TLS); a
 * gateway `gw` routes to web.local.
 */
function mesh(): MeshBuilder {
  const node = (port: number, protocol: string, host: string, tls = true) => ({
    listeners: [{
      portMapping: { port, protocol },
      ...(tls ? { tls: { mode: 'STRICT', certificate: { file: { certificateChain: `/certs/${host}.pem`, privateKey: `/certs/${host}.key` } } } } : {}),
    }],
    serviceDiscovery: { dns: { hostname: host } },
  });
  const policy = { tls: { ports: [8080, 9090, 5432], certificate: { file: { certificateChain: '/certs/client.pem', privateKey: '/certs/client.key' } }, validation: { trust: { file: { certificateChain: '/certs/ca.pem' } } } } };
  return new MeshBuilder('m')
    .node('web', node(8080, 'http', 'web.local'))
    .node('rpc', node(9090, 'grpc', 'rpc.local'))
    .node('db', node(5432, 'tcp', 'db.local'))
    .node('plain', node(8081, 'http', 'plain.local', false))
    .service('web.local', { provider: { virtualNode: { virtualNodeName: 'web' } } })
    .service('rpc.local', { provider: { virtualNode: { virtualNodeName: 'rpc' } } })
    .service('db.local', { provider: { virtualNode: { virtualNodeName: 'db' } } })
    .service('plain.local', { provider: { virtualNode: { virtualNodeName: 'plain' } } })
    .node('client', {
      listeners: [{ portMapping: { port: 9000, protocol: 'http' } }],
      backends: ['web.local', 'rpc.local', 'db.local', 'plain.local'].map((s) => ({ virtualService: { virtualServiceName: s } })),
      backendDefaults: { clientPolicy: policy },
    })
    .gateway('gw', { listeners: [{ portMapping: { port: 8443, protocol: 'http' } }], backendDefaults: { clientPolicy: policy } })
    .gatewayRoute('gw', 'web', { httpRoute: { match: { prefix: '/' }, action: { target: { virtualService: { virtualServiceName: 'web.local' } } } } });
}

function run(options: TranslateOptions, name = 'client', kind: 'virtualNode' | 'virtualGateway' = 'virtualNode'): EnvoyConfig {
  const c = translate({ view: mesh().view(), proxy: { kind, name }, endpoints: {}, options });
  assertRoundTrips(c, codec);
  return c;
}

const cluster = (c: EnvoyConfig, name: string) => {
  const found = c.clusters.find((x) => x.name === name);
  assert.ok(found, `${name} in ${c.clusters.map((x) => String(x.name)).join(', ')}`);
  return found;
};
const tlsOf = (cl: JsonObject) => (cl.transportSocket as { typedConfig: JsonObject } | undefined)?.typedConfig;
const hpoOf = (cl: JsonObject) => (cl.typedExtensionProtocolOptions as Record<string, JsonObject> | undefined)?.[HPO];

test('golden: max_requests_per_connection on the HTTP-like egress clusters, max_session_keys on the TLS ones', () => {
  const c = run({ upstreamMaxRequestsPerConnection: 1, upstreamTlsMaxSessionKeys: 0 });
  assertGolden('upstream-options-client', c, UPDATE);
  const web = cluster(c, 'cds_egress_m_web_http_8080');
  assert.deepEqual(hpoOf(web), {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    commonHttpProtocolOptions: { maxRequestsPerConnection: { value: 1 } },
    explicitHttpConfig: { httpProtocolOptions: {} },
  });
  assert.deepEqual(tlsOf(web)?.maxSessionKeys, { value: 0 });
  // gRPC keeps its HTTP/2 choice; the limit is added next to it.
  const rpc = cluster(c, 'cds_egress_m_rpc_grpc_9090');
  assert.deepEqual(hpoOf(rpc)?.explicitHttpConfig, { http2ProtocolOptions: {} });
  assert.deepEqual(hpoOf(rpc)?.commonHttpProtocolOptions, { maxRequestsPerConnection: { value: 1 } });
  assert.deepEqual(tlsOf(rpc)?.maxSessionKeys, { value: 0 });
  // tcp: TLS settings only (no HTTP there).
  const db = cluster(c, 'cds_egress_m_db_tcp_5432');
  assert.equal(db.typedExtensionProtocolOptions, undefined);
  assert.deepEqual(tlsOf(db)?.maxSessionKeys, { value: 0 });
  // plaintext: the request limit only.
  const plain = cluster(c, 'cds_egress_m_plain_http_8081');
  assert.equal(plain.transportSocket, undefined);
  assert.deepEqual(hpoOf(plain)?.commonHttpProtocolOptions, { maxRequestsPerConnection: { value: 1 } });
});

test('only clusters to other virtual nodes change: the local app, the amazonaws cluster, listeners and routes stay as without the options', () => {
  const c = run({ upstreamMaxRequestsPerConnection: 1, upstreamTlsMaxSessionKeys: 0 });
  const without = run({});
  assert.deepEqual(c.listeners, without.listeners);
  assert.deepEqual(c.routeConfigurations, without.routeConfigurations);
  assert.deepEqual(c.clusterLoadAssignments, without.clusterLoadAssignments);
  assert.deepEqual(c.secrets, without.secrets);
  const others = (x: EnvoyConfig) => x.clusters.filter((cl) => !String(cl.name).startsWith('cds_egress_m_') || String(cl.name) === 'cds_egress_m_amazonaws');
  assert.ok(others(c).length >= 2);
  assert.deepEqual(others(c), others(without));
  for (const cl of without.clusters) {
    assert.equal(tlsOf(cl)?.maxSessionKeys, undefined, `${String(cl.name)}: nothing by default`);
    assert.equal(hpoOf(cl)?.commonHttpProtocolOptions, undefined, `${String(cl.name)}: nothing by default`);
  }
});

test('each option alone; other values are passed on', () => {
  const requests = run({ upstreamMaxRequestsPerConnection: 1000 });
  assert.deepEqual(hpoOf(cluster(requests, 'cds_egress_m_web_http_8080'))?.commonHttpProtocolOptions, { maxRequestsPerConnection: { value: 1000 } });
  assert.equal(tlsOf(cluster(requests, 'cds_egress_m_web_http_8080'))?.maxSessionKeys, undefined);
  const keys = run({ upstreamTlsMaxSessionKeys: 3 });
  assert.equal(hpoOf(cluster(keys, 'cds_egress_m_web_http_8080')), undefined);
  assert.deepEqual(tlsOf(cluster(keys, 'cds_egress_m_web_http_8080'))?.maxSessionKeys, { value: 3 });
});

test("a gateway's clusters to virtual nodes get them too; its self redirect does not", () => {
  const c = run({ upstreamMaxRequestsPerConnection: 1, upstreamTlsMaxSessionKeys: 0 }, 'gw', 'virtualGateway');
  const web = cluster(c, 'cds_egress_m_web_http_8080');
  assert.deepEqual(hpoOf(web)?.commonHttpProtocolOptions, { maxRequestsPerConnection: { value: 1 } });
  assert.deepEqual(tlsOf(web)?.maxSessionKeys, { value: 0 });
  const without = run({}, 'gw', 'virtualGateway');
  const redirect = (x: EnvoyConfig) => x.clusters.filter((cl) => String(cl.name).includes('self_redirect'));
  assert.deepEqual(redirect(c), redirect(without));
});

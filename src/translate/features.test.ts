// Focused tests: connection pools, circuit breaker defaults and outlier detection, the mesh egress filter
// (ALLOW_ALL passthrough, AWS APIs under DROP_ALL), endpoints per listener port, ACM issuer validation without a
// client policy, gateway route retries, the listen address.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JsonObject } from '../model/json.ts';
import type { EnvoyConfig, Endpoint, TranslateInput } from './api.ts';
import { listenerEndpoints, UNLIMITED } from './clusters.ts';
import { assertRoundTrips, MeshBuilder } from './test-fixtures.ts';
import { translate } from './translate.ts';
import * as codec from '../envoy/protos.ts';

function run(b: MeshBuilder, kind: 'virtualNode' | 'virtualGateway', name: string, extra: Partial<TranslateInput> = {}): EnvoyConfig {
  const c = translate({ view: b.view(), proxy: { kind, name }, endpoints: {}, ...extra });
  assertRoundTrips(c, codec);
  return c;
}
const cluster = (c: EnvoyConfig, n: string) => {
  const found = c.clusters.find((x) => x.name === n);
  assert.ok(found, `no cluster ${n} in ${c.clusters.map((x) => String(x.name)).join(', ')}`);
  return found;
};
const listener = (c: EnvoyConfig, n: string) => c.listeners.find((l) => l.name === n)!;
const thresholds = (cl: JsonObject) => ((cl.circuitBreakers as JsonObject).thresholds as JsonObject[])[0];
const limits = (conn: number, pending: number, req: number) => ({
  maxConnections: { value: conn }, maxPendingRequests: { value: pending }, maxRequests: { value: req }, maxRetries: { value: UNLIMITED },
});
const OFF = limits(UNLIMITED, UNLIMITED, UNLIMITED);

function serverWith(listeners: object[], sd: object = { dns: { hostname: 'server.local' } }) {
  return { listeners, serviceDiscovery: sd };
}
function twoNodes(server: object, meshSpec: object = {}, client: object = { backends: [{ virtualService: { virtualServiceName: 'server.local' } }] }): MeshBuilder {
  return new MeshBuilder('m', meshSpec).node('server', server).node('client', client)
    .service('server.local', { provider: { virtualNode: { virtualNodeName: 'server' } } });
}

// 1. Connection pools and outlier detection.

test('connection pool: circuit breakers on the ingress cluster, per listener protocol; unset thresholds unlimited', () => {
  const server = serverWith([
    { portMapping: { port: 8080, protocol: 'http' }, connectionPool: { http: { maxConnections: 10, maxPendingRequests: 5 } } },
    { portMapping: { port: 8081, protocol: 'http' }, connectionPool: { http: { maxConnections: 7 } } },
    { portMapping: { port: 8082, protocol: 'http2' }, connectionPool: { http2: { maxRequests: 20 } } },
    { portMapping: { port: 8083, protocol: 'grpc' }, connectionPool: { grpc: { maxRequests: 30 } } },
    { portMapping: { port: 8084, protocol: 'tcp' }, connectionPool: { tcp: { maxConnections: 40 } } },
    { portMapping: { port: 8085, protocol: 'http' } },
  ]);
  const c = run(twoNodes(server), 'virtualNode', 'server');
  assert.deepEqual(thresholds(cluster(c, 'cds_ingress_m_server_http_8080')), limits(10, 5, UNLIMITED));
  assert.deepEqual(thresholds(cluster(c, 'cds_ingress_m_server_http_8081')), limits(7, UNLIMITED, UNLIMITED));
  assert.deepEqual(thresholds(cluster(c, 'cds_ingress_m_server_http2_8082')), limits(UNLIMITED, UNLIMITED, 20));
  assert.deepEqual(thresholds(cluster(c, 'cds_ingress_m_server_grpc_8083')), limits(UNLIMITED, UNLIMITED, 30));
  assert.deepEqual(thresholds(cluster(c, 'cds_ingress_m_server_tcp_8084')), limits(40, UNLIMITED, UNLIMITED));
  assert.deepEqual(thresholds(cluster(c, 'cds_ingress_m_server_http_8085')), OFF);
  // The pool limits the node's own Envoy towards its application, not its clients' clusters.
  const client = run(twoNodes(server), 'virtualNode', 'client');
  for (const cl of client.clusters) assert.deepEqual(thresholds(cl), OFF, String(cl.name));
});

test('circuit breakers: every cluster without a pool has App Mesh\'s unlimited thresholds, not Envoy\'s defaults', () => {
  const server = serverWith([{ portMapping: { port: 9080, protocol: 'http' } }, { portMapping: { port: 5432, protocol: 'tcp' } }]);
  const b = (meshSpec: object) => twoNodes(server, meshSpec).router('r', { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] })
    .route('r', 'all', { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'server', weight: 1, port: 9080 }] } } })
    .service('routed.local', { provider: { virtualRouter: { virtualRouterName: 'r' } } })
    .gateway('gw', { listeners: [{ portMapping: { port: 8080, protocol: 'http' } }] })
    .gatewayRoute('gw', 'routed', { httpRoute: { match: { prefix: '/' }, action: { target: { virtualService: { virtualServiceName: 'routed.local' } } } } });
  const configs = [
    run(b({}), 'virtualNode', 'server'), // ingress local-app clusters, amazonaws
    run(b({ egressFilter: { type: 'ALLOW_ALL' } }), 'virtualNode', 'client', { endpoints: { server: [{ address: '10.0.0.1', port: 9080, ports: [5432] }] } }), // EDS targets, passthrough
    run(b({}), 'virtualGateway', 'gw'), // self redirect, router target
  ];
  const names = configs.flatMap((c) => c.clusters.map((cl) => String(cl.name))).sort();
  assert.deepEqual(names, [
    'cds_egress_m_amazonaws', 'cds_egress_m_passthrough', 'cds_egress_m_server_http_9080', 'cds_egress_m_server_http_9080', 'cds_egress_m_server_tcp_5432',
    'cds_ingress_m_gw_self_redirect_http_15001', 'cds_ingress_m_server_http_9080', 'cds_ingress_m_server_tcp_5432',
  ].sort());
  for (const c of configs) for (const cl of c.clusters) assert.deepEqual(cl.circuitBreakers, { thresholds: [OFF] }, String(cl.name));
});

test('outlier detection: on the clusters that target the listener (egress side), durations in protobuf form', () => {
  const od = { maxServerErrors: 5, interval: { unit: 'ms', value: 1500 }, baseEjectionDuration: { unit: 's', value: 30 }, maxEjectionPercent: 50 };
  const server = serverWith([{ portMapping: { port: 9080, protocol: 'http' }, outlierDetection: od }]);
  const client = run(twoNodes(server), 'virtualNode', 'client');
  assert.deepEqual(cluster(client, 'cds_egress_m_server_http_9080').outlierDetection, {
    consecutive_5xx: { value: 5 },
    interval: { seconds: '1', nanos: 500000000 },
    baseEjectionTime: { seconds: '30', nanos: 0 },
    maxEjectionPercent: { value: 50 },
  });
  const own = run(twoNodes(server), 'virtualNode', 'server');
  assert.equal(cluster(own, 'cds_ingress_m_server_http_9080').outlierDetection, undefined);
  // Also for targets behind a virtual router, and from a gateway.
  const b = new MeshBuilder('m').node('server', server).router('r', { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] })
    .route('r', 'all', { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'server', weight: 1 }] } } })
    .service('svc.local', { provider: { virtualRouter: { virtualRouterName: 'r' } } })
    .node('client', { backends: [{ virtualService: { virtualServiceName: 'svc.local' } }] });
  assert.equal((cluster(run(b, 'virtualNode', 'client'), 'cds_egress_m_server_http_9080').outlierDetection as JsonObject).consecutive_5xx !== undefined, true);
});

test('gateway connection pool: circuit breakers on the clusters the listener routes to (node target, self redirect)', () => {
  const b = new MeshBuilder('m')
    .node('server', serverWith([{ portMapping: { port: 9080, protocol: 'http' } }]))
    .service('server.local', { provider: { virtualNode: { virtualNodeName: 'server' } } })
    .node('other', serverWith([{ portMapping: { port: 9080, protocol: 'http' } }], { dns: { hostname: 'other.local' } }))
    .router('r', { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] })
    .route('r', 'all', { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'other', weight: 1 }] } } })
    .service('routed.local', { provider: { virtualRouter: { virtualRouterName: 'r' } } })
    .gateway('gw', { listeners: [{ portMapping: { port: 8443, protocol: 'http' }, connectionPool: { http: { maxConnections: 3, maxPendingRequests: 2 } } }] })
    .gatewayRoute('gw', 'direct', { httpRoute: { match: { prefix: '/direct' }, action: { target: { virtualService: { virtualServiceName: 'server.local' } } } } })
    .gatewayRoute('gw', 'routed', { httpRoute: { match: { prefix: '/routed' }, action: { target: { virtualService: { virtualServiceName: 'routed.local' } } } } });
  const c = run(b, 'virtualGateway', 'gw');
  assert.deepEqual(thresholds(cluster(c, 'cds_egress_m_server_http_9080')), limits(3, 2, UNLIMITED));
  assert.deepEqual(thresholds(cluster(c, 'cds_ingress_m_gw_self_redirect_http_15001')), limits(3, 2, UNLIMITED));
  // The self redirect already limits what reaches the router's targets.
  assert.deepEqual(thresholds(cluster(c, 'cds_egress_m_other_http_9080')), OFF);
});

// 2. Mesh egress filter.

test('ALLOW_ALL: original_dst passthrough cluster, catch-all virtual host, default tcp chain; none under DROP_ALL', () => {
  const server = serverWith([{ portMapping: { port: 9080, protocol: 'http' } }]);
  const db = serverWith([{ portMapping: { port: 5432, protocol: 'tcp' } }], { dns: { hostname: 'db.local' } });
  const client = { backends: [{ virtualService: { virtualServiceName: 'server.local' } }, { virtualService: { virtualServiceName: 'db.local' } }] };
  const build = (meshSpec: object) => twoNodes(server, meshSpec, client).node('db', db)
    .service('db.local', { provider: { virtualNode: { virtualNodeName: 'db' } } });

  const c = run(build({ egressFilter: { type: 'ALLOW_ALL' } }), 'virtualNode', 'client');
  assert.deepEqual(cluster(c, 'cds_egress_m_passthrough'), { name: 'cds_egress_m_passthrough', type: 'ORIGINAL_DST', connectTimeout: { seconds: '1', nanos: 0 }, lbPolicy: 'CLUSTER_PROVIDED', circuitBreakers: { thresholds: [OFF] } });
  // The passthrough already takes AWS APIs the same ORIGINAL_DST way: no amazonaws pieces under ALLOW_ALL.
  assert.ok(!c.clusters.some((cl) => cl.name === 'cds_egress_m_amazonaws'));
  const eg = listener(c, 'lds_egress_0.0.0.0_15001');
  const chains = eg.filterChains as JsonObject[];
  assert.deepEqual(chains.map((ch) => ch.name), ['egress_tcp_5432', 'egress_http', 'egress_passthrough']);
  assert.deepEqual(chains[1]!.filterChainMatch, { applicationProtocols: ['http/1.0', 'http/1.1', 'h2c'] });
  assert.equal(chains[2]!.filterChainMatch, undefined);
  const tcp = (chains[2]!.filters as JsonObject[])[0]!.typedConfig as JsonObject;
  assert.equal(tcp.cluster, 'cds_egress_m_passthrough');
  const filters = eg.listenerFilters as JsonObject[];
  assert.deepEqual(filters.map((f) => f.name), ['envoy.filters.listener.original_dst', 'envoy.filters.listener.http_inspector']);
  assert.deepEqual(filters[1]!.filterDisabled, { destinationPortRange: { start: 5432, end: 5433 } });
  assert.equal(eg.continueOnListenerFiltersTimeout, true);
  const rc = c.routeConfigurations.find((r) => r.name === 'rds_egress_http_15001')!;
  const hosts = rc.virtualHosts as JsonObject[];
  assert.deepEqual(hosts.map((h) => h.name), ['passthrough', 'server.local:9080']);
  assert.deepEqual(hosts[0]!.domains, ['*']);
  assert.equal((((hosts[0]!.routes as JsonObject[])[0]!.route) as JsonObject).cluster, 'cds_egress_m_passthrough');

  for (const meshSpec of [{}, { egressFilter: { type: 'DROP_ALL' } }]) {
    const d = run(build(meshSpec), 'virtualNode', 'client');
    assert.ok(!d.clusters.some((cl) => cl.name === 'cds_egress_m_passthrough'));
    const l = listener(d, 'lds_egress_0.0.0.0_15001');
    assert.ok(!(l.filterChains as JsonObject[]).some((ch) => ch.name === 'egress_passthrough'));
    assert.ok(!(l.listenerFilters as JsonObject[]).some((f) => f.name === 'envoy.filters.listener.http_inspector'));
    assert.ok(!(d.routeConfigurations.find((r) => r.name === 'rds_egress_http_15001')!.virtualHosts as JsonObject[]).some((h) => h.name === 'passthrough'));
  }
});

test('DROP_ALL: a virtual node still reaches *.amazonaws.com, by SNI for TLS and by Host for plaintext HTTP', () => {
  const server = serverWith([{ portMapping: { port: 9080, protocol: 'http' } }]);
  const db = serverWith([{ portMapping: { port: 5432, protocol: 'tcp' } }], { dns: { hostname: 'db.local' } });
  const client = { backends: [{ virtualService: { virtualServiceName: 'server.local' } }, { virtualService: { virtualServiceName: 'db.local' } }] };
  const b = twoNodes(server, {}, client).node('db', db).service('db.local', { provider: { virtualNode: { virtualNodeName: 'db' } } });
  const c = run(b, 'virtualNode', 'client');
  assert.deepEqual(cluster(c, 'cds_egress_m_amazonaws'), { name: 'cds_egress_m_amazonaws', type: 'ORIGINAL_DST', connectTimeout: { seconds: '1', nanos: 0 }, lbPolicy: 'CLUSTER_PROVIDED', circuitBreakers: { thresholds: [OFF] } });

  const eg = listener(c, 'lds_egress_0.0.0.0_15001');
  const chains = eg.filterChains as JsonObject[];
  assert.deepEqual(chains.map((ch) => [ch.name, ch.filterChainMatch]), [
    ['egress_tcp_5432', { destinationPort: { value: 5432 } }],
    // No destination port: other TLS on 443 must still fall to the HTTP chain (the tcp backend's port still wins).
    ['egress_amazonaws', { serverNames: ['*.amazonaws.com'], transportProtocol: 'tls' }],
    ['egress_http', undefined],
  ]);
  assert.deepEqual((chains[1]!.filters as JsonObject[])[0]!.typedConfig, { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', statPrefix: 'egress.amazonaws', cluster: 'cds_egress_m_amazonaws' });
  const filters = eg.listenerFilters as JsonObject[];
  assert.deepEqual(filters.map((f) => f.name), ['envoy.filters.listener.original_dst', 'envoy.filters.listener.tls_inspector']);
  // Server-first tcp backends are not held up by the inspector; anything else that stays silent proceeds.
  assert.deepEqual(filters[1]!.filterDisabled, { destinationPortRange: { start: 5432, end: 5433 } });
  assert.equal(eg.continueOnListenerFiltersTimeout, true);

  const hosts = c.routeConfigurations.find((r) => r.name === 'rds_egress_http_15001')!.virtualHosts as JsonObject[];
  assert.deepEqual(hosts.map((h) => [h.name, h.domains]), [['amazonaws', ['*.amazonaws.com', '*.amazonaws.com:80']], ['server.local:9080', ['server.local', 'server.local:9080']]]);
  assert.deepEqual(hosts[0]!.routes, [{ name: 'amazonaws', match: { prefix: '/' }, route: { cluster: 'cds_egress_m_amazonaws', timeout: { seconds: '15', nanos: 0 } } }]);

  // A node without backends gets it too, with nothing to skip.
  const lonely = run(new MeshBuilder('m').node('lonely', {}), 'virtualNode', 'lonely');
  const l = listener(lonely, 'lds_egress_0.0.0.0_15001');
  assert.deepEqual((l.filterChains as JsonObject[]).map((ch) => ch.name), ['egress_amazonaws', 'egress_http']);
  assert.equal((l.listenerFilters as JsonObject[])[1]!.filterDisabled, undefined);
  assert.deepEqual(lonely.clusters.map((cl) => cl.name), ['cds_egress_m_amazonaws']);
  assert.deepEqual(lonely.routeConfigurations.map((r) => (r.virtualHosts as JsonObject[]).map((h) => h.name)), [['amazonaws']]);
});

test('DROP_ALL: a backend that names an amazonaws domain keeps it (Envoy refuses a domain twice)', () => {
  const server = serverWith([{ portMapping: { port: 9080, protocol: 'http' } }]);
  const b = new MeshBuilder('m').node('server', server).node('client', { backends: [{ virtualService: { virtualServiceName: '*.amazonaws.com' } }] })
    .service('*.amazonaws.com', { provider: { virtualNode: { virtualNodeName: 'server' } } });
  const hosts = run(b, 'virtualNode', 'client').routeConfigurations[0]!.virtualHosts as JsonObject[];
  assert.deepEqual(hosts.map((h) => [h.name, h.domains]), [['*.amazonaws.com:9080', ['*.amazonaws.com', '*.amazonaws.com:9080']], ['amazonaws', ['*.amazonaws.com:80']]]);
});

/** A gateway routing everything to a router with one target node, `server`. */
function routedGateway(): MeshBuilder {
  return new MeshBuilder('m')
    .node('server', serverWith([{ portMapping: { port: 9080, protocol: 'http' } }]))
    .router('r', { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] })
    .route('r', 'all', { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'server', weight: 1 }] } } })
    .service('routed.local', { provider: { virtualRouter: { virtualRouterName: 'r' } } })
    .gateway('gw', { listeners: [{ portMapping: { port: 8080, protocol: 'http' } }] })
    .gatewayRoute('gw', 'r', { httpRoute: { match: { prefix: '/' }, action: { target: { virtualService: { virtualServiceName: 'routed.local' } } } } });
}

test('a virtual gateway opens nothing outside the mesh: no amazonaws pieces on its egress hop', () => {
  const b = routedGateway();
  const c = run(b, 'virtualGateway', 'gw');
  assert.deepEqual(c.clusters.map((cl) => cl.name), ['cds_egress_m_server_http_9080', 'cds_ingress_m_gw_self_redirect_http_15001']);
  const eg = listener(c, 'lds_egress_0.0.0.0_15001');
  assert.deepEqual((eg.filterChains as JsonObject[]).map((ch) => ch.name), ['egress_http']);
  assert.equal(eg.listenerFilters, undefined);
  assert.equal(eg.continueOnListenerFiltersTimeout, undefined);
});

test('ALLOW_ALL: a node without backends passes everything through; several tcp ports disable http_inspector by or_match', () => {
  const c = run(new MeshBuilder('m', { egressFilter: { type: 'ALLOW_ALL' } }).node('lonely', {}), 'virtualNode', 'lonely');
  const eg = listener(c, 'lds_egress_0.0.0.0_15001');
  assert.deepEqual((eg.filterChains as JsonObject[]).map((ch) => ch.name), ['egress_http', 'egress_passthrough']);
  assert.deepEqual((eg.listenerFilters as JsonObject[]).map((f) => f.name), ['envoy.filters.listener.original_dst', 'envoy.filters.listener.http_inspector']);
  assert.equal((eg.listenerFilters as JsonObject[])[1]!.filterDisabled, undefined);
  assert.deepEqual(c.routeConfigurations.map((r) => (r.virtualHosts as JsonObject[]).map((h) => h.name)), [['passthrough']]);

  const db = serverWith([{ portMapping: { port: 5432, protocol: 'tcp' } }, { portMapping: { port: 6379, protocol: 'tcp' } }], { dns: { hostname: 'db.local' } });
  const two = run(twoNodes(db, { egressFilter: { type: 'ALLOW_ALL' } }), 'virtualNode', 'client');
  assert.deepEqual((listener(two, 'lds_egress_0.0.0.0_15001').listenerFilters as JsonObject[])[1]!.filterDisabled,
    { orMatch: { rules: [{ destinationPortRange: { start: 5432, end: 5433 } }, { destinationPortRange: { start: 6379, end: 6380 } }] } });
});

test('ALLOW_ALL does not open a passthrough on a virtual gateway', () => {
  const b = new MeshBuilder('m', { egressFilter: { type: 'ALLOW_ALL' } })
    .node('server', serverWith([{ portMapping: { port: 9080, protocol: 'http' } }]))
    .service('server.local', { provider: { virtualNode: { virtualNodeName: 'server' } } })
    .gateway('gw', { listeners: [{ portMapping: { port: 8080, protocol: 'http' } }] })
    .gatewayRoute('gw', 'r', { httpRoute: { match: { prefix: '/' }, action: { target: { virtualService: { virtualServiceName: 'server.local' } } } } });
  assert.ok(!run(b, 'virtualGateway', 'gw').clusters.some((cl) => cl.name === 'cds_egress_m_passthrough'));
});

// 3. Endpoints per listener port.

test('listenerEndpoints: port and ports select listeners; one-listener nodes keep the registered port', () => {
  const eps: Endpoint[] = [
    { address: '10.0.0.2', port: 8080, ports: [9090] },
    { address: '10.0.0.1', port: 9090 },
    { address: '10.0.0.3', port: 7000 },
    { address: '10.0.0.1', port: 9090 },
  ];
  assert.deepEqual(listenerEndpoints(eps, 8080, false), [{ address: '10.0.0.2', port: 8080 }]);
  assert.deepEqual(listenerEndpoints(eps, 9090, false), [{ address: '10.0.0.1', port: 9090 }, { address: '10.0.0.2', port: 9090 }]);
  assert.deepEqual(listenerEndpoints(eps, 8080, true), [{ address: '10.0.0.1', port: 9090 }, { address: '10.0.0.2', port: 8080 }, { address: '10.0.0.3', port: 7000 }]);
  assert.deepEqual(listenerEndpoints([{ address: '10.0.0.4', port: 7000, ports: [7001] }], 8080, true), []);
  assert.deepEqual(listenerEndpoints(undefined, 8080, true), []);
});

test('endpoints per listener port: each EDS cluster gets the instances of its port; an unserved listener falls back to DNS', () => {
  const server = serverWith([{ portMapping: { port: 8080, protocol: 'http' } }, { portMapping: { port: 9090, protocol: 'grpc' } }, { portMapping: { port: 7070, protocol: 'http' } }]);
  const b = twoNodes(server);
  const c = run(b, 'virtualNode', 'client', { endpoints: { server: [{ address: '10.0.0.2', port: 8080, ports: [9090] }, { address: '10.0.0.1', port: 9090 }] } });
  const lb = (n: string) => ((c.clusterLoadAssignments.find((a) => a.clusterName === n)!.endpoints as JsonObject[])[0]!.lbEndpoints as JsonObject[])
    .map((e) => { const sa = ((e.endpoint as JsonObject).address as JsonObject).socketAddress as JsonObject; return `${String(sa.address)}:${String(sa.portValue)}`; });
  assert.deepEqual(lb('cds_egress_m_server_http_8080'), ['10.0.0.2:8080']);
  assert.deepEqual(lb('cds_egress_m_server_grpc_9090'), ['10.0.0.1:9090', '10.0.0.2:9090']);
  assert.equal(cluster(c, 'cds_egress_m_server_http_7070').type, 'LOGICAL_DNS');
  assert.equal(c.clusterLoadAssignments.some((a) => a.clusterName === 'cds_egress_m_server_http_7070'), false);
});

test('endpoints: a node named like an Object.prototype member is looked up safely', () => {
  const b = new MeshBuilder('m').node('constructor', serverWith([{ portMapping: { port: 80, protocol: 'http' } }], { awsCloudMap: { namespaceName: 'ns', serviceName: 'c' } }))
    .service('c.ns', { provider: { virtualNode: { virtualNodeName: 'constructor' } } })
    .node('client', { backends: [{ virtualService: { virtualServiceName: 'c.ns' } }] });
  assert.deepEqual(run(b, 'virtualNode', 'client').clusterLoadAssignments, [{ clusterName: 'cds_egress_m_constructor_http_80' }]);
});

// 4. ACM server certificate without a client policy.

test('ACM server certificate, no client policy: validated against the issuing CA when acmIssuers knows it', () => {
  const CERT = 'arn:aws:acm:us-east-1:000000000000:certificate/abc';
  const CA_ARN = 'arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/root';
  const server = serverWith([{ portMapping: { port: 9080, protocol: 'http' }, tls: { mode: 'STRICT', certificate: { acm: { certificateArn: CERT } } } }]);
  const upstream = (c: EnvoyConfig) => ((cluster(c, 'cds_egress_m_server_http_9080').transportSocket as JsonObject).typedConfig as JsonObject).commonTlsContext;

  const known = run(twoNodes(server), 'virtualNode', 'client', { acmIssuers: { [CERT]: CA_ARN } });
  assert.deepEqual(upstream(known), { tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' }, validationContextSdsSecretConfig: { name: CA_ARN, sdsConfig: { ads: {}, resourceApiVersion: 'V3' } } });
  assert.deepEqual(known.secrets, [{ name: CA_ARN, type: 'validation', source: 'acm' }]);

  // Unknown issuer (or no acmIssuers at all): TLS without validation, as before.
  const variants: (Record<string, string> | undefined)[] = [undefined, {}, { 'arn:other': CA_ARN }];
  for (const acmIssuers of variants) {
    const unknown = run(twoNodes(server), 'virtualNode', 'client', acmIssuers ? { acmIssuers } : {});
    assert.deepEqual(upstream(unknown), { tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' } });
    assert.deepEqual(unknown.secrets, []);
  }
  // A matching client policy still decides.
  const policy = { backendDefaults: { clientPolicy: { tls: { validation: { trust: { file: { certificateChain: '/ca.pem' } } } } } }, backends: [{ virtualService: { virtualServiceName: 'server.local' } }] };
  const withPolicy = run(twoNodes(server, {}, policy), 'virtualNode', 'client', { acmIssuers: { [CERT]: CA_ARN } });
  assert.deepEqual(upstream(withPolicy), { tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' }, validationContext: { trustedCa: { filename: '/ca.pem' }, matchTypedSubjectAltNames: [{ sanType: 'DNS', matcher: { exact: 'server.local' } }] } });
  // Plaintext server: nothing to validate.
  const disabled = serverWith([{ portMapping: { port: 9080, protocol: 'http' }, tls: { mode: 'DISABLED', certificate: { acm: { certificateArn: CERT } } } }]);
  assert.equal(cluster(run(twoNodes(disabled), 'virtualNode', 'client', { acmIssuers: { [CERT]: CA_ARN } }), 'cds_egress_m_server_http_9080').transportSocket, undefined);
  // A gateway (no client policy) validates the same way.
  const gw = new MeshBuilder('m').node('server', server).service('server.local', { provider: { virtualNode: { virtualNodeName: 'server' } } })
    .gateway('gw', { listeners: [{ portMapping: { port: 8080, protocol: 'http' } }] })
    .gatewayRoute('gw', 'r', { httpRoute: { match: { prefix: '/' }, action: { target: { virtualService: { virtualServiceName: 'server.local' } } } } });
  assert.deepEqual(upstream(run(gw, 'virtualGateway', 'gw', { acmIssuers: { [CERT]: CA_ARN } })), { tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' }, validationContextSdsSecretConfig: { name: CA_ARN, sdsConfig: { ads: {}, resourceApiVersion: 'V3' } } });
  // A certificate ARN that is an Object.prototype member name is not "known".
  const proto = serverWith([{ portMapping: { port: 9080, protocol: 'http' }, tls: { mode: 'STRICT', certificate: { acm: { certificateArn: 'constructor' } } } }]);
  assert.deepEqual(upstream(run(twoNodes(proto), 'virtualNode', 'client', { acmIssuers: {} })), { tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' } });
});

// 5. Gateway route retries.

test('gateway routes carry no retry policy (App Mesh has none); router targets get the router retries in the egress hop', () => {
  const b = new MeshBuilder('m')
    .node('server', serverWith([{ portMapping: { port: 9080, protocol: 'http' } }]))
    .service('server.local', { provider: { virtualNode: { virtualNodeName: 'server' } } })
    .router('r', { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] })
    .route('r', 'all', { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'server', weight: 1 }] },
      retryPolicy: { maxRetries: 4, perRetryTimeout: { unit: 'ms', value: 250 }, httpRetryEvents: ['server-error'] } } })
    .service('routed.local', { provider: { virtualRouter: { virtualRouterName: 'r' } } })
    .gateway('gw', { listeners: [{ portMapping: { port: 8080, protocol: 'http' } }] })
    .gatewayRoute('gw', 'direct', { httpRoute: { match: { prefix: '/direct' }, action: { target: { virtualService: { virtualServiceName: 'server.local' } } } } })
    .gatewayRoute('gw', 'routed', { httpRoute: { match: { prefix: '/routed' }, action: { target: { virtualService: { virtualServiceName: 'routed.local' } } } } });
  const c = run(b, 'virtualGateway', 'gw');
  const routesOf = (n: string) => ((c.routeConfigurations.find((r) => r.name === n)!.virtualHosts as JsonObject[])[0]!.routes as JsonObject[]);
  for (const r of routesOf('rds_ingress_http_8080')) assert.equal((r.route as JsonObject).retryPolicy, undefined);
  assert.deepEqual((routesOf('rds_egress_http_15001')[0]!.route as JsonObject).retryPolicy,
    { retryOn: '5xx', numRetries: { value: 4 }, perTryTimeout: { seconds: '0', nanos: 250000000 } });
});

// 6. Listen address.

test('listenAddress: listeners bind it and are named by it; 0.0.0.0 by default', () => {
  const server = serverWith([{ portMapping: { port: 9080, protocol: 'http' } }]);
  const names = (c: EnvoyConfig) => c.listeners.map((l) => [l.name, ((l.address as JsonObject).socketAddress as JsonObject)]);
  assert.deepEqual(names(run(twoNodes(server), 'virtualNode', 'server')), [
    ['lds_egress_0.0.0.0_15001', { address: '0.0.0.0', portValue: 15001 }],
    ['lds_ingress_0.0.0.0_15000', { address: '0.0.0.0', portValue: 15000 }],
  ]);
  const c = run(twoNodes(server), 'virtualNode', 'server', { options: { listenAddress: '10.1.2.3' } });
  assert.deepEqual(names(c), [
    ['lds_egress_10.1.2.3_15001', { address: '10.1.2.3', portValue: 15001 }],
    ['lds_ingress_10.1.2.3_15000', { address: '10.1.2.3', portValue: 15000 }],
  ]);
  // Only listeners follow it: route configurations and the application's address do not.
  assert.deepEqual(c.routeConfigurations.map((r) => r.name), ['rds_egress_http_15001', 'rds_ingress_http_9080']);
  assert.deepEqual((cluster(c, 'cds_ingress_m_server_http_9080').loadAssignment as JsonObject).endpoints, [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: 9080 } } } }] }]);
  // '::' takes IPv4 as well (ipv4_compat), as 0.0.0.0 takes every IPv4 address.
  assert.deepEqual(names(run(twoNodes(server), 'virtualNode', 'server', { options: { listenAddress: '::' } })), [
    ['lds_egress_::_15001', { address: '::', portValue: 15001, ipv4Compat: true }],
    ['lds_ingress_::_15000', { address: '::', portValue: 15000, ipv4Compat: true }],
  ]);
});

test('listenAddress on a gateway: its listeners bind it; the self redirect dials it, or loopback for 0.0.0.0 and ::', () => {
  const b = routedGateway();
  const dialled = (c: EnvoyConfig) => {
    const la = cluster(c, 'cds_ingress_m_gw_self_redirect_http_15001').loadAssignment as JsonObject;
    return (((la.endpoints as JsonObject[])[0]!.lbEndpoints as JsonObject[])[0]!.endpoint as JsonObject).address;
  };
  const cases: [string | undefined, string, string][] = [
    [undefined, '0.0.0.0', '127.0.0.1'], ['0.0.0.0', '0.0.0.0', '127.0.0.1'], ['::', '::', '::1'], ['10.1.2.3', '10.1.2.3', '10.1.2.3'], ['fd00::5', 'fd00::5', 'fd00::5'],
  ];
  for (const [listenAddress, bound, dial] of cases) {
    const c = run(b, 'virtualGateway', 'gw', listenAddress === undefined ? {} : { options: { listenAddress } });
    assert.deepEqual(c.listeners.map((l) => l.name), [`lds_egress_${bound}_15001`, `lds_ingress_${bound}_8080`], String(listenAddress));
    for (const l of c.listeners) assert.equal(((l.address as JsonObject).socketAddress as JsonObject).address, bound);
    assert.deepEqual(dialled(c), { socketAddress: { address: dial, portValue: 15001 } }, String(listenAddress));
  }
});

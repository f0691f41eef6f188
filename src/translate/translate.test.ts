// Focused tests of the translation: TLS modes, SANs, client policies, routing, errors, determinism.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotFoundError } from '../errors/index.ts';
import type { JsonObject } from '../model/json.ts';
import type { EnvoyConfig } from './api.ts';
import { assertRoundTrips, MeshBuilder } from './test-fixtures.ts';
import { mergeClientPolicy, policyApplies, sanMatchers } from './tls-context.ts';
import { translate } from './translate.ts';
import * as codec from '../envoy/protos.ts';

const FILE_CERT = { file: { certificateChain: '/c.pem', privateKey: '/k.pem' } };
const CA = { trust: { file: { certificateChain: '/ca.pem' } } };

function serverNode(tls?: object, extra: object = {}) {
  return { listeners: [{ portMapping: { port: 9080, protocol: 'http' }, ...(tls ? { tls } : {}) }], serviceDiscovery: { dns: { hostname: 'server.local' } }, ...extra };
}
function mesh(server: object, client: object, meshSpec: object = {}): MeshBuilder {
  return new MeshBuilder('m', meshSpec).node('server', server).node('client', client)
    .service('server.local', { provider: { virtualNode: { virtualNodeName: 'server' } } });
}
function clientNode(extra: object = {}) {
  return { backends: [{ virtualService: { virtualServiceName: 'server.local' } }], ...extra };
}
function run(b: MeshBuilder, kind: 'virtualNode' | 'virtualGateway', name: string, endpoints = {}): EnvoyConfig {
  const c = translate({ view: b.view(), proxy: { kind, name }, endpoints });
  assertRoundTrips(c, codec);
  return c;
}
const ingressOf = (c: EnvoyConfig) => c.listeners.find((l) => l.name === 'lds_ingress_0.0.0.0_15000')!;
const chains = (l: JsonObject) => l.filterChains as JsonObject[];
const clusterNamed = (c: EnvoyConfig, n: string) => c.clusters.find((x) => x.name === n)!;
const upstreamCtx = (cl: JsonObject) => (cl.transportSocket as JsonObject | undefined)?.typedConfig as JsonObject | undefined;

test('STRICT: one TLS chain, no inspector; PERMISSIVE: tls-matched chain plus plaintext with tls_inspector; DISABLED: plaintext', () => {
  const strict = ingressOf(run(mesh(serverNode({ mode: 'STRICT', certificate: FILE_CERT }), clientNode()), 'virtualNode', 'server'));
  assert.deepEqual(chains(strict).map((ch) => ch.name), ['ingress_http_9080_tls']);
  assert.equal(strict.listenerFilters, undefined);
  assert.equal(chains(strict)[0]!.filterChainMatch, undefined);
  const tls = (chains(strict)[0]!.transportSocket as JsonObject).typedConfig as JsonObject;
  assert.deepEqual(tls.commonTlsContext, { tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' }, tlsCertificates: [{ certificateChain: { filename: '/c.pem' }, privateKey: { filename: '/k.pem' } }] });
  assert.equal(tls.requireClientCertificate, undefined);

  const permissive = ingressOf(run(mesh(serverNode({ mode: 'PERMISSIVE', certificate: FILE_CERT }), clientNode()), 'virtualNode', 'server'));
  assert.deepEqual(chains(permissive).map((ch) => [ch.name, ch.filterChainMatch, ch.transportSocket !== undefined]),
    [['ingress_http_9080_tls', { transportProtocol: 'tls' }, true], ['ingress_http_9080_plaintext', undefined, false]]);
  assert.deepEqual((permissive.listenerFilters as JsonObject[]).map((f) => f.name), ['envoy.filters.listener.tls_inspector']);

  const disabled = run(mesh(serverNode({ mode: 'DISABLED', certificate: { sds: { secretName: 's' } } }), clientNode()), 'virtualNode', 'server');
  assert.deepEqual(chains(ingressOf(disabled)).map((ch) => ch.transportSocket), [undefined]);
  assert.deepEqual(disabled.secrets, [], 'a DISABLED listener does not reference its certificate');
});

test('PERMISSIVE with validation asks for a client certificate and checks it, but does not require one (seed 001, step 2)', () => {
  const validation = { trust: { file: { certificateChain: '/ca.pem' } }, subjectAlternativeNames: { match: { exact: ['client.mesh.local'] } } };
  const b = mesh(serverNode({ mode: 'PERMISSIVE', certificate: FILE_CERT, validation }), clientNode());
  const tls = (chains(ingressOf(run(b, 'virtualNode', 'server')))[0]!.transportSocket as JsonObject).typedConfig as JsonObject;
  assert.equal(tls.requireClientCertificate, undefined);
  assert.deepEqual((tls.commonTlsContext as JsonObject).validationContext, {
    trustedCa: { filename: '/ca.pem' }, matchTypedSubjectAltNames: [{ sanType: 'DNS', matcher: { exact: 'client.mesh.local' } }],
  });
  // Why: the client, without a client policy, follows the server into TLS with no certificate to present.
  const cl = clusterNamed(run(b, 'virtualNode', 'client'), 'cds_egress_m_server_http_9080');
  assert.deepEqual(upstreamCtx(cl)?.commonTlsContext, { tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' } });
});

test('listener validation requires a client certificate; sds trust with SANs uses a combined validation context', () => {
  const c = run(mesh(serverNode({ mode: 'STRICT', certificate: { acm: { certificateArn: 'arn:cert' } }, validation: { trust: { sds: { secretName: 'spiffe://td' } }, subjectAlternativeNames: { match: { exact: ['spiffe://td/front'] } } } }), clientNode()), 'virtualNode', 'server');
  const tls = (chains(ingressOf(c))[0]!.transportSocket as JsonObject).typedConfig as JsonObject;
  assert.deepEqual(tls.requireClientCertificate, { value: true });
  assert.deepEqual(tls.commonTlsContext, {
    tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' },
    tlsCertificateSdsSecretConfigs: [{ name: 'arn:cert', sdsConfig: { ads: {}, resourceApiVersion: 'V3' } }],
    combinedValidationContext: {
      defaultValidationContext: { matchTypedSubjectAltNames: [{ sanType: 'URI', matcher: { exact: 'spiffe://td/front' } }] },
      validationContextSdsSecretConfig: { name: 'spiffe://td', sdsConfig: { ads: {}, resourceApiVersion: 'V3' } },
    },
  });
  assert.deepEqual(c.secrets, [{ name: 'arn:cert', type: 'certificate', source: 'acm' }, { name: 'spiffe://td', type: 'validation', source: 'sds' }]);
});

test('SAN matchers: URIs by scheme, DNS names otherwise, sorted and de-duplicated', () => {
  assert.deepEqual(sanMatchers(['b.local', 'spiffe://td/x', 'a.local', 'b.local']), [
    { sanType: 'DNS', matcher: { exact: 'a.local' } },
    { sanType: 'DNS', matcher: { exact: 'b.local' } },
    { sanType: 'URI', matcher: { exact: 'spiffe://td/x' } },
  ]);
});

test('no client policy: plaintext to a plaintext server, unvalidated TLS to a STRICT or PERMISSIVE one', () => {
  const name = 'cds_egress_m_server_http_9080';
  assert.equal(clusterNamed(run(mesh(serverNode(), clientNode()), 'virtualNode', 'client'), name).transportSocket, undefined);
  for (const mode of ['STRICT', 'PERMISSIVE']) {
    const cl = clusterNamed(run(mesh(serverNode({ mode, certificate: FILE_CERT }), clientNode()), 'virtualNode', 'client'), name);
    assert.deepEqual(upstreamCtx(cl)?.commonTlsContext, { tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' } }, mode);
  }
});

test('client policy: the backend policy overrides backendDefaults field by field; ports and enforce limit it', () => {
  const defaults = { certificate: FILE_CERT, validation: CA };
  const own = { validation: { trust: { sds: { secretName: 'td' } } } };
  assert.deepEqual(mergeClientPolicy(defaults, own), { certificate: FILE_CERT, validation: own.validation });
  assert.equal(mergeClientPolicy(undefined, own), own);
  assert.equal(policyApplies({ validation: CA, ports: [8080] }, 9080), false);
  assert.equal(policyApplies({ validation: CA, ports: [9080] }, 9080), true);
  assert.equal(policyApplies({ validation: CA, enforce: false }, 9080), false);

  const client = clientNode({
    backendDefaults: { clientPolicy: { tls: defaults } },
    backends: [{ virtualService: { virtualServiceName: 'server.local', clientPolicy: { tls: own } } }],
  });
  const c = run(mesh(serverNode({ mode: 'STRICT', certificate: FILE_CERT }), client), 'virtualNode', 'client');
  const ctx = upstreamCtx(clusterNamed(c, 'cds_egress_m_server_http_9080'))!.commonTlsContext as JsonObject;
  assert.ok(ctx.tlsCertificates, 'the default client certificate is kept');
  // No SANs in the policy: the server must carry its service discovery name.
  assert.deepEqual((ctx.combinedValidationContext as JsonObject).defaultValidationContext, { matchTypedSubjectAltNames: [{ sanType: 'DNS', matcher: { exact: 'server.local' } }] });
  assert.deepEqual(c.secrets, [{ name: 'td', type: 'validation', source: 'sds' }]);
});

test('endpoints: EDS with a sorted ClusterLoadAssignment when registered, a DNS cluster otherwise', () => {
  const b = mesh(serverNode(), clientNode());
  const eds = run(b, 'virtualNode', 'client', { server: [{ address: '10.0.0.9', port: 9080 }, { address: '10.0.0.2', port: 9080 }] });
  assert.equal(clusterNamed(eds, 'cds_egress_m_server_http_9080').type, 'EDS');
  assert.deepEqual(eds.clusterLoadAssignments.map((a) => ((a.endpoints as JsonObject[])[0]!.lbEndpoints as JsonObject[]).map((e) => JSON.stringify(e))),
    [['{"endpoint":{"address":{"socketAddress":{"address":"10.0.0.2","portValue":9080}}}}', '{"endpoint":{"address":{"socketAddress":{"address":"10.0.0.9","portValue":9080}}}}']]);
  // responseType: LOADBALANCER (the default) → LOGICAL_DNS, ENDPOINTS → STRICT_DNS.
  assert.equal(clusterNamed(run(b, 'virtualNode', 'client'), 'cds_egress_m_server_http_9080').type, 'LOGICAL_DNS');
  const lb = mesh(serverNode(undefined, { serviceDiscovery: { dns: { hostname: 'server.local', responseType: 'LOADBALANCER' } } }), clientNode());
  assert.equal(clusterNamed(run(lb, 'virtualNode', 'client'), 'cds_egress_m_server_http_9080').type, 'LOGICAL_DNS');
  const ep = mesh(serverNode(undefined, { serviceDiscovery: { dns: { hostname: 'server.local', responseType: 'ENDPOINTS', ipPreference: 'IPv4_ONLY' } } }), clientNode());
  const strict = clusterNamed(run(ep, 'virtualNode', 'client'), 'cds_egress_m_server_http_9080');
  assert.equal(strict.type, 'STRICT_DNS');
  assert.equal(strict.dnsLookupFamily, 'V4_ONLY');
  assert.deepEqual(strict.loadAssignment, { clusterName: 'cds_egress_m_server_http_9080', endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: 'server.local', portValue: 9080 } } } }] }] });
});

function routerMesh(routes: [string, object][]): MeshBuilder {
  const b = new MeshBuilder('m').router('r', { listeners: [{ portMapping: { port: 8080, protocol: 'http' } }] })
    .service('svc.local', { provider: { virtualRouter: { virtualRouterName: 'r' } } })
    .node('client', { backends: [{ virtualService: { virtualServiceName: 'svc.local' } }] });
  for (const n of ['a', 'b']) b.node(n, { listeners: [{ portMapping: { port: 8080, protocol: 'http' } }], serviceDiscovery: { dns: { hostname: `${n}.local` } } });
  for (const [name, spec] of routes) b.route('r', name, spec);
  return b;
}
const egressRoutes = (c: EnvoyConfig) => (((c.routeConfigurations.find((r) => r.name === 'rds_egress_http_15001')!.virtualHosts as JsonObject[])
  .find((h) => h.name === 'svc.local:8080')!).routes as JsonObject[]);

test('router routes: weighted targets, matches, retries, timeouts, in priority order', () => {
  const c = run(routerMesh([
    ['z-weighted', { priority: 1, httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'b', weight: 75 }, { virtualNode: 'a', weight: 25 }] } } }],
    ['a-specific', { priority: 0, httpRoute: {
      match: { path: { exact: '/x' }, method: 'POST', headers: [{ name: 'v', invert: true, match: { range: { start: 1, end: 5 } } }], queryParameters: [{ name: 'q', match: { exact: '1' } }] },
      action: { weightedTargets: [{ virtualNode: 'a', weight: 1 }] },
      retryPolicy: { maxRetries: 3, perRetryTimeout: { unit: 'ms', value: 250 }, httpRetryEvents: ['server-error'], tcpRetryEvents: ['connection-error'] },
      timeout: { perRequest: { unit: 's', value: 0 }, idle: { unit: 's', value: 30 } },
    } }],
  ]), 'virtualNode', 'client');
  const [first, second] = egressRoutes(c);
  assert.equal(first!.name, 'r/a-specific');
  assert.deepEqual(first!.match, {
    path: '/x',
    headers: [{ name: ':method', stringMatch: { exact: 'POST' } }, { name: 'v', rangeMatch: { start: '1', end: '5' }, invertMatch: true }],
    queryParameters: [{ name: 'q', stringMatch: { exact: '1' } }],
  });
  assert.deepEqual(first!.route, {
    cluster: 'cds_egress_m_a_http_8080', timeout: { seconds: '0', nanos: 0 }, idleTimeout: { seconds: '30', nanos: 0 },
    retryPolicy: { retryOn: '5xx,connect-failure', numRetries: { value: 3 }, perTryTimeout: { seconds: '0', nanos: 250000000 } },
  });
  assert.deepEqual((second!.route as JsonObject).weightedClusters, { clusters: [{ name: 'cds_egress_m_a_http_8080', weight: { value: 25 } }, { name: 'cds_egress_m_b_http_8080', weight: { value: 75 } }] });
  assert.deepEqual(c.clusters.map((x) => x.name), ['cds_egress_m_a_http_8080', 'cds_egress_m_amazonaws', 'cds_egress_m_b_http_8080']);
});

test('a proxy that is not in the view is a NotFoundError naming it', () => {
  const b = mesh(serverNode(), clientNode());
  assert.throws(() => translate({ view: b.view(), proxy: { kind: 'virtualNode', name: 'ghost' }, endpoints: {} }), (e: unknown) => e instanceof NotFoundError && /ghost/.test(e.message));
  assert.throws(() => translate({ view: b.view(), proxy: { kind: 'virtualGateway', name: 'gw-ghost' }, endpoints: {} }), (e: unknown) => e instanceof NotFoundError && /gw-ghost/.test(e.message));
});

test('deterministic: shuffled input lists give the same output', () => {
  const b = routerMesh([
    ['r1', { httpRoute: { match: { prefix: '/', headers: [{ name: 'h', match: { exact: 'a' } }] }, action: { weightedTargets: [{ virtualNode: 'a', weight: 1 }] } } }],
    ['r2', { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'b', weight: 1 }, { virtualNode: 'a', weight: 1 }] } } }],
  ]);
  const endpoints = { a: [{ address: '10.0.0.2', port: 8080 }, { address: '10.0.0.1', port: 8080 }] };
  const base = translate({ view: b.view(), proxy: { kind: 'virtualNode', name: 'client' }, endpoints });
  const reversed = translate({ view: b.view((rs) => rs.reverse()), proxy: { kind: 'virtualNode', name: 'client' }, endpoints: { a: [...endpoints.a].reverse() } });
  assert.deepEqual(reversed, base);
  assert.equal(JSON.stringify(reversed), JSON.stringify(base));
});

test('tcp listener: tcp_proxy ingress and egress; several listeners match on the original destination port', () => {
  const server = { listeners: [{ portMapping: { port: 5432, protocol: 'tcp' } }, { portMapping: { port: 9080, protocol: 'grpc' }, timeout: { grpc: { perRequest: { unit: 's', value: 5 } } } }], serviceDiscovery: { dns: { hostname: 'server.local' } } };
  const c = run(mesh(server, clientNode()), 'virtualNode', 'server');
  const ing = ingressOf(c);
  assert.deepEqual(chains(ing).map((ch) => [ch.name, ch.filterChainMatch]), [['ingress_tcp_5432_plaintext', { destinationPort: { value: 5432 } }], ['ingress_grpc_9080_plaintext', { destinationPort: { value: 9080 } }]]);
  assert.deepEqual((chains(ing)[0]!.filters as JsonObject[])[0]!.typedConfig, { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', statPrefix: 'ingress.tcp.5432', cluster: 'cds_ingress_m_server_tcp_5432' });
  assert.deepEqual((ing.listenerFilters as JsonObject[]).map((f) => f.name), ['envoy.filters.listener.original_dst']);
  assert.ok(clusterNamed(c, 'cds_ingress_m_server_grpc_9080').typedExtensionProtocolOptions);
  const client = run(mesh(server, clientNode()), 'virtualNode', 'client');
  const egressListener = client.listeners.find((l) => l.name === 'lds_egress_0.0.0.0_15001')!;
  assert.deepEqual(chains(egressListener).map((ch) => ch.name), ['egress_tcp_5432', 'egress_amazonaws', 'egress_http']);
});

test('gateway: routes to a router-provided service go through the self redirect into its egress listener; rewrites', () => {
  const b = routerMesh([['r1', { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'a', weight: 1 }] } } }]])
    .service('direct.local', { provider: { virtualNode: { virtualNodeName: 'b' } } })
    .gateway('gw', { listeners: [{ portMapping: { port: 8443, protocol: 'http' }, tls: { mode: 'STRICT', certificate: { sds: { secretName: 'gw-cert' } } } }] })
    .gatewayRoute('gw', 'to-router', { httpRoute: { match: { prefix: '/svc/' }, action: { target: { virtualService: { virtualServiceName: 'svc.local' } } } } })
    .gatewayRoute('gw', 'to-node', { httpRoute: { match: { prefix: '/direct/', hostname: { suffix: '.example.com' } }, action: { target: { virtualService: { virtualServiceName: 'direct.local' } }, rewrite: { prefix: { value: '/api/' }, hostname: { defaultTargetHostname: 'DISABLED' } } } } })
    .gatewayRoute('gw', 'exact', { priority: 0, httpRoute: { match: { path: { exact: '/old' } }, action: { target: { virtualService: { virtualServiceName: 'direct.local' } }, rewrite: { path: { exact: '/new' } } } } });
  const c = run(b, 'virtualGateway', 'gw');
  assert.deepEqual(c.listeners.map((l) => l.name), ['lds_egress_0.0.0.0_15001', 'lds_ingress_0.0.0.0_8443']);
  const routes = ((c.routeConfigurations.find((r) => r.name === 'rds_ingress_http_8443')!.virtualHosts as JsonObject[])[0]!.routes as JsonObject[]);
  // Priority 0 first, then the longest prefix ('/direct/' before '/svc/').
  assert.deepEqual(routes.map((r) => r.name), ['exact', 'to-node', 'to-router']);
  assert.deepEqual(routes[0]!.route, { cluster: 'cds_egress_m_b_http_8080', hostRewriteLiteral: 'direct.local', regexRewrite: { pattern: { regex: '^.*$' }, substitution: '/new' }, timeout: { seconds: '15', nanos: 0 } });
  assert.deepEqual(routes[1]!.match, { prefix: '/direct/', headers: [{ name: ':authority', stringMatch: { suffix: '.example.com' } }] });
  assert.deepEqual(routes[1]!.route, { cluster: 'cds_egress_m_b_http_8080', prefixRewrite: '/api/', timeout: { seconds: '15', nanos: 0 } });
  assert.deepEqual(routes[2]!.route, { cluster: 'cds_ingress_m_gw_self_redirect_http_15001', hostRewriteLiteral: 'svc.local', prefixRewrite: '/', timeout: { seconds: '15', nanos: 0 } });
  assert.deepEqual(egressRoutes(c).map((r) => (r.route as JsonObject).cluster), ['cds_egress_m_a_http_8080']);
  assert.deepEqual(c.secrets, [{ name: 'gw-cert', type: 'certificate', source: 'sds' }]);
});

test('access log from the node logging spec, or the override', () => {
  const server = serverNode(undefined, { logging: { accessLog: { file: { path: '/dev/stdout', format: { text: '%START_TIME%\n' } } } } });
  const c = run(mesh(server, clientNode()), 'virtualNode', 'server');
  const hcm = (chains(ingressOf(c))[0]!.filters as JsonObject[])[0]!.typedConfig as JsonObject;
  assert.deepEqual(hcm.accessLog, [{ name: 'envoy.access_loggers.file', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog', path: '/dev/stdout', logFormat: { textFormatSource: { inlineString: '%START_TIME%\n' } } } }]);
  const o = translate({ view: mesh(server, clientNode()).view(), proxy: { kind: 'virtualNode', name: 'server' }, endpoints: {}, options: { accessLogPath: '/tmp/a.log' } });
  const overridden = (((chains(ingressOf(o))[0]!.filters as JsonObject[])[0]!.typedConfig as JsonObject).accessLog as JsonObject[])[0]!.typedConfig as JsonObject;
  assert.equal(overridden.path, '/tmp/a.log');
  assert.deepEqual(overridden.logFormat, { textFormatSource: { inlineString: '%START_TIME%\n' } });
});

test("an SDS certificate (the workload's own SVID) is referenced by name only, to be provided locally; ACM ones come over ADS", () => {
  const svid = 'spiffe://td/server';
  const c = run(mesh(serverNode({ mode: 'STRICT', certificate: { sds: { secretName: svid } } }), clientNode()), 'virtualNode', 'server');
  const tls = (chains(ingressOf(c))[0]!.transportSocket as JsonObject).typedConfig as JsonObject;
  assert.deepEqual((tls.commonTlsContext as JsonObject).tlsCertificateSdsSecretConfigs, [{ name: svid }]);
  assert.deepEqual(c.secrets, [{ name: svid, type: 'certificate', source: 'sds' }]);
});

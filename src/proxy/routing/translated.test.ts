// Route configurations produced by keymesh's own translation (App Mesh specs in, Envoy resources out, sent over
// the wire) and what the proxy does with them, as App Mesh documents it: route matches of every kind App Mesh
// has, weighted targets, retries and timeouts, gRPC routes, egress domains, and the gateway's rewrites.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeResource, encodeResource, TYPE_URLS } from '../../envoy/protos.ts';
import type { EnvoyConfig } from '../../translate/api.ts';
import { MeshBuilder } from '../../translate/test-fixtures.ts';
import { translate } from '../../translate/translate.ts';
import { compileRouteConfiguration, type RouteTable } from './compile.ts';
import { type RouteSelection, selectRoute, type Selection } from './select.ts';
import { request } from './test-fixtures.ts';

function config(b: MeshBuilder, kind: 'virtualNode' | 'virtualGateway', name: string): EnvoyConfig {
  return translate({ view: b.view(), proxy: { kind, name }, endpoints: {} });
}
/** A route configuration of a translation, as the proxy receives it (encoded, sent, decoded) and compiles it. */
function table(c: EnvoyConfig, name: string): RouteTable {
  const rc = c.routeConfigurations.find((r) => r.name === name);
  assert.ok(rc, `no route configuration ${name} in ${c.routeConfigurations.map((r) => String(r.name)).join(', ')}`);
  return compileRouteConfiguration(decodeResource(TYPE_URLS.routeConfiguration, encodeResource(TYPE_URLS.routeConfiguration, rc)));
}
function routed(s: Selection): RouteSelection {
  assert.equal(s.kind, 'route', `expected a route, got ${s.kind}`);
  return s as RouteSelection;
}
const outcome = (s: Selection) => (s.kind === 'route' ? s.cluster : s.kind);
const node = (port = 8080, protocol = 'http') => ({ listeners: [{ portMapping: { port, protocol } }], serviceDiscovery: { dns: { hostname: 'x.local' } } });

/** A router `r` behind `svc.local` (port 8080, `protocol`), a node per target name, a client with it as backend. */
function routerMesh(routes: [string, object][], targets: string[], protocol = 'http'): MeshBuilder {
  const b = new MeshBuilder('m').router('r', { listeners: [{ portMapping: { port: 8080, protocol } }] })
    .service('svc.local', { provider: { virtualRouter: { virtualRouterName: 'r' } } })
    .node('client', { backends: [{ virtualService: { virtualServiceName: 'svc.local' } }] });
  for (const t of targets) b.node(t, node(8080, protocol));
  for (const [name, spec] of routes) b.route('r', name, spec);
  return b;
}
const cluster = (n: string, protocol = 'http') => `cds_egress_m_${n}_${protocol}_8080`;
const httpRoute = (priority: number, match: object, target: string, extra: object = {}) =>
  ({ priority, httpRoute: { match, action: { weightedTargets: [{ virtualNode: target, weight: 1 }] }, ...extra } });

test('router routes: path, method, every header match App Mesh has, query parameters, scheme; first by priority', () => {
  const routes: [string, object][] = [
    ['path-exact', httpRoute(0, { path: { exact: '/exact' } }, 'path-exact')],
    ['path-regex', httpRoute(1, { path: { regex: '/items/[0-9]+' } }, 'path-regex')],
    ['method', httpRoute(2, { prefix: '/m', method: 'POST' }, 'method')],
    ['h-exact', httpRoute(3, { prefix: '/h', headers: [{ name: 'x-exact', match: { exact: 'v' } }] }, 'h-exact')],
    ['h-prefix', httpRoute(4, { prefix: '/h', headers: [{ name: 'x-prefix', match: { prefix: 'ab' } }] }, 'h-prefix')],
    ['h-suffix', httpRoute(5, { prefix: '/h', headers: [{ name: 'x-suffix', match: { suffix: 'yz' } }] }, 'h-suffix')],
    ['h-regex', httpRoute(6, { prefix: '/h', headers: [{ name: 'x-regex', match: { regex: 'v[0-9]+' } }] }, 'h-regex')],
    ['h-range', httpRoute(7, { prefix: '/h', headers: [{ name: 'x-range', match: { range: { start: 10, end: 20 } } }] }, 'h-range')],
    ['h-invert', httpRoute(8, { prefix: '/h', headers: [{ name: 'x-invert', invert: true, match: { exact: 'no' } }] }, 'h-invert')],
    ['h-present', httpRoute(9, { prefix: '/h', headers: [{ name: 'x-present' }] }, 'h-present')],
    ['query', httpRoute(10, { prefix: '/q', queryParameters: [{ name: 'a', match: { exact: '1' } }, { name: 'b' }] }, 'query')],
    ['scheme', { priority: 11, http2Route: { match: { prefix: '/s', scheme: 'https' }, action: { weightedTargets: [{ virtualNode: 'scheme', weight: 1 }] } } }],
    ['rest', httpRoute(12, { prefix: '/' }, 'rest')],
  ];
  const c = config(routerMesh(routes, routes.map(([n]) => n)), 'virtualNode', 'client');
  const t = table(c, 'rds_egress_http_15001');
  const get = (path: string, headers: Record<string, string> = {}, method = 'GET', scheme?: string) => outcome(selectRoute(t, request('svc.local:8080', path, headers, method, scheme)));
  assert.equal(get('/exact'), cluster('path-exact'));
  assert.equal(get('/exact?x=1'), cluster('path-exact'), 'the query string is not part of the path');
  assert.equal(get('/exact/'), cluster('rest'));
  assert.equal(get('/items/42'), cluster('path-regex'));
  assert.equal(get('/items/42x'), cluster('rest'), 'a regex matches the whole path');
  assert.equal(get('/m', {}, 'POST'), cluster('method'));
  assert.equal(get('/m', {}, 'GET'), cluster('rest'));
  assert.equal(get('/h', { 'x-exact': 'v' }), cluster('h-exact'));
  assert.equal(get('/h', { 'x-exact': 'V' }), cluster('rest'));
  assert.equal(get('/h', { 'x-prefix': 'abc' }), cluster('h-prefix'));
  assert.equal(get('/h', { 'x-suffix': 'xyz' }), cluster('h-suffix'));
  assert.equal(get('/h', { 'x-regex': 'v12' }), cluster('h-regex'));
  assert.equal(get('/h', { 'x-regex': 'v12a' }), cluster('rest'));
  assert.equal(get('/h', { 'x-range': '10' }), cluster('h-range'), 'start inclusive');
  assert.equal(get('/h', { 'x-range': '19' }), cluster('h-range'));
  assert.equal(get('/h', { 'x-range': '20' }), cluster('rest'), 'end exclusive');
  assert.equal(get('/h', { 'x-invert': 'yes' }), cluster('h-invert'));
  assert.equal(get('/h', { 'x-invert': 'no' }), cluster('rest'));
  assert.equal(get('/h', { 'x-present': '' }), cluster('h-present'));
  // Envoy: an inverted value match needs the header to be there.
  assert.equal(get('/h'), cluster('rest'));
  assert.equal(get('/q?a=1&b'), cluster('query'));
  assert.equal(get('/q?b=2&a=1'), cluster('query'));
  assert.equal(get('/q?a=1'), cluster('rest'));
  assert.equal(get('/q?a=2&b'), cluster('rest'));
  assert.equal(get('/s', {}, 'GET', 'https'), cluster('scheme'));
  assert.equal(get('/s', {}, 'GET', 'http'), cluster('rest'));
  // The router's virtual host answers to the service name with and without its port, and nothing else.
  assert.equal(outcome(selectRoute(t, request('svc.local', '/exact'))), cluster('path-exact'));
  assert.equal(outcome(selectRoute(t, request('svc.local:9090', '/exact'))), 'no-virtual-host');
});

test('router routes: weighted targets split by weight (deterministic random), ties broken by route name', () => {
  const b = routerMesh([['split', { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'a', weight: 75 }, { virtualNode: 'b', weight: 25 }] } } }]], ['a', 'b']);
  const t = table(config(b, 'virtualNode', 'client'), 'rds_egress_http_15001');
  const counts: Record<string, number> = {};
  for (let k = 0; k < 100; k++) {
    const c = routed(selectRoute(t, request('svc.local', '/'), () => k / 100)).cluster;
    counts[c] = (counts[c] ?? 0) + 1;
  }
  assert.deepEqual(counts, { [cluster('a')]: 75, [cluster('b')]: 25 });
});

test('retries and timeouts: App Mesh\'s events as Envoy retry conditions, its defaults, per-request 0 = none', () => {
  const b = routerMesh([
    ['custom', httpRoute(0, { prefix: '/custom' }, 'a', {
      retryPolicy: { maxRetries: 3, perRetryTimeout: { unit: 'ms', value: 250 }, httpRetryEvents: ['server-error', 'gateway-error', 'client-error', 'stream-error'], tcpRetryEvents: ['connection-error'] },
      timeout: { perRequest: { unit: 's', value: 0 }, idle: { unit: 'ms', value: 1500 } },
    })],
    ['timeout', httpRoute(1, { prefix: '/timeout' }, 'a', { timeout: { perRequest: { unit: 'ms', value: 2500 } } })],
    ['none', httpRoute(2, { prefix: '/' }, 'a', { retryPolicy: { maxRetries: 0, perRetryTimeout: { unit: 's', value: 1 }, httpRetryEvents: ['server-error'] } })],
  ], ['a']);
  const t = table(config(b, 'virtualNode', 'client'), 'rds_egress_http_15001');
  const action = (path: string) => routed(selectRoute(t, request('svc.local', path))).route.action;
  const custom = action('/custom');
  assert.deepEqual(custom.retryPolicy, {
    retryOn: ['5xx', 'connect-failure', 'gateway-error', 'refused-stream', 'retriable-4xx'], numRetries: 3, perTryTimeoutMs: 250, perTryIdleTimeoutMs: 0,
    retriableStatusCodes: [], backOff: { baseMs: 25, maxMs: 250 },
  });
  assert.equal(custom.timeoutMs, 0);
  assert.equal(custom.idleTimeoutMs, 1500);
  const timeout = action('/timeout');
  assert.equal(timeout.timeoutMs, 2500);
  assert.equal(timeout.idleTimeoutMs, undefined);
  assert.deepEqual(timeout.retryPolicy, {
    retryOn: ['connect-failure', 'refused-stream', 'reset', 'retriable-status-codes'], numRetries: 2, perTryTimeoutMs: 0, perTryIdleTimeoutMs: 0,
    retriableStatusCodes: [503], backOff: { baseMs: 25, maxMs: 250 },
  }, 'App Mesh\'s default policy');
  assert.equal(action('/').retryPolicy?.numRetries, 0);
  assert.equal(action('/').timeoutMs, 15_000);
});

test('gRPC routes: service and method as the path, metadata as headers, only for gRPC requests; gRPC retry events', () => {
  const grpc = (priority: number, match: object, target: string, extra: object = {}) =>
    ({ priority, grpcRoute: { match, action: { weightedTargets: [{ virtualNode: target, weight: 1 }] }, ...extra } });
  const b = routerMesh([
    ['method', grpc(0, { serviceName: 'pkg.Svc', methodName: 'Get' }, 'g-method', { retryPolicy: { maxRetries: 1, perRetryTimeout: { unit: 's', value: 2 }, grpcRetryEvents: ['unavailable', 'deadline-exceeded'] } })],
    ['tenant', grpc(1, { serviceName: 'pkg.Svc', metadata: [{ name: 'tenant', match: { exact: 'a' } }] }, 'g-tenant')],
    ['service', grpc(2, { serviceName: 'pkg.Svc' }, 'g-service')],
    ['any', grpc(3, {}, 'g-any')],
  ], ['g-method', 'g-tenant', 'g-service', 'g-any'], 'grpc');
  const t = table(config(b, 'virtualNode', 'client'), 'rds_egress_http_15001');
  const GRPC = { 'content-type': 'application/grpc' };
  const call = (path: string, headers: Record<string, string> = GRPC) => outcome(selectRoute(t, request('svc.local:8080', path, headers, 'POST')));
  assert.equal(call('/pkg.Svc/Get'), cluster('g-method', 'grpc'));
  assert.equal(call('/pkg.Svc/Put', { ...GRPC, tenant: 'a' }), cluster('g-tenant', 'grpc'));
  assert.equal(call('/pkg.Svc/Put'), cluster('g-service', 'grpc'));
  assert.equal(call('/pkg.SvcX/Put'), cluster('g-any', 'grpc'), 'the service name is a whole path segment');
  assert.equal(call('/other.Svc/Get'), cluster('g-any', 'grpc'));
  assert.equal(call('/pkg.Svc/Get', {}), 'no-route', 'not gRPC');
  const method = routed(selectRoute(t, request('svc.local', '/pkg.Svc/Get', GRPC, 'POST'))).route.action.retryPolicy;
  assert.deepEqual(method?.retryOn, ['deadline-exceeded', 'unavailable']);
  const dflt = routed(selectRoute(t, request('svc.local', '/pkg.Svc/Put', GRPC, 'POST'))).route.action.retryPolicy;
  assert.deepEqual(dflt?.retryOn, ['connect-failure', 'refused-stream', 'reset', 'retriable-status-codes', 'unavailable']);
});

test('egress domains: the service name alone goes to its lowest port, name:port to that port; ALLOW_ALL catches the rest', () => {
  const b = (meshSpec: object) => new MeshBuilder('m', meshSpec)
    .node('server', { listeners: [{ portMapping: { port: 9090, protocol: 'http' } }, { portMapping: { port: 8080, protocol: 'http' } }], serviceDiscovery: { dns: { hostname: 'server.local' } } })
    .service('server.local', { provider: { virtualNode: { virtualNodeName: 'server' } } })
    .node('client', { backends: [{ virtualService: { virtualServiceName: 'server.local' } }] });
  const drop = table(config(b({}), 'virtualNode', 'client'), 'rds_egress_http_15001');
  assert.equal(outcome(selectRoute(drop, request('server.local'))), 'cds_egress_m_server_http_8080');
  assert.equal(outcome(selectRoute(drop, request('Server.Local:9090'))), 'cds_egress_m_server_http_9090');
  assert.equal(outcome(selectRoute(drop, request('server.local:7070'))), 'no-virtual-host');
  assert.equal(outcome(selectRoute(drop, request('s3.amazonaws.com'))), 'cds_egress_m_amazonaws');
  const all = table(config(b({ egressFilter: { type: 'ALLOW_ALL' } }), 'virtualNode', 'client'), 'rds_egress_http_15001');
  assert.equal(outcome(selectRoute(all, request('server.local:9090'))), 'cds_egress_m_server_http_9090');
  assert.equal(outcome(selectRoute(all, request('example.com:8443'))), 'cds_egress_m_passthrough');
  assert.equal(outcome(selectRoute(all, request(undefined))), 'no-virtual-host', 'no Host: Envoy finds no virtual host unless `*` is the only domain');
});

function gatewayMesh(): MeshBuilder {
  const target = (service: string, rewrite?: object) => ({ target: { virtualService: { virtualServiceName: service } }, ...(rewrite ? { rewrite } : {}) });
  return new MeshBuilder('m')
    .node('a', node()).node('b', node())
    .router('r', { listeners: [{ portMapping: { port: 8080, protocol: 'http' } }] })
    .route('r', 'all', httpRoute(0, { prefix: '/' }, 'a'))
    .service('svc.local', { provider: { virtualRouter: { virtualRouterName: 'r' } } })
    .service('direct.local', { provider: { virtualNode: { virtualNodeName: 'b' } } })
    .gateway('gw', { listeners: [{ portMapping: { port: 8443, protocol: 'http' } }] })
    .gatewayRoute('gw', 'to-router', { httpRoute: { match: { prefix: '/svc/' }, action: target('svc.local') } })
    .gatewayRoute('gw', 'override', { httpRoute: { match: { prefix: '/direct/' }, action: target('direct.local', { prefix: { value: '/api/' }, hostname: { defaultTargetHostname: 'DISABLED' } }) } })
    .gatewayRoute('gw', 'keep', { httpRoute: { match: { prefix: '/keep/' }, action: target('direct.local', { prefix: { defaultPrefix: 'DISABLED' } }) } })
    .gatewayRoute('gw', 'exact', { httpRoute: { match: { path: { exact: '/old' } }, action: target('direct.local', { path: { exact: '/new' } }) } })
    .gatewayRoute('gw', 'regex', { httpRoute: { match: { path: { regex: '/v[0-9]+/status' } }, action: target('direct.local') } })
    .gatewayRoute('gw', 'host-exact', { httpRoute: { match: { hostname: { exact: 'www.example.com' } }, action: target('direct.local') } })
    .gatewayRoute('gw', 'host-suffix', { httpRoute: { match: { hostname: { suffix: '.example.org' } }, action: target('svc.local') } })
    .gatewayRoute('gw', 'header', { priority: 0, httpRoute: { match: { prefix: '/', headers: [{ name: 'x-canary', match: { exact: 'true' } }] }, action: target('direct.local') } });
}

test('gateway: App Mesh\'s rewrites — Host to the target service, matched prefix to /, or as configured', () => {
  const c = config(gatewayMesh(), 'virtualGateway', 'gw');
  const t = table(c, 'rds_ingress_http_8443');
  const selfRedirect = 'cds_ingress_m_gw_self_redirect_http_15001';
  const direct = 'cds_egress_m_b_http_8080';
  const go = (path: string, authority = 'gw.example.net', headers: Record<string, string> = {}) => {
    const s = routed(selectRoute(t, request(authority, path, headers)));
    return { route: s.route.name, cluster: s.cluster, path: s.path, host: s.host };
  };
  // Default: Host becomes the target service; the matched prefix becomes / (`/svc/x` → `/x`).
  assert.deepEqual(go('/svc/x/y?z=1'), { route: 'to-router', cluster: selfRedirect, path: '/x/y?z=1', host: 'svc.local' });
  // prefix.value replaces the matched prefix; hostname DISABLED keeps the client's Host.
  assert.deepEqual(go('/direct/v1?a'), { route: 'override', cluster: direct, path: '/api/v1?a', host: undefined });
  // defaultPrefix DISABLED keeps the path.
  assert.deepEqual(go('/keep/me'), { route: 'keep', cluster: direct, path: '/keep/me', host: 'direct.local' });
  // path.exact replaces an exact path match, keeping the query string.
  assert.deepEqual(go('/old?q=1'), { route: 'exact', cluster: direct, path: '/new?q=1', host: 'direct.local' });
  // A regex path match is not rewritten.
  assert.deepEqual(go('/v2/status'), { route: 'regex', cluster: direct, path: '/v2/status', host: 'direct.local' });
  // Hostname matches, on :authority.
  assert.deepEqual(go('/any', 'www.example.com'), { route: 'host-exact', cluster: direct, path: '/any', host: 'direct.local' });
  assert.deepEqual(go('/any', 'api.example.org'), { route: 'host-suffix', cluster: selfRedirect, path: '/any', host: 'svc.local' });
  assert.equal(selectRoute(t, request('other.example.net', '/any')).kind, 'no-route');
  // Priority 0 comes first whatever the path.
  assert.deepEqual(go('/svc/x', 'h', { 'x-canary': 'true' }), { route: 'header', cluster: direct, path: '/svc/x', host: 'direct.local' });
  // Envoy's :authority carries the port when the client sends one: an exact hostname then no longer matches.
  assert.equal(selectRoute(t, request('www.example.com:8443', '/any')).kind, 'no-route');

  // The second hop: the self redirect lands on the gateway's egress listener with Host svc.local, which the
  // router's routes serve.
  const egress = table(c, 'rds_egress_http_15001');
  const hop = go('/svc/x');
  assert.equal(outcome(selectRoute(egress, request(hop.host, hop.path))), 'cds_egress_m_a_http_8080');
  assert.equal(outcome(selectRoute(egress, request('direct.local', '/'))), 'no-virtual-host', 'a gateway\'s egress only serves redirected services');
});

test('gateway: gRPC routes by service name with a Host rewrite and no path rewrite', () => {
  const b = new MeshBuilder('m').node('g', node(8080, 'grpc'))
    .service('grpc.local', { provider: { virtualNode: { virtualNodeName: 'g' } } })
    .gateway('gw', { listeners: [{ portMapping: { port: 9000, protocol: 'grpc' } }] })
    .gatewayRoute('gw', 'svc', { grpcRoute: { match: { serviceName: 'pkg.Svc' }, action: { target: { virtualService: { virtualServiceName: 'grpc.local' } } } } });
  const t = table(config(b, 'virtualGateway', 'gw'), 'rds_ingress_grpc_9000');
  const s = routed(selectRoute(t, request('gw:9000', '/pkg.Svc/Get', { 'content-type': 'application/grpc+proto' }, 'POST')));
  assert.deepEqual([s.cluster, s.path, s.host], ['cds_egress_m_g_grpc_8080', '/pkg.Svc/Get', 'grpc.local']);
  assert.equal(selectRoute(t, request('gw:9000', '/pkg.Svc/Get', {}, 'POST')).kind, 'no-route');
  assert.equal(selectRoute(t, request('gw:9000', '/pkg.Other/Get', { 'content-type': 'application/grpc' }, 'POST')).kind, 'no-route');
});

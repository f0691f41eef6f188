import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JsonObject } from './json.ts';
import type { KindName } from './kinds.ts';
import { applySpecDefaults, checkSpecRules, type RuleContext } from './rules.ts';
import { validateShape } from './validate.ts';

interface Stored { kind: KindName; name: string; parent?: string; spec: unknown }

/** A RuleContext over a fixed set of other resources of the mesh. */
function context(resources: Stored[] = []): RuleContext {
  return {
    spec: (kind, name, parent = '') => resources.find((r) => r.kind === kind && r.name === name && (r.parent ?? '') === parent)?.spec as JsonObject | undefined,
    children: (kind, parent) => resources.filter((r) => r.kind === kind && r.parent === parent).map((r) => ({ name: r.name, spec: r.spec as JsonObject })),
  };
}

/** Runs the rules on a spec that must first pass the shape check, as in the server. */
function check(kind: KindName, spec: unknown, resources: Stored[] = [], parent = '', name = 'it'): string[] {
  const specShape = { mesh: 'MeshSpec', virtualService: 'VirtualServiceSpec', virtualNode: 'VirtualNodeSpec', virtualRouter: 'VirtualRouterSpec', route: 'RouteSpec', virtualGateway: 'VirtualGatewaySpec', gatewayRoute: 'GatewayRouteSpec' }[kind];
  assert.deepEqual(validateShape(specShape, spec, 'spec'), [], 'the test spec must pass the shape check');
  return checkSpecRules(kind, spec as JsonObject, context(resources), parent, name).map((v) => `${v.path}: ${v.message}`);
}

const ok = (kind: KindName, spec: unknown, resources: Stored[] = [], parent = '', name = 'it') => assert.deepEqual(check(kind, spec, resources, parent, name), []);

const certFile = { file: { certificateChain: '/keys/colorteller_cert_chain.pem', privateKey: '/keys/colorteller_key.pem' } };
const caFile = { file: { certificateChain: '/keys/ca_cert.pem' } };
const dns = { dns: { hostname: 'colorteller.appmesh-mtls.local' } };
const http = (port: number) => ({ portMapping: { port, protocol: 'http' } });
const listenerOf = (protocol: string, port = 8080) => ({ portMapping: { port, protocol } });

function node(listener: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return { listeners: [{ ...http(9080), ...listener }], serviceDiscovery: dns, ...extra };
}

const healthCheck = (fields: Record<string, unknown> = {}) => ({ protocol: 'http', path: '/ping', healthyThreshold: 2, unhealthyThreshold: 2, timeoutMillis: 2000, intervalMillis: 5000, ...fields });
const clientPolicy = (tls: Record<string, unknown>) => ({ backendDefaults: { clientPolicy: { tls: { validation: { trust: caFile }, ...tls } } } });

const ACM_CERT = 'arn:aws:acm:us-east-1:000000000000:certificate/6b1c3d0e-0d5a-4c4e-9f51-3c2f0a1e2b3c';
const ACM_PCA = 'arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718';
const TD = 'spiffe://howto-k8s-mtls-sds-based.aws';

// --- seed walkthrough specs -------------------------------------------------------------------------------

test('seed (a): the colorteller with a STRICT file-certificate listener that requires a client certificate', () => {
  ok('virtualNode', {
    listeners: [{
      portMapping: { port: 9080, protocol: 'http' },
      healthCheck: healthCheck(),
      tls: {
        mode: 'STRICT',
        certificate: { file: { certificateChain: '/keys/colorteller_cert_chain.pem', privateKey: '/keys/colorteller_key.pem' } },
        validation: { trust: { file: { certificateChain: '/keys/ca_cert.pem' } }, subjectAlternativeNames: { match: { exact: ['colorgateway.appmesh-mtls.local'] } } },
      },
    }],
    serviceDiscovery: { dns: { hostname: 'colorteller.appmesh-mtls.local' } },
  });
});

test('seed (b): the gateway with a client policy (certificate, trust, SAN)', () => {
  ok('virtualGateway', {
    listeners: [{ portMapping: { port: 9080, protocol: 'http' } }],
    backendDefaults: {
      clientPolicy: {
        tls: {
          certificate: { file: { certificateChain: '/keys/colorgateway_cert_chain.pem', privateKey: '/keys/colorgateway_key.pem' } },
          validation: { trust: { file: { certificateChain: '/keys/ca_cert.pem' } }, subjectAlternativeNames: { match: { exact: ['colorteller.appmesh-mtls.local'] } } },
        },
      },
    },
  });
  ok('gatewayRoute', { httpRoute: { match: { prefix: '/' }, action: { target: { virtualService: { virtualServiceName: 'colorteller.appmesh-mtls.local' } } } } },
    [{ kind: 'virtualGateway', name: 'gw', spec: { listeners: [http(9080)] } }], 'gw');
});

test('seed (c): SPIRE nodes with SDS secrets named by SPIFFE IDs, and header routes', () => {
  ok('virtualNode', {
    listeners: [{
      portMapping: { port: 8080, protocol: 'http' },
      tls: { mode: 'STRICT', certificate: { sds: { secretName: `${TD}/red` } }, validation: { trust: { sds: { secretName: TD } }, subjectAlternativeNames: { match: { exact: [`${TD}/front`] } } } },
    }],
    serviceDiscovery: { dns: { hostname: 'color-red.howto-k8s-mtls-sds-based.svc.cluster.local' } },
  });
  ok('virtualNode', {
    listeners: [{ portMapping: { port: 8080, protocol: 'http' } }],
    serviceDiscovery: { dns: { hostname: 'front.howto-k8s-mtls-sds-based.svc.cluster.local' } },
    backends: [{ virtualService: { virtualServiceName: 'color.howto-k8s-mtls-sds-based.svc.cluster.local' } }],
    backendDefaults: { clientPolicy: { tls: { enforce: true, ports: [8080], certificate: { sds: { secretName: `${TD}/front` } }, validation: { trust: { sds: { secretName: TD } }, subjectAlternativeNames: { match: { exact: [`${TD}/red`, `${TD}/green`, `${TD}/blue`] } } } } } },
  });
  const router = { kind: 'virtualRouter' as const, name: 'color', spec: { listeners: [http(8080)] } };
  const red = { kind: 'virtualNode' as const, name: 'red', spec: { listeners: [http(8080)], serviceDiscovery: dns } };
  ok('route', { httpRoute: { match: { prefix: '/', headers: [{ name: 'color_header', match: { exact: 'red' } }] }, action: { weightedTargets: [{ virtualNode: 'red', weight: 1 }] } } }, [router, red], 'color');
});

test('seed: ACM certificate on a listener and ACM Private CA trust on a gateway', () => {
  ok('virtualNode', node({ tls: { mode: 'STRICT', certificate: { acm: { certificateArn: ACM_CERT } } } }));
  ok('virtualGateway', { listeners: [http(9080)], backendDefaults: { clientPolicy: { tls: { validation: { trust: { acm: { certificateAuthorityArns: [ACM_PCA] } } } } } } });
});

// --- virtual nodes ----------------------------------------------------------------------------------------

test('virtual node: service discovery is required when there are listeners', () => {
  assert.deepEqual(check('virtualNode', { listeners: [http(9080)] }), [
    'spec.serviceDiscovery: is required when the virtual node has listeners (if you specify a listener, you must specify service discovery)',
  ]);
  ok('virtualNode', { backends: [{ virtualService: { virtualServiceName: 'a.local' } }] });
  ok('virtualNode', {});
});

test('virtual node: listener ports are unique', () => {
  assert.deepEqual(check('virtualNode', { listeners: [http(9080), listenerOf('tcp', 9080)], serviceDiscovery: dns }), [
    'spec.listeners[1].portMapping.port: port 9080 is already used by spec.listeners[0]; each listener of a virtual node needs its own port',
  ]);
  ok('virtualNode', { listeners: [http(9080), listenerOf('tcp', 9081)], serviceDiscovery: dns });
});

test('virtual node: connection pool and timeout must match the listener protocol', () => {
  assert.deepEqual(check('virtualNode', node({ connectionPool: { tcp: { maxConnections: 10 } } })), [
    'spec.listeners[0].connectionPool: a tcp connection pool does not fit this http listener; use connectionPool.http to match portMapping.protocol',
  ]);
  ok('virtualNode', node({ connectionPool: { http: { maxConnections: 10, maxPendingRequests: 5 } } }));
  assert.deepEqual(check('virtualNode', node({ ...listenerOf('grpc', 9080), timeout: { http: { perRequest: { value: 5, unit: 's' } } } })), [
    'spec.listeners[0].timeout: an http timeout does not fit this grpc listener; use timeout.grpc to match portMapping.protocol',
  ]);
  ok('virtualNode', node({ ...listenerOf('grpc', 9080), timeout: { grpc: { perRequest: { value: 5, unit: 's' } } } }));
});

test('virtual node: health check port, path and timing', () => {
  assert.deepEqual(check('virtualNode', node({ healthCheck: healthCheck({ port: 8080 }) })), ['spec.listeners[0].healthCheck.port: must equal the listener port 9080; got 8080']);
  ok('virtualNode', node({ healthCheck: healthCheck({ port: 9080 }) }));
  assert.deepEqual(check('virtualNode', node({ healthCheck: healthCheck({ path: undefined }) })), [
    'spec.listeners[0].healthCheck.path: is required for an http health check (the path to request, such as "/ping")',
  ]);
  assert.deepEqual(check('virtualNode', node({ healthCheck: healthCheck({ protocol: 'http2', path: '' }) })), [
    'spec.listeners[0].healthCheck.path: is required for an http2 health check (the path to request, such as "/ping")',
  ]);
  ok('virtualNode', node({ healthCheck: healthCheck({ protocol: 'tcp', path: undefined }) }));
  assert.deepEqual(check('virtualNode', node({ healthCheck: healthCheck({ timeoutMillis: 6000, intervalMillis: 5000 }) })), [
    'spec.listeners[0].healthCheck.timeoutMillis: must not exceed intervalMillis (5000); got 6000',
  ]);
  ok('virtualNode', node({ healthCheck: healthCheck({ timeoutMillis: 5000, intervalMillis: 5000 }) }));
});

test('virtual node: listener TLS certificate ARNs, SANs and SDS names', () => {
  assert.deepEqual(check('virtualNode', node({ tls: { mode: 'STRICT', certificate: { acm: { certificateArn: 'arn:aws:acm:us-east-1:000000000000:certificate-authority/x' } } } })), [
    'spec.listeners[0].tls.certificate.acm.certificateArn: must be an ACM certificate ARN (arn:aws:acm:<region>:<12-digit account>:certificate/<id>); got "arn:aws:acm:us-east-1:000000000000:certificate-authority/x"',
  ]);
  assert.deepEqual(check('virtualNode', node({ tls: { mode: 'STRICT', certificate: certFile, validation: { trust: caFile, subjectAlternativeNames: { match: { exact: [] } } } } })), [
    'spec.listeners[0].tls.validation.subjectAlternativeNames.match.exact: must list at least one subject alternative name',
  ]);
  assert.deepEqual(check('virtualNode', node({ tls: { mode: 'PERMISSIVE', certificate: { sds: { secretName: '' } } } })), ['spec.listeners[0].tls.certificate.sds.secretName: must not be empty']);
  ok('virtualNode', node({ tls: { mode: 'DISABLED', certificate: certFile } }));
});

test('virtual node: client policies: CA ARNs, unique ports, SANs, SDS names', () => {
  assert.deepEqual(check('virtualNode', node({}, clientPolicy({ validation: { trust: { acm: { certificateAuthorityArns: [ACM_PCA, 'arn:aws:acm:us-east-1:000000000000:certificate/x'] } } } }))), [
    'spec.backendDefaults.clientPolicy.tls.validation.trust.acm.certificateAuthorityArns[1]: must be an ACM Private CA ARN (arn:aws:acm-pca:<region>:<12-digit account>:certificate-authority/<id>); got "arn:aws:acm:us-east-1:000000000000:certificate/x"',
  ]);
  assert.deepEqual(check('virtualNode', node({}, clientPolicy({ ports: [8080, 9080, 8080] }))), [
    'spec.backendDefaults.clientPolicy.tls.ports[2]: port 8080 is listed twice (also at spec.backendDefaults.clientPolicy.tls.ports[0])',
  ]);
  ok('virtualNode', node({}, clientPolicy({ ports: [8080, 9080] })));
  // Per-backend client policies get the same checks.
  const backend = (tls: Record<string, unknown>) => ({ backends: [{ virtualService: { virtualServiceName: 'b.local', clientPolicy: { tls: { validation: { trust: caFile }, ...tls } } } }] });
  assert.deepEqual(check('virtualNode', node({}, backend({ validation: { trust: { sds: { secretName: '' } }, subjectAlternativeNames: { match: { exact: [] } } } }))), [
    'spec.backends[0].virtualService.clientPolicy.tls.validation.subjectAlternativeNames.match.exact: must list at least one subject alternative name',
    'spec.backends[0].virtualService.clientPolicy.tls.validation.trust.sds.secretName: must not be empty',
  ]);
  ok('virtualNode', node({}, backend({ certificate: certFile })));
});

test('virtual node: backends are listed once and named', () => {
  const backends = (...names: string[]) => ({ backends: names.map((virtualServiceName) => ({ virtualService: { virtualServiceName } })) });
  assert.deepEqual(check('virtualNode', node({}, backends('a.local', 'b.local', 'a.local'))), [
    'spec.backends[2].virtualService.virtualServiceName: virtual service "a.local" is already a backend (spec.backends[0]); list each backend once',
  ]);
  assert.deepEqual(check('virtualNode', node({}, backends(''))), ['spec.backends[0].virtualService.virtualServiceName: must not be empty']);
  ok('virtualNode', node({}, backends('a.local', 'b.local')));
});

test('virtual node: DNS service discovery needs a plausible hostname', () => {
  const sd = (hostname: string) => ({ listeners: [http(80)], serviceDiscovery: { dns: { hostname } } });
  assert.deepEqual(check('virtualNode', sd('')), ['spec.serviceDiscovery.dns.hostname: must not be empty']);
  assert.deepEqual(check('virtualNode', sd('color teller.local')), [
    'spec.serviceDiscovery.dns.hostname: must be a DNS hostname (dot-separated labels of letters, digits, hyphens and underscores, at most 63 characters each); got "color teller.local"',
  ]);
  assert.equal(check('virtualNode', sd('a..local')).length, 1);
  assert.equal(check('virtualNode', sd(`${'x'.repeat(64)}.local`)).length, 1);
  assert.equal(check('virtualNode', sd('-bad.local')).length, 1);
  for (const h of ['colorteller.appmesh-mtls.local', 'web', 'web.local.', '_svc.example.com', '10.0.0.1', 'fd00::1']) ok('virtualNode', sd(h));
});

test('durations: a value needs a unit', () => {
  assert.deepEqual(check('virtualNode', node({ timeout: { http: { idle: { value: 10 } } } })), ['spec.listeners[0].timeout.http.idle.unit: is required when value is set; use "s" or "ms"']);
  ok('virtualNode', node({ timeout: { http: { idle: { value: 10, unit: 's' } } } }));
  const outlier = (interval: Record<string, unknown>) => node({ outlierDetection: { baseEjectionDuration: { value: 30, unit: 's' }, interval, maxEjectionPercent: 50, maxServerErrors: 5 } });
  assert.equal(check('virtualNode', outlier({ value: 10 })).length, 1);
  ok('virtualNode', outlier({ value: 10, unit: 'ms' }));
});

// --- virtual routers --------------------------------------------------------------------------------------

const target = (virtualNode = 'red', extra: Record<string, unknown> = {}) => ({ weightedTargets: [{ virtualNode, weight: 1, ...extra }] });
const httpRoute = (match: Record<string, unknown> = { prefix: '/' }, extra: Record<string, unknown> = {}) => ({ httpRoute: { match, action: target(), ...extra } });
const routeOf = (name: string, spec: unknown, parent = 'router') => ({ kind: 'route' as const, name, parent, spec });

test('virtual router: listener ports are unique', () => {
  assert.deepEqual(check('virtualRouter', { listeners: [http(8080), listenerOf('grpc', 8080)] }), [
    'spec.listeners[1].portMapping.port: port 8080 is already used by spec.listeners[0]; each listener of a virtual router needs its own port',
  ]);
  ok('virtualRouter', { listeners: [http(8080), listenerOf('grpc', 8081)] });
  ok('virtualRouter', {});
});

test('virtual router: multiple listeners need every route to match a port', () => {
  const routes = ['e', 'a', 'c', 'f', 'b', 'd'].map((n) => routeOf(n, httpRoute()));
  assert.deepEqual(check('virtualRouter', { listeners: [http(8080), http(8081)] }, [...routes, routeOf('g', httpRoute({ prefix: '/', port: 8080 }))], '', 'router'), [
    'spec.listeners: All Routes for this Virtual Router must define a port match before adding multiple listeners to this Virtual Router. 6 Route(s) are missing port. Listing up to 5 route names: [a, b, c, d, e]',
  ]);
  ok('virtualRouter', { listeners: [http(8080), http(8081)] }, [routeOf('a', httpRoute({ prefix: '/', port: 8081 })), routeOf('x', httpRoute(), 'other')], '', 'router');
  ok('virtualRouter', { listeners: [http(8080)] }, routes, '', 'router');
});

test('virtual router: a listener protocol may not change under routes of the old type', () => {
  const routes = [routeOf('r1', httpRoute()), routeOf('r2', { tcpRoute: { action: target() } })];
  assert.deepEqual(check('virtualRouter', { listeners: [listenerOf('grpc')] }, routes, '', 'router'), [
    'spec.listeners: no listener has protocol http, but 1 httpRoute route(s) need one: [r1]; change or delete those routes first',
    'spec.listeners: no listener has protocol tcp, but 1 tcpRoute route(s) need one: [r2]; change or delete those routes first',
  ]);
  ok('virtualRouter', { listeners: [http(8080), listenerOf('tcp', 9000)] }, [routeOf('r1', httpRoute({ prefix: '/', port: 8080 })), routeOf('r2', { tcpRoute: { action: target(), match: { port: 9000 } } })], '', 'router');
});

test('virtual router: a listener port may not be removed under routes that match it', () => {
  assert.deepEqual(check('virtualRouter', { listeners: [http(8080)] }, [routeOf('r1', httpRoute({ prefix: '/', port: 8081 }))], '', 'router'), [
    'spec.listeners: 1 route(s) match a port that no listener has (listeners: 8080 (http)): [r1]; change or delete those routes first',
  ]);
});

// --- routes -----------------------------------------------------------------------------------------------

const router = (...listeners: unknown[]) => ({ kind: 'virtualRouter' as const, name: 'router', spec: { listeners } });
const redNode = (...listeners: unknown[]) => ({ kind: 'virtualNode' as const, name: 'red', spec: { listeners, serviceDiscovery: dns } });
const route = (spec: unknown, resources: Stored[] = [router(http(8080))]) => check('route', spec, resources, 'router', 'r');

test('route: exactly one route type', () => {
  assert.deepEqual(route({ ...httpRoute(), tcpRoute: { action: target() } }), ['spec: Specify one route type: exactly one of httpRoute, http2Route, grpcRoute, tcpRoute must be set; found httpRoute, tcpRoute']);
  assert.deepEqual(route({ priority: 1 }), ['spec: Specify one route type: exactly one of httpRoute, http2Route, grpcRoute, tcpRoute must be set; found none']);
  assert.deepEqual(route(httpRoute()), []);
});

test('route: the route type must match a router listener protocol', () => {
  assert.deepEqual(route({ grpcRoute: { match: { serviceName: 'color.Color' }, action: target() } }), [
    'spec.grpcRoute: a grpcRoute needs a listener with protocol grpc, but virtual router router has listeners 8080 (http)',
  ]);
  assert.deepEqual(route({ http2Route: { match: { prefix: '/' }, action: target() } }, [router(listenerOf('http2'))]), []);
  assert.deepEqual(route({ tcpRoute: { action: target() } }, [router(listenerOf('tcp'))]), []);
  // A router without listeners takes any type; a missing router is the manager's NotFound.
  assert.deepEqual(route({ tcpRoute: { action: target() } }, [router()]), []);
  assert.deepEqual(route({ tcpRoute: { action: target() } }, []), []);
});

test('route: with several router listeners, match.port is required and picks a listener of the right protocol', () => {
  const two = [router(http(8080), listenerOf('grpc', 9090))];
  assert.deepEqual(route(httpRoute(), two), ['spec.httpRoute.match.port: Route must define a port match criteria if the Virtual Router has multiple listeners']);
  assert.deepEqual(route(httpRoute({ prefix: '/', port: 7000 }), two), ['spec.httpRoute.match.port: must be one of the listener ports of virtual router router (8080 (http), 9090 (grpc)); got 7000']);
  assert.deepEqual(route(httpRoute({ prefix: '/', port: 9090 }), two), ['spec.httpRoute.match.port: the listener on port 9090 has protocol grpc; an httpRoute needs an http listener']);
  assert.deepEqual(route(httpRoute({ prefix: '/', port: 8080 }), two), []);
  assert.deepEqual(route({ tcpRoute: { action: target() } }, [router(listenerOf('tcp', 1), listenerOf('tcp', 2))]), ['spec.tcpRoute.match.port: Route must define a port match criteria if the Virtual Router has multiple listeners']);
  assert.deepEqual(route({ tcpRoute: { action: target(), match: { port: 2 } } }, [router(listenerOf('tcp', 1), listenerOf('tcp', 2))]), []);
});

test('route: http matches', () => {
  assert.deepEqual(route(httpRoute({ method: 'GET' })), ['spec.httpRoute.match: must set prefix or path']);
  assert.deepEqual(route(httpRoute({ prefix: '/', path: { exact: '/a' } })), ['spec.httpRoute.match: must set either prefix or path, not both']);
  assert.deepEqual(route(httpRoute({ prefix: 'color' })), [`spec.httpRoute.match.prefix: must start with '/'; got "color"`]);
  assert.deepEqual(route(httpRoute({ path: { exact: '/a', regex: '/a.*' } })), ['spec.httpRoute.match.path: must set exactly one of exact, regex; found exact, regex']);
  assert.deepEqual(route(httpRoute({ path: {} })), ['spec.httpRoute.match.path: must set exactly one of exact, regex; found none']);
  assert.deepEqual(route(httpRoute({ path: { regex: '/a.*' } })), []);
  assert.deepEqual(route(httpRoute({ prefix: '/', scheme: 'https' })), ['spec.httpRoute.match.scheme: applies only to http2Route; remove it or use an http2Route']);
  assert.deepEqual(route({ http2Route: { match: { prefix: '/', scheme: 'https' }, action: target() } }, [router(listenerOf('http2'))]), []);
});

test('route: header and query parameter matches', () => {
  const header = (match: unknown) => httpRoute({ prefix: '/', headers: [{ name: 'x-version', match }] });
  assert.deepEqual(route(header({ range: { start: 10, end: 10 } })), [
    'spec.httpRoute.match.headers[0].match.range: end must be greater than start (start is inclusive, end exclusive); got start 10, end 10',
  ]);
  assert.deepEqual(route(header({ range: { start: 1, end: 10 } })), []);
  assert.deepEqual(route(httpRoute({ prefix: '/', headers: [{ name: 'x-present' }] })), []);
  assert.deepEqual(route(httpRoute({ prefix: '/', queryParameters: [{ name: 'v', match: {} }] })), [
    'spec.httpRoute.match.queryParameters[0].match: must set exact; omit match to match on the presence of the parameter',
  ]);
  assert.deepEqual(route(httpRoute({ prefix: '/', queryParameters: [{ name: '' }] })), ['spec.httpRoute.match.queryParameters[0].name: must not be empty']);
  assert.deepEqual(route(httpRoute({ prefix: '/', queryParameters: [{ name: 'v', match: { exact: '2' } }, { name: 'debug' }] })), []);
});

test('route: grpc matches', () => {
  const grpc = (match: unknown) => route({ grpcRoute: { match, action: target() } }, [router(listenerOf('grpc'))]);
  assert.deepEqual(grpc({ methodName: 'Get' }), ['spec.grpcRoute.match.methodName: requires match.serviceName']);
  assert.deepEqual(grpc({ serviceName: 'color.Color', methodName: 'Get' }), []);
  assert.deepEqual(grpc({ metadata: [{ name: 'v', match: { range: { start: 5, end: 1 } } }] }), [
    'spec.grpcRoute.match.metadata[0].match.range: end must be greater than start (start is inclusive, end exclusive); got start 5, end 1',
  ]);
  assert.deepEqual(grpc({}), []);
});

test('route: retry policies need events, and http events are the documented ones', () => {
  const retry = (events: Record<string, unknown>) => httpRoute({ prefix: '/' }, { retryPolicy: { maxRetries: 2, perRetryTimeout: { value: 1, unit: 's' }, ...events } });
  assert.deepEqual(route(retry({})), ['spec.httpRoute.retryPolicy: must list at least one retry event in httpRetryEvents or tcpRetryEvents']);
  assert.deepEqual(route(retry({ httpRetryEvents: ['server-error', '5xx'] })), [
    'spec.httpRoute.retryPolicy.httpRetryEvents[1]: must be one of server-error, gateway-error, client-error, stream-error; got "5xx"',
  ]);
  assert.deepEqual(route(retry({ tcpRetryEvents: ['connection-error'] })), []);
  assert.deepEqual(route(retry({ httpRetryEvents: ['gateway-error', 'stream-error'] })), []);
  const grpcRetry = (events: Record<string, unknown>) => route({ grpcRoute: { match: {}, action: target(), retryPolicy: { maxRetries: 1, perRetryTimeout: { value: 1, unit: 's' }, ...events } } }, [router(listenerOf('grpc'))]);
  assert.deepEqual(grpcRetry({}), ['spec.grpcRoute.retryPolicy: must list at least one retry event in grpcRetryEvents or httpRetryEvents or tcpRetryEvents']);
  assert.deepEqual(grpcRetry({ grpcRetryEvents: ['unavailable'] }), []);
});

test('route: durations need a unit', () => {
  assert.deepEqual(route(httpRoute({ prefix: '/' }, { timeout: { perRequest: { value: 15 } } })), ['spec.httpRoute.timeout.perRequest.unit: is required when value is set; use "s" or "ms"']);
  assert.deepEqual(route(httpRoute({ prefix: '/' }, { timeout: { perRequest: { value: 15, unit: 's' } } })), []);
});

test('route: a target node with several listeners needs a port that is one of them', () => {
  const withTarget = (extra: Record<string, unknown>, node = redNode(http(8080), http(8081))) =>
    route({ httpRoute: { match: { prefix: '/' }, action: target('red', extra) } }, [router(http(8080)), node]);
  assert.deepEqual(withTarget({}), ['spec.httpRoute.action.weightedTargets[0].port: is required because virtual node red has multiple listeners (8080 (http), 8081 (http))']);
  assert.deepEqual(withTarget({ port: 9000 }), ['spec.httpRoute.action.weightedTargets[0].port: must be one of the listener ports of virtual node red (8080 (http), 8081 (http)); got 9000']);
  assert.deepEqual(withTarget({ port: 8081 }), []);
  assert.deepEqual(withTarget({}, redNode(http(8080))), []);
  assert.deepEqual(withTarget({ port: 9000 }, redNode(http(8080))), ['spec.httpRoute.action.weightedTargets[0].port: must be one of the listener ports of virtual node red (8080 (http)); got 9000']);
  assert.deepEqual(withTarget({ port: 8080 }, redNode()), ['spec.httpRoute.action.weightedTargets[0].port: virtual node red has no listeners, so no port 8080 to send traffic to']);
  // A missing target node is reported by the manager (NotFound), not here.
  assert.deepEqual(route({ httpRoute: { match: { prefix: '/' }, action: target('blue', { port: 1 }) } }), []);
});

// --- virtual gateways -------------------------------------------------------------------------------------

const gateway = (...listeners: unknown[]) => ({ kind: 'virtualGateway' as const, name: 'gw', spec: { listeners } });
const toService = { target: { virtualService: { virtualServiceName: 'color.local' } } };
const gwHttp = (match: Record<string, unknown>, action: Record<string, unknown> = {}) => ({ httpRoute: { match, action: { ...toService, ...action } } });

test('virtual gateway: unique ports, pools, health checks, certificate ARNs', () => {
  assert.deepEqual(check('virtualGateway', { listeners: [http(8080), listenerOf('grpc', 8080)] }), [
    'spec.listeners[1].portMapping.port: port 8080 is already used by spec.listeners[0]; each listener of a virtual gateway needs its own port',
  ]);
  assert.deepEqual(check('virtualGateway', { listeners: [{ ...http(8080), connectionPool: { grpc: { maxRequests: 10 } } }] }), [
    'spec.listeners[0].connectionPool: a grpc connection pool does not fit this http listener; use connectionPool.http to match portMapping.protocol',
  ]);
  ok('virtualGateway', { listeners: [{ ...listenerOf('grpc'), connectionPool: { grpc: { maxRequests: 10 } } }] });
  assert.deepEqual(check('virtualGateway', { listeners: [{ ...http(8080), healthCheck: healthCheck({ port: 80, path: undefined }) }] }), [
    'spec.listeners[0].healthCheck.port: must equal the listener port 8080; got 80',
    'spec.listeners[0].healthCheck.path: is required for an http health check (the path to request, such as "/ping")',
  ]);
  ok('virtualGateway', { listeners: [{ ...http(8080), healthCheck: healthCheck({ port: 8080 }) }] });
  assert.deepEqual(check('virtualGateway', { listeners: [{ ...http(8080), tls: { mode: 'STRICT', certificate: { acm: { certificateArn: 'cert-1' } } } }] }), [
    'spec.listeners[0].tls.certificate.acm.certificateArn: must be an ACM certificate ARN (arn:aws:acm:<region>:<12-digit account>:certificate/<id>); got "cert-1"',
  ]);
  ok('virtualGateway', { listeners: [{ ...http(8080), tls: { mode: 'STRICT', certificate: { acm: { certificateArn: ACM_CERT } } } }] });
  assert.equal(check('virtualGateway', { listeners: [http(8080)], backendDefaults: { clientPolicy: { tls: { ports: [1, 1], validation: { trust: { acm: { certificateAuthorityArns: ['ca'] } } } } } } }).length, 2);
});

test('virtual gateway: its listeners must keep fitting its gateway routes', () => {
  const gr = (name: string, match: Record<string, unknown>) => ({ kind: 'gatewayRoute' as const, name, parent: 'gw', spec: gwHttp(match) });
  assert.deepEqual(check('virtualGateway', { listeners: [http(8080), http(8081)] }, [gr('b', { prefix: '/' }), gr('a', { prefix: '/' }), gr('c', { prefix: '/', port: 8081 })], '', 'gw'), [
    'spec.listeners: All Gateway Routes for this Virtual Gateway must define a port match before adding multiple listeners to this Virtual Gateway. 2 Gateway Route(s) are missing port. Listing up to 5 route names: [a, b]',
  ]);
  assert.deepEqual(check('virtualGateway', { listeners: [listenerOf('grpc')] }, [gr('a', { prefix: '/' })], '', 'gw'), [
    'spec.listeners: no listener has protocol http, but 1 httpRoute route(s) need one: [a]; change or delete those routes first',
  ]);
  ok('virtualGateway', { listeners: [http(8080), http(8081)] }, [gr('a', { prefix: '/', port: 8080 }), gr('c', { prefix: '/', port: 8081 })], '', 'gw');
});

// --- gateway routes ---------------------------------------------------------------------------------------

const gatewayRoute = (spec: unknown, resources: Stored[] = [gateway(http(8080))]) => check('gatewayRoute', spec, resources, 'gw', 'gr');

test('gateway route: exactly one route type, matching a gateway listener', () => {
  assert.deepEqual(gatewayRoute({ ...gwHttp({ prefix: '/' }), http2Route: gwHttp({ prefix: '/' }).httpRoute }), [
    'spec: Specify one route type: exactly one of httpRoute, http2Route, grpcRoute must be set; found httpRoute, http2Route',
  ]);
  assert.deepEqual(gatewayRoute({ priority: 0 }), ['spec: Specify one route type: exactly one of httpRoute, http2Route, grpcRoute must be set; found none']);
  assert.deepEqual(gatewayRoute({ grpcRoute: { match: { serviceName: 'color.Color' }, action: toService } }), [
    'spec.grpcRoute: a grpcRoute needs a listener with protocol grpc, but virtual gateway gw has listeners 8080 (http)',
  ]);
  assert.deepEqual(gatewayRoute({ grpcRoute: { match: { serviceName: 'color.Color' }, action: toService } }, [gateway(listenerOf('grpc'))]), []);
});

test('gateway route: with several gateway listeners, match.port is required', () => {
  const two = [gateway(http(8080), http(8081))];
  assert.deepEqual(gatewayRoute(gwHttp({ prefix: '/' }), two), ['spec.httpRoute.match.port: Gateway route must define a port match criteria if the Virtual Gateway has multiple listeners']);
  assert.deepEqual(gatewayRoute(gwHttp({ prefix: '/', port: 9000 }), two), ['spec.httpRoute.match.port: must be one of the listener ports of virtual gateway gw (8080 (http), 8081 (http)); got 9000']);
  assert.deepEqual(gatewayRoute(gwHttp({ prefix: '/', port: 8081 }), two), []);
});

test('gateway route: http matches', () => {
  assert.deepEqual(gatewayRoute(gwHttp({ method: 'GET' })), ['spec.httpRoute.match: must set at least one of prefix, path, hostname']);
  assert.deepEqual(gatewayRoute(gwHttp({ hostname: { exact: 'color.example.com' } })), []);
  assert.deepEqual(gatewayRoute(gwHttp({ prefix: '/a', hostname: { suffix: '.example.com' } })), []);
  assert.deepEqual(gatewayRoute(gwHttp({ prefix: '/', path: { exact: '/a' } })), ['spec.httpRoute.match: must set either prefix or path, not both']);
  assert.deepEqual(gatewayRoute(gwHttp({ prefix: 'a/' })), [`spec.httpRoute.match.prefix: must start with '/'; got "a/"`]);
  assert.deepEqual(gatewayRoute(gwHttp({ prefix: '/aws-appmesh/x' })), ['spec.httpRoute.match.prefix: is reserved: prefixes starting with /aws-appmesh or /aws-app-mesh belong to App Mesh; got "/aws-appmesh/x"']);
  assert.equal(gatewayRoute(gwHttp({ prefix: '/aws-app-mesh' })).length, 1);
  assert.deepEqual(gatewayRoute(gwHttp({ hostname: { exact: 'a.com', suffix: '.com' } })), ['spec.httpRoute.match.hostname: must set exactly one of exact, suffix; found exact, suffix']);
  assert.deepEqual(gatewayRoute(gwHttp({ hostname: {} })), ['spec.httpRoute.match.hostname: must set exactly one of exact, suffix; found none']);
  assert.deepEqual(gatewayRoute(gwHttp({ path: { exact: '/a', regex: '/a' } })), ['spec.httpRoute.match.path: must set exactly one of exact, regex; found exact, regex']);
  assert.deepEqual(gatewayRoute(gwHttp({ path: { exact: '/a' } })), []);
});

test('gateway route: rewrites', () => {
  const rewrite = (match: Record<string, unknown>, r: unknown) => gatewayRoute(gwHttp(match, { rewrite: r }));
  assert.deepEqual(rewrite({ path: { exact: '/a' } }, { prefix: { value: '/b/' } }), ['spec.httpRoute.action.rewrite.prefix: can only be used with a prefix match (match.prefix)']);
  assert.deepEqual(rewrite({ prefix: '/a/' }, { prefix: { defaultPrefix: 'DISABLED', value: '/b/' } }), ['spec.httpRoute.action.rewrite.prefix: must set either defaultPrefix or value, not both']);
  assert.deepEqual(rewrite({ prefix: '/a/' }, { prefix: { value: 'b/' } }), [`spec.httpRoute.action.rewrite.prefix.value: must start with '/'; got "b/"`]);
  assert.deepEqual(rewrite({ prefix: '/a/' }, { prefix: { value: '/b/' } }), []);
  assert.deepEqual(rewrite({ prefix: '/a/' }, { prefix: { defaultPrefix: 'DISABLED' }, hostname: { defaultTargetHostname: 'DISABLED' } }), []);
  assert.deepEqual(rewrite({ prefix: '/a/' }, { path: { exact: '/b' } }), ['spec.httpRoute.action.rewrite.path: can only be used with a path match (match.path.exact or match.path.regex)']);
  assert.deepEqual(rewrite({ path: { regex: '/a.*' } }, { path: { exact: '/b' } }), []);
});

test('gateway route: grpc matches', () => {
  const grpc = (match: unknown) => gatewayRoute({ grpcRoute: { match, action: toService } }, [gateway(listenerOf('grpc'))]);
  assert.deepEqual(grpc({}), ['spec.grpcRoute.match: must set serviceName or hostname']);
  assert.deepEqual(grpc({ hostname: { suffix: '.example.com' } }), []);
  assert.deepEqual(grpc({ serviceName: 'aws.appmesh.Envoy' }), ['spec.grpcRoute.match.serviceName: is reserved: gRPC service names starting with aws.appmesh or aws.app-mesh belong to App Mesh; got "aws.appmesh.Envoy"']);
  assert.deepEqual(grpc({ serviceName: 'color.Color', hostname: { exact: 'a', suffix: 'b' } }), ['spec.grpcRoute.match.hostname: must set exactly one of exact, suffix; found exact, suffix']);
});

// --- meshes, virtual services -----------------------------------------------------------------------------

test('meshes and virtual services have no rules beyond their shapes', () => {
  ok('mesh', {});
  ok('mesh', { egressFilter: { type: 'ALLOW_ALL' }, serviceDiscovery: { ipPreference: 'IPv4_ONLY' } });
  ok('virtualService', {});
  ok('virtualService', { provider: { virtualRouter: { virtualRouterName: 'missing-is-the-managers-job' } } });
});

// --- defaults ---------------------------------------------------------------------------------------------

test('applySpecDefaults: a listener health check without port gets the listener port', () => {
  const spec = node({ healthCheck: healthCheck() }) as unknown as JsonObject;
  const before = structuredClone(spec);
  const out = applySpecDefaults('virtualNode', spec);
  assert.deepEqual(out, node({ healthCheck: healthCheck({ port: 9080 }) }));
  assert.deepEqual(spec, before, 'the input is not changed');
  const explicit = node({ healthCheck: healthCheck({ port: 9080 }) }) as unknown as JsonObject;
  assert.deepEqual(applySpecDefaults('virtualNode', explicit), explicit);
  const gw = { listeners: [{ ...http(8080), healthCheck: healthCheck() }, http(8081)] } as unknown as JsonObject;
  assert.deepEqual(applySpecDefaults('virtualGateway', gw), { listeners: [{ ...http(8080), healthCheck: healthCheck({ port: 8080 }) }, http(8081)] });
});

test('applySpecDefaults: nothing else is filled in; a missing spec becomes {}', () => {
  assert.deepEqual(applySpecDefaults('mesh', undefined), {});
  assert.deepEqual(applySpecDefaults('mesh', {}), {});
  const routerSpec = { listeners: [http(8080)] } as unknown as JsonObject;
  const out = applySpecDefaults('virtualRouter', routerSpec);
  assert.deepEqual(out, routerSpec);
  assert.notEqual(out, routerSpec, 'a new object');
  const clientPolicyOnly = node({}, clientPolicy({})) as unknown as JsonObject;
  assert.deepEqual(applySpecDefaults('virtualNode', clientPolicyOnly), clientPolicyOnly);
});

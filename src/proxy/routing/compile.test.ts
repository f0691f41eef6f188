// compileRouteConfiguration: every route configuration keymesh's golden files hold compiles (as given and as it
// arrives over xDS, decoded by protobufjs), defaults are Envoy's, and what keymesh's proxy does not implement
// is a ProxyConfigError naming the resource and the field.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeResource, encodeResource, TYPE_URLS } from '../../envoy/protos.ts';
import { type Json, ProxyConfigError } from '../resources/values.ts';
import { compileRouteConfiguration, DEFAULT_ROUTE_TIMEOUT_MS, type RouteTable } from './compile.ts';
import { rc, vhost } from './test-fixtures.ts';

const GOLDEN = new URL('../../translate/golden/', import.meta.url);
const overXds = (rc: Json): Json => decodeResource(TYPE_URLS.routeConfiguration, encodeResource(TYPE_URLS.routeConfiguration, rc));

const goldenConfigs: [string, Json][] = readdirSync(GOLDEN).filter((f) => f.endsWith('.json')).sort().flatMap((f) => {
  const config = JSON.parse(readFileSync(new URL(f, GOLDEN), 'utf8')) as { routeConfigurations: Json[] };
  return config.routeConfigurations.map((rc): [string, Json] => [`${f} ${String(rc.name)}`, rc]);
});

test('every route configuration in the golden files compiles, as given and decoded from the wire, to the same table', () => {
  assert.ok(goldenConfigs.length >= 25, `only ${goldenConfigs.length} route configurations found`);
  for (const [where, rc] of goldenConfigs) {
    const direct = compileRouteConfiguration(rc);
    const wire = compileRouteConfiguration(overXds(rc));
    assert.equal(direct.name, rc.name, where);
    assert.deepEqual(summary(wire), summary(direct), where);
    assert.equal(direct.virtualHosts.length, (rc.virtualHosts as unknown[] | undefined)?.length ?? 0, where);
  }
});

/** The comparable part of a table (compiled matchers are functions). */
function summary(t: RouteTable): unknown {
  return t.virtualHosts.map((vh) => ({
    name: vh.name, domains: vh.domains,
    routes: vh.routes.map((r) => ({ name: r.name, path: r.match.path, headers: r.match.headers.map((h) => [h.kind, h.name, h.invert]), grpc: r.match.grpc, action: r.action })),
  }));
}

test('defaults: Envoy\'s 15 s route timeout, 0 disables, idle timeout only when set; one retry with 25 ms back-off', () => {
  const t = compileRouteConfiguration(rc([vhost('v', ['*'], [
    { match: { prefix: '/a' }, route: { cluster: 'c' } },
    { match: { prefix: '/b' }, route: { cluster: 'c', timeout: { seconds: '0', nanos: 0 }, idleTimeout: { seconds: '2', nanos: 500000000 } } },
    { match: { prefix: '/c' }, route: { cluster: 'c', timeout: {}, retryPolicy: { retryOn: '5xx, reset,5xx', perTryTimeout: { nanos: 250000000 } } } },
    { match: { prefix: '/d' }, route: { cluster: 'c', retryPolicy: { retryOn: 'unavailable', numRetries: {}, retryBackOff: { baseInterval: { nanos: 100000000 } } } } },
  ])]));
  const [a, b, c, d] = t.virtualHosts[0]!.routes.map((r) => r.action);
  assert.equal(a!.timeoutMs, DEFAULT_ROUTE_TIMEOUT_MS);
  assert.equal(a!.idleTimeoutMs, undefined);
  assert.equal(a!.retryPolicy, undefined);
  assert.equal(a!.clusterNotFoundStatus, 503);
  assert.equal(b!.timeoutMs, 0);
  assert.equal(b!.idleTimeoutMs, 2500);
  assert.equal(c!.timeoutMs, 0, 'an empty Duration is 0 s, as decoded from the wire');
  assert.deepEqual(c!.retryPolicy, { retryOn: ['5xx', 'reset'], numRetries: 1, perTryTimeoutMs: 250, perTryIdleTimeoutMs: 0, retriableStatusCodes: [], backOff: { baseMs: 25, maxMs: 250 } });
  assert.deepEqual(d!.retryPolicy, { retryOn: ['unavailable'], numRetries: 0, perTryTimeoutMs: 0, perTryIdleTimeoutMs: 0, retriableStatusCodes: [], backOff: { baseMs: 100, maxMs: 1000 } });
});

test('a virtual host\'s retry policy applies to the routes without their own', () => {
  const t = compileRouteConfiguration(rc([{ ...vhost('v', ['*'], [
    { match: { prefix: '/own' }, route: { cluster: 'c', retryPolicy: { retryOn: 'reset', numRetries: { value: 5 } } } },
    { match: { prefix: '/' }, route: { cluster: 'c' } },
  ]), retryPolicy: { retryOn: 'connect-failure', numRetries: { value: 3 } } }]));
  const [own, inherited] = t.virtualHosts[0]!.routes.map((r) => r.action.retryPolicy);
  assert.deepEqual([own!.retryOn, own!.numRetries], [['reset'], 5]);
  assert.deepEqual([inherited!.retryOn, inherited!.numRetries], [['connect-failure'], 3]);
});

test('domains are looked up lower-case; wildcards sorted longest first; informational fields are ignored', () => {
  const t = compileRouteConfiguration({
    name: 'r', metadata: { filterMetadata: {} },
    virtualHosts: [
      { ...vhost('a', ['Foo.COM', '*.b.com', '*.long.b.com', 'api.*', 'api.v2.*'], []), virtualClusters: [{ name: 'vc' }] },
      vhost('d', ['*'], [{ name: 'named', statPrefix: 's', metadata: {}, match: { prefix: '/' }, route: { cluster: 'c' } }]),
    ],
  });
  assert.deepEqual([...t.exactDomains.keys()], ['foo.com']);
  assert.deepEqual(t.suffixDomains.map((w) => w.text), ['.long.b.com', '.b.com']);
  assert.deepEqual(t.prefixDomains.map((w) => w.text), ['api.v2.', 'api.']);
  assert.equal(t.defaultVirtualHost?.name, 'd');
  assert.equal(t.defaultVirtualHost?.routes[0]!.name, 'named');
});

// A valid base: rds_x with one virtual host of three routes; each case breaks one thing.
function base(): Json {
  return rc([vhost('vh', ['svc.local', 'svc.local:8080'], [
    { name: 'r0', match: { prefix: '/a', headers: [{ name: 'x', stringMatch: { exact: '1' } }] }, route: { cluster: 'c0' } },
    { name: 'r1', match: { path: '/b', queryParameters: [{ name: 'q', presentMatch: true }] }, route: { weightedClusters: { clusters: [{ name: 'c1', weight: { value: 1 } }, { name: 'c2', weight: { value: 3 } }] } } },
    { name: 'r2', match: { safeRegex: { regex: '/c/[0-9]+' } }, route: { cluster: 'c3', retryPolicy: { retryOn: '5xx', numRetries: { value: 2 } } } },
  ]), vhost('fallback', ['*'], [])], 'rds_x');
}
type Edit = (o: any) => void;
const r = (i: number) => (o: any) => o.virtualHosts[0].routes[i];
const P = 'route configuration rds_x: ';
const INVALID: [string, Edit, string][] = [
  ['lookahead in a path regex', (o) => { r(2)(o).match.safeRegex.regex = '/c/(?=x)'; }, `${P}virtualHosts[0].routes[2].match.safeRegex.regex: lookahead and lookbehind assertions are not supported (RE2 has none)`],
  ['backreference in a header regex', (o) => { r(0)(o).match.headers[0] = { name: 'x', stringMatch: { safeRegex: { regex: '(a)\\1' } } }; }, `${P}virtualHosts[0].routes[0].match.headers[0].stringMatch.safeRegex.regex: backreference \\1 is not supported (RE2 has no backreferences)`],
  ['an invalid regex', (o) => { r(2)(o).match.safeRegex.regex = '/c/[0-9'; }, `${P}virtualHosts[0].routes[2].match.safeRegex.regex: missing ] at the end of a character class`],
  ['an empty regex', (o) => { r(2)(o).match.safeRegex.regex = ''; }, `${P}virtualHosts[0].routes[2].match.safeRegex.regex: is required`],
  ['the ungreedy flag', (o) => { r(2)(o).match.safeRegex.regex = '(?U)/c/.*'; }, `${P}virtualHosts[0].routes[2].match.safeRegex.regex: the U (ungreedy) flag is not supported by keymesh's proxy`],
  ['googleRe2.maxProgramSize', (o) => { r(2)(o).match.safeRegex.googleRe2 = { maxProgramSize: { value: 200 } }; }, `${P}virtualHosts[0].routes[2].match.safeRegex.googleRe2.maxProgramSize: is not supported by keymesh's proxy`],
  ['VHDS', (o) => { o.vhds = { configSource: { ads: {} } }; }, `${P}vhds: is not supported by keymesh's proxy`],
  ['route configuration header mutations', (o) => { o.requestHeadersToAdd = [{ header: { key: 'k', value: 'v' } }]; }, `${P}requestHeadersToAdd: is not supported by keymesh's proxy`],
  ['validateClusters', (o) => { o.validateClusters = { value: true }; }, `${P}validateClusters: true is not supported by keymesh's proxy (clusters are resolved per request)`],
  ['a virtual host CORS policy', (o) => { o.virtualHosts[0].cors = { allowMethods: 'GET' }; }, `${P}virtualHosts[0].cors: is not supported by keymesh's proxy`],
  ['requireTls', (o) => { o.virtualHosts[0].requireTls = 'ALL'; }, `${P}virtualHosts[0].requireTls: only NONE is supported by keymesh's proxy`],
  ['a virtual host without a name', (o) => { delete o.virtualHosts[0].name; }, `${P}virtualHosts[0].name: is required`],
  ['a virtual host without domains', (o) => { o.virtualHosts[0].domains = []; }, `${P}virtualHosts[0].domains: must list at least one domain`],
  ['a duplicate domain (case-insensitive)', (o) => { o.virtualHosts[1].domains = ['*', 'SVC.local']; }, `${P}virtualHosts[1].domains[1]: SVC.local is already a domain of virtualHosts[0] (domains must be unique in a route configuration)`],
  ['two catch-all virtual hosts', (o) => { o.virtualHosts[0].domains.push('*'); }, `${P}virtualHosts[1].domains[0]: * is already a domain of virtualHosts[0] (domains must be unique in a route configuration)`],
  ['a control character in a domain', (o) => { o.virtualHosts[0].domains[0] = 'a\nb'; }, `${P}virtualHosts[0].domains[0]: must not contain NUL, CR or LF`],
  ['a redirect', (o) => { r(0)(o).redirect = { pathRedirect: '/x' }; delete r(0)(o).route; }, `${P}virtualHosts[0].routes[0].redirect: is not supported by keymesh's proxy`],
  ['a direct response', (o) => { r(1)(o).directResponse = { status: 200 }; delete r(1)(o).route; }, `${P}virtualHosts[0].routes[1].directResponse: is not supported by keymesh's proxy`],
  ['two actions', (o) => { r(1)(o).directResponse = { status: 200 }; }, `${P}virtualHosts[0].routes[1]: sets route and directResponse; only one action may be set`],
  ['no action', (o) => { delete r(0)(o).route; }, `${P}virtualHosts[0].routes[0]: must have a route action`],
  ['route header mutations', (o) => { r(0)(o).requestHeadersToRemove = ['x']; }, `${P}virtualHosts[0].routes[0].requestHeadersToRemove: is not supported by keymesh's proxy`],
  ['per-filter config on a route', (o) => { r(0)(o).typedPerFilterConfig = { f: { '@type': 'x' } }; }, `${P}virtualHosts[0].routes[0].typedPerFilterConfig: is not supported by keymesh's proxy`],
  ['no match', (o) => { delete r(0)(o).match; }, `${P}virtualHosts[0].routes[0].match: is required`],
  ['no path specifier', (o) => { r(0)(o).match = { headers: [] }; }, `${P}virtualHosts[0].routes[0].match: must set one of prefix, path, safeRegex, pathSeparatedPrefix`],
  ['two path specifiers', (o) => { r(0)(o).match.path = '/a'; }, `${P}virtualHosts[0].routes[0].match: sets prefix and path; only one may be set`],
  ['a CONNECT matcher', (o) => { r(0)(o).match = { connectMatcher: {} }; }, `${P}virtualHosts[0].routes[0].match.connectMatcher: is not supported by keymesh's proxy`],
  ['a runtime fraction', (o) => { r(0)(o).match.runtimeFraction = { defaultValue: { numerator: 50 } }; }, `${P}virtualHosts[0].routes[0].match.runtimeFraction: is not supported by keymesh's proxy`],
  ['a TLS context match', (o) => { r(0)(o).match.tlsContext = { presented: { value: true } }; }, `${P}virtualHosts[0].routes[0].match.tlsContext: is not supported by keymesh's proxy`],
  ['a header matcher with two specifiers', (o) => { r(0)(o).match.headers[0].presentMatch = true; }, `${P}virtualHosts[0].routes[0].match.headers[0]: sets stringMatch and presentMatch; only one may be set`],
  ['a header matcher without a name', (o) => { r(0)(o).match.headers[0] = { stringMatch: { exact: '1' } }; }, `${P}virtualHosts[0].routes[0].match.headers[0].name: is required`],
  ['an empty string prefix', (o) => { r(0)(o).match.headers[0].stringMatch = { prefix: '' }; }, `${P}virtualHosts[0].routes[0].match.headers[0].stringMatch.prefix: must not be empty`],
  ['a string matcher with nothing to match', (o) => { r(0)(o).match.headers[0].stringMatch = { ignoreCase: true }; }, `${P}virtualHosts[0].routes[0].match.headers[0].stringMatch: must set one of exact, prefix, suffix, contains, safeRegex`],
  ['ignoreCase with a regex', (o) => { r(0)(o).match.headers[0].stringMatch = { safeRegex: { regex: 'a' }, ignoreCase: true }; }, `${P}virtualHosts[0].routes[0].match.headers[0].stringMatch.ignoreCase: has no effect with safeRegex (Envoy refuses it)`],
  ['a custom string matcher', (o) => { r(0)(o).match.headers[0].stringMatch = { custom: { name: 'x' } }; }, `${P}virtualHosts[0].routes[0].match.headers[0].stringMatch.custom: is not supported by keymesh's proxy`],
  ['a range bound that is not an integer', (o) => { r(0)(o).match.headers[0] = { name: 'x', rangeMatch: { start: '1.5', end: '3' } }; }, `${P}virtualHosts[0].routes[0].match.headers[0].rangeMatch.start: must be a 64-bit integer`],
  ['presentMatch: false on a query parameter', (o) => { r(1)(o).match.queryParameters[0].presentMatch = false; }, `${P}virtualHosts[0].routes[1].match.queryParameters[0].presentMatch: false is not supported by keymesh's proxy`],
  ['a query parameter without a name', (o) => { r(1)(o).match.queryParameters[0] = { presentMatch: true }; }, `${P}virtualHosts[0].routes[1].match.queryParameters[0].name: is required`],
  ['no cluster', (o) => { r(0)(o).route = { timeout: { seconds: '1' } }; }, `${P}virtualHosts[0].routes[0].route: must set cluster or weightedClusters`],
  ['a cluster header', (o) => { r(0)(o).route = { clusterHeader: 'x-cluster' }; }, `${P}virtualHosts[0].routes[0].route.clusterHeader: is not supported by keymesh's proxy`],
  ['weights that add up to 0', (o) => { r(1)(o).route.weightedClusters.clusters = [{ name: 'c1' }, { name: 'c2', weight: { value: 0 } }]; }, `${P}virtualHosts[0].routes[1].route.weightedClusters.clusters: the sum of the weights must be greater than 0`],
  ['a weighted cluster without a name', (o) => { delete r(1)(o).route.weightedClusters.clusters[1].name; }, `${P}virtualHosts[0].routes[1].route.weightedClusters.clusters[1].name: is required`],
  ['a wrong total weight', (o) => { r(1)(o).route.weightedClusters.totalWeight = { value: 100 }; }, `${P}virtualHosts[0].routes[1].route.weightedClusters.totalWeight: is 100 but the weights add up to 4`],
  ['per-cluster header mutations', (o) => { r(1)(o).route.weightedClusters.clusters[0].requestHeadersToAdd = [{ header: { key: 'k', value: 'v' } }]; }, `${P}virtualHosts[0].routes[1].route.weightedClusters.clusters[0].requestHeadersToAdd: is not supported by keymesh's proxy`],
  ['a hash policy', (o) => { r(0)(o).route.hashPolicy = [{ header: { headerName: 'x' } }]; }, `${P}virtualHosts[0].routes[0].route.hashPolicy: is not supported by keymesh's proxy`],
  ['websocket upgrades', (o) => { r(0)(o).route.upgradeConfigs = [{ upgradeType: 'websocket' }]; }, `${P}virtualHosts[0].routes[0].route.upgradeConfigs: is not supported by keymesh's proxy`],
  ['a high routing priority', (o) => { r(0)(o).route.priority = 'HIGH'; }, `${P}virtualHosts[0].routes[0].route.priority: only DEFAULT is supported by keymesh's proxy`],
  ['a negative timeout', (o) => { r(0)(o).route.timeout = { seconds: '-1' }; }, `${P}virtualHosts[0].routes[0].route.timeout: must not be negative`],
  ['prefixRewrite with regexRewrite', (o) => { r(0)(o).route.prefixRewrite = '/'; r(0)(o).route.regexRewrite = { pattern: { regex: 'a' }, substitution: 'b' }; }, `${P}virtualHosts[0].routes[0].route: sets prefixRewrite and regexRewrite; only one may be set`],
  ['a substitution naming a missing group', (o) => { r(0)(o).route.regexRewrite = { pattern: { regex: '^/(a)$' }, substitution: '/\\2' }; }, `${P}virtualHosts[0].routes[0].route.regexRewrite.substitution: \\2 refers to a group the pattern does not have (it has 1)`],
  ['a substitution with a bad escape', (o) => { r(0)(o).route.regexRewrite = { pattern: { regex: 'a' }, substitution: '\\n' }; }, `${P}virtualHosts[0].routes[0].route.regexRewrite.substitution: invalid escape \\n (only \\0..\\9 and \\\\ are allowed)`],
  ['a host rewrite from a header', (o) => { r(0)(o).route.hostRewriteHeader = 'x-host'; }, `${P}virtualHosts[0].routes[0].route.hostRewriteHeader: is not supported by keymesh's proxy`],
  ['two host rewrites', (o) => { r(0)(o).route.hostRewriteLiteral = 'a'; r(0)(o).route.autoHostRewrite = { value: true }; }, `${P}virtualHosts[0].routes[0].route: sets hostRewriteLiteral and autoHostRewrite; only one may be set`],
  ['an unknown retry condition', (o) => { r(2)(o).route.retryPolicy.retryOn = '5xx,server-error'; }, `${P}virtualHosts[0].routes[2].route.retryPolicy.retryOn: server-error is not a retry condition keymesh's proxy knows`],
  ['retry host predicates', (o) => { r(2)(o).route.retryPolicy.retryHostPredicate = [{ name: 'envoy.retry_host_predicates.previous_hosts' }]; }, `${P}virtualHosts[0].routes[2].route.retryPolicy.retryHostPredicate: is not supported by keymesh's proxy`],
  ['a back-off cap below its base', (o) => { r(2)(o).route.retryPolicy.retryBackOff = { baseInterval: { seconds: '1' }, maxInterval: { nanos: 500000000 } }; }, `${P}virtualHosts[0].routes[2].route.retryPolicy.retryBackOff.maxInterval: must not be less than baseInterval`],
  ['a back-off without a base', (o) => { r(2)(o).route.retryPolicy.retryBackOff = { maxInterval: { seconds: '1' } }; }, `${P}virtualHosts[0].routes[2].route.retryPolicy.retryBackOff.baseInterval: is required`],
  ['a hedge policy', (o) => { o.virtualHosts[0].hedgePolicy = { initialRequests: { value: 2 } }; }, `${P}virtualHosts[0].hedgePolicy: is not supported by keymesh's proxy`],
  ['a request mirror', (o) => { r(0)(o).route.requestMirrorPolicies = [{ cluster: 'm' }]; }, `${P}virtualHosts[0].routes[0].route.requestMirrorPolicies: is not supported by keymesh's proxy`],
];

for (const [what, edit, message] of INVALID) {
  test(`invalid: ${what}`, () => {
    const o = base();
    edit(o);
    assert.throws(() => compileRouteConfiguration(o), (e: unknown) => {
      assert.ok(e instanceof ProxyConfigError, String(e));
      assert.equal(e.code, 'KM_ERR_PROXY_CONFIG');
      if (message.endsWith('knows')) assert.ok(e.message.startsWith(message), e.message);
      else assert.equal(e.message, message);
      return true;
    });
  });
}

test('the base of the invalid cases is valid, and decoded from the wire too', () => {
  const t = compileRouteConfiguration(base());
  assert.equal(t.virtualHosts[0]!.routes.length, 3);
  compileRouteConfiguration(overXds(base()));
});

test('an unnamed route configuration is named (unnamed) in messages', () => {
  assert.throws(() => compileRouteConfiguration({ virtualHosts: [{ name: 'v', domains: ['*'], cors: {} }] }), { message: 'route configuration (unnamed): virtualHosts[0].cors: is not supported by keymesh\'s proxy' });
});


// selectRoute: Envoy's virtual host order, route matching (path, headers, query parameters, gRPC), weighted
// clusters with an injected random number, path and host rewrites; and the seed walkthroughs' configurations.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Json } from '../resources/values.ts';
import { compileRouteConfiguration } from './compile.ts';
import { type RouteSelection, selectRoute, type Selection } from './select.ts';
import { rc, request, to, vhost } from './test-fixtures.ts';

const golden = (name: string) => JSON.parse(readFileSync(new URL(`../../translate/golden/${name}`, import.meta.url), 'utf8')) as { routeConfigurations: Json[] };
const routeConfig = (file: string, name: string) => compileRouteConfiguration(golden(file).routeConfigurations.find((r) => r.name === name)!);

function routed(s: Selection): RouteSelection {
  assert.equal(s.kind, 'route', `expected a route, got ${s.kind}`);
  return s as RouteSelection;
}
/** The cluster picked, or the kind of miss. */
function outcome(s: Selection): string {
  return s.kind === 'route' ? s.cluster : s.kind;
}
/** A random source that returns the given values in turn. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length]!;
}

// 1. The seeds.

test('seed 003: front\'s egress sends color_header red/green/blue to that color\'s cluster, with the default retries', () => {
  const t = routeConfig('seed003-front.json', 'rds_egress_http_15001');
  const color = 'color.howto-k8s-mtls-sds-based.svc.cluster.local';
  for (const c of ['red', 'green', 'blue']) {
    for (const authority of [color, `${color}:8080`, color.toUpperCase()]) {
      const s = routed(selectRoute(t, request(authority, '/', { color_header: c })));
      assert.equal(s.cluster, `cds_egress_howto-k8s-mtls-sds-based_${c}_http_8080`);
      assert.equal(s.route.name, `color/color-${c}`);
      assert.equal(s.path, '/');
      assert.equal(s.host, undefined);
      assert.equal(s.route.action.timeoutMs, 15_000);
      assert.deepEqual(s.route.action.retryPolicy?.retryOn, ['connect-failure', 'refused-stream', 'reset', 'retriable-status-codes']);
      assert.deepEqual([s.route.action.retryPolicy?.numRetries, s.route.action.retryPolicy?.retriableStatusCodes], [2, [503]]);
    }
  }
  assert.equal(outcome(selectRoute(t, request(color, '/', { color_header: 'purple' }))), 'no-route');
  assert.equal(outcome(selectRoute(t, request(color, '/'))), 'no-route');
  assert.equal(outcome(selectRoute(t, request(`${color}:9090`, '/', { color_header: 'red' }))), 'no-virtual-host', 'another port is another host');
  // Plaintext HTTP to AWS APIs under DROP_ALL.
  assert.equal(outcome(selectRoute(t, request('sts.amazonaws.com'))), 'cds_egress_howto-k8s-mtls-sds-based_amazonaws');
  assert.equal(outcome(selectRoute(t, request('sts.amazonaws.com:80'))), 'cds_egress_howto-k8s-mtls-sds-based_amazonaws');
  assert.equal(outcome(selectRoute(t, request('sts.amazonaws.com:8080'))), 'no-virtual-host');
  assert.equal(outcome(selectRoute(t, request('example.com'))), 'no-virtual-host');
  // front's own ingress: anything to the local application.
  const ingress = routeConfig('seed003-front.json', 'rds_ingress_http_8080');
  assert.equal(outcome(selectRoute(ingress, request('whatever:8080', '/x?y'))), 'cds_ingress_howto-k8s-mtls-sds-based_front_http_8080');
});

test('seed 004: the gateway sends any host and path to colorteller, rewriting the Host to the service name', () => {
  for (const step of ['1-strict-tls', '2-client-policy-bad-san', '3-client-policy-good-san', '4-require-client-cert', '5-client-cert']) {
    const t = routeConfig(`seed004-${step}-gateway.json`, 'rds_ingress_http_9080');
    for (const [authority, path] of [['gateway.appmesh-mtls.local', '/'], ['abc.elb.amazonaws.com:9080', '/color?x=1'], [undefined, '/']] as const) {
      const s = routed(selectRoute(t, request(authority, path)));
      assert.equal(s.cluster, 'cds_egress_ColorApp-MutualTLS_colorteller-vn_http_9080', step);
      assert.equal(s.host, 'colorteller.appmesh-mtls.local');
      assert.equal(s.path, path, 'prefix / is not rewritten');
      assert.equal(s.pathRewritten, false);
    }
  }
});

// 2. Virtual hosts.

const DOMAINS = rc([
  vhost('exact', ['api.foo.com', 'API2.Foo.com:8080'], [to('exact')]),
  vhost('suffix-long', ['*-bar.foo.com'], [to('suffix-long')]),
  vhost('suffix', ['*.foo.com'], [to('suffix')]),
  vhost('prefix', ['api.*'], [to('prefix')]),
  vhost('prefix-long', ['api.foo.*'], [to('prefix-long')]),
  vhost('default', ['*'], [to('default')]),
  vhost('literal-star', ['a*b.com'], [to('literal-star')]),
]);

test('virtual hosts: exact, then the longest suffix wildcard, then the longest prefix wildcard, then *', () => {
  const t = compileRouteConfiguration(DOMAINS);
  const cases: [string | undefined, string][] = [
    ['api.foo.com', 'exact'],
    ['API.FOO.COM', 'exact'],
    ['api2.foo.com:8080', 'exact'],
    // The port is part of the host: no exact domain, so the prefix wildcard `api.foo.` takes it.
    ['api.foo.com:80', 'prefix-long'],
    ['x-bar.foo.com', 'suffix-long'],
    ['x.foo.com', 'suffix'],
    // A suffix wildcard beats a prefix wildcard.
    ['api.x.foo.com', 'suffix'],
    // The `*` must match at least one character.
    ['-bar.foo.com', 'suffix'],
    ['.foo.com', 'default'],
    ['api.foo.org', 'prefix-long'],
    ['api.other.org', 'prefix'],
    ['api.', 'default'],
    ['other.org', 'default'],
    // Only a leading or trailing * is a wildcard.
    ['a*b.com', 'literal-star'],
    ['axb.com', 'default'],
    // No Host, and other hosts than `*`: no virtual host (Envoy).
    [undefined, 'no-virtual-host'],
  ];
  for (const [authority, expected] of cases) assert.equal(outcome(selectRoute(t, request(authority))), expected, String(authority));
});

test('virtual hosts: without `*` an unknown host finds none; a lone `*` takes requests without a Host', () => {
  const noDefault = compileRouteConfiguration(rc([vhost('a', ['a.com'], [to('a')])]));
  assert.equal(outcome(selectRoute(noDefault, request('b.com'))), 'no-virtual-host');
  assert.equal(outcome(selectRoute(noDefault, request(undefined))), 'no-virtual-host');
  const onlyDefault = compileRouteConfiguration(rc([vhost('d', ['*'], [to('d')])]));
  assert.equal(outcome(selectRoute(onlyDefault, request(undefined))), 'd');
  const empty = compileRouteConfiguration({ name: 'empty' });
  assert.equal(outcome(selectRoute(empty, request('a.com'))), 'no-virtual-host');
});

test('virtual hosts: ignorePortInHostMatching drops the port (not an IPv6 address\'s colons)', () => {
  const t = compileRouteConfiguration(rc([vhost('a', ['svc.local', '[::1]'], [to('a')])], 'r', { ignorePortInHostMatching: true }));
  assert.equal(outcome(selectRoute(t, request('svc.local:9999'))), 'a');
  assert.equal(outcome(selectRoute(t, request('[::1]:80'))), 'a');
  assert.equal(outcome(selectRoute(t, request('[::1]'))), 'a');
  const keep = compileRouteConfiguration(rc([vhost('a', ['svc.local'], [to('a')])]));
  assert.equal(outcome(selectRoute(keep, request('svc.local:9999'))), 'no-virtual-host');
});

// 3. Routes.

function firstMatch(routes: Json[], req: ReturnType<typeof request>): string {
  return outcome(selectRoute(compileRouteConfiguration(rc([vhost('v', ['*'], routes)])), req));
}

test('path matching: prefix, exact path, regex and path-separated prefix, without the query string; case sensitivity', () => {
  const routes = [
    to('exact', { path: '/x' }),
    to('exact-ci', { path: '/Y', caseSensitive: { value: false } }),
    to('regex', { safeRegex: { regex: '/item/[0-9]+' } }),
    to('separated', { pathSeparatedPrefix: '/api' }),
    to('prefix-ci', { prefix: '/Up/', caseSensitive: { value: false } }),
    to('prefix', { prefix: '/foo' }),
    to('query-in-prefix', { prefix: '/q?a' }),
  ];
  const cases: [string, string][] = [
    ['/x', 'exact'], ['/x?y=1', 'exact'], ['/x#frag', 'exact'], ['/x/', 'no-route'], ['/X', 'no-route'],
    ['/y', 'exact-ci'], ['/Y?z', 'exact-ci'],
    ['/item/12', 'regex'], ['/item/12?x=1', 'regex'], ['/item/12/x', 'no-route'], ['/item/', 'no-route'],
    ['/api', 'separated'], ['/api/', 'separated'], ['/api/v1', 'separated'], ['/api?x', 'separated'], ['/apix', 'no-route'],
    ['/up/a', 'prefix-ci'], ['/UP/a', 'prefix-ci'], ['/uP/', 'prefix-ci'], ['/up', 'no-route'],
    ['/foo', 'prefix'], ['/foobar', 'prefix'], ['/foo/x?y', 'prefix'], ['/fo', 'no-route'], ['/fo?o', 'no-route'],
    // The query string is not part of the path a prefix is matched against.
    ['/q?a=1', 'no-route'],
  ];
  for (const [path, expected] of cases) assert.equal(firstMatch(routes, request('h', path)), expected, path);
});

test('routes are tried in order: the first that matches wins', () => {
  const routes = [to('specific', { prefix: '/a/b' }), to('general', { prefix: '/a' }), to('shadowed', { prefix: '/a/b/c' })];
  assert.equal(firstMatch(routes, request('h', '/a/b/c')), 'specific');
  assert.equal(firstMatch(routes, request('h', '/a/c')), 'general');
});

/** Whether a route with one header matcher takes the request. */
function headerMatch(matcher: Json, headers: Record<string, string | string[]>, req: Partial<{ authority: string; path: string; method: string; scheme: string }> = {}): boolean {
  const t = compileRouteConfiguration(rc([vhost('v', ['*'], [to('hit', { prefix: '/', headers: [matcher] })])]));
  return selectRoute(t, request(req.authority ?? 'h', req.path ?? '/', headers, req.method ?? 'GET', req.scheme)).kind === 'route';
}

test('header matchers: string matches (exact, prefix, suffix, contains, regex; ignoreCase), present, absent', () => {
  const cases: [Json, Record<string, string | string[]>, boolean][] = [
    [{ name: 'x', stringMatch: { exact: 'red' } }, { x: 'red' }, true],
    [{ name: 'x', stringMatch: { exact: 'red' } }, { x: 'Red' }, false],
    [{ name: 'x', stringMatch: { exact: 'red' } }, {}, false],
    [{ name: 'x', stringMatch: { exact: 'red', ignoreCase: true } }, { x: 'RED' }, true],
    [{ name: 'x', stringMatch: { exact: '' } }, { x: '' }, true],
    [{ name: 'x', stringMatch: { exact: '' } }, { x: 'a' }, false],
    [{ name: 'x', stringMatch: { prefix: 'ab' } }, { x: 'abc' }, true],
    [{ name: 'x', stringMatch: { prefix: 'ab' } }, { x: 'cab' }, false],
    [{ name: 'x', stringMatch: { prefix: 'AB', ignoreCase: true } }, { x: 'abc' }, true],
    [{ name: 'x', stringMatch: { suffix: 'yz' } }, { x: 'xyz' }, true],
    [{ name: 'x', stringMatch: { suffix: 'yz' } }, { x: 'y' }, false],
    [{ name: 'x', stringMatch: { suffix: 'YZ', ignoreCase: true } }, { x: 'xyz' }, true],
    [{ name: 'x', stringMatch: { contains: 'mm' } }, { x: 'ammo' }, true],
    [{ name: 'x', stringMatch: { contains: 'MM', ignoreCase: true } }, { x: 'ammo' }, true],
    [{ name: 'x', stringMatch: { contains: 'mm' } }, { x: 'amo' }, false],
    // A regex has to match the whole value.
    [{ name: 'x', stringMatch: { safeRegex: { regex: '[0-9]+' } } }, { x: '123' }, true],
    [{ name: 'x', stringMatch: { safeRegex: { regex: '[0-9]+' } } }, { x: '12a' }, false],
    [{ name: 'x', stringMatch: { safeRegex: { regex: 'a|b' } } }, { x: 'ab' }, false],
    [{ name: 'x', presentMatch: true }, { x: '' }, true],
    [{ name: 'x', presentMatch: true }, {}, false],
    [{ name: 'x' }, { x: 'anything' }, true],
    [{ name: 'x' }, {}, false],
    [{ name: 'x', presentMatch: false }, {}, true],
    [{ name: 'x', presentMatch: false }, { x: 'v' }, false],
    // Names are case-insensitive; repeated headers are matched joined with ','.
    [{ name: 'X-Color', stringMatch: { exact: 'red' } }, { 'x-color': 'red' }, true],
    [{ name: 'x', stringMatch: { exact: 'a,b' } }, { x: ['a', 'b'] }, true],
    [{ name: 'x', stringMatch: { exact: 'a' } }, { x: ['a'] }, true],
    [{ name: 'x', presentMatch: true }, { x: [] }, false],
    // Deprecated forms Envoy still reads.
    [{ name: 'x', exactMatch: 'v' }, { x: 'v' }, true],
    [{ name: 'x', exactMatch: '' }, { x: 'anything' }, true],
    [{ name: 'x', prefixMatch: 'v' }, { x: 'vw' }, true],
    [{ name: 'x', suffixMatch: 'w' }, { x: 'vw' }, true],
    [{ name: 'x', containsMatch: 'b' }, { x: 'abc' }, true],
    [{ name: 'x', safeRegexMatch: { regex: 'v+' } }, { x: 'vvv' }, true],
  ];
  for (const [matcher, headers, expected] of cases) assert.equal(headerMatch(matcher, headers), expected, `${JSON.stringify(matcher)} on ${JSON.stringify(headers)}`);
});

test('header matchers: invertMatch inverts a value test but a missing header still does not match (unless treated as empty)', () => {
  const exact = { name: 'x', stringMatch: { exact: 'red' }, invertMatch: true };
  assert.equal(headerMatch(exact, { x: 'blue' }), true);
  assert.equal(headerMatch(exact, { x: 'red' }), false);
  assert.equal(headerMatch(exact, {}), false);
  assert.equal(headerMatch({ ...exact, treatMissingHeaderAsEmpty: true }, {}), true);
  assert.equal(headerMatch({ name: 'x', stringMatch: { safeRegex: { regex: '^$' } }, treatMissingHeaderAsEmpty: true }, {}), true);
  assert.equal(headerMatch({ name: 'x', presentMatch: true, invertMatch: true }, {}), true);
  assert.equal(headerMatch({ name: 'x', presentMatch: true, invertMatch: true }, { x: '1' }), false);
  assert.equal(headerMatch({ name: 'x', invertMatch: true }, {}), true, 'no specifier is present_match');
  assert.equal(headerMatch({ name: 'x', presentMatch: false, invertMatch: true }, { x: '1' }), true);
});

test('header matchers: rangeMatch is [start, end) over the whole value as a 64-bit integer', () => {
  const range = { name: 'v', rangeMatch: { start: '1', end: '5' } };
  const cases: [string, boolean][] = [
    ['1', true], ['4', true], ['5', false], ['0', false], ['-1', false], [' 3 ', true], ['+3', true], ['03', true],
    ['3.0', false], ['3x', false], ['x', false], ['', false], ['- 3', false],
  ];
  for (const [value, expected] of cases) assert.equal(headerMatch(range, { v: value }), expected, JSON.stringify(value));
  assert.equal(headerMatch(range, {}), false);
  const negative = { name: 'v', rangeMatch: { start: '-10', end: '0' } };
  assert.equal(headerMatch(negative, { v: '-1' }), true);
  assert.equal(headerMatch(negative, { v: '0' }), false);
  const big = { name: 'v', rangeMatch: { start: '9007199254740993', end: '9223372036854775807' } };
  assert.equal(headerMatch(big, { v: '9007199254740993' }), true, 'beyond 2^53, exactly');
  assert.equal(headerMatch(big, { v: '9007199254740992' }), false);
  assert.equal(headerMatch(big, { v: '9223372036854775808' }), false, 'out of int64 range');
  const inverted = { ...range, invertMatch: true };
  assert.equal(headerMatch(inverted, { v: '7' }), true);
  assert.equal(headerMatch(inverted, { v: 'x' }), true);
  assert.equal(headerMatch(inverted, { v: '2' }), false);
  assert.equal(headerMatch(inverted, {}), false);
  assert.equal(headerMatch({ name: 'v', rangeMatch: { start: 1, end: 5 } }, { v: '2' }), true, 'numbers as well as strings');
});

test('header matchers: pseudo-headers are the request\'s method, authority, path and scheme; `host` finds nothing', () => {
  assert.equal(headerMatch({ name: ':method', stringMatch: { exact: 'POST' } }, {}, { method: 'POST' }), true);
  assert.equal(headerMatch({ name: ':method', stringMatch: { exact: 'POST' } }, {}, { method: 'GET' }), false);
  assert.equal(headerMatch({ name: ':authority', stringMatch: { suffix: '.example.com' } }, {}, { authority: 'www.example.com' }), true);
  assert.equal(headerMatch({ name: ':authority', stringMatch: { suffix: '.example.com' } }, {}, { authority: 'www.example.com:8443' }), false);
  assert.equal(headerMatch({ name: ':path', stringMatch: { exact: '/a?b=1' } }, {}, { path: '/a?b=1' }), true);
  assert.equal(headerMatch({ name: ':scheme', stringMatch: { exact: 'https' } }, {}, { scheme: 'https' }), true);
  assert.equal(headerMatch({ name: ':scheme', stringMatch: { exact: 'https' } }, {}, {}), false);
  assert.equal(headerMatch({ name: 'host', presentMatch: true }, { host: 'h' }, { authority: 'h' }), false);
});

test('query parameters: the first value of the raw query string; present; all must match', () => {
  const routes = (q: Json[]) => [to('hit', { prefix: '/', queryParameters: q })];
  const exact = [{ name: 'q', stringMatch: { exact: '1' } }];
  const cases: [Json[], string, boolean][] = [
    [exact, '/p?q=1', true],
    [exact, '/p?a=2&q=1', true],
    [exact, '/p?q=2', false],
    [exact, '/p?q=2&q=1', false],
    [exact, '/p?q', false],
    [exact, '/p', false],
    [exact, '/p?Q=1', false],
    [[{ name: 'q', stringMatch: { exact: 'a b' } }], '/p?q=a%20b', false],
    [[{ name: 'q', stringMatch: { exact: 'a%20b' } }], '/p?q=a%20b', true],
    [[{ name: 'q', stringMatch: { prefix: 'v', ignoreCase: true } }], '/p?q=V2', true],
    [[{ name: 'q', presentMatch: true }], '/p?q', true],
    [[{ name: 'q', presentMatch: true }], '/p?q=', true],
    [[{ name: 'q', presentMatch: true }], '/p?qq=1', false],
    [[{ name: 'q' }], '/p?x&q=', true],
    [[{ name: 'a', presentMatch: true }, { name: 'b', stringMatch: { exact: '2' } }], '/p?b=2&a', true],
    [[{ name: 'a', presentMatch: true }, { name: 'b', stringMatch: { exact: '2' } }], '/p?b=2', false],
  ];
  for (const [q, path, expected] of cases) assert.equal(firstMatch(routes(q), request('h', path)) === 'hit', expected, `${JSON.stringify(q)} ${path}`);
});

test('gRPC routes only take requests whose content-type is application/grpc or application/grpc+...', () => {
  const routes = [to('grpc', { prefix: '/pkg.Svc/', grpc: {} }), to('other', { prefix: '/' })];
  const cases: [Record<string, string>, string][] = [
    [{ 'content-type': 'application/grpc' }, 'grpc'],
    [{ 'content-type': 'application/grpc+proto' }, 'grpc'],
    [{ 'content-type': 'application/grpc-web' }, 'other'],
    [{ 'content-type': 'application/json' }, 'other'],
    [{}, 'other'],
  ];
  for (const [headers, expected] of cases) assert.equal(firstMatch(routes, request('h', '/pkg.Svc/Get', headers, 'POST')), expected, JSON.stringify(headers));
});

// 4. Clusters and rewrites.

test('weighted clusters: a deterministic random number splits exactly by weight; weight 0 is never picked', () => {
  const t = compileRouteConfiguration(rc([vhost('v', ['*'], [{ match: { prefix: '/' }, route: { weightedClusters: { clusters: [
    { name: 'a', weight: { value: 1 } }, { name: 'never', weight: { value: 0 } }, { name: 'b', weight: { value: 2 } }, { name: 'c', weight: { value: 7 } },
  ] } } }])]));
  const counts = new Map<string, number>();
  for (let k = 0; k < 1000; k++) {
    const c = routed(selectRoute(t, request('h'), () => k / 1000)).cluster;
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(counts), { a: 100, b: 200, c: 700 });
  // Interval edges: [0,1) a, [1,3) b, [3,10) c, with value = floor(random * 10).
  assert.deepEqual([0, 0.0999, 0.1, 0.2999, 0.3, 0.9999].map((x) => routed(selectRoute(t, request('h'), () => x)).cluster), ['a', 'a', 'b', 'b', 'c', 'c']);
  assert.equal(routed(selectRoute(t, request('h'), () => 1)).cluster, 'c', 'a source that returns 1 still picks');
  const rand = sequence(0.05, 0.15, 0.95);
  assert.deepEqual([1, 2, 3].map(() => routed(selectRoute(t, request('h'), rand)).cluster), ['a', 'b', 'c']);
});

test('host rewrites: a literal, a picked weighted cluster\'s own literal first, auto (left to the forwarder)', () => {
  const t = compileRouteConfiguration(rc([vhost('v', ['*'], [
    { match: { prefix: '/literal' }, route: { cluster: 'c', hostRewriteLiteral: 'svc.local' } },
    { match: { prefix: '/weighted' }, route: { hostRewriteLiteral: 'route.local', weightedClusters: { clusters: [
      { name: 'own', weight: { value: 1 }, hostRewriteLiteral: 'own.local' }, { name: 'inherits', weight: { value: 1 } },
    ] } } },
    { match: { prefix: '/auto' }, route: { cluster: 'c', autoHostRewrite: { value: true } } },
    { match: { prefix: '/' }, route: { cluster: 'c' } },
  ])]));
  assert.deepEqual(pick(selectRoute(t, request('h', '/literal'))), ['c', 'svc.local', false]);
  assert.deepEqual(pick(selectRoute(t, request('h', '/weighted'), () => 0)), ['own', 'own.local', false]);
  assert.deepEqual(pick(selectRoute(t, request('h', '/weighted'), () => 0.5)), ['inherits', 'route.local', false]);
  assert.deepEqual(pick(selectRoute(t, request('h', '/auto'))), ['c', undefined, true]);
  assert.deepEqual(pick(selectRoute(t, request('h', '/'))), ['c', undefined, false]);
  function pick(s: Selection) {
    const r = routed(s);
    return [r.cluster, r.host, r.autoHostRewrite];
  }
});

test('prefixRewrite replaces the matched prefix or path (a regex route\'s whole path) and keeps the rest and the query', () => {
  const t = compileRouteConfiguration(rc([vhost('v', ['*'], [
    { match: { prefix: '/v1/' }, route: { cluster: 'c', prefixRewrite: '/api/' } },
    { match: { prefix: '/CI/', caseSensitive: { value: false } }, route: { cluster: 'c', prefixRewrite: '/ci/' } },
    { match: { path: '/old' }, route: { cluster: 'c', prefixRewrite: '/new' } },
    { match: { safeRegex: { regex: '/re/[a-z]+' } }, route: { cluster: 'c', prefixRewrite: '/whole' } },
    { match: { prefix: '/chapter' }, route: { cluster: 'c', prefixRewrite: '/' } },
    { match: { pathSeparatedPrefix: '/sep' }, route: { cluster: 'c', prefixRewrite: '/s' } },
  ])]));
  const cases: [string, string][] = [
    ['/v1/users?x=1', '/api/users?x=1'],
    ['/v1/', '/api/'],
    ['/Ci/a', '/ci/a'],
    ['/old?x', '/new?x'],
    ['/re/abc?q=1', '/whole?q=1'],
    // Envoy replaces exactly the prefix: without a trailing slash in it, the path keeps its own.
    ['/chapter/1', '//1'],
    ['/chapters', '/s'],
    ['/sep/x', '/s/x'],
  ];
  for (const [path, expected] of cases) {
    const s = routed(selectRoute(t, request('h', path)));
    assert.equal(s.path, expected, path);
    assert.equal(s.pathRewritten, true);
  }
});

test('regexRewrite: every match in the path replaced, RE2 style (\\N groups, \\\\), query string kept', () => {
  const route = (regex: string, substitution: string) => compileRouteConfiguration(rc([vhost('v', ['*'], [{ match: { prefix: '/' }, route: { cluster: 'c', regexRewrite: { pattern: { regex }, substitution } } }])]));
  const rewrite = (regex: string, substitution: string, path: string) => routed(selectRoute(route(regex, substitution), request('h', path))).path;
  // The examples of Envoy's documentation.
  assert.equal(rewrite('^/service/([^/]+)(/.*)$', '\\2/instance/\\1', '/service/foo/v1/api'), '/v1/api/instance/foo');
  assert.equal(rewrite('one', 'two', '/xxx/one/yyy/one/zzz'), '/xxx/two/yyy/two/zzz');
  assert.equal(rewrite('^(.*?)one(.*)$', '\\1two\\2', '/xxx/one/yyy/one/zzz'), '/xxx/two/yyy/one/zzz');
  assert.equal(rewrite('(?i)/aaa/XXX/bbb', '/aaa/yyy/bbb', '/aaa/XxX/bbb'), '/aaa/yyy/bbb');
  // App Mesh's exact path rewrite, with the query string kept.
  assert.equal(rewrite('^.*$', '/new', '/old/path?x=1'), '/new?x=1');
  assert.equal(rewrite('/', '\\\\', '/a/b'), '\\a\\b');
  assert.equal(rewrite('x', '[\\0]', '/axbx'), '/a[x]b[x]');
  assert.equal(rewrite('z', 'y', '/abc'), '/abc', 'no match, no change');
  // An empty match right after a match is skipped (RE2::GlobalReplace), unlike JavaScript's replace.
  assert.equal(rewrite('b*', '-', '/abc'), '-/-a-c-');
});

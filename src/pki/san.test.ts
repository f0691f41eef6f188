// Which SAN values keymesh accepts: host names (with a leftmost wildcard) and URIs, SPIFFE IDs per spec.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dnsNameProblem, uriProblem } from './san.ts';

test('DNS names', () => {
  for (const ok of ['colorteller.appmesh-mtls.local', 'a', 'x-1.y', '*.appmesh-mtls.local', 'A.B.C', `${'a'.repeat(63)}.com`]) {
    assert.equal(dnsNameProblem(ok), null, ok);
  }
  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['a..b', /empty label/],
    ['trailing.', /empty label/],
    ['-lead.example', /not a valid host name label/],
    ['under_score.example', /not a valid host name label/],
    ['a.*.example', /wildcard is allowed only as the whole leftmost label/],
    ['f*o.example', /wildcard/],
    [`${'a'.repeat(64)}.com`, /at most 63/],
    [`${'a.'.repeat(127)}ab`, /longer than 253/],
    ['café.example', /not a valid host name label/],
  ];
  for (const [name, problem] of bad) assert.match(dnsNameProblem(name) ?? '', problem, name);
});

test('URIs and SPIFFE IDs', () => {
  for (const ok of ['spiffe://example.org', 'spiffe://example.org/ns/default/sa/web', 'spiffe://td_1.example-2/a.b/c_d', 'https://example.org/x?y=z', 'urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66']) {
    assert.equal(uriProblem(ok), null, ok);
  }
  const bad: [string, RegExp][] = [
    ['no-scheme', /no scheme/],
    ['spiffe://example.org/with space', /printable ASCII/],
    ['SPIFFE://example.org/a', /lower case/],
    ['spiffe://Example.org/a', /trust domain "Example\.org"/],
    ['spiffe://example.org:8080/a', /trust domain "example\.org:8080"/],
    ['spiffe://example.org/', /path segment ""/],
    ['spiffe://example.org/a//b', /path segment ""/],
    ['spiffe://example.org/a/../b', /path segment "\.\."/],
    ['spiffe://example.org/a?x=1', /path segment "a\?x=1"/],
    ['spiffe://example.org/a#frag', /path segment "a#frag"/],
  ];
  for (const [uri, problem] of bad) assert.match(uriProblem(uri) ?? '', problem, uri);
});

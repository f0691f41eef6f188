// keymesh's SPIFFE naming: every rule here decides whose identity a certificate states.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BadRequestError } from '../errors/index.ts';
import { checkTrustDomain, defaultTrustDomain, describeIdentity, parseSpiffeId, spiffeIdFor, trustDomainProblem } from './spiffe.ts';

test('a mesh\'s default trust domain: its name in lower case, other characters replaced by "-"', () => {
  assert.equal(defaultTrustDomain('shop'), 'shop');
  assert.equal(defaultTrustDomain('Shop_Prod.EU'), 'shop_prod.eu');
  assert.equal(defaultTrustDomain('My Mesh!'), 'my-mesh-');
  assert.equal(defaultTrustDomain('café'), 'caf-');
  assert.equal(defaultTrustDomain('x'.repeat(300)).length, 255);
  for (const mesh of ['Shop_Prod.EU', 'My Mesh!', 'a:b/c', 'x'.repeat(300)]) assert.equal(trustDomainProblem(defaultTrustDomain(mesh)), null, mesh);
});

test('trust domains: lower-case letters, digits, ".", "-", "_"; at most 255', () => {
  assert.equal(checkTrustDomain('example.org'), 'example.org');
  for (const [td, problem] of [
    ['', /cannot be empty/],
    ['Example.org', /may hold only lower-case letters/],
    ['a/b', /may hold only/],
    ['a:8080', /may hold only/],
    ['x'.repeat(256), /at most 255/],
  ] as const) {
    assert.throws(() => checkTrustDomain(td), (e: unknown) => e instanceof BadRequestError && e.code === 'KM_ERR_TRUST_DOMAIN' && problem.test(e.message));
  }
});

test('SPIFFE IDs: one path segment for a node, virtualGateway/<name> for a gateway, and back', () => {
  assert.equal(spiffeIdFor('shop', { kind: 'virtualNode', name: 'web' }), 'spiffe://shop/web');
  assert.equal(spiffeIdFor('shop', { kind: 'virtualGateway', name: 'ingress' }), 'spiffe://shop/virtualGateway/ingress');
  assert.deepEqual(parseSpiffeId('spiffe://shop/web'), { trustDomain: 'shop', kind: 'virtualNode', name: 'web' });
  assert.deepEqual(parseSpiffeId('spiffe://shop/virtualGateway/ingress'), { trustDomain: 'shop', kind: 'virtualGateway', name: 'ingress' });
  // A node named "virtualGateway" cannot be confused with a gateway: gateway IDs have two segments.
  assert.deepEqual(parseSpiffeId(spiffeIdFor('shop', { kind: 'virtualNode', name: 'virtualGateway' })), { trustDomain: 'shop', kind: 'virtualNode', name: 'virtualGateway' });
  for (const name of ['web-1', 'Web_2', 'a.b']) {
    for (const kind of ['virtualNode', 'virtualGateway'] as const) assert.deepEqual(parseSpiffeId(spiffeIdFor('td', { kind, name })), { trustDomain: 'td', kind, name });
  }
});

test('names that cannot be a SPIFFE path segment are refused, and say how to fix it', () => {
  for (const name of ['a/b', '', '.', '..', 'with space', 'ü']) {
    assert.throws(() => spiffeIdFor('shop', { kind: 'virtualNode', name }), (e: unknown) =>
      e instanceof BadRequestError && e.code === 'KM_ERR_SPIFFE_NAME' && e.message.includes(`Virtual node name "${name}" cannot be part of a SPIFFE ID`) && /Give the virtual node such a name/.test(e.message));
  }
  assert.throws(() => spiffeIdFor('shop', { kind: 'mesh' as never, name: 'x' }), /Unknown identity kind "mesh"/);
});

test('anything else is not a keymesh SPIFFE ID', () => {
  for (const uri of ['spiffe://shop', 'spiffe://shop/', 'spiffe://shop/a/b', 'spiffe://shop/virtualGateway/a/b', 'spiffe://Shop/web',
    'spiffe://shop/../web', 'spiffe://shop//web', 'https://shop/web', 'spiffe://shop/web?x=1']) {
    assert.equal(parseSpiffeId(uri), undefined, uri);
  }
});

test('identities are described for people', () => {
  assert.equal(describeIdentity({ mesh: 'shop', kind: 'virtualNode', name: 'web' }), 'Virtual node web in mesh shop');
  assert.equal(describeIdentity({ mesh: 'shop', kind: 'virtualGateway', name: 'ingress' }), 'Virtual gateway ingress in mesh shop');
});

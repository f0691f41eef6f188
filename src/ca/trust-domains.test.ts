// Trust domains: one per mesh, derived from its name unless configured, fixed once the mesh has a CA (it is
// in every SPIFFE ID issued), and never shared by two meshes (they would share identities).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { BadRequestError, ConflictError, ForbiddenError } from '../errors/index.ts';
import { assertRefused, assertVerifies, certText, csrFor, dnsNode, harness, HOUR, sanNames, snapshot } from './test-fixtures.ts';

test('the default comes from the mesh name; configured before the first CA, it names every SVID', async () => {
  const h = await harness();
  after(() => h.close());
  assert.deepEqual(await h.ca.settings('Shop_Prod EU'), { mesh: 'Shop_Prod EU', trustDomain: 'shop_prod-eu', svidTtlMs: HOUR, keyType: 'ec-p256', stored: false });
  await h.addNode('Shop_Prod EU', 'web', dnsNode('web.shop.local'));
  const svid = await h.ca.issue({ mesh: 'Shop_Prod EU', kind: 'virtualNode', name: 'web' }, (await csrFor()).csrPem);
  assert.equal(svid.spiffeId, 'spiffe://shop_prod-eu/web');
  assert.equal((await h.ca.settings('Shop_Prod EU')).stored, true, 'the first CA pins the settings');

  const configured = await h.ca.configure('retail', { trustDomain: 'retail.example.org' });
  assert.deepEqual(configured, { mesh: 'retail', trustDomain: 'retail.example.org', svidTtlMs: HOUR, keyType: 'ec-p256', stored: true });
  assert.equal((await h.ca.configure('retail', { trustDomain: 'retail.example.com' })).trustDomain, 'retail.example.com', 'changeable while there is no CA');
  await h.addNode('retail', 'web', dnsNode('web.retail.local'));
  await h.addGateway('retail', 'edge');
  const ca = await h.ca.ensureCa('retail');
  assert.equal(ca.trustDomain, 'retail.example.com');
  assert.deepEqual(sanNames(certText(ca.certPem)), ['URI:spiffe://retail.example.com']);
  const node = await h.ca.issue({ mesh: 'retail', kind: 'virtualNode', name: 'web' }, (await csrFor({ uris: ['spiffe://retail.example.com/web'] })).csrPem);
  assert.deepEqual(sanNames(certText(node.certChainPem)), ['DNS:web.retail.local', 'URI:spiffe://retail.example.com/web']);
  await assertVerifies({ bundlePem: node.bundlePem, chainPem: node.certChainPem, at: h.clock.now() });
  const gw = await h.ca.issue({ mesh: 'retail', kind: 'virtualGateway', name: 'edge' }, (await csrFor()).csrPem);
  assert.deepEqual(sanNames(certText(gw.certChainPem)), ['URI:spiffe://retail.example.com/virtualGateway/edge']);
  assert.equal((await h.ca.trustBundleOfMesh('retail')).trustDomain, 'retail.example.com');
  assert.equal((await h.ca.identityFromPeerCertificate(node.certChainPem)).mesh, 'retail');
});

test('after the first CA the trust domain is fixed; TTL and key type still change', async () => {
  const h = await harness();
  after(() => h.close());
  await h.ca.configure('shop', { trustDomain: 'shop.internal' });
  await h.ca.ensureCa('shop');
  const before = await snapshot(h, ['shop']);
  await assertRefused(h.ca.configure('shop', { trustDomain: 'shop.example' }), ConflictError,
    [/Mesh shop already has a CA for trust domain shop\.internal/, /cannot change/], 'KM_ERR_TRUST_DOMAIN_FIXED');
  await assertRefused(h.ca.configure('shop', { trustDomain: 'Bad Domain' }), BadRequestError, /Invalid trust domain: trust domain "Bad Domain" may hold only/, 'KM_ERR_TRUST_DOMAIN');
  assert.deepEqual(await snapshot(h, ['shop']), before);
  assert.equal((await h.ca.configure('shop', { trustDomain: 'shop.internal' })).trustDomain, 'shop.internal', 'naming the same one is fine');
  const changed = await h.ca.configure('shop', { svidTtlMs: 2 * HOUR, keyType: 'rsa-2048' });
  assert.deepEqual({ ...changed, stored: true }, { mesh: 'shop', trustDomain: 'shop.internal', svidTtlMs: 2 * HOUR, keyType: 'rsa-2048', stored: true });
  // Also a pending (offline-signed) CA fixes it.
  await h.ca.prepareCsr('pending-mesh');
  await assertRefused(h.ca.configure('pending-mesh', { trustDomain: 'elsewhere' }), ConflictError, /cannot change/, 'KM_ERR_TRUST_DOMAIN_FIXED');
});

test('two meshes cannot claim the same trust domain, configured or by default', async () => {
  const h = await harness();
  after(() => h.close());
  await h.ca.configure('shop', { trustDomain: 'acme.internal' });
  const before = await snapshot(h, ['shop', 'other']);
  await assertRefused(h.ca.configure('other', { trustDomain: 'acme.internal' }), ConflictError,
    [/Trust domain acme\.internal already belongs to mesh shop/, /Configure a distinct trust domain for mesh other/], 'KM_ERR_TRUST_DOMAIN_TAKEN');
  assert.deepEqual(await snapshot(h, ['shop', 'other']), before);

  // "Retail" and "retail" both default to "retail": the first to get a CA has it.
  await h.ca.ensureCa('retail');
  await assertRefused(h.ca.ensureCa('Retail'), ConflictError, [/Trust domain retail already belongs to mesh retail/, /Configure a distinct trust domain for mesh Retail/], 'KM_ERR_TRUST_DOMAIN_TAKEN');
  assert.deepEqual((await h.ca.listCas({ mesh: 'Retail' })), []);
  assert.equal((await h.ca.configure('Retail', { trustDomain: 'retail-2' })).trustDomain, 'retail-2');
  assert.equal((await h.ca.ensureCa('Retail')).trustDomain, 'retail-2');
});

test('a mesh whose default trust domain belongs to another mesh cannot issue, create tokens for, or revoke that mesh\'s identities', async () => {
  const h = await harness();
  after(() => h.close());
  await h.addNode('retail', 'web', dnsNode('web.retail.local'));
  await h.addNode('Retail', 'web', dnsNode('web.retail.local'));
  const theirs = await h.ca.issue({ mesh: 'retail', kind: 'virtualNode', name: 'web' }, (await csrFor()).csrPem);
  const mine = { mesh: 'Retail', kind: 'virtualNode', name: 'web' } as const;
  const before = await snapshot(h, ['retail', 'Retail']);
  const taken = [/Trust domain retail .*belongs to mesh retail/, /Configure a distinct trust domain for mesh Retail/];
  await assertRefused(h.ca.revokeIdentity(mine), ConflictError, taken, 'KM_ERR_TRUST_DOMAIN_TAKEN');
  await assertRefused(h.ca.createJoinToken(mine), ConflictError, taken, 'KM_ERR_TRUST_DOMAIN_TAKEN');
  await assertRefused(h.ca.issue(mine, (await csrFor()).csrPem), ConflictError, taken, 'KM_ERR_TRUST_DOMAIN_TAKEN');
  assert.deepEqual(await snapshot(h, ['retail', 'Retail']), before);
  // The other mesh's workload is untouched.
  assert.equal((await h.ca.identityFromPeerCertificate(theirs.certChainPem)).mesh, 'retail');
  assert.deepEqual(await h.ca.listRevokedIdentities(), []);
});

test('a join token made before the trust domain changed is refused as stale, and stays unspent', async () => {
  const h = await harness();
  after(() => h.close());
  await h.addNode('later', 'web', dnsNode('web.later.local'));
  const web = { mesh: 'later', kind: 'virtualNode', name: 'web' } as const;
  const token = await h.ca.createJoinToken(web);
  assert.equal(token.spiffeId, 'spiffe://later/web');
  assert.deepEqual(await h.ca.listCas(), [], 'a token does not create the CA, so the trust domain can still change');
  await h.ca.configure('later', { trustDomain: 'later.example' });
  await assertRefused(h.ca.redeemJoinToken(token.token, (await csrFor()).csrPem), ForbiddenError,
    [/was made for spiffe:\/\/later\/web, but Virtual node web in mesh later is now spiffe:\/\/later\.example\/web/, /create a new token/], 'KM_ERR_TOKEN_STALE');
  assert.equal((await h.ca.listJoinTokens('later'))[0]?.usedAt, null);
  assert.deepEqual(await h.ca.listCas(), [], 'nor did the refusal make the CA');
  const fresh = await h.ca.createJoinToken(web);
  assert.equal((await h.ca.redeemJoinToken(fresh.token, (await csrFor()).csrPem)).spiffeId, 'spiffe://later.example/web');
});

// Join tokens: a proxy's first SVID. A token is shown once, bound to one identity, single use, short-lived;
// every refusal says why, and a refusal that is not about the token itself leaves the token usable.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BadRequestError, ConflictError, CsrError, ForbiddenError, NotFoundError, UnavailableError } from '../errors/index.ts';
import {
  assertRefused, assertVerifies, certText, csrFor, dnsNode, harness, HOUR, MINUTE, sanNames, snapshot, type Harness,
} from './test-fixtures.ts';

const web = { mesh: 'shop', kind: 'virtualNode', name: 'web' } as const;
const ingress = { mesh: 'shop', kind: 'virtualGateway', name: 'ingress' } as const;

describe('join tokens', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
    await h.addNode('shop', 'web', dnsNode('web.shop.local'));
    await h.addNode('shop', 'db', dnsNode('db.shop.local'));
    await h.addGateway('shop', 'ingress');
    await h.ca.ensureCa('shop');
  });
  after(() => h.close());

  const usedAt = async (id: string) => (await h.ca.listJoinTokens('shop')).find((t) => t.id === id)?.usedAt;

  test('a token bootstraps exactly its identity, once; the secret is shown once and never listed', async () => {
    const created = await h.ca.createJoinToken(web);
    assert.match(created.token, /^kmjt1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{43}$/);
    assert.equal(created.token.split('.')[1], created.id);
    assert.equal(created.spiffeId, 'spiffe://shop/web');
    assert.equal(created.expiresAt, h.clock.now() + 10 * MINUTE, 'tokens live 10 minutes by default');
    const listed = await h.ca.listJoinTokens('shop');
    const info = listed.find((t) => t.id === created.id);
    assert.deepEqual(info && { spiffeId: info.spiffeId, usedAt: info.usedAt, kind: info.kind, name: info.name }, { spiffeId: 'spiffe://shop/web', usedAt: null, kind: 'virtualNode', name: 'web' });
    const secret = created.token.split('.')[2]!;
    assert.ok(!JSON.stringify(listed).includes(secret), 'the listing does not hold the secret');
    assert.ok(!JSON.stringify(listed).includes('secretHash'), 'nor its hash');

    const { csrPem } = await csrFor({ uris: ['spiffe://shop/web'], dnsNames: ['web.shop.local'] });
    const svid = await h.ca.redeemJoinToken(created.token, csrPem);
    assert.equal(svid.spiffeId, 'spiffe://shop/web');
    await assertVerifies({ bundlePem: svid.bundlePem, chainPem: svid.certChainPem, at: h.clock.now() });
    assert.deepEqual(sanNames(certText(svid.certChainPem)), ['DNS:web.shop.local', 'URI:spiffe://shop/web']);
    assert.equal(await usedAt(created.id), h.clock.now());

    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.redeemJoinToken(created.token, (await csrFor()).csrPem), ForbiddenError,
      [new RegExp(`Join token ${created.id} was already used`), /Create a new token for Virtual node web in mesh shop/], 'KM_ERR_TOKEN_USED');
    assert.deepEqual(await snapshot(h, ['shop']), before);
  });

  test('a gateway token gives the gateway its SPIFFE ID', async () => {
    const created = await h.ca.createJoinToken(ingress, { ttlMs: HOUR });
    const svid = await h.ca.redeemJoinToken(`  ${created.token}\n`, (await csrFor()).csrPem); // pasted with whitespace
    assert.equal(svid.spiffeId, 'spiffe://shop/virtualGateway/ingress');
    assert.deepEqual(sanNames(certText(svid.certChainPem)), ['URI:spiffe://shop/virtualGateway/ingress']);
  });

  test('two proxies racing with one token: exactly one gets an SVID', async () => {
    const created = await h.ca.createJoinToken(web);
    const csrs = await Promise.all(Array.from({ length: 4 }, () => csrFor()));
    const results = await Promise.allSettled(csrs.map((c) => h.ca.redeemJoinToken(created.token, c.csrPem)));
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof ForbiddenError && r.reason.code === 'KM_ERR_TOKEN_USED', String(r.reason));
    }
  });

  test('an expired token is refused and stays unused', async () => {
    const created = await h.ca.createJoinToken(web, { ttlMs: 5 * MINUTE });
    h.clock.advance(5 * MINUTE); // the very moment it expires
    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.redeemJoinToken(created.token, (await csrFor()).csrPem), ForbiddenError,
      [new RegExp(`Join token ${created.id} for Virtual node web in mesh shop expired at ${new Date(created.expiresAt).toISOString()}`), /create a new one/], 'KM_ERR_TOKEN_EXPIRED');
    assert.deepEqual(await snapshot(h, ['shop']), before);
    assert.equal(await usedAt(created.id), null);
  });

  test('malformed tokens, unknown tokens and wrong secrets are refused without revealing which', async () => {
    const created = await h.ca.createJoinToken(web);
    const { csrPem } = await csrFor();
    const before = await snapshot(h, ['shop']);
    for (const bad of ['', 'kmjt1', 'kmjt1.abc.def', created.token.replace('kmjt1', 'kmjt2'), `${created.token}x`, created.token.replace(/\.(.)/, '.*')]) {
      await assertRefused(h.ca.redeemJoinToken(bad, csrPem), BadRequestError, /The join token is malformed: expected kmjt1\.<id>\.<secret>/, 'KM_ERR_TOKEN_MALFORMED');
    }
    const [, id, secret] = created.token.split('.') as [string, string, string];
    const wrongSecret = `kmjt1.${id}.${secret.startsWith('A') ? 'B' : 'A'}${secret.slice(1)}`;
    await assertRefused(h.ca.redeemJoinToken(wrongSecret, csrPem), ForbiddenError, new RegExp(`Join token ${id} is not known here`), 'KM_ERR_TOKEN_UNKNOWN');
    const unknownId = `kmjt1.${'A'.repeat(16)}.${secret}`;
    await assertRefused(h.ca.redeemJoinToken(unknownId, csrPem), ForbiddenError, /Join token A{16} is not known here/, 'KM_ERR_TOKEN_UNKNOWN');
    assert.deepEqual(await snapshot(h, ['shop']), before);
    // The right secret still works: the guesses did not burn the token.
    assert.equal((await h.ca.redeemJoinToken(created.token, csrPem)).spiffeId, 'spiffe://shop/web');
  });

  test('a refused CSR does not spend the token', async () => {
    const created = await h.ca.createJoinToken(web);
    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.redeemJoinToken(created.token, (await csrFor({ uris: ['spiffe://shop/db'] })).csrPem), CsrError,
      [/asks for spiffe:\/\/shop\/db/, /caller is spiffe:\/\/shop\/web/], 'KM_ERR_CSR_IDENTITY');
    await assertRefused(h.ca.redeemJoinToken(created.token, (await csrFor({ dnsNames: ['db.shop.local'] })).csrPem), CsrError, /DNS name db\.shop\.local/, 'KM_ERR_CSR_DNS');
    await assertRefused(h.ca.redeemJoinToken(created.token, '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'), CsrError, /certificate signing request/);
    assert.deepEqual(await snapshot(h, ['shop']), before);
    assert.equal(await usedAt(created.id), null);
    assert.equal((await h.ca.redeemJoinToken(created.token, (await csrFor({ uris: ['spiffe://shop/web'] })).csrPem)).spiffeId, 'spiffe://shop/web');
  });

  test('tokens only for existing identities, with a lifetime up to 24 hours', async () => {
    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.createJoinToken({ mesh: 'shop', kind: 'virtualNode', name: 'ghost' }), NotFoundError, /VirtualNode ghost in mesh shop does not exist/);
    await assertRefused(h.ca.createJoinToken({ mesh: 'shop', kind: 'virtualGateway', name: 'web' }), NotFoundError, /VirtualGateway web in mesh shop does not exist/);
    await assertRefused(h.ca.createJoinToken(web, { ttlMs: 25 * HOUR }), BadRequestError, /between 1 ms and 24 hours .* got 90000000/);
    await assertRefused(h.ca.createJoinToken(web, { ttlMs: 0 }), BadRequestError, /got 0/);
    assert.deepEqual(await snapshot(h, ['shop']), before);
  });

  test('a token whose virtual node was deleted cannot be redeemed', async () => {
    await h.addNode('shop', 'temp', dnsNode('temp.shop.local'));
    const created = await h.ca.createJoinToken({ mesh: 'shop', kind: 'virtualNode', name: 'temp' });
    const record = (await h.resources.get({ kind: 'virtualNode', mesh: 'shop', parent: '', name: 'temp' }))!;
    await h.resources.delete(record, record.rev);
    await assertRefused(h.ca.redeemJoinToken(created.token, (await csrFor()).csrPem), NotFoundError, /VirtualNode temp in mesh shop does not exist/);
    assert.equal(await usedAt(created.id), null);
  });

  test('a deleted token is unknown', async () => {
    const created = await h.ca.createJoinToken(web);
    assert.equal(await h.ca.deleteJoinToken(created.id), true);
    assert.equal(await h.ca.deleteJoinToken(created.id), false);
    await assertRefused(h.ca.redeemJoinToken(created.token, (await csrFor()).csrPem), ForbiddenError, /is not known here/, 'KM_ERR_TOKEN_UNKNOWN');
  });

  test('a revoked identity gets no token, and cannot redeem one it had; reinstated, it can', async () => {
    const db = { mesh: 'shop', kind: 'virtualNode', name: 'db' } as const;
    const earlier = await h.ca.createJoinToken(db);
    await h.ca.revokeIdentity(db, 'host compromised');
    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.createJoinToken(db), ForbiddenError, [/Virtual node db in mesh shop \(spiffe:\/\/shop\/db\) was revoked/, /host compromised/], 'KM_ERR_IDENTITY_REVOKED');
    await assertRefused(h.ca.redeemJoinToken(earlier.token, (await csrFor()).csrPem), ForbiddenError, /spiffe:\/\/shop\/db\) was revoked/, 'KM_ERR_IDENTITY_REVOKED');
    assert.deepEqual(await snapshot(h, ['shop']), before);
    assert.equal(await h.ca.unrevokeIdentity(db), true);
    assert.equal((await h.ca.redeemJoinToken(earlier.token, (await csrFor()).csrPem)).spiffeId, 'spiffe://shop/db');
  });
});

test('a token is not spent when the mesh cannot issue yet (CA waiting for its offline signature)', async () => {
  const h = await harness();
  after(() => h.close());
  await h.addNode('shop', 'web', dnsNode('web.shop.local'));
  const created = await h.ca.createJoinToken(web);
  await h.ca.prepareCsr('shop');
  const before = await snapshot(h, ['shop']);
  await assertRefused(h.ca.redeemJoinToken(created.token, (await csrFor()).csrPem), ConflictError, /waiting for its certificate from your root/, 'KM_ERR_CA_PENDING');
  assert.deepEqual(await snapshot(h, ['shop']), before);
  assert.equal((await h.ca.listJoinTokens('shop'))[0]?.usedAt, null);
});

test('a token is not spent when the mesh CA has expired; issuance says to rotate', async () => {
  const h = await harness({ caValidityMs: 2 * HOUR });
  after(() => h.close());
  await h.addNode('shop', 'web', dnsNode('web.shop.local'));
  const ca = await h.ca.ensureCa('shop');
  const created = await h.ca.createJoinToken(web, { ttlMs: 24 * HOUR });
  h.clock.advance(2 * HOUR);
  const before = await snapshot(h, ['shop']);
  await assertRefused(h.ca.redeemJoinToken(created.token, (await csrFor()).csrPem), UnavailableError,
    [new RegExp(`CA ${ca.id} of trust domain shop expired at ${new Date(ca.notAfter).toISOString()}`), /rotate to a new CA/]);
  assert.deepEqual(await snapshot(h, ['shop']), before);
  assert.equal((await h.ca.listJoinTokens('shop'))[0]?.usedAt, null);
});

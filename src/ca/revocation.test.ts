// Revocation as relying parties see it: the CA's CRL (read by openssl) lists what was revoked, so
// `openssl verify -crl_check` refuses exactly the revoked certificates; the xDS server hears of each change.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConflictError, NotFoundError } from '../errors/index.ts';
import { openssl, opensslOk, withScratchDir } from '../pki/testing-openssl.ts';
import type { Svid } from './svid-issuer.ts';
import { assertRefused, csrFor, dnsNode, harness, HOUR, MINUTE, normalizeHex, opensslVerify, snapshot, type Harness } from './test-fixtures.ts';
import type { CaView } from './views.ts';

const web = { mesh: 'shop', kind: 'virtualNode', name: 'web' } as const;
const db = { mesh: 'shop', kind: 'virtualNode', name: 'db' } as const;

/** `openssl crl -text`, checked against the issuing CA: the revoked serials (keymesh's form) and the CRL number. */
async function readCrl(crlPem: string, caPem: string): Promise<{ serials: string[]; number: number; text: string }> {
  return withScratchDir(async (_dir, write) => {
    const crl = write('crl.pem', crlPem);
    const text = opensslOk(['crl', '-in', crl, '-text', '-noout']);
    const verified = openssl(['crl', '-in', crl, '-noout', '-CAfile', write('ca.pem', caPem)]);
    assert.equal(verified.status, 0, verified.output);
    assert.match(verified.output, /verify OK/); // signed by the CA
    const serials = [...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => normalizeHex(m[1]!));
    const number = Number(/X509v3 CRL Number:\s*\n?\s*(\d+)/.exec(text)?.[1]);
    return { serials, number, text };
  });
}

describe('revocation', () => {
  let h: Harness;
  let ca: CaView;
  const issue = async (identity: typeof web | typeof db): Promise<Svid> => h.ca.issue(identity, (await csrFor()).csrPem);

  before(async () => {
    h = await harness();
    await h.addNode('shop', 'web', dnsNode('web.shop.local'));
    await h.addNode('shop', 'db', dnsNode('db.shop.local'));
    ca = await h.ca.ensureCa('shop');
  });
  after(() => h.close());

  test('a fresh CRL lists nothing and verifies against the CA', async () => {
    const crl = await readCrl(await h.ca.crl(ca.id), ca.certPem);
    assert.deepEqual(crl.serials, []);
    assert.match(crl.text, /Next Update/);
    assert.match(crl.text, /X509v3 Authority Key Identifier/);
    assert.equal(await h.ca.crl(ca.arn), await h.ca.crl(ca.id), 'by ARN too, and cached');
  });

  test('revoking one certificate: the CRL lists it, openssl -crl_check refuses it and accepts the others', async () => {
    const revoked = await issue(web);
    const kept = await issue(web);
    const numberBefore = (await readCrl(await h.ca.crl(ca.id), ca.certPem)).number;
    h.events.length = 0;
    const result = await h.ca.revokeCertificate(revoked.serial);
    assert.equal(result.revokedAt, h.clock.now());
    assert.equal(result.serial, revoked.serial);
    assert.deepEqual(h.events, [{ type: 'crl', mesh: 'shop', trustDomain: 'shop', caId: ca.id }]);

    const crlPem = await h.ca.crl(ca.id);
    const crl = await readCrl(crlPem, ca.certPem);
    assert.deepEqual(crl.serials, [revoked.serial]);
    assert.ok(crl.number > numberBefore, 'each CRL has a higher number');
    const at = h.clock.now();
    const refused = await opensslVerify({ bundlePem: revoked.bundlePem, chainPem: revoked.certChainPem, at, crlPem });
    assert.notEqual(refused.status, 0);
    assert.match(refused.output, /certificate revoked/);
    const accepted = await opensslVerify({ bundlePem: kept.bundlePem, chainPem: kept.certChainPem, at, crlPem });
    assert.equal(accepted.status, 0, accepted.output);
    assert.equal(await h.ca.crlsOf('shop'), crlPem, "the trust domain's CRLs are its CAs' CRLs");

    // Revoking again changes nothing: same revocation time, no new CRL.
    h.clock.advance(1000);
    h.events.length = 0;
    assert.equal((await h.ca.revokeCertificate(revoked.serial.toUpperCase())).revokedAt, result.revokedAt);
    assert.deepEqual(h.events, []);
    assert.equal(await h.ca.crl(ca.id), crlPem);
  });

  test('revoking an identity revokes all its certificates, blocks it, and reinstating lets it bootstrap again', async () => {
    const a = await issue(db);
    const b = await issue(db);
    const other = await issue(web);
    h.events.length = 0;
    const { identity, revoked } = await h.ca.revokeIdentity(db, 'key leaked');
    assert.deepEqual(identity, { spiffeId: 'spiffe://shop/db', mesh: 'shop', reason: 'key leaked', revokedAt: h.clock.now() });
    assert.deepEqual(revoked.map((c) => c.serial).sort(), [a.serial, b.serial].sort());
    assert.deepEqual(h.events, [
      { type: 'crl', mesh: 'shop', trustDomain: 'shop', caId: ca.id },
      { type: 'identity', mesh: 'shop', spiffeId: 'spiffe://shop/db', revoked: true },
    ]);
    assert.deepEqual((await h.ca.listRevokedIdentities('shop')).map((r) => r.spiffeId), ['spiffe://shop/db']);

    const crlPem = await h.ca.crl(ca.id);
    const crl = await readCrl(crlPem, ca.certPem);
    assert.ok(crl.serials.includes(a.serial) && crl.serials.includes(b.serial) && !crl.serials.includes(other.serial));
    for (const svid of [a, b]) assert.match((await opensslVerify({ bundlePem: svid.bundlePem, chainPem: svid.certChainPem, at: h.clock.now(), crlPem })).output, /certificate revoked/);
    assert.equal((await opensslVerify({ bundlePem: other.bundlePem, chainPem: other.certChainPem, at: h.clock.now(), crlPem })).status, 0);

    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.createJoinToken(db), Error, /was revoked/, 'KM_ERR_IDENTITY_REVOKED');
    await assertRefused(issue(db), Error, /was revoked/, 'KM_ERR_IDENTITY_REVOKED');
    assert.deepEqual(await snapshot(h, ['shop']), before);

    h.events.length = 0;
    assert.equal(await h.ca.unrevokeIdentity(db), true);
    assert.deepEqual(h.events, [{ type: 'identity', mesh: 'shop', spiffeId: 'spiffe://shop/db', revoked: false }]);
    assert.equal(await h.ca.unrevokeIdentity(db), false);
    const token = await h.ca.createJoinToken(db);
    assert.equal((await h.ca.redeemJoinToken(token.token, (await csrFor()).csrPem)).spiffeId, 'spiffe://shop/db');
    assert.ok((await readCrl(await h.ca.crl(ca.id), ca.certPem)).serials.includes(a.serial), 'its old certificates stay revoked');
  });

  test('an identity whose virtual node was deleted can still be revoked', async () => {
    await h.addNode('shop', 'gone', dnsNode('gone.shop.local'));
    const gone = { mesh: 'shop', kind: 'virtualNode', name: 'gone' } as const;
    const svid = await h.ca.issue(gone, (await csrFor()).csrPem);
    const record = (await h.resources.get({ kind: 'virtualNode', mesh: 'shop', parent: '', name: 'gone' }))!;
    await h.resources.delete(record, record.rev);
    const { revoked } = await h.ca.revokeIdentity(gone);
    assert.deepEqual(revoked.map((c) => c.serial), [svid.serial]);
  });

  test('an unknown serial is refused by name and changes nothing', async () => {
    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.revokeCertificate('0abc123'), NotFoundError, /serial abc123/);
    assert.deepEqual(await snapshot(h, ['shop']), before);
    await assertRefused(h.ca.crl('no-such-ca'), NotFoundError, /No keymesh certificate authority no-such-ca exists/, 'KM_ERR_CA_NOT_FOUND');
  });

  test('expired certificates leave the CRL; upkeep refreshes CRLs before their nextUpdate', async () => {
    const short = await issue(web);
    await h.ca.revokeCertificate(short.serial);
    assert.ok((await readCrl(await h.ca.crl(ca.id), ca.certPem)).serials.includes(short.serial));
    h.clock.advance(HOUR + MINUTE);
    h.events.length = 0;
    const report = await h.ca.maintain();
    assert.deepEqual(report.crls, [ca.id]);
    assert.deepEqual(h.events, [{ type: 'crl', mesh: 'shop', trustDomain: 'shop', caId: ca.id }]);
    const crlPem = await h.ca.crl(ca.id);
    assert.ok(!(await readCrl(crlPem, ca.certPem)).serials.includes(short.serial), 'an expired certificate needs no CRL entry');
    // The refreshed CRL is current on the clock: openssl accepts a fresh SVID with it.
    const fresh = await issue(web);
    assert.equal((await opensslVerify({ bundlePem: fresh.bundlePem, chainPem: fresh.certChainPem, at: h.clock.now(), crlPem })).status, 0);
    assert.deepEqual((await h.ca.maintain()).crls, [], 'a fresh CRL is not rebuilt');
  });
});

test('a CA that is not in the bundle publishes no CRL', async () => {
  const h = await harness();
  after(() => h.close());
  const { ca } = await h.ca.prepareCsr('shop');
  await assertRefused(h.ca.crl(ca.id), ConflictError, new RegExp(`CA ${ca.id} is pending; only CAs in the trust bundle publish a CRL`));
});

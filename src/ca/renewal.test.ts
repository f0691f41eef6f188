// Renewal: a proxy proves who it is with the SVID it holds (identityFromPeerCertificate) and gets a new one.
// Only a current, unrevoked SVID that this control plane issued proves anything.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CsrError, ForbiddenError, TrustError } from '../errors/index.ts';
import { createRootCa, issueLeaf } from '../pki/issue.ts';
import { generateKeyPair } from '../pki/keys.ts';
import { parseCertificateChainPem, parseCertificatePem, toPem } from '../pki/pem.ts';
import { assertRefused, assertVerifies, csrFor, dnsNode, harness, HOUR, snapshot, type Harness } from './test-fixtures.ts';

const web = { mesh: 'shop', kind: 'virtualNode', name: 'web' } as const;

/** A certificate for `uri` from a CA keymesh does not know (optionally named like keymesh's own CA). */
async function foreignSvid(uri: string, now: number, caName = 'Someone else CA'): Promise<string> {
  const caKeys = await generateKeyPair('ec-p256');
  const ca = await createRootCa(caKeys, { commonName: caName, notBefore: new Date(now - HOUR), notAfter: new Date(now + 24 * HOUR), pathLength: 0 });
  const leafKeys = await generateKeyPair('ec-p256');
  const leaf = await issueLeaf({ publicKey: leafKeys.publicKey, issuerCert: ca, issuerKeys: caKeys, uris: [uri], dnsNames: [], notBefore: new Date(now - 60_000), notAfter: new Date(now + HOUR) });
  return toPem([leaf, ca]);
}

describe('renewal', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
    await h.addNode('shop', 'web', dnsNode('web.shop.local'));
    await h.addNode('shop', 'db', dnsNode('db.shop.local'));
    await h.addGateway('shop', 'ingress');
  });
  after(() => h.close());

  test('an issued SVID proves its identity, and renewing gives a new SVID for it', async () => {
    const first = await h.ca.issue(web, (await csrFor()).csrPem);
    const peer = await h.ca.identityFromPeerCertificate(first.certChainPem);
    assert.deepEqual(peer, { mesh: 'shop', kind: 'virtualNode', name: 'web', spiffeId: 'spiffe://shop/web', trustDomain: 'shop', serial: first.serial, notAfter: first.notAfter });
    // As the TLS server hands it over: parsed certificates, or just the leaf.
    assert.equal((await h.ca.identityFromPeerCertificate(parseCertificateChainPem(first.certChainPem, 'chain'))).serial, first.serial);
    assert.equal((await h.ca.identityFromPeerCertificate(parseCertificatePem(first.certChainPem, 'leaf'))).serial, first.serial);

    h.clock.advance(40 * 60_000); // a proxy renews well before expiry
    const renewed = await h.ca.renew(peer, (await csrFor({ uris: ['spiffe://shop/web'] })).csrPem);
    assert.equal(renewed.spiffeId, 'spiffe://shop/web');
    assert.notEqual(renewed.serial, first.serial);
    assert.equal(renewed.notAfter, h.clock.now() + HOUR);
    await assertVerifies({ bundlePem: renewed.bundlePem, chainPem: renewed.certChainPem, at: h.clock.now() });
    assert.equal((await h.ca.identityFromPeerCertificate(renewed.certChainPem)).serial, renewed.serial);
  });

  test('a gateway renews as the gateway', async () => {
    const gw = await h.ca.issue({ mesh: 'shop', kind: 'virtualGateway', name: 'ingress' }, (await csrFor()).csrPem);
    const peer = await h.ca.identityFromPeerCertificate(gw.certChainPem);
    assert.deepEqual({ kind: peer.kind, name: peer.name, spiffeId: peer.spiffeId }, { kind: 'virtualGateway', name: 'ingress', spiffeId: 'spiffe://shop/virtualGateway/ingress' });
    assert.equal((await h.ca.renew(peer, (await csrFor()).csrPem)).spiffeId, 'spiffe://shop/virtualGateway/ingress');
  });

  test('renewal cannot be used to get another identity', async () => {
    const svid = await h.ca.issue(web, (await csrFor()).csrPem);
    const peer = await h.ca.identityFromPeerCertificate(svid.certChainPem);
    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.renew(peer, (await csrFor({ uris: ['spiffe://shop/db'] })).csrPem), CsrError, [/asks for spiffe:\/\/shop\/db/, /caller is spiffe:\/\/shop\/web/], 'KM_ERR_CSR_IDENTITY');
    assert.deepEqual(await snapshot(h, ['shop']), before);
  });

  test('an expired SVID proves nothing', async () => {
    const svid = await h.ca.issue(web, (await csrFor()).csrPem);
    h.clock.advance(HOUR + 1000);
    await assertRefused(h.ca.identityFromPeerCertificate(svid.certChainPem), TrustError,
      [/The peer certificate for spiffe:\/\/shop\/web cannot be used: it expired at/, /Bootstrap again with a join token/]);
  });

  test('a revoked SVID proves nothing; a revoked identity cannot renew', async () => {
    const a = await h.ca.issue(web, (await csrFor()).csrPem);
    const b = await h.ca.issue(web, (await csrFor()).csrPem);
    await h.ca.revokeCertificate(a.serial);
    await assertRefused(h.ca.identityFromPeerCertificate(a.certChainPem), TrustError, new RegExp(`serial ${a.serial}\\) was revoked at`));
    const peer = await h.ca.identityFromPeerCertificate(b.certChainPem); // the other SVID still works

    const db = { mesh: 'shop', kind: 'virtualNode', name: 'db' } as const;
    const dbSvid = await h.ca.issue(db, (await csrFor()).csrPem);
    const dbPeer = await h.ca.identityFromPeerCertificate(dbSvid.certChainPem);
    await h.ca.revokeIdentity(db, 'decommissioned');
    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.renew(dbPeer, (await csrFor()).csrPem), ForbiddenError, [/spiffe:\/\/shop\/db\) was revoked/, /decommissioned/, /neither bootstrap nor renew/], 'KM_ERR_IDENTITY_REVOKED');
    await assertRefused(h.ca.identityFromPeerCertificate(dbSvid.certChainPem), TrustError, /was revoked at/);
    assert.deepEqual(await snapshot(h, ['shop']), before);
    assert.equal((await h.ca.renew(peer, (await csrFor()).csrPem)).spiffeId, 'spiffe://shop/web', 'other identities are unaffected');
  });

  test('a certificate from a foreign CA proves nothing, even with the right SPIFFE ID or a look-alike CA name', async () => {
    const ours = await h.ca.ensureCa('shop');
    const now = h.clock.now();
    await assertRefused(h.ca.identityFromPeerCertificate(await foreignSvid('spiffe://shop/web', now)), TrustError, /no issuer "CN=Someone else CA" among the trusted roots/);
    const ourName = parseCertificatePem(ours.certPem, 'ca').subject.replace(/^CN=/, '');
    await assertRefused(h.ca.identityFromPeerCertificate(await foreignSvid('spiffe://shop/web', now, ourName)), TrustError, /the signature does not verify with the key of its issuer/);
    await assertRefused(h.ca.identityFromPeerCertificate(await foreignSvid('spiffe://elsewhere/web', now)), TrustError, /trust domain elsewhere, which no mesh here uses/);
    await assertRefused(h.ca.identityFromPeerCertificate(await foreignSvid('https://shop.example.com/', now)), TrustError, /is not a keymesh SVID/);
    await assertRefused(h.ca.identityFromPeerCertificate([]), TrustError, /No peer certificate was presented/);
  });

  test('a managed (ACM-style) certificate from the same CA is not an SVID', async () => {
    const ours = await h.ca.ensureCa('shop');
    const cert = await h.ca.requestCertificate({ mesh: 'shop', caArn: ours.arn, domainName: 'web.shop.local' });
    await assertRefused(h.ca.identityFromPeerCertificate(cert.certChainPem), TrustError, /is not a keymesh SVID \(it has no SPIFFE ID\)/);
  });
});

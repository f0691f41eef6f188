// Managed (ACM-style) certificates: App Mesh specs name them and keymesh's CAs by ARN, as they would name
// ACM certificates and ACM Private CAs. keymesh keeps the key, serves the chain, and renews before expiry.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { BadRequestError, NotFoundError, UnavailableError } from '../errors/index.ts';
import { certificateMatchesKey } from '../pki/issue.ts';
import { parseCertificatePem } from '../pki/pem.ts';
import {
  ACCOUNT, assertRefused, assertVerifies, certDates, certText, DAY, harness, HOUR, REGION, sanNames, snapshot, splitPem, type Harness,
} from './test-fixtures.ts';
import type { CaView } from './views.ts';

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

describe('managed certificates', () => {
  let h: Harness;
  let ca: CaView;
  before(async () => {
    h = await harness({ sqlite: true });
    ca = await h.ca.ensureCa('shop');
  });
  after(() => h.close());

  test('CA ARNs are ACM Private CA ARNs, and resolve to the trust domain\'s anchors', async () => {
    assert.match(ca.arn, new RegExp(`^arn:aws:acm-pca:${REGION}:${ACCOUNT}:certificate-authority/${UUID}$`));
    assert.equal(ca.arn.endsWith(`/${ca.id}`), true);
    assert.equal((await h.ca.describeCa(ca.arn)).id, ca.id);
    assert.equal(await h.ca.resolveCaArns([ca.arn]), ca.certPem);
    const unknown = `arn:aws:acm-pca:${REGION}:${ACCOUNT}:certificate-authority/00000000-0000-0000-0000-000000000000`;
    await assertRefused(h.ca.resolveCaArns([ca.arn, unknown]), NotFoundError, new RegExp(`No keymesh certificate authority has the ARN ${unknown}`), 'KM_ERR_CA_NOT_FOUND');
    await assertRefused(h.ca.resolveCaArns(['arn:aws:acm:us-west-2:123456789012:certificate/x']), BadRequestError, /is not a certificate authority ARN/);
    await assertRefused(h.ca.resolveCaArns([]), BadRequestError, /at least one CA ARN/);
    await assertRefused(h.ca.describeCa(unknown), NotFoundError, new RegExp(`No keymesh certificate authority ${unknown} exists`));
  });

  test('request → an ACM ARN whose chain verifies as a TLS server certificate; the key stays inside', async () => {
    h.events.length = 0;
    const now = h.clock.now();
    const cert = await h.ca.requestCertificate({ mesh: 'shop', caArn: ca.arn, domainName: 'Shop.Example.com', subjectAlternativeNames: ['www.shop.example.com', 'shop.example.com', '*.api.shop.example.com'], validityMs: 7 * DAY });
    assert.match(cert.arn, new RegExp(`^arn:aws:acm:${REGION}:${ACCOUNT}:certificate/${UUID}$`));
    assert.deepEqual(h.events, [{ type: 'managed-certificate', mesh: 'shop', arn: cert.arn }]);
    assert.equal(cert.caArn, ca.arn);
    assert.equal(cert.domainName, 'shop.example.com');
    assert.deepEqual(cert.subjectAlternativeNames, ['shop.example.com', 'www.shop.example.com', '*.api.shop.example.com']);
    assert.ok(!JSON.stringify(cert).includes('PRIVATE KEY'));

    const resolved = await h.ca.resolveCertificateArn(cert.arn);
    assert.deepEqual(resolved, cert);
    assert.deepEqual(await h.ca.describeCertificate(cert.arn), cert);
    assert.deepEqual((await h.ca.listCertificates('shop')).map((c) => c.arn), [cert.arn]);
    assert.deepEqual(await h.ca.listCertificates('other'), []);
    await assertVerifies({ bundlePem: (await h.ca.trustBundle('shop')).pem, chainPem: resolved.certChainPem, at: now });
    const text = certText(resolved.certChainPem);
    assert.deepEqual(sanNames(text), ['DNS:*.api.shop.example.com', 'DNS:shop.example.com', 'DNS:www.shop.example.com']);
    assert.match(text, /Subject: CN ?= ?shop\.example\.com/);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.equal(certDates(resolved.certChainPem).notAfter - now, 7 * DAY);

    // Only the in-process SDS server gets the key, and it is the certificate's.
    const keys = await h.ca.certificateKeyForSds(cert.arn);
    assert.equal(await certificateMatchesKey(parseCertificatePem(splitPem(resolved.certChainPem)[0]!, 'leaf'), keys), true);

    assert.equal(await h.ca.exists('certificate', cert.arn), true);
    assert.equal(await h.ca.exists('certificateAuthority', ca.arn), true);
    assert.equal(await h.ca.exists('certificate', ca.arn), false);
    assert.equal(await h.ca.exists('certificateAuthority', cert.arn), false);
    // Another ARN of the same shape (its last hex digit changed: a random UUID may end in 0 already).
    assert.equal(await h.ca.exists('certificate', `${cert.arn.slice(0, -1)}${cert.arn.endsWith('0') ? '1' : '0'}`), false);
  });

  test('renewDue re-issues a certificate (new key, new serial) once two thirds of its life have passed, before it expires', async () => {
    const cert = await h.ca.requestCertificate({ mesh: 'shop', caArn: ca.arn, domainName: 'renew.shop.example.com', validityMs: 3 * DAY });
    const firstKeyFiles = h.keyFiles();
    assert.deepEqual(await h.ca.renewDue(), []);
    h.clock.advance(2 * DAY - HOUR);
    assert.deepEqual(await h.ca.renewDue(), [], 'not yet due');
    h.clock.advance(HOUR);
    h.events.length = 0;
    assert.deepEqual(await h.ca.renewDue(), [cert.arn]);
    assert.deepEqual(h.events, [{ type: 'managed-certificate', mesh: 'shop', arn: cert.arn }]);
    const renewed = await h.ca.resolveCertificateArn(cert.arn);
    assert.notEqual(renewed.serial, cert.serial);
    assert.equal(renewed.renewedAt, h.clock.now());
    assert.ok(renewed.notAfter > cert.notAfter, 'the renewed certificate lives on');
    assert.ok(h.clock.now() < cert.notAfter, 'and it came before the old one expired');
    assert.equal(renewed.notAfter - h.clock.now(), 3 * DAY);
    await assertVerifies({ bundlePem: ca.certPem, chainPem: renewed.certChainPem, at: h.clock.now() });
    // The old key file is gone, the new one is there and belongs to the new certificate.
    const keyFiles = h.keyFiles();
    assert.equal(keyFiles.length, firstKeyFiles.length);
    assert.ok(keyFiles.some((f) => !firstKeyFiles.includes(f)));
    const keys = await h.ca.certificateKeyForSds(cert.arn);
    assert.equal(await certificateMatchesKey(parseCertificatePem(splitPem(renewed.certChainPem)[0]!, 'leaf'), keys), true);
    assert.deepEqual(await h.ca.renewDue(), [], 'renewed once');
  });

  test('two renewals of one certificate racing: one wins, and the key served is the certificate\'s', async () => {
    const cert = await h.ca.requestCertificate({ mesh: 'shop', caArn: ca.arn, domainName: 'race.shop.example.com' });
    const results = await Promise.allSettled([h.ca.renewCertificate(cert.arn), h.ca.renewCertificate(cert.arn)]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, String(results.map((r) => r.status === 'rejected' ? r.reason : 'ok')));
    const current = await h.ca.resolveCertificateArn(cert.arn);
    const keys = await h.ca.certificateKeyForSds(cert.arn);
    assert.equal(await certificateMatchesKey(parseCertificatePem(splitPem(current.certChainPem)[0]!, 'leaf'), keys), true);
    assert.equal(h.keyFiles().filter((f) => f.startsWith(`cert-${cert.arn.split('/')[1]}`)).length, 1, 'one key file for the certificate, no leftovers');
  });

  test('delete removes the certificate and its key', async () => {
    const cert = await h.ca.requestCertificate({ mesh: 'shop', caArn: ca.id, domainName: 'gone.shop.example.com' });
    const keyFilesBefore = h.keyFiles();
    await h.ca.deleteCertificate(cert.arn);
    assert.equal(await h.ca.exists('certificate', cert.arn), false);
    assert.equal(h.keyFiles().length, keyFilesBefore.length - 1);
    await assertRefused(h.ca.resolveCertificateArn(cert.arn), NotFoundError, new RegExp(`No keymesh managed certificate has the ARN ${cert.arn}`), 'KM_ERR_CERTIFICATE_NOT_FOUND');
    await assertRefused(h.ca.deleteCertificate(cert.arn), NotFoundError, new RegExp(cert.arn.replace(/[/]/g, '\\/')));
  });

  test('bad requests are refused by name and store nothing', async () => {
    await h.ca.ensureCa('other');
    const otherCa = (await h.ca.listCas({ mesh: 'other' }))[0]!;
    const before = await snapshot(h, ['shop', 'other']);
    await assertRefused(h.ca.requestCertificate({ mesh: 'shop', caArn: otherCa.arn, domainName: 'x.example.com' }), BadRequestError, new RegExp(`${otherCa.arn} belongs to mesh other, not shop`));
    await assertRefused(h.ca.requestCertificate({ mesh: 'shop', caArn: ca.arn, domainName: 'bad_name.example.com' }), BadRequestError, /"bad_name\.example\.com" cannot be a certificate name/);
    await assertRefused(h.ca.requestCertificate({ mesh: 'shop', caArn: ca.arn, domainName: 'x.example.com', validityMs: 1000 }), BadRequestError, /at least 3600000 \(1 hour\); got 1000/);
    await assertRefused(h.ca.requestCertificate({ mesh: 'shop', caArn: ca.arn, domainName: 'x.example.com', keyType: 'dsa' }), BadRequestError, /Unknown key type "dsa"/);
    const unknownCa = `arn:aws:acm-pca:${REGION}:${ACCOUNT}:certificate-authority/nope`;
    await assertRefused(h.ca.requestCertificate({ mesh: 'shop', caArn: unknownCa, domainName: 'x.example.com' }), NotFoundError, new RegExp(unknownCa));
    await assertRefused(h.ca.describeCertificate('arn:aws:acm:us-west-2:123456789012:certificate/nope'), NotFoundError, /certificate\/nope/);
    assert.deepEqual(await snapshot(h, ['shop', 'other']), before);
  });

  test('an RSA certificate, and a validity capped by the CA\'s own expiry', async () => {
    const short = await harness({ caValidityMs: 2 * DAY });
    after(() => short.close());
    const shortCa = await short.ca.ensureCa('shop');
    const cert = await short.ca.requestCertificate({ mesh: 'shop', caArn: shortCa.arn, domainName: 'rsa.shop.example.com', keyType: 'rsa-2048' });
    assert.equal(cert.keyType, 'rsa-2048');
    assert.equal(cert.notAfter, shortCa.notAfter, 'a certificate never outlives its CA');
    const text = certText(cert.certChainPem);
    assert.match(text, /Public-Key: \(2048 bit\)/);
    assert.match(text, /Digital Signature, Key Encipherment/);
    await assertVerifies({ bundlePem: shortCa.certPem, chainPem: cert.certChainPem, at: short.clock.now() });
    assert.ok(existsSync(short.keyPath(`ca-${shortCa.id}.key.pem`)));
  });
});

test('one mesh whose CA expired does not stop upkeep for the others, and the failure names it', async () => {
  const h = await harness({ caValidityMs: 2 * DAY });
  after(() => h.close());
  const brokenCa = await h.ca.ensureCa('broken');
  const broken = await h.ca.requestCertificate({ mesh: 'broken', caArn: brokenCa.arn, domainName: 'broken.example.com', validityMs: HOUR });
  h.clock.advance(DAY);
  const fineCa = await h.ca.ensureCa('fine');
  const fine = await h.ca.requestCertificate({ mesh: 'fine', caArn: fineCa.arn, domainName: 'fine.example.com', validityMs: HOUR });
  h.clock.advance(DAY); // the broken mesh's CA has expired; both certificates are due
  h.events.length = 0;

  await assertRefused(h.ca.maintain(), UnavailableError, [
    new RegExp(`renew ${broken.arn}: CA ${brokenCa.id} of trust domain broken expired at`),
    new RegExp(`renewed ${fine.arn}`),
    new RegExp(`refreshed the CRLs of .*${fineCa.id}`),
  ]);
  const renewed = await h.ca.describeCertificate(fine.arn);
  assert.equal(renewed.renewedAt, h.clock.now(), 'the healthy mesh\'s certificate was renewed');
  await assertVerifies({ bundlePem: fineCa.certPem, chainPem: renewed.certChainPem, at: h.clock.now() });
  assert.ok(h.events.some((e) => e.type === 'crl' && e.caId === fineCa.id), 'and its CRL refreshed');
  assert.equal((await h.ca.describeCertificate(broken.arn)).serial, broken.serial);
  await assertRefused(h.ca.renewDue(), UnavailableError, new RegExp(`renew ${broken.arn}`));
});

// CRLs keymesh signs: OpenSSL verifies them against the CA, lists the revoked serials, and uses them to
// reject a revoked leaf (and only that one).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BadRequestError } from '../errors/index.ts';
import { KEY_TYPES } from './api.ts';
import { buildCrl } from './crl.ts';
import { createRootCa, issueLeaf } from './issue.ts';
import { generateKeyPair } from './keys.ts';
import { toPem } from './pem.ts';
import { openssl, opensslOk, withScratchDir } from './testing-openssl.ts';

const HOUR = 3600_000;

for (const type of KEY_TYPES) {
  test(`${type}: a v2 CRL with CRL number and AKI that OpenSSL verifies and enforces`, async () => {
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    const later = new Date(now.getTime() + HOUR);
    const caKeys = await generateKeyPair(type);
    const ca = await createRootCa(caKeys, { commonName: `crl ca ${type}`, notBefore: new Date(now.getTime() - HOUR), notAfter: new Date(now.getTime() + 24 * HOUR), pathLength: 0 });
    const leafKeys = await generateKeyPair('ec-p256');
    const leaf = (dns: string) => issueLeaf({ publicKey: leafKeys.publicKey, issuerCert: ca, issuerKeys: caKeys, uris: [], dnsNames: [dns], notBefore: now, notAfter: later });
    const revoked = await leaf('revoked.example');
    const kept = await leaf('kept.example');
    const crl = await buildCrl(ca, caKeys, [{ serial: revoked.serialNumber, revokedAt: now }, { serial: '1001', revokedAt: now }], now, later, 42);
    assert.match(crl, /^-----BEGIN X509 CRL-----\n[\s\S]+\n-----END X509 CRL-----\n$/);

    await withScratchDir(async (_dir, write) => {
      const caPem = write('ca.pem', toPem(ca));
      const crlPem = write('crl.pem', crl);
      const r = openssl(['crl', '-in', crlPem, '-CAfile', caPem, '-verify', '-noout', '-text']);
      assert.equal(r.status, 0, r.output);
      assert.match(r.stderr, /verify OK/);
      assert.match(r.stdout, /Version 2 \(0x1\)/);
      assert.match(r.stdout, /X509v3 CRL Number: \n\s+42\n/);
      assert.match(r.stdout, /X509v3 Authority Key Identifier/);
      assert.match(r.stdout, new RegExp(`Serial Number: 0*${revoked.serialNumber.toUpperCase()}\\n`));
      assert.match(r.stdout, /Serial Number: 1001\n/);

      const verify = (cert: string) => openssl(['verify', '-crl_check', '-CRLfile', crlPem, '-CAfile', caPem, write(cert, toPem(cert === 'revoked.pem' ? revoked : kept))]);
      const bad = verify('revoked.pem');
      assert.notEqual(bad.status, 0);
      assert.match(bad.output, /certificate revoked/);
      assert.equal(verify('kept.pem').status, 0);

      // Signed by another CA: OpenSSL rejects it.
      const otherKeys = await generateKeyPair(type);
      const other = await createRootCa(otherKeys, { commonName: `crl ca ${type}`, notBefore: now, notAfter: later, pathLength: 0 });
      const forged = write('forged.pem', await buildCrl(other, otherKeys, [], now, later, 1));
      assert.match(openssl(['crl', '-in', forged, '-CAfile', caPem, '-verify', '-noout']).output, /verify failure|signature failure/i);
      assert.match(opensslOk(['crl', '-in', forged, '-noout', '-text']), /No Revoked Certificates/);
    });
  });
}

test('bad CRL requests are refused', async () => {
  const now = new Date();
  const later = new Date(now.getTime() + HOUR);
  const keys = await generateKeyPair('ec-p256');
  const ca = await createRootCa(keys, { commonName: 'ca', notBefore: now, notAfter: later, pathLength: 0 });
  const cases: [Promise<unknown>, RegExp][] = [
    [buildCrl(ca, keys, [], now, later, -1), /CRL number -1/],
    [buildCrl(ca, keys, [], later, now, 1), /nextUpdate must be later/],
    [buildCrl(ca, keys, [{ serial: 'zz', revokedAt: now }], now, later, 1), /revoked serial "zz"/],
    [buildCrl(ca, keys, [{ serial: '0abc', revokedAt: now }, { serial: 'ABC', revokedAt: now }], now, later, 1), /serial ABC is listed twice/],
  ];
  for (const [p, message] of cases) {
    await assert.rejects(p, (e: unknown) => e instanceof BadRequestError && message.test(e.message));
  }
});

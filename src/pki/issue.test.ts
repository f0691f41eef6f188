// Issued certificates, checked by OpenSSL: chains verify (strict X.509 and the TLS server and client
// purposes), and the extensions are the ones RFC 5280, the SPIFFE X.509-SVID spec and Envoy expect.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { X509Certificate } from '@peculiar/x509';
import { BadRequestError } from '../errors/index.ts';
import { KEY_TYPES, type KeyPair, type KeyType } from './api.ts';
import { createCsr, parseCsr } from './csr.ts';
import { certificateMatchesKey, createRootCa, issueIntermediateCa, issueLeaf, newSerial } from './issue.ts';
import { generateKeyPair, importPrivateKeyPem } from './keys.ts';
import { parseCertificatePem, toPem } from './pem.ts';
import { openssl, opensslOk, withScratchDir } from './testing-openssl.ts';

const HOUR = 3600_000;
const SIGNATURE: Record<KeyType, string> = { 'ec-p256': 'ecdsa-with-SHA256', 'ec-p384': 'ecdsa-with-SHA384', 'rsa-2048': 'sha256WithRSAEncryption', 'rsa-3072': 'sha256WithRSAEncryption' };

/** Whole seconds, as certificates store time. */
function at(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

function extensionsText(text: string): string {
  return text.slice(text.indexOf('X509v3 extensions:'), text.lastIndexOf('Signature Algorithm:'));
}

async function caPair(type: KeyType, now: number): Promise<{ rootKeys: KeyPair; root: X509Certificate; interKeys: KeyPair; inter: X509Certificate }> {
  const rootKeys = await generateKeyPair(type);
  const root = await createRootCa(rootKeys, { commonName: `keymesh root ${type}`, notBefore: at(now - HOUR), notAfter: at(now + 48 * HOUR), pathLength: 1, uri: 'spiffe://example.org' });
  const interKeys = await generateKeyPair(type);
  const inter = await issueIntermediateCa(interKeys.publicKey, root, rootKeys, { commonName: `keymesh intermediate ${type}`, notBefore: at(now - HOUR), notAfter: at(now + 24 * HOUR), pathLength: 0 });
  return { rootKeys, root, interKeys, inter };
}

describe('root → intermediate → leaf, for every key type', () => {
  for (const type of KEY_TYPES) {
    test(type, async () => {
      const now = Date.now();
      const { root, inter, interKeys } = await caPair(type, now);
      const leafKeys = await generateKeyPair(type);
      const csr = await parseCsr(await createCsr(leafKeys, { uris: ['spiffe://example.org/ns/default/sa/web'] }));
      const notBefore = at(now - 60_000);
      const notAfter = at(now + HOUR);
      const svid = await issueLeaf({ publicKey: csr.publicKey, issuerCert: inter, issuerKeys: interKeys, uris: csr.uris, dnsNames: ['web.default.svc'], notBefore, notAfter });
      const fileCert = await issueLeaf({ publicKey: leafKeys.publicKey, issuerCert: inter, issuerKeys: interKeys, commonName: 'colorteller.appmesh-mtls.local', uris: [], dnsNames: ['colorteller.appmesh-mtls.local'], notBefore, notAfter });

      await withScratchDir(async (_dir, write) => {
        const rootPem = write('root.pem', toPem(root));
        const interPem = write('inter.pem', toPem(inter));
        for (const [name, cert] of [['svid.pem', svid], ['file.pem', fileCert]] as const) {
          const leafPem = write(name, toPem(cert));
          for (const purpose of ['sslserver', 'sslclient']) {
            const r = openssl(['verify', '-x509_strict', '-purpose', purpose, '-CAfile', rootPem, '-untrusted', interPem, leafPem]);
            assert.equal(r.status, 0, r.output);
            assert.match(r.stdout, new RegExp(`${name}: OK`));
          }
          // Without the intermediate, there is no path.
          assert.notEqual(openssl(['verify', '-CAfile', rootPem, leafPem]).status, 0);
        }

        const rootText = opensslOk(['x509', '-in', rootPem, '-noout', '-text']);
        assert.match(rootText, new RegExp(`Signature Algorithm: ${SIGNATURE[type]}`));
        assert.match(extensionsText(rootText), /Basic Constraints: critical\s+CA:TRUE, pathlen:1/);
        assert.match(extensionsText(rootText), /Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
        assert.match(extensionsText(rootText), /Subject Key Identifier/);
        assert.match(extensionsText(rootText), /Subject Alternative Name: \n\s+URI:spiffe:\/\/example\.org\n/);
        assert.match(rootText, new RegExp(`Subject: CN ?= ?keymesh root ${type}`));

        const interText = opensslOk(['x509', '-in', interPem, '-noout', '-text']);
        assert.match(extensionsText(interText), /Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
        assert.match(extensionsText(interText), /Key Usage: critical\s+Certificate Sign, CRL Sign\n/);
        const rootSki = /Subject Key Identifier: \n\s+([0-9A-F:]+)/.exec(rootText)?.[1];
        assert.ok(rootSki);
        assert.match(extensionsText(interText), new RegExp(`Authority Key Identifier: \\n\\s+(keyid:)?${rootSki}`));

        const svidText = opensslOk(['x509', '-in', write('svid.pem', toPem(svid)), '-noout', '-text']);
        const ext = extensionsText(svidText);
        assert.match(ext, /Basic Constraints: critical\s+CA:FALSE/);
        assert.match(ext, type.startsWith('rsa') ? /Key Usage: critical\s+Digital Signature, Key Encipherment\n/ : /Key Usage: critical\s+Digital Signature\n/);
        assert.match(ext, /Extended Key Usage: \n\s+TLS Web Server Authentication, TLS Web Client Authentication\n/);
        assert.match(ext, /Subject Key Identifier/);
        assert.match(ext, /Authority Key Identifier/);
        // Empty subject, so the SAN is critical (RFC 5280 §4.2.1.6).
        assert.match(svidText, /Subject: *\n/);
        assert.match(ext, /Subject Alternative Name: critical\s+URI:spiffe:\/\/example\.org\/ns\/default\/sa\/web, DNS:web\.default\.svc\n/);
        assert.equal(
          opensslOk(['x509', '-in', write('svid.pem', toPem(svid)), '-noout', '-startdate', '-enddate', '-dateopt', 'iso_8601']),
          `notBefore=${notBefore.toISOString().replace('T', ' ').replace('.000', '')}\nnotAfter=${notAfter.toISOString().replace('T', ' ').replace('.000', '')}\n`,
        );

        const fileText = opensslOk(['x509', '-in', write('file.pem', toPem(fileCert)), '-noout', '-text']);
        assert.match(fileText, /Subject: CN ?= ?colorteller\.appmesh-mtls\.local\n/);
        assert.match(extensionsText(fileText), /Subject Alternative Name: \n\s+DNS:colorteller\.appmesh-mtls\.local\n/);
      });
      assert.ok(await certificateMatchesKey(svid, leafKeys));
      assert.ok(await certificateMatchesKey(inter, interKeys));
      assert.equal(await certificateMatchesKey(svid, interKeys), false);
    });
  }
});

test('mixed key types: a P-384 root signs an RSA-2048 intermediate that signs a P-256 leaf', async () => {
  const now = Date.now();
  const rootKeys = await generateKeyPair('ec-p384');
  const root = await createRootCa(rootKeys, { commonName: 'root', notBefore: at(now - HOUR), notAfter: at(now + HOUR), pathLength: 1 });
  const interKeys = await generateKeyPair('rsa-2048');
  const inter = await issueIntermediateCa(interKeys.publicKey, root, rootKeys, { commonName: 'inter', notBefore: at(now - HOUR), notAfter: at(now + HOUR), pathLength: 0 });
  const leafKeys = await generateKeyPair('ec-p256');
  const leaf = await issueLeaf({ publicKey: leafKeys.publicKey, issuerCert: inter, issuerKeys: interKeys, uris: ['spiffe://example.org/x'], dnsNames: [], notBefore: at(now), notAfter: at(now + HOUR) });
  await withScratchDir(async (_dir, write) => {
    const r = openssl(['verify', '-x509_strict', '-CAfile', write('root.pem', toPem(root)), '-untrusted', write('inter.pem', toPem(inter)), write('leaf.pem', toPem(leaf))]);
    assert.equal(r.status, 0, r.output);
    const text = opensslOk(['x509', '-in', write('leaf.pem', toPem(leaf)), '-noout', '-text']);
    assert.match(text, /Signature Algorithm: sha256WithRSAEncryption/);
    // The leaf's own key is EC, so no keyEncipherment even though its issuer is RSA.
    assert.match(extensionsText(text), /Key Usage: critical\s+Digital Signature\n/);
  });
  assert.equal(await certificateMatchesKey(leaf, interKeys), false, 'a key of another type does not match');
});

test('a CA made by openssl, as in seed 004 certs.sh (genrsa 2048 + x509 v3_ca), signs keymesh leaves', async () => {
  await withScratchDir(async (dir, write) => {
    const cfg = write('ca.cfg', '[req]\ndistinguished_name=dn\n[dn]\n[v3_ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
    opensslOk(['genrsa', '-out', 'ca_key.pem', '2048'], { cwd: dir });
    opensslOk(['req', '-x509', '-new', '-key', 'ca_key.pem', '-subj', '/C=US/O=Example Company/CN=ca', '-days', '1', '-sha256', '-config', cfg, '-extensions', 'v3_ca', '-out', 'ca_cert.pem'], { cwd: dir });
    const caCert = parseCertificatePem(opensslOk(['x509', '-in', `${dir}/ca_cert.pem`]), 'ca_cert.pem');
    const caKeys = await importPrivateKeyPem(opensslOk(['pkey', '-in', `${dir}/ca_key.pem`]), 'ca_key.pem');
    assert.ok(await certificateMatchesKey(caCert, caKeys));
    const leafKeys = await generateKeyPair('rsa-2048');
    const leaf = await issueLeaf({ publicKey: leafKeys.publicKey, issuerCert: caCert, issuerKeys: caKeys, commonName: 'gateway.appmesh-mtls.local', uris: [], dnsNames: ['gateway.appmesh-mtls.local'], notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + HOUR) });
    const r = openssl(['verify', '-verbose', '-x509_strict', '-CAfile', 'ca_cert.pem', write('gateway_cert.pem', toPem(leaf))], { cwd: dir });
    assert.equal(r.status, 0, r.output);
    assert.match(r.stdout, /gateway_cert\.pem: OK/);
  });
});

describe('serials', () => {
  test('random, positive, 128 bits, and read back unchanged from the certificate', async () => {
    const serials = new Set(Array.from({ length: 200 }, () => newSerial()));
    assert.equal(serials.size, 200);
    for (const s of serials) assert.match(s, /^(?!00)[0-9a-f]{32}$/);
    const now = Date.now();
    const keys = await generateKeyPair('ec-p256');
    const root = await createRootCa(keys, { commonName: 'r', notBefore: at(now), notAfter: at(now + HOUR), pathLength: 0 });
    // Serials with the top bit set need a leading 0x00 in DER to stay positive; the hex must still match.
    const serial = `f${newSerial().slice(1)}`;
    const leaf = await issueLeaf({ publicKey: keys.publicKey, issuerCert: root, issuerKeys: keys, uris: ['spiffe://example.org/a'], dnsNames: [], notBefore: at(now), notAfter: at(now + HOUR), serial });
    assert.equal(leaf.serialNumber, serial);
    await withScratchDir(async (_dir, write) => {
      assert.equal(opensslOk(['x509', '-in', write('l.pem', toPem(leaf)), '-noout', '-serial']).trim(), `serial=${serial.toUpperCase()}`);
    });
  });
});

describe('what issuing limits or refuses', () => {
  test('a leaf outliving its issuer is cut to the issuer\'s notAfter', async () => {
    const now = Date.now();
    const keys = await generateKeyPair('ec-p256');
    const root = await createRootCa(keys, { commonName: 'r', notBefore: at(now), notAfter: at(now + HOUR), pathLength: 0 });
    const leaf = await issueLeaf({ publicKey: keys.publicKey, issuerCert: root, issuerKeys: keys, uris: ['spiffe://example.org/a'], dnsNames: [], notBefore: at(now), notAfter: at(now + 100 * HOUR) });
    assert.equal(leaf.notAfter.getTime(), root.notAfter.getTime());
  });

  test('bad issuers and bad requests are BadRequestErrors that say why', async () => {
    const now = Date.now();
    const keys = await generateKeyPair('ec-p256');
    const { root, inter, interKeys } = await caPair('ec-p256', now);
    const window = { notBefore: at(now), notAfter: at(now + HOUR) };
    const leaf = await issueLeaf({ publicKey: keys.publicKey, issuerCert: inter, issuerKeys: interKeys, uris: ['spiffe://example.org/a'], dnsNames: [], ...window });
    const cases: [Promise<unknown>, RegExp][] = [
      [issueLeaf({ publicKey: keys.publicKey, issuerCert: leaf, issuerKeys: keys, uris: ['spiffe://example.org/b'], dnsNames: [], ...window }), /is not a CA certificate/],
      [issueIntermediateCa(keys.publicKey, inter, interKeys, { commonName: 'too deep', pathLength: 0, ...window }), /has pathLen 0, so it may not sign a CA with pathLen 0/],
      [issueIntermediateCa(keys.publicKey, root, interKeys, { commonName: 'x', pathLength: -1, ...window }), /pathLength -1/],
      [issueLeaf({ publicKey: keys.publicKey, issuerCert: inter, issuerKeys: interKeys, uris: [], dnsNames: [], ...window }), /at least one URI or DNS subject alternative name/],
      [issueLeaf({ publicKey: keys.publicKey, issuerCert: inter, issuerKeys: interKeys, uris: [], dnsNames: ['bad..name'], ...window }), /DNS name "bad\.\.name": DNS name has an empty label/],
      [issueLeaf({ publicKey: keys.publicKey, issuerCert: inter, issuerKeys: interKeys, uris: ['spiffe://example.org/a?b'], dnsNames: [], ...window }), /SPIFFE ID path segment/],
      [issueLeaf({ publicKey: keys.publicKey, issuerCert: inter, issuerKeys: interKeys, uris: ['spiffe://example.org/a'], dnsNames: [], notBefore: window.notAfter, notAfter: window.notBefore }), /must be later than notBefore/],
      [issueLeaf({ publicKey: keys.publicKey, issuerCert: inter, issuerKeys: interKeys, uris: ['spiffe://example.org/a'], dnsNames: [], ...window, serial: '00' }), /serial "00"/],
      [createRootCa(keys, { commonName: ' ', pathLength: 0, ...window }), /needs a common name/],
    ];
    for (const [p, message] of cases) {
      await assert.rejects(p, (e: unknown) => {
        assert.ok(e instanceof BadRequestError, String(e));
        assert.match(e.message, message);
        return true;
      });
    }
  });
});

// CSRs: the ones keymesh makes verify in OpenSSL and carry the SANs; the ones OpenSSL makes parse, and
// parseCsr refuses anything it cannot prove or issue for, with a CsrError that says which.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CsrError } from '../errors/index.ts';
import { KEY_TYPES } from './api.ts';
import { createCsr, parseCsr } from './csr.ts';
import { exportPrivateKeyPem, generateKeyPair } from './keys.ts';
import { subtle } from './provider.ts';
import { openssl, opensslOk, withScratchDir } from './testing-openssl.ts';

async function expectCsrError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof CsrError, `expected a CsrError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('CSRs keymesh makes', () => {
  for (const type of KEY_TYPES) {
    test(`${type}: openssl req -verify accepts it and shows the SANs; parseCsr returns the same key and names`, async () => {
      const keys = await generateKeyPair(type);
      const pem = await createCsr(keys, { uris: ['spiffe://example.org/ns/default/sa/web'], dnsNames: ['web.example.org'] });
      await withScratchDir(async (_dir, write) => {
        const path = write('req.pem', pem);
        const r = openssl(['req', '-in', path, '-verify', '-noout', '-text']);
        assert.equal(r.status, 0, r.output);
        assert.match(r.output, /self-signature verify OK/);
        assert.match(r.stdout, /URI:spiffe:\/\/example\.org\/ns\/default\/sa\/web, DNS:web\.example\.org/);
        // No subject (SVID style): the requested SAN extension is marked critical.
        assert.match(r.stdout, /Subject Alternative Name: critical/);
      });
      const parsed = await parseCsr(pem);
      assert.equal(parsed.keyType, type);
      assert.equal(parsed.subject, '');
      assert.deepEqual(parsed.uris, ['spiffe://example.org/ns/default/sa/web']);
      assert.deepEqual(parsed.dnsNames, ['web.example.org']);
      const [a, b] = await Promise.all([subtle.exportKey('spki', parsed.publicKey), subtle.exportKey('spki', keys.publicKey)]);
      assert.deepEqual(Buffer.from(a), Buffer.from(b));
    });
  }

  test('with a common name (file certificates), the SAN is not critical', async () => {
    const pem = await createCsr(await generateKeyPair('ec-p256'), { commonName: 'colorteller.appmesh-mtls.local', dnsNames: ['colorteller.appmesh-mtls.local'] });
    await withScratchDir(async (_dir, write) => {
      const text = opensslOk(['req', '-in', write('req.pem', pem), '-verify', '-noout', '-text']);
      assert.match(text, /Subject: CN ?= ?colorteller\.appmesh-mtls\.local/);
      assert.match(text, /X509v3 Subject Alternative Name: \n\s+DNS:colorteller\.appmesh-mtls\.local/);
    });
    assert.equal((await parseCsr(pem)).subject, 'CN=colorteller.appmesh-mtls.local');
  });

  test('names that could not go into a certificate are refused up front', async () => {
    const keys = await generateKeyPair('ec-p256');
    await expectCsrError(createCsr(keys, { dnsNames: ['bad_name!.local'] }), /DNS name "bad_name!\.local": label "bad_name!" is not a valid host name label/);
    await expectCsrError(createCsr(keys, { uris: ['spiffe://Example.org/x'] }), /SPIFFE trust domain "Example\.org"/);
  });
});

describe('CSRs openssl makes', () => {
  test('EC P-256 (openssl req -new -newkey ec) with DNS and URI SANs', async () => {
    const pem = opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=gateway.appmesh-mtls.local',
      '-addext', 'subjectAltName=DNS:gateway.appmesh-mtls.local,URI:spiffe://appmesh-mtls.local/gateway']);
    const parsed = await parseCsr(pem);
    assert.equal(parsed.keyType, 'ec-p256');
    assert.equal(parsed.subject, 'CN=gateway.appmesh-mtls.local');
    assert.deepEqual(parsed.dnsNames, ['gateway.appmesh-mtls.local']);
    assert.deepEqual(parsed.uris, ['spiffe://appmesh-mtls.local/gateway']);
  });

  test('RSA 2048 from an existing key, as seed 004 certs.sh does (sha256, no SAN in the request)', async () => {
    await withScratchDir(async (_dir, write) => {
      const key = write('colorteller_key.pem', opensslOk(['genrsa', '2048']));
      const pem = opensslOk(['req', '-new', '-key', key, '-sha256', '-subj', '/C=US/O=Example Company/CN=colorteller.appmesh-mtls.local']);
      const parsed = await parseCsr(pem);
      assert.equal(parsed.keyType, 'rsa-2048');
      assert.equal(parsed.subject, 'C=US, O=Example Company, CN=colorteller.appmesh-mtls.local');
      assert.deepEqual([...parsed.uris, ...parsed.dnsNames], []);
    });
  });

  test('RSA 3072 and P-384', async () => {
    const rsa = opensslOk(['req', '-new', '-newkey', 'rsa:3072', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=r']);
    assert.equal((await parseCsr(rsa)).keyType, 'rsa-3072');
    const ec = opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=e']);
    assert.equal((await parseCsr(ec)).keyType, 'ec-p384');
  });
});

describe('CSRs parseCsr refuses', () => {
  test('garbage, the wrong block, cut-short or damaged content', async () => {
    const keys = await generateKeyPair('ec-p256');
    const good = await createCsr(keys, { dnsNames: ['a.example'] });
    const lines = good.trimEnd().split('\n');
    await expectCsrError(parseCsr('hello'), /^certificate signing request: no PEM block found/);
    await expectCsrError(parseCsr(await exportPrivateKeyPem(keys)), /^certificate signing request: expected a CERTIFICATE REQUEST but found a PRIVATE KEY$/);
    await expectCsrError(parseCsr(lines.slice(0, 3).join('\n')), /^certificate signing request: the CERTIFICATE REQUEST block has no "-----END CERTIFICATE REQUEST-----" line/);
    await expectCsrError(parseCsr([lines[0], lines[1], lines.at(-1)].join('\n')), /^certificate signing request: the CERTIFICATE REQUEST block is damaged: its content is not a valid PKCS#10 request$/);
  });

  test('a request whose signature does not verify (altered after signing)', async () => {
    const pem = await createCsr(await generateKeyPair('ec-p256'), { dnsNames: ['aaaa.example'] });
    // Same length, different name: the structure stays valid, the signature no longer matches.
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    const at = der.indexOf('aaaa.example');
    assert.ok(at > 0);
    der.write('bbbb', at);
    const altered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    await withScratchDir(async (_dir, write) => {
      // OpenSSL 3.0 reports the failure but still exits 0, so check what it says.
      assert.match(openssl(['req', '-in', write('altered.pem', altered), '-verify', '-noout']).output, /self-signature verify failure/, 'OpenSSL agrees it does not verify');
    });
    await expectCsrError(parseCsr(altered), /^certificate signing request: the signature does not verify/);
  });

  test('unsupported key types and SAN types', async () => {
    const ed = opensslOk(['req', '-new', '-newkey', 'ed25519', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=ed']);
    await expectCsrError(parseCsr(ed), /^certificate signing request: unsupported key type Ed25519; keymesh issues for ec-p256, ec-p384, rsa-2048 or rsa-3072$/);
    const rsa1k = opensslOk(['req', '-new', '-newkey', 'rsa:1024', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=big']);
    await expectCsrError(parseCsr(rsa1k), /unsupported key type RSA 1024/);
    const ip = opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=ip', '-addext', 'subjectAltName=IP:10.0.0.1']);
    await expectCsrError(parseCsr(ip), /asks for a IP subject alternative name \(10\.0\.0\.1\); keymesh issues only DNS and URI names/);
    const badDns = opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=x', '-addext', 'subjectAltName=DNS:-bad-.example']);
    await expectCsrError(parseCsr(badDns), /DNS name "-bad-\.example"/);
  });
});

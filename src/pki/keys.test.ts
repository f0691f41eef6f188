// Keys keymesh writes must be readable by OpenSSL (plain and encrypted PKCS#8), and keys OpenSSL writes
// must be readable by keymesh; every bad file is refused with a PemError naming it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PemError } from '../errors/index.ts';
import { KEY_TYPES, type KeyPair, type KeyType } from './api.ts';
import { exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem, keyTypeOf } from './keys.ts';
import { subtle } from './provider.ts';
import { openssl, opensslOk, withScratchDir } from './testing-openssl.ts';

const OPENSSL_DESCRIPTION: Record<KeyType, RegExp> = {
  'ec-p256': /Private-Key: \(256 bit[\s\S]*NIST CURVE: P-256/,
  'ec-p384': /Private-Key: \(384 bit[\s\S]*NIST CURVE: P-384/,
  'rsa-2048': /Private-Key: \(2048 bit, 2 primes\)/,
  'rsa-3072': /Private-Key: \(3072 bit, 2 primes\)/,
};

async function signsFor(keys: KeyPair, publicKey = keys.publicKey): Promise<boolean> {
  const alg = keys.type.startsWith('ec') ? { name: 'ECDSA', hash: keys.type === 'ec-p384' ? 'SHA-384' : 'SHA-256' } : { name: 'RSASSA-PKCS1-v1_5' };
  const data = new TextEncoder().encode('keymesh');
  return subtle.verify(alg, publicKey, await subtle.sign(alg, keys.privateKey, data), data);
}

async function expectPemError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PemError, `expected a PemError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

describe('every key type', () => {
  for (const type of KEY_TYPES) {
    test(`${type}: PKCS#8 PEM that OpenSSL reads, plain and encrypted, and that reads back`, async () => {
      const keys = await generateKeyPair(type);
      assert.equal(keys.type, type);
      assert.equal(keyTypeOf(keys.publicKey), type);
      assert.equal(keyTypeOf(keys.privateKey), type);
      await withScratchDir(async (_dir, write) => {
        const plain = await exportPrivateKeyPem(keys);
        assert.match(plain, /^-----BEGIN PRIVATE KEY-----\n/);
        const plainPath = write('key.pem', plain);
        assert.match(opensslOk(['pkey', '-in', plainPath, '-noout', '-text']), OPENSSL_DESCRIPTION[type]);

        const encrypted = await exportPrivateKeyPem(keys, 'correct horse');
        assert.match(encrypted, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
        const encPath = write('key.enc.pem', encrypted);
        assert.match(opensslOk(['pkey', '-in', encPath, '-passin', 'pass:correct horse', '-noout', '-text']), OPENSSL_DESCRIPTION[type]);
        // OpenSSL shows the cipher it finds: AES-256-CBC under PBES2.
        assert.match(opensslOk(['asn1parse', '-in', encPath]), /aes-256-cbc/);
        const wrong = openssl(['pkey', '-in', encPath, '-passin', 'pass:wrong horse', '-noout']);
        assert.notEqual(wrong.status, 0, 'OpenSSL refuses the wrong passphrase');

        for (const [pem, pass] of [[plain, undefined], [encrypted, 'correct horse']] as const) {
          const back = await importPrivateKeyPem(pem, 'key.pem', pass);
          assert.equal(back.type, type);
          assert.ok(await signsFor(back, keys.publicKey), 'the imported private key signs for the original public key');
          assert.ok(await signsFor(keys, back.publicKey), 'the derived public key is the original one');
        }
      });
    });
  }
});

describe('keys made by openssl', () => {
  const cases: [string, string[], KeyType][] = [
    ['EC P-256 (genpkey, PKCS#8)', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], 'ec-p256'],
    ['EC P-384 (ecparam -genkey, "EC PRIVATE KEY" with EC PARAMETERS)', ['ecparam', '-name', 'secp384r1', '-genkey'], 'ec-p384'],
    ['RSA 2048 (genrsa, as seed 004 certs.sh)', ['genrsa', '2048'], 'rsa-2048'],
    ['RSA 3072 (genpkey)', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:3072'], 'rsa-3072'],
    ['RSA 2048 traditional "RSA PRIVATE KEY"', ['genrsa', '-traditional', '2048'], 'rsa-2048'],
  ];
  for (const [name, args, type] of cases) {
    test(name, async () => {
      const pem = opensslOk(args);
      const keys = await importPrivateKeyPem(pem, 'openssl.pem');
      assert.equal(keys.type, type);
      assert.ok(await signsFor(keys));
      // ...and keymesh's export of it is the same key to OpenSSL.
      await withScratchDir(async (_dir, write) => {
        const a = opensslOk(['pkey', '-in', write('a.pem', pem), '-pubout']);
        const b = opensslOk(['pkey', '-in', write('b.pem', await exportPrivateKeyPem(keys)), '-pubout']);
        assert.equal(b, a);
      });
    });
  }

  test('encrypted by openssl (PKCS#8 AES-256) reads with the passphrase; a wrong or missing one is a PemError', async () => {
    const pem = opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-aes-256-cbc', '-pass', 'pass:s3cret-pass']);
    assert.match(pem, /ENCRYPTED PRIVATE KEY/);
    assert.equal((await importPrivateKeyPem(pem, 'ca_key.pem', 's3cret-pass')).type, 'ec-p256');
    await expectPemError(importPrivateKeyPem(pem, 'ca_key.pem', 'not-the-pass'), /^ca_key\.pem: cannot decrypt the private key: wrong passphrase/);
    await expectPemError(importPrivateKeyPem(pem, 'ca_key.pem'), /^ca_key\.pem: the private key is encrypted and no passphrase was given$/);
  });

  test('legacy encrypted "RSA PRIVATE KEY" with Proc-Type headers reads with the passphrase', async () => {
    const pem = opensslOk(['genrsa', '-traditional', '-aes256', '-passout', 'pass:legacy-pass', '2048']);
    assert.match(pem, /Proc-Type: 4,ENCRYPTED/);
    assert.equal((await importPrivateKeyPem(pem, 'legacy.pem', 'legacy-pass')).type, 'rsa-2048');
    await expectPemError(importPrivateKeyPem(pem, 'legacy.pem'), /legacy\.pem: the private key is encrypted/);
  });
});

describe('bad key files', () => {
  test('a wrong passphrase never shows up in the error', async () => {
    const keys = await generateKeyPair('ec-p256');
    const pem = await exportPrivateKeyPem(keys, 'the-right-one');
    await assert.rejects(importPrivateKeyPem(pem, 'ca_key.pem', 'hunter2-wrong'), (e: unknown) => {
      assert.ok(e instanceof PemError);
      assert.equal(e.message, 'ca_key.pem: cannot decrypt the private key: wrong passphrase');
      assert.ok(!JSON.stringify({ m: e.message, s: e.stack }).includes('hunter2'));
      return true;
    });
  });

  test('garbage, a certificate, a truncated or damaged key, an unsupported key type', async () => {
    const keys = await generateKeyPair('ec-p256');
    const good = await exportPrivateKeyPem(keys);
    const lines = good.trimEnd().split('\n');
    const cert = opensslOk(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=x', '-days', '1']);
    await expectPemError(importPrivateKeyPem('', 'k.pem'), /^k\.pem: no PEM block found \(the file is empty\)$/);
    await expectPemError(importPrivateKeyPem('hello, I am not a key', 'k.pem'), /^k\.pem: no PEM block found/);
    await expectPemError(importPrivateKeyPem(cert, 'colorteller_key.pem'), /^colorteller_key\.pem: expected a private key but found a CERTIFICATE$/);
    await expectPemError(importPrivateKeyPem(lines.slice(0, 2).join('\n'), 'k.pem'), /^k\.pem: the PRIVATE KEY block has no "-----END PRIVATE KEY-----" line/);
    await expectPemError(importPrivateKeyPem(good.replace(/^(-----BEGIN PRIVATE KEY-----\n.{10})/, '$1!!'), 'k.pem'), /^k\.pem: the PRIVATE KEY block is damaged: its base64 content is invalid$/);
    // Valid base64, but the DER inside is cut short.
    const shortDer = [lines[0], 'MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg', lines.at(-1)].join('\n');
    await expectPemError(importPrivateKeyPem(shortDer, 'k.pem'), /^k\.pem: the PRIVATE KEY block is damaged: it is not a valid private key$/);
    await expectPemError(importPrivateKeyPem(opensslOk(['genpkey', '-algorithm', 'ed25519']), 'ed.pem'), /^ed\.pem: unsupported key type ED25519; keymesh uses ec-p256, ec-p384, rsa-2048 or rsa-3072$/);
    await expectPemError(importPrivateKeyPem(opensslOk(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521']), 'p521.pem'), /unsupported key type EC secp521r1/);
    await expectPemError(importPrivateKeyPem(`${good}${good}`, 'two.pem'), /^two\.pem: holds 2 private keys; expected one$/);
  });

  test('an empty passphrase is refused rather than writing a key anyone can open', async () => {
    await expectPemError(exportPrivateKeyPem(await generateKeyPair('ec-p256'), ''), /empty passphrase/);
  });
});

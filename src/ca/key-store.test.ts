// Private keys on disk: one file per key under <dataDir>/ca/ (directory 0700, files 0600), encrypted when a
// passphrase is configured so that openssl opens them only with it; never in what an API returns.
import assert from 'node:assert/strict';
import { KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { InternalError, PemError } from '../errors/index.ts';
import type { CryptoKey } from '../pki/api.ts';
import { generateKeyPair } from '../pki/keys.ts';
import { openssl, opensslOk, withScratchDir } from '../pki/testing-openssl.ts';
import { KeyStore } from './key-store.ts';
import { assertRefused, csrFor, dnsNode, harness } from './test-fixtures.ts';

const web = { mesh: 'shop', kind: 'virtualNode', name: 'web' } as const;

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

/** The public key openssl reads from a key file, and from a certificate. */
function publicKeyOfKeyFile(path: string, passphrase?: string): string {
  return opensslOk(['pkey', '-in', path, '-pubout', ...(passphrase === undefined ? [] : ['-passin', `pass:${passphrase}`])]);
}

async function publicKeyOfCert(certPem: string): Promise<string> {
  return withScratchDir(async (_dir, write) => opensslOk(['x509', '-in', write('ca.pem', certPem), '-noout', '-pubkey']));
}

test('without a passphrase: PKCS#8 files readable by the owner only, in a directory only the owner can enter', async () => {
  const h = await harness({ sqlite: true });
  after(() => h.close());
  const ca = await h.ca.ensureCa('shop');
  const keyFile = h.keyPath(`ca-${ca.id}.key.pem`);
  assert.deepEqual(h.keyFiles(), [`ca-${ca.id}.key.pem`]);
  assert.equal(mode(join(h.dataDir, 'ca')), 0o700);
  assert.equal(mode(keyFile), 0o600);
  assert.match(readFileSync(keyFile, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/);
  assert.equal(publicKeyOfKeyFile(keyFile), await publicKeyOfCert(ca.certPem), 'the file holds the CA certificate\'s key');

  const cert = await h.ca.requestCertificate({ mesh: 'shop', caArn: ca.arn, domainName: 'shop.example.com' });
  const certKeyFile = h.keyFiles().find((f) => f.startsWith('cert-'))!;
  assert.equal(mode(h.keyPath(certKeyFile)), 0o600);
  assert.equal(publicKeyOfKeyFile(h.keyPath(certKeyFile)), await publicKeyOfCert(cert.certChainPem));
  // The database names the file but never holds a key.
  assert.ok(!readFileSync(join(h.dataDir, 'keymesh.db')).toString('latin1').includes('PRIVATE KEY'));
});

test('with a passphrase: ENCRYPTED PRIVATE KEY files that openssl opens only with that passphrase', async () => {
  const h = await harness({ sqlite: true, passphrase: 'correct horse battery staple' });
  await h.addNode('shop', 'web', dnsNode('web.shop.local'));
  const ca = await h.ca.ensureCa('shop');
  const keyFile = h.keyPath(`ca-${ca.id}.key.pem`);
  const pem = readFileSync(keyFile, 'utf8');
  assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
  assert.ok(!pem.includes('BEGIN PRIVATE KEY'));
  assert.equal(mode(keyFile), 0o600);
  assert.equal(publicKeyOfKeyFile(keyFile, 'correct horse battery staple'), await publicKeyOfCert(ca.certPem));
  const wrong = openssl(['pkey', '-in', keyFile, '-pubout', '-passin', 'pass:wrong horse']);
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.output, /bad decrypt|unable to load key|Could not read key/i);
  assert.notEqual(openssl(['pkey', '-in', keyFile, '-pubout', '-passin', 'pass:']).status, 0);
  assert.ok((await h.ca.issue(web, (await csrFor()).csrPem)).certChainPem);
  await h.close(false);

  // Restarted without the passphrase, the CA cannot sign, and says what is missing.
  const forgot = await harness({ sqlite: true, dataDir: h.dataDir, resources: h.resources, clock: h.clock });
  await assertRefused(forgot.ca.issue(web, (await csrFor()).csrPem), PemError, [/the private key is encrypted/, /KEYMESH_CA_PASSPHRASE/]);
  await forgot.close(false);
  const wrongPass = await harness({ sqlite: true, dataDir: h.dataDir, resources: h.resources, clock: h.clock, passphrase: 'battery staple' });
  await assertRefused(wrongPass.ca.issue(web, (await csrFor()).csrPem), PemError, /cannot decrypt the private key: wrong passphrase/);
  await wrongPass.close(false);
  const again = await harness({ sqlite: true, dataDir: h.dataDir, resources: h.resources, clock: h.clock, passphrase: 'correct horse battery staple' });
  after(() => again.close());
  assert.equal((await again.ca.issue(web, (await csrFor()).csrPem)).caId, ca.id);
});

test('no key material in anything the CA returns', async () => {
  const h = await harness({ passphrase: 'pp' });
  after(() => h.close());
  await h.addNode('shop', 'web', dnsNode('web.shop.local'));
  const ca = await h.ca.ensureCa('shop');
  const cert = await h.ca.requestCertificate({ mesh: 'shop', caArn: ca.arn, domainName: 'shop.example.com' });
  const token = await h.ca.createJoinToken(web);
  const svid = await h.ca.redeemJoinToken(token.token, (await csrFor()).csrPem);
  const pending = await h.ca.prepareCsr('other');
  const returned = {
    ca, cas: await h.ca.listCas(), described: await h.ca.describeCa(ca.id), pending, settings: await h.ca.settings('shop'),
    cert, certs: await h.ca.listCertificates(), resolved: await h.ca.resolveCertificateArn(cert.arn), bundle: (await h.ca.trustBundle('shop')).pem,
    svid, tokens: await h.ca.listJoinTokens(), crl: await h.ca.crl(ca.id), issued: await h.ca.listIssued({}),
    rotation: await h.ca.prepareRotation('shop'), events: h.events,
  };
  const json = JSON.stringify(returned);
  assert.ok(!json.includes('PRIVATE KEY'));
  assert.ok(!json.includes('keyFile'), 'not even the key file names');
  assert.ok(!json.includes('.key.pem'));
  assert.ok(!('keyFile' in ca));
});

test('the key directory is created 0700, or tightened when it exists with wider modes', async () => {
  const h = await harness();
  after(() => h.close());
  const dir = join(h.dataDir, 'ca');
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  await h.ca.ensureCa('shop');
  assert.equal(mode(dir), 0o700);
});

test('KeyStore: never overwrites a key, refuses odd file names, forgets a removed key', async () => {
  const h = await harness();
  after(() => h.close());
  const store = new KeyStore({ dir: join(h.dataDir, 'keys') });
  const keys = await generateKeyPair('ec-p256');
  await store.save('a.key.pem', keys);
  await assertRefused(store.save('a.key.pem', await generateKeyPair('ec-p256')), InternalError, /already exists; refusing to overwrite a key/);
  const spki = (k: CryptoKey) => KeyObject.from(k).export({ type: 'spki', format: 'der' });
  assert.deepEqual(spki((await store.load('a.key.pem')).publicKey), spki(keys.publicKey), 'the first key is still there');
  for (const name of ['../escape.pem', '.hidden', 'a/b', '']) assert.throws(() => store.pathOf(name), /invalid key file name/);
  await store.remove('a.key.pem');
  await store.remove('a.key.pem'); // already gone: fine
  await assertRefused(store.load('a.key.pem'), InternalError, [/cannot read key file .*a\.key\.pem: ENOENT/, /restore it from a backup/]);
  assert.equal(store.encrypted, false);
  assert.equal(new KeyStore({ dir: 'x', passphrase: '' }).encrypted, false, 'an empty passphrase is no passphrase');
});

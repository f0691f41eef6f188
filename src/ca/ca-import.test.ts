// Bringing your own CA, with CA files made by openssl as users make them: a root (certificate and key), an
// intermediate under your root (with its chain), or keymesh's own key signed offline by your root from a
// CSR. Leaves then verify with openssl against your root. Bad imports are refused clearly and change nothing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BadRequestError, ConflictError, PemError, TrustError } from '../errors/index.ts';
import { opensslOk } from '../pki/testing-openssl.ts';
import type { ManualClock } from '../base/clock.ts';
import type { ImportCaInput } from './ca-provisioning.ts';
import {
  assertRefused, catchUp, assertVerifies, certText, csrFor, DAY, dnsNode, harness, opensslVerify, sanNames, snapshot, splitPem, type Harness,
} from './test-fixtures.ts';

const web = { mesh: 'shop', kind: 'virtualNode', name: 'web' } as const;

/** openssl in one scratch directory that lives for the whole file. */
class UserPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'keymesh-user-pki-'));
  readonly #clocks: ManualClock[] = [];

  /** Certificates made from now on are valid from the real time: `clock` is moved up to it after each. */
  follow(clock: ManualClock): void {
    this.#clocks.push(clock);
  }

  read(name: string): string {
    return readFileSync(join(this.dir, name), 'utf8');
  }

  write(name: string, content: string): string {
    writeFileSync(join(this.dir, name), content);
    return name;
  }

  run(args: string[]): string {
    return opensslOk(args, { cwd: this.dir });
  }

  #config(name: string, extensions: string): string {
    return this.write(`${name}.cnf`, `[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=${name}\n[ext]\n${extensions}\n`);
  }

  /** A self-signed certificate `<name>.pem` with key `<name>.key`; `newkey` as for `openssl req -newkey`. */
  selfSigned(name: string, extensions: string, options: { days?: number; newkey?: string[]; key?: string; passin?: string } = {}): ImportCaInput {
    const keyArgs = options.key ? ['-key', options.key, ...(options.passin ? ['-passin', `pass:${options.passin}`] : [])]
      : [...(options.newkey ?? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256']), '-nodes', '-keyout', `${name}.key`];
    this.run(['req', '-x509', '-config', this.#config(name, extensions), '-extensions', 'ext', ...keyArgs, '-out', `${name}.pem`, '-days', String(options.days ?? 30)]);
    this.#clocks.forEach(catchUp);
    return { certPem: this.read(`${name}.pem`), keyPem: this.read(options.key ?? `${name}.key`) };
  }

  /** Signs `<csr>` with CA `<issuer>` (its .pem and .key) into `<name>.pem`. */
  sign(name: string, csr: string, issuer: string, extensions: string, days = 20): string {
    this.write(`${name}.ext`, `[ext]\n${extensions}\n`);
    this.run(['x509', '-req', '-in', csr, '-CA', `${issuer}.pem`, '-CAkey', `${issuer}.key`, '-set_serial', `0x${randomBytes(12).toString('hex')}`,
      '-days', String(days), '-extfile', `${name}.ext`, '-extensions', 'ext', '-out', `${name}.pem`]);
    this.#clocks.forEach(catchUp);
    return this.read(`${name}.pem`);
  }

  /** A key and CSR `<name>.key`, `<name>.csr`. */
  request(name: string): void {
    this.run(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const ROOT_EXT = (pathlen: number) => `basicConstraints=critical,CA:TRUE,pathlen:${pathlen}\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash`;
const SIGNED_CA_EXT = 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid';

const pki = new UserPki();
after(() => pki.remove());

async function setup(): Promise<Harness> {
  const h = await harness();
  pki.follow(h.clock);
  await h.addNode('shop', 'web', dnsNode('web.shop.local'));
  return h;
}

describe('importing a root', () => {
  test('an openssl-made EC root becomes the active CA; SVIDs and CRLs verify against it', async () => {
    const h = await setup();
    after(() => h.close());
    const root = pki.selfSigned('User Root EC', ROOT_EXT(0));
    const ca = await h.ca.importCa('shop', root);
    assert.deepEqual({ status: ca.status, origin: ca.origin, keyType: ca.keyType, chainPem: ca.chainPem }, { status: 'active', origin: 'imported', keyType: 'ec-p256', chainPem: '' });
    assert.equal((await h.ca.trustBundle('shop')).pem, ca.certPem);
    assert.deepEqual(h.events, [{ type: 'bundle', mesh: 'shop', trustDomain: 'shop' }, { type: 'issuer', mesh: 'shop', trustDomain: 'shop', caId: ca.id }]);
    assert.equal((await h.ca.settings('shop')).stored, true, 'the import claimed the trust domain');

    const svid = await h.ca.issue(web, (await csrFor()).csrPem);
    assert.equal(svid.caId, ca.id);
    await assertVerifies({ bundlePem: root.certPem, chainPem: svid.certChainPem, at: h.clock.now() });
    assert.deepEqual(sanNames(certText(svid.certChainPem)), ['DNS:web.shop.local', 'URI:spiffe://shop/web']);
    await h.ca.revokeCertificate(svid.serial);
    const refused = await opensslVerify({ bundlePem: root.certPem, chainPem: svid.certChainPem, at: h.clock.now(), crlPem: await h.ca.crl(ca.id) });
    assert.match(refused.output, /certificate revoked/);
  });

  test('an RSA root with an encrypted key (the key passphrase is needed, and only for the import)', async () => {
    const h = await setup();
    after(() => h.close());
    pki.run(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-aes256', '-pass', 'pass:user-secret', '-out', 'rsa-root.key']);
    const root = pki.selfSigned('User Root RSA', ROOT_EXT(0), { key: 'rsa-root.key', passin: 'user-secret' });
    assert.match(root.keyPem, /ENCRYPTED PRIVATE KEY/);
    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.importCa('shop', root), PemError, /the CA private key: the private key is encrypted and no passphrase was given/);
    await assertRefused(h.ca.importCa('shop', { ...root, keyPassphrase: 'wrong' }), PemError, /the CA private key: cannot decrypt the private key: wrong passphrase/);
    assert.deepEqual(await snapshot(h, ['shop']), before);
    const ca = await h.ca.importCa('shop', { ...root, keyPassphrase: 'user-secret' });
    assert.equal(ca.keyType, 'rsa-2048');
    const svid = await h.ca.issue(web, (await csrFor()).csrPem);
    await assertVerifies({ bundlePem: root.certPem, chainPem: svid.certChainPem, at: h.clock.now() });
    assert.match(certText(svid.certChainPem), /Signature Algorithm: sha256WithRSAEncryption/);
  });

  test('imported into a mesh that has a CA, it is prepared; activated, it signs', async () => {
    const h = await setup();
    after(() => h.close());
    const generated = await h.ca.ensureCa('shop');
    h.clock.advance(60_000);
    const root = pki.selfSigned('User Root Next', ROOT_EXT(0));
    const imported = await h.ca.importCa('shop', root);
    assert.equal(imported.status, 'prepared');
    assert.deepEqual((await h.ca.trustBundle('shop')).caIds, [generated.id, imported.id]);
    await h.ca.activate('shop', imported.id);
    const svid = await h.ca.issue(web, (await csrFor()).csrPem);
    assert.equal(svid.caId, imported.id);
    await assertVerifies({ bundlePem: root.certPem, chainPem: svid.certChainPem, at: h.clock.now() });
  });
});

describe('importing an intermediate under your root', () => {
  let root: ImportCaInput;
  let inter: ImportCaInput;
  before(() => {
    root = pki.selfSigned('Corp Root', ROOT_EXT(1));
    pki.request('Corp Mesh CA');
    inter = { certPem: pki.sign('Corp Mesh CA', 'Corp Mesh CA.csr', 'Corp Root', SIGNED_CA_EXT), keyPem: pki.read('Corp Mesh CA.key'), chainPem: root.certPem };
  });

  test('with its chain: leaves carry the intermediate and verify against your root', async () => {
    const h = await setup();
    after(() => h.close());
    const ca = await h.ca.importCa('shop', inter);
    assert.equal(ca.status, 'active');
    assert.equal(ca.chainPem, root.certPem);
    const bundle = await h.ca.trustBundle('shop');
    assert.equal(bundle.pem, root.certPem, 'the anchor is your root, not the intermediate');
    const svid = await h.ca.issue(web, (await csrFor()).csrPem);
    const chain = splitPem(svid.certChainPem);
    assert.equal(chain.length, 2);
    assert.equal(chain[1], inter.certPem);
    await assertVerifies({ bundlePem: svid.bundlePem, chainPem: svid.certChainPem, at: h.clock.now() });
    assert.notEqual((await opensslVerify({ bundlePem: root.certPem, chainPem: chain[0]!, at: h.clock.now() })).status, 0, 'the leaf alone does not reach the root');
    // A proxy that presents only its leaf is still recognised: keymesh knows its own intermediates.
    assert.equal((await h.ca.identityFromPeerCertificate(chain[0]!)).spiffeId, 'spiffe://shop/web');
    const crl = await h.ca.crl(ca.id);
    assert.equal((await opensslVerify({ bundlePem: root.certPem, chainPem: svid.certChainPem, at: h.clock.now(), crlPem: crl })).status, 0);
    assert.equal(await h.ca.resolveCaArns([ca.arn]), root.certPem);
  });

  test('without its chain, or with a chain that does not lead to its issuer, it is refused', async () => {
    const h = await setup();
    after(() => h.close());
    const other = pki.selfSigned('Unrelated Root', ROOT_EXT(1));
    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.importCa('shop', { ...inter, chainPem: '' }), BadRequestError, [/The CA certificate CN=Corp Mesh CA is issued by CN=Corp Root/, /also give its chain/]);
    await assertRefused(h.ca.importCa('shop', { ...inter, chainPem: other.certPem }), TrustError, /no issuer "CN=Corp Root"/);
    await assertRefused(h.ca.importCa('shop', { ...inter, chainPem: 'garbage' }), PemError, /the CA chain/);
    assert.deepEqual(await snapshot(h, ['shop']), before);
  });

  test('a root whose pathLen does not allow the intermediate is refused', async () => {
    const h = await setup();
    after(() => h.close());
    pki.selfSigned('Tight Root', ROOT_EXT(0));
    pki.request('Tight Mesh CA');
    const tight = { certPem: pki.sign('Tight Mesh CA', 'Tight Mesh CA.csr', 'Tight Root', SIGNED_CA_EXT), keyPem: pki.read('Tight Mesh CA.key'), chainPem: pki.read('Tight Root.pem') };
    const before = await snapshot(h, ['shop']);
    await assertRefused(h.ca.importCa('shop', tight), BadRequestError, [/The chain certificate CN=Tight Root cannot be used/, /pathLen 0 does not allow 1 CA certificate/], 'KM_ERR_CA_CERTIFICATE');
    assert.deepEqual(await snapshot(h, ['shop']), before);
  });
});

describe('offline signing: a CSR for your root', () => {
  test('prepareCsr → openssl signs it as a CA → importSigned; leaves verify against your root', async () => {
    const h = await setup();
    after(() => h.close());
    const root = pki.selfSigned('Offline Root', ROOT_EXT(1));
    const { ca: pending, csrPem } = await h.ca.prepareCsr('shop');
    assert.deepEqual({ status: pending.status, origin: pending.origin, certPem: pending.certPem }, { status: 'pending', origin: 'offline-signed', certPem: '' });
    assert.equal(pending.csrPem, csrPem);
    assert.equal((await h.ca.trustBundle('shop')).pem, '', 'a pending CA is not trusted');
    assert.deepEqual(h.events, [], 'nor announced');

    pki.write('mesh.csr', csrPem);
    const csrText = pki.run(['req', '-in', 'mesh.csr', '-noout', '-text', '-verify']);
    assert.match(csrText, /URI:spiffe:\/\/shop\b/);
    assert.match(csrText, /ASN1 OID: prime256v1/);
    const signed = pki.sign('mesh-signed', 'mesh.csr', 'Offline Root', SIGNED_CA_EXT);

    const active = await h.ca.importSigned(pending.id, signed, root.certPem);
    assert.deepEqual({ id: active.id, status: active.status, chainPem: active.chainPem }, { id: pending.id, status: 'active', chainPem: root.certPem });
    assert.deepEqual(h.events, [{ type: 'bundle', mesh: 'shop', trustDomain: 'shop' }, { type: 'issuer', mesh: 'shop', trustDomain: 'shop', caId: pending.id }]);
    const svid = await h.ca.issue(web, (await csrFor()).csrPem);
    assert.equal(svid.caId, pending.id);
    assert.equal(svid.bundlePem, root.certPem);
    await assertVerifies({ bundlePem: root.certPem, chainPem: svid.certChainPem, at: h.clock.now() });
    const token = await h.ca.createJoinToken(web);
    const bootstrapped = await h.ca.redeemJoinToken(token.token, (await csrFor()).csrPem);
    await assertVerifies({ bundlePem: root.certPem, chainPem: bootstrapped.certChainPem, at: h.clock.now() });

    await assertRefused(h.ca.importSigned(pending.id, signed, root.certPem), ConflictError, new RegExp(`CA ${pending.id} is active, not pending`));
  });

  test('a CSR with a chosen key type', async () => {
    const h = await setup();
    after(() => h.close());
    const { ca, csrPem } = await h.ca.prepareCsr('shop', { keyType: 'rsa-2048', commonName: 'Shop mesh CA' });
    assert.equal(ca.keyType, 'rsa-2048');
    const text = pki.run(['req', '-noout', '-text', '-verify', '-in', pki.write('rsa.csr', csrPem)]);
    assert.match(text, /Public-Key: \(2048 bit\)/);
    assert.match(text, /Subject: CN ?= ?Shop mesh CA/);
    await assertRefused(h.ca.prepareCsr('shop', { keyType: 'ed25519' }), BadRequestError, /Unknown key type "ed25519"/);
  });

  test('what importSigned refuses, leaving the CA pending', async () => {
    const h = await setup();
    after(() => h.close());
    const root = pki.selfSigned('Strict Root', ROOT_EXT(1));
    const other = pki.selfSigned('Other Root', ROOT_EXT(1));
    const { ca, csrPem } = await h.ca.prepareCsr('shop');
    pki.write('strict.csr', csrPem);
    pki.request('stranger');
    const before = await snapshot(h, ['shop']);

    const forOtherKey = pki.sign('stranger-signed', 'stranger.csr', 'Strict Root', SIGNED_CA_EXT);
    await assertRefused(h.ca.importSigned(ca.id, forOtherKey, root.certPem), BadRequestError, /not for the key of CA .*not made from the CSR keymesh gave out/, 'KM_ERR_CA_KEY_MISMATCH');
    const asLeaf = pki.sign('strict-leaf', 'strict.csr', 'Strict Root', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature');
    await assertRefused(h.ca.importSigned(ca.id, asLeaf, root.certPem), BadRequestError, /cannot be used as a CA: it is not a CA certificate \(basicConstraints CA:TRUE is missing\)/, 'KM_ERR_CA_CERTIFICATE');
    const signed = pki.sign('strict-signed', 'strict.csr', 'Strict Root', SIGNED_CA_EXT);
    await assertRefused(h.ca.importSigned(ca.id, signed, ''), BadRequestError, /The root chain is required/);
    await assertRefused(h.ca.importSigned(ca.id, signed, other.certPem), TrustError, /no issuer "CN=Strict Root"/);
    await assertRefused(h.ca.importSigned(ca.id, 'not a certificate', root.certPem), PemError, /the signed CA certificate/);
    await assertRefused(h.ca.importSigned('no-such-ca', signed, root.certPem), Error, /No keymesh certificate authority no-such-ca exists/, 'KM_ERR_CA_NOT_FOUND');
    assert.deepEqual(await snapshot(h, ['shop']), before);
    assert.equal((await h.ca.describeCa(ca.id)).status, 'pending');
    assert.equal((await h.ca.importSigned(ca.arn, signed, root.certPem)).status, 'active', 'the right one still completes it (by ARN)');
  });
});

describe('bad imports are refused clearly and change nothing', () => {
  let h: Harness;
  let before_: unknown;
  before(async () => {
    h = await setup();
    before_ = await snapshot(h, ['shop']);
  });
  after(async () => {
    assert.deepEqual(await snapshot(h, ['shop']), before_);
    assert.deepEqual(await h.ca.listCas(), []);
    await h.close();
  });

  test('not a CA', async () => {
    const leafish = pki.selfSigned('Not A CA', 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature');
    await assertRefused(h.ca.importCa('shop', leafish), BadRequestError,
      [/The CA certificate CN=Not A CA cannot be used as a CA/, /basicConstraints CA:TRUE is missing/], 'KM_ERR_CA_CERTIFICATE');
    const noExtensions = pki.selfSigned('No Extensions', 'subjectKeyIdentifier=hash');
    await assertRefused(h.ca.importCa('shop', noExtensions), BadRequestError, /basicConstraints CA:TRUE is missing/, 'KM_ERR_CA_CERTIFICATE');
    const noCertSign = pki.selfSigned('No CertSign', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,cRLSign');
    await assertRefused(h.ca.importCa('shop', noCertSign), BadRequestError, /does not allow signing certificates \(keyCertSign\)/, 'KM_ERR_CA_CERTIFICATE');
  });

  test('a CA that may not sign CRLs (keymesh publishes revocations with the CA key)', async () => {
    const noCrlSign = pki.selfSigned('No CrlSign', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign');
    await assertRefused(h.ca.importCa('shop', noCrlSign), BadRequestError, [/CN=No CrlSign cannot be used as a CA/, /cRLSign/], 'KM_ERR_CA_CERTIFICATE');
  });

  test('a key that does not belong to the certificate', async () => {
    const a = pki.selfSigned('Root A', ROOT_EXT(0));
    const b = pki.selfSigned('Root B', ROOT_EXT(0));
    await assertRefused(h.ca.importCa('shop', { certPem: a.certPem, keyPem: b.keyPem }), BadRequestError, /The private key does not belong to the CA certificate CN=Root A/, 'KM_ERR_CA_KEY_MISMATCH');
    const rsa = pki.selfSigned('Root RSA', ROOT_EXT(0), { newkey: ['-newkey', 'rsa:2048'] });
    await assertRefused(h.ca.importCa('shop', { certPem: a.certPem, keyPem: rsa.keyPem }), BadRequestError, /does not belong/, 'KM_ERR_CA_KEY_MISMATCH');
  });

  test('an expired CA, or one not valid yet', async () => {
    const shortLived = pki.selfSigned('Short Lived Root', ROOT_EXT(0), { days: 1 });
    h.clock.advance(2 * DAY);
    try {
      await assertRefused(h.ca.importCa('shop', shortLived), BadRequestError, [/CN=Short Lived Root cannot be used as a CA: it expired at/], 'KM_ERR_CA_CERTIFICATE');
    } finally {
      h.clock.advance(-2 * DAY);
    }
    const future = pki.selfSigned('Future Root', ROOT_EXT(0));
    h.clock.advance(-DAY);
    try {
      await assertRefused(h.ca.importCa('shop', future), BadRequestError, /CN=Future Root cannot be used as a CA: it is not valid before/, 'KM_ERR_CA_CERTIFICATE');
    } finally {
      h.clock.advance(DAY);
    }
  });

  test('garbage PEM, a key where the certificate goes, a CA of another SPIFFE trust domain', async () => {
    const ok = pki.selfSigned('Fine Root', ROOT_EXT(0));
    await assertRefused(h.ca.importCa('shop', { certPem: 'hello', keyPem: ok.keyPem }), PemError, /the CA certificate/);
    await assertRefused(h.ca.importCa('shop', { certPem: ok.keyPem, keyPem: ok.keyPem }), PemError, /the CA certificate: expected a CERTIFICATE .* \(is this the key file\?/);
    await assertRefused(h.ca.importCa('shop', { certPem: ok.certPem, keyPem: ok.certPem }), PemError, /the CA private key: expected a private key but found a CERTIFICATE/);
    await assertRefused(h.ca.importCa('shop', { certPem: ok.certPem, keyPem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }), PemError, /the CA private key/);
    const foreign = pki.selfSigned('Foreign TD Root', `${ROOT_EXT(0)}\nsubjectAltName=URI:spiffe://elsewhere.example`);
    await assertRefused(h.ca.importCa('shop', foreign), BadRequestError, /names SPIFFE trust domain spiffe:\/\/elsewhere\.example, but this mesh's trust domain is spiffe:\/\/shop/, 'KM_ERR_CA_CERTIFICATE');
  });
});

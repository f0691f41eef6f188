// verifyChain agrees with `openssl verify`: good chains pass; expired, not-yet-valid, unrooted, wrongly
// signed, non-CA and pathLen-breaking chains fail with a TrustError naming the certificate and the reason.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { X509Certificate } from '@peculiar/x509';
import { TrustError } from '../errors/index.ts';
import type { KeyPair } from './api.ts';
import { createCsr } from './csr.ts';
import { createRootCa, issueIntermediateCa, issueLeaf } from './issue.ts';
import { exportPrivateKeyPem, generateKeyPair } from './keys.ts';
import { parseCertificatePem, toPem } from './pem.ts';
import { openssl, opensslOk, withScratchDir } from './testing-openssl.ts';
import { verifyChain } from './verify.ts';

const HOUR = 3600_000;
const NOW = Math.floor(Date.now() / 1000) * 1000;
const soon = () => new Date(Date.now() + 60_000);
const window = (from: number, to: number) => ({ notBefore: new Date(NOW + from), notAfter: new Date(NOW + to) });

async function chain() {
  const rootKeys = await generateKeyPair('ec-p256');
  const root = await createRootCa(rootKeys, { commonName: 'root', pathLength: 1, ...window(-10 * HOUR, 10 * HOUR) });
  const interKeys = await generateKeyPair('ec-p256');
  const inter = await issueIntermediateCa(interKeys.publicKey, root, rootKeys, { commonName: 'inter', pathLength: 0, ...window(-5 * HOUR, 5 * HOUR) });
  const leafKeys = await generateKeyPair('ec-p256');
  const leaf = await issueLeaf({ publicKey: leafKeys.publicKey, issuerCert: inter, issuerKeys: interKeys, uris: ['spiffe://example.org/web'], dnsNames: [], ...window(-2 * HOUR, 2 * HOUR) });
  return { rootKeys, root, interKeys, inter, leafKeys, leaf };
}

async function expectTrustError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof TrustError, `expected a TrustError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

/**
 * Signs `subjectKeys`' CSR with OpenSSL, which (unlike keymesh) signs whatever it is told to. Its
 * notBefore is OpenSSL's "now", so chains holding one are checked at soon().
 */
async function opensslSign(subjectKeys: KeyPair, cn: string, issuer: X509Certificate, issuerKeys: KeyPair, ext: string): Promise<X509Certificate> {
  return withScratchDir(async (dir, write) => {
    write('req.pem', await createCsr(subjectKeys, { commonName: cn }));
    write('ca.pem', toPem(issuer));
    write('ca.key', await exportPrivateKeyPem(issuerKeys));
    write('ext.cnf', `[ext]\n${ext}\nsubjectKeyIdentifier=hash\n`);
    opensslOk(['x509', '-req', '-in', 'req.pem', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '4660', '-days', '1', '-extfile', 'ext.cnf', '-extensions', 'ext', '-out', 'out.pem'], { cwd: dir });
    return parseCertificatePem(opensslOk(['x509', '-in', `${dir}/out.pem`]), 'out.pem');
  });
}

/** What `openssl verify` says about the same chain, so both verdicts can be compared. */
async function opensslVerdict(leaf: X509Certificate, intermediates: X509Certificate[], root: X509Certificate): Promise<{ ok: boolean; output: string }> {
  return withScratchDir(async (_dir, write) => {
    const args = ['verify', '-CAfile', write('root.pem', toPem(root))];
    if (intermediates.length) args.push('-untrusted', write('inter.pem', toPem(intermediates)));
    const r = openssl([...args, write('leaf.pem', toPem(leaf))]);
    return { ok: r.status === 0, output: r.output };
  });
}

test('a good chain verifies, also with the root or unrelated certificates among the intermediates', async () => {
  const { root, inter, leaf } = await chain();
  const other = await chain();
  await verifyChain(leaf, [inter], [root], new Date(NOW));
  await verifyChain(leaf, [other.inter, other.root, root, inter], [other.root, root], new Date(NOW));
  await verifyChain(inter, [], [root], new Date(NOW));
  await verifyChain(root, [], [root], new Date(NOW));
  assert.equal((await opensslVerdict(leaf, [inter], root)).ok, true);
});

test('validity is checked at the given time, for every certificate on the path', async () => {
  const { root, inter, leaf } = await chain();
  await expectTrustError(verifyChain(leaf, [inter], [root], new Date(NOW + 3 * HOUR)), /^certificate "spiffe:\/\/example\.org\/web" \(serial [0-9a-f]+\): expired at /);
  await expectTrustError(verifyChain(leaf, [inter], [root], new Date(NOW - 3 * HOUR)), /^certificate "spiffe:\/\/example\.org\/web" \(serial [0-9a-f]+\): not valid before /);
  // A leaf valid from 8 h ago under an intermediate valid from 5 h ago: 6 h ago, only the intermediate is not yet valid.
  const early = await chain();
  const longLeaf = await issueLeaf({ publicKey: early.leafKeys.publicKey, issuerCert: early.inter, issuerKeys: early.interKeys, uris: ['spiffe://example.org/old'], dnsNames: [], ...window(-8 * HOUR, HOUR) });
  await expectTrustError(verifyChain(longLeaf, [early.inter], [early.root], new Date(NOW - 6 * HOUR)), /^certificate "CN=inter" \(serial [0-9a-f]+\): not valid before/);
});

test('a chain that does not reach one of the roots', async () => {
  const { root, inter, leaf } = await chain();
  const other = await chain();
  await expectTrustError(verifyChain(leaf, [], [root], new Date(NOW)), /^certificate "spiffe:\/\/example\.org\/web" \(serial [0-9a-f]+\): no issuer "CN=inter" among the trusted roots$/);
  await expectTrustError(verifyChain(leaf, [inter], [other.root], new Date(NOW)), /^certificate "CN=inter" \(serial [0-9a-f]+\): no issuer "CN=root" among the trusted roots or intermediates$/);
  await expectTrustError(verifyChain(leaf, [inter], [], new Date(NOW)), /no trusted roots/);
  assert.equal((await opensslVerdict(leaf, [inter], other.root)).ok, false);
});

test('an issuer with the right name but the wrong key: the signature does not verify', async () => {
  const { root, inter } = await chain();
  const impostorKeys = await generateKeyPair('ec-p256');
  const impostor = await createRootCa(impostorKeys, { commonName: 'inter', pathLength: 0, ...window(-HOUR, HOUR) });
  // No AKI in the leaf, so nothing but the signature tells the real "CN=inter" from the impostor.
  const leaf = await opensslSign(await generateKeyPair('ec-p256'), 'leaf', impostor, impostorKeys, 'basicConstraints=critical,CA:FALSE\nauthorityKeyIdentifier=none');
  await expectTrustError(verifyChain(leaf, [inter], [root], soon()), /^certificate "CN=leaf" \(serial 1234\): the signature does not verify with the key of its issuer certificate "CN=inter"/);
  assert.equal((await opensslVerdict(leaf, [inter], root)).ok, false);
});

test('an issuer that is not a CA, and an issuer without keyCertSign', async () => {
  const { root, rootKeys, inter, leaf, leafKeys } = await chain();
  const signedByLeaf = await opensslSign(await generateKeyPair('ec-p256'), 'signed-by-a-leaf', leaf, leafKeys, 'basicConstraints=critical,CA:FALSE\nauthorityKeyIdentifier=keyid');
  await expectTrustError(verifyChain(signedByLeaf, [leaf, inter], [root], soon()), /^certificate "spiffe:\/\/example\.org\/web" \(serial [0-9a-f]+\), the issuer of certificate "CN=signed-by-a-leaf" \(serial 1234\), is not a CA/);
  assert.match((await opensslVerdict(signedByLeaf, [leaf, inter], root)).output, /invalid CA certificate/);

  const noSignKeys = await generateKeyPair('ec-p256');
  const noSign = await opensslSign(noSignKeys, 'no-cert-sign', root, rootKeys, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature\nauthorityKeyIdentifier=keyid');
  const below = await opensslSign(await generateKeyPair('ec-p256'), 'below', noSign, noSignKeys, 'basicConstraints=critical,CA:FALSE\nauthorityKeyIdentifier=keyid');
  await expectTrustError(verifyChain(below, [noSign], [root], soon()), /^certificate "CN=no-cert-sign" \(serial 1234\) may not sign certificates \(keyUsage lacks keyCertSign\)$/);
  assert.equal((await opensslVerdict(below, [noSign], root)).ok, false);
});

test('pathLen: a CA with pathLen 0 may not have an intermediate CA below it', async () => {
  const rootKeys = await generateKeyPair('ec-p256');
  const root = await createRootCa(rootKeys, { commonName: 'root0', pathLength: 0, ...window(-HOUR, HOUR) });
  const interKeys = await generateKeyPair('ec-p256');
  // keymesh refuses to make this intermediate; OpenSSL does not.
  const inter = await opensslSign(interKeys, 'inter-under-root0', root, rootKeys, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nauthorityKeyIdentifier=keyid');
  const leaf = await issueLeaf({ publicKey: (await generateKeyPair('ec-p256')).publicKey, issuerCert: inter, issuerKeys: interKeys, uris: ['spiffe://example.org/deep'], dnsNames: [], ...window(-HOUR, HOUR) });
  await expectTrustError(verifyChain(leaf, [inter], [root], soon()), /^certificate "CN=root0" \(serial [0-9a-f]+\) has pathLen 0 but 1 intermediate CA certificate\(s\) below it$/);
  assert.match((await opensslVerdict(leaf, [inter], root)).output, /path length constraint exceeded/);
  // The intermediate itself is fine: nothing sits between it and the root.
  await verifyChain(inter, [], [root], soon());
});

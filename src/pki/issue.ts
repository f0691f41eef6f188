// Signing certificates: self-signed roots, intermediates and leaves (TLS server+client, SPIFFE SVIDs or
// file certificates). Each function checks its request, builds the extensions RFC 5280 and the SPIFFE
// X.509-SVID spec ask for, and signs with the issuer's key.
import type { Extension, X509Certificate } from '@peculiar/x509';
import { randomBytes } from 'node:crypto';
import { BadRequestError } from '../errors/index.ts';
import { ALGORITHMS } from './algorithms.ts';
import type { CaRequest, CryptoKey, KeyPair, LeafRequest } from './api.ts';
import { authorityKeyIdentifier, sanExtension, subjectKeyIdentifier } from './extensions.ts';
import { keyTypeOf } from './keys.ts';
import { subtle, x509 } from './provider.ts';
import { dnsNameProblem, uriProblem } from './san.ts';

const { digitalSignature, keyEncipherment, keyCertSign, cRLSign } = x509.KeyUsageFlags;

export async function createRootCa(keys: KeyPair, req: CaRequest): Promise<X509Certificate> {
  checkCaRequest(req);
  return x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: newSerial(),
    name: [{ CN: [req.commonName] }],
    notBefore: req.notBefore,
    notAfter: req.notAfter,
    keys: { privateKey: keys.privateKey, publicKey: keys.publicKey },
    signingAlgorithm: ALGORITHMS[keys.type].sign,
    extensions: await caExtensions(keys.publicKey, req),
  });
}

export async function issueIntermediateCa(publicKey: CryptoKey, issuerCert: X509Certificate, issuerKeys: KeyPair, req: CaRequest): Promise<X509Certificate> {
  checkCaRequest(req);
  keyTypeOf(publicKey);
  const issuerPathLength = checkIssuer(issuerCert);
  if (issuerPathLength !== undefined && issuerPathLength <= req.pathLength) {
    throw new BadRequestError(`issuer "${issuerCert.subject}" has pathLen ${issuerPathLength}, so it may not sign a CA with pathLen ${req.pathLength}`);
  }
  const notAfter = capToIssuer(req.notBefore, req.notAfter, issuerCert);
  return x509.X509CertificateGenerator.create({
    serialNumber: newSerial(),
    subject: [{ CN: [req.commonName] }],
    issuer: issuerCert.subjectName,
    notBefore: req.notBefore,
    notAfter,
    publicKey,
    signingKey: issuerKeys.privateKey,
    signingAlgorithm: ALGORITHMS[issuerKeys.type].sign,
    extensions: [...(await caExtensions(publicKey, req)), await authorityKeyIdentifier(issuerCert)],
  });
}

export async function issueLeaf(req: LeafRequest): Promise<X509Certificate> {
  const keyType = keyTypeOf(req.publicKey);
  checkIssuer(req.issuerCert);
  if (req.uris.length + req.dnsNames.length === 0) throw new BadRequestError('a leaf certificate needs at least one URI or DNS subject alternative name');
  for (const uri of req.uris) {
    const problem = uriProblem(uri);
    if (problem) throw new BadRequestError(`URI ${JSON.stringify(uri)}: ${problem}`);
  }
  for (const dns of req.dnsNames) {
    const problem = dnsNameProblem(dns);
    if (problem) throw new BadRequestError(`DNS name ${JSON.stringify(dns)}: ${problem}`);
  }
  if (req.serial !== undefined && !/^(?!0+$)[0-9a-fA-F]{1,40}$/.test(req.serial)) {
    throw new BadRequestError(`serial ${JSON.stringify(req.serial)}: expected a positive hexadecimal number of at most 20 bytes`);
  }
  const notAfter = capToIssuer(req.notBefore, req.notAfter, req.issuerCert);
  // keyEncipherment only means something for RSA keys (RSA key exchange); ECDSA keys only sign.
  const usages = keyType.startsWith('rsa') ? digitalSignature | keyEncipherment : digitalSignature;
  return x509.X509CertificateGenerator.create({
    serialNumber: req.serial ?? newSerial(),
    ...(req.commonName ? { subject: [{ CN: [req.commonName] }] } : {}),
    issuer: req.issuerCert.subjectName,
    notBefore: req.notBefore,
    notAfter,
    publicKey: req.publicKey,
    signingKey: req.issuerKeys.privateKey,
    signingAlgorithm: ALGORITHMS[req.issuerKeys.type].sign,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usages, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
      await subjectKeyIdentifier(req.publicKey),
      await authorityKeyIdentifier(req.issuerCert),
      sanExtension(req.uris, req.dnsNames, !req.commonName),
    ],
  });
}

/**
 * 128 random bits as lower-case hex. The first byte is never zero, so the hex reads back unchanged from
 * the certificate (X509Certificate.serialNumber drops leading zero bytes) and CRL lookups match.
 */
export function newSerial(): string {
  for (;;) {
    const bytes = randomBytes(16);
    if (bytes[0] !== 0) return bytes.toString('hex');
  }
}

/** True when `keys` is the key pair of `cert`: same public key, and the private key signs for it. */
export async function certificateMatchesKey(cert: X509Certificate, keys: KeyPair): Promise<boolean> {
  const alg = ALGORITHMS[keys.type];
  let certKey: CryptoKey;
  try {
    certKey = await cert.publicKey.export(alg.import, ['verify']);
  } catch {
    return false; // a different key type
  }
  const [a, b] = await Promise.all([subtle.exportKey('spki', certKey), subtle.exportKey('spki', keys.publicKey)]);
  if (!Buffer.from(a).equals(Buffer.from(b))) return false;
  const challenge = randomBytes(32);
  const signature = await subtle.sign(alg.sign, keys.privateKey, challenge);
  return subtle.verify(alg.sign, certKey, signature, challenge);
}

async function caExtensions(publicKey: CryptoKey, req: CaRequest): Promise<Extension[]> {
  const extensions: Extension[] = [
    new x509.BasicConstraintsExtension(true, req.pathLength, true),
    new x509.KeyUsagesExtension(keyCertSign | cRLSign, true),
    await subjectKeyIdentifier(publicKey),
  ];
  if (req.uri !== undefined) extensions.push(sanExtension([req.uri], [], false));
  return extensions;
}

function checkCaRequest(req: CaRequest): void {
  if (req.commonName.trim() === '') throw new BadRequestError('a CA certificate needs a common name');
  if (!Number.isInteger(req.pathLength) || req.pathLength < 0) throw new BadRequestError(`pathLength ${req.pathLength}: expected a whole number, 0 or more`);
  if (req.uri !== undefined) {
    const problem = uriProblem(req.uri);
    if (problem) throw new BadRequestError(`URI ${JSON.stringify(req.uri)}: ${problem}`);
  }
  checkWindow(req.notBefore, req.notAfter);
}

function checkWindow(notBefore: Date, notAfter: Date): void {
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) throw new BadRequestError('validity dates must be valid dates');
  if (notAfter <= notBefore) throw new BadRequestError(`notAfter ${notAfter.toISOString()} must be later than notBefore ${notBefore.toISOString()}`);
}

/** The issuer must be a CA allowed to sign certificates; returns its pathLen (undefined = unlimited). */
function checkIssuer(issuer: X509Certificate): number | undefined {
  const bc = issuer.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new BadRequestError(`issuer "${issuer.subject}" is not a CA certificate (basicConstraints CA:TRUE is missing)`);
  const ku = issuer.getExtension(x509.KeyUsagesExtension);
  if (ku && !(ku.usages & keyCertSign)) throw new BadRequestError(`issuer "${issuer.subject}" may not sign certificates (keyUsage lacks keyCertSign)`);
  return bc.pathLength;
}

/** A certificate cannot outlive its issuer (STYLE.md P8): notAfter is cut to the issuer's notAfter. */
function capToIssuer(notBefore: Date, notAfter: Date, issuer: X509Certificate): Date {
  checkWindow(notBefore, notAfter);
  const capped = notAfter > issuer.notAfter ? issuer.notAfter : notAfter;
  if (capped <= notBefore) throw new BadRequestError(`issuer "${issuer.subject}" expires at ${issuer.notAfter.toISOString()}, before the requested notBefore`);
  return capped;
}

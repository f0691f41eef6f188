// What keymesh reads out of certificates, by extension OID, so src/ca needs @peculiar/x509 only for types.
import type { BasicConstraintsExtension, KeyUsagesExtension, SubjectAlternativeNameExtension, X509Certificate } from '@peculiar/x509';

const SAN = '2.5.29.17';
const BASIC_CONSTRAINTS = '2.5.29.19';
const KEY_USAGE = '2.5.29.15';
const KEY_CERT_SIGN = 32;
const CRL_SIGN = 64;

export function uriSans(cert: X509Certificate): string[] {
  return sans(cert, 'url');
}

export function dnsSans(cert: X509Certificate): string[] {
  return sans(cert, 'dns');
}

function sans(cert: X509Certificate, type: string): string[] {
  const ext = cert.getExtension<SubjectAlternativeNameExtension>(SAN);
  return ext ? ext.names.items.filter((n) => n.type === type).map((n) => n.value) : [];
}

/** basicConstraints CA:TRUE, and keyCertSign when a key usage extension is present. */
export function caCertificateProblem(cert: X509Certificate): string | null {
  const bc = cert.getExtension<BasicConstraintsExtension>(BASIC_CONSTRAINTS);
  if (!bc?.ca) return 'it is not a CA certificate (basicConstraints CA:TRUE is missing)';
  const ku = cert.getExtension<KeyUsagesExtension>(KEY_USAGE);
  if (ku && !(ku.usages & KEY_CERT_SIGN)) return 'its key usage does not allow signing certificates (keyCertSign)';
  return null;
}

/**
 * A CA keymesh signs with also signs its CRLs (revocation publishes them), so its key usage, when present,
 * must allow cRLSign: otherwise every revocation and every CRL refresh would fail long after the import.
 */
export function crlSignProblem(cert: X509Certificate): string | null {
  const ku = cert.getExtension<KeyUsagesExtension>(KEY_USAGE);
  if (ku && !(ku.usages & CRL_SIGN)) return 'its key usage does not allow signing CRLs (cRLSign), which keymesh needs to publish revocations';
  return null;
}

/** A CA with `casBelow` CA certificates under it in a leaf's path (keymesh's CA counts) must allow that many. */
export function pathLengthProblem(cert: X509Certificate, casBelow: number): string | null {
  const pathLength = cert.getExtension<BasicConstraintsExtension>(BASIC_CONSTRAINTS)?.pathLength;
  if (pathLength === undefined || pathLength >= casBelow) return null;
  return `its pathLen ${pathLength} does not allow ${casBelow} CA certificate(s) below it, so the certificates keymesh signs would not verify`;
}

export function validityProblem(cert: X509Certificate, now: number): string | null {
  if (cert.notAfter.getTime() <= now) return `it expired at ${cert.notAfter.toISOString()}`;
  if (cert.notBefore.getTime() > now) return `it is not valid before ${cert.notBefore.toISOString()}`;
  return null;
}

/** Subject and issuer are the same name (a root, for keymesh's purposes). */
export function isSelfIssued(cert: X509Certificate): boolean {
  return cert.subject === cert.issuer;
}

export function sameCertificate(a: X509Certificate, b: X509Certificate): boolean {
  return Buffer.from(a.rawData).equals(Buffer.from(b.rawData));
}

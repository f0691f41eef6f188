// Certificate extensions built the same way by issue.ts, csr.ts and crl.ts.
import type { Extension, SubjectAlternativeNameExtension, X509Certificate } from '@peculiar/x509';
import { CRLNumber, id_ce_cRLNumber } from '@peculiar/asn1-x509';
import { AsnConvert } from '@peculiar/asn1-schema';
import type { CryptoKey } from './api.ts';
import { x509 } from './provider.ts';

/** RFC 5280 §4.2.1.6: the SAN extension is critical when the subject is empty (SPIFFE SVIDs). */
export function sanExtension(uris: readonly string[], dnsNames: readonly string[], critical: boolean): SubjectAlternativeNameExtension {
  return new x509.SubjectAlternativeNameExtension(
    [...uris.map((value) => ({ type: 'url' as const, value })), ...dnsNames.map((value) => ({ type: 'dns' as const, value }))],
    critical,
  );
}

/**
 * The AKI of certificates and CRLs signed by `issuer`: the issuer's own SKI when it has one, so that path
 * builders (OpenSSL, Envoy) match them byte for byte; otherwise the RFC 5280 SHA-1 of its public key.
 */
export async function authorityKeyIdentifier(issuer: X509Certificate): Promise<Extension> {
  const ski = issuer.getExtension(x509.SubjectKeyIdentifierExtension);
  if (ski) return new x509.AuthorityKeyIdentifierExtension(ski.keyId, false);
  return x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey, false);
}

export async function subjectKeyIdentifier(publicKey: CryptoKey): Promise<Extension> {
  return x509.SubjectKeyIdentifierExtension.create(publicKey, false);
}

/** The CRL number (RFC 5280 §5.2.3). @peculiar/x509 has no class for it; its ASN.1 package does. */
export function crlNumberExtension(n: number): Extension {
  return new x509.Extension(id_ce_cRLNumber, false, AsnConvert.serialize(new CRLNumber(n)));
}

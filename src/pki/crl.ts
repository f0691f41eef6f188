// Certificate revocation lists: v2 CRLs with a CRL number and the issuer's key identifier, so relying
// parties (OpenSSL, Envoy's crl option) can tell successive lists apart and match them to the right CA.
import type { X509Certificate } from '@peculiar/x509';
import { BadRequestError } from '../errors/index.ts';
import { ALGORITHMS } from './algorithms.ts';
import type { CrlEntry, KeyPair } from './api.ts';
import { authorityKeyIdentifier, crlNumberExtension } from './extensions.ts';
import { x509 } from './provider.ts';

export async function buildCrl(
  issuerCert: X509Certificate,
  issuerKeys: KeyPair,
  entries: readonly CrlEntry[],
  thisUpdate: Date,
  nextUpdate: Date,
  crlNumber: number,
): Promise<string> {
  if (!Number.isSafeInteger(crlNumber) || crlNumber < 0) throw new BadRequestError(`CRL number ${crlNumber}: expected a whole number, 0 or more`);
  if (!(nextUpdate > thisUpdate)) throw new BadRequestError('nextUpdate must be later than thisUpdate');
  const ku = issuerCert.getExtension(x509.KeyUsagesExtension);
  if (ku && !(ku.usages & x509.KeyUsageFlags.cRLSign)) throw new BadRequestError(`issuer "${issuerCert.subject}" may not sign CRLs (keyUsage lacks cRLSign)`);
  const seen = new Set<string>();
  for (const entry of entries) {
    if (!/^(?!0+$)[0-9a-fA-F]{1,40}$/.test(entry.serial)) throw new BadRequestError(`revoked serial ${JSON.stringify(entry.serial)}: expected a positive hexadecimal number`);
    const canonical = entry.serial.toLowerCase().replace(/^0+/, '');
    if (seen.has(canonical)) throw new BadRequestError(`serial ${entry.serial} is listed twice`);
    seen.add(canonical);
  }
  const crl = await x509.X509CrlGenerator.create({
    issuer: issuerCert.subjectName,
    thisUpdate,
    nextUpdate,
    signingKey: issuerKeys.privateKey,
    signingAlgorithm: ALGORITHMS[issuerKeys.type].sign,
    extensions: [await authorityKeyIdentifier(issuerCert), crlNumberExtension(crlNumber)],
    entries: entries.map((e) => ({ serialNumber: e.serial, revocationDate: e.revokedAt })),
  });
  // RFC 7468 §5 labels CRLs "X509 CRL", which OpenSSL requires; the library writes "CRL".
  return `${x509.PemConverter.encode(crl.rawData, 'X509 CRL')}\n`;
}

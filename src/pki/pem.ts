// Certificates in and out of PEM. Readers name the file (`what`) and the problem, because the usual
// mistakes are operator mistakes: the key file given as the certificate, a file cut short by a copy-paste.
import type { X509Certificate } from '@peculiar/x509';
import { PemError } from '../errors/index.ts';
import { aBlock, splitPem } from './pem-blocks.ts';
import { x509 } from './provider.ts';

export function parseCertificatePem(pem: string, what: string): X509Certificate {
  const certs = parseCertificateChainPem(pem, what);
  if (certs.length !== 1) throw new PemError(`${what}: expected one certificate, found ${certs.length}`);
  return certs[0] as X509Certificate;
}

export function parseCertificateChainPem(pem: string, what: string): X509Certificate[] {
  const blocks = splitPem(pem, (problem) => new PemError(`${what}: ${problem}`));
  return blocks.map((block, i) => {
    const which = blocks.length > 1 ? `block ${i + 1} is ` : 'it holds ';
    if (block.label !== 'CERTIFICATE') {
      const hint = block.label.includes('PRIVATE KEY') ? ' (is this the key file? private keys do not belong in a certificate file)' : '';
      throw new PemError(`${what}: expected a CERTIFICATE but ${which}${aBlock(block.label)}${hint}`);
    }
    try {
      return new x509.X509Certificate(block.der);
    } catch (e) {
      throw new PemError(`${what}: certificate ${i + 1} is damaged: its content is not a valid X.509 certificate`, { cause: e });
    }
  });
}

/** PEM text of one certificate or a chain in the given order, newline-terminated as files should be. */
export function toPem(certs: X509Certificate | readonly X509Certificate[]): string {
  const list = certs instanceof x509.X509Certificate ? [certs] : (certs as readonly X509Certificate[]);
  return list.map((c) => `${c.toString('pem')}\n`).join('');
}

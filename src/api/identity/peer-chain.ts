// The certificates a TLS client presented, leaf first, as the CA's verifier takes them. Node links the chain
// through `issuerCertificate`; the root links to itself, which ends the walk.
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { X509Certificate } from '@peculiar/x509';
import { x509 } from '../../pki/provider.ts';

/** At most this many certificates are read: a longer chain is not one keymesh issues. */
const MAX_CHAIN = 8;

export function peerChain(socket: TLSSocket): X509Certificate[] {
  const first = socket.getPeerCertificate(true) as Partial<DetailedPeerCertificate>;
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let c: Partial<DetailedPeerCertificate> | undefined = first;
  while (c?.raw && c.fingerprint256 && !seen.has(c.fingerprint256) && chain.length < MAX_CHAIN) {
    seen.add(c.fingerprint256);
    chain.push(new x509.X509Certificate(c.raw));
    c = c.issuerCertificate;
  }
  return chain;
}

// One workload identity (X.509-SVID): the private key, the certificate chain and the trust bundle to
// check peers against, and the check that turns a control-plane response into one (validate, then swap:
// STYLE.md P11). Nothing here is published unless it would work in a TLS handshake right now.
import type { X509Certificate } from '@peculiar/x509';
import { TrustError } from '../errors/index.ts';
import type { KeyPair } from '../pki/api.ts';
import { certificateMatchesKey } from '../pki/issue.ts';
import { parseCertificateChainPem } from '../pki/pem.ts';
import { x509 } from '../pki/provider.ts';
import { verifyChain } from '../pki/verify.ts';

/** What the control plane answers to a bootstrap or renewal. Times are ms since the epoch. */
export interface SvidResponse {
  /** Leaf first, then any intermediates (not the root). */
  readonly certChainPem: string;
  /** The trust domain's root certificates, to verify peers (and this chain) against. */
  readonly bundlePem: string;
  readonly spiffeId: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

/**
 * A validated identity. The private key is held in #private fields behind getters, so console.log,
 * util.inspect and JSON.stringify of an Svid never print it.
 */
export class Svid {
  readonly spiffeId: string;
  readonly certChainPem: string;
  readonly bundlePem: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** The leaf's serial number (hex), for logs and status. */
  readonly serial: string;
  readonly chain: readonly X509Certificate[];
  readonly bundle: readonly X509Certificate[];
  readonly #keys: KeyPair;
  readonly #keyPem: string;

  constructor(init: { spiffeId: string; certChainPem: string; bundlePem: string; chain: readonly X509Certificate[]; bundle: readonly X509Certificate[]; keys: KeyPair; keyPem: string }) {
    const leaf = init.chain[0] as X509Certificate;
    this.spiffeId = init.spiffeId;
    this.certChainPem = init.certChainPem;
    this.bundlePem = init.bundlePem;
    this.chain = init.chain;
    this.bundle = init.bundle;
    this.notBefore = leaf.notBefore.getTime();
    this.notAfter = leaf.notAfter.getTime();
    this.serial = leaf.serialNumber;
    this.#keys = init.keys;
    this.#keyPem = init.keyPem;
  }

  /** The workload's key pair; generated in this process and never sent anywhere. */
  get keys(): KeyPair {
    return this.#keys;
  }

  /** PKCS#8 PEM of the private key, for tls.createSecureContext and the saved state file. */
  get keyPem(): string {
    return this.#keyPem;
  }
}

/**
 * Checks a response against the key this workload generated and turns it into an Svid. Throws a
 * TrustError (or the PemError of a damaged PEM) naming the problem: the chain does not parse, the leaf
 * is for another key, it is not valid at `now` or does not chain to the bundle, or its SPIFFE ID is not
 * the one announced (or the one expected, when given).
 */
export async function validateSvid(keys: KeyPair, keyPem: string, res: SvidResponse, now: number, expectedSpiffeId?: string): Promise<Svid> {
  const chain = parseCertificateChainPem(res.certChainPem, 'SVID certificate chain');
  const bundle = parseCertificateChainPem(res.bundlePem, 'trust bundle');
  const leaf = chain[0] as X509Certificate; // parse fails on an empty file
  // A server that generated the key itself would hand out a certificate for a key it knows: refuse.
  if (!(await certificateMatchesKey(leaf, keys))) throw new TrustError('the SVID certificate is not for the key this workload generated');
  if (leaf.notAfter.getTime() <= now) throw new TrustError(`the SVID certificate expired at ${leaf.notAfter.toISOString()}`);
  await verifyChain(leaf, chain.slice(1), bundle, new Date(now));

  const uris = (leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? []).filter((n) => n.type === 'url').map((n) => n.value);
  const ids = uris.filter((u) => u.startsWith('spiffe://'));
  if (ids.length !== 1) throw new TrustError(`an SVID carries exactly one SPIFFE ID; this certificate has ${ids.length}`);
  const spiffeId = ids[0] as string;
  if (spiffeId !== res.spiffeId) throw new TrustError(`the response names ${res.spiffeId} but the certificate is for ${spiffeId}`);
  if (expectedSpiffeId !== undefined && spiffeId !== expectedSpiffeId) throw new TrustError(`expected an SVID for ${expectedSpiffeId}, got one for ${spiffeId}`);
  // The response's times are a convenience copy of the certificate's; disagreement means a confused server.
  if (Math.abs(res.notAfter - leaf.notAfter.getTime()) >= 1000 || Math.abs(res.notBefore - leaf.notBefore.getTime()) >= 1000) {
    throw new TrustError('the response\'s notBefore/notAfter do not match the certificate');
  }
  return new Svid({ spiffeId, certChainPem: res.certChainPem, bundlePem: res.bundlePem, chain, bundle, keys, keyPem });
}

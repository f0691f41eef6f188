// Renewal's authentication: the SVID a proxy presents over mTLS, mapped back to the identity it proves.
// The certificate must chain to the trust domain's bundle, be within its validity, be one keymesh issued
// and did not revoke, and belong to an identity that is not revoked.
import type { X509Certificate } from '@peculiar/x509';
import { TrustError } from '../errors/index.ts';
import { parseCertificateChainPem } from '../pki/pem.ts';
import { verifyChain } from '../pki/verify.ts';
import { BUNDLE_STATUSES, bundleOf } from './bundles.ts';
import { caCertificates } from './ca-material.ts';
import { sameCertificate, uriSans, validityProblem } from './cert-facts.ts';
import { iso, type CaContext } from './context.ts';
import { parseSpiffeId, type Identity } from './spiffe.ts';
import type { SvidIssuer } from './svid-issuer.ts';
import type { TrustDomains } from './trust-domains.ts';

export interface PeerIdentity extends Identity {
  readonly spiffeId: string;
  readonly trustDomain: string;
  readonly serial: string;
  readonly notAfter: number;
}

export class PeerIdentities {
  readonly #ctx: CaContext;
  readonly #trustDomains: TrustDomains;
  readonly #issuer: SvidIssuer;

  constructor(ctx: CaContext, deps: { trustDomains: TrustDomains; issuer: SvidIssuer }) {
    this.#ctx = ctx;
    this.#trustDomains = deps.trustDomains;
    this.#issuer = deps.issuer;
  }

  /** `presented`: the peer's certificate, or its chain leaf first (PEM or parsed). */
  async identify(presented: string | X509Certificate | readonly X509Certificate[]): Promise<PeerIdentity> {
    const chain = typeof presented === 'string' ? parseCertificateChainPem(presented, 'the peer certificate')
      : Array.isArray(presented) ? [...presented as readonly X509Certificate[]] : [presented as X509Certificate];
    const leaf = chain[0];
    if (!leaf) throw new TrustError('No peer certificate was presented.');
    const uris = uriSans(leaf).filter((u) => u.startsWith('spiffe://'));
    const parsed = uris.length === 1 ? parseSpiffeId(uris[0]!) : undefined;
    if (!parsed) throw new TrustError(`The peer certificate ${leaf.subject || `serial ${leaf.serialNumber}`} is not a keymesh SVID (it has ${uris.length ? uris.join(', ') : 'no SPIFFE ID'}).`);
    const spiffeId = uris[0]!;
    const mesh = await this.#trustDomains.meshOf(parsed.trustDomain);
    if (mesh === undefined) throw new TrustError(`The peer certificate is for trust domain ${parsed.trustDomain}, which no mesh here uses.`);

    const now = this.#ctx.clock.now();
    const expired = validityProblem(leaf, now);
    if (expired) throw new TrustError(`The peer certificate for ${spiffeId} cannot be used: ${expired}. Bootstrap again with a join token.`);
    const cas = await this.#ctx.store.listCas({ trustDomain: parsed.trustDomain, statuses: BUNDLE_STATUSES });
    const bundle = bundleOf(parsed.trustDomain, cas);
    // The proxy may send only its leaf; the CAs' own certificates fill in the chain.
    const intermediates = [...chain.slice(1)];
    for (const ca of cas) for (const c of caCertificates(ca).intermediates) if (!intermediates.some((i) => sameCertificate(i, c))) intermediates.push(c);
    await verifyChain(leaf, intermediates, bundle.anchors, new Date(now));

    const serial = leaf.serialNumber;
    const issued = await this.#ctx.store.getIssued(serial);
    if (!issued || issued.spiffeId !== spiffeId) throw new TrustError(`The peer certificate for ${spiffeId} (serial ${serial}) was not issued by keymesh.`);
    if (issued.revokedAt !== null) throw new TrustError(`The peer certificate for ${spiffeId} (serial ${issued.serial}) was revoked at ${iso(issued.revokedAt)}.`);
    const identity: Identity = { mesh, kind: parsed.kind, name: parsed.name };
    await this.#issuer.checkNotRevoked(identity, spiffeId);
    return { ...identity, spiffeId, trustDomain: parsed.trustDomain, serial: issued.serial, notAfter: leaf.notAfter.getTime() };
  }
}

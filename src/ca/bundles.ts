// Trust bundles: the anchors every proxy of a trust domain trusts. A CA is in its trust domain's bundle
// while it is prepared, active or retiring, which is what lets rotation switch signers without a failed
// handshake. For a CA under a user's root, the root is the anchor.
import type { X509Certificate } from '@peculiar/x509';
import { BadRequestError, ConflictError, NotFoundError } from '../errors/index.ts';
import { toPem } from '../pki/pem.ts';
import type { CaRecord, CaStatus } from '../store/ca-store.ts';
import { isCaArn } from './arns.ts';
import { caCertificates } from './ca-material.ts';
import { sameCertificate } from './cert-facts.ts';
import type { CaContext } from './context.ts';

export const BUNDLE_STATUSES: readonly CaStatus[] = ['prepared', 'active', 'retiring'];

export interface TrustBundle {
  readonly trustDomain: string;
  /** The anchors, PEM, in CA creation order ('' when the trust domain has no CA yet). */
  readonly pem: string;
  readonly anchors: readonly X509Certificate[];
  /** The CAs whose anchors these are. */
  readonly caIds: readonly string[];
}

export class Bundles {
  readonly #ctx: CaContext;

  constructor(ctx: CaContext) {
    this.#ctx = ctx;
  }

  async forTrustDomain(trustDomain: string): Promise<TrustBundle> {
    const cas = await this.#ctx.store.listCas({ trustDomain, statuses: BUNDLE_STATUSES });
    return bundleOf(trustDomain, cas);
  }

  /**
   * The anchors for App Mesh's `validation.trust.acm.certificateAuthorityArns`. A CA ARN stands for its
   * trust domain's CAs, so a spec that names a CA keeps validating across rotations.
   */
  async resolveCaArns(arns: readonly string[]): Promise<string> {
    if (arns.length === 0) throw new BadRequestError('certificateAuthorityArns: at least one CA ARN is required.');
    const domains = new Set<string>();
    for (const arn of arns) {
      if (!isCaArn(arn)) throw new BadRequestError(`"${arn}" is not a certificate authority ARN (arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>).`);
      const ca = await this.#ctx.store.getCaByArn(arn);
      if (!ca) throw new NotFoundError(`No keymesh certificate authority has the ARN ${arn}.`, 'KM_ERR_CA_NOT_FOUND');
      domains.add(ca.trustDomain);
    }
    const anchors: X509Certificate[] = [];
    for (const td of domains) {
      for (const a of (await this.forTrustDomain(td)).anchors) if (!anchors.some((b) => sameCertificate(a, b))) anchors.push(a);
    }
    if (anchors.length === 0) throw new ConflictError(`The certificate authorities ${arns.join(', ')} have no certificate yet (pending an offline signature).`);
    return toPem(anchors);
  }
}

export function bundleOf(trustDomain: string, cas: readonly CaRecord[]): TrustBundle {
  const anchors: X509Certificate[] = [];
  const caIds: string[] = [];
  for (const ca of cas) {
    if (!BUNDLE_STATUSES.includes(ca.status)) continue;
    const { anchor } = caCertificates(ca);
    caIds.push(ca.id);
    if (!anchors.some((a) => sameCertificate(a, anchor))) anchors.push(anchor); // CAs under one root share it
  }
  return { trustDomain, pem: anchors.length ? toPem(anchors) : '', anchors, caIds };
}

// X.509 SVIDs for authenticated identities. Authorization (what this caller may have) is separate from
// signing, so a join token is spent only on a request that will be signed.
import { CsrError, ForbiddenError } from '../errors/index.ts';
import type { ParsedCsr } from '../pki/api.ts';
import { parseCsr } from '../pki/csr.ts';
import { toPem } from '../pki/pem.ts';
import type { Bundles } from './bundles.ts';
import { caCertificates, type CaMaterial } from './ca-material.ts';
import type { CaProvisioning } from './ca-provisioning.ts';
import { iso, type CaContext } from './context.ts';
import { signableUntil, signLeaf } from './leaf-signer.ts';
import { describeIdentity, type Identity } from './spiffe.ts';
import type { TrustDomains } from './trust-domains.ts';
import type { Workload, Workloads } from './workloads.ts';

export interface Svid {
  /** Leaf first, then the CAs between it and the anchor. */
  readonly certChainPem: string;
  /** The trust domain's bundle (anchors), for validating peers. */
  readonly bundlePem: string;
  readonly spiffeId: string;
  /** Milliseconds since the epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** Lowercase hex. */
  readonly serial: string;
  readonly caId: string;
}

/** A CSR checked against the identity it is for; only `sign` turns it into a certificate. */
export interface SvidRequest {
  readonly workload: Workload;
  readonly csr: ParsedCsr;
}

export class SvidIssuer {
  readonly #ctx: CaContext;
  readonly #workloads: Workloads;
  readonly #trustDomains: TrustDomains;
  readonly #provisioning: CaProvisioning;
  readonly #material: CaMaterial;
  readonly #bundles: Bundles;

  constructor(ctx: CaContext, deps: { workloads: Workloads; trustDomains: TrustDomains; provisioning: CaProvisioning; material: CaMaterial; bundles: Bundles }) {
    this.#ctx = ctx;
    this.#workloads = deps.workloads;
    this.#trustDomains = deps.trustDomains;
    this.#provisioning = deps.provisioning;
    this.#material = deps.material;
    this.#bundles = deps.bundles;
  }

  async issue(identity: Identity, csrPem: string): Promise<Svid> {
    return this.sign(await this.authorize(identity, csrPem));
  }

  /**
   * Checks that the identity exists and is not revoked, that the CSR is well signed and asks for nothing
   * this identity may not have (URI SANs must be exactly its SPIFFE ID, DNS SANs among its service
   * discovery names: the SVID gets those whether asked or not), and that the mesh has a CA able to sign.
   */
  async authorize(identity: Identity, csrPem: string): Promise<SvidRequest> {
    const workload = await this.#workloads.resolve(identity);
    await this.checkNotRevoked(workload.identity, workload.spiffeId);
    const csr = await parseCsr(csrPem);
    const foreignUri = csr.uris.find((u) => u !== workload.spiffeId);
    if (foreignUri !== undefined || csr.uris.length > 1) {
      throw new CsrError(`The CSR asks for ${csr.uris.join(', ')} but the caller is ${workload.spiffeId} (${describeIdentity(workload.identity)}).`, 'KM_ERR_CSR_IDENTITY');
    }
    const foreignDns = csr.dnsNames.filter((d) => !workload.dnsNames.includes(d.toLowerCase()));
    if (foreignDns.length) {
      const allowed = workload.dnsNames.length ? `it may have ${workload.dnsNames.join(', ')}` : 'it has no service discovery DNS name';
      throw new CsrError(`The CSR asks for DNS name ${foreignDns.join(', ')}, which ${describeIdentity(workload.identity)} does not serve (${allowed}).`, 'KM_ERR_CSR_DNS');
    }
    // The mesh must be able to sign too (its CA may wait for an offline signature, or have expired): found
    // out here, a join token is not spent on a request that sign() would then refuse. Makes the mesh's
    // first CA, as sign() would.
    const ca = await this.#provisioning.active(workload.identity.mesh);
    signableUntil(ca, caCertificates(ca), this.#ctx.clock.now());
    return { workload, csr };
  }

  async sign(request: SvidRequest): Promise<Svid> {
    const { workload, csr } = request;
    const [settings, ca] = await Promise.all([this.#trustDomains.settingsFor(workload.identity.mesh), this.#provisioning.active(workload.identity.mesh)]);
    const signer = await this.#material.signer(ca);
    const leaf = await signLeaf(this.#ctx, signer, {
      publicKey: csr.publicKey, uris: [workload.spiffeId], dnsNames: workload.dnsNames, ttlMs: settings.svidTtlMs,
      kind: 'svid', mesh: workload.identity.mesh, spiffeId: workload.spiffeId, managedArn: null,
    });
    const bundle = await this.#bundles.forTrustDomain(workload.trustDomain);
    return {
      certChainPem: toPem([leaf.cert, ...leaf.intermediates]), bundlePem: bundle.pem, spiffeId: workload.spiffeId,
      notBefore: leaf.notBefore, notAfter: leaf.notAfter, serial: leaf.serial, caId: leaf.caId,
    };
  }

  /** Revoked identities can neither bootstrap nor renew. */
  async checkNotRevoked(identity: Identity, spiffeId: string): Promise<void> {
    const revoked = await this.#ctx.store.getRevokedIdentity(spiffeId);
    if (revoked) {
      throw new ForbiddenError(
        `${describeIdentity(identity)} (${spiffeId}) was revoked at ${iso(revoked.revokedAt)}${revoked.reason ? ` (${revoked.reason})` : ''}; it can neither bootstrap nor renew until it is reinstated.`,
        'KM_ERR_IDENTITY_REVOKED',
      );
    }
  }
}

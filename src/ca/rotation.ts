// CA rotation without a failed handshake (SPIRE's prepare/activate): the next CA enters the bundle first
// (prepared), signing switches to it only once every connected proxy holds that bundle (activate), and the
// old CA stays in the bundle (retiring) until the last certificate it signed has expired (retireExpired).
import { BadRequestError, ConflictError } from '../errors/index.ts';
import type { CaRecord } from '../store/ca-store.ts';
import type { CaMaterial } from './ca-material.ts';
import type { CaProvisioning } from './ca-provisioning.ts';
import { findCa, type CaContext } from './context.ts';
import type { Revocation } from './revocation.ts';
import type { TrustDomains } from './trust-domains.ts';
import { forEachItem, throwIfFailed, type UpkeepFailure } from './upkeep.ts';

/**
 * Tells rotation whether the proxies have the new bundle. The xDS server implements it from its ACKs; until
 * it exists, `noProxiesYet` answers true (there is no connected proxy that could miss the new bundle).
 */
export interface BundleDistribution {
  /**
   * The connected proxies of the CA's trust domain (as their node ids) that have not ACKed a bundle containing
   * CA `caId` yet; empty when every one has.
   */
  lacking(caId: string): Promise<string[]>;
}

export const noProxiesYet: BundleDistribution = { lacking: async () => [] };

export class Rotation {
  readonly #ctx: CaContext;
  readonly #provisioning: CaProvisioning;
  readonly #trustDomains: TrustDomains;
  readonly #material: CaMaterial;
  readonly #revocation: Revocation;
  readonly #distribution: BundleDistribution;

  constructor(ctx: CaContext, deps: { provisioning: CaProvisioning; trustDomains: TrustDomains; material: CaMaterial; revocation: Revocation; distribution: BundleDistribution }) {
    this.#ctx = ctx;
    this.#provisioning = deps.provisioning;
    this.#trustDomains = deps.trustDomains;
    this.#material = deps.material;
    this.#revocation = deps.revocation;
    this.#distribution = deps.distribution;
  }

  /** Adds a new keymesh root to the trust domain's bundle (prepared). To rotate to your own CA, import it instead. */
  async prepare(trustDomain: string): Promise<CaRecord> {
    const mesh = await this.#meshOf(trustDomain);
    await this.#provisioning.active(mesh); // rotation starts from an active CA
    return this.#provisioning.createRoot(mesh);
  }

  /** Switches issuance to the prepared CA; the old one becomes retiring. Waits for the bundle to reach every proxy unless forced. */
  async activate(trustDomain: string, caRef: string, options: { force?: boolean } = {}): Promise<{ activated: CaRecord; retiring: CaRecord | undefined }> {
    const ca = await this.#caOf(trustDomain, caRef);
    if (ca.status !== 'prepared') {
      const hint = ca.status === 'pending' ? ' Import its signed certificate first.' : '';
      throw new ConflictError(`CA ${ca.id} is ${ca.status}; only a prepared CA can be activated.${hint}`, 'KM_ERR_CA_NOT_PREPARED');
    }
    const lacking = options.force ? [] : await this.#distribution.lacking(ca.id);
    if (lacking.length > 0) {
      const named = lacking.length > 5 ? `${lacking.slice(0, 5).join(', ')} and ${lacking.length - 5} more` : lacking.join(', ');
      throw new ConflictError(
        `Not every connected proxy of trust domain ${trustDomain} has received the bundle with CA ${ca.id} yet (waiting for ${named}); activating now could fail their handshakes. Retry shortly, or force.`,
        'KM_ERR_BUNDLE_NOT_DISTRIBUTED',
      );
    }
    const result = await this.#ctx.store.activateCa(ca.id, this.#ctx.clock.now());
    this.#ctx.events.emit({ type: 'issuer', mesh: ca.mesh, trustDomain, caId: ca.id });
    return result;
  }

  /** Drops a next CA that will not be used (pending or prepared), so another can be prepared. */
  async abandon(caRef: string): Promise<CaRecord> {
    const ca = await findCa(this.#ctx.store, caRef);
    const retired = await this.#ctx.store.setCaStatus(ca.id, ['pending', 'prepared'], 'retired', this.#ctx.clock.now());
    await this.#retired(retired, ca.status === 'prepared');
    return retired;
  }

  /**
   * Retires every retiring CA whose certificates have all expired (or which has expired itself). With
   * `failures` (upkeep), a CA that cannot be retired is recorded there and the others still are.
   */
  async retireExpired(now = this.#ctx.clock.now(), failures?: UpkeepFailure[]): Promise<CaRecord[]> {
    const done: CaRecord[] = [];
    const failed: UpkeepFailure[] = failures ?? [];
    const due = (await this.#ctx.store.listCas({ statuses: ['retiring'] })).filter((ca) => ca.lastIssuedNotAfter <= now || ca.notAfter <= now);
    await forEachItem(due, (ca) => `retire CA ${ca.id}`, async (ca) => {
      const retired = await this.#ctx.store.setCaStatus(ca.id, ['retiring'], 'retired', now);
      await this.#retired(retired, true);
      done.push(retired);
    }, failed);
    if (!failures) throwIfFailed(failed, `retired ${done.map((c) => c.id).join(', ') || 'none'}`);
    return done;
  }

  /** A retired CA signs nothing again: its key file is deleted. */
  async #retired(ca: CaRecord, wasInBundle: boolean): Promise<void> {
    this.#material.forget(ca.id);
    this.#revocation.forget(ca.id);
    await this.#ctx.keys.remove(ca.keyFile);
    if (wasInBundle) this.#ctx.events.emit({ type: 'bundle', mesh: ca.mesh, trustDomain: ca.trustDomain });
  }

  async #meshOf(trustDomain: string): Promise<string> {
    const mesh = await this.#trustDomains.meshOf(trustDomain);
    if (mesh === undefined) throw new BadRequestError(`No mesh has trust domain ${trustDomain} (a mesh claims its trust domain when it gets its first CA).`, 'KM_ERR_TRUST_DOMAIN_UNKNOWN');
    return mesh;
  }

  async #caOf(trustDomain: string, caRef: string): Promise<CaRecord> {
    const ca = await findCa(this.#ctx.store, caRef);
    if (ca.trustDomain !== trustDomain) throw new BadRequestError(`CA ${ca.id} belongs to trust domain ${ca.trustDomain}, not ${trustDomain}.`);
    return ca;
  }
}

// Revocation: of one certificate, or of a whole identity (which also stops it from bootstrapping or
// renewing). Each signing-capable CA publishes a CRL, rebuilt on every change and before half its
// validity has passed; `crl` events tell the xDS server to push it.
import { ConflictError } from '../errors/index.ts';
import { buildCrl } from '../pki/crl.ts';
import type { CaRecord, IssuedCertificate, RevokedIdentity } from '../store/ca-store.ts';
import { BUNDLE_STATUSES } from './bundles.ts';
import type { CaMaterial } from './ca-material.ts';
import { findCa, type CaContext } from './context.ts';
import type { Identity } from './spiffe.ts';
import { forEachItem, throwIfFailed, type UpkeepFailure } from './upkeep.ts';
import type { Workloads } from './workloads.ts';

/**
 * CRL nextUpdate. Short, so a revocation that somehow missed a push still reaches every proxy soon; not too
 * short, because a peer that enforces nextUpdate fails closed if the control plane is away longer than this.
 */
export const DEFAULT_CRL_VALIDITY_MS = 60 * 60 * 1000;

interface CachedCrl {
  readonly pem: string;
  readonly thisUpdate: number;
}

export class Revocation {
  readonly #ctx: CaContext;
  readonly #material: CaMaterial;
  readonly #workloads: Workloads;
  readonly #validityMs: number;
  readonly #crls = new Map<string, CachedCrl>();
  /** Builds in progress per CA, so concurrent readers share one build (and one CRL number). */
  readonly #building = new Map<string, Promise<string>>();

  constructor(ctx: CaContext, deps: { material: CaMaterial; workloads: Workloads }, options: { crlValidityMs?: number } = {}) {
    this.#ctx = ctx;
    this.#material = deps.material;
    this.#workloads = deps.workloads;
    this.#validityMs = options.crlValidityMs ?? DEFAULT_CRL_VALIDITY_MS;
  }

  async revokeCertificate(serial: string): Promise<IssuedCertificate> {
    const before = await this.#ctx.store.getIssued(serial);
    const cert = await this.#ctx.store.revokeCertificate(serial, this.#ctx.clock.now());
    if (before?.revokedAt === null) await this.#changed([cert.caId]);
    return cert;
  }

  /** Revokes the identity and every unexpired certificate it holds; works also after its resource was deleted. */
  async revokeIdentity(identity: Identity, reason = ''): Promise<{ identity: RevokedIdentity; revoked: IssuedCertificate[] }> {
    const { spiffeId } = await this.#workloads.spiffeIdOf(identity);
    const result = await this.#ctx.store.revokeIdentity({ spiffeId, mesh: identity.mesh, reason }, this.#ctx.clock.now());
    await this.#changed([...new Set(result.revoked.map((c) => c.caId))]);
    this.#ctx.events.emit({ type: 'identity', mesh: identity.mesh, spiffeId, revoked: true });
    return result;
  }

  /** Lets the identity bootstrap again with a new join token; its old certificates stay revoked. */
  async unrevokeIdentity(identity: Identity): Promise<boolean> {
    const { spiffeId } = await this.#workloads.spiffeIdOf(identity);
    const done = await this.#ctx.store.unrevokeIdentity(spiffeId);
    if (done) this.#ctx.events.emit({ type: 'identity', mesh: identity.mesh, spiffeId, revoked: false });
    return done;
  }

  /** The CA's current CRL (PEM), rebuilt when it has used up half its validity. */
  async crl(caRef: string): Promise<string> {
    const ca = await findCa(this.#ctx.store, caRef);
    if (!BUNDLE_STATUSES.includes(ca.status)) throw new ConflictError(`CA ${ca.id} is ${ca.status}; only CAs in the trust bundle publish a CRL.`);
    const cached = this.#crls.get(ca.id);
    if (cached && this.#ctx.clock.now() < cached.thisUpdate + this.#validityMs / 2) return cached.pem;
    return this.#rebuild(ca);
  }

  /** Concatenated CRLs of every CA in a trust domain's bundle (what a validation context carries). */
  async crlsOf(trustDomain: string): Promise<string> {
    const cas = await this.#ctx.store.listCas({ trustDomain, statuses: BUNDLE_STATUSES });
    return (await Promise.all(cas.map((ca) => this.crl(ca.id)))).join('');
  }

  /**
   * Rebuilds every CRL close to its nextUpdate (periodic upkeep) and returns the CAs whose CRL was rebuilt.
   * With `failures`, a CRL that cannot be rebuilt is recorded there and the others still are.
   */
  async refreshDue(failures?: UpkeepFailure[]): Promise<string[]> {
    const now = this.#ctx.clock.now();
    const refreshed: string[] = [];
    const failed: UpkeepFailure[] = failures ?? [];
    const due = (await this.#ctx.store.listCas({ statuses: BUNDLE_STATUSES })).filter((ca) => {
      const cached = this.#crls.get(ca.id);
      return !cached || now >= cached.thisUpdate + this.#validityMs / 2;
    });
    await forEachItem(due, (ca) => `refresh the CRL of CA ${ca.id}`, async (ca) => {
      await this.#rebuild(ca);
      refreshed.push(ca.id);
      this.#emit(ca);
    }, failed);
    if (!failures) throwIfFailed(failed, `refreshed the CRLs of ${refreshed.join(', ') || 'no CA'}`);
    return refreshed;
  }

  forget(caId: string): void {
    this.#crls.delete(caId);
  }

  async #changed(caIds: readonly string[]): Promise<void> {
    for (const id of caIds) {
      const ca = await this.#ctx.store.getCa(id);
      if (!ca || !BUNDLE_STATUSES.includes(ca.status)) continue;
      await this.#rebuild(ca, true);
      this.#emit(ca);
    }
  }

  /**
   * Readers share a build in progress; a change (`fresh`) builds again after it, so the CRL it publishes
   * includes the revocation that was just committed.
   */
  #rebuild(ca: CaRecord, fresh = false): Promise<string> {
    const inFlight = this.#building.get(ca.id);
    if (inFlight && !fresh) return inFlight;
    const build = (inFlight ?? Promise.resolve('')).catch(() => '').then(() => this.#build(ca));
    this.#building.set(ca.id, build);
    const done = () => {
      if (this.#building.get(ca.id) === build) this.#building.delete(ca.id);
    };
    build.then(done, done);
    return build;
  }

  async #build(ca: CaRecord): Promise<string> {
    const now = this.#ctx.clock.now();
    const signer = await this.#material.signer(ca);
    // Expired certificates leave the CRL: a peer refuses them anyway.
    const revoked = await this.#ctx.store.listIssued({ caId: ca.id, revoked: true, unexpiredAt: now });
    const number = await this.#ctx.store.nextCrlNumber(ca.id);
    const thisUpdate = Math.floor(now / 1000) * 1000;
    const entries = revoked.map((c) => ({ serial: c.serial, revokedAt: new Date(c.revokedAt!) }));
    const pem = await buildCrl(signer.cert, signer.keys, entries, new Date(thisUpdate), new Date(thisUpdate + this.#validityMs), number);
    this.#crls.set(ca.id, { pem, thisUpdate });
    return pem;
  }

  #emit(ca: CaRecord): void {
    this.#ctx.events.emit({ type: 'crl', mesh: ca.mesh, trustDomain: ca.trustDomain, caId: ca.id });
  }
}

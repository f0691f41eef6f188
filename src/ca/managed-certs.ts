// ACM-style managed certificates (seed 002): keymesh makes and keeps the key, issues the certificate from a
// mesh's CA, renews it once two thirds of its lifetime have passed, and resolves its ARN for listeners'
// `tls.certificate.acm.certificateArn`. The key goes only to the in-process SDS server, never to an API.
import { randomBytes, randomUUID } from 'node:crypto';
import { BadRequestError, NotFoundError } from '../errors/index.ts';
import type { KeyPair } from '../pki/api.ts';
import { generateKeyPair } from '../pki/keys.ts';
import { toPem } from '../pki/pem.ts';
import { dnsNameProblem } from '../pki/san.ts';
import type { CaRecord, ManagedCertificateRecord } from '../store/ca-store.ts';
import { certificateArn } from './arns.ts';
import type { CaMaterial } from './ca-material.ts';
import type { CaProvisioning } from './ca-provisioning.ts';
import { findCa, type CaContext } from './context.ts';
import { signLeaf } from './leaf-signer.ts';
import { checkKeyType, type TrustDomains } from './trust-domains.ts';
import { forEachItem, throwIfFailed, type UpkeepFailure } from './upkeep.ts';

export const DEFAULT_MANAGED_VALIDITY_MS = 30 * 24 * 60 * 60 * 1000;
export const MIN_MANAGED_VALIDITY_MS = 60 * 60 * 1000;
/** ACM's own limit on names per certificate. */
const MAX_NAMES = 100;

export interface CertificateRequest {
  mesh: string;
  /** The CA to issue from (`arn:aws:acm-pca:...`); it must belong to `mesh`. */
  caArn: string;
  domainName: string;
  subjectAlternativeNames?: readonly string[];
  /** Default 30 days; capped by the CA's own expiry. */
  validityMs?: number;
  /** Default: the mesh's key type. */
  keyType?: string;
}

/** What APIs may show about a managed certificate: everything but the key. */
export interface ManagedCertificateView {
  readonly arn: string;
  readonly mesh: string;
  readonly caArn: string;
  readonly domainName: string;
  readonly subjectAlternativeNames: readonly string[];
  readonly keyType: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly createdAt: number;
  readonly renewedAt: number | null;
  /** Leaf first, then the CAs up to (not including) the anchor. */
  readonly certChainPem: string;
}

export class ManagedCertificates {
  readonly #ctx: CaContext;
  readonly #provisioning: CaProvisioning;
  readonly #trustDomains: TrustDomains;
  readonly #material: CaMaterial;

  constructor(ctx: CaContext, deps: { provisioning: CaProvisioning; trustDomains: TrustDomains; material: CaMaterial }) {
    this.#ctx = ctx;
    this.#provisioning = deps.provisioning;
    this.#trustDomains = deps.trustDomains;
    this.#material = deps.material;
  }

  async request(req: CertificateRequest): Promise<ManagedCertificateView> {
    const names = checkNames(req.domainName, req.subjectAlternativeNames ?? []);
    const validityMs = req.validityMs ?? DEFAULT_MANAGED_VALIDITY_MS;
    if (!Number.isInteger(validityMs) || validityMs < MIN_MANAGED_VALIDITY_MS) {
      throw new BadRequestError(`validityMs must be a whole number of milliseconds, at least ${MIN_MANAGED_VALIDITY_MS} (1 hour); got ${validityMs}.`);
    }
    const named = await findCa(this.#ctx.store, req.caArn);
    if (named.mesh !== req.mesh) throw new BadRequestError(`Certificate authority ${req.caArn} belongs to mesh ${named.mesh}, not ${req.mesh}.`);
    const keyType = req.keyType === undefined ? (await this.#trustDomains.settingsFor(req.mesh)).keyType : checkKeyType(req.keyType);
    const id = randomUUID();
    const arn = certificateArn(this.#ctx.region, this.#ctx.account, id);
    const issued = await this.#issue(req.mesh, arn, id, keyType, names, validityMs, 1);
    const record = await this.#ctx.store.createManagedCertificate({
      arn, id, mesh: req.mesh, domainName: names[0]!, subjectAlternativeNames: names, validityMs, createdAt: this.#ctx.clock.now(), renewedAt: null, rev: 0, ...issued,
    }).catch(async (e: unknown) => {
      await this.#ctx.keys.remove(issued.keyFile);
      throw e;
    });
    this.#ctx.events.emit({ type: 'managed-certificate', mesh: record.mesh, arn });
    return this.#view(record);
  }

  async describe(arn: string): Promise<ManagedCertificateView> {
    return this.#view(await this.#get(arn));
  }

  async list(mesh?: string): Promise<ManagedCertificateView[]> {
    const records = await this.#ctx.store.listManagedCertificates(mesh === undefined ? {} : { mesh });
    return Promise.all(records.map((r) => this.#view(r)));
  }

  /** For `certificate.acm.certificateArn`: the chain to serve (no key). */
  async resolveCertificateArn(arn: string): Promise<ManagedCertificateView> {
    return this.describe(arn);
  }

  /** The private key, for the in-process SDS server only. Never send it through the admin API. */
  async privateKeyFor(arn: string): Promise<KeyPair> {
    return this.#ctx.keys.load((await this.#get(arn)).keyFile);
  }

  /**
   * Re-issues (with a new key) every certificate past two thirds of its lifetime, or signed by a CA that no
   * longer signs for its mesh (so a rotation moves managed certificates along). Returns the renewed ARNs.
   * With `failures` (upkeep), a certificate that cannot be renewed is recorded there and the others still are.
   */
  async renewDue(now = this.#ctx.clock.now(), failures?: UpkeepFailure[]): Promise<string[]> {
    const renewed: string[] = [];
    const failed: UpkeepFailure[] = failures ?? [];
    const signing = new Map<string, CaRecord | undefined>();
    const due: ManagedCertificateRecord[] = [];
    for (const m of await this.#ctx.store.listManagedCertificates()) {
      if (!signing.has(m.mesh)) signing.set(m.mesh, (await this.#ctx.store.listCas({ mesh: m.mesh, statuses: ['active'] }))[0]);
      const active = signing.get(m.mesh);
      const aged = now >= m.notBefore + ((m.notAfter - m.notBefore) * 2) / 3;
      if (aged || (active && active.id !== m.caId)) due.push(m);
    }
    await forEachItem(due, (m) => `renew ${m.arn}`, async (m) => {
      await this.renew(m.arn);
      renewed.push(m.arn);
    }, failed);
    if (!failures) throwIfFailed(failed, `renewed ${renewed.join(', ') || 'none'}`);
    return renewed;
  }

  /** Re-issues one certificate now, with a new key, from the mesh's active CA. */
  async renew(arn: string): Promise<ManagedCertificateView> {
    const current = await this.#get(arn);
    const issued = await this.#issue(current.mesh, arn, current.id, current.keyType, current.subjectAlternativeNames, current.validityMs, current.rev + 1);
    let updated: ManagedCertificateRecord;
    try {
      updated = await this.#ctx.store.updateManagedCertificate({ ...current, ...issued, renewedAt: this.#ctx.clock.now() }, current.rev);
    } catch (e) {
      await this.#ctx.keys.remove(issued.keyFile); // lost a race with another renewal: its key stays
      throw e;
    }
    await this.#ctx.keys.remove(current.keyFile); // after the switch, so a reader never finds the record's key missing
    this.#ctx.events.emit({ type: 'managed-certificate', mesh: updated.mesh, arn });
    return this.#view(updated);
  }

  async delete(arn: string): Promise<void> {
    const gone = await this.#ctx.store.deleteManagedCertificate(arn);
    await this.#ctx.keys.remove(gone.keyFile);
    this.#ctx.events.emit({ type: 'managed-certificate', mesh: gone.mesh, arn });
  }

  /** A new key (in its own file) and a certificate for it from the mesh's active CA. */
  async #issue(mesh: string, arn: string, id: string, keyType: string, names: readonly string[], validityMs: number, generation: number) {
    const ca = await this.#provisioning.active(mesh);
    const signer = await this.#material.signer(ca);
    const keys = await generateKeyPair(checkKeyType(keyType));
    // Unique per attempt, not just per generation: two renewals racing from one revision must not write the
    // same file, or the loser's cleanup would delete the key of the certificate the winner stored.
    const keyFile = `cert-${id}-${generation}-${randomBytes(4).toString('hex')}.key.pem`;
    await this.#ctx.keys.save(keyFile, keys);
    try {
      const leaf = await signLeaf(this.#ctx, signer, {
        publicKey: keys.publicKey, commonName: names[0]!.slice(0, 64), uris: [], dnsNames: names, ttlMs: validityMs,
        kind: 'managed', mesh, spiffeId: null, managedArn: arn,
      });
      return {
        caId: ca.id, keyType: keys.type, keyFile, certPem: toPem(leaf.cert), chainPem: leaf.intermediates.length ? toPem(leaf.intermediates) : '',
        serial: leaf.serial, notBefore: leaf.notBefore, notAfter: leaf.notAfter,
      };
    } catch (e) {
      await this.#ctx.keys.remove(keyFile);
      throw e;
    }
  }

  async #get(arn: string): Promise<ManagedCertificateRecord> {
    const m = await this.#ctx.store.getManagedCertificate(arn);
    if (!m) throw new NotFoundError(`No keymesh managed certificate has the ARN ${arn}.`, 'KM_ERR_CERTIFICATE_NOT_FOUND');
    return m;
  }

  async #view(m: ManagedCertificateRecord): Promise<ManagedCertificateView> {
    const ca = await this.#ctx.store.getCa(m.caId);
    return {
      arn: m.arn, mesh: m.mesh, caArn: ca?.arn ?? '', domainName: m.domainName, subjectAlternativeNames: [...m.subjectAlternativeNames],
      keyType: m.keyType, serial: m.serial, notBefore: m.notBefore, notAfter: m.notAfter, createdAt: m.createdAt, renewedAt: m.renewedAt,
      certChainPem: m.certPem + m.chainPem,
    };
  }
}

/** domainName first, then the other names once each; every one a DNS name (a leading wildcard label allowed). */
function checkNames(domainName: string, sans: readonly string[]): string[] {
  const names = [...new Set([domainName, ...sans].map((n) => n.toLowerCase()))];
  if (names.length > MAX_NAMES) throw new BadRequestError(`A certificate holds at most ${MAX_NAMES} names; got ${names.length}.`);
  for (const n of names) {
    const problem = dnsNameProblem(n);
    if (problem) throw new BadRequestError(`"${n}" cannot be a certificate name: ${problem}.`);
  }
  return names;
}


// An in-memory CaStore for tests. Each method checks and applies its change without awaiting in between, so
// it is as atomic as SQLite's transactions; records are cloned in and out, as in MemoryStore.
import { ConflictError, NotFoundError, StoreError } from '../../errors/index.ts';
import {
  caSlotMessage, checkCaTransition, NEXT_STATUSES, normalizeSerial, statusTimeField,
  type CaFilter, type CaRecord, type CaSettings, type CaStatus, type CaStore, type IssuedCertificate, type IssuedFilter,
  type JoinTokenRecord, type ManagedCertificateRecord, type RevokedIdentity,
} from '../ca-store.ts';

export class MemoryCaStore implements CaStore {
  readonly #settings = new Map<string, CaSettings>();
  readonly #cas = new Map<string, CaRecord>();
  readonly #crlNumbers = new Map<string, number>();
  readonly #issued = new Map<string, IssuedCertificate>();
  readonly #revokedIdentities = new Map<string, RevokedIdentity>();
  readonly #tokens = new Map<string, JoinTokenRecord>();
  readonly #managed = new Map<string, ManagedCertificateRecord>();
  #closed = false;

  async getSettings(mesh: string): Promise<CaSettings | undefined> {
    this.#checkOpen();
    return clone(this.#settings.get(mesh));
  }

  async getSettingsByTrustDomain(trustDomain: string): Promise<CaSettings | undefined> {
    this.#checkOpen();
    return clone([...this.#settings.values()].find((s) => s.trustDomain === trustDomain));
  }

  async putSettings(settings: CaSettings): Promise<CaSettings> {
    this.#checkOpen();
    const other = [...this.#settings.values()].find((s) => s.trustDomain === settings.trustDomain && s.mesh !== settings.mesh);
    if (other) throw new ConflictError(`Trust domain ${settings.trustDomain} already belongs to mesh ${other.mesh}.`);
    this.#settings.set(settings.mesh, clone(settings));
    return clone(settings);
  }

  async createCa(record: CaRecord): Promise<CaRecord> {
    this.#checkOpen();
    if (this.#cas.has(record.id)) throw new ConflictError(`CA ${record.id} already exists.`);
    if ([...this.#cas.values()].some((c) => c.arn === record.arn)) throw new ConflictError(`CA ${record.arn} already exists.`);
    this.#checkSlots(record.trustDomain, record.status, record.id);
    this.#cas.set(record.id, clone(record));
    return clone(record);
  }

  async getCa(id: string): Promise<CaRecord | undefined> {
    this.#checkOpen();
    return clone(this.#cas.get(id));
  }

  async getCaByArn(arn: string): Promise<CaRecord | undefined> {
    this.#checkOpen();
    return clone([...this.#cas.values()].find((c) => c.arn === arn));
  }

  async listCas(filter: CaFilter = {}): Promise<CaRecord[]> {
    this.#checkOpen();
    return [...this.#cas.values()]
      .filter((c) => (filter.mesh === undefined || c.mesh === filter.mesh)
        && (filter.trustDomain === undefined || c.trustDomain === filter.trustDomain)
        && (filter.statuses === undefined || filter.statuses.includes(c.status)))
      .sort((a, b) => a.createdAt - b.createdAt || cmp(a.id, b.id))
      .map((c) => clone(c));
  }

  async setCaStatus(id: string, from: readonly CaStatus[], to: CaStatus, at: number): Promise<CaRecord> {
    this.#checkOpen();
    const ca = this.#caIn(id, from, to);
    this.#checkSlots(ca.trustDomain, to, id);
    const field = statusTimeField(to);
    const next: CaRecord = { ...ca, status: to, updatedAt: at, ...(field ? { [field]: at } : {}) };
    this.#cas.set(id, next);
    return clone(next);
  }

  async completePendingCa(id: string, signed: { certPem: string; chainPem: string; notBefore: number; notAfter: number; status: 'prepared' | 'active' }, at: number): Promise<CaRecord> {
    this.#checkOpen();
    const ca = this.#caIn(id, ['pending'], signed.status);
    this.#checkSlots(ca.trustDomain, signed.status, id);
    const next: CaRecord = { ...ca, ...signed, updatedAt: at, ...(signed.status === 'active' ? { activatedAt: at } : {}) };
    this.#cas.set(id, next);
    return clone(next);
  }

  async activateCa(id: string, at: number): Promise<{ activated: CaRecord; retiring: CaRecord | undefined }> {
    this.#checkOpen();
    const ca = this.#caIn(id, ['prepared'], 'active');
    const current = [...this.#cas.values()].find((c) => c.trustDomain === ca.trustDomain && c.status === 'active');
    let retiring: CaRecord | undefined;
    if (current) {
      retiring = { ...current, status: 'retiring', retiringSince: at, updatedAt: at };
      this.#cas.set(current.id, retiring);
    }
    const activated: CaRecord = { ...ca, status: 'active', activatedAt: at, updatedAt: at };
    this.#cas.set(id, activated);
    return { activated: clone(activated), retiring: clone(retiring) };
  }

  async nextCrlNumber(caId: string): Promise<number> {
    this.#checkOpen();
    if (!this.#cas.has(caId)) throw new NotFoundError(`CA ${caId} does not exist.`);
    const n = (this.#crlNumbers.get(caId) ?? 0) + 1;
    this.#crlNumbers.set(caId, n);
    return n;
  }

  async recordIssued(cert: IssuedCertificate): Promise<void> {
    this.#checkOpen();
    const serial = normalizeSerial(cert.serial);
    if (this.#issued.has(serial)) throw new ConflictError(`A certificate with serial ${serial} was already issued.`);
    const ca = this.#cas.get(cert.caId);
    if (!ca) throw new NotFoundError(`CA ${cert.caId} does not exist.`);
    this.#issued.set(serial, { ...clone(cert), serial });
    if (cert.notAfter > ca.lastIssuedNotAfter) this.#cas.set(ca.id, { ...ca, lastIssuedNotAfter: cert.notAfter });
  }

  async getIssued(serial: string): Promise<IssuedCertificate | undefined> {
    this.#checkOpen();
    return clone(this.#issued.get(normalizeSerial(serial)));
  }

  async listIssued(filter: IssuedFilter): Promise<IssuedCertificate[]> {
    this.#checkOpen();
    return [...this.#issued.values()]
      .filter((c) => (filter.caId === undefined || c.caId === filter.caId)
        && (filter.spiffeId === undefined || c.spiffeId === filter.spiffeId)
        && (filter.managedArn === undefined || c.managedArn === filter.managedArn)
        && (filter.revoked === undefined || (c.revokedAt !== null) === filter.revoked)
        && (filter.unexpiredAt === undefined || c.notAfter > filter.unexpiredAt))
      .sort((a, b) => a.issuedAt - b.issuedAt || cmp(a.serial, b.serial))
      .map((c) => clone(c));
  }

  async revokeCertificate(serial: string, at: number): Promise<IssuedCertificate> {
    this.#checkOpen();
    const key = normalizeSerial(serial);
    const cert = this.#issued.get(key);
    if (!cert) throw new NotFoundError(`No certificate with serial ${key} was issued by keymesh.`);
    const next = cert.revokedAt === null ? { ...cert, revokedAt: at } : cert;
    this.#issued.set(key, next);
    return clone(next);
  }

  async revokeIdentity(identity: Omit<RevokedIdentity, 'revokedAt'>, at: number): Promise<{ identity: RevokedIdentity; revoked: IssuedCertificate[] }> {
    this.#checkOpen();
    const stored = this.#revokedIdentities.get(identity.spiffeId) ?? { spiffeId: identity.spiffeId, mesh: identity.mesh, reason: identity.reason, revokedAt: at };
    this.#revokedIdentities.set(identity.spiffeId, stored);
    const revoked: IssuedCertificate[] = [];
    for (const c of [...this.#issued.values()].sort((a, b) => a.issuedAt - b.issuedAt || cmp(a.serial, b.serial))) {
      if (c.spiffeId !== identity.spiffeId || c.revokedAt !== null || c.notAfter <= at) continue;
      const next = { ...c, revokedAt: at };
      this.#issued.set(c.serial, next);
      revoked.push(clone(next));
    }
    return { identity: clone(stored), revoked };
  }

  async getRevokedIdentity(spiffeId: string): Promise<RevokedIdentity | undefined> {
    this.#checkOpen();
    return clone(this.#revokedIdentities.get(spiffeId));
  }

  async listRevokedIdentities(mesh?: string): Promise<RevokedIdentity[]> {
    this.#checkOpen();
    return [...this.#revokedIdentities.values()]
      .filter((r) => mesh === undefined || r.mesh === mesh)
      .sort((a, b) => a.revokedAt - b.revokedAt || cmp(a.spiffeId, b.spiffeId))
      .map((r) => clone(r));
  }

  async unrevokeIdentity(spiffeId: string): Promise<boolean> {
    this.#checkOpen();
    return this.#revokedIdentities.delete(spiffeId);
  }

  async createJoinToken(record: JoinTokenRecord): Promise<void> {
    this.#checkOpen();
    if (this.#tokens.has(record.id)) throw new ConflictError(`Join token ${record.id} already exists.`);
    this.#tokens.set(record.id, clone(record));
  }

  async getJoinToken(id: string): Promise<JoinTokenRecord | undefined> {
    this.#checkOpen();
    return clone(this.#tokens.get(id));
  }

  async listJoinTokens(mesh?: string): Promise<JoinTokenRecord[]> {
    this.#checkOpen();
    return [...this.#tokens.values()]
      .filter((t) => mesh === undefined || t.mesh === mesh)
      .sort((a, b) => a.createdAt - b.createdAt || cmp(a.id, b.id))
      .map((t) => clone(t));
  }

  async claimJoinToken(id: string, at: number): Promise<boolean> {
    this.#checkOpen();
    const t = this.#tokens.get(id);
    if (!t) throw new NotFoundError(`Join token ${id} does not exist.`);
    if (t.usedAt !== null) return false;
    this.#tokens.set(id, { ...t, usedAt: at });
    return true;
  }

  async deleteJoinToken(id: string): Promise<boolean> {
    this.#checkOpen();
    return this.#tokens.delete(id);
  }

  async createManagedCertificate(record: ManagedCertificateRecord): Promise<ManagedCertificateRecord> {
    this.#checkOpen();
    if (this.#managed.has(record.arn)) throw new ConflictError(`Certificate ${record.arn} already exists.`);
    const stored = { ...clone(record), rev: 1 };
    this.#managed.set(record.arn, stored);
    return clone(stored);
  }

  async getManagedCertificate(arn: string): Promise<ManagedCertificateRecord | undefined> {
    this.#checkOpen();
    return clone(this.#managed.get(arn));
  }

  async listManagedCertificates(filter: { mesh?: string; caId?: string } = {}): Promise<ManagedCertificateRecord[]> {
    this.#checkOpen();
    return [...this.#managed.values()]
      .filter((m) => (filter.mesh === undefined || m.mesh === filter.mesh) && (filter.caId === undefined || m.caId === filter.caId))
      .sort((a, b) => a.createdAt - b.createdAt || cmp(a.arn, b.arn))
      .map((m) => clone(m));
  }

  async updateManagedCertificate(record: ManagedCertificateRecord, expectedRev: number): Promise<ManagedCertificateRecord> {
    this.#checkOpen();
    const current = this.#managed.get(record.arn);
    if (!current) throw new NotFoundError(`Certificate ${record.arn} does not exist.`);
    if (current.rev !== expectedRev) {
      throw new ConflictError(`Certificate ${record.arn} was changed concurrently (store revision ${current.rev}, expected ${expectedRev}).`);
    }
    const stored = { ...clone(record), rev: expectedRev + 1 };
    this.#managed.set(record.arn, stored);
    return clone(stored);
  }

  async deleteManagedCertificate(arn: string): Promise<ManagedCertificateRecord> {
    this.#checkOpen();
    const current = this.#managed.get(arn);
    if (!current) throw new NotFoundError(`Certificate ${arn} does not exist.`);
    this.#managed.delete(arn);
    return clone(current);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  /** The CA, checked to be in one of `from`. */
  #caIn(id: string, from: readonly CaStatus[], to: CaStatus): CaRecord {
    return checkCaTransition(id, this.#cas.get(id), from, to);
  }

  /** One active and one next (pending or prepared) CA per trust domain, besides `exceptId`. */
  #checkSlots(trustDomain: string, status: CaStatus, exceptId: string): void {
    const slot = status === 'active' ? ['active'] : NEXT_STATUSES.includes(status) ? NEXT_STATUSES : undefined;
    if (!slot) return;
    const taken = [...this.#cas.values()].find((c) => c.trustDomain === trustDomain && c.id !== exceptId && slot.includes(c.status));
    if (taken) throw new ConflictError(caSlotMessage(trustDomain, status, taken));
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreError('The memory CA store is closed.');
  }
}

function clone<T>(v: T): T {
  return v === undefined ? v : structuredClone(v);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

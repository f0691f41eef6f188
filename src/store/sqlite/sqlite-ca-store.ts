// The CA's tables in the same SQLite file as the resources (migration 2). It opens its own connection with
// openDatabase, so it gets the same WAL / synchronous=FULL / owner-only settings and migrations as SqliteStore;
// node:sqlite is synchronous, so two connections in one process never interleave inside a transaction, and
// other processes wait on the write lock (busy timeout). Rotation's invariants are also unique indexes.
import type { SQLInputValue, StatementSync } from 'node:sqlite';
import { ConflictError, NotFoundError } from '../../errors/index.ts';
import {
  caSlotMessage, checkCaTransition, NEXT_STATUSES, normalizeSerial, statusTimeField,
  type CaFilter, type CaRecord, type CaSettings, type CaStatus, type CaStore, type IssuedCertificate, type IssuedFilter,
  type JoinTokenRecord, type ManagedCertificateRecord, type RevokedIdentity,
} from '../ca-store.ts';
import { TableConnection } from './connection.ts';

type Row = Record<string, SQLInputValue>;

/** Column ↔ field, for each table; the order is the INSERT order. */
const CA_COLUMNS = {
  id: 'id', arn: 'arn', mesh: 'mesh', trust_domain: 'trustDomain', origin: 'origin', key_type: 'keyType', key_file: 'keyFile',
  cert_pem: 'certPem', chain_pem: 'chainPem', csr_pem: 'csrPem', status: 'status', not_before: 'notBefore', not_after: 'notAfter',
  last_issued_not_after: 'lastIssuedNotAfter', created_at: 'createdAt', updated_at: 'updatedAt', activated_at: 'activatedAt',
  retiring_since: 'retiringSince', retired_at: 'retiredAt',
} as const;
const ISSUED_COLUMNS = {
  serial: 'serial', ca_id: 'caId', kind: 'kind', mesh: 'mesh', spiffe_id: 'spiffeId', managed_arn: 'managedArn', not_before: 'notBefore',
  not_after: 'notAfter', issued_at: 'issuedAt', revoked_at: 'revokedAt',
} as const;
const TOKEN_COLUMNS = {
  id: 'id', secret_hash: 'secretHash', mesh: 'mesh', kind: 'kind', name: 'name', spiffe_id: 'spiffeId', created_at: 'createdAt',
  expires_at: 'expiresAt', used_at: 'usedAt',
} as const;
const SETTINGS_COLUMNS = { mesh: 'mesh', trust_domain: 'trustDomain', svid_ttl_ms: 'svidTtlMs', key_type: 'keyType', updated_at: 'updatedAt' } as const;
const REVOKED_COLUMNS = { spiffe_id: 'spiffeId', mesh: 'mesh', revoked_at: 'revokedAt', reason: 'reason' } as const;
const MANAGED_COLUMNS = {
  arn: 'arn', id: 'id', mesh: 'mesh', ca_id: 'caId', domain_name: 'domainName', subject_alternative_names: 'subjectAlternativeNames',
  key_type: 'keyType', key_file: 'keyFile', cert_pem: 'certPem', chain_pem: 'chainPem', serial: 'serial', not_before: 'notBefore',
  not_after: 'notAfter', validity_ms: 'validityMs', created_at: 'createdAt', renewed_at: 'renewedAt', rev: 'rev',
} as const;

const NUMERIC = new Set(['notBefore', 'notAfter', 'lastIssuedNotAfter', 'createdAt', 'updatedAt', 'activatedAt', 'retiringSince', 'retiredAt',
  'issuedAt', 'revokedAt', 'expiresAt', 'usedAt', 'svidTtlMs', 'validityMs', 'renewedAt', 'rev']);
const JSON_FIELDS = new Set(['subjectAlternativeNames']);

export class SqliteCaStore implements CaStore {
  readonly path: string;
  readonly #conn: TableConnection;

  private constructor(conn: TableConnection) {
    this.path = conn.path;
    this.#conn = conn;
  }

  /** Opens (creating and migrating if needed) the store file at `path`, normally the resource store's keymesh.db. */
  static open(path: string): SqliteCaStore {
    return new SqliteCaStore(new TableConnection(path, 'the CA tables of the store'));
  }

  async getSettings(mesh: string): Promise<CaSettings | undefined> {
    return this.#read(() => this.#one('SELECT * FROM ca_settings WHERE mesh = ?', SETTINGS_COLUMNS, mesh));
  }

  async getSettingsByTrustDomain(trustDomain: string): Promise<CaSettings | undefined> {
    return this.#read(() => this.#one('SELECT * FROM ca_settings WHERE trust_domain = ?', SETTINGS_COLUMNS, trustDomain));
  }

  async putSettings(settings: CaSettings): Promise<CaSettings> {
    return this.#transaction(() => {
      const other = this.#stmt('SELECT mesh FROM ca_settings WHERE trust_domain = ? AND mesh <> ?').get(settings.trustDomain, settings.mesh);
      if (other) throw new ConflictError(`Trust domain ${settings.trustDomain} already belongs to mesh ${String(other.mesh)}.`);
      this.#insert('ca_settings', SETTINGS_COLUMNS, settings, 'OR REPLACE');
      return settings;
    });
  }

  async createCa(record: CaRecord): Promise<CaRecord> {
    return this.#transaction(() => {
      if (this.#stmt('SELECT 1 FROM cas WHERE id = ? OR arn = ?').get(record.id, record.arn)) throw new ConflictError(`CA ${record.id} already exists.`);
      this.#checkSlots(record.trustDomain, record.status, record.id);
      this.#insert('cas', CA_COLUMNS, record);
      return record;
    });
  }

  async getCa(id: string): Promise<CaRecord | undefined> {
    return this.#read(() => this.#one('SELECT * FROM cas WHERE id = ?', CA_COLUMNS, id));
  }

  async getCaByArn(arn: string): Promise<CaRecord | undefined> {
    return this.#read(() => this.#one('SELECT * FROM cas WHERE arn = ?', CA_COLUMNS, arn));
  }

  async listCas(filter: CaFilter = {}): Promise<CaRecord[]> {
    return this.#read(() => {
      const { sql, params } = whereClause([
        ['mesh = ?', filter.mesh],
        ['trust_domain = ?', filter.trustDomain],
        [`status IN (${filter.statuses?.map(() => '?').join(', ') || 'NULL'})`, filter.statuses],
      ]);
      return this.#all(`SELECT * FROM cas WHERE ${sql} ORDER BY created_at, id`, CA_COLUMNS, ...params);
    });
  }

  async setCaStatus(id: string, from: readonly CaStatus[], to: CaStatus, at: number): Promise<CaRecord> {
    return this.#transaction(() => {
      const ca = this.#caIn(id, from, to);
      this.#checkSlots(ca.trustDomain, to, id);
      const field = statusTimeField(to);
      const next: CaRecord = { ...ca, status: to, updatedAt: at, ...(field ? { [field]: at } : {}) };
      this.#replaceCa(next);
      return next;
    });
  }

  async completePendingCa(id: string, signed: { certPem: string; chainPem: string; notBefore: number; notAfter: number; status: 'prepared' | 'active' }, at: number): Promise<CaRecord> {
    return this.#transaction(() => {
      const ca = this.#caIn(id, ['pending'], signed.status);
      this.#checkSlots(ca.trustDomain, signed.status, id);
      const next: CaRecord = { ...ca, ...signed, updatedAt: at, ...(signed.status === 'active' ? { activatedAt: at } : {}) };
      this.#replaceCa(next);
      return next;
    });
  }

  async activateCa(id: string, at: number): Promise<{ activated: CaRecord; retiring: CaRecord | undefined }> {
    return this.#transaction(() => {
      const ca = this.#caIn(id, ['prepared'], 'active');
      const current = this.#one<CaRecord>("SELECT * FROM cas WHERE trust_domain = ? AND status = 'active'", CA_COLUMNS, ca.trustDomain);
      let retiring: CaRecord | undefined;
      if (current) {
        retiring = { ...current, status: 'retiring', retiringSince: at, updatedAt: at };
        this.#replaceCa(retiring); // first, so the one-active index never sees two
      }
      const activated: CaRecord = { ...ca, status: 'active', activatedAt: at, updatedAt: at };
      this.#replaceCa(activated);
      return { activated, retiring };
    });
  }

  async nextCrlNumber(caId: string): Promise<number> {
    return this.#transaction(() => {
      const row = this.#stmt('UPDATE cas SET crl_number = crl_number + 1 WHERE id = ? RETURNING crl_number').get(caId);
      if (!row) throw new NotFoundError(`CA ${caId} does not exist.`);
      return Number(row.crl_number);
    });
  }

  async recordIssued(cert: IssuedCertificate): Promise<void> {
    const stored = { ...cert, serial: normalizeSerial(cert.serial) };
    this.#transaction(() => {
      if (this.#stmt('SELECT 1 FROM issued_certificates WHERE serial = ?').get(stored.serial)) {
        throw new ConflictError(`A certificate with serial ${stored.serial} was already issued.`);
      }
      const res = this.#stmt('UPDATE cas SET last_issued_not_after = max(last_issued_not_after, ?) WHERE id = ?').run(cert.notAfter, cert.caId);
      if (res.changes === 0) throw new NotFoundError(`CA ${cert.caId} does not exist.`);
      this.#insert('issued_certificates', ISSUED_COLUMNS, stored);
    });
  }

  async getIssued(serial: string): Promise<IssuedCertificate | undefined> {
    return this.#read(() => this.#one('SELECT * FROM issued_certificates WHERE serial = ?', ISSUED_COLUMNS, normalizeSerial(serial)));
  }

  async listIssued(filter: IssuedFilter): Promise<IssuedCertificate[]> {
    return this.#read(() => {
      const { sql, params } = whereClause([
        ['ca_id = ?', filter.caId],
        ['spiffe_id = ?', filter.spiffeId],
        ['managed_arn = ?', filter.managedArn],
        [filter.revoked ? 'revoked_at IS NOT NULL' : 'revoked_at IS NULL', filter.revoked === undefined ? undefined : []],
        ['not_after > ?', filter.unexpiredAt],
      ]);
      return this.#all(`SELECT * FROM issued_certificates WHERE ${sql} ORDER BY issued_at, serial`, ISSUED_COLUMNS, ...params);
    });
  }

  async revokeCertificate(serial: string, at: number): Promise<IssuedCertificate> {
    const key = normalizeSerial(serial);
    return this.#transaction(() => {
      this.#stmt('UPDATE issued_certificates SET revoked_at = ? WHERE serial = ? AND revoked_at IS NULL').run(at, key);
      const cert = this.#one<IssuedCertificate>('SELECT * FROM issued_certificates WHERE serial = ?', ISSUED_COLUMNS, key);
      if (!cert) throw new NotFoundError(`No certificate with serial ${key} was issued by keymesh.`);
      return cert;
    });
  }

  async revokeIdentity(identity: Omit<RevokedIdentity, 'revokedAt'>, at: number): Promise<{ identity: RevokedIdentity; revoked: IssuedCertificate[] }> {
    return this.#transaction(() => {
      this.#stmt('INSERT INTO revoked_identities (spiffe_id, mesh, revoked_at, reason) VALUES (?, ?, ?, ?) ON CONFLICT (spiffe_id) DO NOTHING')
        .run(identity.spiffeId, identity.mesh, at, identity.reason);
      const stored = this.#one<RevokedIdentity>('SELECT * FROM revoked_identities WHERE spiffe_id = ?', REVOKED_COLUMNS, identity.spiffeId)!;
      const revoked = this.#all<IssuedCertificate>(
        'UPDATE issued_certificates SET revoked_at = ? WHERE spiffe_id = ? AND revoked_at IS NULL AND not_after > ? RETURNING *',
        ISSUED_COLUMNS, at, identity.spiffeId, at,
      ).sort((a, b) => a.issuedAt - b.issuedAt || (a.serial < b.serial ? -1 : 1)); // RETURNING has no defined order
      return { identity: stored, revoked };
    });
  }

  async getRevokedIdentity(spiffeId: string): Promise<RevokedIdentity | undefined> {
    return this.#read(() => this.#one('SELECT * FROM revoked_identities WHERE spiffe_id = ?', REVOKED_COLUMNS, spiffeId));
  }

  async listRevokedIdentities(mesh?: string): Promise<RevokedIdentity[]> {
    return this.#read(() => mesh === undefined
      ? this.#all('SELECT * FROM revoked_identities ORDER BY revoked_at, spiffe_id', REVOKED_COLUMNS)
      : this.#all('SELECT * FROM revoked_identities WHERE mesh = ? ORDER BY revoked_at, spiffe_id', REVOKED_COLUMNS, mesh));
  }

  async unrevokeIdentity(spiffeId: string): Promise<boolean> {
    return this.#transaction(() => this.#stmt('DELETE FROM revoked_identities WHERE spiffe_id = ?').run(spiffeId).changes > 0);
  }

  async createJoinToken(record: JoinTokenRecord): Promise<void> {
    this.#transaction(() => {
      if (this.#stmt('SELECT 1 FROM join_tokens WHERE id = ?').get(record.id)) throw new ConflictError(`Join token ${record.id} already exists.`);
      this.#insert('join_tokens', TOKEN_COLUMNS, record);
    });
  }

  async getJoinToken(id: string): Promise<JoinTokenRecord | undefined> {
    return this.#read(() => this.#one('SELECT * FROM join_tokens WHERE id = ?', TOKEN_COLUMNS, id));
  }

  async listJoinTokens(mesh?: string): Promise<JoinTokenRecord[]> {
    return this.#read(() => mesh === undefined
      ? this.#all('SELECT * FROM join_tokens ORDER BY created_at, id', TOKEN_COLUMNS)
      : this.#all('SELECT * FROM join_tokens WHERE mesh = ? ORDER BY created_at, id', TOKEN_COLUMNS, mesh));
  }

  async claimJoinToken(id: string, at: number): Promise<boolean> {
    return this.#transaction(() => {
      // The WHERE clause is the single-use guarantee: only one UPDATE can find used_at still NULL.
      if (this.#stmt('UPDATE join_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL').run(at, id).changes === 1) return true;
      if (!this.#stmt('SELECT 1 FROM join_tokens WHERE id = ?').get(id)) throw new NotFoundError(`Join token ${id} does not exist.`);
      return false;
    });
  }

  async deleteJoinToken(id: string): Promise<boolean> {
    return this.#transaction(() => this.#stmt('DELETE FROM join_tokens WHERE id = ?').run(id).changes > 0);
  }

  async createManagedCertificate(record: ManagedCertificateRecord): Promise<ManagedCertificateRecord> {
    const stored = { ...record, rev: 1 };
    return this.#transaction(() => {
      if (this.#stmt('SELECT 1 FROM managed_certificates WHERE arn = ?').get(record.arn)) throw new ConflictError(`Certificate ${record.arn} already exists.`);
      this.#insert('managed_certificates', MANAGED_COLUMNS, stored);
      return stored;
    });
  }

  async getManagedCertificate(arn: string): Promise<ManagedCertificateRecord | undefined> {
    return this.#read(() => this.#one('SELECT * FROM managed_certificates WHERE arn = ?', MANAGED_COLUMNS, arn));
  }

  async listManagedCertificates(filter: { mesh?: string; caId?: string } = {}): Promise<ManagedCertificateRecord[]> {
    return this.#read(() => {
      const { sql, params } = whereClause([['mesh = ?', filter.mesh], ['ca_id = ?', filter.caId]]);
      return this.#all(`SELECT * FROM managed_certificates WHERE ${sql} ORDER BY created_at, arn`, MANAGED_COLUMNS, ...params);
    });
  }

  async updateManagedCertificate(record: ManagedCertificateRecord, expectedRev: number): Promise<ManagedCertificateRecord> {
    const stored = { ...record, rev: expectedRev + 1 };
    return this.#transaction(() => {
      const row = this.#stmt('SELECT rev FROM managed_certificates WHERE arn = ?').get(record.arn);
      if (!row) throw new NotFoundError(`Certificate ${record.arn} does not exist.`);
      if (Number(row.rev) !== expectedRev) {
        throw new ConflictError(`Certificate ${record.arn} was changed concurrently (store revision ${String(row.rev)}, expected ${expectedRev}).`);
      }
      this.#insert('managed_certificates', MANAGED_COLUMNS, stored, 'OR REPLACE');
      return stored;
    });
  }

  async deleteManagedCertificate(arn: string): Promise<ManagedCertificateRecord> {
    return this.#transaction(() => {
      const current = this.#one<ManagedCertificateRecord>('SELECT * FROM managed_certificates WHERE arn = ?', MANAGED_COLUMNS, arn);
      if (!current) throw new NotFoundError(`Certificate ${arn} does not exist.`);
      this.#stmt('DELETE FROM managed_certificates WHERE arn = ?').run(arn);
      return current;
    });
  }

  async close(): Promise<void> {
    this.#conn.close();
  }

  #caIn(id: string, from: readonly CaStatus[], to: CaStatus): CaRecord {
    return checkCaTransition(id, this.#one<CaRecord>('SELECT * FROM cas WHERE id = ?', CA_COLUMNS, id), from, to);
  }

  /** Checked before writing so the error names the CA in the way; the unique indexes are the backstop. */
  #checkSlots(trustDomain: string, status: CaStatus, exceptId: string): void {
    const slot = status === 'active' ? ['active'] : NEXT_STATUSES.includes(status) ? NEXT_STATUSES : undefined;
    if (!slot) return;
    const taken = this.#stmt(`SELECT id, status FROM cas WHERE trust_domain = ? AND id <> ? AND status IN (${slot.map(() => '?').join(', ')})`)
      .get(trustDomain, exceptId, ...slot);
    if (taken) throw new ConflictError(caSlotMessage(trustDomain, status, { id: String(taken.id), status: taken.status as CaStatus }));
  }

  #replaceCa(record: CaRecord): void {
    const cols = Object.keys(CA_COLUMNS).filter((c) => c !== 'id');
    this.#stmt(`UPDATE cas SET ${cols.map((c) => `${c} = ?`).join(', ')} WHERE id = ?`)
      .run(...cols.map((c) => toSql(record, CA_COLUMNS[c as keyof typeof CA_COLUMNS])), record.id);
  }

  #insert(table: string, columns: Readonly<Record<string, string>>, record: object, conflict = ''): void {
    const cols = Object.keys(columns);
    this.#stmt(`INSERT ${conflict} INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`)
      .run(...cols.map((c) => toSql(record, columns[c]!)));
  }

  #one<T>(sql: string, columns: Readonly<Record<string, string>>, ...params: SQLInputValue[]): T | undefined {
    const row = this.#stmt(sql).get(...params);
    return row ? fromRow<T>(row, columns) : undefined;
  }

  #all<T>(sql: string, columns: Readonly<Record<string, string>>, ...params: SQLInputValue[]): T[] {
    return this.#stmt(sql).all(...params).map((r) => fromRow<T>(r, columns));
  }

  #transaction<T>(fn: () => T): T {
    return this.#conn.write(fn);
  }

  #read<T>(fn: () => T): T {
    return this.#conn.read(fn);
  }

  #stmt(sql: string): StatementSync {
    return this.#conn.stmt(sql);
  }
}

/** AND of the conditions whose value is given; an array value supplies several parameters (or none). */
function whereClause(conditions: [string, SQLInputValue | readonly SQLInputValue[] | undefined][]): { sql: string; params: SQLInputValue[] } {
  const used = conditions.filter(([, v]) => v !== undefined);
  const params = used.flatMap(([, v]) => (Array.isArray(v) ? (v as SQLInputValue[]) : [v as SQLInputValue]));
  return { sql: used.length ? used.map(([c]) => c).join(' AND ') : '1 = 1', params };
}

function toSql(record: object, field: string): SQLInputValue {
  const v = (record as Record<string, unknown>)[field];
  if (JSON_FIELDS.has(field)) return JSON.stringify(v);
  return v === undefined ? null : (v as SQLInputValue);
}

function fromRow<T>(row: Row, columns: Readonly<Record<string, string>>): T {
  const out: Record<string, unknown> = {};
  for (const [col, field] of Object.entries(columns)) {
    const v = row[col];
    if (JSON_FIELDS.has(field)) out[field] = JSON.parse(String(v));
    else if (v === null || v === undefined) out[field] = null;
    else out[field] = NUMERIC.has(field) ? Number(v) : v;
  }
  return out as T;
}

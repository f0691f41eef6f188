// The embedded store: one SQLite file in WAL mode (see connection.ts for durability settings). node:sqlite
// is synchronous, so every method does its work before its promise settles; the async signatures are the
// interface's, shared with server-backed stores.
import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite';
import { ConflictError, NotFoundError, StoreError } from '../../errors/index.ts';
import type { JsonValue } from '../../model/json.ts';
import { describeKey, type ResourceKey } from '../../model/kinds.ts';
import type { ResourceRecord } from '../../model/resource.ts';
import { checkLimit } from '../checks.ts';
import type { Change, ChangeOp, ListPage, ListQuery, ResourceStore, TokenEntry, WriteOptions } from '../store.ts';
import { cachedStatement, immediateTransaction, openDatabase, storeError } from './connection.ts';

export interface SqliteStoreOptions {
  /** Called with errors thrown by `watch` listeners (which never fail the write that triggered them). */
  onError?: (error: unknown) => void;
}

const KEY = 'kind = ? AND mesh = ? AND parent = ? AND name = ?';

/** Expired tokens are purged inside token-carrying writes at most this often (by the callers' clock). */
const PURGE_EVERY_MS = 60_000;

export class SqliteStore implements ResourceStore {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  readonly #listeners = new Set<(change: Change) => void>();
  readonly #onError: (error: unknown) => void;
  #closed = false;
  /** The latest `now` a caller passed to getToken: the store has no clock of its own (tests use fake ones). */
  #now = 0;
  #lastPurge = 0;

  private constructor(path: string, db: DatabaseSync, options: SqliteStoreOptions) {
    this.path = path;
    this.#db = db;
    this.#onError = options.onError ?? (() => {});
  }

  /** Opens or creates the store at `path`; throws StoreError if the file is unusable or from a newer schema. */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    return new SqliteStore(path, openDatabase(path), options);
  }

  async get(key: ResourceKey): Promise<ResourceRecord | undefined> {
    return this.#read('reading', () => {
      const row = this.#stmt(`SELECT record FROM resources WHERE ${KEY}`).get(...keyParams(key));
      return row ? parseRecord(row.record) : undefined;
    });
  }

  async list(query: ListQuery): Promise<ListPage> {
    checkLimit('list', query.limit);
    return this.#read('listing', () => {
      const { where, params } = scope(query);
      if (query.after !== undefined) {
        where.push('name > ?');
        params.push(query.after);
      }
      // Ties (same name under different meshes or parents, when those are not filtered) break on the key.
      const sql = `SELECT record FROM resources WHERE ${where.join(' AND ')} ORDER BY name, mesh, parent LIMIT ?`;
      const rows = this.#stmt(sql).all(...params, query.limit + 1);
      return { items: rows.slice(0, query.limit).map((r) => parseRecord(r.record)), more: rows.length > query.limit };
    });
  }

  async count(query: Omit<ListQuery, 'after' | 'limit'>): Promise<number> {
    return this.#read('counting', () => {
      const { where, params } = scope(query);
      return Number(this.#stmt(`SELECT count(*) AS n FROM resources WHERE ${where.join(' AND ')}`).get(...params)?.n ?? 0);
    });
  }

  async listMesh(mesh: string): Promise<ResourceRecord[]> {
    return this.#read('listing', () =>
      this.#stmt('SELECT record FROM resources WHERE mesh = ? ORDER BY kind, parent, name').all(mesh).map((r) => parseRecord(r.record)));
  }

  async create(record: ResourceRecord, options: WriteOptions = {}): Promise<ResourceRecord> {
    const stored = { ...record, rev: 1 };
    const json = JSON.stringify(stored);
    return this.#write('create', stored, options.token, () => {
      const res = this.#stmt('INSERT INTO resources (kind, mesh, parent, name, rev, record) VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT DO NOTHING')
        .run(...keyParams(record), json);
      if (res.changes === 0) throw new ConflictError(`${describeKey(record)} already exists.`);
      return json;
    });
  }

  async update(record: ResourceRecord, expectedRev: number, options: WriteOptions = {}): Promise<ResourceRecord> {
    const stored = { ...record, rev: expectedRev + 1 };
    const json = JSON.stringify(stored);
    return this.#write('update', stored, options.token, () => {
      this.#checkRev(record, expectedRev, 'update');
      this.#stmt(`UPDATE resources SET rev = ?, record = ? WHERE ${KEY}`).run(stored.rev, json, ...keyParams(record));
      return json;
    });
  }

  async delete(key: ResourceKey, expectedRev: number): Promise<ResourceRecord> {
    // The change row and the result carry the last stored state, read inside the transaction.
    return this.#write('delete', key, undefined, () => {
      const json = this.#checkRev(key, expectedRev, 'delete');
      this.#stmt(`DELETE FROM resources WHERE ${KEY}`).run(...keyParams(key));
      return json;
    });
  }

  async getToken(token: string, now: number): Promise<TokenEntry | undefined> {
    this.#now = Math.max(this.#now, now);
    return this.#read('reading a token from', () => {
      // "expiresAt: after which the token may be forgotten": still valid at exactly expiresAt.
      const row = this.#stmt('SELECT fingerprint, response, expires_at FROM tokens WHERE token = ? AND expires_at >= ?').get(token, now);
      if (!row) return undefined;
      return { token, fingerprint: String(row.fingerprint), response: JSON.parse(String(row.response)) as JsonValue, expiresAt: Number(row.expires_at) };
    });
  }

  async putToken(entry: TokenEntry): Promise<void> {
    const prepared = tokenParams(entry);
    this.#transaction('storing a token in', () => this.#putToken(prepared));
  }

  async changesSince(afterSeq: number, limit: number): Promise<Change[]> {
    checkLimit('changesSince', limit);
    return this.#read('reading the change feed of', () =>
      this.#stmt('SELECT seq, op, record FROM changes WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, limit)
        .map((r) => ({ seq: Number(r.seq), op: r.op as ChangeOp, record: parseRecord(r.record) })));
  }

  async lastSeq(): Promise<number> {
    return this.#read('reading the change feed of', () => Number(this.#stmt('SELECT coalesce(max(seq), 0) AS seq FROM changes').get()?.seq ?? 0));
  }

  watch(listener: (change: Change) => void): () => void {
    // Wrapped so that the same function can be registered twice and unsubscribed independently.
    const entry = (change: Change) => listener(change);
    this.#listeners.add(entry);
    return () => void this.#listeners.delete(entry);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    this.#statements.clear();
    this.#db.close();
  }

  /** Runs one write with its change row and optional token in one transaction, then tells the watchers. */
  #write(op: ChangeOp, key: ResourceKey, token: TokenEntry | undefined, apply: () => string): ResourceRecord {
    const tokenRow = token ? tokenParams(token) : undefined;
    let json = '';
    const seq = this.#transaction(`writing (${op}) to`, () => {
      json = apply();
      const res = this.#stmt('INSERT INTO changes (op, kind, mesh, parent, name, record) VALUES (?, ?, ?, ?, ?, ?)')
        .run(op, ...keyParams(key), json);
      if (tokenRow) this.#putToken(tokenRow);
      return Number(res.lastInsertRowid);
    });
    this.#notify(seq, op, json);
    return parseRecord(json);
  }

  /** Returns the stored record's JSON after checking its rev; the caller is inside a write transaction. */
  #checkRev(key: ResourceKey, expectedRev: number, op: string): string {
    const row = this.#stmt(`SELECT rev, record FROM resources WHERE ${KEY}`).get(...keyParams(key));
    if (!row) throw new NotFoundError(`Cannot ${op} ${describeKey(key)}: it does not exist.`);
    if (Number(row.rev) !== expectedRev) {
      throw new ConflictError(`Cannot ${op} ${describeKey(key)}: it was changed concurrently (store revision ${String(row.rev)}, expected ${expectedRev}). Retry the request.`);
    }
    return String(row.record);
  }

  #putToken(params: SQLInputValue[]): void {
    this.#stmt('INSERT INTO tokens (token, fingerprint, response, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (token) DO UPDATE SET fingerprint = excluded.fingerprint, response = excluded.response, expires_at = excluded.expires_at')
      .run(...params);
    if (this.#now - this.#lastPurge >= PURGE_EVERY_MS) {
      this.#stmt('DELETE FROM tokens WHERE expires_at < ?').run(this.#now);
      this.#lastPurge = this.#now;
    }
  }

  #notify(seq: number, op: ChangeOp, json: string): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener({ seq, op, record: parseRecord(json) }); // each listener gets its own copy
      } catch (e) {
        try {
          this.#onError(e);
        } catch {
          // a failing error handler must not fail a committed write either
        }
      }
    }
  }

  #transaction<T>(doing: string, fn: () => T): T {
    this.#checkOpen();
    return immediateTransaction(this.#db, this.path, `Failed ${doing} the store`, fn);
  }

  #read<T>(doing: string, fn: () => T): T {
    this.#checkOpen();
    try {
      return fn();
    } catch (e) {
      throw storeError(e, this.path, `Failed ${doing} the store`);
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreError(`The store ${this.path} is closed.`);
  }

  #stmt(sql: string): StatementSync {
    return cachedStatement(this.#db, this.#statements, sql);
  }
}

function keyParams(key: ResourceKey): [string, string, string, string] {
  return [key.kind, key.mesh, key.parent, key.name];
}

function tokenParams(t: TokenEntry): SQLInputValue[] {
  return [t.token, t.fingerprint, JSON.stringify(t.response), t.expiresAt];
}

function scope(query: { kind: string; mesh?: string; parent?: string }): { where: string[]; params: SQLInputValue[] } {
  const where = ['kind = ?'];
  const params: SQLInputValue[] = [query.kind];
  if (query.mesh !== undefined) {
    where.push('mesh = ?');
    params.push(query.mesh);
  }
  if (query.parent !== undefined) {
    where.push('parent = ?');
    params.push(query.parent);
  }
  return { where, params };
}

function parseRecord(json: unknown): ResourceRecord {
  return JSON.parse(String(json)) as ResourceRecord;
}

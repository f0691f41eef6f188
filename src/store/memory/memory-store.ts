// An in-memory ResourceStore for tests. It keeps the contract's observable behaviour (revisions, change
// feed, tokens, ordering) and never shares objects with callers: everything is cloned in and out, so a test
// that mutates a returned record cannot change the store behind the code under test.
import { ConflictError, NotFoundError, StoreError } from '../../errors/index.ts';
import { describeKey, type ResourceKey } from '../../model/kinds.ts';
import type { ResourceRecord } from '../../model/resource.ts';
import { checkLimit } from '../checks.ts';
import type { Change, ChangeOp, ListPage, ListQuery, ResourceStore, TokenEntry, WriteOptions } from '../store.ts';

export interface MemoryStoreOptions {
  /** Called with errors thrown by `watch` listeners (which never fail the write that triggered them). */
  onError?: (error: unknown) => void;
}

export class MemoryStore implements ResourceStore {
  readonly #records = new Map<string, ResourceRecord>();
  readonly #tokens = new Map<string, TokenEntry>();
  readonly #changes: Change[] = [];
  readonly #listeners = new Set<(change: Change) => void>();
  readonly #onError: (error: unknown) => void;
  #closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.#onError = options.onError ?? (() => {});
  }

  async get(key: ResourceKey): Promise<ResourceRecord | undefined> {
    this.#checkOpen();
    const r = this.#records.get(mapKey(key));
    return r && structuredClone(r);
  }

  async list(query: ListQuery): Promise<ListPage> {
    this.#checkOpen();
    checkLimit('list', query.limit);
    const after = query.after;
    const matching = this.#scope(query)
      .filter((r) => after === undefined || compareNames(r.name, after) > 0)
      .sort(byNameThenKey);
    return { items: matching.slice(0, query.limit).map((r) => structuredClone(r)), more: matching.length > query.limit };
  }

  async count(query: Omit<ListQuery, 'after' | 'limit'>): Promise<number> {
    this.#checkOpen();
    return this.#scope(query).length;
  }

  async listMesh(mesh: string): Promise<ResourceRecord[]> {
    this.#checkOpen();
    return [...this.#records.values()]
      .filter((r) => r.mesh === mesh)
      .sort((a, b) => compareNames(a.kind, b.kind) || compareNames(a.parent, b.parent) || compareNames(a.name, b.name))
      .map((r) => structuredClone(r));
  }

  async create(record: ResourceRecord, options: WriteOptions = {}): Promise<ResourceRecord> {
    this.#checkOpen();
    const k = mapKey(record);
    if (this.#records.has(k)) throw new ConflictError(`${describeKey(record)} already exists.`);
    return this.#commit('create', k, { ...structuredClone(record), rev: 1 }, options.token);
  }

  async update(record: ResourceRecord, expectedRev: number, options: WriteOptions = {}): Promise<ResourceRecord> {
    this.#checkOpen();
    const k = this.#checkRev(record, expectedRev, 'update');
    return this.#commit('update', k, { ...structuredClone(record), rev: expectedRev + 1 }, options.token);
  }

  async delete(key: ResourceKey, expectedRev: number): Promise<ResourceRecord> {
    this.#checkOpen();
    const k = this.#checkRev(key, expectedRev, 'delete');
    return this.#commit('delete', k, this.#records.get(k)!, undefined);
  }

  async getToken(token: string, now: number): Promise<TokenEntry | undefined> {
    this.#checkOpen();
    const t = this.#tokens.get(token);
    if (t && t.expiresAt < now) this.#tokens.delete(token); // expired: forget it
    return t && t.expiresAt >= now ? structuredClone(t) : undefined;
  }

  async putToken(entry: TokenEntry): Promise<void> {
    this.#checkOpen();
    this.#tokens.set(entry.token, structuredClone(entry));
  }

  async changesSince(afterSeq: number, limit: number): Promise<Change[]> {
    this.#checkOpen();
    checkLimit('changesSince', limit);
    // seq n is at index n - 1: seqs start at 1 and have no gaps here.
    return this.#changes.slice(Math.max(0, afterSeq), Math.max(0, afterSeq) + limit).map((c) => structuredClone(c));
  }

  async lastSeq(): Promise<number> {
    this.#checkOpen();
    return this.#changes.length;
  }

  watch(listener: (change: Change) => void): () => void {
    const entry = (change: Change) => listener(change);
    this.#listeners.add(entry);
    return () => void this.#listeners.delete(entry);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#listeners.clear();
  }

  /** Applies one write (already checked, so nothing below can fail half-way) and tells the watchers. */
  #commit(op: ChangeOp, k: string, record: ResourceRecord, token: TokenEntry | undefined): ResourceRecord {
    const tokenCopy = token && structuredClone(token); // cloned first: a bad token must fail before any change
    if (op === 'delete') this.#records.delete(k);
    else this.#records.set(k, record);
    if (tokenCopy) this.#tokens.set(tokenCopy.token, tokenCopy);
    const change: Change = { seq: this.#changes.length + 1, op, record };
    this.#changes.push(change);
    for (const listener of [...this.#listeners]) {
      try {
        listener(structuredClone(change));
      } catch (e) {
        try {
          this.#onError(e);
        } catch {
          // a failing error handler must not fail a committed write either
        }
      }
    }
    return structuredClone(record);
  }

  #checkRev(key: ResourceKey, expectedRev: number, op: string): string {
    const k = mapKey(key);
    const current = this.#records.get(k);
    if (!current) throw new NotFoundError(`Cannot ${op} ${describeKey(key)}: it does not exist.`);
    if (current.rev !== expectedRev) {
      throw new ConflictError(`Cannot ${op} ${describeKey(key)}: it was changed concurrently (store revision ${current.rev}, expected ${expectedRev}). Retry the request.`);
    }
    return k;
  }

  #scope(query: { kind: string; mesh?: string; parent?: string }): ResourceRecord[] {
    return [...this.#records.values()].filter((r) =>
      r.kind === query.kind && (query.mesh === undefined || r.mesh === query.mesh) && (query.parent === undefined || r.parent === query.parent));
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreError('The memory store is closed.');
  }
}

function mapKey(key: ResourceKey): string {
  return JSON.stringify([key.kind, key.mesh, key.parent, key.name]);
}

/**
 * Byte order of the UTF-8 encodings, as SQLite's BINARY collation sorts. Plain `<` compares UTF-16 code units,
 * which differs for characters U+E000..U+FFFF against ones above U+FFFF; code point order equals UTF-8 order.
 */
export function compareNames(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; ) {
    const ca = a.codePointAt(i)!;
    const cb = b.codePointAt(i)!;
    if (ca !== cb) return ca < cb ? -1 : 1;
    i += ca > 0xffff ? 2 : 1;
  }
  return a.length < b.length ? -1 : a.length > b.length ? 1 : 0;
}

function byNameThenKey(a: ResourceRecord, b: ResourceRecord): number {
  return compareNames(a.name, b.name) || compareNames(a.mesh, b.mesh) || compareNames(a.parent, b.parent);
}

// Opening the SQLite file: owner-only permissions, durable settings, schema migration, and errors that name
// the file (a raw "file is not a database" alone does not tell an operator which file to look at).
import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { KeymeshError, StoreError, UnavailableError } from '../../errors/index.ts';
import { checkStoreFile, migrate } from './migrations.ts';

/** How long a write waits for another process's write lock before giving up. */
export const BUSY_TIMEOUT_MS = 5000;

/**
 * Opens (creating if needed) and migrates the database at `path`. The file is created with mode 0600 before
 * SQLite sees it; SQLite gives its -wal and -shm files the database file's mode. The directory's mode (0700)
 * is the caller's job: it also holds keys and credentials.
 */
export function openDatabase(path: string): DatabaseSync {
  ensureOwnerOnlyFile(path);
  let db: DatabaseSync | undefined;
  try {
    // Referential rules belong to the manager, not to SQLite (node:sqlite turns foreign keys on by default).
    db = new DatabaseSync(path, { enableForeignKeyConstraints: false });
    db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // The first read of the file: garbage bytes fail here, and another application's database is refused
    // before anything (even the journal mode) is changed in it.
    checkStoreFile(db, path);
    const mode = db.prepare('PRAGMA journal_mode = WAL').get()?.journal_mode;
    if (mode !== 'wal') throw new StoreError(`The store ${path} could not be switched to WAL journal mode (got ${String(mode)}).`);
    // FULL: in WAL mode the WAL is fsynced at every commit, so an acknowledged write survives power loss.
    db.exec('PRAGMA synchronous = FULL');
    db.exec('PRAGMA foreign_keys = OFF');
    migrate(db, path);
    return db;
  } catch (e) {
    if (db?.isOpen) db.close();
    throw storeError(e, path, 'Cannot open the store');
  }
}

/**
 * Runs fn in a BEGIN IMMEDIATE transaction: the write lock is taken up front, so the reads inside see the
 * state the write commits on, also against other processes. Errors name the file and what was being done.
 */
export function immediateTransaction<T>(db: DatabaseSync, path: string, doing: string, fn: () => T): T {
  try {
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      db.exec('COMMIT');
      return result;
    } finally {
      if (db.isTransaction) db.exec('ROLLBACK');
    }
  } catch (e) {
    throw storeError(e, path, doing);
  }
}

/** `sql` prepared once per connection: `cache` belongs to the store holding `db` and is cleared when it closes. */
export function cachedStatement(db: DatabaseSync, cache: Map<string, StatementSync>, sql: string): StatementSync {
  let s = cache.get(sql);
  if (!s) {
    s = db.prepare(sql);
    cache.set(sql, s);
  }
  return s;
}

/** Wraps a raw SQLite error so that it names the file; keymesh errors pass through unchanged. */
export function storeError(e: unknown, path: string, doing: string): KeymeshError {
  if (e instanceof KeymeshError) return e;
  const code = sqliteCode(e);
  const detail = e instanceof Error ? e.message : String(e);
  // SQLITE_BUSY / SQLITE_LOCKED: another process held the write lock past the busy timeout; worth retrying.
  if (code === 5 || code === 6) return new UnavailableError(`${doing} ${path}: the database is busy (${detail}); retry later.`, { cause: e });
  // SQLITE_CORRUPT / SQLITE_NOTADB
  const hint = code === 11 || code === 26 ? ' The file is not a keymesh SQLite store or is corrupted; restore it from a backup.' : '';
  return new StoreError(`${doing} ${path}: ${detail}.${hint}`, { cause: e });
}

function sqliteCode(e: unknown): number | undefined {
  const errcode = (e as { errcode?: unknown } | null)?.errcode;
  return typeof errcode === 'number' ? errcode & 0xff : undefined; // primary code of an extended one
}

function ensureOwnerOnlyFile(path: string): void {
  try {
    try {
      closeSync(openSync(path, 'wx', 0o600));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    // An existing file readable by others (copied, restored) is tightened: it holds the whole mesh config.
    if (statSync(path).mode & 0o077) chmodSync(path, 0o600);
  } catch (e) {
    throw new StoreError(`Cannot create the store file ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * One store's own connection to the file: cached statements, write transactions and reads whose errors name
 * the file and the tables (`what`, e.g. "the CA tables of the store"), and a refusal once closed.
 */
export class TableConnection {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #what: string;
  readonly #statements = new Map<string, StatementSync>();
  #closed = false;

  constructor(path: string, what: string) {
    this.path = path;
    this.#what = what;
    this.#db = openDatabase(path);
  }

  stmt(sql: string): StatementSync {
    return cachedStatement(this.#db, this.#statements, sql);
  }

  /** fn inside BEGIN IMMEDIATE (see immediateTransaction). */
  write<T>(fn: () => T): T {
    this.#checkOpen();
    return immediateTransaction(this.#db, this.path, `Failed writing ${this.#what}`, fn);
  }

  read<T>(fn: () => T): T {
    this.#checkOpen();
    try {
      return fn();
    } catch (e) {
      throw storeError(e, this.path, `Failed reading ${this.#what}`);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#statements.clear();
    this.#db.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreError(`${this.#what[0]!.toUpperCase()}${this.#what.slice(1)} ${this.path} is closed.`);
  }
}

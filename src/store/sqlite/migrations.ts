// The SQLite schema as an ordered list of migrations. Migration N brings a database from user_version N-1 to
// N; each runs in its own transaction together with its user_version bump, so a crash leaves the database at
// a whole version. Append new migrations; never edit or reorder shipped ones.
import type { DatabaseSync } from 'node:sqlite';
import { StoreError } from '../../errors/index.ts';

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

/** 'KMSH': marks the file as a keymesh store, so another application's SQLite file is refused, not migrated. */
export const APPLICATION_ID = 0x4b4d5348;

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'resources, change feed, idempotency tokens',
    sql: `
      PRAGMA application_id = ${APPLICATION_ID};
      -- record holds the whole ResourceRecord as JSON so a read is one parse; the key columns and rev duplicate
      -- it for lookups and compare-and-swap.
      CREATE TABLE resources (
        kind TEXT NOT NULL,
        mesh TEXT NOT NULL,
        parent TEXT NOT NULL,
        name TEXT NOT NULL,
        rev INTEGER NOT NULL,
        record TEXT NOT NULL,
        PRIMARY KEY (kind, mesh, parent, name)
      ) WITHOUT ROWID;
      -- Listing meshes (no mesh filter) orders by name within a kind.
      CREATE INDEX resources_kind_name ON resources (kind, name);
      -- listMesh reads every kind of one mesh.
      CREATE INDEX resources_mesh ON resources (mesh);
      -- AUTOINCREMENT: seq is never reused, even after the newest rows are deleted, so followers never miss one.
      CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        op TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
        kind TEXT NOT NULL,
        mesh TEXT NOT NULL,
        parent TEXT NOT NULL,
        name TEXT NOT NULL,
        record TEXT NOT NULL
      );
      CREATE TABLE tokens (
        token TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        response TEXT NOT NULL,
        expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX tokens_expires_at ON tokens (expires_at);
    `,
  },
  {
    version: 2,
    description: 'certificate authority: settings, CAs, issued certificates, join tokens, revocations, managed certificates',
    sql: `
      -- A trust domain belongs to one mesh: two meshes sharing one would share SPIFFE IDs.
      CREATE TABLE ca_settings (
        mesh TEXT PRIMARY KEY,
        trust_domain TEXT NOT NULL UNIQUE,
        svid_ttl_ms INTEGER NOT NULL,
        key_type TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      -- Private keys are not here: key_file names a file in <dataDir>/ca/.
      CREATE TABLE cas (
        id TEXT PRIMARY KEY,
        arn TEXT NOT NULL UNIQUE,
        mesh TEXT NOT NULL,
        trust_domain TEXT NOT NULL,
        origin TEXT NOT NULL CHECK (origin IN ('generated', 'imported', 'offline-signed')),
        key_type TEXT NOT NULL,
        key_file TEXT NOT NULL,
        cert_pem TEXT NOT NULL,
        chain_pem TEXT NOT NULL,
        csr_pem TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'prepared', 'active', 'retiring', 'retired')),
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        last_issued_not_after INTEGER NOT NULL,
        crl_number INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        activated_at INTEGER,
        retiring_since INTEGER,
        retired_at INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX cas_trust_domain ON cas (trust_domain, status);
      -- Rotation's invariants, held by the database even against a second process: one signing CA and one
      -- next CA per trust domain.
      CREATE UNIQUE INDEX cas_one_active ON cas (trust_domain) WHERE status = 'active';
      CREATE UNIQUE INDEX cas_one_next ON cas (trust_domain) WHERE status IN ('pending', 'prepared');
      CREATE TABLE issued_certificates (
        serial TEXT PRIMARY KEY,
        ca_id TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('svid', 'managed')),
        mesh TEXT NOT NULL,
        spiffe_id TEXT,
        managed_arn TEXT,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        issued_at INTEGER NOT NULL,
        revoked_at INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX issued_ca ON issued_certificates (ca_id, revoked_at);
      CREATE INDEX issued_spiffe_id ON issued_certificates (spiffe_id);
      CREATE INDEX issued_managed_arn ON issued_certificates (managed_arn);
      -- Only the sha256 of a token's secret is kept.
      CREATE TABLE join_tokens (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL,
        mesh TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('virtualNode', 'virtualGateway')),
        name TEXT NOT NULL,
        spiffe_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at INTEGER
      ) WITHOUT ROWID;
      CREATE TABLE revoked_identities (
        spiffe_id TEXT PRIMARY KEY,
        mesh TEXT NOT NULL,
        revoked_at INTEGER NOT NULL,
        reason TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE managed_certificates (
        arn TEXT PRIMARY KEY,
        id TEXT NOT NULL,
        mesh TEXT NOT NULL,
        ca_id TEXT NOT NULL,
        domain_name TEXT NOT NULL,
        subject_alternative_names TEXT NOT NULL,
        key_type TEXT NOT NULL,
        key_file TEXT NOT NULL,
        cert_pem TEXT NOT NULL,
        chain_pem TEXT NOT NULL,
        serial TEXT NOT NULL,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        validity_ms INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        renewed_at INTEGER,
        rev INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    description: 'endpoint registry: instances of virtual nodes, registered by their proxies or by an operator',
    sql: `
      CREATE TABLE endpoints (
        mesh TEXT NOT NULL,
        virtual_node TEXT NOT NULL,
        instance TEXT NOT NULL,
        address TEXT NOT NULL,
        port INTEGER NOT NULL,
        ports TEXT NOT NULL,
        source TEXT NOT NULL,
        registered_at INTEGER NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (mesh, virtual_node, instance)
      ) WITHOUT ROWID;
      CREATE INDEX endpoints_expiry ON endpoints (expires_at) WHERE expires_at IS NOT NULL;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings `db` to SCHEMA_VERSION. Refuses a database from a newer keymesh (its schema cannot be guessed at) and
 * a SQLite file that belongs to another application. Safe against a second process migrating concurrently:
 * the version is re-read under the write lock.
 */
export function migrate(db: DatabaseSync, path: string, migrations: readonly Migration[] = MIGRATIONS): void {
  checkVersions(migrations);
  const start = checkStoreFile(db, path, migrations.length);
  if (start === migrations.length) return;
  for (const m of migrations.slice(start)) {
    db.exec('BEGIN IMMEDIATE');
    try {
      const now = checkStoreFile(db, path, migrations.length); // re-read under the write lock
      if (now >= m.version) {
        db.exec('COMMIT'); // already applied, possibly by another process meanwhile
        continue;
      }
      db.exec(m.sql);
      db.exec(`PRAGMA user_version = ${m.version}`);
      db.exec('COMMIT');
    } catch (e) {
      if (db.isTransaction) db.exec('ROLLBACK');
      if (e instanceof StoreError) throw e;
      throw new StoreError(`Migrating the store ${path} to schema version ${m.version} (${m.description}) failed: ${(e as Error).message}`, { cause: e });
    }
  }
  checkApplicationId(db, path);
}

/**
 * Checks, without writing, that `db` is a keymesh store (or an empty file) that this code can use, and returns
 * its schema version. Run before anything else touches the file, so another application's database is left
 * exactly as it was.
 */
export function checkStoreFile(db: DatabaseSync, path: string, known = SCHEMA_VERSION): number {
  const current = userVersion(db);
  if (current === 0) {
    checkEmpty(db, path);
    return 0;
  }
  checkApplicationId(db, path);
  if (current > known) {
    throw new StoreError(
      `The store ${path} has schema version ${current}, newer than this keymesh knows (${known}); it was written by a newer keymesh. Upgrade keymesh, or restore a backup made before the upgrade.`,
    );
  }
  return current;
}

function userVersion(db: DatabaseSync): number {
  return Number(db.prepare('PRAGMA user_version').get()?.user_version ?? 0);
}

function checkVersions(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migration ${i} has version ${m.version}; versions must be 1, 2, 3, ...`);
  });
}

/** Version 0 with tables in it is some other application's database: do not write our schema into it. */
function checkEmpty(db: DatabaseSync, path: string): void {
  const row = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'").get();
  if (Number(row?.n ?? 0) > 0) {
    throw new StoreError(`The file ${path} is a SQLite database but not a keymesh store (it has tables and no keymesh schema version); refusing to modify it.`);
  }
}

function checkApplicationId(db: DatabaseSync, path: string): void {
  const id = Number(db.prepare('PRAGMA application_id').get()?.application_id ?? 0);
  if (id !== APPLICATION_ID) {
    throw new StoreError(`The file ${path} is a SQLite database but not a keymesh store (application_id ${id}); refusing to use it.`);
  }
}

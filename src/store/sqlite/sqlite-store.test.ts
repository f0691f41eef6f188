import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConflictError, StoreError } from '../../errors/index.ts';
import { keyOf } from '../../model/resource.ts';
import { describeStoreContract, sampleRecord } from '../contract.ts';
import type { ResourceStore } from '../store.ts';
import { APPLICATION_ID, migrate, SCHEMA_VERSION } from './migrations.ts';
import { SqliteStore } from './sqlite-store.ts';

describeStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keymesh-store-'));
  const path = join(dir, 'keymesh.db');
  const opened: ResourceStore[] = [SqliteStore.open(path)];
  return {
    store: opened[0]!,
    reopen: async () => {
      const s = SqliteStore.open(path);
      opened.push(s);
      return s;
    },
    cleanup: async () => {
      for (const s of opened) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}, { persistent: true });

const node = (name: string) => sampleRecord('virtualNode', 'm', name);

/** A second, raw connection for looking behind the store's back. */
function raw(path: string): DatabaseSync {
  return new DatabaseSync(path, { timeout: 5000 });
}

describe('SqliteStore', () => {
  let dir: string;
  let path: string;
  const toClose: { close(): unknown }[] = [];
  const track = <T extends { close(): unknown }>(x: T): T => (toClose.push(x), x);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'keymesh-sqlite-'));
    path = join(dir, 'keymesh.db');
  });
  afterEach(async () => {
    for (const x of toClose.splice(0)) await x.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the database file and its WAL are owner-only, whatever the umask', async () => {
    const old = process.umask(0);
    try {
      const store = track(SqliteStore.open(path));
      await store.create(node('a'));
      for (const f of [path, `${path}-wal`, `${path}-shm`]) {
        if (existsSync(f)) assert.equal(statSync(f).mode & 0o777, 0o600, f);
      }
      assert.ok(existsSync(`${path}-wal`), 'WAL file exists while the store is open');
    } finally {
      process.umask(old);
    }
  });

  test('an existing file readable by others is tightened to 0600', async () => {
    writeFileSync(path, '');
    chmodSync(path, 0o644);
    track(SqliteStore.open(path));
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  test('the database is in WAL mode, at the current schema version, marked as keymesh', async () => {
    track(SqliteStore.open(path));
    const db = track(raw(path));
    assert.equal(db.prepare('PRAGMA journal_mode').get()?.journal_mode, 'wal');
    assert.equal(db.prepare('PRAGMA user_version').get()?.user_version, SCHEMA_VERSION);
    assert.equal(db.prepare('PRAGMA application_id').get()?.application_id, APPLICATION_ID);
  });

  test('a file of garbage is a StoreError naming the file, and is left untouched', () => {
    const garbage = Buffer.from('this is not a database\n'.repeat(400));
    writeFileSync(path, garbage, { mode: 0o600 });
    assert.throws(() => SqliteStore.open(path), (e: unknown) => {
      assert.ok(e instanceof StoreError, String(e));
      assert.ok(e.message.includes(path), e.message);
      assert.match(e.message, /not a database/);
      return true;
    });
    assert.deepEqual(readFileSync(path), garbage);
  });

  test('corruption found after opening is a StoreError naming the file', async () => {
    const store = SqliteStore.open(path);
    for (let i = 0; i < 50; i++) await store.create(node(`n${i}`));
    await store.close(); // checkpoints the WAL into the main file
    const bytes = readFileSync(path);
    bytes.fill(0xa5, 4096); // keep page 1 (header and schema), wreck the table pages
    writeFileSync(path, bytes);
    // Depending on which pages hold the schema, the damage shows at open or at the first read.
    const openAndRead = async () => track(SqliteStore.open(path)).list({ kind: 'virtualNode', mesh: 'm', limit: 100 });
    await assert.rejects(openAndRead(), (e: unknown) => {
      assert.ok(e instanceof StoreError, String(e));
      assert.ok(e.message.includes(path), e.message);
      return true;
    });
  });

  test('a database from a newer schema version is refused, saying so', async () => {
    await SqliteStore.open(path).close();
    const db = raw(path);
    db.exec('PRAGMA user_version = 999');
    db.close();
    assert.throws(() => SqliteStore.open(path), (e: unknown) => {
      assert.ok(e instanceof StoreError, String(e));
      assert.match(e.message, /schema version 999/);
      assert.match(e.message, /newer/);
      assert.ok(e.message.includes(path));
      return true;
    });
  });

  test("another application's SQLite database is refused, not migrated", () => {
    const db = raw(path);
    db.exec('CREATE TABLE other (x)');
    db.close();
    assert.throws(() => SqliteStore.open(path), (e: unknown) => e instanceof StoreError && /not a keymesh store/.test(e.message));
    const check = track(raw(path));
    assert.equal(check.prepare('PRAGMA user_version').get()?.user_version, 0);
    assert.equal(check.prepare('PRAGMA journal_mode').get()?.journal_mode, 'delete', 'not even the journal mode was changed');
  });

  test('each migration commits on its own: a failing one leaves the previous version', () => {
    const db = track(raw(path));
    const migrations = [
      { version: 1, description: 'one', sql: `PRAGMA application_id = ${APPLICATION_ID}; CREATE TABLE one (x);` },
      { version: 2, description: 'two', sql: 'CREATE TABLE two (x); SELECT * FROM missing;' },
    ];
    assert.throws(() => migrate(db, path, migrations), (e: unknown) => e instanceof StoreError && /version 2 \(two\)/.test(e.message) && e.message.includes(path));
    assert.equal(db.prepare('PRAGMA user_version').get()?.user_version, 1);
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all().map((r) => r.name);
    assert.deepEqual(tables, ['one']);
    assert.equal(db.isTransaction, false);
  });

  test('a write whose token cannot be stored rolls back entirely', async () => {
    const store = track(SqliteStore.open(path));
    const setup = track(raw(path));
    setup.exec("CREATE TRIGGER no_tokens BEFORE INSERT ON tokens BEGIN SELECT RAISE(ABORT, 'tokens refused'); END");
    await assert.rejects(store.create(node('a'), { token: { token: 't', fingerprint: 'f', response: {}, expiresAt: 10 } }), (e: unknown) =>
      e instanceof StoreError && /tokens refused/.test(e.message) && e.message.includes(path));
    assert.equal(await store.get(keyOf(node('a'))), undefined);
    assert.equal(await store.lastSeq(), 0);
    // The store is not left inside a transaction.
    setup.exec('DROP TRIGGER no_tokens');
    assert.equal((await store.create(node('a'))).rev, 1);
  });

  test('expired tokens are purged by a later token write', async () => {
    const store = track(SqliteStore.open(path));
    await store.putToken({ token: 'old', fingerprint: 'f', response: 1, expiresAt: 1_000 });
    assert.equal(await store.getToken('old', 200_000), undefined);
    await store.putToken({ token: 'new', fingerprint: 'f', response: 2, expiresAt: 500_000 });
    const db = track(raw(path));
    assert.deepEqual(db.prepare('SELECT token FROM tokens ORDER BY token').all().map((r) => r.token), ['new']);
  });

  test('listener errors go to onError', async () => {
    const errors: unknown[] = [];
    const store = track(SqliteStore.open(path, { onError: (e) => errors.push(e) }));
    const boom = new Error('boom');
    store.watch(() => {
      throw boom;
    });
    await store.create(node('a'));
    assert.deepEqual(errors, [boom]);
  });

  test('a second instance on the same file sees writes and follows the feed by polling', async () => {
    const a = track(SqliteStore.open(path));
    const b = track(SqliteStore.open(path));
    await a.create(node('x'));
    assert.equal((await b.get(keyOf(node('x'))))?.rev, 1);
    const seen = await b.changesSince(0, 10);
    assert.deepEqual(seen.map((c) => [c.op, c.record.name]), [['create', 'x']]);
    await b.update(node('x'), 1);
    await assert.rejects(a.update(node('x'), 1), ConflictError); // compare-and-swap holds across processes
    await a.create(node('y'));
    assert.deepEqual((await b.changesSince(seen.at(-1)!.seq, 10)).map((c) => [c.op, c.record.name]), [['update', 'x'], ['create', 'y']]);
    assert.equal(await a.lastSeq(), await b.lastSeq());
  });

  test('every acknowledged write survives kill -9 of the writing process', async () => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('./durability-child.test-helper.ts', import.meta.url)), path], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const acked: string[] = [];
    let pending = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    const deadline = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.stdout.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop()!;
      acked.push(...lines);
      if (acked.length >= 100) child.kill('SIGKILL');
    });
    const signal = await exited;
    clearTimeout(deadline);
    assert.equal(signal, 'SIGKILL', `child ended on its own: ${stderr}`);
    assert.ok(acked.length > 0, `no write was acknowledged within 5 s: ${stderr}`);

    const store = track(SqliteStore.open(path));
    const missing: string[] = [];
    for (const name of acked) if (!(await store.get(keyOf(node(name))))) missing.push(name);
    assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged writes lost`);
    for (const name of acked) assert.ok(await store.getToken(`t-${name}`, 0), `token of ${name}`);
    assert.ok((await store.lastSeq()) >= acked.length);
    const db = track(raw(path));
    assert.deepEqual(db.prepare('PRAGMA integrity_check').all().map((r) => r.integrity_check), ['ok']);
  });
});

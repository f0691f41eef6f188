import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import { describeCaStoreContract, sampleCa } from '../ca-contract.ts';
import type { CaStore } from '../ca-store.ts';
import { SCHEMA_VERSION } from './migrations.ts';
import { SqliteCaStore } from './sqlite-ca-store.ts';
import { SqliteStore } from './sqlite-store.ts';

describeCaStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keymesh-ca-store-'));
  const path = join(dir, 'keymesh.db');
  const opened: CaStore[] = [SqliteCaStore.open(path)];
  const open = async () => {
    const s = SqliteCaStore.open(path);
    opened.push(s);
    return s;
  };
  return {
    store: opened[0]!,
    reopen: open,
    second: open,
    cleanup: async () => {
      for (const s of opened) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}, { persistent: true });

test('sqlite: the CA tables live in the resource store file, beside its resources', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keymesh-ca-store-'));
  try {
    const path = join(dir, 'keymesh.db');
    const resources = SqliteStore.open(path);
    const cas = SqliteCaStore.open(path);
    await cas.createCa(sampleCa('a'));
    assert.equal(await resources.lastSeq(), 0);
    await resources.close();
    await cas.close();
    const db = new DatabaseSync(path);
    assert.equal(db.prepare('PRAGMA user_version').get()?.user_version, SCHEMA_VERSION);
    assert.equal(db.prepare('PRAGMA journal_mode').get()?.journal_mode, 'wal');
    assert.deepEqual(db.prepare('SELECT id FROM cas').all().map((r) => r.id), ['a']);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sqlite: the one-active index holds even for writes that bypass the store', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'keymesh-ca-store-'));
  try {
    const path = join(dir, 'keymesh.db');
    const cas = SqliteCaStore.open(path);
    await cas.createCa(sampleCa('a'));
    await cas.createCa(sampleCa('b', 'td', 'retiring'));
    const db = new DatabaseSync(path, { timeout: 5000 });
    assert.throws(() => db.exec("UPDATE cas SET status = 'active' WHERE id = 'b'"), /UNIQUE/);
    db.close();
    await cas.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

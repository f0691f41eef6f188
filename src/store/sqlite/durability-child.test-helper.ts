// Child process for the durability test: writes records as fast as it can and prints each name once its
// write is acknowledged, until the parent kills it. Not a test itself (the test glob is *.test.ts), and it
// does not import the contract module, which would load node:test into this process.
import type { ResourceRecord } from '../../model/resource.ts';
import { SqliteStore } from './sqlite-store.ts';

const path = process.argv[2];
if (!path) throw new Error('usage: durability-child.test-helper.ts <db path>');
const store = SqliteStore.open(path);
const account = '000000000000';
// Bounded so that an orphaned child cannot run forever.
for (let i = 0; i < 100_000; i++) {
  const name = `n${String(i).padStart(6, '0')}`;
  const record: ResourceRecord = {
    kind: 'virtualNode', mesh: 'm', parent: '', name, spec: { i }, tags: [], rev: 0,
    metadata: { arn: `arn:aws:appmesh:us-east-1:${account}:mesh/m/virtualNode/${name}`, uid: name, version: 1, createdAt: i, lastUpdatedAt: i, meshOwner: account, resourceOwner: account },
  };
  await store.create(record, { token: { token: `t-${name}`, fingerprint: 'f', response: { name }, expiresAt: Number.MAX_SAFE_INTEGER } });
  process.stdout.write(`${name}\n`);
}
await store.close();

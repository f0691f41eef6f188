// One contract for both EndpointStore backends, plus SQLite's persistence across a reopen.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { EndpointRecord, EndpointStore } from './endpoint-store.ts';
import { MemoryEndpointStore } from './memory/memory-endpoint-store.ts';
import { SqliteEndpointStore } from './sqlite/sqlite-endpoint-store.ts';

const rec = (virtualNode: string, instance: string, extra: Partial<EndpointRecord> = {}): EndpointRecord => ({
  mesh: 'm', virtualNode, instance, address: '127.0.0.1', port: 15000, ports: [], source: 'proxy', registeredAt: 1, expiresAt: null, ...extra,
});

type Opened = { store: EndpointStore & { close(): Promise<void> }; reopen?: () => EndpointStore & { close(): Promise<void> }; cleanup: () => void };

const backends: Record<string, () => Opened> = {
  memory: () => ({ store: new MemoryEndpointStore(), cleanup: () => {} }),
  sqlite: () => {
    const dir = mkdtempSync(join(tmpdir(), 'keymesh-endpoints-'));
    const path = join(dir, 'keymesh.db');
    return { store: SqliteEndpointStore.open(path), reopen: () => SqliteEndpointStore.open(path), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  },
};

for (const [name, open] of Object.entries(backends)) {
  describe(`EndpointStore (${name})`, () => {
    test('put replaces by key; list is ordered and filtered by mesh; delete returns the record', async () => {
      const { store, cleanup } = open();
      try {
        await store.putEndpoint(rec('b', 'x', { ports: [9090] }));
        await store.putEndpoint(rec('a', 'y'));
        await store.putEndpoint(rec('a', 'x'));
        await store.putEndpoint(rec('a', 'x', { address: '127.0.0.2' }));
        await store.putEndpoint(rec('a', 'x', { mesh: 'other' }));
        const all = await store.listEndpoints({ mesh: 'm' });
        assert.deepEqual(all.map((r) => `${r.virtualNode}/${r.instance}@${r.address}`), ['a/x@127.0.0.2', 'a/y@127.0.0.1', 'b/x@127.0.0.1']);
        assert.deepEqual(all[2]!.ports, [9090]);
        assert.equal((await store.listEndpoints()).length, 4);
        assert.equal((await store.getEndpoint({ mesh: 'm', virtualNode: 'a', instance: 'x' }))?.address, '127.0.0.2');
        assert.equal(await store.getEndpoint({ mesh: 'm', virtualNode: 'a', instance: 'z' }), undefined);
        assert.equal((await store.deleteEndpoint({ mesh: 'm', virtualNode: 'a', instance: 'y' }))?.instance, 'y');
        assert.equal(await store.deleteEndpoint({ mesh: 'm', virtualNode: 'a', instance: 'y' }), undefined);
      } finally {
        await store.close();
        cleanup();
      }
    });

    test('leases: connected proxies get one at start-up, static ones never; expired records are removed', async () => {
      const { store, cleanup } = open();
      try {
        await store.putEndpoint(rec('a', 'connected'));
        await store.putEndpoint(rec('a', 'static', { source: 'static' }));
        await store.putEndpoint(rec('a', 'leaving', { expiresAt: 50 }));
        assert.equal(await store.leaseConnectedEndpoints(100), 1);
        assert.equal(await store.setEndpointExpiry({ mesh: 'm', virtualNode: 'a', instance: 'missing' }, 5), false);
        assert.deepEqual((await store.deleteExpiredEndpoints(60)).map((r) => r.instance), ['leaving']);
        assert.equal(await store.setEndpointExpiry({ mesh: 'm', virtualNode: 'a', instance: 'connected' }, null), true);
        assert.deepEqual((await store.deleteExpiredEndpoints(1000)).map((r) => r.instance), []);
        assert.deepEqual((await store.listEndpoints()).map((r) => [r.instance, r.expiresAt]), [['connected', null], ['static', null]]);
      } finally {
        await store.close();
        cleanup();
      }
    });
  });
}

test('EndpointStore (sqlite): registrations survive a reopen (a restarted control plane keeps them)', async () => {
  const { store, reopen, cleanup } = backends.sqlite!();
  try {
    await store.putEndpoint(rec('a', 'x', { ports: [1, 2] }));
    await store.close();
    const again = reopen!();
    assert.deepEqual(await again.listEndpoints(), [rec('a', 'x', { ports: [1, 2] })]);
    await again.close();
  } finally {
    cleanup();
  }
});

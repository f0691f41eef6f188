// The behaviour every ResourceStore backend must show, as one node:test suite. A backend's test file calls
// describeStoreContract with a factory; backends that persist also pass `reopen` and get the persistence tests.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ConflictError, NotFoundError, StoreError } from '../errors/index.ts';
import type { JsonObject } from '../model/json.ts';
import { arnFor, type KindName, type ResourceKey } from '../model/kinds.ts';
import { keyOf, type ResourceRecord } from '../model/resource.ts';
import type { Change, ResourceStore, TokenEntry } from './store.ts';

export interface StoreFixture {
  store: ResourceStore;
  /** Opens a new instance on the same data. The suite closes `store` first. */
  reopen?: () => Promise<ResourceStore>;
  /** Closes whatever is still open (close is idempotent) and removes the data. */
  cleanup: () => Promise<void>;
}

const ACCOUNT = '000000000000';

/** A valid record for tests; `rev` is 0 because the store assigns it. */
export function sampleRecord(kind: KindName, mesh: string, name: string, parent = '', spec: JsonObject = {}): ResourceRecord {
  const key: ResourceKey = { kind, mesh: kind === 'mesh' ? name : mesh, parent, name };
  return {
    ...key,
    spec,
    tags: [],
    metadata: { arn: arnFor(key, 'us-east-1', ACCOUNT), uid: `uid-${name}`, version: 1, createdAt: 1, lastUpdatedAt: 1, meshOwner: ACCOUNT, resourceOwner: ACCOUNT },
    rev: 0,
  };
}

const node = (name: string, mesh = 'm', spec: JsonObject = {}) => sampleRecord('virtualNode', mesh, name, '', spec);
const route = (name: string, router: string, mesh = 'm') => sampleRecord('route', mesh, name, router);
const token = (name: string, expiresAt = 1000, response: JsonObject = { ok: name }): TokenEntry => ({ token: name, fingerprint: `fp-${name}`, response, expiresAt });
const names = (records: ResourceRecord[]) => records.map((r) => r.name);
const id = (r: ResourceRecord) => `${r.kind}/${r.mesh}/${r.parent}/${r.name}`;

function isError(type: new (...args: never[]) => Error, ...mentions: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
    for (const m of mentions) assert.match(e.message, new RegExp(m), `message should mention ${m}: ${e.message}`);
    return true;
  };
}

export interface ContractOptions {
  /** The backend keeps data across instances; adds the reopen tests (the fixture must provide `reopen`). */
  persistent?: boolean;
}

export function describeStoreContract(name: string, makeStore: () => Promise<StoreFixture>, options: ContractOptions = {}): void {
  describe(`ResourceStore contract: ${name}`, () => {
    let fx: StoreFixture;
    let store: ResourceStore;
    beforeEach(async () => {
      fx = await makeStore();
      store = fx.store;
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    describe('reads and creates', () => {
      test('create assigns rev 1 and returns the stored record', async () => {
        const created = await store.create({ ...node('n1'), rev: 7 });
        assert.deepEqual(created, { ...node('n1'), rev: 1 });
        assert.deepEqual(await store.get(keyOf(created)), created);
        assert.equal(await store.get({ kind: 'virtualNode', mesh: 'm', parent: '', name: 'n2' }), undefined);
      });

      test('creating an existing key is a ConflictError naming it, and changes nothing', async () => {
        await store.create(node('n1', 'm', { a: 1 }));
        const seq = await store.lastSeq();
        await assert.rejects(store.create(node('n1', 'm', { a: 2 })), isError(ConflictError, 'n1'));
        assert.deepEqual((await store.get(keyOf(node('n1'))))?.spec, { a: 1 });
        assert.equal(await store.lastSeq(), seq);
      });

      test('the same name under another kind, mesh or parent is another resource', async () => {
        const records = [node('x'), node('x', 'm2'), sampleRecord('virtualService', 'm', 'x'), route('x', 'r1'), route('x', 'r2')];
        for (const r of records) await store.create(r);
        for (const r of records) assert.deepEqual(await store.get(keyOf(r)), { ...r, rev: 1 });
      });

      test('list orders by name in UTF-8 byte order', async () => {
        const unordered = ['b', 'a', '\u{1F600}', 'a_1', 'B', '\uFFFD', 'a-1', '\u00E9'];
        for (const n of unordered) await store.create(node(n));
        const page = await store.list({ kind: 'virtualNode', mesh: 'm', limit: 100 });
        assert.deepEqual(names(page.items), ['B', 'a', 'a-1', 'a_1', 'b', '\u00E9', '\uFFFD', '\u{1F600}']);
        assert.equal(page.more, false);
      });

      test('list paginates with after, limit and more', async () => {
        for (const n of ['e', 'c', 'a', 'd', 'b']) await store.create(node(n));
        const q = { kind: 'virtualNode', mesh: 'm' } as const;
        assert.deepEqual(await store.list({ ...q, limit: 2 }).then((p) => [names(p.items), p.more]), [['a', 'b'], true]);
        assert.deepEqual(await store.list({ ...q, after: 'b', limit: 2 }).then((p) => [names(p.items), p.more]), [['c', 'd'], true]);
        assert.deepEqual(await store.list({ ...q, after: 'd', limit: 2 }).then((p) => [names(p.items), p.more]), [['e'], false]);
        // A page that ends exactly at the last item says there is no more.
        assert.deepEqual(await store.list({ ...q, after: 'c', limit: 2 }).then((p) => [names(p.items), p.more]), [['d', 'e'], false]);
        // The cursor need not be a stored name (it may have been deleted meanwhile).
        assert.deepEqual(await store.list({ ...q, after: 'bb', limit: 10 }).then((p) => names(p.items)), ['c', 'd', 'e']);
        assert.deepEqual(await store.list({ ...q, after: 'e', limit: 10 }), { items: [], more: false });
        assert.deepEqual(await store.list({ ...q, limit: 0 }), { items: [], more: true });
        await assert.rejects(store.list({ ...q, limit: -1 }), StoreError);
        await assert.rejects(store.list({ ...q, limit: 1.5 }), StoreError);
      });

      test('list and count are scoped by kind, mesh and parent', async () => {
        for (const r of [
          sampleRecord('mesh', '', 'm'), sampleRecord('mesh', '', 'm2'),
          route('r-a', 'r1'), route('r-b', 'r1'), route('r-c', 'r2'), route('r-d', 'r1', 'm2'),
          node('n1'), node('n2', 'm2'),
        ]) await store.create(r);
        const routes = await store.list({ kind: 'route', mesh: 'm', parent: 'r1', limit: 10 });
        assert.deepEqual(names(routes.items), ['r-a', 'r-b']);
        assert.equal(await store.count({ kind: 'route', mesh: 'm', parent: 'r1' }), 2);
        assert.equal(await store.count({ kind: 'route', mesh: 'm', parent: 'r2' }), 1);
        assert.equal(await store.count({ kind: 'route', mesh: 'm' }), 3);
        assert.equal(await store.count({ kind: 'route', mesh: 'm3' }), 0);
        assert.deepEqual(names((await store.list({ kind: 'virtualNode', mesh: 'm2', limit: 10 })).items), ['n2']);
        assert.deepEqual(names((await store.list({ kind: 'mesh', limit: 10 })).items), ['m', 'm2']);
        assert.equal(await store.count({ kind: 'mesh' }), 2);
        assert.equal(await store.count({ kind: 'virtualGateway', mesh: 'm' }), 0);
      });

      test('listMesh returns every kind of one mesh, the mesh itself included, and nothing else', async () => {
        const inM = [sampleRecord('mesh', '', 'm'), node('n1'), route('r-a', 'r1'), sampleRecord('virtualRouter', 'm', 'r1')];
        for (const r of [...inM, sampleRecord('mesh', '', 'm2'), node('n1', 'm2')]) await store.create(r);
        const got = await store.listMesh('m');
        assert.deepEqual(got.map(id).sort(), inM.map(id).sort());
        assert.ok(got.every((r) => r.rev === 1));
        assert.deepEqual(await store.listMesh('nope'), []);
      });
    });

    describe('updates and deletes', () => {
      test('update replaces the record when the revision matches and bumps it', async () => {
        await store.create(node('n1'));
        const updated = await store.update({ ...node('n1', 'm', { x: 1 }), rev: 99 }, 1);
        assert.deepEqual(updated, { ...node('n1', 'm', { x: 1 }), rev: 2 });
        assert.deepEqual(await store.get(keyOf(updated)), updated);
      });

      test('update with a stale revision is a ConflictError naming the resource, and changes nothing', async () => {
        await store.create(node('n1'));
        await store.update(node('n1', 'm', { x: 1 }), 1);
        const seq = await store.lastSeq();
        await assert.rejects(store.update(node('n1', 'm', { x: 2 }), 1), isError(ConflictError, 'n1'));
        assert.deepEqual(await store.get(keyOf(node('n1'))), { ...node('n1', 'm', { x: 1 }), rev: 2 });
        assert.equal(await store.lastSeq(), seq);
      });

      test('update and delete of a missing resource are NotFoundErrors naming it', async () => {
        await assert.rejects(store.update(node('ghost'), 1), isError(NotFoundError, 'ghost'));
        await assert.rejects(store.delete(keyOf(node('ghost')), 1), isError(NotFoundError, 'ghost'));
        assert.equal(await store.lastSeq(), 0);
      });

      test('delete checks the revision and returns the last state', async () => {
        await store.create(node('n1'));
        await store.update(node('n1', 'm', { x: 1 }), 1);
        await assert.rejects(store.delete(keyOf(node('n1')), 1), isError(ConflictError, 'n1'));
        assert.equal((await store.get(keyOf(node('n1'))))?.rev, 2);
        assert.deepEqual(await store.delete(keyOf(node('n1')), 2), { ...node('n1', 'm', { x: 1 }), rev: 2 });
        assert.equal(await store.get(keyOf(node('n1'))), undefined);
        assert.equal(await store.count({ kind: 'virtualNode', mesh: 'm' }), 0);
        // The name is free again, and starts over at rev 1.
        assert.equal((await store.create(node('n1'))).rev, 1);
      });
    });

    test('records go in and out as copies', async () => {
      const input = node('n1', 'm', { a: 1 });
      const watched: Change[] = [];
      store.watch((c) => watched.push(c));
      const created = await store.create(input);
      input.spec.a = 'input';
      created.spec.a = 'returned';
      watched[0]!.record.spec.a = 'watched';
      (await store.get(keyOf(input)))!.spec.a = 'got';
      (await store.list({ kind: 'virtualNode', mesh: 'm', limit: 1 })).items[0]!.spec.a = 'listed';
      (await store.listMesh('m'))[0]!.tags.push({ key: 'k', value: 'v' });
      (await store.changesSince(0, 1))[0]!.record.spec.a = 'fed';
      assert.deepEqual(await store.get(keyOf(input)), { ...node('n1', 'm', { a: 1 }), rev: 1 });
      assert.deepEqual((await store.changesSince(0, 1))[0]!.record.spec, { a: 1 });

      const t = token('t1', 1000, { r: 1 });
      await store.putToken(t);
      (t.response as JsonObject).r = 'input';
      ((await store.getToken('t1', 0))!.response as JsonObject).r = 'got';
      assert.deepEqual(await store.getToken('t1', 0), token('t1', 1000, { r: 1 }));
    });

    describe('idempotency tokens', () => {
      test('a token is stored with its write and kept until it expires', async () => {
        const created = await store.create(node('n1'), { token: token('t1', 1000, { name: 'n1' }) });
        assert.deepEqual(await store.getToken('t1', 0), token('t1', 1000, { name: 'n1' }));
        assert.deepEqual(await store.getToken('t1', 1000), token('t1', 1000, { name: 'n1' }), 'still valid at expiresAt');
        assert.equal(await store.getToken('t1', 1001), undefined, 'expired');
        assert.equal(await store.getToken('unknown', 0), undefined);
        await store.update(created, 1, { token: token('t2', 2000) });
        assert.deepEqual(await store.getToken('t2', 1500), token('t2', 2000));
      });

      test('putToken stores a token without a write, and replaces an earlier one', async () => {
        await store.putToken(token('t1', 100));
        assert.deepEqual(await store.getToken('t1', 50), token('t1', 100));
        await store.putToken(token('t1', 500, { again: true }));
        assert.deepEqual(await store.getToken('t1', 200), token('t1', 500, { again: true }));
        assert.equal(await store.lastSeq(), 0, 'a token alone is not a change');
      });

      test('a failed write stores no token', async () => {
        await store.create(node('n1'));
        await assert.rejects(store.create(node('n1'), { token: token('dup') }), ConflictError);
        await assert.rejects(store.update(node('n1'), 5, { token: token('stale') }), ConflictError);
        await assert.rejects(store.update(node('ghost'), 1, { token: token('missing') }), NotFoundError);
        for (const t of ['dup', 'stale', 'missing']) assert.equal(await store.getToken(t, 0), undefined, t);
      });
    });

    describe('change feed', () => {
      test('each write appends one change, in commit order, with the record after it', async () => {
        assert.equal(await store.lastSeq(), 0);
        assert.deepEqual(await store.changesSince(0, 10), []);
        await store.create(node('a'));
        await store.create(node('b'));
        await store.update(node('a', 'm', { v: 2 }), 1);
        await assert.rejects(store.update(node('a'), 1), ConflictError); // failed writes leave no trace
        await store.delete(keyOf(node('b')), 1);
        const changes = await store.changesSince(0, 10);
        assert.deepEqual(changes.map((c) => [c.op, c.record]), [
          ['create', { ...node('a'), rev: 1 }],
          ['create', { ...node('b'), rev: 1 }],
          ['update', { ...node('a', 'm', { v: 2 }), rev: 2 }],
          ['delete', { ...node('b'), rev: 1 }],
        ]);
        for (let i = 1; i < changes.length; i++) assert.ok(changes[i]!.seq > changes[i - 1]!.seq, 'seq ascends');
        assert.ok(changes[0]!.seq > 0);
        assert.equal(await store.lastSeq(), changes.at(-1)!.seq);
      });

      test('changesSince pages through the feed', async () => {
        for (const n of ['a', 'b', 'c', 'd', 'e']) await store.create(node(n));
        const all = await store.changesSince(0, 100);
        const paged: Change[] = [];
        for (let after = 0; ;) {
          const page = await store.changesSince(after, 2);
          assert.ok(page.length <= 2);
          if (page.length === 0) break;
          paged.push(...page);
          after = page.at(-1)!.seq;
        }
        assert.deepEqual(paged, all);
        assert.deepEqual(names(all.map((c) => c.record)), ['a', 'b', 'c', 'd', 'e']);
        assert.deepEqual(await store.changesSince(await store.lastSeq(), 10), []);
        assert.deepEqual(await store.changesSince(all[2]!.seq, 10), all.slice(3));
        await assert.rejects(store.changesSince(0, -1), StoreError);
      });

      test('watch is called once per commit, after the commit, and stops after unsubscribe', async () => {
        const seen: Change[] = [];
        const visible: Promise<ResourceRecord | undefined>[] = [];
        const unsubscribe = store.watch((c) => {
          seen.push(c);
          visible.push(store.get(keyOf(c.record))); // the write is already committed when listeners run
        });
        const other: number[] = [];
        store.watch((c) => other.push(c.seq));
        await store.create(node('a'));
        await assert.rejects(store.create(node('a')), ConflictError);
        await store.update(node('a', 'm', { v: 2 }), 1);
        assert.deepEqual(seen, await store.changesSince(0, 10));
        assert.deepEqual(other, seen.map((c) => c.seq));
        assert.deepEqual((await Promise.all(visible)).map((r) => r?.rev), [1, 2]);
        unsubscribe();
        unsubscribe(); // harmless twice
        await store.delete(keyOf(node('a')), 2);
        assert.equal(seen.length, 2);
        assert.equal(other.length, 3);
      });

      test('a throwing listener neither fails the write nor starves other listeners', async () => {
        store.watch(() => {
          throw new Error('listener bug');
        });
        const seen: string[] = [];
        store.watch((c) => seen.push(c.record.name));
        assert.equal((await store.create(node('a'))).rev, 1);
        assert.equal((await store.get(keyOf(node('a'))))?.rev, 1);
        assert.deepEqual(seen, ['a']);
      });
    });

    test('close is idempotent, and a closed store refuses work', async () => {
      await store.close();
      await store.close();
      await assert.rejects(store.get(keyOf(node('a'))));
      await assert.rejects(store.create(node('a')));
    });

    if (options.persistent) test('after reopening, everything is still there', async () => {
      assert.ok(fx.reopen, 'a persistent backend must provide reopen');
      await store.create(sampleRecord('mesh', '', 'm'));
      for (const n of ['a', 'b', 'c']) await store.create(node(n), { token: token(`t-${n}`, 5000, { n }) });
      await store.update(node('a', 'm', { v: 2 }), 1);
      await store.delete(keyOf(node('b')), 1);
      await store.putToken(token('bare', 5000));
      const before = {
        mesh: await store.listMesh('m'),
        list: await store.list({ kind: 'virtualNode', mesh: 'm', limit: 10 }),
        changes: await store.changesSince(0, 100),
        lastSeq: await store.lastSeq(),
        tokens: await Promise.all(['t-a', 't-b', 't-c', 'bare'].map((k) => store.getToken(k, 0))),
      };
      await store.close();
      const again = await fx.reopen!();
      assert.deepEqual(await again.listMesh('m'), before.mesh);
      assert.deepEqual(await again.list({ kind: 'virtualNode', mesh: 'm', limit: 10 }), before.list);
      assert.deepEqual(await again.changesSince(0, 100), before.changes);
      assert.equal(await again.lastSeq(), before.lastSeq);
      assert.deepEqual(await Promise.all(['t-a', 't-b', 't-c', 'bare'].map((k) => again.getToken(k, 0))), before.tokens);
      assert.ok(before.tokens.every((x) => x !== undefined));
      // Revisions and the feed continue where they were.
      assert.equal((await again.update(node('a', 'm', { v: 3 }), 2)).rev, 3);
      assert.ok((await again.lastSeq()) > before.lastSeq);
      await again.close();
    });
  });
}

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../base/clock.ts';
import { ConflictError, NotFoundError, ResourceInUseError } from '../errors/index.ts';
import type { ResourceKey } from '../model/kinds.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import { DEFAULT_LIMITS } from './limits.ts';
import { ResourceManager } from './manager.ts';

function setup(externalArns: string[] = []) {
  const clock = new ManualClock();
  let n = 0;
  const manager = new ResourceManager({
    store: new MemoryStore(),
    clock,
    account: '000000000000',
    region: 'us-east-1',
    limits: DEFAULT_LIMITS,
    newUid: () => `uid-${++n}`,
    externalReferences: { exists: async (_kind, arn) => externalArns.includes(arn) },
  });
  return { manager, clock };
}

const mesh: ResourceKey = { kind: 'mesh', mesh: 'm', parent: '', name: 'm' };
const node = (name: string): ResourceKey => ({ kind: 'virtualNode', mesh: 'm', parent: '', name });

test('versions move only when the spec changes; timestamps follow the injected clock', async () => {
  const { manager, clock } = setup();
  await manager.create(mesh, {}, []);
  const created = await manager.create(node('a'), {}, []);
  assert.equal(created.metadata.version, 1);
  clock.advance(1000);
  const same = await manager.update(node('a'), {});
  assert.equal(same.metadata.version, 1);
  const changed = await manager.update(node('a'), { backends: [{ virtualService: { virtualServiceName: 's' } }] });
  assert.equal(changed.metadata.version, 2);
  assert.equal(changed.metadata.lastUpdatedAt - changed.metadata.createdAt, 1000);
});

test('null members are dropped before storing, as if they were not sent', async () => {
  const { manager } = setup();
  await manager.create(mesh, {}, []);
  const created = await manager.create(node('a'), { backends: null, logging: null } as never, []);
  assert.deepEqual(created.spec, {});
});

test('a re-created name gets a new uid and starts at version 1', async () => {
  const { manager } = setup();
  await manager.create(mesh, {}, []);
  const first = await manager.create(node('a'), {}, []);
  await manager.update(node('a'), { backends: [] });
  await manager.delete(node('a'));
  const again = await manager.create(node('a'), {}, []);
  assert.notEqual(again.metadata.uid, first.metadata.uid);
  assert.equal(again.metadata.version, 1);
});

test('concurrent creates of one name: exactly one wins, the rest are ConflictError', async () => {
  const { manager } = setup();
  await manager.create(mesh, {}, []);
  const results = await Promise.allSettled(Array.from({ length: 10 }, () => manager.create(node('same'), {}, [])));
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  assert.ok(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason instanceof ConflictError));
});

test('a delete racing a reference is serialized: the route either lands first and blocks, or fails NotFound', async () => {
  const { manager } = setup();
  await manager.create(mesh, {}, []);
  await manager.create(node('a'), {}, []);
  await manager.create({ kind: 'virtualRouter', mesh: 'm', parent: '', name: 'r' }, {}, []);
  const route = manager.create({ kind: 'route', mesh: 'm', parent: 'r', name: 'x' }, { tcpRoute: { action: { weightedTargets: [{ virtualNode: 'a', weight: 1 }] } } }, []);
  const del = manager.delete(node('a'));
  const [r, d] = await Promise.allSettled([route, del]);
  assert.equal(r.status, 'fulfilled');
  assert.equal(d.status, 'rejected');
  assert.ok((d as PromiseRejectedResult).reason instanceof ResourceInUseError);
});

test('ACM ARNs in specs must name keymesh-managed certificates and CAs', async () => {
  const cert = 'arn:aws:acm:us-east-1:000000000000:certificate/11111111-2222-3333-4444-555555555555';
  const { manager } = setup([cert]);
  await manager.create(mesh, {}, []);
  const listener = (arn: string) => ({
    listeners: [{ portMapping: { port: 9080, protocol: 'http' }, tls: { mode: 'STRICT', certificate: { acm: { certificateArn: arn } } } }],
    serviceDiscovery: { dns: { hostname: 'a.local' } },
  });
  await manager.create(node('ok'), listener(cert), []);
  const missing = cert.replace('1111', '9999');
  await assert.rejects(manager.create(node('bad'), listener(missing), []), (e: Error) => {
    assert.ok(e instanceof NotFoundError);
    assert.match(e.message, /spec\.listeners\[0\]\.tls\.certificate\.acm\.certificateArn: no keymesh-managed certificate/);
    return true;
  });
});

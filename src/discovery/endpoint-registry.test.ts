import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../base/clock.ts';
import { BadRequestError, NotFoundError } from '../errors/index.ts';
import { MemoryEndpointStore } from '../store/memory/memory-endpoint-store.ts';
import { EndpointRegistry } from './endpoint-registry.ts';

function setup() {
  const store = new MemoryEndpointStore();
  const clock = new ManualClock();
  const registry = new EndpointRegistry({ store, clock, graceMs: 30_000 });
  const events: string[] = [];
  registry.watch((mesh) => events.push(mesh));
  return { store, clock, registry, events };
}

const web = { mesh: 'm', virtualNode: 'web', address: '127.0.0.1', port: 15010 };

test('a proxy stays registered while connected and for the grace period after its last stream ends', async () => {
  const { clock, registry, events } = setup();
  const release1 = await registry.attach(web);
  const release2 = await registry.attach(web); // a second stream of the same instance (reconnect overlap)
  assert.deepEqual(events, ['m'], 'one membership change');
  const [r] = await registry.list();
  assert.equal(r?.instance, '127.0.0.1:15010');
  assert.equal(r?.expiresAt, null);

  await release1();
  await release1(); // idempotent
  assert.equal((await registry.list())[0]?.expiresAt, null, 'another stream still holds it');
  await release2();
  assert.equal((await registry.list())[0]?.expiresAt, clock.now() + 30_000);

  clock.advance(29_999);
  assert.deepEqual(await registry.sweep(), []);
  clock.advance(1);
  assert.deepEqual((await registry.sweep()).map((e) => e.instance), ['127.0.0.1:15010']);
  assert.deepEqual(events, ['m', 'm']);
  assert.deepEqual(await registry.list(), []);
});

test('a proxy that reconnects within the grace period keeps its registration without a membership change', async () => {
  const { clock, registry, events } = setup();
  await (await registry.attach(web))();
  clock.advance(10_000);
  await registry.attach(web);
  clock.advance(60_000);
  assert.deepEqual(await registry.sweep(), []);
  assert.deepEqual(events, ['m']);
  const moved = await registry.attach({ ...web, instance: '127.0.0.1:15010', address: '127.0.0.2', port: 15010 });
  assert.equal(typeof moved, 'function');
  assert.deepEqual(events, ['m', 'm'], 'a new address is a membership change');
});

test("start gives the previous process's connected proxies a grace period; static registrations stay", async () => {
  const { store, clock, registry } = setup();
  await store.putEndpoint({ ...web, instance: 'old', ports: [], source: 'proxy', registeredAt: 0, expiresAt: null });
  await registry.register({ ...web, virtualNode: 'legacy', instance: 'vm-1' });
  await registry.start();
  try {
    clock.advance(30_000);
    assert.deepEqual((await registry.sweep()).map((e) => e.instance), ['old']);
    assert.deepEqual((await registry.list()).map((e) => `${e.virtualNode}/${e.instance}/${e.source}`), ['legacy/vm-1/static']);
  } finally {
    await registry.close();
  }
});

test('deregister removes a registration; an unknown one is NotFound', async () => {
  const { registry, events } = setup();
  await registry.register({ ...web, ports: [9090, 15010, 9090] });
  assert.deepEqual((await registry.list())[0]?.ports, [9090], 'deduplicated, without the main port');
  await registry.deregister({ mesh: 'm', virtualNode: 'web', instance: '127.0.0.1:15010' });
  assert.deepEqual(events, ['m', 'm']);
  await assert.rejects(registry.deregister({ mesh: 'm', virtualNode: 'web', instance: 'nope' }), (e: unknown) => e instanceof NotFoundError && /nope of m\/web is not registered/.test(e.message));
});

test('bad registrations are refused with the reason, and nothing is stored', async () => {
  const { registry } = setup();
  const cases: [object, RegExp][] = [
    [{ address: 'web.local' }, /address "web.local" of m\/web is not an IP address/],
    [{ port: 0 }, /port 0 of m\/web is not a port/],
    [{ port: 70000 }, /port 70000/],
    [{ ports: [8080.5] }, /port 8080.5/],
    [{ instance: 'has space' }, /instance id "has space"/],
    [{ virtualNode: '' }, /needs a mesh and a virtual node/],
  ];
  for (const [patch, message] of cases) {
    await assert.rejects(registry.register({ ...web, ...patch }), (e: unknown) => e instanceof BadRequestError && message.test(e.message), JSON.stringify(patch));
    await assert.rejects(registry.attach({ ...web, ...patch }), BadRequestError);
  }
  assert.deepEqual(await registry.list(), []);
  const v6 = await registry.register({ ...web, address: '::1' });
  assert.equal(v6.instance, '[::1]:15010');
});

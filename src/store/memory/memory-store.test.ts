import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeStoreContract, sampleRecord } from '../contract.ts';
import { compareNames, MemoryStore } from './memory-store.ts';

describeStoreContract('memory', async () => {
  const store = new MemoryStore();
  return { store, cleanup: () => store.close() };
});

test('memory: listener errors go to onError', async () => {
  const errors: unknown[] = [];
  const store = new MemoryStore({ onError: (e) => errors.push(e) });
  const boom = new Error('boom');
  store.watch(() => {
    throw boom;
  });
  await store.create(sampleRecord('mesh', '', 'm'));
  assert.deepEqual(errors, [boom]);
});

test('memory: compareNames is UTF-8 byte order', () => {
  const sorted = ['\u{1F600}', '\uFFFD', 'ab', 'a', '', 'b'].sort(compareNames);
  assert.deepEqual(sorted, ['', 'a', 'ab', 'b', '\uFFFD', '\u{1F600}']);
  const bytes = (s: string) => Buffer.from(s, 'utf8');
  assert.deepEqual(sorted, [...sorted].sort((x, y) => Buffer.compare(bytes(x), bytes(y))));
});

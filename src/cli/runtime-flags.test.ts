import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DATA_PLANE_V8_FLAGS, dataPlaneRestartArgs } from './runtime-flags.ts';

const base = { execPath: '/n/node', execArgv: [] as string[], nodeOptions: undefined };

test('proxy and gateway restart with the data-plane flags before their own arguments', () => {
  for (const command of ['proxy', 'gateway']) {
    const args = dataPlaneRestartArgs({ ...base, execArgv: ['--cpu-prof'], argv: ['/n/node', '/k/main.ts', command, '--mesh', 'm'] });
    assert.deepEqual(args, ['/n/node', ...DATA_PLANE_V8_FLAGS, '--cpu-prof', '/k/main.ts', command, '--mesh', 'm']);
  }
});

test('other commands, and a process that already has the flags, do not restart', () => {
  assert.equal(dataPlaneRestartArgs({ ...base, argv: ['/n/node', '/k/main.ts', 'server'] }), undefined);
  assert.equal(dataPlaneRestartArgs({ ...base, argv: ['/n/node', '/k/main.ts'] }), undefined);
  assert.equal(dataPlaneRestartArgs({ ...base, execArgv: [...DATA_PLANE_V8_FLAGS], argv: ['/n/node', '/k/main.ts', 'proxy'] }), undefined);
});

test("the user's own settings win, from the command line or NODE_OPTIONS", () => {
  const argv = ['/n/node', '/k/main.ts', 'proxy'];
  assert.deepEqual(dataPlaneRestartArgs({ ...base, execArgv: ['--max-semi-space-size=16'], argv }), ['/n/node', '--single-threaded-gc', '--max-semi-space-size=16', '/k/main.ts', 'proxy']);
  assert.deepEqual(dataPlaneRestartArgs({ ...base, nodeOptions: '--single_threaded_gc --max-old-space-size=100', argv }), ['/n/node', '--max-semi-space-size=4', '/k/main.ts', 'proxy']);
  assert.deepEqual(dataPlaneRestartArgs({ ...base, execArgv: ['--no-single-threaded-gc'], argv }), ['/n/node', '--max-semi-space-size=4', '--no-single-threaded-gc', '/k/main.ts', 'proxy']);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WALKTHROUGHS } from './demo-command.ts';

test('each walkthrough listed for the command line is the one its module loads (name, seed, title)', async () => {
  for (const listed of WALKTHROUGHS) {
    const w = await listed.load();
    assert.deepEqual({ name: w.name, seed: w.seed, title: w.title }, { name: listed.name, seed: listed.seed, title: listed.title });
  }
});

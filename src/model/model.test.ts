import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { BOTOCORE_MODEL_PATHS, compactModel, type RawModel } from './compact-model.ts';
import { KIND_NAMES, KINDS } from './kinds.ts';
import { MODEL } from './model.ts';

test('the committed model is what botocore\'s App Mesh model (Debian awscli) reduces to', () => {
  const source = BOTOCORE_MODEL_PATHS.find((p) => existsSync(p));
  assert.ok(source, 'install Debian\'s awscli (apt-get install awscli): it ships the App Mesh model this checks against');
  const expected = compactModel(JSON.parse(readFileSync(source, 'utf8')) as RawModel);
  assert.deepEqual(JSON.parse(JSON.stringify(MODEL)), expected, 'run npm run gen:model');
});

test('the model has the 38 operations of App Mesh 2019-01-25, five per kind plus tagging', () => {
  assert.equal(MODEL.metadata.apiVersion, '2019-01-25');
  assert.equal(Object.keys(MODEL.operations).length, 38);
  for (const k of KIND_NAMES) {
    const { title } = KINDS[k];
    for (const verb of ['Create', 'Describe', 'Update', 'Delete']) assert.ok(MODEL.operations[`${verb}${title}`], `${verb}${title}`);
    assert.ok(MODEL.shapes[KINDS[k].specShape], KINDS[k].specShape);
  }
});

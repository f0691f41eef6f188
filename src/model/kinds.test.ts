import assert from 'node:assert/strict';
import { test } from 'node:test';
import { arnFor, parseArn, type ResourceKey } from './kinds.ts';

const keys: ResourceKey[] = [
  { kind: 'mesh', mesh: 'm', parent: '', name: 'm' },
  { kind: 'virtualNode', mesh: 'm', parent: '', name: 'colorteller' },
  { kind: 'virtualService', mesh: 'm', parent: '', name: 'colorteller.appmesh-mtls.local' },
  { kind: 'virtualRouter', mesh: 'm', parent: '', name: 'r' },
  { kind: 'route', mesh: 'm', parent: 'r', name: 'x' },
  { kind: 'virtualGateway', mesh: 'm', parent: '', name: 'g' },
  { kind: 'gatewayRoute', mesh: 'm', parent: 'g', name: 'y' },
];

test('ARNs have App Mesh\'s form and parse back to the same key', () => {
  assert.equal(arnFor(keys[4]!, 'us-west-2', '111122223333'), 'arn:aws:appmesh:us-west-2:111122223333:mesh/m/virtualRouter/r/route/x');
  for (const key of keys) {
    const parsed = parseArn(arnFor(key, 'us-east-1', '000000000000'));
    assert.deepEqual(parsed, { region: 'us-east-1', account: '000000000000', key });
  }
});

test('strings that are not App Mesh ARNs do not parse', () => {
  for (const bad of ['arn:aws:s3:::bucket', 'arn:aws:appmesh:us-east-1:123:mesh/m', 'arn:aws:appmesh:us-east-1:000000000000:mesh/m/route/x',
    'arn:aws:appmesh:us-east-1:000000000000:mesh/m/virtualNode/r/route/x', 'arn:aws:appmesh:us-east-1:000000000000:mesh/m/mesh/m']) {
    assert.equal(parseArn(bad), undefined, bad);
  }
});

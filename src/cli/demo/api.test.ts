import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { cliLine, cliName, httpRequestOf, OPERATIONS, versionOf } from './api.ts';
import { Stats } from './probe.ts';

test('the operations are the App Mesh service model\'s: same method, same path', () => {
  const model = JSON.parse(readFileSync(new URL('../../model/appmesh-model.json', import.meta.url), 'utf8')) as { operations: Record<string, { method: string; uri: string }> };
  for (const [name, op] of Object.entries(OPERATIONS)) {
    assert.deepEqual({ method: op.method, uri: op.uri }, { method: model.operations[name]?.method, uri: model.operations[name]?.uri }, name);
  }
});

test('an operation\'s input goes where the App Mesh REST API wants it: named members in the path, the rest in the body', () => {
  const spec = { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] };
  assert.deepEqual(httpRequestOf('UpdateVirtualNode', { meshName: 'm 1', virtualNodeName: 'n', spec }), {
    method: 'PUT', path: '/v20190125/meshes/m%201/virtualNodes/n', body: { spec },
  });
  assert.deepEqual(httpRequestOf('CreateVirtualNode', { meshName: 'm', virtualNodeName: 'n', spec }), {
    method: 'PUT', path: '/v20190125/meshes/m/virtualNodes', body: { virtualNodeName: 'n', spec },
  });
  assert.deepEqual(httpRequestOf('CreateGatewayRoute', { meshName: 'm', virtualGatewayName: 'g', gatewayRouteName: 'r', spec: {} }).path,
    '/v20190125/meshes/m/virtualGateway/g/gatewayRoutes');
  assert.throws(() => httpRequestOf('DescribeMesh', {}), /meshName is missing/);
});

test('the AWS CLI line of a call: the command name, then --cli-input-json or one flag per member', () => {
  assert.equal(cliName('CreateGatewayRoute'), 'create-gateway-route');
  assert.equal(cliLine('CreateMesh', { meshName: 'm' }, 'examples/seed004/mesh.json'), 'aws appmesh create-mesh --cli-input-json file://examples/seed004/mesh.json');
  assert.equal(cliLine('UpdateVirtualGateway', { meshName: 'm', virtualGatewayName: 'g', spec: { a: "it's" } }),
    `aws appmesh update-virtual-gateway --mesh-name m --virtual-gateway-name g --spec '{"a":"it'\\''s"}'`);
});

test('versionOf reads the resource metadata of an answer', () => {
  assert.equal(versionOf({ request: '', status: 200, body: { meshName: 'm', metadata: { version: 3 } } }), 3);
  assert.equal(versionOf({ request: '', status: 200, body: {} }), undefined);
});

test('Stats reads Envoy\'s text format; grep keeps the lines as they are; a stat never emitted reads 0', () => {
  const stats = new Stats('listener.127.0.0.1_15000.ssl.handshake: 2\ncluster.x.ssl.fail_verify_san: 1\nserver.hist: No recorded values\n');
  assert.equal(stats.get('listener.127.0.0.1_15000.ssl.handshake'), 2);
  assert.equal(stats.get('listener.127.0.0.1_15000.ssl.no_certificate'), 0);
  assert.deepEqual(stats.grep(/ssl\.fail_verify_san/), ['cluster.x.ssl.fail_verify_san: 1']);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { EndpointRecord } from '../store/endpoint-store.ts';
import { record } from '../translate/test-fixtures.ts';
import { endpointsByNode } from './endpoints-by-node.ts';
import { meshViewOf } from './store-config-source.ts';

const cm = (serviceName: string, attributes: Record<string, string> = {}) => ({
  listeners: [{ portMapping: { port: 8080, protocol: 'http' } }],
  serviceDiscovery: { awsCloudMap: { namespaceName: 'ns', serviceName, attributes: Object.entries(attributes).map(([key, value]) => ({ key, value })) } },
});
const dns = (hostname: string) => ({ listeners: [{ portMapping: { port: 8080, protocol: 'http' } }], serviceDiscovery: { dns: { hostname } } });
const at = (virtualNode: string, address: string, extra: Partial<EndpointRecord> = {}): EndpointRecord => ({
  mesh: 'm', virtualNode, instance: address, address, port: 15000, ports: [], source: 'proxy', registeredAt: 0, expiresAt: null, ...extra,
});

const view = meshViewOf('m', [
  record('mesh', 'm', 'm', {}),
  record('virtualNode', 'm', 'colors', cm('color')),
  record('virtualNode', 'm', 'red', cm('color', { version: 'red' })),
  record('virtualNode', 'm', 'blue', cm('color', { version: 'blue' })),
  record('virtualNode', 'm', 'web', dns('web.m.local')),
  record('virtualNode', 'm', 'web-canary', dns('WEB.m.local')),
  record('virtualNode', 'm', 'lonely', {}),
]);

test("a Cloud Map node gets the instances of its service whose node's attributes include its own", () => {
  const out = endpointsByNode(view, [at('red', '10.0.0.1'), at('blue', '10.0.0.2'), at('colors', '10.0.0.3'), at('lonely', '10.0.0.9', { ports: [9090] })]);
  assert.deepEqual(out.red?.map((e) => e.address), ['10.0.0.1']);
  assert.deepEqual(out.blue?.map((e) => e.address), ['10.0.0.2']);
  assert.deepEqual(out.colors?.map((e) => e.address).sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3'], 'no attributes: every instance of the service');
  assert.deepEqual(out.lonely, [{ address: '10.0.0.9', port: 15000, ports: [9090] }], 'a node without service discovery gets its own');
});

test('nodes sharing a DNS hostname (case-insensitively) share instances; other meshes and unknown nodes are ignored', () => {
  const out = endpointsByNode(view, [at('web-canary', '10.0.1.1'), at('web', '10.0.1.2', { mesh: 'other' }), at('ghost', '10.0.1.3')]);
  assert.deepEqual(out.web?.map((e) => e.address), ['10.0.1.1']);
  assert.deepEqual(out['web-canary']?.map((e) => e.address), ['10.0.1.1']);
  assert.equal(out.ghost, undefined);
  assert.deepEqual(endpointsByNode(view, []), {});
});

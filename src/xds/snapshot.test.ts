// Snapshot building: content-hash versions, consistency checks, and node ids.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TYPE_URLS } from '../envoy/protos.ts';
import { nodeIdProblem, parseNodeId } from './node-id.ts';
import { buildSnapshot, canonicalJson, consistencyProblems, versionOf } from './snapshot.ts';
import { MESH, proxyConfig } from './test-fixtures.ts';

test('canonical JSON ignores key order; versions follow content only', () => {
  assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }), canonicalJson({ a: [{ c: 3, d: 2 }], b: 1 }));
  const a = buildSnapshot(proxyConfig('front'));
  const b = buildSnapshot(JSON.parse(JSON.stringify(proxyConfig('front'))));
  const c = buildSnapshot(proxyConfig('front', { port: 1 }));
  assert.ok(a.ok && b.ok && c.ok);
  const v = (s: typeof a, t: string) => (s.ok ? versionOf([...s.snapshot.resources.get(t)!.values()]) : '');
  for (const t of [TYPE_URLS.cluster, TYPE_URLS.listener, TYPE_URLS.routeConfiguration, TYPE_URLS.clusterLoadAssignment]) assert.equal(v(a, t), v(b, t));
  assert.equal(v(a, TYPE_URLS.cluster), v(c, TYPE_URLS.cluster));
  assert.notEqual(v(a, TYPE_URLS.clusterLoadAssignment), v(c, TYPE_URLS.clusterLoadAssignment));
});

test('consistency: missing clusters, assignments, route configurations and duplicates are named', () => {
  assert.deepEqual(consistencyProblems(proxyConfig('front')), []);
  const good = proxyConfig('front');
  assert.deepEqual(consistencyProblems({ ...good, clusters: [] }), [`a route refers to cluster cds_egress_${MESH}_back, which does not exist`]);
  assert.deepEqual(consistencyProblems({ ...good, clusterLoadAssignments: [] }), [`EDS cluster cds_egress_${MESH}_back has no cluster load assignment cds_egress_${MESH}_back`]);
  assert.deepEqual(consistencyProblems({ ...good, routeConfigurations: [] }), ['a listener refers to route configuration rds_egress_front, which does not exist']);
  assert.deepEqual(consistencyProblems({ ...good, listeners: [...good.listeners, ...good.listeners] }), ['listener lds_egress_0.0.0.0_15001 appears twice']);
  const tcp = {
    name: 'tcp', filterChains: [{ filters: [{ name: 'tcp', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy', statPrefix: 't', cluster: 'nowhere' } }] }],
  };
  assert.deepEqual(consistencyProblems({ ...good, listeners: [...good.listeners, tcp] }), ['a route refers to cluster nowhere, which does not exist']);
});

test('a resource Envoy cannot encode is not published', () => {
  const good = proxyConfig('front');
  const bad = { ...good, clusters: [{ ...good.clusters[0]!, type: 'NO_SUCH_TYPE' }] };
  const r = buildSnapshot(bad);
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.problems.join('\n'), /cds_egress_shop_back cannot be encoded: type does not survive encoding/);
  const misspelled = { ...good, listeners: [{ ...good.listeners[0]!, adress: {} }] };
  const m = buildSnapshot(misspelled);
  assert.ok(!m.ok && /adress does not survive/.test(m.problems.join('\n')));
});

test('node ids: short form and ARN accepted; anything else names both sides', () => {
  const me = { mesh: 'shop', kind: 'virtualNode' as const, name: 'front', spiffeId: 'spiffe://shop/front' };
  assert.deepEqual(parseNodeId('mesh/shop/virtualGateway/gw'), { mesh: 'shop', kind: 'virtualGateway', name: 'gw' });
  assert.equal(nodeIdProblem('mesh/shop/virtualNode/front', me), null);
  assert.equal(nodeIdProblem('arn:aws:appmesh:eu-west-1:123456789012:mesh/shop/virtualNode/front', me), null);
  assert.match(nodeIdProblem('mesh/shop/virtualGateway/front', me)!, /names mesh\/shop\/virtualGateway\/front, but the certificate proves mesh\/shop\/virtualNode\/front/);
  assert.match(nodeIdProblem('arn:aws:s3:::mesh/shop/virtualNode/front', me)!, /is not/);
  assert.match(nodeIdProblem('mesh/shop/virtualNode/front/extra', me)!, /is not/);
  assert.equal(parseNodeId('arn:aws:appmesh:r:a:mesh/x/virtualRouter/y'), undefined);
});

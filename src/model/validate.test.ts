import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as seed from '../../test/fixtures/seed-specs.ts';
import { bodyMembers, validateBody, validateLocationValue, validateShape } from './validate.ts';

const certFile = { file: { certificateChain: '/keys/colorteller_cert_chain.pem', privateKey: '/keys/colorteller_key.pem' } };

/** A valid virtual node spec with one listener; `listener` fields override the listener's. */
function node(listener: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
  return {
    listeners: [{ portMapping: { port: 9080, protocol: 'http' }, ...listener }],
    serviceDiscovery: { dns: { hostname: 'colorteller.appmesh-mtls.local' } },
    ...extra,
  };
}

const messages = (v: { path: string; message: string }[]) => v.map((x) => `${x.path}: ${x.message}`);

function fails(shapeName: string, value: unknown, expected: string[]) {
  assert.deepEqual(messages(validateShape(shapeName, value, 'spec')), expected);
}

// Seed walkthrough specs (mTLS with files, gateway client policy, SPIRE over SDS, ACM): all must pass.
test('the seed walkthrough specs pass', () => {
  for (const spec of [seed.colortellerStrictTls, seed.colortellerRequireClientCert, seed.sdsFrontNode, seed.sdsColorNode('red'), seed.acmColortellerNode]) {
    assert.deepEqual(validateShape('VirtualNodeSpec', spec, 'spec'), []);
  }
  assert.deepEqual(validateShape('VirtualGatewaySpec', seed.gatewayWithClientCert, 'spec'), []);
  assert.deepEqual(validateShape('VirtualGatewaySpec', seed.acmGateway, 'spec'), []);
  assert.deepEqual(validateShape('RouteSpec', seed.headerRoute('blue'), 'spec'), []);
  assert.deepEqual(validateShape('GatewayRouteSpec', seed.gatewayRouteToColorteller, 'spec'), []);
});

test('structures must be JSON objects, lists arrays, strings strings', () => {
  fails('VirtualNodeSpec', [], ['spec: must be an object; got an array']);
  fails('VirtualNodeSpec', null, ['spec: must be an object; got null']);
  fails('VirtualNodeSpec', { listeners: {} }, ['spec.listeners: must be an array; got an object']);
  fails('VirtualNodeSpec', node({}, { serviceDiscovery: { dns: { hostname: 5 } } }), ['spec.serviceDiscovery.dns.hostname: must be a string; got number 5']);
  fails('VirtualNodeSpec', node({}, { serviceDiscovery: { dns: { hostname: 'a.local' } } }), []);
});

test('integers must be JSON integers; a quoted number is an error', () => {
  fails('VirtualNodeSpec', node({ portMapping: { port: '8080', protocol: 'http' } }), ['spec.listeners[0].portMapping.port: must be an integer; got string "8080"']);
  fails('VirtualNodeSpec', node({ portMapping: { port: 80.5, protocol: 'http' } }), ['spec.listeners[0].portMapping.port: must be an integer; got number 80.5']);
  fails('VirtualNodeSpec', node({ portMapping: { port: 80, protocol: 'http' } }), []);
  // An integer with only a min still has the 32-bit ceiling of its type.
  fails('VirtualNodeSpec', node({ connectionPool: { http: { maxConnections: 2 ** 31 } } }), ['spec.listeners[0].connectionPool.http.maxConnections: must be at most 2147483647; got 2147483648']);
  fails('VirtualNodeSpec', node({ connectionPool: { http: { maxConnections: 2 ** 31 - 1 } } }), []);
});

test('booleans and timestamps', () => {
  const policy = (enforce: unknown) => ({ backendDefaults: { clientPolicy: { tls: { enforce, validation: { trust: { file: { certificateChain: '/ca.pem' } } } } } } });
  fails('VirtualNodeSpec', policy('true'), ['spec.backendDefaults.clientPolicy.tls.enforce: must be a boolean (true or false); got string "true"']);
  fails('VirtualNodeSpec', policy(false), []);
  const metadata = { arn: 'a', uid: 'u', version: 1, createdAt: 1606022091.476, lastUpdatedAt: 1606022091, meshOwner: '000000000000', resourceOwner: '000000000000' };
  assert.deepEqual(validateShape('ResourceMetadata', metadata, 'metadata'), []);
  assert.deepEqual(messages(validateShape('ResourceMetadata', { ...metadata, createdAt: '2020-11-22' }, 'metadata')), [
    'metadata.createdAt: must be a timestamp in epoch seconds (a number); got string "2020-11-22"',
  ]);
});

test('required members must be present and not null', () => {
  fails('VirtualNodeSpec', node({ tls: { mode: 'STRICT' } }), ['spec.listeners[0].tls.certificate: is required']);
  fails('VirtualNodeSpec', node({ tls: { mode: 'STRICT', certificate: null } }), ['spec.listeners[0].tls.certificate: is required']);
  fails('VirtualNodeSpec', node({ tls: { mode: 'STRICT', certificate: certFile } }), []);
});

test('optional members given as null count as not set', () => {
  fails('VirtualNodeSpec', node({ tls: null }, { backends: null }), []);
});

test('unknown members are rejected, naming the member and the allowed ones', () => {
  fails('VirtualNodeSpec', { listners: [] }, ['spec.listners: unknown member "listners"; allowed members are backendDefaults, backends, listeners, logging, serviceDiscovery']);
  // A misplaced TLS field is not silently ignored.
  fails('VirtualNodeSpec', node({ tls: { mode: 'STRICT', certificate: certFile, subjectAlternativeNames: { match: { exact: ['x'] } } } }), [
    'spec.listeners[0].tls.subjectAlternativeNames: unknown member "subjectAlternativeNames"; allowed members are certificate, mode, validation',
  ]);
  // Own-property names of Object.prototype are members like any other.
  fails('MeshSpec', JSON.parse('{"__proto__": {}, "constructor": 1}'), [
    'spec.__proto__: unknown member "__proto__"; allowed members are egressFilter, serviceDiscovery',
    'spec.constructor: unknown member "constructor"; allowed members are egressFilter, serviceDiscovery',
  ]);
});

test('enums name the allowed values and what was found', () => {
  fails('VirtualNodeSpec', node({ tls: { mode: 'strict', certificate: certFile } }), ['spec.listeners[0].tls.mode: must be one of STRICT, PERMISSIVE, DISABLED; got "strict"']);
  fails('MeshSpec', { egressFilter: { type: 'ALLOW_ALL' } }, []);
});

test('string lengths', () => {
  const target = (virtualNode: string) => ({ httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode, weight: 1 }] } } });
  fails('RouteSpec', target('x'.repeat(300)), ['spec.httpRoute.action.weightedTargets[0].virtualNode: must be at most 255 characters; got 300']);
  fails('RouteSpec', target(''), ['spec.httpRoute.action.weightedTargets[0].virtualNode: must not be empty']);
  fails('RouteSpec', target('x'.repeat(255)), []);
  // Lengths count code points, not UTF-16 units.
  fails('RouteSpec', target('🙂'.repeat(255)), []);
});

test('list lengths', () => {
  const targets = (n: number) => ({ tcpRoute: { action: { weightedTargets: Array.from({ length: n }, (_, i) => ({ virtualNode: `n${i}`, weight: 1 })) } } });
  fails('RouteSpec', targets(0), ['spec.tcpRoute.action.weightedTargets: must have at least 1 item; got 0']);
  fails('RouteSpec', targets(11), ['spec.tcpRoute.action.weightedTargets: must have at most 10 items; got 11']);
  fails('RouteSpec', targets(10), []);
});

test('number ranges', () => {
  fails('VirtualNodeSpec', node({ portMapping: { port: 70000, protocol: 'http' } }), ['spec.listeners[0].portMapping.port: must be at most 65535; got 70000']);
  fails('VirtualNodeSpec', node({ portMapping: { port: 0, protocol: 'http' } }), ['spec.listeners[0].portMapping.port: must be at least 1; got 0']);
  fails('VirtualNodeSpec', node({ portMapping: { port: 65535, protocol: 'http' } }), []);
});

test('patterns', () => {
  const cloudMap = (key: string) => ({ serviceDiscovery: { awsCloudMap: { namespaceName: 'ns', serviceName: 's', attributes: [{ key, value: 'v' }] } } });
  fails('VirtualNodeSpec', cloudMap('a key'), ['spec.serviceDiscovery.awsCloudMap.attributes[0].key: must match the pattern ^[a-zA-Z0-9!-~]+$; got "a key"']);
  fails('VirtualNodeSpec', cloudMap('stack'), []);
  fails('VirtualNodeSpec', cloudMap('other'), []); // the compiled pattern is reused
});

test('unions must have exactly one member set', () => {
  fails('VirtualNodeSpec', node({ tls: { mode: 'STRICT', certificate: {} } }), ['spec.listeners[0].tls.certificate: exactly one of acm, file, sds must be set; found none']);
  fails('VirtualNodeSpec', node({ tls: { mode: 'STRICT', certificate: { ...certFile, sds: { secretName: 's' } } } }), [
    'spec.listeners[0].tls.certificate: exactly one of acm, file, sds must be set; found file, sds',
  ]);
  fails('VirtualNodeSpec', node({ tls: { mode: 'STRICT', certificate: { file: certFile.file, sds: null } } }), []);
  // ACM trust on a listener: the unknown member is the error, not a second "found none".
  fails('VirtualNodeSpec', node({ tls: { mode: 'STRICT', certificate: certFile, validation: { trust: { acm: { certificateAuthorityArns: ['x'] } } } } }), [
    'spec.listeners[0].tls.validation.trust.acm: unknown member "acm"; allowed members are file, sds',
  ]);
  fails('VirtualNodeSpec', { serviceDiscovery: { dns: { hostname: 'a' }, awsCloudMap: { namespaceName: 'n', serviceName: 's' } } }, [
    'spec.serviceDiscovery: exactly one of awsCloudMap, dns must be set; found awsCloudMap, dns',
  ]);
});

test('every problem is reported, each with its path', () => {
  fails('VirtualNodeSpec', { listeners: [{ portMapping: { port: '1', protocol: 'udp' } }, {}] }, [
    'spec.listeners[0].portMapping.port: must be an integer; got string "1"',
    'spec.listeners[0].portMapping.protocol: must be one of http, tcp, http2, grpc; got "udp"',
    'spec.listeners[1].portMapping: is required',
  ]);
});

test('bodyMembers lists the members without a location', () => {
  assert.deepEqual(bodyMembers('CreateVirtualNodeInput').sort(), ['clientToken', 'spec', 'tags', 'virtualNodeName']);
  assert.deepEqual(bodyMembers('UpdateVirtualNodeInput').sort(), ['clientToken', 'spec']);
  assert.deepEqual(bodyMembers('DescribeMeshInput'), []);
});

test('validateBody: the body is an object holding the body members', () => {
  assert.deepEqual(validateBody('CreateVirtualNodeInput', { virtualNodeName: 'colorteller', spec: seed.colortellerRequireClientCert }), []);
  assert.deepEqual(messages(validateBody('CreateVirtualNodeInput', [1, 2])), [': the request body must be a JSON object; got an array']);
  // Required body members are checked; required location members (meshName) are not the body's business.
  assert.deepEqual(messages(validateBody('CreateVirtualNodeInput', {})), ['spec: is required', 'virtualNodeName: is required']);
  assert.deepEqual(messages(validateBody('CreateVirtualNodeInput', { virtualNodeName: 'x'.repeat(256), spec: {} })), ['virtualNodeName: must be at most 255 characters; got 256']);
  // A location member sent in the body is not a body member.
  assert.deepEqual(messages(validateBody('UpdateVirtualNodeInput', { spec: {}, meshName: 'm' })), ['meshName: unknown member "meshName"; allowed members are clientToken, spec']);
  assert.deepEqual(messages(validateBody('UpdateVirtualNodeInput', { spec: { listners: [] } })), [
    'spec.listners: unknown member "listners"; allowed members are backendDefaults, backends, listeners, logging, serviceDiscovery',
  ]);
  assert.deepEqual(validateBody('CreateMeshInput', { meshName: 'm' }), []);
  assert.deepEqual(validateBody('DescribeMeshInput', {}), []);
  assert.deepEqual(messages(validateBody('TagResourceInput', { tags: [{ key: 'k'.repeat(129), value: 'v' }] })), ['tags[0].key: must be at most 128 characters; got 129']);
  assert.deepEqual(messages(validateBody('CreateVirtualServiceInput', { virtualServiceName: '', spec: {} })), ['virtualServiceName: must not be empty']);
});

test('validateBody: clientToken follows the App Mesh rule', () => {
  const body = (clientToken: unknown) => ({ spec: {}, clientToken });
  assert.deepEqual(validateBody('UpdateMeshInput', body('1783f48d-39fe-4364-adc7-c7d5c1c786b6')), []);
  assert.deepEqual(validateBody('UpdateMeshInput', body('a_b-C9')), []);
  assert.deepEqual(messages(validateBody('UpdateMeshInput', body('x'.repeat(37)))), ['clientToken: must be at most 36 characters; got 37']);
  assert.deepEqual(messages(validateBody('UpdateMeshInput', body('a b'))), ['clientToken: may contain only letters, numbers, hyphens and underscores; got "a b"']);
  assert.deepEqual(messages(validateBody('UpdateMeshInput', body(''))), ['clientToken: must not be empty; omit it to make the request without a token']);
  assert.deepEqual(messages(validateBody('UpdateMeshInput', body(5))), ['clientToken: must be a string; got number 5']);
});

test('validateLocationValue: path labels and query values', () => {
  assert.deepEqual(validateLocationValue('ListMeshesInput', 'limit', '100'), []);
  assert.deepEqual(messages(validateLocationValue('ListMeshesInput', 'limit', '0')), ['limit: must be at least 1; got 0']);
  assert.deepEqual(messages(validateLocationValue('ListMeshesInput', 'limit', '101')), ['limit: must be at most 100; got 101']);
  assert.deepEqual(messages(validateLocationValue('ListTagsForResourceInput', 'limit', '51')), ['limit: must be at most 50; got 51']);
  assert.deepEqual(messages(validateLocationValue('ListMeshesInput', 'limit', '1.5')), ['limit: must be an integer; got "1.5"']);
  assert.deepEqual(messages(validateLocationValue('ListMeshesInput', 'limit', 'ten')), ['limit: must be an integer; got "ten"']);
  assert.deepEqual(validateLocationValue('DescribeVirtualNodeInput', 'meshOwner', '123456789012'), []);
  assert.deepEqual(messages(validateLocationValue('DescribeVirtualNodeInput', 'meshOwner', '12')), ['meshOwner: must be exactly 12 characters; got 2']);
  assert.deepEqual(validateLocationValue('DescribeVirtualNodeInput', 'virtualNodeName', 'colorteller'), []);
  assert.deepEqual(messages(validateLocationValue('DescribeVirtualNodeInput', 'meshName', 'm'.repeat(256))), ['meshName: must be at most 255 characters; got 256']);
  assert.deepEqual(messages(validateLocationValue('DescribeVirtualNodeInput', 'meshName', '')), ['meshName: must not be empty']);
  assert.deepEqual(messages(validateLocationValue('DescribeVirtualServiceInput', 'virtualServiceName', '')), ['virtualServiceName: must not be empty']);
  assert.deepEqual(validateLocationValue('ListMeshesInput', 'nextToken', 'abc'), []);
  assert.throws(() => validateLocationValue('ListMeshesInput', 'nope', 'x'), /no member nope/);
});

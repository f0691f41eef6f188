// Bad requests, each answered by App Mesh's exception type and a message naming the field, and none of
// them changing what is stored.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { removeDir, type ServerHandle, startKeymeshServer } from '../support/keymesh-server.ts';
import { signedRequest } from '../support/signed-request.ts';
import * as seed from '../fixtures/seed-specs.ts';

let server: ServerHandle;
const M = 'bad-input';
const NODES = `/v20190125/meshes/${M}/virtualNodes`;
const NODE = `${NODES}/colorteller`;
const ROUTES = `/v20190125/meshes/${M}/virtualRouter/router/routes`;

const call = (method: string, path: string, body?: unknown) =>
  signedRequest(server.url, method, path, body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));

function withListener(listener: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return { spec: { listeners: [{ portMapping: { port: 9080, protocol: 'http' }, ...listener }], serviceDiscovery: { dns: { hostname: 'colorteller.appmesh-mtls.local' } }, ...extra } };
}

before(async () => {
  server = await startKeymeshServer();
  for (const [method, path, body] of [
    ['PUT', '/v20190125/meshes', { meshName: M }],
    ['PUT', NODES, { virtualNodeName: 'colorteller', spec: seed.colortellerStrictTls }],
    ['PUT', `/v20190125/meshes/${M}/virtualRouters`, { virtualRouterName: 'router', spec: seed.colorRouter }],
    ['PUT', ROUTES, { routeName: 'r', spec: { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'colorteller', weight: 1 }] } } } }],
  ] as const) {
    const res = await call(method, path, body);
    assert.equal(res.status, 200, res.text);
  }
});

after(async () => {
  await server?.stop();
  if (server) removeDir(server.dataDir);
});

const certFile = { file: { certificateChain: '/keys/c.pem', privateKey: '/keys/k.pem' } };

const cases: { name: string; method: string; path: string; body?: unknown; type: string; status?: number; message: RegExp }[] = [
  { name: 'malformed JSON', method: 'PUT', path: NODES, body: '{"virtualNodeName": "x", "spec": {', type: 'BadRequestException', message: /not valid JSON/ },
  { name: 'a JSON array as body', method: 'PUT', path: NODES, body: [1, 2], type: 'BadRequestException', message: /object/ },
  { name: 'missing spec', method: 'PUT', path: NODES, body: { virtualNodeName: 'x' }, type: 'BadRequestException', message: /spec.*required/ },
  { name: 'missing name', method: 'PUT', path: NODES, body: { spec: {} }, type: 'BadRequestException', message: /virtualNodeName.*required/ },
  { name: 'a name longer than 255', method: 'PUT', path: NODES, body: { virtualNodeName: 'x'.repeat(256), spec: {} }, type: 'BadRequestException', message: /virtualNodeName.*255/ },
  { name: 'TLS mode in lower case', method: 'PUT', path: NODE, body: withListener({ tls: { mode: 'strict', certificate: certFile } }), type: 'BadRequestException', message: /spec\.listeners\[0\]\.tls\.mode.*STRICT, PERMISSIVE, DISABLED/ },
  { name: 'a port as a string', method: 'PUT', path: NODE, body: { spec: { listeners: [{ portMapping: { port: '9080', protocol: 'http' } }], serviceDiscovery: { dns: { hostname: 'a.local' } } } }, type: 'BadRequestException', message: /spec\.listeners\[0\]\.portMapping\.port.*integer/ },
  { name: 'a port out of range', method: 'PUT', path: NODE, body: { spec: { listeners: [{ portMapping: { port: 70000, protocol: 'http' } }], serviceDiscovery: { dns: { hostname: 'a.local' } } } }, type: 'BadRequestException', message: /portMapping\.port.*65535/ },
  { name: 'listener TLS without a certificate', method: 'PUT', path: NODE, body: withListener({ tls: { mode: 'STRICT' } }), type: 'BadRequestException', message: /tls\.certificate.*required/ },
  { name: 'an ACM certificate in a client policy', method: 'PUT', path: NODE, body: withListener({}, { backendDefaults: { clientPolicy: { tls: { certificate: { acm: { certificateArn: 'arn:aws:acm:us-east-1:000000000000:certificate/x' } }, validation: { trust: { file: { certificateChain: '/keys/ca.pem' } } } } } } }), type: 'BadRequestException', message: /clientPolicy\.tls\.certificate.*acm/ },
  { name: 'ACM trust on a listener validation context', method: 'PUT', path: NODE, body: withListener({ tls: { mode: 'STRICT', certificate: certFile, validation: { trust: { acm: { certificateAuthorityArns: ['arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/x'] } } } } }), type: 'BadRequestException', message: /validation\.trust.*acm/ },
  { name: 'a client policy without validation', method: 'PUT', path: NODE, body: withListener({}, { backendDefaults: { clientPolicy: { tls: { enforce: true } } } }), type: 'BadRequestException', message: /clientPolicy\.tls\.validation.*required/ },
  { name: 'subjectAlternativeNames outside validation (a misplaced field is not ignored)', method: 'PUT', path: NODE, body: withListener({}, { backendDefaults: { clientPolicy: { tls: { validation: { trust: { file: { certificateChain: '/keys/ca.pem' } } }, subjectAlternativeNames: { match: { exact: ['x.local'] } } } } } }), type: 'BadRequestException', message: /subjectAlternativeNames/ },
  { name: 'two kinds of service discovery', method: 'PUT', path: NODE, body: { spec: { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }], serviceDiscovery: { dns: { hostname: 'a.local' }, awsCloudMap: { namespaceName: 'n', serviceName: 's' } } } }, type: 'BadRequestException', message: /serviceDiscovery.*exactly one/ },
  { name: 'listeners without service discovery', method: 'PUT', path: NODE, body: { spec: { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] } }, type: 'BadRequestException', message: /service ?discovery/i },
  { name: 'a tcp connection pool on an http listener', method: 'PUT', path: NODE, body: withListener({ connectionPool: { tcp: { maxConnections: 10 } } }), type: 'BadRequestException', message: /connectionPool/ },
  { name: 'two listeners on one port', method: 'PUT', path: NODE, body: { spec: { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }, { portMapping: { port: 9080, protocol: 'tcp' } }], serviceDiscovery: { dns: { hostname: 'a.local' } } } }, type: 'BadRequestException', message: /9080/ },
  { name: 'a route with two route types', method: 'PUT', path: `${ROUTES}/r`, body: { spec: { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'colorteller', weight: 1 }] } }, tcpRoute: { action: { weightedTargets: [{ virtualNode: 'colorteller', weight: 1 }] } } } }, type: 'BadRequestException', message: /route type/i },
  { name: 'a grpc route on an http router', method: 'PUT', path: `${ROUTES}/r`, body: { spec: { grpcRoute: { match: { serviceName: 'color.Color' }, action: { weightedTargets: [{ virtualNode: 'colorteller', weight: 1 }] } } } }, type: 'BadRequestException', message: /grpc/ },
  { name: 'a route prefix without a leading slash', method: 'PUT', path: `${ROUTES}/r`, body: { spec: { httpRoute: { match: { prefix: 'color' }, action: { weightedTargets: [{ virtualNode: 'colorteller', weight: 1 }] } } } }, type: 'BadRequestException', message: /prefix/ },
  { name: 'a clientToken longer than 36', method: 'PUT', path: NODE, body: { ...withListener({}), clientToken: 'x'.repeat(37) }, type: 'BadRequestException', message: /clientToken/ },
  { name: 'an unknown member', method: 'PUT', path: NODE, body: { spec: { listners: [] } }, type: 'BadRequestException', message: /listners/ },
  { name: 'a mesh owned by another account', method: 'GET', path: `${NODE}?meshOwner=123456789012`, type: 'ForbiddenException', status: 403, message: /123456789012/ },
  { name: 'a bad meshOwner', method: 'GET', path: `${NODE}?meshOwner=12`, type: 'BadRequestException', message: /meshOwner/ },
  { name: 'a tag key longer than 128', method: 'PUT', path: `/v20190125/tag?resourceArn=${encodeURIComponent(`arn:aws:appmesh:us-east-1:000000000000:mesh/${M}`)}`, body: { tags: [{ key: 'k'.repeat(129), value: 'v' }] }, type: 'BadRequestException', message: /tags\[0\]\.key.*128/ },
  { name: 'tagging without resourceArn', method: 'PUT', path: '/v20190125/tag', body: { tags: [] }, type: 'BadRequestException', message: /resourceArn/ },
  { name: 'a malformed resource ARN', method: 'GET', path: '/v20190125/tags?resourceArn=arn:aws:s3:::bucket', type: 'BadRequestException', message: /resourceArn/ },
  { name: 'an unknown operation', method: 'GET', path: '/v20190125/nothing', type: 'UnknownOperationException', status: 404, message: /No App Mesh operation/ },
  { name: 'a body over 1 MiB', method: 'PUT', path: NODE, body: { spec: {}, pad: 'x'.repeat(1_100_000) }, type: 'BadRequestException', status: 413, message: /larger than/ },
];

test('each bad request gets the right exception and a message naming the problem, and nothing changes', async () => {
  const snapshot = async () => {
    const node = await call('GET', NODE);
    const nodes = await call('GET', NODES);
    const routes = await call('GET', ROUTES);
    const route = await call('GET', `${ROUTES}/r`);
    const tags = await call('GET', `/v20190125/tags?resourceArn=${encodeURIComponent(`arn:aws:appmesh:us-east-1:000000000000:mesh/${M}`)}`);
    return { node: node.body, nodes: nodes.body, routes: routes.body, route: route.body, tags: tags.body };
  };
  const before = await snapshot();
  assert.equal(before.node.metadata.version, 1);
  const failures: string[] = [];
  for (const c of cases) {
    const res = await call(c.method, c.path, c.body);
    const ok = res.errorType === c.type && res.status === (c.status ?? 400) && typeof res.body?.message === 'string' && c.message.test(res.body.message);
    if (!ok) failures.push(`${c.name}: got ${res.status} ${res.errorType} ${res.text.slice(0, 300)}`);
  }
  assert.deepEqual(failures, []);
  assert.deepEqual(await snapshot(), before);
});

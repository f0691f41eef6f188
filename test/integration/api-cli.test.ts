// All 38 App Mesh operations through the real AWS CLI (`aws appmesh ... --endpoint-url`), with the seed
// walkthroughs' specs, as an App Mesh user would type them.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { keymeshAcm } from '../support/keymesh-acm.ts';
import { appmeshCli, type CliResult } from '../support/aws-cli.ts';
import { removeDir, type ServerHandle, startKeymeshServer } from '../support/keymesh-server.ts';
import * as seed from '../fixtures/seed-specs.ts';

let server: ServerHandle;
const M = 'ColorApp-MutualTLS';

before(async () => {
  server = await startKeymeshServer();
});

after(async () => {
  await server?.stop();
  if (server) removeDir(server.dataDir);
});

async function ok(args: string[]): Promise<any> {
  const r: CliResult = await appmeshCli(server.url, args);
  assert.equal(r.code, 0, `aws appmesh ${args.join(' ')} failed:\n${r.stderr}`);
  return r.json;
}

const spec = (s: unknown) => ['--spec', JSON.stringify(s)];

test('every operation through the AWS CLI', async () => {
  const operations = new Set<string>();
  const run = async (args: string[]) => {
    operations.add(args[0]!);
    return ok(args);
  };

  const mesh = await run(['create-mesh', '--mesh-name', M, '--tags', 'key=team,value=color']);
  assert.equal(mesh.mesh.meshName, M);
  assert.equal(mesh.mesh.metadata.version, 1);
  assert.equal((await run(['describe-mesh', '--mesh-name', M])).mesh.status.status, 'ACTIVE');
  assert.equal((await run(['update-mesh', '--mesh-name', M, ...spec({ egressFilter: { type: 'DROP_ALL' } })])).mesh.metadata.version, 2);
  assert.ok((await run(['list-meshes'])).meshes.some((m: any) => m.meshName === M));

  // Seed 004's colorteller, the way its mesh script creates it: a --cli-input-json file.
  const input = join(server.dataDir, 'colorteller.json');
  writeFileSync(input, JSON.stringify({ meshName: M, virtualNodeName: 'colorteller', spec: seed.colortellerStrictTls }));
  const node = await run(['create-virtual-node', '--cli-input-json', `file://${input}`]);
  assert.equal(node.virtualNode.spec.listeners[0].tls.mode, 'STRICT');
  assert.equal(node.virtualNode.metadata.arn, `arn:aws:appmesh:us-east-1:000000000000:mesh/${M}/virtualNode/colorteller`);
  assert.equal((await run(['describe-virtual-node', '--mesh-name', M, '--virtual-node-name', 'colorteller'])).virtualNode.virtualNodeName, 'colorteller');
  const step4 = await run(['update-virtual-node', '--mesh-name', M, '--virtual-node-name', 'colorteller', ...spec(seed.colortellerRequireClientCert)]);
  assert.deepEqual(step4.virtualNode.spec.listeners[0].tls.validation.subjectAlternativeNames.match.exact, ['gateway.appmesh-mtls.local']);
  assert.equal(step4.virtualNode.metadata.version, 2);
  assert.deepEqual((await run(['list-virtual-nodes', '--mesh-name', M])).virtualNodes.map((n: any) => n.virtualNodeName), ['colorteller']);

  await run(['create-virtual-router', '--mesh-name', M, '--virtual-router-name', 'router', ...spec(seed.colorRouter)]);
  assert.equal((await run(['describe-virtual-router', '--mesh-name', M, '--virtual-router-name', 'router'])).virtualRouter.spec.listeners[0].portMapping.port, 8080);
  assert.equal((await run(['update-virtual-router', '--mesh-name', M, '--virtual-router-name', 'router', ...spec({ listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] })])).virtualRouter.metadata.version, 2);
  assert.equal((await run(['list-virtual-routers', '--mesh-name', M])).virtualRouters.length, 1);

  const routeSpec = { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'colorteller', weight: 1 }] } } };
  await run(['create-route', '--mesh-name', M, '--virtual-router-name', 'router', '--route-name', 'route', ...spec(routeSpec)]);
  assert.equal((await run(['describe-route', '--mesh-name', M, '--virtual-router-name', 'router', '--route-name', 'route'])).route.routeName, 'route');
  assert.equal((await run(['update-route', '--mesh-name', M, '--virtual-router-name', 'router', '--route-name', 'route', ...spec({ ...routeSpec, priority: 5 })])).route.spec.priority, 5);
  assert.deepEqual((await run(['list-routes', '--mesh-name', M, '--virtual-router-name', 'router'])).routes.map((r: any) => r.routeName), ['route']);

  await run(['create-virtual-service', '--mesh-name', M, '--virtual-service-name', 'colorteller.appmesh-mtls.local', ...spec(seed.colortellerService)]);
  assert.equal((await run(['describe-virtual-service', '--mesh-name', M, '--virtual-service-name', 'colorteller.appmesh-mtls.local'])).virtualService.spec.provider.virtualNode.virtualNodeName, 'colorteller');
  assert.equal((await run(['update-virtual-service', '--mesh-name', M, '--virtual-service-name', 'colorteller.appmesh-mtls.local', ...spec({ provider: { virtualRouter: { virtualRouterName: 'router' } } })])).virtualService.metadata.version, 2);
  assert.equal((await run(['list-virtual-services', '--mesh-name', M])).virtualServices[0].virtualServiceName, 'colorteller.appmesh-mtls.local');

  // Seed 004's gateway: a client policy with the colorteller's SAN and the gateway's client certificate.
  const gw = await run(['create-virtual-gateway', '--mesh-name', M, '--virtual-gateway-name', 'gateway', ...spec(seed.gatewayWithClientCert)]);
  assert.deepEqual(gw.virtualGateway.spec.backendDefaults.clientPolicy.tls.certificate, seed.gatewayWithClientCert.backendDefaults.clientPolicy.tls.certificate);
  assert.equal((await run(['describe-virtual-gateway', '--mesh-name', M, '--virtual-gateway-name', 'gateway'])).virtualGateway.virtualGatewayName, 'gateway');
  const { caArn } = await keymeshAcm(server.url, M, '*.appmesh-mtls.local');
  assert.equal((await run(['update-virtual-gateway', '--mesh-name', M, '--virtual-gateway-name', 'gateway', ...spec(seed.acmGatewayFor(caArn))])).virtualGateway.metadata.version, 2);
  assert.equal((await run(['list-virtual-gateways', '--mesh-name', M])).virtualGateways.length, 1);

  await run(['create-gateway-route', '--mesh-name', M, '--virtual-gateway-name', 'gateway', '--gateway-route-name', 'gr', ...spec(seed.gatewayRouteToColorteller)]);
  assert.equal((await run(['describe-gateway-route', '--mesh-name', M, '--virtual-gateway-name', 'gateway', '--gateway-route-name', 'gr'])).gatewayRoute.gatewayRouteName, 'gr');
  assert.equal((await run(['update-gateway-route', '--mesh-name', M, '--virtual-gateway-name', 'gateway', '--gateway-route-name', 'gr', ...spec({ ...seed.gatewayRouteToColorteller, priority: 1 })])).gatewayRoute.metadata.version, 2);
  assert.equal((await run(['list-gateway-routes', '--mesh-name', M, '--virtual-gateway-name', 'gateway'])).gatewayRoutes.length, 1);

  const arn = node.virtualNode.metadata.arn;
  await run(['tag-resource', '--resource-arn', arn, '--tags', 'key=env,value=dev', 'key=tier,value=back']);
  await run(['untag-resource', '--resource-arn', arn, '--tag-keys', 'tier']);
  assert.deepEqual((await run(['list-tags-for-resource', '--resource-arn', arn])).tags, [{ key: 'env', value: 'dev' }]);

  // Deleting the mesh first is refused while it has resources.
  const refused = await appmeshCli(server.url, ['delete-mesh', '--mesh-name', M]);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /ResourceInUseException/);

  assert.equal((await run(['delete-gateway-route', '--mesh-name', M, '--virtual-gateway-name', 'gateway', '--gateway-route-name', 'gr'])).gatewayRoute.status.status, 'DELETED');
  await run(['delete-virtual-gateway', '--mesh-name', M, '--virtual-gateway-name', 'gateway']);
  await run(['delete-virtual-service', '--mesh-name', M, '--virtual-service-name', 'colorteller.appmesh-mtls.local']);
  await run(['delete-route', '--mesh-name', M, '--virtual-router-name', 'router', '--route-name', 'route']);
  await run(['delete-virtual-router', '--mesh-name', M, '--virtual-router-name', 'router']);
  await run(['delete-virtual-node', '--mesh-name', M, '--virtual-node-name', 'colorteller']);
  assert.equal((await run(['delete-mesh', '--mesh-name', M])).mesh.status.status, 'DELETED');

  const missing = await appmeshCli(server.url, ['describe-mesh', '--mesh-name', M]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /NotFoundException/);
  assert.equal(operations.size, 38);
});

test('the CLI shows App Mesh errors with the field that is wrong', async () => {
  await ok(['create-mesh', '--mesh-name', 'errors']);
  const r = await appmeshCli(server.url, ['create-virtual-node', '--mesh-name', 'errors', '--virtual-node-name', 'n', ...spec({
    listeners: [{ portMapping: { port: 9080, protocol: 'http' }, tls: { mode: 'STRICT', certificate: { file: { certificateChain: '/a', privateKey: '/b' } }, validation: { trust: { acm: { certificateAuthorityArns: ['arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/x'] } } } } }],
    serviceDiscovery: { dns: { hostname: 'n.local' } },
  })]);
  // The CLI may reject ACM listener trust itself (it validates against the same model) or pass it on;
  // either way the user sees the field.
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /acm/);
  const dup = await appmeshCli(server.url, ['create-mesh', '--mesh-name', 'errors']);
  assert.match(dup.stderr, /ConflictException.*already exists/);
  await ok(['create-mesh', '--mesh-name', 'errors-2']);
  const paginated = await ok(['list-meshes', '--max-items', '1']);
  assert.equal(paginated.meshes.length, 1);
  assert.ok(paginated.NextToken, 'the CLI paginates with nextToken');
});

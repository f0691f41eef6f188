// The App Mesh API through the AWS SDK for JavaScript v3 against a real `keymesh server` process.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  type AppMeshClient,
  CreateGatewayRouteCommand,
  CreateMeshCommand,
  CreateRouteCommand,
  CreateVirtualGatewayCommand,
  CreateVirtualNodeCommand,
  CreateVirtualRouterCommand,
  CreateVirtualServiceCommand,
  DeleteGatewayRouteCommand,
  DeleteMeshCommand,
  DeleteRouteCommand,
  DeleteVirtualGatewayCommand,
  DeleteVirtualNodeCommand,
  DeleteVirtualRouterCommand,
  DeleteVirtualServiceCommand,
  DescribeGatewayRouteCommand,
  DescribeMeshCommand,
  DescribeRouteCommand,
  DescribeVirtualGatewayCommand,
  DescribeVirtualNodeCommand,
  DescribeVirtualRouterCommand,
  DescribeVirtualServiceCommand,
  ListGatewayRoutesCommand,
  ListMeshesCommand,
  ListRoutesCommand,
  ListTagsForResourceCommand,
  ListVirtualGatewaysCommand,
  ListVirtualNodesCommand,
  ListVirtualRoutersCommand,
  ListVirtualServicesCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateGatewayRouteCommand,
  UpdateMeshCommand,
  UpdateRouteCommand,
  UpdateVirtualGatewayCommand,
  UpdateVirtualNodeCommand,
  UpdateVirtualRouterCommand,
  UpdateVirtualServiceCommand,
} from '@aws-sdk/client-app-mesh';
import { keymeshAcm } from '../support/keymesh-acm.ts';
import { sdkClient } from '../support/aws-cli.ts';
import { removeDir, type ServerHandle, startKeymeshServer } from '../support/keymesh-server.ts';
import * as seed from '../fixtures/seed-specs.ts';

let server: ServerHandle;
let client: AppMeshClient;

before(async () => {
  server = await startKeymeshServer({ args: ['--limit', 'meshes=50'] });
  client = sdkClient(server.url);
});

after(async () => {
  client?.destroy();
  await server?.stop();
  if (server) removeDir(server.dataDir);
});

/** Runs `fn` and returns the AWS exception it threw (name and message). */
async function rejection(fn: () => Promise<unknown>): Promise<{ name: string; message: string; status: number | undefined }> {
  try {
    await fn();
  } catch (e) {
    const err = e as Error & { $metadata?: { httpStatusCode?: number } };
    return { name: err.name, message: err.message, status: err.$metadata?.httpStatusCode };
  }
  assert.fail('expected the call to be refused');
}

/** Every resource of a mesh with its version: what a refused request must leave as it was. */
async function meshState(meshName: string) {
  const refs = (list: { version?: number; arn?: string }[] | undefined) => (list ?? []).map((r) => `${r.arn}@${r.version}`);
  const routers = (await client.send(new ListVirtualRoutersCommand({ meshName }))).virtualRouters ?? [];
  const gateways = (await client.send(new ListVirtualGatewaysCommand({ meshName }))).virtualGateways ?? [];
  return {
    mesh: (await client.send(new DescribeMeshCommand({ meshName }))).mesh?.metadata?.version,
    nodes: refs((await client.send(new ListVirtualNodesCommand({ meshName }))).virtualNodes),
    services: refs((await client.send(new ListVirtualServicesCommand({ meshName }))).virtualServices),
    routers: refs(routers),
    gateways: refs(gateways),
    routes: await Promise.all(routers.map(async (r) => refs((await client.send(new ListRoutesCommand({ meshName, virtualRouterName: r.virtualRouterName }))).routes))),
    gatewayRoutes: await Promise.all(gateways.map(async (g) => refs((await client.send(new ListGatewayRoutesCommand({ meshName, virtualGatewayName: g.virtualGatewayName }))).gatewayRoutes))),
  };
}

describe('every operation, with the seed walkthroughs\' specs', () => {
  const mesh = 'ColorApp-MutualTLS';

  test('create, describe, update, list and delete all seven kinds, with tags', async () => {
    const created = await client.send(new CreateMeshCommand({ meshName: mesh, tags: [{ key: 'team', value: 'color' }] }));
    assert.equal(created.mesh?.meshName, mesh);
    assert.deepEqual(created.mesh?.spec, {});
    assert.equal(created.mesh?.status?.status, 'ACTIVE');
    const md = created.mesh!.metadata!;
    assert.equal(md.arn, `arn:aws:appmesh:us-east-1:000000000000:mesh/${mesh}`);
    assert.equal(md.version, 1);
    assert.equal(md.meshOwner, '000000000000');
    assert.equal(md.resourceOwner, '000000000000');
    assert.match(md.uid!, /^[0-9a-f-]{36}$/);
    assert.ok(md.createdAt instanceof Date && Math.abs(md.createdAt.getTime() - Date.now()) < 60_000);

    const node = await client.send(new CreateVirtualNodeCommand({ meshName: mesh, virtualNodeName: 'colorteller', spec: seed.colortellerStrictTls as never }));
    assert.equal(node.virtualNode?.metadata?.arn, `arn:aws:appmesh:us-east-1:000000000000:mesh/${mesh}/virtualNode/colorteller`);
    // App Mesh fills in a listener health check's port with the listener's port.
    assert.equal(node.virtualNode?.spec?.listeners?.[0]?.healthCheck?.port, 9080);
    assert.deepEqual(node.virtualNode?.spec?.listeners?.[0]?.tls, seed.colortellerStrictTls.listeners[0]!.tls);

    await client.send(new CreateVirtualRouterCommand({ meshName: mesh, virtualRouterName: 'colorteller-router', spec: seed.colorRouter as never }));
    const route = await client.send(new CreateRouteCommand({
      meshName: mesh, virtualRouterName: 'colorteller-router', routeName: 'to-colorteller',
      spec: { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'colorteller', weight: 1 }] } } },
    }));
    assert.equal(route.route?.virtualRouterName, 'colorteller-router');
    assert.equal(route.route?.metadata?.arn, `arn:aws:appmesh:us-east-1:000000000000:mesh/${mesh}/virtualRouter/colorteller-router/route/to-colorteller`);

    const vs = await client.send(new CreateVirtualServiceCommand({ meshName: mesh, virtualServiceName: 'colorteller.appmesh-mtls.local', spec: seed.colortellerService }));
    assert.equal(vs.virtualService?.metadata?.arn, `arn:aws:appmesh:us-east-1:000000000000:mesh/${mesh}/virtualService/colorteller.appmesh-mtls.local`);

    const gw = await client.send(new CreateVirtualGatewayCommand({ meshName: mesh, virtualGatewayName: 'gateway', spec: seed.gatewayWithClientCert as never }));
    assert.deepEqual(gw.virtualGateway?.spec?.backendDefaults, seed.gatewayWithClientCert.backendDefaults);
    const gr = await client.send(new CreateGatewayRouteCommand({ meshName: mesh, virtualGatewayName: 'gateway', gatewayRouteName: 'gateway-route', spec: seed.gatewayRouteToColorteller }));
    assert.equal(gr.gatewayRoute?.virtualGatewayName, 'gateway');

    // Describe each.
    assert.equal((await client.send(new DescribeMeshCommand({ meshName: mesh }))).mesh?.meshName, mesh);
    assert.equal((await client.send(new DescribeVirtualNodeCommand({ meshName: mesh, virtualNodeName: 'colorteller' }))).virtualNode?.virtualNodeName, 'colorteller');
    assert.equal((await client.send(new DescribeVirtualRouterCommand({ meshName: mesh, virtualRouterName: 'colorteller-router' }))).virtualRouter?.virtualRouterName, 'colorteller-router');
    assert.equal((await client.send(new DescribeRouteCommand({ meshName: mesh, virtualRouterName: 'colorteller-router', routeName: 'to-colorteller' }))).route?.routeName, 'to-colorteller');
    assert.equal((await client.send(new DescribeVirtualServiceCommand({ meshName: mesh, virtualServiceName: 'colorteller.appmesh-mtls.local' }))).virtualService?.spec?.provider?.virtualNode?.virtualNodeName, 'colorteller');
    assert.equal((await client.send(new DescribeVirtualGatewayCommand({ meshName: mesh, virtualGatewayName: 'gateway' }))).virtualGateway?.status?.status, 'ACTIVE');
    assert.equal((await client.send(new DescribeGatewayRouteCommand({ meshName: mesh, virtualGatewayName: 'gateway', gatewayRouteName: 'gateway-route' }))).gatewayRoute?.gatewayRouteName, 'gateway-route');

    // Update each: version goes up, createdAt stays, lastUpdatedAt moves.
    const before = (await client.send(new DescribeVirtualNodeCommand({ meshName: mesh, virtualNodeName: 'colorteller' }))).virtualNode!.metadata!;
    await new Promise((r) => setTimeout(r, 20));
    const updatedNode = await client.send(new UpdateVirtualNodeCommand({ meshName: mesh, virtualNodeName: 'colorteller', spec: seed.colortellerRequireClientCert as never }));
    assert.equal(updatedNode.virtualNode?.metadata?.version, 2);
    assert.equal(updatedNode.virtualNode?.metadata?.createdAt?.getTime(), before.createdAt?.getTime());
    assert.ok(updatedNode.virtualNode!.metadata!.lastUpdatedAt!.getTime() > before.lastUpdatedAt!.getTime());
    assert.deepEqual(updatedNode.virtualNode?.spec?.listeners?.[0]?.tls?.validation?.subjectAlternativeNames?.match?.exact, ['gateway.appmesh-mtls.local']);
    assert.equal((await client.send(new UpdateMeshCommand({ meshName: mesh, spec: { egressFilter: { type: 'ALLOW_ALL' } } }))).mesh?.metadata?.version, 2);
    assert.equal((await client.send(new UpdateVirtualRouterCommand({ meshName: mesh, virtualRouterName: 'colorteller-router', spec: { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] } }))).virtualRouter?.metadata?.version, 2);
    assert.equal((await client.send(new UpdateRouteCommand({ meshName: mesh, virtualRouterName: 'colorteller-router', routeName: 'to-colorteller', spec: { httpRoute: { match: { prefix: '/color' }, action: { weightedTargets: [{ virtualNode: 'colorteller', weight: 2 }] } } } }))).route?.metadata?.version, 2);
    assert.equal((await client.send(new UpdateVirtualServiceCommand({ meshName: mesh, virtualServiceName: 'colorteller.appmesh-mtls.local', spec: { provider: { virtualRouter: { virtualRouterName: 'colorteller-router' } } } }))).virtualService?.metadata?.version, 2);
    const { caArn } = await keymeshAcm(server.url, mesh, '*.appmesh-mtls.local');
    assert.equal((await client.send(new UpdateVirtualGatewayCommand({ meshName: mesh, virtualGatewayName: 'gateway', spec: seed.acmGatewayFor(caArn) as never }))).virtualGateway?.metadata?.version, 2);
    assert.equal((await client.send(new UpdateGatewayRouteCommand({ meshName: mesh, virtualGatewayName: 'gateway', gatewayRouteName: 'gateway-route', spec: { httpRoute: { match: { prefix: '/paint' }, action: { target: { virtualService: { virtualServiceName: 'colorteller.appmesh-mtls.local' } } } } } }))).gatewayRoute?.metadata?.version, 2);

    // An update that changes nothing keeps the version.
    const same = await client.send(new UpdateVirtualNodeCommand({ meshName: mesh, virtualNodeName: 'colorteller', spec: seed.colortellerRequireClientCert as never }));
    assert.equal(same.virtualNode?.metadata?.version, 2);

    // List each.
    assert.ok((await client.send(new ListMeshesCommand({}))).meshes?.some((m) => m.meshName === mesh && m.version === 2 && m.arn?.endsWith(`mesh/${mesh}`)));
    const nodes = await client.send(new ListVirtualNodesCommand({ meshName: mesh }));
    assert.deepEqual(nodes.virtualNodes?.map((n) => [n.virtualNodeName, n.version, n.meshOwner, n.resourceOwner]), [['colorteller', 2, '000000000000', '000000000000']]);
    assert.equal(nodes.nextToken, undefined);
    assert.deepEqual((await client.send(new ListVirtualRoutersCommand({ meshName: mesh }))).virtualRouters?.map((r) => r.virtualRouterName), ['colorteller-router']);
    assert.deepEqual((await client.send(new ListRoutesCommand({ meshName: mesh, virtualRouterName: 'colorteller-router' }))).routes?.map((r) => [r.routeName, r.virtualRouterName]), [['to-colorteller', 'colorteller-router']]);
    assert.deepEqual((await client.send(new ListVirtualServicesCommand({ meshName: mesh }))).virtualServices?.map((s) => s.virtualServiceName), ['colorteller.appmesh-mtls.local']);
    assert.deepEqual((await client.send(new ListVirtualGatewaysCommand({ meshName: mesh }))).virtualGateways?.map((g) => g.virtualGatewayName), ['gateway']);
    assert.deepEqual((await client.send(new ListGatewayRoutesCommand({ meshName: mesh, virtualGatewayName: 'gateway' }))).gatewayRoutes?.map((g) => g.gatewayRouteName), ['gateway-route']);

    // Tags.
    const nodeArn = updatedNode.virtualNode!.metadata!.arn!;
    await client.send(new TagResourceCommand({ resourceArn: nodeArn, tags: [{ key: 'env', value: 'dev' }, { key: 'owner', value: 'colors' }] }));
    await client.send(new TagResourceCommand({ resourceArn: nodeArn, tags: [{ key: 'env', value: 'prod' }] }));
    await client.send(new UntagResourceCommand({ resourceArn: nodeArn, tagKeys: ['owner', 'absent'] }));
    assert.deepEqual((await client.send(new ListTagsForResourceCommand({ resourceArn: nodeArn }))).tags, [{ key: 'env', value: 'prod' }]);
    assert.deepEqual((await client.send(new ListTagsForResourceCommand({ resourceArn: created.mesh!.metadata!.arn! }))).tags, [{ key: 'team', value: 'color' }]);
    // Tagging does not change the resource's version.
    assert.equal((await client.send(new DescribeVirtualNodeCommand({ meshName: mesh, virtualNodeName: 'colorteller' }))).virtualNode?.metadata?.version, 2);

    // Delete in dependency order; each returns the resource with status DELETED.
    const delGr = await client.send(new DeleteGatewayRouteCommand({ meshName: mesh, virtualGatewayName: 'gateway', gatewayRouteName: 'gateway-route' }));
    assert.equal(delGr.gatewayRoute?.status?.status, 'DELETED');
    assert.equal((await client.send(new DeleteVirtualGatewayCommand({ meshName: mesh, virtualGatewayName: 'gateway' }))).virtualGateway?.status?.status, 'DELETED');
    assert.equal((await client.send(new DeleteVirtualServiceCommand({ meshName: mesh, virtualServiceName: 'colorteller.appmesh-mtls.local' }))).virtualService?.status?.status, 'DELETED');
    assert.equal((await client.send(new DeleteRouteCommand({ meshName: mesh, virtualRouterName: 'colorteller-router', routeName: 'to-colorteller' }))).route?.status?.status, 'DELETED');
    assert.equal((await client.send(new DeleteVirtualRouterCommand({ meshName: mesh, virtualRouterName: 'colorteller-router' }))).virtualRouter?.status?.status, 'DELETED');
    assert.equal((await client.send(new DeleteVirtualNodeCommand({ meshName: mesh, virtualNodeName: 'colorteller' }))).virtualNode?.status?.status, 'DELETED');
    const delMesh = await client.send(new DeleteMeshCommand({ meshName: mesh }));
    assert.equal(delMesh.mesh?.status?.status, 'DELETED');
    const gone = await rejection(() => client.send(new DescribeMeshCommand({ meshName: mesh })));
    assert.equal(gone.name, 'NotFoundException');
    assert.equal(gone.status, 404);
  });

  test('seed 003 (SDS, header routing) and seed 002 (ACM) specs are accepted and round-trip', async () => {
    const m = 'howto-k8s-mtls-sds-based';
    await client.send(new CreateMeshCommand({ meshName: m }));
    for (const color of ['red', 'green', 'blue']) {
      const n = await client.send(new CreateVirtualNodeCommand({ meshName: m, virtualNodeName: color, spec: seed.sdsColorNode(color) as never }));
      assert.deepEqual(n.virtualNode?.spec, seed.sdsColorNode(color));
    }
    const front = await client.send(new CreateVirtualNodeCommand({ meshName: m, virtualNodeName: 'front', spec: seed.sdsFrontNode as never }));
    assert.deepEqual(front.virtualNode?.spec, seed.sdsFrontNode);
    await client.send(new CreateVirtualRouterCommand({ meshName: m, virtualRouterName: 'color', spec: seed.colorRouter as never }));
    for (const color of ['red', 'green', 'blue']) {
      const r = await client.send(new CreateRouteCommand({ meshName: m, virtualRouterName: 'color', routeName: `color-route-${color}`, spec: seed.headerRoute(color) as never }));
      assert.deepEqual(r.route?.spec, seed.headerRoute(color));
    }
    await client.send(new CreateVirtualServiceCommand({ meshName: m, virtualServiceName: 'color.howto-k8s-mtls-sds-based.svc.cluster.local', spec: { provider: { virtualRouter: { virtualRouterName: 'color' } } } }));

    const a = 'appmesh-acm';
    await client.send(new CreateMeshCommand({ meshName: a }));
    // An ARN that names nothing in keymesh is refused, naming it; keymesh's own CA and certificate work.
    await assert.rejects(client.send(new CreateVirtualNodeCommand({ meshName: a, virtualNodeName: 'colorteller-white', spec: seed.acmColortellerNode as never })),
      (e: Error) => e.name === 'NotFoundException' && e.message.includes('6b1c3d0e-0d5a-4c4e-9f51-3c2f0a1e2b3c'));
    const acm = await keymeshAcm(server.url, a, '*.appmesh-acm.local');
    const white = await client.send(new CreateVirtualNodeCommand({ meshName: a, virtualNodeName: 'colorteller-white', spec: seed.acmColortellerNodeFor(acm.certArn) as never }));
    assert.deepEqual(white.virtualNode?.spec, seed.acmColortellerNodeFor(acm.certArn));
    const gw = await client.send(new CreateVirtualGatewayCommand({ meshName: a, virtualGatewayName: 'gateway', spec: seed.acmGatewayFor(acm.caArn) as never }));
    assert.deepEqual(gw.virtualGateway?.spec, seed.acmGatewayFor(acm.caArn));
  });
});

describe('pagination', () => {
  test('limit and nextToken walk every item once, in name order', async () => {
    const m = 'paging';
    await client.send(new CreateMeshCommand({ meshName: m }));
    const names = ['n-e', 'n-a', 'n-d', 'n-b', 'n-c'];
    for (const n of names) await client.send(new CreateVirtualNodeCommand({ meshName: m, virtualNodeName: n, spec: {} }));
    const seen: string[] = [];
    let nextToken: string | undefined;
    let pages = 0;
    do {
      const page = await client.send(new ListVirtualNodesCommand({ meshName: m, limit: 2, nextToken }));
      assert.ok((page.virtualNodes?.length ?? 0) <= 2);
      seen.push(...(page.virtualNodes ?? []).map((n) => n.virtualNodeName!));
      nextToken = page.nextToken;
      pages += 1;
    } while (nextToken && pages < 10);
    assert.deepEqual(seen, [...names].sort());
    assert.equal(pages, 3);

    const bad = await rejection(() => client.send(new ListVirtualNodesCommand({ meshName: m, nextToken: 'not-a-token' })));
    assert.equal(bad.name, 'BadRequestException');
    assert.match(bad.message, /nextToken/);
    const tooBig = await rejection(() => client.send(new ListVirtualNodesCommand({ meshName: m, limit: 101 })));
    assert.equal(tooBig.name, 'BadRequestException');
    assert.match(tooBig.message, /limit/);
  });
});

describe('references', () => {
  const m = 'refs';

  before(async () => {
    await client.send(new CreateMeshCommand({ meshName: m }));
    await client.send(new CreateVirtualNodeCommand({ meshName: m, virtualNodeName: 'colorteller', spec: seed.colortellerStrictTls as never }));
    await client.send(new CreateVirtualRouterCommand({ meshName: m, virtualRouterName: 'router', spec: seed.colorRouter as never }));
    await client.send(new CreateRouteCommand({ meshName: m, virtualRouterName: 'router', routeName: 'r', spec: { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'colorteller', weight: 1 }] } } } }));
    await client.send(new CreateVirtualServiceCommand({ meshName: m, virtualServiceName: 'colorteller.appmesh-mtls.local', spec: { provider: { virtualRouter: { virtualRouterName: 'router' } } } }));
    await client.send(new CreateVirtualGatewayCommand({ meshName: m, virtualGatewayName: 'gateway', spec: seed.gatewayWithClientCert as never }));
    await client.send(new CreateGatewayRouteCommand({ meshName: m, virtualGatewayName: 'gateway', gatewayRouteName: 'gr', spec: seed.gatewayRouteToColorteller }));
  });

  const blocked: [string, () => unknown, RegExp][] = [
    ['a mesh that still has resources', () => new DeleteMeshCommand({ meshName: m }), /still contains/],
    ['a node that routes target', () => new DeleteVirtualNodeCommand({ meshName: m, virtualNodeName: 'colorteller' }), /target of one or more routes/],
    ['a router with routes that provides a service', () => new DeleteVirtualRouterCommand({ meshName: m, virtualRouterName: 'router' }), /VirtualService provider/],
    ['a service a gateway route targets', () => new DeleteVirtualServiceCommand({ meshName: m, virtualServiceName: 'colorteller.appmesh-mtls.local' }), /GATEWAY_ROUTE/],
    ['a gateway with gateway routes', () => new DeleteVirtualGatewayCommand({ meshName: m, virtualGatewayName: 'gateway' }), /GatewayRoute/],
  ];
  for (const [what, command, message] of blocked) {
    test(`deleting ${what} is refused with ResourceInUseException and changes nothing`, async () => {
      const before = await meshState(m);
      const err = await rejection(() => client.send(command() as never));
      assert.equal(err.name, 'ResourceInUseException');
      assert.equal(err.status, 409);
      assert.match(err.message, message);
      assert.deepEqual(await meshState(m), before);
    });
  }

  test('references to resources that do not exist are NotFoundException', async () => {
    const route = await rejection(() => client.send(new CreateRouteCommand({ meshName: m, virtualRouterName: 'router', routeName: 'r2', spec: { httpRoute: { match: { prefix: '/x' }, action: { weightedTargets: [{ virtualNode: 'product-v2-vn', weight: 1 }] } } } })));
    assert.equal(route.name, 'NotFoundException');
    assert.match(route.message, /VirtualNode with name product-v2-vn is not present/);
    const vs = await rejection(() => client.send(new CreateVirtualServiceCommand({ meshName: m, virtualServiceName: 'x.local', spec: { provider: { virtualNode: { virtualNodeName: 'missing' } } } })));
    assert.equal(vs.name, 'NotFoundException');
    const noMesh = await rejection(() => client.send(new CreateVirtualNodeCommand({ meshName: 'no-such-mesh', virtualNodeName: 'a', spec: {} })));
    assert.equal(noMesh.name, 'NotFoundException');
    assert.match(noMesh.message, /Mesh with name no-such-mesh is not present/);
    // A backend may name a virtual service that does not exist yet (App Mesh allows node <-> service cycles).
    const fwd = await client.send(new CreateVirtualNodeCommand({ meshName: m, virtualNodeName: 'front', spec: { backends: [{ virtualService: { virtualServiceName: 'later.local' } }] } }));
    assert.equal(fwd.virtualNode?.metadata?.version, 1);
  });
});

describe('idempotency', () => {
  test('a retried clientToken returns the first result; reusing it for another request is a ConflictException', async () => {
    const m = 'idem';
    await client.send(new CreateMeshCommand({ meshName: m }));
    const first = await client.send(new CreateVirtualNodeCommand({ meshName: m, virtualNodeName: 'a', spec: {}, clientToken: 'token-1' }));
    const retry = await client.send(new CreateVirtualNodeCommand({ meshName: m, virtualNodeName: 'a', spec: {}, clientToken: 'token-1' }));
    assert.equal(retry.virtualNode?.metadata?.uid, first.virtualNode?.metadata?.uid);
    const other = await rejection(() => client.send(new CreateVirtualNodeCommand({ meshName: m, virtualNodeName: 'b', spec: {}, clientToken: 'token-1' })));
    assert.equal(other.name, 'ConflictException');
    assert.match(other.message, /clientToken/);
    const dup = await rejection(() => client.send(new CreateVirtualNodeCommand({ meshName: m, virtualNodeName: 'a', spec: {} })));
    assert.equal(dup.name, 'ConflictException');
    assert.match(dup.message, /already exists/);
    assert.deepEqual((await client.send(new ListVirtualNodesCommand({ meshName: m }))).virtualNodes?.map((n) => n.virtualNodeName), ['a']);
  });
});

describe('tags', () => {
  test('more than 50 tags is TooManyTagsException and applies none', async () => {
    const m = 'tagging';
    const created = await client.send(new CreateMeshCommand({ meshName: m, tags: [{ key: 'k0', value: 'v' }] }));
    const arn = created.mesh!.metadata!.arn!;
    const many = Array.from({ length: 50 }, (_, i) => ({ key: `x${i}`, value: 'v' }));
    const err = await rejection(() => client.send(new TagResourceCommand({ resourceArn: arn, tags: many })));
    assert.equal(err.name, 'TooManyTagsException');
    assert.deepEqual((await client.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags, [{ key: 'k0', value: 'v' }]);
    const missing = await rejection(() => client.send(new ListTagsForResourceCommand({ resourceArn: 'arn:aws:appmesh:us-east-1:000000000000:mesh/nope' })));
    assert.equal(missing.name, 'NotFoundException');
  });
});

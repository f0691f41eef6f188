// Golden tests: the seed walkthroughs' meshes, step by step, as the Envoy resources each proxy gets.
import { test } from 'node:test';
import * as seeds from '../../test/fixtures/seed-specs.ts';
import type { EnvoyConfig, ProxyRef } from './api.ts';
import { assertGolden, assertRoundTrips, MeshBuilder } from './test-fixtures.ts';
import { translate } from './translate.ts';

/** KEYMESH_UPDATE_GOLDEN=1 rewrites the golden files (review the diff); otherwise they are only compared. */
const UPDATE = process.env.KEYMESH_UPDATE_GOLDEN === '1';
import * as codec from '../envoy/protos.ts';

function run(b: MeshBuilder, proxy: ProxyRef, endpoints: Record<string, { address: string; port: number }[]> = {}): EnvoyConfig {
  const config = translate({ view: b.view(), proxy, endpoints });
  assertRoundTrips(config, codec);
  return config;
}

// Seed 004: gateway -> colorteller (virtual node `colorteller-vn`), file certificates, five steps.
const MESH4 = 'ColorApp-MutualTLS';
const gatewayBase = { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] };
function gatewayPolicy(san: string, withCert: boolean) {
  return {
    ...gatewayBase,
    backendDefaults: { clientPolicy: { tls: {
      validation: { trust: { file: { certificateChain: '/keys/ca_cert.pem' } }, subjectAlternativeNames: { match: { exact: [san] } } },
      ...(withCert ? { certificate: { file: { certificateChain: '/keys/gateway_cert_chain.pem', privateKey: '/keys/gateway_key.pem' } } } : {}),
    } } },
  };
}
function mesh004(colorteller: object, gw: object): MeshBuilder {
  return new MeshBuilder(MESH4)
    .node('colorteller-vn', colorteller)
    .service('colorteller.appmesh-mtls.local', { provider: { virtualNode: { virtualNodeName: 'colorteller-vn' } } })
    .gateway('gateway-vg', gw)
    .gatewayRoute('gateway-vg', 'gateway-route', seeds.gatewayRouteToColorteller);
}
const steps004: [string, object, object][] = [
  ['1-strict-tls', seeds.colortellerStrictTls, gatewayBase],
  ['2-client-policy-bad-san', seeds.colortellerStrictTls, gatewayPolicy('bogus.appmesh-mtls.local', false)],
  ['3-client-policy-good-san', seeds.colortellerStrictTls, gatewayPolicy('colorteller.appmesh-mtls.local', false)],
  ['4-require-client-cert', seeds.colortellerRequireClientCert, gatewayPolicy('colorteller.appmesh-mtls.local', false)],
  ['5-client-cert', seeds.colortellerRequireClientCert, seeds.gatewayWithClientCert],
];
for (const [step, colorteller, gw] of steps004) {
  test(`seed 004 step ${step}: colorteller and gateway`, () => {
    const b = mesh004(colorteller, gw);
    assertGolden(`seed004-${step}-colorteller`, run(b, { kind: 'virtualNode', name: 'colorteller-vn' }), UPDATE);
    assertGolden(`seed004-${step}-gateway`, run(b, { kind: 'virtualGateway', name: 'gateway-vg' }), UPDATE);
  });
}

// Seed 003: front -> color (router) -> red/green/blue by `color_header`, SPIFFE over SDS.
const MESH3 = 'howto-k8s-mtls-sds-based';
const COLOR = 'color.howto-k8s-mtls-sds-based.svc.cluster.local';
function mesh003(): MeshBuilder {
  const b = new MeshBuilder(MESH3).node('front', seeds.sdsFrontNode).router('color', seeds.colorRouter)
    .service(COLOR, { provider: { virtualRouter: { virtualRouterName: 'color' } } });
  for (const c of ['red', 'green', 'blue']) b.node(c, seeds.sdsColorNode(c)).route('color', `color-${c}`, seeds.headerRoute(c));
  return b;
}
test('seed 003: front gets header routes to red/green/blue with SPIFFE SDS mTLS', () => {
  assertGolden('seed003-front', run(mesh003(), { kind: 'virtualNode', name: 'front' }, { red: [{ address: '10.0.0.7', port: 8080 }] }), UPDATE);
});
test('seed 003: blue requires a client certificate from front', () => {
  assertGolden('seed003-blue', run(mesh003(), { kind: 'virtualNode', name: 'blue' }), UPDATE);
});

// Seed 002: ACM certificate on the colorteller, trust by CA ARN on the gateway.
function mesh002(): MeshBuilder {
  return new MeshBuilder('appmesh-acm')
    .node('colorteller-white', seeds.acmColortellerNode)
    .service('colorteller.appmesh-acm.local', { provider: { virtualNode: { virtualNodeName: 'colorteller-white' } } })
    .gateway('gateway', seeds.acmGateway)
    .gatewayRoute('gateway', 'route', { httpRoute: { match: { prefix: '/' }, action: { target: { virtualService: { virtualServiceName: 'colorteller.appmesh-acm.local' } } } } });
}
test('seed 002: ACM certificate and CA ARN trust', () => {
  assertGolden('seed002-colorteller', run(mesh002(), { kind: 'virtualNode', name: 'colorteller-white' }), UPDATE);
  assertGolden('seed002-gateway', run(mesh002(), { kind: 'virtualGateway', name: 'gateway' }), UPDATE);
});

// Seed 001: migration; the server in PERMISSIVE mode accepts TLS and plaintext.
test('seed 001: PERMISSIVE server during migration', () => {
  const server = {
    listeners: [{ portMapping: { port: 9080, protocol: 'http' }, tls: { mode: 'PERMISSIVE', certificate: { file: { certificateChain: '/certs/server.pem', privateKey: '/certs/server.key' } }, validation: { trust: { file: { certificateChain: '/certs/ca.pem' } } } } }],
    serviceDiscovery: { dns: { hostname: 'backend.my-mesh.local' } },
  };
  const client = {
    listeners: [{ portMapping: { port: 8080, protocol: 'http' } }],
    serviceDiscovery: { dns: { hostname: 'client.my-mesh.local' } },
    backends: [{ virtualService: { virtualServiceName: 'backend.my-mesh.local' } }],
  };
  const b = new MeshBuilder('my-mesh').node('my-backend-node', server).node('client', client)
    .service('backend.my-mesh.local', { provider: { virtualNode: { virtualNodeName: 'my-backend-node' } } });
  assertGolden('seed001-backend', run(b, { kind: 'virtualNode', name: 'my-backend-node' }), UPDATE);
  assertGolden('seed001-client', run(b, { kind: 'virtualNode', name: 'client' }), UPDATE);
});

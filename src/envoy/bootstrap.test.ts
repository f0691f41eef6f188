import assert from 'node:assert/strict';
import { test } from 'node:test';
import { envoyBootstrap, xdsClientSecretFile } from './bootstrap.ts';
import { roundTrip } from './protos.ts';
import { jsonToStruct } from './struct.ts';

const input = {
  nodeId: 'arn:aws:appmesh:us-east-1:000000000000:mesh/colorapp/virtualNode/colorteller',
  nodeCluster: 'colorteller',
  xdsHost: '127.0.0.1',
  xdsPort: 7444,
  controlPlaneCaPath: '/var/keymesh/control-plane/ca-cert.pem',
  svidDir: '/var/run/keymesh/colorteller',
  adminAddress: '127.0.0.1',
  adminPort: 9901,
};

test('the bootstrap is a valid Envoy Bootstrap: every field survives the proto unchanged', () => {
  const bootstrap = envoyBootstrap(input);
  assert.deepEqual(roundTrip('type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap', bootstrap), bootstrap);
  const withSvid = envoyBootstrap({ ...input, spiffeId: 'spiffe://colorapp/colorteller' });
  assert.deepEqual(roundTrip('type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap', withSvid), withSvid);
  // node.metadata is a Struct: plain JSON for Envoy, `{ fields }` in protobufjs's object form.
  const metadata = { keymesh: { listen_address: '127.0.0.1', ingress_port: 15010, endpoint: { ports: [9090] } } };
  const placed = envoyBootstrap({ ...input, metadata }) as { node: Record<string, unknown> };
  assert.deepEqual(placed.node.metadata, metadata);
  const asProto = { ...placed, node: { ...placed.node, metadata: jsonToStruct(metadata) } };
  assert.deepEqual(roundTrip('type.googleapis.com/envoy.config.bootstrap.v3.Bootstrap', asProto), asProto);
});

test('with the SPIFFE ID, the SVID is a static secret of that name on the renewed files, watched for changes', () => {
  const b = envoyBootstrap({ ...input, spiffeId: 'spiffe://colorapp/colorteller' }) as any;
  assert.deepEqual(b.staticResources.secrets, [{
    name: 'spiffe://colorapp/colorteller',
    tlsCertificate: {
      certificateChain: { filename: '/var/run/keymesh/colorteller/svid.pem' },
      privateKey: { filename: '/var/run/keymesh/colorteller/svid_key.pem' },
      watchedDirectory: { path: '/var/run/keymesh/colorteller' },
    },
  }]);
  assert.equal((envoyBootstrap(input) as any).staticResources.secrets, undefined);
});

test('it names the node by ARN, uses ADS for everything, and authenticates to keymesh with the renewed SVID', () => {
  const b = envoyBootstrap(input) as any;
  assert.equal(b.node.id, input.nodeId);
  assert.equal(b.admin.address.socketAddress.portValue, 9901);
  assert.deepEqual(b.dynamicResources.cdsConfig, { ads: {}, resourceApiVersion: 'V3' });
  const tls = b.staticResources.clusters[0].transportSocket.typedConfig;
  assert.equal(tls.sni, 'keymesh-control-plane');
  assert.equal(tls.commonTlsContext.validationContext.trustedCa.filename, input.controlPlaneCaPath);
  assert.equal(tls.commonTlsContext.tlsCertificateSdsSecretConfigs[0].sdsConfig.pathConfigSource.watchedDirectory.path, input.svidDir);
  assert.equal(b.staticResources.clusters[0].type, 'STATIC');
  assert.equal((envoyBootstrap({ ...input, xdsHost: 'keymesh.internal' }) as any).staticResources.clusters[0].type, 'STRICT_DNS');
});

test('the file-based SDS answer is a valid DiscoveryResponse naming the SVID files', () => {
  const file = xdsClientSecretFile(input.svidDir);
  assert.deepEqual(roundTrip('type.googleapis.com/envoy.service.discovery.v3.DiscoveryResponse', file), file);
  assert.match(JSON.stringify(file), /\/var\/run\/keymesh\/colorteller\/svid_key\.pem/);
});

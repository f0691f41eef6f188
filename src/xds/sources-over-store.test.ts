// StoreConfigSource over a memory store, and the secret-name rules of CaSecretSource.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EndpointRegistry } from '../discovery/endpoint-registry.ts';
import { MemoryEndpointStore } from '../store/memory/memory-endpoint-store.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import { record } from '../translate/test-fixtures.ts';
import { classifySecretName, specReferencesCertificate } from './ca-secret-source.ts';
import type { AffectedPredicate, ProxyIdentity } from './sources.ts';
import { StoreConfigSource } from './store-config-source.ts';

const node = (mesh: string, name: string): ProxyIdentity => ({ mesh, kind: 'virtualNode', name, spiffeId: `spiffe://${mesh}/${name}` });
const backend = { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }], serviceDiscovery: { dns: { hostname: 'backend.local' } } };

test('StoreConfigSource translates from the store, caches the mesh view and invalidates it on a change in that mesh', async () => {
  const store = new MemoryStore();
  await store.create(record('mesh', 'm1', 'm1', {}));
  await store.create(record('mesh', 'm2', 'm2', {}));
  await store.create(record('virtualNode', 'm1', 'backend', backend));
  await store.create(record('virtualNode', 'm2', 'other', backend));
  const source = new StoreConfigSource({ store });
  const seen: AffectedPredicate[] = [];
  const unwatch = source.watch((a) => seen.push(a));

  const first = await source.configFor(node('m1', 'backend'));
  assert.deepEqual(first.listeners.map((l) => l.name), ['lds_egress_0.0.0.0_15001', 'lds_ingress_0.0.0.0_15000']);
  assert.equal(await source.view('m1'), await source.view('m1'), 'cached');
  const cached = await source.view('m1');

  const stored = (await store.get({ kind: 'virtualNode', mesh: 'm1', parent: '', name: 'backend' }))!;
  await store.update({ ...stored, spec: { ...backend, listeners: [{ portMapping: { port: 9090, protocol: 'http' } }] } }, stored.rev);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!(node('m1', 'anything')), true, 'every proxy of the mesh');
  assert.equal(seen[0]!(node('m2', 'other')), false, 'no proxy of another mesh');
  assert.notEqual(await source.view('m1'), cached, 'rebuilt after the change');
  assert.match(JSON.stringify((await source.configFor(node('m1', 'backend'))).clusters), /9090/);

  await assert.rejects(source.configFor(node('m1', 'missing')), /missing/);
  await assert.rejects(source.configFor(node('gone', 'x')), /mesh gone does not exist/);
  unwatch();
  source.close();
  await store.update({ ...stored, rev: stored.rev + 1 }, stored.rev + 1).catch(() => {});
  assert.equal(seen.length, 1, 'no notification after close');
});

test("StoreConfigSource: registered instances become the node's EDS assignment; a change of membership re-reads them", async () => {
  const store = new MemoryStore();
  await store.create(record('mesh', 'm', 'm', {}));
  await store.create(record('virtualNode', 'm', 'backend', backend));
  await store.create(record('virtualNode', 'm', 'client', { backends: [{ virtualService: { virtualServiceName: 'backend.local' } }] }));
  await store.create(record('virtualService', 'm', 'backend.local', { provider: { virtualNode: { virtualNodeName: 'backend' } } }));
  const registry = new EndpointRegistry({ store: new MemoryEndpointStore() });
  const source = new StoreConfigSource({ store, endpoints: (mesh) => registry.list({ mesh }) });
  registry.watch((mesh) => source.endpointsChanged(mesh));
  const seen: AffectedPredicate[] = [];
  source.watch((a) => seen.push(a));
  const cluster = 'cds_egress_m_backend_http_9080';
  const typeOf = async () => (await source.configFor(node('m', 'client'))).clusters.find((c) => c.name === cluster)?.type;

  assert.equal(await typeOf(), 'LOGICAL_DNS', 'no instance: DNS on the hostname');
  const release = await registry.attach({ mesh: 'm', virtualNode: 'backend', address: '127.0.0.1', port: 15010 });
  assert.equal(seen.length, 1);
  const config = await source.configFor(node('m', 'client'), { ingressPort: 15020, egressPort: 15021, listenAddress: '127.0.0.1' });
  assert.equal(config.clusters.find((c) => c.name === cluster)?.type, 'EDS');
  assert.match(JSON.stringify(config.clusterLoadAssignments.find((a) => a.clusterName === cluster)), /"address":"127\.0\.0\.1","portValue":15010/);
  assert.match(JSON.stringify(config.listeners), /15021/, "the proxy's own egress port");
  await release();
  assert.equal(await typeOf(), 'EDS', 'kept during the grace period');
  await registry.deregister({ mesh: 'm', virtualNode: 'backend', instance: '127.0.0.1:15010' });
  assert.equal(await typeOf(), 'LOGICAL_DNS');
  source.close();
});

test('secret names: trust domains, CA ARN lists, managed certificates, and SVIDs (never served)', () => {
  const ca = 'arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/abc';
  const ca2 = 'arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/def';
  const cert = 'arn:aws:acm:us-east-1:000000000000:certificate/123';
  assert.deepEqual(classifySecretName('shop.example'), { kind: 'trust-domain', trustDomain: 'shop.example' });
  assert.deepEqual(classifySecretName('spiffe://shop.example'), { kind: 'trust-domain', trustDomain: 'shop.example' });
  assert.deepEqual(classifySecretName('spiffe://shop.example/'), { kind: 'trust-domain', trustDomain: 'shop.example' });
  assert.deepEqual(classifySecretName(`${ca},${ca2}`), { kind: 'ca-arns', arns: [ca, ca2] });
  assert.deepEqual(classifySecretName(cert), { kind: 'managed-certificate', arn: cert });
  assert.deepEqual(classifySecretName('spiffe://shop.example/front'), { kind: 'svid', spiffeId: 'spiffe://shop.example/front' });
  assert.deepEqual(classifySecretName('Not A Name/x'), { kind: 'unknown' });
  assert.deepEqual(classifySecretName(`${ca},${cert}`), { kind: 'unknown' });
});

test('a spec references a managed certificate only through acm.certificateArn', () => {
  const cert = 'arn:aws:acm:us-east-1:000000000000:certificate/123';
  const spec = { listeners: [{ tls: { mode: 'STRICT', certificate: { acm: { certificateArn: cert } } } }] };
  assert.equal(specReferencesCertificate(spec, cert), true);
  assert.equal(specReferencesCertificate(spec, `${cert}4`), false);
  assert.equal(specReferencesCertificate({ description: cert, tags: [cert] }, cert), false);
  assert.equal(specReferencesCertificate(undefined, cert), false);
});

test('with acmIssuers, a client without a client policy validates an ACM server certificate against its CA', async () => {
  const store = new MemoryStore();
  const cert = 'arn:aws:acm:us-east-1:000000000000:certificate/c1';
  const ca = 'arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/ca1';
  await store.create(record('mesh', 'm', 'm', {}));
  await store.create(record('virtualNode', 'm', 'server', {
    listeners: [{ portMapping: { port: 9080, protocol: 'http' }, tls: { mode: 'STRICT', certificate: { acm: { certificateArn: cert } } } }],
    serviceDiscovery: { dns: { hostname: 'server.local' } },
  }));
  await store.create(record('virtualService', 'm', 'server.local', { provider: { virtualNode: { virtualNodeName: 'server' } } }));
  await store.create(record('virtualNode', 'm', 'client', { backends: [{ virtualService: { virtualServiceName: 'server.local' } }] }));
  const asked: string[] = [];
  const source = new StoreConfigSource({ store, acmIssuers: async (mesh) => (asked.push(mesh), { [cert]: ca }) });
  const config = await source.configFor(node('m', 'client'));
  assert.deepEqual(asked, ['m']);
  assert.deepEqual(config.secrets, [{ name: ca, type: 'validation', source: 'acm' }]);
  const plain = new StoreConfigSource({ store });
  assert.deepEqual((await plain.configFor(node('m', 'client'))).secrets, [], 'without the issuer the server certificate is not validated');
  plain.close();
  source.close();
});

test('acmIssuers is read once per mesh change, not once per proxy', async () => {
  const store = new MemoryStore();
  await store.create(record('mesh', 'm', 'm', {}));
  await store.create(record('virtualNode', 'm', 'a', backend));
  await store.create(record('virtualNode', 'm', 'b', backend));
  let reads = 0;
  const source = new StoreConfigSource({ store, acmIssuers: async () => (reads++, {}) });
  await source.configFor(node('m', 'a'));
  await source.configFor(node('m', 'b'));
  assert.equal(reads, 1);
  source.meshChanged('m');
  await source.configFor(node('m', 'a'));
  assert.equal(reads, 2);
  source.close();
});

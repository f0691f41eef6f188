// Rotation's gate from the xDS server's ACK records: a proxy holds a CA when its last ACKed SDS version is the
// version of the current secrets its configuration references.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CertificateAuthority } from '../ca/authority.ts';
import { TYPE_URLS } from '../envoy/protos.ts';
import type { EnvoyConfig } from '../translate/api.ts';
import type { ProxyStatus } from './ads-server.ts';
import { currentSdsVersion, XdsBundleDistribution } from './bundle-distribution.ts';
import { DEFAULT_PLACEMENT } from './node-metadata.ts';
import type { ConfigSource, ProxyIdentity, SecretSource } from './sources.ts';

const front: ProxyIdentity = { mesh: 'shop', kind: 'virtualNode', name: 'front', spiffeId: 'spiffe://shop.example/front' };
const files: ProxyIdentity = { mesh: 'shop', kind: 'virtualNode', name: 'files', spiffeId: 'spiffe://shop.example/files' };
const other: ProxyIdentity = { mesh: 'bank', kind: 'virtualNode', name: 'teller', spiffeId: 'spiffe://bank.example/teller' };

let bundlePem = 'OLD';
const authority = {
  describeCa: async (id: string) => ({ id, trustDomain: 'shop.example' }),
  settings: async (mesh: string) => ({ trustDomain: `${mesh}.example` }),
} as unknown as CertificateAuthority;
const config = (secrets: string[]): EnvoyConfig => ({
  listeners: [], routeConfigurations: [], clusters: [], clusterLoadAssignments: [],
  secrets: secrets.map((name) => ({ name, type: 'validation', source: 'sds' })),
});
const source: ConfigSource = {
  configFor: async (p) => config(p.name === 'front' ? ['shop.example', 'spiffe://shop.example/front'] : p.name === 'teller' ? ['bank.example'] : []),
  watch: () => () => {},
};
const secrets: SecretSource = {
  secretFor: async (_p, name) => (name.endsWith('.example') ? { name, validationContext: { trustedCa: { inlineString: bundlePem } } } : undefined),
};
const status = (identity: ProxyIdentity, sdsVersion?: string): ProxyStatus => ({
  stream: 1, identity, nodeId: `mesh/${identity.mesh}/virtualNode/${identity.name}`, peer: 'test', connectedAt: 0, lastSent: {},
  lastAck: sdsVersion ? { [TYPE_URLS.secret]: { version: sdsVersion, nonce: 'n', at: 0 } } : {}, lastNack: undefined, nacks: [], placement: DEFAULT_PLACEMENT,
  refusedSecrets: [], configError: undefined, staleRequests: 0,
});

test('before the xDS server is attached, every proxy holds (there is none)', async () => {
  assert.deepEqual(await new XdsBundleDistribution().lacking('ca-1'), []);
});

test('a proxy holds the CA once it ACKed the current bundle; proxies without a bundle secret or of other trust domains do not matter', async () => {
  const names = ['shop.example', 'spiffe://shop.example/front'];
  bundlePem = 'OLD';
  const oldVersion = await currentSdsVersion(secrets, front, names);
  let proxies: ProxyStatus[] = [status(front, oldVersion), status(files), status(other)];
  const d = new XdsBundleDistribution();
  d.attach({ authority, proxies: () => proxies, source, secrets });
  assert.deepEqual(await d.lacking('ca-1'), [], 'the ACKed version is the current one');
  bundlePem = 'OLD+NEW'; // the new CA joined the bundle; front has not ACKed it yet
  assert.deepEqual(await d.lacking('ca-1'), ['mesh/shop/virtualNode/front']);
  proxies = [status(front), status(files), status(other)];
  assert.deepEqual(await d.lacking('ca-1'), ['mesh/shop/virtualNode/front'], 'no SDS ACK at all');
  proxies = [status(front, await currentSdsVersion(secrets, front, names)), status(files), status(other)];
  assert.deepEqual(await d.lacking('ca-1'), []);
});

// Where a proxy runs (node.metadata.keymesh) and its registration, through the ADS server over real mTLS.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createXdsServer, NACK_HISTORY, type XdsServer } from './ads-server.ts';
import { placementOf, peerIp, registrationOf } from './node-metadata.ts';
import type { ConnectedProxy } from './sources.ts';
import { AdsClient, authenticator, eventually, makePki, memorySecrets, MemoryConfigSource, MESH, proxyConfig, T, type Pki } from './test-fixtures.ts';

let pki: Pki;
let source: MemoryConfigSource;
let server: XdsServer;
let port: number;
const connected: ConnectedProxy[] = [];
let released = 0;

before(async () => {
  pki = await makePki();
  source = new MemoryConfigSource();
  for (const n of ['front', 'back']) source.set(n, proxyConfig(n));
  server = createXdsServer({
    source, secrets: memorySecrets, authenticate: authenticator(pki),
    tls: { clientRoots: pki.caPem, certChain: pki.server.cert, privateKey: pki.server.key },
    onConnected: async (p) => {
      connected.push(p);
      return () => void released++;
    },
  });
  port = await server.listen('127.0.0.1:0');
});

after(() => server.close(1000));

function client(who: 'front' | 'back', metadata?: Record<string, unknown>): AdsClient {
  const c = new AdsClient(port, pki, pki.svids[who], `mesh/${MESH}/virtualNode/${who}`);
  c.metadata = metadata;
  return c;
}

test("the proxy's placement reaches the translation, its status and onConnected; the end of its stream releases it", async () => {
  const c = client('front', {
    keymesh: {
      listen_address: '127.0.0.1', ingress_port: 15010, egress_port: 15011, tcp_egress_address: '127.0.1.1',
      upstream_max_requests_per_connection: 1, upstream_tls_max_session_keys: 0, endpoint: { instance: 'front-1', ports: [9090] },
    },
    other: 'ignored',
  });
  c.send(T.cluster);
  await c.next();
  assert.deepEqual(source.placements.get('front'), {
    listenAddress: '127.0.0.1', ingressPort: 15010, egressPort: 15011, tcpEgressAddress: '127.0.1.1', upstreamMaxRequestsPerConnection: 1, upstreamTlsMaxSessionKeys: 0,
  });
  const p = connected.find((x) => x.identity.name === 'front')!;
  assert.equal(p.peerAddress, '127.0.0.1');
  assert.deepEqual(registrationOf(p.placement, p.peerAddress), { address: '127.0.0.1', port: 15010, ports: [9090], instance: 'front-1' });
  assert.deepEqual(server.proxies().find((s) => s.identity.name === 'front')?.placement.options.ingressPort, 15010);
  const before = released;
  c.close();
  await eventually(() => (released > before ? true : undefined), 5000, 'the release');
});

test('bad placement metadata refuses the stream with INVALID_ARGUMENT naming the field', async () => {
  const cases: [unknown, RegExp][] = [
    [{ ingress_port: 0 }, /node\.metadata\.keymesh\.ingress_port must be a port \(1-65535\), not 0/],
    [{ listen_address: 'localhost' }, /listen_address must be an IP address, not "localhost"/],
    [{ tcp_egress_address: 'db.local' }, /node\.metadata\.keymesh\.tcp_egress_address must be an IP address, not "db.local"/],
    [{ tcp_egress_address: 5432 }, /tcp_egress_address must be an IP address, not 5432/],
    [{ upstream_max_requests_per_connection: 0 }, /node\.metadata\.keymesh\.upstream_max_requests_per_connection must be an integer from 1 to 4294967295, not 0/],
    [{ upstream_max_requests_per_connection: '1' }, /upstream_max_requests_per_connection must be an integer from 1 to 4294967295, not "1"/],
    [{ upstream_max_requests_per_connection: 2.5 }, /upstream_max_requests_per_connection must be an integer from 1 to 4294967295, not 2\.5/],
    [{ upstream_tls_max_session_keys: -1 }, /node\.metadata\.keymesh\.upstream_tls_max_session_keys must be an integer from 0 to 4294967295, not -1/],
    [{ upstream_tls_max_session_keys: 4294967296 }, /upstream_tls_max_session_keys must be an integer from 0 to 4294967295, not 4294967296/],
    [{ upstream_tls_max_session_keys: true }, /upstream_tls_max_session_keys must be an integer from 0 to 4294967295, not true/],
    [{ ingress_port: 15001 }, /egress_port must differ from ingress_port/],
    [{ endpoint: { ports: ['x'] } }, /endpoint\.ports\[0\] must be a port/],
    [{ ingres_port: 1 }, /keymesh\.ingres_port is not a keymesh setting/],
    ['text', /keymesh must be a struct/],
  ];
  for (const [keymesh, message] of cases) {
    const c = client('back', { keymesh });
    c.send(T.cluster);
    const end = await c.ended();
    assert.equal(end.code, grpc.status.INVALID_ARGUMENT, JSON.stringify(keymesh));
    assert.match(end.details, message);
    c.close();
  }
});

test('the NACK history keeps the latest ones, oldest first', async () => {
  const c = client('back');
  const eds = [`cds_egress_${MESH}_back`];
  c.send(T.clusterLoadAssignment, { resourceNames: eds });
  let r = await c.next();
  for (let i = 0; i < NACK_HISTORY + 2; i++) {
    c.send(T.clusterLoadAssignment, { nonce: r.nonce, error: `bad ${i}`, resourceNames: eds });
    source.set('back', proxyConfig('back', { port: 9000 + i })); // a new EDS version, so another response comes
    r = await c.next();
  }
  const status = await eventually(() => server.proxies().find((s) => s.identity.name === 'back' && s.nacks.at(-1)?.message === `bad ${NACK_HISTORY + 1}`), 5000, 'the NACKs');
  assert.deepEqual(status.nacks.map((n) => n.message), Array.from({ length: NACK_HISTORY }, (_, i) => `bad ${i + 2}`));
  assert.equal(status.lastNack?.message, `bad ${NACK_HISTORY + 1}`);
  c.close();
});

test('placement defaults and registration rules', () => {
  assert.deepEqual(placementOf(undefined), { options: {}, endpoint: {} });
  assert.deepEqual(placementOf({ keymesh: { tcp_egress_address: '::1' } }), { options: { tcpEgressAddress: '::1' }, endpoint: {} });
  assert.deepEqual(placementOf({ keymesh: { upstream_max_requests_per_connection: 100, upstream_tls_max_session_keys: 1 } }), { options: { upstreamMaxRequestsPerConnection: 100, upstreamTlsMaxSessionKeys: 1 }, endpoint: {} });
  assert.deepEqual(registrationOf(placementOf({ keymesh: {} }), '10.1.2.3'), { address: '10.1.2.3', port: 15000 });
  assert.deepEqual(registrationOf(placementOf({ keymesh: { listen_address: '0.0.0.0', ingress_port: 15100 } }), '10.1.2.3'), { address: '10.1.2.3', port: 15100 });
  assert.equal(registrationOf(placementOf({ keymesh: { endpoint: false } }), '10.1.2.3'), undefined);
  assert.equal(registrationOf(placementOf({}), undefined), undefined);
  assert.deepEqual(registrationOf(placementOf({ keymesh: { endpoint: { address: '::1', port: 8443 } } }), '10.1.2.3'), { address: '::1', port: 8443 });
  assert.equal(peerIp('127.0.0.1:5000'), '127.0.0.1');
  assert.equal(peerIp('[::1]:5000'), '::1');
  assert.equal(peerIp('ipv4:10.0.0.1:1'), '10.0.0.1');
  assert.equal(peerIp('unix:/tmp/x'), undefined);
});

// The proxy's ADS client against keymesh's real xDS server over mTLS on loopback.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TYPE_URLS as T } from '../envoy/protos.ts';
import { createXdsServer, type XdsServer } from '../xds/ads-server.ts';
import { authenticator, eventually, makePki, memorySecrets, MemoryConfigSource, MESH, proxyConfig, TD, type Pki } from '../xds/test-fixtures.ts';
import { XdsClient, type Accept, type XdsClientEvent } from './xds-client.ts';

let pki: Pki;
let source: MemoryConfigSource;
let server: XdsServer;
let port: number;

function startServer(at = '127.0.0.1:0'): Promise<number> {
  server = createXdsServer({ source, secrets: memorySecrets, authenticate: authenticator(pki), tls: { clientRoots: pki.caPem, certChain: pki.server.cert, privateKey: pki.server.key } });
  return server.listen(at);
}

before(async () => {
  pki = await makePki();
  source = new MemoryConfigSource();
  source.set('front', proxyConfig('front'));
  port = await startServer();
});

after(() => server.close(500));

function client(accept: Accept, events: XdsClientEvent[] = []): XdsClient {
  return new XdsClient({
    address: `127.0.0.1:${port}`, controlPlaneCaPem: pki.caPem, serverName: 'xds.keymesh.test',
    credentials: () => ({ certChainPem: pki.svids.front!.cert, keyPem: pki.svids.front!.key }),
    node: { id: `mesh/${MESH}/virtualNode/front`, cluster: 'front', metadata: { keymesh: { ingress_port: 15100 } } },
    accept, onEvent: (e) => events.push(e), backoff: { initialMs: 50, maxMs: 200 },
  });
}

test('subscribes like Envoy: clusters and listeners, then the EDS, RDS and SDS names they refer to; ACKs what it accepts', async () => {
  const c = client(() => undefined);
  c.start();
  try {
    await eventually(() => (c.resources(T.secret).size > 0 && c.resources(T.routeConfiguration).size > 0 && c.resources(T.clusterLoadAssignment).size > 0) || undefined, 5000, 'all five types');
    assert.deepEqual([...c.resources(T.cluster).keys()], [`cds_egress_${MESH}_back`]);
    assert.deepEqual([...c.resources(T.routeConfiguration).keys()], ['rds_egress_front']);
    assert.deepEqual([...c.resources(T.secret).keys()], [`spiffe://${TD}/front`]);
    const status = await eventually(() => server.proxies().find((p) => Object.keys(p.lastAck).length === 5), 5000, 'five ACKs');
    assert.equal(status.placement.options.ingressPort, 15100, 'node metadata reached the server');
  } finally {
    c.stop();
  }
});

test('a refused update is NACKed with its reason and the previous resources stay', async () => {
  let refuse = false;
  const c = client((typeUrl) => (refuse && typeUrl === T.clusterLoadAssignment ? 'endpoint 10.0.0.7:9999 is not allowed here' : undefined));
  c.start();
  try {
    await eventually(() => c.resources(T.clusterLoadAssignment).size > 0 || undefined, 5000, 'EDS');
    const before = c.version(T.clusterLoadAssignment);
    refuse = true;
    source.set('front', proxyConfig('front', { port: 9999 }));
    const nack = await eventually(() => server.proxies().find((p) => p.lastNack)?.lastNack, 5000, 'the NACK');
    assert.equal(nack.message, 'endpoint 10.0.0.7:9999 is not allowed here');
    assert.equal(c.version(T.clusterLoadAssignment), before);
    assert.match(JSON.stringify([...c.resources(T.clusterLoadAssignment).values()]), /8080/);
  } finally {
    c.stop();
    source.set('front', proxyConfig('front'));
  }
});

test('keeps its configuration while the control plane is away and reconnects when it is back', async () => {
  const events: XdsClientEvent[] = [];
  const c = client(() => undefined, events);
  c.start();
  try {
    await eventually(() => c.resources(T.routeConfiguration).size > 0 || undefined, 5000, 'RDS');
    await server.close(200);
    await eventually(() => events.find((e) => e.type === 'disconnected'), 5000, 'the disconnect');
    assert.equal(c.connected, false);
    assert.equal(c.resources(T.cluster).size, 1, 'kept');
    port = await startServer(`127.0.0.1:${port}`);
    await eventually(() => (c.connected && server.proxies().length > 0) || undefined, 10_000, 'the reconnect');
    assert.equal(events.filter((e) => e.type === 'connected').length, 2);
  } finally {
    c.stop();
  }
});

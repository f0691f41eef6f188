// The ADS server against a scripted Envoy over real mTLS on loopback.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createXdsServer, type XdsServer } from './ads-server.ts';
import {
  AdsClient, authenticator, eventually, makePki, memorySecrets, MemoryConfigSource, MESH, proxyConfig, T, TD, type Pki,
} from './test-fixtures.ts';

let pki: Pki;
let source: MemoryConfigSource;
let server: XdsServer;
let port: number;
const clients: AdsClient[] = [];
const logs: { level: string; message: string; fields?: Readonly<Record<string, unknown>> }[] = [];

before(async () => {
  pki = await makePki();
  source = new MemoryConfigSource();
  source.set('front', proxyConfig('front'));
  source.set('back', proxyConfig('back', { upstream: 'front' }));
  source.set('gw', proxyConfig('gw'));
  server = createXdsServer({
    source,
    secrets: memorySecrets,
    authenticate: authenticator(pki),
    tls: { clientRoots: pki.caPem, certChain: pki.server.cert, privateKey: pki.server.key },
    log: (level, message, fields) => logs.push({ level, message, ...(fields ? { fields } : {}) }),
    // Wider than the 10 ms default: on a loaded CI machine the four requests of a burst must still land in
    // one window for the ordering tests; the ordering logic is the same.
    coalesceMs: 150,
  });
  port = await server.listen('127.0.0.1:0');
});

after(async () => {
  for (const c of clients) c.close();
  await server.close(1000);
});

function connect(who: 'front' | 'back' | 'gw' | 'plain', nodeId = `mesh/${MESH}/virtualNode/${who}`): AdsClient {
  const c = new AdsClient(port, pki, pki.svids[who], nodeId);
  clients.push(c);
  return c;
}

const statusOf = (nodeId: string) => server.proxies().find((p) => p.nodeId === nodeId);

/** Subscribes like Envoy and ACKs everything; returns the four first responses. */
async function fullFetch(c: AdsClient) {
  c.send(T.cluster);
  c.send(T.listener);
  const cds = await c.next();
  const lds = await c.next();
  c.ack(cds);
  c.ack(lds);
  c.send(T.clusterLoadAssignment, { resourceNames: [`cds_egress_${MESH}_back`] });
  c.send(T.routeConfiguration, { resourceNames: ['rds_egress_front'] });
  const eds = await c.next();
  const rds = await c.next();
  c.ack(eds, [`cds_egress_${MESH}_back`]);
  c.ack(rds, ['rds_egress_front']);
  return { cds, eds, lds, rds };
}

test('a burst of first requests is answered in the order CDS, EDS, LDS, RDS, with decodable resources', async () => {
  const c = connect('front');
  c.send(T.routeConfiguration, { resourceNames: ['rds_egress_front'] });
  c.send(T.listener);
  c.send(T.clusterLoadAssignment, { resourceNames: [`cds_egress_${MESH}_back`] });
  c.send(T.cluster);
  const got = [await c.next(), await c.next(), await c.next(), await c.next()];
  assert.deepEqual(got.map((r) => r.typeUrl), [T.cluster, T.clusterLoadAssignment, T.listener, T.routeConfiguration]);
  const config = proxyConfig('front');
  assert.deepEqual(got[0]!.resources, config.clusters);
  assert.deepEqual(got[1]!.resources, config.clusterLoadAssignments);
  assert.deepEqual(got[2]!.resources, config.listeners);
  assert.deepEqual(got[3]!.resources, config.routeConfigurations);
  for (const r of got) assert.match(r.versionInfo, /^[0-9a-f]{16}$/);
  assert.equal(new Set(got.map((r) => r.nonce)).size, 4);
  c.close();
});

test('ACKs are recorded per type; an ACKed version is not sent again', async () => {
  const c = connect('front');
  const { cds, lds } = await fullFetch(c);
  const nodeId = `mesh/${MESH}/virtualNode/front`;
  const status = await eventually(() => {
    const s = server.proxies().find((p) => p.nodeId === nodeId && Object.keys(p.lastAck).length === 4);
    return s;
  }, 5000, 'four ACKs');
  assert.equal(status.lastAck[T.cluster]!.version, cds.versionInfo);
  assert.equal(status.lastAck[T.listener]!.version, lds.versionInfo);
  assert.equal(status.lastNack, undefined);
  assert.deepEqual(status.identity, { mesh: MESH, kind: 'virtualNode', name: 'front', spiffeId: `spiffe://${TD}/front` });
  await c.nothingFor(200);
  c.close();
});

test('a NACK is recorded and the rejected version is not re-sent until the configuration changes', async () => {
  const c = connect('gw', `mesh/${MESH}/virtualGateway/gw`);
  c.send(T.cluster);
  const cds = await c.next();
  c.send(T.cluster, { versionInfo: '', nonce: cds.nonce, error: 'cluster rejected: bad tls' });
  const nack = await eventually(() => statusOf(`mesh/${MESH}/virtualGateway/gw`)?.lastNack, 5000, 'the NACK');
  assert.equal(nack.typeUrl, T.cluster);
  assert.equal(nack.version, cds.versionInfo);
  assert.equal(nack.nonce, cds.nonce);
  assert.equal(nack.message, 'cluster rejected: bad tls');
  await c.nothingFor(300);
  // A change of another proxy's configuration does not resend either.
  source.set('front', proxyConfig('front'));
  await c.nothingFor(200);
  // A real change does.
  source.set('gw', proxyConfig('gw', { port: 9090 }));
  c.send(T.clusterLoadAssignment, { resourceNames: [`cds_egress_${MESH}_back`] });
  const eds = await c.next();
  assert.equal(eds.typeUrl, T.clusterLoadAssignment);
  assert.equal((eds.resources[0] as any).endpoints[0].lbEndpoints[0].endpoint.address.socketAddress.portValue, 9090);
  await c.nothingFor(200); // clusters did not change: the rejected CDS version is still not re-sent
  source.set('gw', proxyConfig('gw', { upstream: 'front', port: 9090 }));
  const cds2 = await c.next();
  assert.equal(cds2.typeUrl, T.cluster);
  assert.notEqual(cds2.versionInfo, cds.versionInfo);
  c.close();
});

test('a configuration change pushes a new version only to the proxies it affects, in CDS, EDS order', async () => {
  const front = connect('front');
  const back = connect('back');
  const f = await fullFetch(front);
  back.send(T.cluster);
  const b = await back.next();
  back.ack(b);
  source.set('front', proxyConfig('front', { port: 7070 }));
  const eds = await front.next();
  assert.equal(eds.typeUrl, T.clusterLoadAssignment);
  assert.notEqual(eds.versionInfo, f.eds.versionInfo);
  assert.equal((eds.resources[0] as any).endpoints[0].lbEndpoints[0].endpoint.address.socketAddress.portValue, 7070);
  front.ack(eds, [`cds_egress_${MESH}_back`]);
  await front.nothingFor(200); // only the endpoints changed
  await back.nothingFor(100);
  source.set('front', proxyConfig('front'));
  assert.equal((await front.next()).versionInfo, f.eds.versionInfo, 'the same content has the same version');
  front.close();
  back.close();
});

test('a change touching every type is pushed in the order CDS, EDS, LDS, RDS', async () => {
  const c = connect('front');
  const first = await fullFetch(c);
  await eventually(() => (Object.keys(statusOf(`mesh/${MESH}/virtualNode/front`)?.lastAck ?? {}).length === 4 ? true : undefined), 5000, 'four ACKs');
  const changed = proxyConfig('front', { port: 6060 }) as any;
  changed.clusters[0].connectTimeout = { seconds: '2', nanos: 0 };
  changed.listeners[0].filterChains[0].filters[0].typedConfig.statPrefix = 'egress2';
  changed.routeConfigurations[0].virtualHosts[0].domains = ['back'];
  source.set('front', changed);
  const got = [await c.next(), await c.next(), await c.next(), await c.next()];
  assert.deepEqual(got.map((r) => r.typeUrl), [T.cluster, T.clusterLoadAssignment, T.listener, T.routeConfiguration]);
  assert.notEqual(got[0]!.versionInfo, first.cds.versionInfo);
  assert.deepEqual(got[3]!.resources, changed.routeConfigurations);
  c.close();
  source.set('front', proxyConfig('front'));
});

test('a response with a stale nonce is ignored', async () => {
  source.set('back', proxyConfig('back', { upstream: 'front' }));
  const c = connect('back');
  c.send(T.cluster);
  const first = await c.next();
  c.ack(first);
  const nodeId = `mesh/${MESH}/virtualNode/back`;
  await eventually(() => (statusOf(nodeId)?.lastAck[T.cluster]?.version === first.versionInfo ? true : undefined), 5000, 'the first ACK');
  source.set('back', proxyConfig('back', { upstream: 'gw' }));
  const second = await c.next();
  assert.notEqual(second.versionInfo, first.versionInfo);
  // An old nonce, even carrying an error, neither NACKs nor ACKs.
  c.send(T.cluster, { versionInfo: first.versionInfo, nonce: first.nonce, error: 'late complaint' });
  const s = await eventually(() => {
    const st = statusOf(nodeId);
    return st && st.staleRequests > 0 ? st : undefined;
  }, 5000, 'the stale request');
  assert.equal(s.lastNack, undefined);
  assert.equal(s.lastAck[T.cluster]!.version, first.versionInfo);
  c.ack(second);
  await eventually(() => (statusOf(nodeId)?.lastAck[T.cluster]?.version === second.versionInfo ? true : undefined), 5000, 'the ACK');
  await c.nothingFor(100);
  source.set('back', proxyConfig('back', { upstream: 'front' }));
  await c.next();
  c.close();
});

test('a reconnecting proxy gets the current snapshot', async () => {
  const a = connect('gw', `arn:aws:appmesh:us-west-2:123456789012:mesh/${MESH}/virtualGateway/gw`);
  a.send(T.cluster);
  const before = await a.next();
  a.close();
  source.set('gw', proxyConfig('gw', { upstream: 'back', port: 1234 }));
  await eventually(() => (server.proxies().some((p) => p.identity.name === 'gw') ? undefined : true), 5000, 'the old stream gone');
  const b = connect('gw', `arn:aws:appmesh:us-west-2:123456789012:mesh/${MESH}/virtualGateway/gw`);
  b.send(T.cluster, { versionInfo: before.versionInfo });
  b.send(T.clusterLoadAssignment, { versionInfo: before.versionInfo, resourceNames: [`cds_egress_${MESH}_back`] });
  const cds = await b.next();
  const eds = await b.next();
  assert.equal(cds.typeUrl, T.cluster);
  assert.equal(eds.typeUrl, T.clusterLoadAssignment);
  assert.equal((eds.resources[0] as any).endpoints[0].lbEndpoints[0].endpoint.address.socketAddress.portValue, 1234);
  b.close();
});

test('a proxy claiming another node id is refused with PERMISSION_DENIED naming both', async () => {
  const c = connect('front', `mesh/${MESH}/virtualNode/back`);
  c.send(T.cluster);
  const end = await c.ended();
  assert.equal(end.code, grpc.status.PERMISSION_DENIED);
  assert.match(end.details, new RegExp(`mesh/${MESH}/virtualNode/back`));
  assert.match(end.details, new RegExp(`mesh/${MESH}/virtualNode/front`));
  const other = connect('gw', `mesh/${MESH}/virtualNode/gw`);
  other.send(T.cluster);
  assert.equal((await other.ended()).code, grpc.status.PERMISSION_DENIED);
  const garbage = connect('front', 'front');
  garbage.send(T.cluster);
  assert.equal((await garbage.ended()).code, grpc.status.PERMISSION_DENIED);
});

test('clients without a certificate, with one from an unknown CA, or without an SVID get nothing', async () => {
  const none = new AdsClient(port, pki, undefined, `mesh/${MESH}/virtualNode/front`);
  const rogue = new AdsClient(port, pki, pki.rogue, `mesh/${MESH}/virtualNode/front`);
  clients.push(none, rogue);
  none.send(T.cluster);
  rogue.send(T.cluster);
  for (const c of [none, rogue]) {
    const end = await c.ended();
    assert.ok([grpc.status.UNAVAILABLE, grpc.status.UNAUTHENTICATED].includes(end.code), `${end.code} ${end.details}`);
  }
  const plain = connect('plain', `mesh/${MESH}/virtualNode/front`);
  plain.send(T.cluster);
  const end = await plain.ended();
  assert.equal(end.code, grpc.status.UNAUTHENTICATED);
  assert.match(end.details, /not a keymesh SVID/);
});

test('SDS: the proxy gets its own secret and the bundle, never another proxy\'s', async () => {
  const c = connect('front');
  const own = `spiffe://${TD}/front`;
  const others = `spiffe://${TD}/back`;
  c.send(T.secret, { resourceNames: [others, own, `spiffe://${TD}`] });
  const sds = await c.next();
  assert.equal(sds.typeUrl, T.secret);
  assert.deepEqual(sds.resources.map((r) => r.name), [`spiffe://${TD}`, own]); // sorted by name
  assert.deepEqual((sds.resources[1] as any).tlsCertificate.privateKey, { inlineString: `key of ${own}` });
  const refused = await eventually(() => statusOf(`mesh/${MESH}/virtualNode/front`)?.refusedSecrets.find((r) => r.name === others), 5000, 'the refusal');
  assert.equal(refused.name, others);
  assert.ok(logs.some((l) => l.message === 'xDS secret refused' && l.fields?.secret === others));
  // Asking only for the other proxy's secret gives nothing of it.
  c.ack(sds, [others]);
  const empty = await c.next();
  assert.deepEqual(empty.resources, []);
  c.close();
});

test('an inconsistent configuration is not published; the proxy keeps the previous one', async () => {
  const good = proxyConfig('back', { upstream: 'front' });
  source.set('back', good);
  const c = connect('back');
  c.send(T.cluster);
  c.send(T.listener);
  const cds = await c.next();
  const lds = await c.next();
  c.ack(cds);
  c.ack(lds);
  // The route points at a cluster that is gone.
  source.set('back', { ...good, clusters: [], clusterLoadAssignments: [] });
  const nodeId = `mesh/${MESH}/virtualNode/back`;
  const err = await eventually(() => statusOf(nodeId)?.configError, 5000, 'the configuration error');
  assert.ok(err.problems.some((p) => p.includes(`cluster cds_egress_${MESH}_front, which does not exist`)), err.problems.join('; '));
  await c.nothingFor(300);
  // A listener naming a route configuration that does not exist, and an EDS cluster without endpoints.
  source.set('back', { ...good, routeConfigurations: [], clusterLoadAssignments: [] });
  const err2 = await eventually(() => {
    const e = statusOf(nodeId)?.configError;
    return e && e !== err ? e : undefined;
  }, 5000, 'the second configuration error');
  assert.ok(err2.problems.some((p) => p.includes('route configuration rds_egress_back, which does not exist')), err2.problems.join('; '));
  assert.ok(err2.problems.some((p) => p.includes('has no cluster load assignment')), err2.problems.join('; '));
  await c.nothingFor(200);
  source.set('back', proxyConfig('back', { upstream: 'gw' }));
  const next = await c.next();
  assert.equal(next.typeUrl, T.cluster);
  assert.equal(statusOf(nodeId)?.configError, undefined);
  c.close();
});

test('a proxy whose first configuration is inconsistent gets nothing until it is fixed', async () => {
  source.set('gw', { ...proxyConfig('gw'), clusters: [] });
  const c = connect('gw', `mesh/${MESH}/virtualGateway/gw`);
  c.send(T.cluster);
  c.send(T.listener);
  await eventually(() => statusOf(`mesh/${MESH}/virtualGateway/gw`)?.configError, 5000, 'the configuration error');
  await c.nothingFor(200);
  source.set('gw', proxyConfig('gw'));
  assert.equal((await c.next()).typeUrl, T.cluster);
  assert.equal((await c.next()).typeUrl, T.listener);
  c.close();
});

// A stream does not outlive its credential: closeWhere (revocation) and certificate expiry end it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ManualClock } from '../base/clock.ts';
import { x509 } from '../pki/provider.ts';
import { createXdsServer, timerAt, type XdsServer } from './ads-server.ts';
import type { Authenticate, StreamCredential } from './sources.ts';
import {
  AdsClient, authenticator, eventually, makePki, memorySecrets, MemoryConfigSource, MESH, proxyConfig, T, TD, type Pems, type Pki,
} from './test-fixtures.ts';

let pki: Pki;
let source: MemoryConfigSource;
let server: XdsServer;
let port: number;
const clients: AdsClient[] = [];
const logs: { level: string; message: string; fields?: Readonly<Record<string, unknown>> }[] = [];
/** When set, authentication waits for it (to race a revocation with a handshake). */
let gate: Promise<void> | undefined;
let authenticating = 0;

before(async () => {
  pki = await makePki();
  source = new MemoryConfigSource();
  for (const name of ['front', 'back', 'gw', 'brief', 'late', 'other']) source.set(name, proxyConfig(name));
  const check = authenticator(pki);
  const authenticate: Authenticate = async (chain) => {
    authenticating++;
    if (gate) await gate;
    return check(chain);
  };
  server = createXdsServer({
    source,
    secrets: memorySecrets,
    authenticate,
    tls: { clientRoots: pki.caPem, certChain: pki.server.cert, privateKey: pki.server.key },
    log: (level, message, fields) => logs.push({ level, message, ...(fields ? { fields } : {}) }),
  });
  port = await server.listen('127.0.0.1:0');
});

after(async () => {
  for (const c of clients) c.close();
  await server.close(1000);
});

function connect(name: string, pems: Pems): AdsClient {
  const c = new AdsClient(port, pki, pems, `mesh/${MESH}/virtualNode/${name}`);
  clients.push(c);
  return c;
}

const streamOf = (name: string) => server.proxies().find((p) => p.identity.name === name);
const serialOf = (pems: Pems) => new x509.X509Certificate(pems.cert).serialNumber;

test('closeWhere ends the matching identity\'s stream with PERMISSION_DENIED, and not the others', async () => {
  const front = connect('front', pki.svids.front);
  const back = connect('back', pki.svids.back);
  front.send(T.cluster);
  back.send(T.cluster);
  await front.next();
  const backCds = await back.next();
  back.ack(backCds);
  const seen: StreamCredential[] = [];
  const ended = server.closeWhere((c) => {
    seen.push(c);
    return c.identity.spiffeId === `spiffe://${TD}/front`;
  }, 'its identity was revoked');
  assert.equal(ended, 1);
  const frontCredential = seen.find((c) => c.identity.name === 'front');
  assert.equal(frontCredential?.serial, serialOf(pki.svids.front));
  assert.equal(frontCredential?.notAfter, new x509.X509Certificate(pki.svids.front.cert).notAfter.getTime());

  const status = await front.ended();
  assert.equal(status.code, grpc.status.PERMISSION_DENIED);
  assert.match(status.details, new RegExp(`spiffe://${TD}/front`));
  assert.match(status.details, /its identity was revoked/);
  await eventually(() => (streamOf('front') ? undefined : true), 2000, 'front gone from proxies()');
  const line = logs.find((l) => l.message === 'xDS stream ended' && l.fields?.spiffeId === `spiffe://${TD}/front`);
  assert.ok(line, 'the end is logged');
  assert.equal(line.fields?.serial, serialOf(pki.svids.front));
  assert.match(String(line.fields?.reason), /its identity was revoked/);

  // back is still served.
  source.set('back', proxyConfig('back', { upstream: 'gw' }));
  const pushed = await back.next();
  assert.equal(pushed.typeUrl, T.cluster);
  assert.ok(streamOf('back'));
  assert.equal(server.closeWhere(() => false, 'nothing'), 0);
  back.close();
});

test('closeWhere by certificate serial: a stream with a newer certificate of the same identity stays', async () => {
  const renewed = await pki.issueSvid('other');
  const older = await pki.issueSvid('other');
  const a = connect('other', older);
  const b = connect('other', renewed);
  a.send(T.cluster);
  b.send(T.cluster);
  await a.next();
  await b.next();
  const revoked = serialOf(older);
  assert.equal(server.closeWhere((c) => c.serial === revoked, (c) => `its certificate (serial ${c.serial}) was revoked`), 1);
  const status = await a.ended();
  assert.equal(status.code, grpc.status.PERMISSION_DENIED);
  assert.match(status.details, new RegExp(`spiffe://${TD}/other.*serial ${revoked}\\) was revoked`));
  source.set('other', proxyConfig('other', { upstream: 'gw' }));
  assert.equal((await b.next()).typeUrl, T.cluster);
  b.close();
});

test('a stream still authenticating when closeWhere is called is ended once authenticated; others are not', async () => {
  let release!: () => void;
  gate = new Promise<void>((r) => (release = r));
  const before = authenticating;
  const late = connect('late', await pki.issueSvid('late'));
  const gw = new AdsClient(port, pki, pki.svids.gw, `mesh/${MESH}/virtualGateway/gw`);
  clients.push(gw);
  late.send(T.cluster);
  gw.send(T.cluster);
  await eventually(() => (authenticating >= before + 2 ? true : undefined), 5000, 'both handshakes reach authenticate');
  assert.equal(server.closeWhere((c) => c.identity.name === 'late', 'its identity was revoked'), 0);
  gate = undefined;
  release();
  const status = await late.ended();
  assert.equal(status.code, grpc.status.PERMISSION_DENIED);
  assert.match(status.details, new RegExp(`spiffe://${TD}/late was ended: its identity was revoked`));
  // gw authenticated in the same window and does not match: served.
  assert.equal((await gw.next()).typeUrl, T.cluster);
  // The rule is not kept for later handshakes.
  const again = connect('late', await pki.issueSvid('late'));
  again.send(T.cluster);
  assert.equal((await again.next()).typeUrl, T.cluster);
  gw.close();
  again.close();
});

test('a stream ends (UNAUTHENTICATED) when the certificate it authenticated with expires', async () => {
  const pems = await pki.issueSvid('brief', 2500);
  const notAfter = new x509.X509Certificate(pems.cert).notAfter.getTime();
  const c = connect('brief', pems);
  c.send(T.cluster);
  await c.next();
  assert.ok(streamOf('brief'));
  const status = await c.ended(notAfter - Date.now() + 3000);
  assert.ok(Date.now() >= notAfter - 50, 'not before notAfter');
  assert.equal(status.code, grpc.status.UNAUTHENTICATED);
  assert.match(status.details, new RegExp(`spiffe://${TD}/brief.*serial ${serialOf(pems)}\\) expired at`));
  assert.match(status.details, /renewed SVID/);
  await eventually(() => (streamOf('brief') ? undefined : true), 2000, 'brief gone from proxies()');
  assert.ok(logs.some((l) => l.message === 'xDS stream ended' && l.fields?.spiffeId === `spiffe://${TD}/brief`));
});

test('timerAt re-arms in bounded steps until the clock reaches the deadline, and can be cancelled', async () => {
  const clock = new ManualClock();
  let fired = 0;
  timerAt(clock.now() + 10 * 24 * 3600_000, clock, () => fired++, 10);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(fired, 0, 'several steps pass without firing early');
  clock.advance(10 * 24 * 3600_000);
  await eventually(() => (fired === 1 ? true : undefined), 1000, 'fired');
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(fired, 1, 'fires once');

  let cancelledFired = 0;
  const cancel = timerAt(clock.now() + 1000, clock, () => cancelledFired++, 10);
  cancel();
  clock.advance(2000);
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(cancelledFired, 0);

  let past = 0;
  timerAt(clock.now() - 1, clock, () => past++);
  assert.equal(past, 1, 'a deadline already passed fires at once');
});

// TLS origination against real TLS servers: Envoy's SAN and trust checks, client certificates, resumption.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { createServer, type Server } from 'node:tls';
import { after, before, test } from 'node:test';
import { StatsStore } from '../admin/stats.ts';
import { Path } from '../resources/values.ts';
import { makeTestPki, type TestPki } from '../test-pki.ts';
import { compileUpstreamTls } from './compile.ts';
import { dialTls, SessionCache, upstreamTlsCounters } from './dial.ts';
import { TlsProvider } from './provider.ts';

let pki: TestPki;
const servers: Server[] = [];
const provider = new TlsProvider(() => undefined);

before(async () => {
  pki = await makeTestPki();
});
after(() => {
  for (const s of servers) s.close();
  provider.close();
  rmSync(pki.dir, { recursive: true, force: true });
});

async function server(cert: { certPem: string; keyPem: string }, requireClient = false): Promise<number> {
  const s = createServer({ cert: cert.certPem, key: cert.keyPem, ca: pki.caPem, requestCert: requireClient, rejectUnauthorized: requireClient }, (sock) => sock.end('hi'));
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as { port: number }).port;
}

function upstream(opts: { trust?: boolean; sans?: string[]; clientCert?: boolean; maxSessionKeys?: number }) {
  const common: Record<string, unknown> = { tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' } };
  if (opts.trust) common.validationContext = { trustedCa: { filename: pki.caPath }, ...(opts.sans ? { matchTypedSubjectAltNames: opts.sans.map((s) => ({ sanType: 'DNS', matcher: { exact: s } })) } : {}) };
  if (opts.clientCert) common.tlsCertificates = [{ certificateChain: { filename: pki.client.cert }, privateKey: { filename: pki.client.key } }];
  const typedConfig = {
    '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', commonTlsContext: common,
    ...(opts.maxSessionKeys !== undefined ? { maxSessionKeys: { value: opts.maxSessionKeys } } : {}),
  };
  return compileUpstreamTls({ name: 'envoy.transport_sockets.tls', typedConfig }, new Path('cluster c'));
}

async function dial(port: number, tls: ReturnType<typeof upstream>, stats: StatsStore, sessions = new SessionCache()): Promise<string> {
  const socket = netConnect(port, '127.0.0.1');
  await new Promise((r, j) => socket.once('connect', r).once('error', j));
  const s = await dialTls({ tls, provider, counters: upstreamTlsCounters(stats.scope('cluster.c')), sessions, socket, host: '127.0.0.1', port });
  return new Promise((resolve, reject) => {
    let out = '';
    s.on('data', (d) => { out += String(d); });
    s.on('end', () => resolve(out));
    // TLS 1.3: a server that refuses our certificate says so after our side of the handshake has finished.
    s.on('error', reject);
  });
}

const value = (stats: StatsStore, n: string) => stats.value(`cluster.c.ssl.${n}`) ?? 0;

test('without a validation context the server is not verified (App Mesh with no client policy)', async () => {
  const stats = new StatsStore();
  assert.equal(await dial(await server(pki.rogue), upstream({}), stats), 'hi');
  assert.equal(value(stats, 'handshake'), 1);
});

test('trust and SANs: the right server passes; a wrong SAN is fail_verify_san; another CA is fail_verify_error (seed 004 steps 2, 3)', async () => {
  const stats = new StatsStore();
  const port = await server(pki.server);
  assert.equal(await dial(port, upstream({ trust: true, sans: ['colorteller.mesh.local'] }), stats), 'hi');
  await assert.rejects(dial(port, upstream({ trust: true, sans: ['colorteller-wrong.mesh.local'] }), stats), /match none of the configured ones/);
  assert.equal(value(stats, 'fail_verify_san'), 1);
  await assert.rejects(dial(await server(pki.rogue), upstream({ trust: true }), stats));
  assert.equal(value(stats, 'fail_verify_error'), 1);
  assert.equal(value(stats, 'handshake'), 1);
});

test('a client certificate for servers that require one; sessions are resumed', async () => {
  const stats = new StatsStore();
  const port = await server(pki.server, true);
  await assert.rejects(dial(port, upstream({ trust: true }), stats));
  const sessions = new SessionCache();
  const tls = upstream({ trust: true, clientCert: true });
  assert.equal(await dial(port, tls, stats, sessions), 'hi');
  assert.equal(await dial(port, tls, stats, sessions), 'hi');
  assert.equal(value(stats, 'session_reused'), 1);
});

test('a session made under one SAN list is not resumed under another: the new check applies', async () => {
  const stats = new StatsStore();
  const port = await server(pki.server);
  const sessions = new SessionCache();
  assert.equal(await dial(port, upstream({ trust: true, sans: ['colorteller.mesh.local'] }), stats, sessions), 'hi');
  assert.equal(await dial(port, upstream({ trust: true, sans: ['colorteller.mesh.local'] }), stats, sessions), 'hi');
  assert.equal(value(stats, 'session_reused'), 1);
  await assert.rejects(dial(port, upstream({ trust: true, sans: ['someone-else.mesh.local'] }), stats, sessions), /match none of the configured ones/);
  assert.equal(value(stats, 'fail_verify_san'), 1);
  assert.equal(value(stats, 'session_reused'), 1);
});

test('max_session_keys 0: no session is offered or kept, so every connection is a full handshake', async () => {
  const stats = new StatsStore();
  let resumedOnServer = 0;
  const port = await server(pki.server, true);
  servers.at(-1)!.on('secureConnection', (s) => { if (s.isSessionReused()) resumedOnServer++; });
  const sessions = new SessionCache();
  const none = upstream({ trust: true, clientCert: true, maxSessionKeys: 0 });
  assert.equal(none.maxSessionKeys, 0);
  for (let i = 0; i < 3; i++) assert.equal(await dial(port, none, stats, sessions), 'hi');
  assert.equal(value(stats, 'handshake'), 3);
  assert.equal(value(stats, 'session_reused'), 0);
  // Nothing was stored: the same material with resumption on (Envoy's default, 1) starts with a full handshake too.
  const resuming = upstream({ trust: true, clientCert: true });
  assert.equal(resuming.maxSessionKeys, 1);
  assert.equal(await dial(port, resuming, stats, sessions), 'hi');
  assert.equal(value(stats, 'session_reused'), 0);
  assert.equal(await dial(port, resuming, stats, sessions), 'hi');
  assert.equal(value(stats, 'session_reused'), 1);
  assert.equal(resumedOnServer, 1, 'the server resumed only the one session offered');
});

// A running listener with real TLS: the seed 004 cases through openssl s_client and curl, with the ssl.*
// counters Envoy keeps; PERMISSIVE telling TLS from plaintext on one port.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { rmSync } from 'node:fs';
import { StatsStore } from '../admin/stats.ts';
import { makeTestPki, type TestPki } from '../test-pki.ts';
import { TlsProvider } from '../tls/provider.ts';
import { compileListener } from './compile.ts';
import { RunningListener, type DownstreamConnection } from './listener.ts';
import { freePort, httpConnectionManagerFilter } from '../test-support.ts';

let pki: TestPki;
const stats = new StatsStore();
const tls = new TlsProvider(() => undefined);
const running: RunningListener[] = [];

before(async () => {
  pki = await makeTestPki();
});

after(async () => {
  for (const l of running) await l.close(100);
  tls.close();
  rmSync(pki.dir, { recursive: true, force: true });
});


const HCM = httpConnectionManagerFilter('ingress', 'AUTO');

function tlsSocket(opts: { requireClient?: boolean; sans?: string[] } = {}) {
  const validation = opts.requireClient || opts.sans
    ? { validationContext: { trustedCa: { filename: pki.caPath }, ...(opts.sans ? { matchTypedSubjectAltNames: opts.sans.map((s) => ({ sanType: 'DNS', matcher: { exact: s } })) } : {}) } }
    : {};
  return {
    name: 'envoy.transport_sockets.tls',
    typedConfig: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      commonTlsContext: { tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' }, tlsCertificates: [{ certificateChain: { filename: pki.server.cert }, privateKey: { filename: pki.server.key } }], ...validation },
      ...(opts.requireClient ? { requireClientCertificate: { value: true } } : {}),
    },
  };
}

/** Answers every connection with one fixed HTTP response and records what it saw. */
const seen: DownstreamConnection[] = [];
function answer(conn: DownstreamConnection): void {
  seen.push(conn);
  conn.socket.once('data', () => conn.socket.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n'));
}

async function start(mode: 'STRICT' | 'PERMISSIVE', tlsOpts: Parameters<typeof tlsSocket>[0] = {}): Promise<{ port: number; stat: (n: string) => number }> {
  const port = await freePort();
  const chains = mode === 'STRICT'
    ? [{ name: 'tls', filters: [HCM], transportSocket: tlsSocket(tlsOpts) }]
    : [{ name: 'tls', filterChainMatch: { transportProtocol: 'tls' }, filters: [HCM], transportSocket: tlsSocket(tlsOpts) }, { name: 'plain', filters: [HCM] }];
  const spec = compileListener({
    name: `lds_ingress_127.0.0.1_${port}`, address: { socketAddress: { address: '127.0.0.1', portValue: port } }, filterChains: chains,
    ...(mode === 'PERMISSIVE' ? { listenerFilters: [{ name: 'envoy.filters.listener.tls_inspector', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }] } : {}),
  });
  const prefix = `listener.127.0.0.1_${port}`;
  const l = new RunningListener(spec, { tls, handlerFor: () => answer, stats: stats.scope(prefix) });
  await l.listen();
  running.push(l);
  return { port, stat: (n) => { const m = stats.get(`${prefix}.${n}`); return m && m.kind !== 'histogram' ? m.value : 0; } };
}

function run(cmd: string, args: string[], input = ''): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += String(d); });
    p.stderr.on('data', (d) => { out += String(d); });
    const t = setTimeout(() => p.kill(), 10_000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
    p.stdin.end(input);
  });
}

const curl = (port: number, extra: string[]) => run('curl', ['-sS', '--max-time', '5', '--cacert', pki.caPath, '--resolve', `colorteller.mesh.local:${port}:127.0.0.1`, ...extra, `https://colorteller.mesh.local:${port}/`]);

test('STRICT without validation: one-way TLS; ssl.handshake and ssl.no_certificate both count (seed 004 step 1)', async () => {
  const l = await start('STRICT');
  for (let i = 0; i < 3; i++) assert.equal((await curl(l.port, [])).out, 'ok\n');
  assert.equal(l.stat('ssl.handshake'), 3);
  assert.equal(l.stat('ssl.no_certificate'), 3);
  assert.equal(l.stat('downstream_cx_total'), 3);
  assert.equal(seen.at(-1)?.tls?.peerCertificate, false);
});

test('client certificate required: none → fail_verify_no_cert; another CA → fail_verify_error; the right one → mutual TLS (steps 4, 5)', async () => {
  const l = await start('STRICT', { requireClient: true });
  assert.notEqual((await curl(l.port, [])).out, 'ok\n');
  assert.equal(l.stat('ssl.fail_verify_no_cert'), 1);
  assert.notEqual((await curl(l.port, ['--cert', pki.rogue.cert, '--key', pki.rogue.key])).out, 'ok\n');
  assert.equal(l.stat('ssl.fail_verify_error'), 1);
  assert.equal((await curl(l.port, ['--cert', pki.client.cert, '--key', pki.client.key])).out, 'ok\n');
  assert.equal(l.stat('ssl.handshake'), 1);
  assert.equal(l.stat('ssl.no_certificate'), 0);
  assert.equal(seen.at(-1)?.tls?.peerCertificate, true);
});

test('client certificate required and none sent: the handshake itself fails with an alert, as Envoy\'s (seed 003\'s curl -k)', async () => {
  const l = await start('STRICT', { requireClient: true });
  // The seed's curl spoke TLS 1.2: "curl: (35) ... alert handshake failure". With TLS 1.3 the alert comes
  // right after the client's last handshake message: certificate required.
  const tls12 = await curl(l.port, ['--tlsv1.2', '--tls-max', '1.2']);
  assert.equal(tls12.code, 35, tls12.out);
  assert.match(tls12.out, /alert handshake failure/);
  const tls13 = await curl(l.port, ['--tlsv1.3']);
  assert.notEqual(tls13.code, 0);
  assert.match(tls13.out, /alert certificate required/);
  assert.equal(l.stat('ssl.fail_verify_no_cert'), 2);
  assert.equal(l.stat('ssl.connection_error'), 0);
  assert.equal(l.stat('ssl.handshake'), 0);
});

test('SAN matching on the client certificate: an unexpected DNS SAN → fail_verify_san', async () => {
  const l = await start('STRICT', { requireClient: true, sans: ['gateway.mesh.local'] });
  assert.notEqual((await curl(l.port, ['--cert', pki.wrongSan.cert, '--key', pki.wrongSan.key])).out, 'ok\n');
  assert.equal(l.stat('ssl.fail_verify_san'), 1);
  assert.equal((await curl(l.port, ['--cert', pki.client.cert, '--key', pki.client.key])).out, 'ok\n');
  assert.equal(l.stat('ssl.handshake'), 1);
});

test('TLS 1.1 is refused; openssl s_client with TLS 1.3 and 1.2 succeeds', async () => {
  const l = await start('STRICT');
  const old = await run('openssl', ['s_client', '-connect', `127.0.0.1:${l.port}`, '-tls1_1'], 'Q\n');
  assert.match(old.out, /alert protocol version|Cipher is \(NONE\)/);
  for (const v of ['-tls1_2', '-tls1_3']) {
    const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${l.port}`, v, '-CAfile', pki.caPath], 'GET / HTTP/1.1\r\n\r\n');
    assert.match(r.out, /Verify return code: 0 \(ok\)/, v);
  }
});

test('PERMISSIVE: TLS and plaintext on one port, told apart by the first bytes; plaintext is counted', async () => {
  const l = await start('PERMISSIVE');
  assert.equal((await curl(l.port, [])).out, 'ok\n');
  const plain = await run('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${l.port}/`]);
  assert.equal(plain.out, 'ok\n');
  assert.equal(l.stat('ssl.handshake'), 1);
  assert.equal(l.stat('keymesh.plaintext_cx_total'), 1);
});

test('PERMISSIVE: keymesh.plaintext_cx_active counts the plaintext connections still open, TLS ones not', async () => {
  const l = await start('PERMISSIVE');
  const { connect } = await import('node:net');
  // Half-open allowed: the answer comes with the server's half of the close, the client keeps its half open.
  const socket = connect({ host: '127.0.0.1', port: l.port, allowHalfOpen: true });
  socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
  await new Promise((resolve) => socket.once('data', resolve));
  assert.equal(l.stat('keymesh.plaintext_cx_active'), 1);
  assert.equal((await curl(l.port, [])).out, 'ok\n');
  assert.equal(l.stat('keymesh.plaintext_cx_active'), 1);
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.end();
  await closed;
  for (let i = 0; i < 100 && l.stat('keymesh.plaintext_cx_active') !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(l.stat('keymesh.plaintext_cx_active'), 0);
  assert.equal(l.stat('keymesh.plaintext_cx_total'), 1);
});

// The direct probe of seed 003 against real TLS servers: one that requires a client certificate (OpenSSL's
// refusal, an alert), one that serves anyone (an HTTP answer), one that completes the handshake and then
// hangs up (what keymesh's listener did before it refused in the handshake: reported as no alert).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer, type TlsOptions } from 'node:tls';
import { after, before, test } from 'node:test';
import { makeTestPki, type TestPki } from '../../proxy/test-pki.ts';
import { describeProbe, probeWithoutClientCertificate } from './seed003-tls.ts';

let pki: TestPki;
const servers: TlsServer[] = [];

before(async () => {
  pki = await makeTestPki();
});

after(() => {
  for (const s of servers) s.close();
  rmSync(pki.dir, { recursive: true, force: true });
});

async function serve(options: TlsOptions, onSecure: (s: import('node:tls').TLSSocket) => void): Promise<number> {
  const server = createTlsServer({ cert: pki.server.certPem, key: pki.server.keyPem, ca: pki.caPem, ...options }, onSecure);
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return (server.address() as AddressInfo).port;
}

const answer = (s: import('node:tls').TLSSocket) => s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'));

test('a server requiring a client certificate: TLS 1.2 fails in the handshake (alert 40), TLS 1.3 right after it (alert 116)', async () => {
  const port = await serve({ requestCert: true, rejectUnauthorized: true }, answer);
  const tls12 = await probeWithoutClientCertificate('127.0.0.1', port, { maxVersion: 'TLSv1.2' });
  assert.deepEqual({ outcome: tls12.outcome, alert: tls12.alert, handshakeCompleted: tls12.handshakeCompleted }, { outcome: 'alert', alert: 40, handshakeCompleted: false });
  assert.equal(describeProbe(tls12), 'TLS handshake failed: ssl/tls alert handshake failure (SSL alert number 40)');
  const tls13 = await probeWithoutClientCertificate('127.0.0.1', port, { maxVersion: 'TLSv1.3' });
  assert.deepEqual({ outcome: tls13.outcome, alert: tls13.alert, handshakeCompleted: tls13.handshakeCompleted }, { outcome: 'alert', alert: 116, handshakeCompleted: true });
  assert.match(describeProbe(tls13), /^right after the handshake: tlsv13 alert certificate required \(SSL alert number 116\)$/);
});

test('a server that serves anyone: the HTTP answer; one that hangs up after the handshake: no alert', async () => {
  const open = await serve({}, answer);
  const served = await probeWithoutClientCertificate('127.0.0.1', open);
  assert.equal(served.outcome, 'answered');
  assert.equal(describeProbe(served), 'the server answered: HTTP/1.1 200 OK');
  const rude = await serve({ requestCert: true, rejectUnauthorized: false }, (s) => s.destroy());
  const cut = await probeWithoutClientCertificate('127.0.0.1', rude, { maxVersion: 'TLSv1.3' });
  assert.equal(cut.outcome, 'closed');
  assert.equal(cut.alert, undefined);
});

test('nothing listening: closed, with the reason', async () => {
  const port = await serve({}, answer);
  servers.pop()!.close();
  await new Promise((resolve) => setTimeout(resolve, 50));
  const r = await probeWithoutClientCertificate('127.0.0.1', port, { timeoutMs: 5_000 });
  assert.equal(r.outcome, 'closed');
  assert.match(r.detail, /ECONNREFUSED/);
});

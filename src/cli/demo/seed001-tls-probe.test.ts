// The walkthrough's own TLS client against a real TLS server on loopback that asks for client certificates: what
// it reports when served, when the server's name or CA is wrong, and when the server refuses its certificate.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { makeTestPki, type TestPki } from '../../proxy/test-pki.ts';
import { describeProbe, tlsProbe } from './seed001-tls-probe.ts';

let pki: TestPki;
let server: Server;
let port: number;

before(async () => {
  pki = await makeTestPki();
  // Asks for a certificate; serves none, or the client's, and refuses any other (as a STRICT listener with a
  // SAN list would, after the handshake).
  server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem, ca: pki.caPem, requestCert: true, rejectUnauthorized: false }, (socket: TLSSocket) => {
    const peer = socket.getPeerX509Certificate();
    if (peer && (!socket.authorized || !peer.subjectAltName?.includes('DNS:gateway.mesh.local'))) {
      socket.destroy();
      return;
    }
    socket.once('data', () => socket.end(`HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n${peer ? 'me' : 'no'}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(pki.dir, { recursive: true, force: true });
});

const base = () => ({ host: '127.0.0.1', port, caFile: pki.caPath, servername: 'colorteller.mesh.local' });

test('served: the protocol, the server\'s SANs, the answer; with and without a client certificate', async () => {
  const withCert = await tlsProbe({ ...base(), client: { certFile: pki.client.cert, keyFile: pki.client.key } });
  assert.deepEqual(withCert, { ok: true, protocol: 'TLSv1.3', serverSans: 'DNS:colorteller.mesh.local', status: 200, body: 'me' });
  assert.equal(describeProbe(withCert), 'TLSv1.3, server DNS:colorteller.mesh.local, 200 me');
  const without = await tlsProbe(base());
  assert.equal(without.ok && without.body, 'no');
});

test('a client certificate the server refuses: the request gets no answer (TLS 1.3 judges it after the handshake)', async () => {
  const r = await tlsProbe({ ...base(), client: { certFile: pki.wrongSan.cert, keyFile: pki.wrongSan.key } });
  assert.equal(r.ok, false);
  assert.match(describeProbe(r), /^refused \(request\): /);
});

test('the server is checked: a name it does not carry, or a CA that did not sign it, fails the handshake', async () => {
  const wrongName = await tlsProbe({ ...base(), servername: 'backend.mesh.local' });
  assert.deepEqual(wrongName.ok ? undefined : wrongName.stage, 'handshake');
  assert.match(describeProbe(wrongName), /refused \(handshake\): .*backend\.mesh\.local/);
  const otherCa = await tlsProbe({ ...base(), caFile: pki.rogue.cert });
  assert.deepEqual(otherCa.ok ? undefined : otherCa.stage, 'handshake');
});

test('nobody listening: refused at the handshake, without waiting', async () => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const free = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const r = await tlsProbe({ ...base(), port: free, timeoutMs: 5_000 });
  assert.equal(r.ok, false);
  assert.match(describeProbe(r), /refused \(handshake\): .*ECONNREFUSED/);
});

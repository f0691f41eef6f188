import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { makeTestPki, type TestPki } from '../../proxy/test-pki.ts';
import { curlLine, httpsGet, normalizeSerial } from './seed002-tls.ts';
import { startTestHttpsServer } from './test-https-server.ts';

let pki: TestPki;
let port: number;
let close: () => void;

before(async () => {
  ({ pki, port, close } = await startTestHttpsServer((req, res) => res.end(`white ${req.url} ${req.headers.host}`)));
});

after(() => close());

test('normalizeSerial writes a serial as /certs does: lowercase hex without leading zeros', () => {
  assert.equal(normalizeSerial('00A1B2'), 'a1b2');
  assert.equal(normalizeSerial('0'), '0');
});

test('httpsGet: a trusted server under the right name answers, with the serial of the certificate it presented', async () => {
  const a = await httpsGet({ ip: '127.0.0.1', port, serverName: 'colorteller.mesh.local', caPem: pki.caPem }, '/color');
  assert.equal(a.status, 200, a.error);
  assert.equal(a.body, `white /color colorteller.mesh.local:${port}`);
  assert.equal(a.serial, normalizeSerial(new X509Certificate(pki.server.certPem).serialNumber));
});

test('httpsGet: an untrusted CA or a name the certificate does not hold is no answer, with the reason', async () => {
  const otherCa = await makeTestPki();
  try {
    const untrusted = await httpsGet({ ip: '127.0.0.1', port, serverName: 'colorteller.mesh.local', caPem: otherCa.caPem }, '/');
    assert.equal(untrusted.status, 0);
    assert.match(untrusted.error ?? '', /certificate/i);
  } finally {
    rmSync(otherCa.dir, { recursive: true, force: true });
  }
  const wrongName = await httpsGet({ ip: '127.0.0.1', port, serverName: 'gateway.mesh.local', caPem: pki.caPem }, '/');
  assert.equal(wrongName.status, 0);
  assert.match(wrongName.error ?? '', /ERR_TLS_CERT_ALTNAME_INVALID/);
});

test('curlLine is the curl command that does the same', () => {
  assert.equal(curlLine({ ip: '127.0.0.101', port: 15000, serverName: 'colorteller.x.local', caPem: '' }, '/tmp/ca.pem', '/color'),
    'curl --cacert /tmp/ca.pem --resolve colorteller.x.local:15000:127.0.0.101 https://colorteller.x.local:15000/color');
});

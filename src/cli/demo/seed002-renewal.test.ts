import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { Server } from 'node:https';
import { after, before, test } from 'node:test';
import type { PemFiles, TestPki } from '../../proxy/test-pki.ts';
import { serialRuns, trafficAcrossRenewal, type Round } from './seed002-renewal.ts';
import { httpsGet, normalizeSerial } from './seed002-tls.ts';
import { startTestHttpsServer } from './test-https-server.ts';

let pki: TestPki;
let server: Server;
let port: number;
let close: () => void;

before(async () => {
  ({ pki, server, port, close } = await startTestHttpsServer((_req, res) => res.end('white')));
});

after(() => close());

const serialOf = (files: PemFiles) => normalizeSerial(new X509Certificate(files.certPem).serialNumber);

/** A round: one request on a new connection to the real TLS server. */
async function round(): Promise<Round> {
  const a = await httpsGet({ ip: '127.0.0.1', port, serverName: 'colorteller.mesh.local', caPem: pki.caPem }, '/');
  return { ok: a.status === 200 && a.body === 'white', serial: a.serial, ...(a.status === 200 ? {} : { problem: a.error ?? String(a.status) }) };
}

test('serialRuns folds consecutive equal serials and leaves out rounds without a handshake', () => {
  const r = (serial?: string): Round => ({ ok: true, serial });
  assert.deepEqual(serialRuns([r('a'), r('a'), r(), r('b'), r('b'), r('b')]), [{ serial: 'a', rounds: 2 }, { serial: 'b', rounds: 3 }]);
  assert.deepEqual(serialRuns([]), []);
});

test('traffic across a renewal: no failed round, the old certificate, then the new one for good', async () => {
  const old = serialOf(pki.server);
  const result = await trafficAcrossRenewal({
    round,
    renew: async () => {
      const next = await pki.issue('colorteller-renewed', { dns: ['colorteller.mesh.local'] });
      server.setSecureContext({ cert: next.certPem, key: next.keyPem });
      return serialOf(next);
    },
    newSerial: (s) => s,
    warmup: 3, settled: 3, maxRounds: 200, timeoutMs: 20_000,
  });
  assert.deepEqual(result.failed, []);
  assert.equal(result.runs.length, 2, JSON.stringify(result.runs));
  assert.equal(result.runs[0]!.serial, old);
  assert.ok(result.runs[0]!.rounds >= 3);
  assert.deepEqual(result.runs[1], { serial: result.renewed, rounds: result.runs[1]!.rounds });
  assert.ok(result.runs[1]!.rounds >= 3);
  assert.notEqual(result.renewed, old);
});

test('a renewal that never reaches the server stops at the bound, saying what the handshakes saw', async () => {
  await assert.rejects(trafficAcrossRenewal({
    round, renew: () => Promise.resolve('ffff'), newSerial: (s) => s, warmup: 1, settled: 2, maxRounds: 6, timeoutMs: 20_000,
  }), /after 6 rounds .* did not settle on the renewed certificate ffff \(certificates seen: [0-9a-f]+ x6\)/);
});

test('a renewal that fails fails the traffic with its own error', async () => {
  await assert.rejects(trafficAcrossRenewal({
    round, renew: () => Promise.reject(new Error('NotFoundException: no such certificate')), newSerial: (s: string) => s,
    warmup: 1, settled: 2, maxRounds: 50, timeoutMs: 20_000,
  }), /NotFoundException: no such certificate/);
});

// ProxyRuntime fed with the translation's real output (as the xDS client hands it over: decoded resources),
// serving real connections: a TCP listener with mTLS, and a refused update that changes nothing.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer as createNetServer, type Server } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, test } from 'node:test';
import { decodeResource, encodeResource, TYPE_URLS as T } from '../envoy/protos.ts';
import { MeshBuilder } from '../translate/test-fixtures.ts';
import { translate } from '../translate/translate.ts';
import { StatsStore } from './admin/stats.ts';
import { ProxyRuntime } from './runtime.ts';
import { makeTestPki, type TestPki } from './test-pki.ts';
import { TlsProvider } from './tls/provider.ts';

let pki: TestPki;
let echo: Server;
const ADDRESS = '127.0.0.41';

before(async () => {
  pki = await makeTestPki();
  echo = createNetServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(7000, ADDRESS, r));
});
after(() => {
  echo.close();
  rmSync(pki.dir, { recursive: true, force: true });
});

/** What the xDS client accepts: resources decoded from their wire form, by name. */
function wire(typeUrl: string, resources: readonly Record<string, unknown>[], key = 'name'): Map<string, Record<string, unknown>> {
  return new Map(resources.map((r) => [String(r[key]), decodeResource(typeUrl, encodeResource(typeUrl, r)) as Record<string, unknown>]));
}

function tcpServerConfig() {
  const mesh = new MeshBuilder('m').node('db', {
    listeners: [{
      portMapping: { port: 7000, protocol: 'tcp' },
      tls: {
        mode: 'STRICT',
        certificate: { file: { certificateChain: pki.server.cert, privateKey: pki.server.key } },
        validation: { trust: { file: { certificateChain: pki.caPath } }, subjectAlternativeNames: { match: { exact: ['gateway.mesh.local'] } } },
      },
    }],
    serviceDiscovery: { dns: { hostname: 'db.m.local' } },
  });
  return translate({ view: mesh.view(), proxy: { kind: 'virtualNode', name: 'db' }, endpoints: {}, options: { listenAddress: ADDRESS, appAddress: ADDRESS, ingressPort: 15100, egressPort: 15101 } });
}

async function until<V>(what: string, f: () => V | undefined, ms = 5000): Promise<V> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a TCP listener with mTLS carries bytes to the application; the wrong client certificate is refused', async () => {
  const stats = new StatsStore();
  const tls = new TlsProvider(() => undefined);
  const runtime = new ProxyRuntime({ stats, tls, log: () => {} });
  try {
    const config = tcpServerConfig();
    assert.equal(runtime.accept(T.cluster, wire(T.cluster, config.clusters)), undefined);
    assert.equal(runtime.accept(T.listener, wire(T.listener, config.listeners)), undefined);
    assert.equal(runtime.accept(T.routeConfiguration, wire(T.routeConfiguration, config.routeConfigurations)), undefined);
    await until('ready', () => runtime.ready || undefined);
    const talk = (cert: { certPem: string; keyPem: string }) => new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: ADDRESS, port: 15100, ca: pki.caPem, cert: cert.certPem, key: cert.keyPem, servername: 'colorteller.mesh.local' }, () => s.write('ping'));
      let got = '';
      s.on('data', (d) => {
        got += String(d);
        if (got === 'ping') s.end();
      });
      s.on('close', () => resolve(got));
      s.on('error', reject);
    });
    assert.equal(await talk(pki.client), 'ping');
    await assert.rejects(talk(pki.wrongSan).then((g) => (g === '' ? Promise.reject(new Error('closed')) : g)));
    assert.equal(stats.value('listener.127.0.0.41_15100.ssl.fail_verify_san'), 1);
    assert.equal(stats.value('listener.127.0.0.41_15100.ssl.handshake'), 1);
  } finally {
    await runtime.close();
    tls.close();
  }
});

test('an update that cannot be applied is refused with the resource and field, and the running configuration stays', async () => {
  const stats = new StatsStore();
  const tls = new TlsProvider(() => undefined);
  const runtime = new ProxyRuntime({ stats, tls, log: () => {} });
  try {
    const config = tcpServerConfig();
    runtime.accept(T.cluster, wire(T.cluster, config.clusters));
    const bad = structuredClone(config.listeners);
    (bad[0] as Record<string, unknown>).perConnectionBufferLimitBytes = { value: 1 };
    assert.match(runtime.accept(T.listener, wire(T.listener, bad)) ?? '', /listener lds_egress_127\.0\.0\.41_15101\.perConnectionBufferLimitBytes: is not supported/);
    assert.deepEqual(Object.keys(runtime.configDump()), ['Cluster']);
  } finally {
    await runtime.close();
    tls.close();
  }
});

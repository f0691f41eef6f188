// Every listener keymesh's translation emits compiles; unsupported settings are refused naming the field.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ProxyConfigError } from '../resources/values.ts';
import { compileListener, listenerNeeds } from './compile.ts';

const GOLDEN = new URL('../../translate/golden/', import.meta.url);
const goldens = readdirSync(GOLDEN).filter((f) => f.endsWith('.json')).map((f) => ({ file: f, config: JSON.parse(readFileSync(new URL(f, GOLDEN), 'utf8')) as { listeners: Record<string, unknown>[] } }));

test("every golden listener compiles; the seeds' TLS modes come out as chains", () => {
  let n = 0;
  for (const { file, config } of goldens) {
    for (const l of config.listeners) {
      assert.doesNotThrow(() => compileListener(l), `${file} ${String(l.name)}`);
      n++;
    }
  }
  assert.ok(n > 20, `${n} listeners`);
  const strict = goldens.find((g) => g.file === 'seed004-5-client-cert-colorteller.json')!.config.listeners.find((l) => String(l.name).startsWith('lds_ingress'))!;
  const spec = compileListener(strict);
  assert.equal(spec.statPrefix, '0.0.0.0_15000');
  assert.equal(spec.filterChains.length, 1);
  const tls = spec.filterChains[0]!.tls!;
  assert.equal(tls.requireClientCertificate, true);
  assert.equal(tls.certificate?.kind, 'file');
  assert.equal(tls.minVersion, 'TLSv1.2');
  assert.deepEqual(tls.validation?.trust, { kind: 'file', path: '/keys/ca_cert.pem' });
  assert.deepEqual(tls.validation?.sans.map((s) => `${s.type}:${s.exact}`), ['DNS:gateway.appmesh-mtls.local']);
  assert.deepEqual(listenerNeeds(spec).routeConfigurations, ['rds_ingress_http_9080']);
});

test("the translation's WebSocket upgrade comes out as the HTTP filter's upgrade types; a disabled one does not", () => {
  const base = goldens.find((g) => g.file === 'seed004-1-strict-tls-colorteller.json')!.config.listeners.find((l) => String(l.name).startsWith('lds_ingress'))!;
  const http = (l: Record<string, unknown>) => compileListener(l).filterChains[0]!.filter;
  const f = http(base);
  assert.ok(f.kind === 'http' && f.upgrades.join() === 'websocket');
  const off = structuredClone(base) as any;
  off.filterChains[0].filters[0].typedConfig.upgradeConfigs = [{ upgradeType: 'WebSocket', enabled: { value: false } }];
  const g = http(off);
  assert.ok(g.kind === 'http' && g.upgrades.length === 0);
});

test('unsupported settings are refused with the field named', () => {
  const base = goldens.find((g) => g.file === 'seed004-1-strict-tls-colorteller.json')!.config.listeners.find((l) => String(l.name).startsWith('lds_ingress'))!;
  const cases: [(l: any) => void, RegExp][] = [
    [(l) => { l.perConnectionBufferLimitBytes = { value: 1 }; }, /listener lds_ingress_0\.0\.0\.0_15000\.perConnectionBufferLimitBytes: is not supported/],
    [(l) => { l.address.socketAddress.address = 'localhost'; }, /address\.socketAddress\.address: localhost is not an IP address/],
    [(l) => { l.filterChains[0].filters[0].name = 'envoy.filters.network.redis_proxy'; }, /filterChains\[0\]\.filters\[0\]\.name: network filter envoy\.filters\.network\.redis_proxy is not supported/],
    [(l) => { l.filterChains[0].transportSocket.typedConfig.commonTlsContext.tlsParams.tlsMinimumProtocolVersion = 'TLSv1_0'; }, /TLSv1_0 is refused: keymesh requires TLS 1\.2 or newer/],
    [(l) => { l.filterChains[0].filterChainMatch = { transportProtocol: 'tls' }; }, /needs the tls_inspector listener filter/],
    [(l) => { l.filterChains = []; }, /at least one filter chain/],
    [(l) => { l.filterChains[0].filters[0].typedConfig.upgradeConfigs = [{ upgradeType: 'websocket', filters: [] }]; }, /upgradeConfigs\[0\]\.filters: is not supported/],
    [(l) => { l.filterChains[0].filters[0].typedConfig.upgradeConfigs = [{ upgradeType: 'CONNECT' }]; }, /upgradeConfigs\[0\]\.upgradeType: CONNECT is not supported/],
  ];
  for (const [mutate, message] of cases) {
    const l = structuredClone(base);
    mutate(l);
    assert.throws(() => compileListener(l), (e: unknown) => e instanceof ProxyConfigError && message.test(e.message), message.source);
  }
});

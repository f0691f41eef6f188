// Focused tests for inputs App Mesh's API accepts but Envoy would refuse if translated literally (found by the
// property tests, properties.test.ts): weight 0 targets, unused secrets and the client TLS of a shared target
// cluster, 0 and very long durations, counts beyond 32 bits, service names differing in case, a gateway listener
// on the egress port, and objects shared between translations.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as codec from '../envoy/protos.ts';
import type { JsonObject } from '../model/json.ts';
import type { EnvoyConfig, TranslateInput } from './api.ts';
import { clampUint32, duration, MAX_DURATION_SECONDS, MAX_UINT32, millis, seconds } from './envoy.ts';
import { gatewayEgressPort } from './gateway.ts';
import { assertRoundTrips, MeshBuilder } from './test-fixtures.ts';
import { translate } from './translate.ts';

function run(b: MeshBuilder, kind: 'virtualNode' | 'virtualGateway', name: string, extra: Partial<TranslateInput> = {}): EnvoyConfig {
  const c = translate({ view: b.view(), proxy: { kind, name }, endpoints: {}, ...extra });
  assertRoundTrips(c, codec);
  return c;
}
const clusterNames = (c: EnvoyConfig) => c.clusters.map((cl) => String(cl.name));
const cluster = (c: EnvoyConfig, n: string) => {
  const found = c.clusters.find((x) => x.name === n);
  assert.ok(found, `no cluster ${n} in ${clusterNames(c).join(', ')}`);
  return found as Record<string, any>;
};
const listener = (c: EnvoyConfig, n: string) => {
  const found = c.listeners.find((l) => l.name === n);
  assert.ok(found, `no listener ${n} in ${c.listeners.map((l) => String(l.name)).join(', ')}`);
  return found as Record<string, any>;
};
const hostsOf = (c: EnvoyConfig, rc: string) => (c.routeConfigurations.find((r) => r.name === rc)!.virtualHosts ?? []) as Record<string, any>[];
const node = (port: number, protocol: string, hostname: string, extra: object = {}) =>
  ({ listeners: [{ portMapping: { port, protocol }, ...extra }], serviceDiscovery: { dns: { hostname } } });

/** Nodes a, b, c (one listener each, `protocol` on 9080), `empty` (no listeners) and a router `r` in front of them. */
function routed(protocol: 'http' | 'tcp', targets: { virtualNode: string; weight: number }[]): MeshBuilder {
  const route = protocol === 'tcp' ? { tcpRoute: { action: { weightedTargets: targets } } } : { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: targets } } };
  return new MeshBuilder('m')
    .node('a', node(9080, protocol, 'a.local')).node('b', node(9080, protocol, 'b.local')).node('c', node(9080, protocol, 'c.local'))
    .node('empty', {})
    .router('r', { listeners: [{ portMapping: { port: 9080, protocol } }] })
    .route('r', 'split', route)
    .service('svc.local', { provider: { virtualRouter: { virtualRouterName: 'r' } } })
    .node('client', { backends: [{ virtualService: { virtualServiceName: 'svc.local' } }] });
}
const tcpConfig = (c: EnvoyConfig, port: number) => {
  const chain = (listener(c, 'lds_egress_0.0.0.0_15001').filterChains as Record<string, any>[]).find((ch) => ch.name === `egress_tcp_${port}`);
  return chain?.filters[0].typedConfig as Record<string, any> | undefined;
};

// 1 and 3. Weight 0 targets.

test('weight 0: a tcp route drops its weight 0 targets (tcp_proxy wants weights >= 1); none left means no chain', () => {
  const one = run(routed('tcp', [{ virtualNode: 'a', weight: 50 }, { virtualNode: 'b', weight: 0 }]), 'virtualNode', 'client');
  assert.equal(tcpConfig(one, 9080)!.cluster, 'cds_egress_m_a_tcp_9080');
  assert.ok(!clusterNames(one).includes('cds_egress_m_b_tcp_9080'), 'no cluster is built for a weight 0 target');

  const two = run(routed('tcp', [{ virtualNode: 'a', weight: 50 }, { virtualNode: 'b', weight: 0 }, { virtualNode: 'c', weight: 25 }]), 'virtualNode', 'client');
  assert.deepEqual(tcpConfig(two, 9080)!.weightedClusters, { clusters: [{ name: 'cds_egress_m_a_tcp_9080', weight: 50 }, { name: 'cds_egress_m_c_tcp_9080', weight: 25 }] });

  // Only weight 0 targets (App Mesh accepts it): as for targets that resolve to nothing, the port gets no chain.
  const none = run(routed('tcp', [{ virtualNode: 'a', weight: 0 }, { virtualNode: 'b', weight: 0 }]), 'virtualNode', 'client');
  assert.equal(tcpConfig(none, 9080), undefined);
  assert.deepEqual(clusterNames(none), ['cds_egress_m_amazonaws']);
});

test('weight 0: http routes drop weight 0 targets too; when only weight 0 targets resolve, the route is left out', () => {
  const c = run(routed('http', [{ virtualNode: 'a', weight: 30 }, { virtualNode: 'b', weight: 0 }, { virtualNode: 'c', weight: 70 }]), 'virtualNode', 'client');
  const [host] = hostsOf(c, 'rds_egress_http_15001').filter((h) => h.name === 'svc.local:9080');
  assert.deepEqual(host!.routes[0].route.weightedClusters, { clusters: [{ name: 'cds_egress_m_a_http_9080', weight: { value: 30 } }, { name: 'cds_egress_m_c_http_9080', weight: { value: 70 } }] });
  assert.ok(!clusterNames(c).includes('cds_egress_m_b_http_9080'));

  // The only positive weight is on a node without listeners (it resolves to nothing); a and b weigh 0. Before, a
  // weighted cluster list summing to 0 was emitted, which Envoy refuses.
  const zero = run(routed('http', [{ virtualNode: 'empty', weight: 10 }, { virtualNode: 'a', weight: 0 }, { virtualNode: 'b', weight: 0 }]), 'virtualNode', 'client');
  assert.deepEqual(hostsOf(zero, 'rds_egress_http_15001').map((h) => h.name), ['amazonaws'], 'no route, so no virtual host for the service');
  assert.deepEqual(clusterNames(zero), ['cds_egress_m_amazonaws']);
});

// 2. Secrets of discarded clusters; the strictest client TLS to a shared target.

const TRUST = (secretName: string) => ({ trust: { sds: { secretName } } });
const CERT = { sds: { secretName: 'spiffe://td/client' } };
/** Node `server` (STRICT TLS unless `mode` says otherwise) provides both a.local and b.local; `client` has both as backends. */
function sharedTarget(a: object | undefined, b: object | undefined, mode = 'STRICT', defaults?: object): MeshBuilder {
  const backend = (name: string, tls: object | undefined) => ({ virtualService: { virtualServiceName: name, ...(tls ? { clientPolicy: { tls } } : {}) } });
  return new MeshBuilder('m')
    .node('server', node(9080, 'http', 'server.local', { tls: { mode, certificate: { file: { certificateChain: '/c.pem', privateKey: '/k.pem' } } } }))
    .service('a.local', { provider: { virtualNode: { virtualNodeName: 'server' } } })
    .service('b.local', { provider: { virtualNode: { virtualNodeName: 'server' } } })
    .node('client', { backends: [backend('a.local', a), backend('b.local', b)], ...(defaults ? { backendDefaults: { clientPolicy: { tls: defaults } } } : {}) });
}
const commonTls = (c: EnvoyConfig) => cluster(c, 'cds_egress_m_server_http_9080').transportSocket?.typedConfig.commonTlsContext as Record<string, any> | undefined;

test('secrets: only the kept cluster\'s secrets are listed, not those of a candidate another backend replaced', () => {
  // Equally strict (validated, no certificate): the first backend by name, a.local, decides; b.local's trust is
  // not listed, as nothing refers to it.
  const c = run(sharedTarget({ validation: TRUST('spiffe://td-a') }, { validation: TRUST('spiffe://td-b') }), 'virtualNode', 'client');
  assert.equal(commonTls(c)!.combinedValidationContext.validationContextSdsSecretConfig.name, 'spiffe://td-a');
  assert.deepEqual(c.secrets, [{ name: 'spiffe://td-a', type: 'validation', source: 'sds' }]);
});

test('client TLS to a target two backends share: the strictest policy wins, whatever the names, never a downgrade', () => {
  const mtls = { certificate: CERT, validation: TRUST('spiffe://td') };
  const validated = { validation: TRUST('spiffe://other') };
  // a.local (first by name) has no policy: against a STRICT server that is unvalidated TLS; b.local enforces mTLS.
  const strict = run(sharedTarget(undefined, mtls), 'virtualNode', 'client');
  assert.deepEqual(commonTls(strict)!.tlsCertificateSdsSecretConfigs, [{ name: 'spiffe://td/client' }]);
  assert.equal(commonTls(strict)!.combinedValidationContext.validationContextSdsSecretConfig.name, 'spiffe://td');
  assert.deepEqual(strict.secrets.map((s) => s.name), ['spiffe://td', 'spiffe://td/client']);
  // Plaintext server: a.local's no-policy means plaintext, b.local's validated TLS still wins.
  const plain = run(sharedTarget(undefined, validated, 'DISABLED'), 'virtualNode', 'client');
  assert.equal(commonTls(plain)!.combinedValidationContext.validationContextSdsSecretConfig.name, 'spiffe://other');
  // mTLS beats validated TLS, in either name order.
  for (const [a, b] of [[validated, mtls], [mtls, validated]]) {
    const c = run(sharedTarget(a, b), 'virtualNode', 'client');
    assert.ok(commonTls(c)!.tlsCertificateSdsSecretConfigs, 'the client certificate is presented');
    assert.deepEqual(c.secrets.map((s) => s.name), ['spiffe://td', 'spiffe://td/client']);
  }
  // A policy that does not apply (enforce: false, or other ports) is no policy: b.local's default mTLS wins over
  // a.local's own policy that is off.
  const off = run(sharedTarget({ ...validated, enforce: false }, undefined, 'STRICT', mtls), 'virtualNode', 'client');
  assert.ok(commonTls(off)!.tlsCertificateSdsSecretConfigs);
  // Validated TLS beats unvalidated TLS (no policy against a STRICT server).
  const v = run(sharedTarget({ ...mtls, ports: [1234] }, validated), 'virtualNode', 'client');
  assert.equal(commonTls(v)!.combinedValidationContext.validationContextSdsSecretConfig.name, 'spiffe://other');
  assert.deepEqual(v.secrets.map((s) => s.name), ['spiffe://other']);
});

// 4. Outlier detection with 0 durations.

test('outlier detection: a 0 interval or base ejection duration becomes 1 ms (Envoy wants > 0)', () => {
  const od = { maxServerErrors: 5, interval: { unit: 'ms', value: 0 }, baseEjectionDuration: { unit: 's', value: 0 }, maxEjectionPercent: 10 };
  const b = new MeshBuilder('m').node('server', node(9080, 'http', 'server.local', { outlierDetection: od }))
    .service('server.local', { provider: { virtualNode: { virtualNodeName: 'server' } } })
    .node('client', { backends: [{ virtualService: { virtualServiceName: 'server.local' } }] });
  assert.deepEqual(cluster(run(b, 'virtualNode', 'client'), 'cds_egress_m_server_http_9080').outlierDetection, {
    consecutive_5xx: { value: 5 },
    interval: { seconds: '0', nanos: 1_000_000 },
    baseEjectionTime: { seconds: '0', nanos: 1_000_000 },
    maxEjectionPercent: { value: 10 },
  });
});

// 5. Very long durations.

test('durations: every emitted Duration is clamped to Envoy\'s 9223372035 s; fractions and carries are exact', () => {
  const max = { seconds: String(MAX_DURATION_SECONDS), nanos: 0 };
  assert.deepEqual(duration({ unit: 's', value: 1e10 }), max);
  assert.deepEqual(duration({ unit: 's', value: Number.MAX_SAFE_INTEGER }), max);
  assert.deepEqual(duration({ unit: 'ms', value: Number.MAX_SAFE_INTEGER }), max);
  assert.deepEqual(duration({ unit: 's', value: MAX_DURATION_SECONDS - 1 }), { seconds: String(MAX_DURATION_SECONDS - 1), nanos: 0 });
  assert.deepEqual(duration({ unit: 'ms', value: 1500 }), { seconds: '1', nanos: 500_000_000 });
  assert.deepEqual(duration({}), { seconds: '0', nanos: 0 });
  assert.deepEqual(millis(0.0000001), { seconds: '0', nanos: 0 });
  assert.deepEqual(millis(999.9999999), { seconds: '1', nanos: 0 }, 'nanos that round to 1e9 carry into seconds');
  assert.deepEqual(seconds(-1), { seconds: '0', nanos: 0 });

  const long = { unit: 's', value: 1e10 };
  const b = routed('http', [{ virtualNode: 'a', weight: 1 }]);
  b.route('r', 'slow', { priority: 0, httpRoute: { match: { prefix: '/slow' }, action: { weightedTargets: [{ virtualNode: 'a', weight: 1 }] },
    timeout: { perRequest: long, idle: { unit: 'ms', value: Number.MAX_SAFE_INTEGER } },
    retryPolicy: { maxRetries: 1, perRetryTimeout: long, httpRetryEvents: ['server-error'] } } });
  const route = hostsOf(run(b, 'virtualNode', 'client'), 'rds_egress_http_15001').find((h) => h.name === 'svc.local:9080')!.routes[0].route;
  assert.deepEqual([route.timeout, route.idleTimeout, route.retryPolicy.perTryTimeout], [max, max, max]);
});

// 6. Counts beyond 32 bits.

test('uint32 fields: maxRetries and maxServerErrors beyond 2^32 - 1 are clamped, so the configuration still encodes', () => {
  assert.deepEqual([clampUint32(-1), clampUint32(Number.NaN), clampUint32(7.9), clampUint32(2 ** 32), clampUint32(MAX_UINT32)], [0, 0, 7, MAX_UINT32, MAX_UINT32]);
  const od = { maxServerErrors: 2 ** 40, interval: { unit: 's', value: 10 }, baseEjectionDuration: { unit: 's', value: 30 }, maxEjectionPercent: 100 };
  const b = new MeshBuilder('m').node('a', node(9080, 'http', 'a.local', { outlierDetection: od }))
    .router('r', { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] })
    .route('r', 'all', { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'a', weight: 1 }] },
      retryPolicy: { maxRetries: 1e10, perRetryTimeout: { unit: 'ms', value: 100 }, httpRetryEvents: ['server-error'] } } })
    .service('svc.local', { provider: { virtualRouter: { virtualRouterName: 'r' } } })
    .node('client', { backends: [{ virtualService: { virtualServiceName: 'svc.local' } }] });
  const c = run(b, 'virtualNode', 'client'); // run() checks that every resource round-trips through the protos
  assert.deepEqual(cluster(c, 'cds_egress_m_a_http_9080').outlierDetection.consecutive_5xx, { value: MAX_UINT32 });
  assert.deepEqual(hostsOf(c, 'rds_egress_http_15001').find((h) => h.name === 'svc.local:9080')!.routes[0].route.retryPolicy.numRetries, { value: MAX_UINT32 });
});

// 7. Service names differing only in case.

test('domains: services differing only in case do not repeat a domain (Envoy compares them case-insensitively)', () => {
  const b = new MeshBuilder('m')
    .node('one', node(80, 'http', 'one.local'))
    .node('two', { listeners: [{ portMapping: { port: 80, protocol: 'http' } }, { portMapping: { port: 90, protocol: 'http' } }], serviceDiscovery: { dns: { hostname: 'two.local' } } })
    .node('aws', node(9080, 'http', 'aws.local'))
    .service('S.local', { provider: { virtualNode: { virtualNodeName: 'one' } } })
    .service('s.local', { provider: { virtualNode: { virtualNodeName: 'two' } } })
    .service('*.AmazonAWS.com', { provider: { virtualNode: { virtualNodeName: 'aws' } } })
    .node('client', { backends: ['s.local', 'S.local', '*.AmazonAWS.com'].map((n) => ({ virtualService: { virtualServiceName: n } })) });
  const hosts = hostsOf(run(b, 'virtualNode', 'client'), 'rds_egress_http_15001');
  // Name order (code units: upper case first) decides: S.local keeps `s.local` and `s.local:80`, s.local keeps
  // only its port 90; the AWS service keeps `*.amazonaws.com`, the built-in amazonaws host only `:80`.
  assert.deepEqual(hosts.map((h) => [h.name, h.domains]), [
    ['*.AmazonAWS.com:9080', ['*.AmazonAWS.com', '*.AmazonAWS.com:9080']],
    ['S.local:80', ['S.local', 'S.local:80']],
    ['amazonaws', ['*.amazonaws.com:80']],
    ['s.local:90', ['s.local:90']],
  ]);
});

// 8. A gateway listener on the egress port.

/** A gateway with listeners on `ports` (http), every one routing to router-provided routed.local. */
function gatewayOn(ports: number[]): MeshBuilder {
  const b = new MeshBuilder('m')
    .node('server', node(9080, 'http', 'server.local'))
    .router('r', { listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] })
    .route('r', 'all', { httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'server', weight: 1 }] } } })
    .service('routed.local', { provider: { virtualRouter: { virtualRouterName: 'r' } } })
    .gateway('gw', { listeners: ports.map((port) => ({ portMapping: { port, protocol: 'http' } })) });
  for (const port of ports) {
    b.gatewayRoute('gw', `to-routed-${port}`, { httpRoute: { match: { prefix: '/', ...(ports.length > 1 ? { port } : {}) }, action: { target: { virtualService: { virtualServiceName: 'routed.local' } } } } });
  }
  return b;
}

test('gateway listener on the egress port: the egress listener (and the self redirect) move to the next free port', () => {
  const c = run(gatewayOn([15001]), 'virtualGateway', 'gw');
  assert.deepEqual(c.listeners.map((l) => l.name), ['lds_egress_0.0.0.0_15002', 'lds_ingress_0.0.0.0_15001']);
  const redirect = cluster(c, 'cds_ingress_m_gw_self_redirect_http_15002');
  assert.deepEqual(redirect.loadAssignment.endpoints[0].lbEndpoints[0].endpoint.address, { socketAddress: { address: '127.0.0.1', portValue: 15002 } });
  assert.deepEqual(c.routeConfigurations.map((r) => r.name), ['rds_egress_http_15002', 'rds_ingress_http_15001']);
  assert.equal(hostsOf(c, 'rds_ingress_http_15001')[0]!.routes[0].route.cluster, 'cds_ingress_m_gw_self_redirect_http_15002');
  // Listeners on 15001 and 15002: 15003. With the egressPort option, counted from there.
  assert.deepEqual(run(gatewayOn([15001, 15002]), 'virtualGateway', 'gw').listeners.map((l) => l.name),
    ['lds_egress_0.0.0.0_15003', 'lds_ingress_0.0.0.0_15001', 'lds_ingress_0.0.0.0_15002']);
  assert.deepEqual(run(gatewayOn([16001]), 'virtualGateway', 'gw', { options: { egressPort: 16001 } }).listeners.map((l) => l.name),
    ['lds_egress_0.0.0.0_16002', 'lds_ingress_0.0.0.0_16001']);
  // Nothing moves when the egress port is free.
  assert.deepEqual(run(gatewayOn([8080]), 'virtualGateway', 'gw').listeners.map((l) => l.name), ['lds_egress_0.0.0.0_15001', 'lds_ingress_0.0.0.0_8080']);
  // At the top of the port range it counts down.
  const l = (port: number) => ({ portMapping: { port, protocol: 'http' as const } });
  assert.equal(gatewayEgressPort(65535, [l(65535)]), 65534);
  assert.equal(gatewayEgressPort(65534, [l(65534), l(65535)]), 65533);
});

// Outputs share no objects.

test('outputs share no object: changing one translation\'s output does not change the next one', () => {
  const b = new MeshBuilder('m', { egressFilter: { type: 'ALLOW_ALL' } })
    .node('server', { listeners: [{ portMapping: { port: 9080, protocol: 'http' }, tls: { mode: 'PERMISSIVE', certificate: { file: { certificateChain: '/c.pem', privateKey: '/k.pem' } } } }, { portMapping: { port: 5432, protocol: 'tcp' } }], serviceDiscovery: { dns: { hostname: 'server.local' } } })
    .service('server.local', { provider: { virtualNode: { virtualNodeName: 'server' } } })
    .node('client', { backends: [{ virtualService: { virtualServiceName: 'server.local' } }] });
  const view = b.view();
  const input = (name: string): TranslateInput => ({ view, proxy: { kind: 'virtualNode', name }, endpoints: {} });
  for (const proxy of ['client', 'server']) {
    const first = translate(input(proxy));
    const expected = structuredClone(first);
    // A consumer scribbling over everything it got.
    const scribble = (v: unknown): void => {
      if (Array.isArray(v)) {
        v.forEach(scribble);
        v.push('scribbled');
      } else if (v !== null && typeof v === 'object') {
        for (const x of Object.values(v)) scribble(x);
        (v as JsonObject).scribbled = true;
      }
    };
    scribble(first);
    assert.deepEqual(translate(input(proxy)), expected, proxy);
  }
});

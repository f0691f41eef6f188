// compileCluster / compileLoadAssignment: every cluster and load assignment keymesh's translation emits (the
// golden files, plus generated meshes with the features the seeds lack), in the form they are written and in the
// form the xDS client decodes them to; Envoy's defaults; and refusals that name the field.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { roundTrip, TYPE_URLS } from '../../envoy/protos.ts';
import { UNLIMITED } from '../../translate/clusters.ts';
import { MeshBuilder } from '../../translate/test-fixtures.ts';
import { translate } from '../../translate/translate.ts';
import type { EnvoyConfig } from '../../translate/api.ts';
import { ProxyConfigError, type Json } from '../resources/values.ts';
import { compileCluster, compileLoadAssignment, type ClusterSpec } from './compile.ts';

const GOLDEN = new URL('../../translate/golden/', import.meta.url);

function goldenConfigs(): [string, EnvoyConfig][] {
  return readdirSync(GOLDEN).filter((f) => f.endsWith('.json')).sort().map((f) => [f, JSON.parse(readFileSync(new URL(f, GOLDEN), 'utf8')) as EnvoyConfig]);
}

/** As written by the translation, and as the proxy's xDS client sees it after protobuf encoding. */
function bothForms(typeUrl: string, r: Json): [string, Json][] {
  return [['as translated', r], ['decoded', roundTrip(typeUrl, r)]];
}

function refuses(resource: Json, pattern: RegExp, compile: (r: Json) => unknown = compileCluster): void {
  assert.throws(() => compile(resource), (e: unknown) => {
    assert.ok(e instanceof ProxyConfigError, `not a ProxyConfigError: ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

const base = (extra: Json = {}): Json => ({ name: 'c', connectTimeout: { seconds: '1' }, type: 'STATIC', ...extra });
const staticEndpoint = (address: string, port: number) => ({ endpoint: { address: { socketAddress: { address, portValue: port } } } });

test('every golden cluster and load assignment compiles, as translated and as decoded from xDS', () => {
  let clusters = 0;
  let assignments = 0;
  for (const [file, config] of goldenConfigs()) {
    for (const c of config.clusters) {
      for (const [form, r] of bothForms(TYPE_URLS.cluster, c)) {
        const spec = compileCluster(r);
        assert.equal(spec.name, c.name, `${file} ${form}`);
        assert.equal(spec.type, c.type ?? 'STATIC', `${file} ${String(c.name)} ${form}`);
        assert.equal(spec.connectTimeoutMs, 1000);
        // App Mesh's "effectively off" breakers, not Envoy's defaults.
        assert.deepEqual(spec.circuitBreakers.default, { maxConnections: UNLIMITED, maxPendingRequests: UNLIMITED, maxRequests: UNLIMITED, maxRetries: UNLIMITED, trackRemaining: false });
        assert.deepEqual(spec.circuitBreakers.high, { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, trackRemaining: false });
        assert.equal(spec.transportSocket !== undefined, c.transportSocket !== undefined, `${String(c.name)}: transport socket kept`);
        if (spec.type === 'EDS') assert.equal(spec.eds?.serviceName, c.name);
        if (spec.type === 'ORIGINAL_DST') assert.equal(spec.lbPolicy, 'CLUSTER_PROVIDED');
        if (spec.type === 'LOGICAL_DNS') assert.equal(spec.endpoints.length, 1);
        clusters++;
      }
    }
    for (const a of config.clusterLoadAssignments) {
      for (const [form, r] of bothForms(TYPE_URLS.clusterLoadAssignment, a)) {
        const endpoints = compileLoadAssignment(r);
        const expected = ((a.endpoints as Json[] | undefined) ?? []).flatMap((l) => l.lbEndpoints as Json[]).length;
        assert.equal(endpoints.length, expected, `${file} ${String(a.clusterName)} ${form}`);
        assignments++;
      }
    }
  }
  assert.ok(clusters >= 60, `only ${clusters} clusters compiled`);
  assert.ok(assignments >= 1, 'no load assignment in the golden files');
});

test('golden details: static app cluster with an HTTP health check, LOGICAL_DNS with TLS, EDS with endpoints', () => {
  const configs = goldenConfigs();
  const all = configs.flatMap(([, c]) => c.clusters);
  const withHc = all.find((c) => c.healthChecks !== undefined);
  assert.ok(withHc, 'a golden cluster with a health check');
  const hc = compileCluster(roundTrip(TYPE_URLS.cluster, withHc)).healthCheck;
  assert.ok(hc);
  assert.equal(hc.check.type, 'http');
  assert.equal(hc.reuseConnection, true);
  assert.equal(hc.noTrafficIntervalMs, 60_000);
  assert.deepEqual(hc.check.type === 'http' && hc.check.expectedStatuses, [[200, 201]]);

  const logical = all.find((c) => c.type === 'LOGICAL_DNS' && c.transportSocket);
  assert.ok(logical);
  const spec = compileCluster(roundTrip(TYPE_URLS.cluster, logical));
  const socket = (((logical.loadAssignment as Json).endpoints as Json[])[0]?.lbEndpoints as Json[])[0]?.endpoint as Json;
  const { address, portValue } = (socket.address as Json).socketAddress as Json;
  assert.deepEqual(spec.endpoints, [{ address, port: portValue, weight: 1, healthStatus: 'UNKNOWN' }]);
  assert.equal(spec.dns.lookupFamily, 'AUTO');
  assert.equal(spec.dns.refreshRateMs, 5000);
  assert.equal((spec.transportSocket as Json).name, 'envoy.transport_sockets.tls');

  const cla = configs.flatMap(([, c]) => c.clusterLoadAssignments).find((a) => (a.endpoints as Json[] | undefined)?.length);
  if (cla) {
    for (const e of compileLoadAssignment(roundTrip(TYPE_URLS.clusterLoadAssignment, cla))) {
      assert.ok(e.port > 0);
      assert.equal(e.weight, 1);
      assert.equal(e.healthStatus, 'UNKNOWN');
    }
  }
});

function translated(b: MeshBuilder, kind: 'virtualNode' | 'virtualGateway', name: string, endpoints: Record<string, { address: string; port: number }[]> = {}): EnvoyConfig {
  return translate({ view: b.view(), proxy: { kind, name }, endpoints });
}

test('translated features the seeds lack: outlier detection, every health check protocol, pools, HTTP/2, STRICT_DNS', () => {
  const od = { maxServerErrors: 3, interval: { unit: 'ms', value: 1500 }, baseEjectionDuration: { unit: 's', value: 20 }, maxEjectionPercent: 40 };
  const hc = (protocol: string, port: number) => ({ protocol, port, path: '/health', intervalMillis: 5000, timeoutMillis: 2000, healthyThreshold: 2, unhealthyThreshold: 3 });
  const server = {
    serviceDiscovery: { dns: { hostname: 'server.local', responseType: 'ENDPOINTS', ipPreference: 'IPv4_PREFERRED' } },
    listeners: [
      { portMapping: { port: 8080, protocol: 'http' }, healthCheck: hc('http', 8080), outlierDetection: od, connectionPool: { http: { maxConnections: 10, maxPendingRequests: 5 } } },
      { portMapping: { port: 8081, protocol: 'http2' }, healthCheck: hc('http2', 8081), connectionPool: { http2: { maxRequests: 20 } } },
      { portMapping: { port: 8082, protocol: 'grpc' }, healthCheck: hc('grpc', 8082), outlierDetection: od },
      { portMapping: { port: 8083, protocol: 'tcp' }, healthCheck: hc('tcp', 8083), connectionPool: { tcp: { maxConnections: 40 } } },
    ],
  };
  const b = new MeshBuilder('m').node('server', server).service('server.local', { provider: { virtualNode: { virtualNodeName: 'server' } } })
    .node('client', { backends: [{ virtualService: { virtualServiceName: 'server.local' } }] });
  const specs = new Map<string, ClusterSpec>();
  for (const config of [translated(b, 'virtualNode', 'server'), translated(b, 'virtualNode', 'client')]) {
    for (const c of config.clusters) {
      const a = compileCluster(c);
      const d = compileCluster(roundTrip(TYPE_URLS.cluster, c));
      assert.deepEqual(d, a, `${String(c.name)}: same spec from both forms`);
      specs.set(a.name, a);
    }
  }
  const ingress = (p: string, port: number) => specs.get(`cds_ingress_m_server_${p}_${port}`) as ClusterSpec;
  const egress = (p: string, port: number) => specs.get(`cds_egress_m_server_${p}_${port}`) as ClusterSpec;

  assert.deepEqual(ingress('http', 8080).healthCheck?.check, {
    type: 'http', path: '/health', method: 'GET', codec: 'HTTP1', expectedStatuses: [[200, 201]], retriableStatuses: [], requestHeadersToAdd: [], requestHeadersToRemove: [], receive: [], responseBufferSize: 1024,
  });
  assert.equal(ingress('http', 8080).healthCheck?.intervalMs, 5000);
  assert.equal(ingress('http', 8080).healthCheck?.timeoutMs, 2000);
  assert.equal(ingress('http', 8080).healthCheck?.healthyThreshold, 2);
  assert.equal(ingress('http', 8080).healthCheck?.unhealthyThreshold, 3);
  const h2check = ingress('http2', 8081).healthCheck?.check;
  assert.equal(h2check?.type === 'http' ? h2check.codec : undefined, 'HTTP2');
  assert.deepEqual(ingress('grpc', 8082).healthCheck?.check, { type: 'grpc', serviceName: '', initialMetadata: [] });
  assert.deepEqual(ingress('tcp', 8083).healthCheck?.check, { type: 'tcp', receive: [] });
  assert.equal(ingress('http2', 8081).http.protocol, 'http2');
  assert.equal(ingress('grpc', 8082).http.protocol, 'http2');
  assert.equal(ingress('http', 8080).http.protocol, 'http1');
  assert.equal(ingress('http', 8080).http.idleTimeoutMs, 3_600_000);
  assert.equal(ingress('http', 8080).circuitBreakers.default.maxConnections, 10);
  assert.equal(ingress('http', 8080).circuitBreakers.default.maxPendingRequests, 5);
  assert.equal(ingress('http2', 8081).circuitBreakers.default.maxRequests, 20);
  assert.equal(ingress('tcp', 8083).circuitBreakers.default.maxConnections, 40);

  const out = egress('http', 8080);
  assert.equal(out.type, 'STRICT_DNS');
  assert.equal(out.dns.lookupFamily, 'V4_PREFERRED');
  assert.deepEqual(out.endpoints.map((e) => [e.address, e.port]), [['server.local', 8080]]);
  const o = out.outlierDetection;
  assert.ok(o);
  assert.equal(o.consecutive5xx, 3);
  assert.equal(o.intervalMs, 1500);
  assert.equal(o.baseEjectionTimeMs, 20_000);
  assert.equal(o.maxEjectionPercent, 40);
  // Envoy's defaults for what App Mesh leaves unset.
  assert.equal(o.maxEjectionTimeMs, 300_000);
  assert.equal(o.enforcingConsecutive5xx, 100);
  assert.equal(o.enforcingConsecutiveGatewayFailure, 0);
  assert.equal(o.enforcingSuccessRate, 100);
  assert.equal(o.successRateMinimumHosts, 5);
  assert.equal(o.successRateRequestVolume, 100);
  assert.equal(o.successRateStdevFactor, 1900);
  assert.equal(o.enforcingFailurePercentage, 0);
  assert.equal(o.splitExternalLocalOriginErrors, false);
  assert.equal(o.alwaysEjectOneHost, false);
  assert.equal(o.successfulActiveHealthCheckUnejectHost, true);
  assert.equal(egress('grpc', 8082).outlierDetection?.consecutive5xx, 3);
  assert.equal(egress('http2', 8081).outlierDetection, undefined);

  // EDS when the node has registered instances.
  const eds = translated(b, 'virtualNode', 'client', { server: [{ address: '10.0.0.2', port: 8080 }, { address: '10.0.0.1', port: 8080 }] });
  const cla = eds.clusterLoadAssignments.find((a) => a.clusterName === 'cds_egress_m_server_http_8080');
  assert.ok(cla);
  assert.deepEqual(compileLoadAssignment(roundTrip(TYPE_URLS.clusterLoadAssignment, cla)).map((e) => `${e.address}:${e.port}`), ['10.0.0.1:8080', '10.0.0.2:8080']);
  const edsCluster = compileCluster(roundTrip(TYPE_URLS.cluster, eds.clusters.find((c) => c.name === 'cds_egress_m_server_http_8080') as Json));
  assert.equal(edsCluster.type, 'EDS');
  assert.deepEqual(edsCluster.eds, { serviceName: 'cds_egress_m_server_http_8080' });
});

test("Envoy's defaults for a minimal cluster", () => {
  const spec = compileCluster({ name: 'minimal' });
  assert.equal(spec.type, 'STATIC');
  assert.equal(spec.lbPolicy, 'ROUND_ROBIN');
  assert.equal(spec.connectTimeoutMs, 5000);
  assert.deepEqual(spec.endpoints, []);
  assert.deepEqual(spec.dns, { lookupFamily: 'AUTO', refreshRateMs: 5000 });
  const envoy = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, trackRemaining: false };
  assert.deepEqual(spec.circuitBreakers, { default: envoy, high: envoy });
  assert.deepEqual(spec.lb, { healthyPanicThreshold: 50, ignoreNewHostsUntilFirstHc: false, closeConnectionsOnHostSetChange: false });
  assert.equal(spec.outlierDetection, undefined);
  assert.equal(spec.healthCheck, undefined);
  assert.equal(spec.transportSocket, undefined);
  assert.equal(spec.http.protocol, 'http1');
  assert.equal(spec.http.idleTimeoutMs, 3_600_000);
  assert.equal(spec.http.maxHeadersCount, 100);
  assert.equal(spec.cleanupIntervalMs, 5000);
  assert.equal(spec.perConnectionBufferLimitBytes, 1024 * 1024);
  assert.equal(spec.waitForWarmOnInit, true);
  assert.equal(spec.observabilityName, 'minimal');

  // An empty outlier_detection message turns it on with every default.
  const od = compileCluster({ name: 'od', outlierDetection: {} }).outlierDetection;
  assert.ok(od);
  assert.equal(od.consecutive5xx, 5);
  assert.equal(od.intervalMs, 10_000);
  assert.equal(od.baseEjectionTimeMs, 30_000);
  assert.equal(od.maxEjectionPercent, 10);
  assert.equal(od.consecutiveGatewayFailure, 5);
  assert.equal(od.failurePercentageThreshold, 85);
  // max_ejection_time: 300 s, or base_ejection_time when larger.
  assert.equal(compileCluster({ name: 'od', outlierDetection: { baseEjectionTime: { seconds: '400' } } }).outlierDetection?.maxEjectionTimeMs, 400_000);
});

test('settings the translation never emits: weights, EDS health, retry budget, HIGH thresholds, failure refresh, HTTP/2 options', () => {
  const spec = compileCluster(base({
    loadAssignment: { clusterName: 'c', endpoints: [{ locality: { zone: 'a' }, lbEndpoints: [
      { ...staticEndpoint('10.0.0.1', 80), loadBalancingWeight: { value: 3 }, healthStatus: 'DEGRADED' },
      { endpoint: { address: { socketAddress: { address: '::1', portValue: 81 } }, hostname: 'h', healthCheckConfig: { portValue: 9000, hostname: 'hc.local' } } },
      staticEndpoint('10.0.0.1', 80),
    ] }] },
    circuitBreakers: { thresholds: [{ priority: 'HIGH', maxRetries: { value: 9 }, trackRemaining: true, retryBudget: { budgetPercent: { value: 25 } } }] },
    dnsFailureRefreshRate: { baseInterval: { seconds: '1' } },
    commonLbConfig: { healthyPanicThreshold: { value: 0 }, ignoreNewHostsUntilFirstHc: true },
    typedExtensionProtocolOptions: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      commonHttpProtocolOptions: { idleTimeout: { seconds: '0' }, maxRequestsPerConnection: { value: 7 } },
      explicitHttpConfig: { http2ProtocolOptions: { maxConcurrentStreams: { value: 50 } } },
    } },
    altStatName: 'alt',
  }));
  assert.deepEqual(spec.endpoints, [
    { address: '10.0.0.1', port: 80, weight: 3, healthStatus: 'DEGRADED' },
    { address: '::1', port: 81, weight: 1, healthStatus: 'UNKNOWN', hostname: 'h', healthCheck: { disabled: false, port: 9000, hostname: 'hc.local' } },
  ]);
  assert.deepEqual(spec.circuitBreakers.high, { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 9, trackRemaining: true, retryBudget: { budgetPercent: 25, minRetryConcurrency: 3 } });
  assert.deepEqual(spec.dns.failureRefresh, { baseMs: 1000, maxMs: 10_000 });
  assert.equal(spec.lb.healthyPanicThreshold, 0);
  assert.equal(spec.lb.ignoreNewHostsUntilFirstHc, true);
  assert.equal(spec.http.protocol, 'http2');
  assert.deepEqual(spec.http.protocolOptions, { maxConcurrentStreams: { value: 50 } });
  assert.equal(spec.http.idleTimeoutMs, undefined);
  assert.equal(spec.http.maxRequestsPerConnection, 7);
  assert.equal(spec.observabilityName, 'alt');
  // raw_buffer is plaintext.
  assert.equal(compileCluster(base({ transportSocket: { name: 'envoy.transport_sockets.raw_buffer' } })).transportSocket, undefined);
});

test('health check details: payloads, statuses, headers, intervals, TLS options', () => {
  const spec = compileCluster(base({ healthChecks: [{
    timeout: { seconds: '1' }, interval: { seconds: '2' }, unhealthyThreshold: { value: 2 }, healthyThreshold: { value: 1 },
    reuseConnection: { value: false }, unhealthyInterval: { seconds: '3' }, noTrafficInterval: { seconds: '4' }, intervalJitterPercent: 10,
    tlsOptions: { alpnProtocols: ['h2'] },
    httpHealthCheck: {
      path: '/ready', host: 'svc', method: 'POST', send: { text: '6869' }, receive: [{ text: '6f6b' }], codecClientType: 'HTTP2',
      expectedStatuses: [{ start: '200', end: '300' }], retriableStatuses: [{ start: '503', end: '504' }],
      requestHeadersToAdd: [{ header: { key: 'X-Probe', value: '1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }], requestHeadersToRemove: ['User-Agent'],
    },
  }] }));
  const hc = spec.healthCheck;
  assert.ok(hc);
  assert.equal(hc.reuseConnection, false);
  assert.equal(hc.unhealthyIntervalMs, 3000);
  assert.equal(hc.unhealthyEdgeIntervalMs, 3000);
  assert.equal(hc.healthyEdgeIntervalMs, 2000);
  assert.equal(hc.noTrafficIntervalMs, 4000);
  assert.equal(hc.noTrafficHealthyIntervalMs, 4000);
  assert.equal(hc.intervalJitterPercent, 10);
  assert.deepEqual(hc.alpnProtocols, ['h2']);
  assert.ok(hc.check.type === 'http');
  assert.equal(hc.check.host, 'svc');
  assert.equal(hc.check.method, 'POST');
  assert.deepEqual(hc.check.send, Buffer.from('hi'));
  assert.deepEqual(hc.check.receive, [Buffer.from('ok')]);
  assert.deepEqual(hc.check.expectedStatuses, [[200, 300]]);
  assert.deepEqual(hc.check.retriableStatuses, [[503, 504]]);
  assert.deepEqual(hc.check.requestHeadersToAdd, [{ name: 'x-probe', value: '1', action: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
  assert.deepEqual(hc.check.requestHeadersToRemove, ['user-agent']);
  const tcp = compileCluster(base({ healthChecks: [{ timeout: { seconds: '1' }, interval: { seconds: '1' }, unhealthyThreshold: { value: 1 }, healthyThreshold: { value: 1 }, tcpHealthCheck: { send: { binary: Buffer.from('PING').toString('base64') }, receive: [{ text: '504f4e47' }] } }] }));
  assert.deepEqual(tcp.healthCheck?.check, { type: 'tcp', send: Buffer.from('PING'), receive: [Buffer.from('PONG')] });
});

test('refusals name the resource and the field', () => {
  const hc = (extra: Json) => ({ timeout: { seconds: '1' }, interval: { seconds: '1' }, unhealthyThreshold: { value: 1 }, healthyThreshold: { value: 1 }, tcpHealthCheck: {}, ...extra });
  refuses({}, /^cluster \(unnamed\): name: must be a non-empty string/);
  refuses(base({ lbPolicy: 'RING_HASH' }), /^cluster c: lbPolicy: RING_HASH is not supported by keymesh's proxy/);
  refuses(base({ lbPolicy: 'LEAST_REQUEST' }), /cluster c: lbPolicy: LEAST_REQUEST is not supported/);
  refuses(base({ lbPolicy: 'CLUSTER_PROVIDED' }), /cluster c: lbPolicy: CLUSTER_PROVIDED is not valid for a STATIC cluster/);
  refuses(base({ type: 'ORIGINAL_DST' }), /cluster c: lbPolicy: ROUND_ROBIN is not valid for an ORIGINAL_DST cluster/);
  refuses(base({ type: 'NOPE' }), /cluster c: type: must be one of STATIC, STRICT_DNS/);
  refuses(base({ clusterType: { name: 'envoy.clusters.aggregate' } }), /cluster c: clusterType: is not supported by keymesh's proxy/);
  refuses(base({ lbSubsetConfig: { subsetSelectors: [{ keys: ['a'] }] } }), /cluster c: lbSubsetConfig: is not supported/);
  refuses(base({ transportSocketMatches: [{ name: 'x' }] }), /cluster c: transportSocketMatches: is not supported/);
  refuses(base({ dnsResolvers: [{ socketAddress: { address: '1.1.1.1', portValue: 53 } }] }), /cluster c: dnsResolvers: is not supported/);
  refuses(base({ respectDnsTtl: true }), /cluster c: respectDnsTtl: is not supported/);
  refuses(base({ upstreamBindConfig: { sourceAddress: { address: '10.0.0.1', portValue: 0 } } }), /cluster c: upstreamBindConfig: is not supported/);
  refuses(base({ filters: [{ name: 'f' }] }), /cluster c: filters: is not supported/);
  refuses(base({ transportSocket: { name: 'envoy.transport_sockets.alts' } }), /cluster c: transportSocket\.name: envoy\.transport_sockets\.alts is not a transport socket keymesh's proxy supports/);
  refuses(base({ transportSocket: { name: 'envoy.transport_sockets.tls', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext' } } }), /cluster c: transportSocket\.typedConfig: type .*DownstreamTlsContext is not supported/);
  refuses(base({ loadAssignment: { endpoints: [{ lbEndpoints: [staticEndpoint('backend.local', 80)] }] } }), /cluster c: loadAssignment\.endpoints\[0\]\.lbEndpoints\[0\]\.endpoint\.address\.socketAddress\.address: backend\.local is not an IP address/);
  refuses(base({ loadAssignment: { endpoints: [{ lbEndpoints: [staticEndpoint('10.0.0.1', 0)] }] } }), /socketAddress\.portValue: must be a port number/);
  refuses(base({ type: 'LOGICAL_DNS', loadAssignment: { endpoints: [{ lbEndpoints: [staticEndpoint('a.local', 80), staticEndpoint('b.local', 80)] }] } }), /cluster c: loadAssignment: a LOGICAL_DNS cluster needs exactly one endpoint, found 2/);
  refuses(base({ type: 'EDS' }), /cluster c: edsClusterConfig: is required for an EDS cluster/);
  refuses(base({ type: 'EDS', edsClusterConfig: { edsConfig: { path: '/etc/eds.yaml' } } }), /cluster c: edsClusterConfig\.edsConfig\.path: is not supported/);
  refuses(base({ type: 'EDS', edsClusterConfig: { edsConfig: { apiConfigSource: { apiType: 'GRPC' } } } }), /edsClusterConfig\.edsConfig\.apiConfigSource: is not supported/);
  refuses(base({ circuitBreakers: { perHostThresholds: [{ maxConnections: { value: 1 } }] } }), /cluster c: circuitBreakers\.perHostThresholds: is not supported/);
  refuses(base({ circuitBreakers: { thresholds: [{ maxConnectionPools: { value: 1 } }] } }), /circuitBreakers\.thresholds\[0\]\.maxConnectionPools: is not supported/);
  refuses(base({ circuitBreakers: { thresholds: [{}, {}] } }), /circuitBreakers\.thresholds\[1\]\.priority: DEFAULT is given twice/);
  refuses(base({ outlierDetection: { maxEjectionPercent: { value: 150 } } }), /cluster c: outlierDetection\.maxEjectionPercent: must be at most 100/);
  refuses(base({ outlierDetection: { monitors: [{ name: 'm' }] } }), /cluster c: outlierDetection\.monitors: is not supported/);
  refuses(base({ outlierDetection: { baseEjectionTime: { seconds: '60' }, maxEjectionTime: { seconds: '10' } } }), /outlierDetection\.maxEjectionTime: must not be smaller than baseEjectionTime/);
  refuses(base({ healthChecks: [hc({}), hc({})] }), /cluster c: healthChecks: Envoy supports one health check per cluster/);
  refuses(base({ healthChecks: [hc({ timeout: undefined })] }), /cluster c: healthChecks\[0\]\.timeout: is required/);
  refuses(base({ healthChecks: [hc({ healthyThreshold: undefined })] }), /healthChecks\[0\]\.healthyThreshold: is required/);
  refuses(base({ healthChecks: [hc({ tcpHealthCheck: undefined, customHealthCheck: { name: 'redis' } })] }), /healthChecks\[0\]\.customHealthCheck: is not supported/);
  refuses(base({ healthChecks: [hc({ tcpHealthCheck: undefined })] }), /healthChecks\[0\]: needs exactly one of httpHealthCheck, tcpHealthCheck, grpcHealthCheck/);
  refuses(base({ healthChecks: [hc({ eventLogPath: '/tmp/hc.log' })] }), /healthChecks\[0\]\.eventLogPath: is not supported/);
  refuses(base({ healthChecks: [hc({ tcpHealthCheck: undefined, httpHealthCheck: { path: '/', codecClientType: 'HTTP3' } })] }), /healthChecks\[0\]\.httpHealthCheck\.codecClientType: HTTP3 is not supported/);
  refuses(base({ healthChecks: [hc({ tcpHealthCheck: undefined, httpHealthCheck: { path: '/', serviceNameMatcher: { exact: 'x' } } })] }), /httpHealthCheck\.serviceNameMatcher: is not supported/);
  refuses(base({ healthChecks: [hc({ tcpHealthCheck: undefined, httpHealthCheck: { path: '/', send: { text: '00' } } })] }), /httpHealthCheck\.send: a request payload needs a method with a body/);
  refuses(base({ healthChecks: [hc({ tcpHealthCheck: undefined, httpHealthCheck: { path: '/', expectedStatuses: [{ start: '300', end: '200' }] } })] }), /httpHealthCheck\.expectedStatuses\[0\]: start must be below end/);
  refuses(base({ healthChecks: [hc({ tcpHealthCheck: undefined, httpHealthCheck: { path: '/', requestHeadersToAdd: [{ header: { key: 'x', value: '%UPSTREAM_REMOTE_ADDRESS%' } }] } })] }), /requestHeadersToAdd\[0\]\.header\.value: format strings/);
  refuses(base({ healthChecks: [hc({ tcpHealthCheck: { proxyProtocolConfig: { version: 'V2' } } })] }), /healthChecks\[0\]\.tcpHealthCheck\.proxyProtocolConfig: is not supported/);
  refuses(base({ roundRobinLbConfig: { slowStartConfig: { slowStartWindow: { seconds: '10' } } } }), /cluster c: roundRobinLbConfig\.slowStartConfig: is not supported/);
  refuses(base({ commonLbConfig: { localityWeightedLbConfig: {} } }), /cluster c: commonLbConfig\.localityWeightedLbConfig: is not supported/);
  refuses(base({ type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED', originalDstLbConfig: { useHttpHeader: true } }), /originalDstLbConfig\.useHttpHeader: is not supported/);
  refuses(base({ protocolSelection: 'USE_DOWNSTREAM_PROTOCOL' }), /cluster c: protocolSelection: USE_DOWNSTREAM_PROTOCOL is not supported/);
  const hpo = (o: Json) => base({ typedExtensionProtocolOptions: { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions', ...o } } });
  refuses(hpo({ autoConfig: {} }), /typedExtensionProtocolOptions\.envoy\.extensions\.upstreams\.http\.v3\.HttpProtocolOptions\.autoConfig: is not supported/);
  refuses(hpo({ explicitHttpConfig: { http3ProtocolOptions: {} } }), /HttpProtocolOptions\.explicitHttpConfig\.http3ProtocolOptions: is not supported/);
  refuses(hpo({ explicitHttpConfig: { http2ProtocolOptions: {} }, httpFilters: [{ name: 'f' }] }), /HttpProtocolOptions\.httpFilters: is not supported/);
  refuses(hpo({}), /HttpProtocolOptions\.explicitHttpConfig: is required/);
  refuses(base({ typedExtensionProtocolOptions: { 'envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions': { '@type': 'type.googleapis.com/envoy.extensions.upstreams.tcp.v3.TcpProtocolOptions' } } }), /typedExtensionProtocolOptions\.envoy\.extensions\.upstreams\.tcp\.v3\.TcpProtocolOptions: is not supported/);
  refuses({ ...hpo({ explicitHttpConfig: { http2ProtocolOptions: {} } }), http2ProtocolOptions: {} }, /cluster c: http2ProtocolOptions: cannot be combined with typedExtensionProtocolOptions/);
});

test('load assignment refusals name the assignment and the field', () => {
  const cla = (extra: Json) => ({ clusterName: 'svc', ...extra });
  refuses({}, /^cluster load assignment \(unnamed\): clusterName: must be a non-empty string/, compileLoadAssignment);
  refuses(cla({ endpoints: [{ priority: 1, lbEndpoints: [staticEndpoint('10.0.0.1', 80)] }] }), /^cluster load assignment svc: endpoints\[0\]\.priority: 1 is not supported by keymesh's proxy \(only priority 0\)/, compileLoadAssignment);
  refuses(cla({ endpoints: [{ lbEndpoints: [staticEndpoint('svc.local', 80)] }] }), /endpoints\[0\]\.lbEndpoints\[0\]\.endpoint\.address\.socketAddress\.address: svc\.local is not an IP address/, compileLoadAssignment);
  refuses(cla({ endpoints: [{ lbEndpoints: [{ endpointName: 'named' }] }] }), /endpoints\[0\]\.lbEndpoints\[0\]\.endpointName: is not supported/, compileLoadAssignment);
  refuses(cla({ endpoints: [{ lbEndpoints: [{ endpoint: { address: { pipe: { path: '/tmp/s' } } } }] }] }), /lbEndpoints\[0\]\.endpoint\.address\.pipe: is not supported/, compileLoadAssignment);
  refuses(cla({ endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '10.0.0.1', portValue: 53, protocol: 'UDP' } } } }] }] }), /socketAddress\.protocol: must be one of TCP/, compileLoadAssignment);
  refuses(cla({ endpoints: [{ lbEndpoints: [{ ...staticEndpoint('10.0.0.1', 80), loadBalancingWeight: { value: 0 } }] }] }), /lbEndpoints\[0\]\.loadBalancingWeight: must be an integer of at least 1/, compileLoadAssignment);
  refuses(cla({ endpoints: [{ lbEndpoints: [{ ...staticEndpoint('10.0.0.1', 80), healthStatus: 'SICK' }] }] }), /lbEndpoints\[0\]\.healthStatus: must be one of UNKNOWN/, compileLoadAssignment);
  refuses(cla({ policy: { dropOverloads: [{ category: 'x' }] } }), /^cluster load assignment svc: policy\.dropOverloads: is not supported/, compileLoadAssignment);
  refuses(cla({ policy: { overprovisioningFactor: { value: 200 } } }), /policy\.overprovisioningFactor: 200 is not supported/, compileLoadAssignment);
  refuses(cla({ endpoints: [{ ledsClusterLocalityConfig: { ledsCollectionName: 'x' } }] }), /endpoints\[0\]\.ledsClusterLocalityConfig: is not supported/, compileLoadAssignment);
  // Health statuses and weights as given; duplicates keep the first.
  assert.deepEqual(compileLoadAssignment(cla({ endpoints: [{ lbEndpoints: [{ ...staticEndpoint('10.0.0.1', 80), healthStatus: 'UNHEALTHY' }, staticEndpoint('10.0.0.1', 80)] }] })), [
    { address: '10.0.0.1', port: 80, weight: 1, healthStatus: 'UNHEALTHY' },
  ]);
  assert.deepEqual(compileLoadAssignment(cla({})), []);
});

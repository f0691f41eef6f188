// Active health checking against real local servers: HTTP/1.1 and HTTP/2 servers flipped between 200 and
// 503, a TCP port that closes, a gRPC health service on @grpc/grpc-js (grpc.health.v1 written by hand: the
// proto is not shipped), and an HTTP/2 check over TLS through an injected dialer. Short intervals; every wait
// is bounded.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { test, type TestContext } from 'node:test';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { makeTestPki } from '../test-pki.ts';
import type { Json } from '../resources/values.ts';
import { compileCluster } from './compile.ts';
import { dialTcp, grpcHealthRequestFrame, grpcHealthStatus, HealthChecker, payloadMatches, type Dial } from './health.ts';
import { HostSet, type Host } from './hosts.ts';
import { OutlierDetector } from './outlier.ts';
import { StatsCounter } from './stats.ts';

const ms = (n: number) => ({ seconds: String(Math.floor(n / 1000)), nanos: (n % 1000) * 1e6 });

async function waitFor(what: string, predicate: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Listens on 127.0.0.1:0 and closes the server when the test ends (passed or not). */
function listen(t: TestContext, server: net.Server | http.Server | http2.Http2Server): Promise<number> {
  t.after(() => close(server));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

function close(server: net.Server | http.Server | http2.Http2Server): Promise<void> {
  return new Promise((resolve) => {
    (server as http.Server).closeAllConnections?.();
    server.close(() => resolve());
  });
}

interface Rig {
  readonly set: HostSet;
  readonly checker: HealthChecker;
  readonly host: Host;
  readonly stats: StatsCounter;
  /** (ok, host healthy afterwards) per completed check. */
  readonly results: [boolean, boolean][];
}

function rig(t: TestContext, port: number, healthCheck: Json, options: { traffic?: boolean; dial?: Dial; secure?: boolean } = {}): Rig {
  const spec = compileCluster({
    name: 'cds_ingress_m_app_http_8080',
    type: 'STATIC',
    loadAssignment: { endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } }] }] },
    healthChecks: [{ timeout: ms(1000), interval: ms(30), unhealthyThreshold: { value: 2 }, healthyThreshold: { value: 2 }, ...healthCheck }],
  });
  const stats = new StatsCounter();
  const set = new HostSet(spec, { stats: stats.sink });
  const host = set.hosts[0] as Host;
  // A cluster that carries traffic uses `interval`; one that never did waits no_traffic_interval (60 s).
  if (options.traffic !== false) {
    host.connectionOpened();
    host.connectionClosed();
  }
  const checker = new HealthChecker(set, spec.healthCheck!, { stats: stats.sink, ...(options.dial ? { dial: options.dial } : {}), ...(options.secure ? { secure: true } : {}) });
  const results: [boolean, boolean][] = [];
  checker.onCheckComplete((h, ok) => results.push([ok, !h.failedActiveHealthCheck]));
  t.after(() => checker.stop());
  return { set, checker, host, stats, results };
}

test('HTTP/1.1: first pass makes the host healthy at once; a 503 makes it unhealthy at once; healthy_threshold passes to return', async (t) => {
  const script = [200, 503, 200, 200];
  const seen: http.IncomingHttpHeaders[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    seen.push({ ...req.headers, ':path': req.url, ':method': req.method });
    sockets.add(req.socket);
    res.statusCode = script.length > 0 ? (script.shift() as number) : 200;
    res.end('ok');
  });
  const port = await listen(t, server);
  const r = rig(t, port, { httpHealthCheck: { path: '/healthz' } });
  assert.equal(r.host.failedActiveHealthCheck, true, 'unhealthy until the first check');
  let ready = false;
  void r.checker.ready.then(() => { ready = true; });
  r.checker.start();
  await waitFor('four checks', () => r.results.length >= 4);
  r.checker.stop();
  assert.equal(ready, true);
  assert.deepEqual(r.results.slice(0, 4), [[true, true], [false, false], [true, false], [true, true]]);
  assert.equal(seen[0]?.host, 'cds_ingress_m_app_http_8080', 'Host: the cluster name');
  assert.equal(seen[0]?.['user-agent'], 'Envoy/HC');
  assert.equal(seen[0]?.[':path'], '/healthz');
  assert.equal(seen[0]?.[':method'], 'GET');
  assert.equal(sockets.size, 1, 'one connection, reused');
  assert.ok(r.stats.get('health_check.attempt') >= 4);
  assert.ok(r.stats.get('health_check.success') >= 3);
  assert.equal(r.stats.get('health_check.failure'), 1);
  assert.equal(r.stats.get('health_check.network_failure'), 0);
  assert.equal(r.stats.get('health_check.healthy'), 1);
  await close(server);
});

test('HTTP/1.1: network failures count toward unhealthy_threshold; a timeout is one', async (t) => {
  let mode: 'ok' | 'hang' = 'ok';
  const server = http.createServer((_req, res) => {
    if (mode === 'ok') res.end();
    // 'hang': never answer.
  });
  const port = await listen(t, server);
  const r = rig(t, port, { timeout: ms(100), httpHealthCheck: { path: '/' }, reuseConnection: { value: false } });
  r.checker.start();
  await waitFor('first pass', () => r.results.length >= 1);
  mode = 'hang';
  await waitFor('two timeouts', () => r.results.length >= 3);
  r.checker.stop();
  assert.deepEqual(r.results.slice(0, 3), [[true, true], [false, true], [false, false]]);
  assert.equal(r.stats.get('health_check.network_failure'), 2);
  await close(server);
});

test('HTTP/1.1: expected and retriable statuses, degraded header, request headers', async (t) => {
  const statuses = [204, 503, 429];
  let lastHeaders: http.IncomingHttpHeaders = {};
  const server = http.createServer((req, res) => {
    lastHeaders = req.headers;
    const s = statuses.shift() ?? 204;
    if (s === 204) res.setHeader('x-envoy-degraded', '1');
    res.statusCode = s;
    res.end();
  });
  const port = await listen(t, server);
  const r = rig(t, port, { httpHealthCheck: {
    path: '/', host: 'app.local', expectedStatuses: [{ start: '200', end: '300' }], retriableStatuses: [{ start: '503', end: '504' }],
    requestHeadersToAdd: [{ header: { key: 'x-probe', value: 'yes' } }], requestHeadersToRemove: ['user-agent'],
  } });
  r.checker.start();
  await waitFor('three checks', () => r.results.length >= 3);
  r.checker.stop();
  // 204 is expected (healthy, degraded); 503 is retriable (counts toward the threshold of 2); 429 is not.
  assert.deepEqual(r.results.slice(0, 3), [[true, true], [false, true], [false, false]]);
  assert.equal(lastHeaders.host, 'app.local');
  assert.equal(lastHeaders['x-probe'], 'yes');
  assert.equal(lastHeaders['user-agent'], undefined);
  await close(server);
});

test('no traffic yet: after the first check the next waits no_traffic_interval, not interval', async (t) => {
  let requests = 0;
  const server = http.createServer((_req, res) => { requests++; res.end(); });
  const port = await listen(t, server);
  const r = rig(t, port, { interval: ms(10), noTrafficInterval: ms(400), httpHealthCheck: { path: '/' } }, { traffic: false });
  r.checker.start();
  await waitFor('first check', () => r.results.length >= 1);
  await new Promise((res) => setTimeout(res, 150));
  assert.equal(requests, 1, 'a 10 ms interval would have checked a dozen times');
  // Traffic starts: the interval after the pending no-traffic wait is the normal one.
  r.host.connectionOpened();
  await waitFor('checks at the normal interval', () => requests >= 4, 3000);
  r.checker.stop();
  await close(server);
});

test('HTTP/2 (codec_client_type HTTP2): :authority, :scheme, 200 vs 503, one session', async (t) => {
  let status = 200;
  const seen: http2.IncomingHttpHeaders[] = [];
  let sessions = 0;
  const server = http2.createServer();
  server.on('session', () => { sessions++; });
  server.on('stream', (stream, headers) => {
    seen.push(headers);
    stream.respond({ ':status': status });
    stream.end();
  });
  const port = await listen(t, server);
  const r = rig(t, port, { httpHealthCheck: { path: '/h2', codecClientType: 'HTTP2' } });
  r.checker.start();
  await waitFor('healthy', () => r.results.length >= 1);
  status = 503;
  await waitFor('unhealthy', () => r.results.some(([ok]) => !ok));
  r.checker.stop();
  assert.deepEqual(r.results[0], [true, true]);
  assert.deepEqual(r.results.find(([ok]) => !ok), [false, false]);
  assert.equal(seen[0]?.[':authority'], 'cds_ingress_m_app_http_8080');
  assert.equal(seen[0]?.[':scheme'], 'http');
  assert.equal(seen[0]?.[':path'], '/h2');
  assert.equal(seen[0]?.['user-agent'], 'Envoy/HC');
  assert.equal(sessions, 1);
  await close(server);
});

test('TCP: a connect is a pass; a port that closes fails after unhealthy_threshold network failures', async (t) => {
  const connections: net.Socket[] = [];
  const server = net.createServer((s) => { connections.push(s); s.on('error', () => {}); });
  const port = await listen(t, server);
  const r = rig(t, port, { tcpHealthCheck: {} });
  r.checker.start();
  await waitFor('first pass', () => r.results.length >= 2);
  await close(server);
  for (const s of connections) s.destroy();
  await waitFor('unhealthy', () => r.results.some(([, healthy]) => !healthy));
  r.checker.stop();
  const firstFailure = r.results.findIndex(([ok]) => !ok);
  assert.deepEqual(r.results.slice(firstFailure, firstFailure + 2), [[false, true], [false, false]], 'two refused connects');
  assert.ok(r.results.slice(0, firstFailure).every(([ok, healthy]) => ok && healthy));
});

test('TCP with send/receive payloads', async (t) => {
  const server = net.createServer((s) => {
    // The answer in two segments: the receive payload is matched across reads.
    s.on('data', (d) => {
      if (!d.toString().includes('PING')) return;
      s.write('+PO');
      setTimeout(() => s.write('NG\r\n'), 5);
    });
    s.on('error', () => {});
  });
  const port = await listen(t, server);
  const r = rig(t, port, { tcpHealthCheck: { send: { text: Buffer.from('PING\r\n').toString('hex') }, receive: [{ text: Buffer.from('PONG').toString('hex') }] } });
  r.checker.start();
  await waitFor('two passes', () => r.results.length >= 2);
  r.checker.stop();
  assert.deepEqual(r.results.slice(0, 2), [[true, true], [true, true]]);
  await close(server);
  assert.equal(payloadMatches([Buffer.from('a'), Buffer.from('c')], Buffer.from('abc')), true);
  assert.equal(payloadMatches([Buffer.from('c'), Buffer.from('a')], Buffer.from('abc')), false);
});

// grpc.health.v1.Health, by hand: HealthCheckRequest { string service = 1 }, HealthCheckResponse { ServingStatus status = 1 }.
function healthService(statusOf: (service: string) => number | undefined, metadata: grpc.Metadata[], authorities: string[] = []): { server: grpc.Server; start(): Promise<number> } {
  const server = new grpc.Server();
  // An object, as a protobuf deserializer gives (grpc-js takes a falsy request for a missing one).
  const decodeRequest = (b: Buffer) => ({ service: b.length === 0 ? '' : b.subarray(2, 2 + (b[1] as number)).toString('utf8') });
  const definition: grpc.ServiceDefinition = {
    Check: {
      path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, originalName: 'Check',
      requestSerialize: (r: { service: string }) => Buffer.from(r.service), requestDeserialize: decodeRequest,
      responseSerialize: (status: number) => (status === 0 ? Buffer.alloc(0) : Buffer.from([0x08, status])), responseDeserialize: (b: Buffer) => b[1] ?? 0,
    },
  };
  server.addService(definition, {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, number>, callback: grpc.sendUnaryData<number>) => {
      metadata.push(call.metadata);
      authorities.push(call.getHost());
      const status = statusOf(call.request.service);
      if (status === undefined) callback({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      else callback(null, status);
    },
  });
  return {
    server,
    start: () => new Promise((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p)))),
  };
}

test('gRPC: grpc.health.v1.Health/Check against @grpc/grpc-js; SERVING is healthy, NOT_SERVING unhealthy at once', async (t) => {
  const script = [1, 1, 2, 1, 1]; // SERVING, SERVING, NOT_SERVING, SERVING…
  const metadata: grpc.Metadata[] = [];
  const authorities: string[] = [];
  const g = healthService((service) => (service === '' ? script.shift() ?? 1 : undefined), metadata, authorities);
  t.after(() => g.server.forceShutdown());
  const port = await g.start();
  const r = rig(t, port, { grpcHealthCheck: {} });
  r.checker.start();
  await waitFor('five checks', () => r.results.length >= 5);
  r.checker.stop();
  assert.deepEqual(r.results.slice(0, 5), [[true, true], [true, true], [false, false], [true, false], [true, true]],
    'NOT_SERVING: unhealthy without waiting for unhealthy_threshold; healthy_threshold 2 to return');
  assert.equal(metadata[0]?.get('user-agent')[0]?.toString().startsWith('Envoy/HC'), true);
  assert.equal(authorities[0], 'cds_ingress_m_app_http_8080', ':authority: the cluster name');
});

test('gRPC: a named service, :authority, and an unknown service (NOT_FOUND) is unhealthy', async (t) => {
  const metadata: grpc.Metadata[] = [];
  const authorities: string[] = [];
  const g = healthService((service) => (service === 'colors.Color' ? 1 : undefined), metadata, authorities);
  t.after(() => g.server.forceShutdown());
  const port = await g.start();
  const ok = rig(t, port, { grpcHealthCheck: { serviceName: 'colors.Color', authority: 'color.local', initialMetadata: [{ header: { key: 'x-mesh', value: 'm' } }] } });
  ok.checker.start();
  await waitFor('checked', () => ok.results.length >= 1);
  ok.checker.stop();
  assert.deepEqual(ok.results[0], [true, true]);
  assert.equal(metadata[0]?.get('x-mesh')[0], 'm');
  assert.equal(authorities[0], 'color.local');
  const unknown = rig(t, port, { grpcHealthCheck: { serviceName: 'other.Service' } });
  // First result: the host starts unhealthy and stays so.
  unknown.checker.start();
  await waitFor('checked', () => unknown.results.length >= 1);
  unknown.checker.stop();
  assert.deepEqual(unknown.results[0], [false, false]);
  g.server.forceShutdown();
  // The hand-made codec.
  assert.deepEqual(grpcHealthRequestFrame(''), Buffer.from([0, 0, 0, 0, 0]));
  assert.deepEqual(grpcHealthRequestFrame('ab'), Buffer.from([0, 0, 0, 0, 4, 0x0a, 2, 0x61, 0x62]));
  assert.equal(grpcHealthStatus(Buffer.from([0, 0, 0, 0, 2, 0x08, 1])), 1);
  assert.equal(grpcHealthStatus(Buffer.from([0, 0, 0, 0, 0])), 0);
  assert.equal(grpcHealthStatus(Buffer.from([0, 0, 0, 0, 3, 0x08, 1])), undefined);
});

test('HTTP/2 over TLS through an injected dialer (the cluster\'s transport socket), :scheme https, ALPN h2', async (t) => {
  const pki = await makeTestPki();
  const seen: http2.IncomingHttpHeaders[] = [];
  const server = http2.createSecureServer({ cert: pki.server.certPem, key: pki.server.keyPem });
  server.on('stream', (stream, headers) => {
    seen.push(headers);
    stream.respond({ ':status': 200 });
    stream.end();
  });
  const port = await listen(t, server);
  const alpn: (readonly string[])[] = [];
  const dialTls: Dial = async (target, signal) => {
    alpn.push(target.alpnProtocols);
    const tcp = await dialTcp(target, signal);
    return new Promise((resolve, reject) => {
      const s = tls.connect({ socket: tcp, ca: pki.caPem, servername: 'colorteller.mesh.local', ALPNProtocols: [...target.alpnProtocols] });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
  };
  const r = rig(t, port, { httpHealthCheck: { path: '/tls', codecClientType: 'HTTP2' } }, { dial: dialTls, secure: true });
  r.checker.start();
  await waitFor('two passes', () => r.results.length >= 2);
  r.checker.stop();
  assert.deepEqual(r.results.slice(0, 2), [[true, true], [true, true]]);
  assert.equal(seen[0]?.[':scheme'], 'https');
  assert.deepEqual(alpn, [['h2']], 'one TLS connection, offering h2');
  await close(server);
});

test('with outlier detection: a passing health check returns an ejected host', async (t) => {
  const server = http.createServer((_req, res) => res.end());
  const port = await listen(t, server);
  const r = rig(t, port, { interval: ms(50), httpHealthCheck: { path: '/' } });
  const od = new OutlierDetector(r.set, { ...compileCluster({ name: 'x', outlierDetection: { consecutive_5xx: { value: 1 }, maxEjectionPercent: { value: 100 } } }).outlierDetection! }, { healthChecks: r.checker });
  r.checker.start();
  await waitFor('healthy', () => r.results.length >= 1);
  od.reportHttpStatus(r.host, 500);
  assert.equal(r.host.ejected, true);
  await waitFor('returned by the next check', () => !r.host.ejected);
  r.checker.stop();
  od.stop();
  await close(server);
});

test('hosts that come and go: sessions follow membership; health-check-disabled endpoints are not checked', async (t) => {
  let requests = 0;
  const server = http.createServer((_req, res) => { requests++; res.end(); });
  const port = await listen(t, server);
  const spec = compileCluster({ name: 'eds', type: 'EDS', edsClusterConfig: { edsConfig: { ads: {} } }, healthChecks: [{ timeout: ms(500), interval: ms(20), noTrafficInterval: ms(20), unhealthyThreshold: { value: 1 }, healthyThreshold: { value: 1 }, httpHealthCheck: { path: '/' } }] });
  const set = new HostSet(spec);
  const checker = new HealthChecker(set, spec.healthCheck!);
  t.after(() => checker.stop());
  let ready = false;
  void checker.ready.then(() => { ready = true; });
  checker.start();
  set.setEndpoints([
    { address: '127.0.0.1', port, weight: 1, healthStatus: 'UNKNOWN' },
    { address: '127.0.0.2', port, weight: 1, healthStatus: 'UNKNOWN', healthCheck: { disabled: true } },
  ]);
  await waitFor('ready after the first round', () => ready);
  const [checked, unchecked] = set.hosts as [Host, Host];
  assert.equal(checked.failedActiveHealthCheck, false);
  assert.equal(unchecked.failedActiveHealthCheck, false, 'not health checked: never marked failed');
  // Removed by EDS: the host without health checks goes at once; the passing one stays until it fails.
  set.setEndpoints([]);
  assert.deepEqual(set.hosts, [checked]);
  assert.equal(checked.pendingRemoval, true);
  await close(server);
  await waitFor('removed once its check fails', () => set.hosts.length === 0);
  assert.ok(requests >= 1);
  checker.stop();
});

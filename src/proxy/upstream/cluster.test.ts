// UpstreamCluster: a translated cluster with health checks and outlier detection, wired and warmed against a
// real local server.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { UpstreamCluster } from './cluster.ts';
import { compileCluster } from './compile.ts';
import { StatsCounter } from './stats.ts';

test('a cluster warms after its first health checks, balances, ejects, and stops cleanly', async (t) => {
  const server = http.createServer((_req, res) => res.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const { port } = server.address() as AddressInfo;
  const spec = compileCluster({
    name: 'cds_ingress_m_app_http_8080', type: 'STATIC', connectTimeout: { seconds: '1' },
    loadAssignment: { endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } }] }] },
    healthChecks: [{ timeout: { seconds: '1' }, interval: { seconds: '5' }, unhealthyThreshold: { value: 2 }, healthyThreshold: { value: 2 }, httpHealthCheck: { path: '/ping' } }],
    outlierDetection: { consecutive_5xx: { value: 2 }, maxEjectionPercent: { value: 100 } },
    circuitBreakers: { thresholds: [{ maxRequests: { value: 1 } }] },
  });
  const stats = new StatsCounter();
  const cluster = new UpstreamCluster(spec, { stats: stats.sink });
  t.after(() => cluster.stop());
  cluster.start();
  await Promise.race([cluster.ready, new Promise((_, reject) => setTimeout(() => reject(new Error('not warm in 3 s')), 3000))]);
  const host = cluster.hosts.pick();
  assert.ok(host);
  assert.equal(host.health, 'healthy');
  assert.equal(stats.get('health_check.success'), 1);
  cluster.outlierDetector?.reportHttpStatus(host, 500);
  cluster.outlierDetector?.reportHttpStatus(host, 502);
  assert.equal(host.ejected, true);
  assert.equal(stats.get('outlier_detection.ejections_active'), 1);
  assert.ok(cluster.circuitBreakers.default.tryAcquire('requests'));
  assert.equal(cluster.circuitBreakers.default.tryAcquire('requests'), false);
  assert.equal(stats.get('upstream_rq_pending_overflow'), 1);
});

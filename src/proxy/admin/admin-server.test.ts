// The admin server over real HTTP on 127.0.0.1, asked the way the App Mesh guides and operators ask Envoy:
// `curl -s host:9901/stats | grep ssl.handshake`, Prometheus scrapes, /ready probes, POSTs to drain.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { createRootCa, issueLeaf } from '../../pki/issue.ts';
import { exportPrivateKeyPem, generateKeyPair } from '../../pki/keys.ts';
import { toPem } from '../../pki/pem.ts';
import { type AdminServer, createAdminServer, type ServerState } from './admin-server.ts';
import { formatCerts, type TlsContextCerts } from './certs.ts';
import { clusterStatPrefix, listenerStatPrefix, StatsStore } from './stats.ts';

const run = promisify(execFile);
const MESH_CLUSTER = 'cds_egress_ColorApp-MutalTLS_colorteller-vn_http_9080';
const STARTED = Date.UTC(2026, 0, 1);

/** Runs a shell pipeline; resolves with its stdout and exit status (grep exits 1 when nothing matches). */
async function sh(command: string): Promise<{ stdout: string; code: number }> {
  try {
    const { stdout } = await run('sh', ['-c', command], { timeout: 10_000 });
    return { stdout, code: 0 };
  } catch (e) {
    const err = e as { stdout?: string; code?: number };
    return { stdout: err.stdout ?? '', code: typeof err.code === 'number' ? err.code : -1 };
  }
}

let server: AdminServer;
let base: string;
let port: number;
let state: ServerState = 'PRE_INITIALIZING';
const clock = STARTED + 42_500;
let quits = 0;
let quitSeen: () => void = () => {};
const errors: string[] = [];
let tls: TlsContextCerts[] = [];
let keyPem = '';
const stats = new StatsStore();

before(async () => {
  const listener = stats.scope(listenerStatPrefix('0.0.0.0', 15000));
  listener.counter('ssl.handshake').inc(3);
  listener.counter('ssl.no_certificate');
  listener.counter('ssl.fail_verify_no_cert').inc(208);
  listener.counter('downstream_cx_total').inc(211);
  const cluster = stats.scope(clusterStatPrefix(MESH_CLUSTER));
  cluster.counter('ssl.fail_verify_san').inc(49);
  cluster.counter('upstream_rq_2xx').inc(7);
  cluster.histogram('upstream_rq_time').record(1);
  stats.gauge('control_plane.connected_state').set(1);

  const caKeys = await generateKeyPair('ec-p256');
  const ca = await createRootCa(caKeys, { commonName: 'mesh root', notBefore: new Date(STARTED - 86_400_000), notAfter: new Date(STARTED + 3650 * 86_400_000), pathLength: 0 });
  const leafKeys = await generateKeyPair('ec-p256');
  const leaf = await issueLeaf({ publicKey: leafKeys.publicKey, issuerCert: ca, issuerKeys: caKeys, uris: ['spiffe://mesh.local/colorteller'], dnsNames: [], notBefore: new Date(STARTED), notAfter: new Date(STARTED + 86_400_000) });
  tls = [{ caCert: [{ pem: toPem(ca) }], certChain: [{ pem: toPem(leaf) }] }];
  keyPem = await exportPrivateKeyPem(leafKeys);

  server = createAdminServer({
    stats,
    ready: () => state,
    configDump: () => ({ configs: [{ '@type': 'type.googleapis.com/envoy.admin.v3.SecretsConfigDump', dynamic_active_secrets: [{ name: 'spiffe://mesh.local/colorteller', secret: { tls_certificate: { certificate_chain: { inline_string: toPem(leaf) }, private_key: { inline_string: keyPem } } } }] }] }),
    certs: () => formatCerts(tls, clock),
    clusters: () => `${MESH_CLUSTER}::10.0.0.7:9080::health_flags::healthy\nstatic_cluster_sds_unix_socket::/tmp/sds.sock::health_flags::healthy\n`,
    onQuit: () => {
      quits++;
      quitSeen();
    },
    onError: (path) => errors.push(path),
    startedAt: STARTED,
    now: () => clock,
    histogramFlushMs: 25,
  });
  port = await server.listen('127.0.0.1', 0);
  base = `http://127.0.0.1:${port}`;
});

after(() => server.close());

async function get(path: string, init?: RequestInit): Promise<{ status: number; text: string; type: string | null }> {
  const res = await fetch(base + path, init);
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') };
}

describe('/stats as the walkthroughs read it', () => {
  test('curl -s host:port/stats | grep ssl.handshake', async () => {
    const r = await sh(`curl -s ${base}/stats | grep ssl.handshake`);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'listener.0.0.0.0_15000.ssl.handshake: 3\n');
    assert.equal((await sh(`curl -s ${base}/stats | grep ssl.fail_verify_san`)).stdout, `cluster.${MESH_CLUSTER}.ssl.fail_verify_san: 49\n`);
    assert.equal((await sh(`curl -s ${base}/stats | grep ssl.fail_verify_no_cert`)).stdout, 'listener.0.0.0.0_15000.ssl.fail_verify_no_cert: 208\n');
    assert.equal((await sh(`curl -s ${base}/stats | grep ssl.no_certificate`)).stdout, 'listener.0.0.0.0_15000.ssl.no_certificate: 0\n');
  });

  test('a stat that does not exist yet greps to nothing, as before the first TLS connection', async () => {
    const r = await sh(`curl -s ${base}/stats | grep ssl.session_reused`);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
  });

  test('filter (a regular expression), usedonly, and the server\'s own gauges', async () => {
    const r = await get('/stats?filter=%5Elistener%5C..*ssl%5C.(handshake%7Cno_certificate)%24');
    assert.equal(r.status, 200);
    assert.equal(r.type, 'text/plain; charset=UTF-8');
    assert.equal(r.text, 'listener.0.0.0.0_15000.ssl.handshake: 3\nlistener.0.0.0.0_15000.ssl.no_certificate: 0\n');
    const used = await get('/stats?usedonly&filter=ssl');
    assert.doesNotMatch(used.text, /no_certificate/);
    assert.match(used.text, /ssl\.handshake: 3/);
    const server = await get('/stats?filter=^server\\.');
    assert.match(server.text, /^server\.live: 0\nserver\.state: 2\nserver\.uptime: 42\n$/);
  });

  test('a bad filter is a 400, as Envoy answers a bad RE2 regex', async () => {
    assert.deepEqual(await get('/stats?filter=(unclosed'), { status: 400, text: 'Invalid re2 regex\n', type: 'text/plain; charset=UTF-8' });
    assert.equal((await get(`/stats?filter=${encodeURIComponent('(a+)+$')}`)).status, 400);
    assert.equal((await get(`/stats?filter=${'x'.repeat(2000)}`)).status, 400);
    assert.equal((await get('/stats?format=yaml')).status, 400);
  });

  test('format=json', async () => {
    const r = await get('/stats?format=json&filter=upstream');
    assert.equal(r.type, 'application/json');
    const doc = JSON.parse(r.text);
    assert.deepEqual(doc.stats[0], { name: `cluster.${MESH_CLUSTER}.upstream_rq_2xx`, value: 7 });
    assert.equal(doc.stats[1].histograms.computed_quantiles[0].name, `cluster.${MESH_CLUSTER}.upstream_rq_time`);
    assert.equal(doc.stats[1].histograms.computed_quantiles[0].values[0].cumulative, 1);
  });

  test('histogram lines, and the interval column once a flush has happened', async () => {
    const r = await sh(`curl -s ${base}/stats | grep upstream_rq_time`);
    assert.match(r.stdout, new RegExp(`^cluster\\.${MESH_CLUSTER}\\.upstream_rq_time: P0\\((nan|1),1\\) P25\\((nan|1\\.025),1\\.025\\) .* P100\\((nan|1\\.1),1\\.1\\)\\n$`));
    stats.histogram(`cluster.${MESH_CLUSTER}.upstream_rq_time`).record(1);
    // Another histogram, with a sample in every interval, so a busy machine's slow poll cannot miss the one
    // interval that had it (and the counts other tests expect stay as they are).
    const h = stats.histogram(`cluster.${MESH_CLUSTER}.upstream_cx_length_ms`);
    for (let i = 0; i < 200; i++) {
      h.record(1);
      const line = (await get('/stats?filter=upstream_cx_length_ms')).text;
      if (line.includes('P0(1,1)')) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.fail('the interval column never filled in');
  });
});

describe('/stats/prometheus', () => {
  test('Envoy\'s names, labels and types, in valid exposition lines', async () => {
    const r = await sh(`curl -s ${base}/stats/prometheus`);
    assert.equal(r.code, 0);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    const sample = /^[a-zA-Z_:][a-zA-Z0-9_:]*\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*)?\} (?:[+-]?\d+(?:\.\d+)?(?:e[+-]?\d+)?|[+-]Inf|NaN)$/;
    for (const line of lines) assert.ok(line.startsWith('# TYPE ') || sample.test(line), line);
    assert.ok(lines.includes('# TYPE envoy_listener_ssl_handshake counter'));
    assert.ok(lines.includes('envoy_listener_ssl_handshake{envoy_listener_address="0.0.0.0_15000"} 3'));
    assert.ok(lines.includes(`envoy_cluster_ssl_fail_verify_san{envoy_cluster_name="${MESH_CLUSTER}"} 49`));
    assert.ok(lines.includes(`envoy_cluster_upstream_rq_xx{envoy_response_code_class="2",envoy_cluster_name="${MESH_CLUSTER}"} 7`));
    assert.ok(lines.includes('# TYPE envoy_server_live gauge'));
    assert.ok(lines.includes('# TYPE envoy_cluster_upstream_rq_time histogram'));
    assert.ok(lines.includes(`envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="${MESH_CLUSTER}",le="+Inf"} 2`));
    assert.equal(r.stdout, (await get('/stats?format=prometheus')).text);
  });

  test('filter and usedonly', async () => {
    const r = await get('/stats/prometheus?usedonly&filter=ssl');
    assert.ok(r.text.includes('envoy_listener_ssl_handshake'));
    assert.ok(!r.text.includes('no_certificate'));
    assert.ok(!r.text.includes('server_live'));
  });
});

describe('/ready and health checks', () => {
  test('PRE_INITIALIZING → INITIALIZING → LIVE, failing and passing health checks', async () => {
    state = 'PRE_INITIALIZING';
    assert.deepEqual(await get('/ready'), { status: 503, text: 'PRE_INITIALIZING\n', type: 'text/plain; charset=UTF-8' });
    state = 'INITIALIZING';
    assert.equal((await get('/ready')).text, 'INITIALIZING\n');
    state = 'LIVE';
    assert.deepEqual(await get('/ready'), { status: 200, text: 'LIVE\n', type: 'text/plain; charset=UTF-8' });
    assert.equal((await sh(`curl -s -o /dev/null -w '%{http_code}' ${base}/ready`)).stdout, '200');

    assert.deepEqual(await get('/healthcheck/fail', { method: 'POST' }), { status: 200, text: 'OK\n', type: 'text/plain; charset=UTF-8' });
    assert.deepEqual(await get('/ready'), { status: 503, text: 'DRAINING\n', type: 'text/plain; charset=UTF-8' });
    assert.equal(server.state(), 'DRAINING');
    assert.equal((await get('/stats?filter=^server\\.(live|state)')).text, 'server.live: 0\nserver.state: 1\n');
    assert.equal(JSON.parse((await get('/server_info')).text).state, 'DRAINING');

    assert.equal((await sh(`curl -s -X POST ${base}/healthcheck/ok`)).stdout, 'OK\n');
    assert.equal((await get('/ready')).status, 200);
    assert.equal((await get('/stats?filter=^server\\.(live|state)')).text, 'server.live: 1\nserver.state: 0\n');
  });

  test('a proxy that is still initializing stays so after /healthcheck/ok', async () => {
    state = 'INITIALIZING';
    await get('/healthcheck/ok', { method: 'POST' });
    assert.equal((await get('/ready')).text, 'INITIALIZING\n');
    state = 'LIVE';
  });
});

describe('methods, paths and bounds', () => {
  test('state-changing endpoints refuse GET with Envoy\'s 405, and change nothing', async () => {
    state = 'LIVE';
    for (const path of ['/healthcheck/fail', '/healthcheck/ok', '/quitquitquit']) {
      assert.deepEqual(await get(path), { status: 405, text: 'Method GET not allowed, POST required.\n', type: 'text/plain; charset=UTF-8' }, path);
    }
    assert.equal((await get('/ready')).status, 200);
    assert.equal(quits, 0);
    assert.equal((await sh(`curl -s -X PUT ${base}/quitquitquit`)).stdout, 'Method PUT not allowed, POST required.\n');
  });

  test('POST /quitquitquit answers, then asks the proxy to exit', async () => {
    const quit = new Promise<void>((resolve) => {
      quitSeen = resolve;
    });
    assert.deepEqual(await get('/quitquitquit', { method: 'POST' }), { status: 200, text: 'OK\n', type: 'text/plain; charset=UTF-8' });
    await quit;
    assert.equal(quits, 1);
  });

  test('unknown paths are a 404 with the list of commands', async () => {
    const r = await get('/nope');
    assert.equal(r.status, 404);
    assert.match(r.text, /^invalid path\. admin commands are:\n/);
    assert.equal((await get('/stats/')).status, 404, 'paths match exactly, as in Envoy');
  });

  test('/help lists every route, marking the POST ones', async () => {
    const r = await get('/help');
    for (const path of ['/certs', '/clusters', '/config_dump', '/healthcheck/fail (POST)', '/healthcheck/ok (POST)', '/help', '/quitquitquit (POST)', '/ready', '/server_info', '/stats', '/stats/prometheus']) {
      assert.ok(r.text.includes(`  ${path}: `), path);
    }
  });

  test('request bodies are not read: a large one cuts the connection, the server carries on', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const req = request(`${base}/healthcheck/ok`, { method: 'POST', headers: { 'content-length': String(8 * 1024 * 1024) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(`answered ${res.statusCode}`));
        res.on('error', () => resolve('cut'));
      });
      req.on('error', () => resolve('cut'));
      const chunk = Buffer.alloc(64 * 1024, 120);
      let sent = 0;
      const pump = (): void => {
        while (sent < 8 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    assert.match(outcome, /^(cut|answered 200)$/);
    assert.equal((await get('/ready')).status, 200);
  });
});

describe('information endpoints', () => {
  test('/server_info', async () => {
    const r = await get('/server_info');
    assert.equal(r.type, 'application/json');
    assert.deepEqual(JSON.parse(r.text), { version: 'keymesh', state: 'LIVE', hot_restart_version: 'disabled', uptime_current_epoch: '42s', uptime_all_epochs: '42s' });
  });

  test('/config_dump never shows the private key', async () => {
    const r = await get('/config_dump');
    assert.equal(r.status, 200);
    assert.doesNotMatch(r.text, /PRIVATE KEY/);
    const doc = JSON.parse(r.text);
    const secret = doc.configs[0].dynamic_active_secrets[0].secret.tls_certificate;
    assert.deepEqual(secret.private_key, { inline_string: '[redacted]' });
    assert.match(secret.certificate_chain.inline_string, /BEGIN CERTIFICATE/);
  });

  test('/certs in Envoy\'s shape', async () => {
    const doc = JSON.parse((await get('/certs')).text);
    assert.equal(doc.certificates.length, 1);
    const [chain] = doc.certificates[0].cert_chain;
    assert.equal(chain.path, '<inline>');
    assert.deepEqual(chain.subject_alt_names, [{ uri: 'spiffe://mesh.local/colorteller' }]);
    assert.equal(chain.days_until_expiration, '0');
    assert.equal(chain.valid_from, '2026-01-01T00:00:00Z');
    assert.equal(doc.certificates[0].ca_cert[0].days_until_expiration, '3649');
  });

  test('/clusters', async () => {
    const r = await sh(`curl -s ${base}/clusters | grep health_flags`);
    assert.equal(r.stdout.split('\n')[0], `${MESH_CLUSTER}::10.0.0.7:9080::health_flags::healthy`);
  });

  test('a failing callback is a 500 without details; the error goes to onError', async () => {
    const saved = tls;
    tls = [{ certChain: [{ pem: keyPem, path: '/keys/key.pem' }] }];
    try {
      assert.deepEqual(await get('/certs'), { status: 500, text: 'internal error\n', type: 'text/plain; charset=UTF-8' });
      assert.deepEqual(errors, ['/certs']);
    } finally {
      tls = saved;
    }
  });
});

describe('lifecycle', () => {
  test('listen twice is refused; close frees the port; a second server can bind it', async () => {
    const s = createAdminServer({ stats: new StatsStore(), ready: () => 'LIVE', configDump: () => ({}), certs: () => ({ certificates: [] }), clusters: () => '' });
    const p = await s.listen('127.0.0.1', 0);
    await assert.rejects(s.listen('127.0.0.1', 0));
    assert.equal((await fetch(`http://127.0.0.1:${p}/ready`)).status, 200);
    await s.close();
    await assert.rejects(fetch(`http://127.0.0.1:${p}/ready`));
    const again = createAdminServer({ stats: new StatsStore(), ready: () => 'LIVE', configDump: () => ({}), certs: () => ({ certificates: [] }), clusters: () => '' });
    assert.equal(await again.listen('127.0.0.1', p), p);
    await again.close();
    await s.close();
  });
});

// The stats store and its three renderings: names, scopes and their lifetime, histogram quantiles on known data,
// Envoy's tag extraction, and Prometheus output that follows the text exposition format line by line.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { InternalError } from '../../errors/index.ts';
import { DEFAULT_BUCKETS } from './histogram.ts';
import { formatNumber, quantileSummary, renderJson, renderPrometheus, renderText } from './render.ts';
import { clusterStatPrefix, httpStatPrefix, listenerStatPrefix, sanitizeStatName, StatsStore } from './stats.ts';
import { extractTags } from './tags.ts';

const MESH_CLUSTER = 'cds_egress_ColorApp-MutalTLS_colorteller-vn_http_9080';

/** The proxy's typical stats: an inbound listener with TLS, an egress cluster, an HTTP connection manager. */
function sampleStore(): StatsStore {
  const stats = new StatsStore();
  const listener = stats.scope(listenerStatPrefix('0.0.0.0', 15000));
  listener.counter('ssl.handshake').inc(3);
  listener.counter('ssl.no_certificate');
  listener.counter('ssl.fail_verify_no_cert').inc(208);
  listener.counter('downstream_cx_total').inc(211);
  listener.gauge('downstream_cx_active').set(2);
  listener.counter('ssl.ciphers.TLS_AES_128_GCM_SHA256').inc(3);
  listener.counter('ssl.versions.TLSv1.3').inc(3);
  const cluster = stats.scope(clusterStatPrefix(MESH_CLUSTER));
  cluster.counter('ssl.fail_verify_san').inc(49);
  cluster.counter('upstream_rq_2xx').inc(10);
  cluster.counter('upstream_rq_200').inc(10);
  cluster.counter('upstream_cx_total').inc(5);
  cluster.histogram('upstream_rq_time').record(1);
  const http = stats.scope(httpStatPrefix('ingress'));
  http.counter('downstream_rq_total').inc(12);
  http.histogram('downstream_rq_time');
  stats.gauge('control_plane.connected_state').set(1);
  return stats;
}

describe('names', () => {
  test('prefixes are built like Envoy builds them', () => {
    assert.equal(listenerStatPrefix('0.0.0.0', 15000), 'listener.0.0.0.0_15000.');
    assert.equal(listenerStatPrefix('::', 15000), 'listener.[__]_15000.');
    assert.equal(listenerStatPrefix('[::1]', 8080), 'listener.[__1]_8080.');
    assert.equal(clusterStatPrefix('cds_egress_my-mesh_my-backend-node_http_9080'), 'cluster.cds_egress_my-mesh_my-backend-node_http_9080.');
    assert.equal(httpStatPrefix('ingress'), 'http.ingress.');
    assert.equal(sanitizeStatName('unix://var/run/sds.sock'), 'unix_var/run/sds.sock');
  });

  test('handles are looked up once and counting is a field add on them', () => {
    const stats = new StatsStore();
    const scope = stats.scope('listener.0.0.0.0_15000');
    const handshake = scope.counter('ssl.handshake');
    assert.equal(handshake.name, 'listener.0.0.0.0_15000.ssl.handshake');
    assert.equal(scope.counter('ssl.handshake'), handshake);
    assert.equal(stats.get('listener.0.0.0.0_15000.ssl.handshake'), handshake);
    assert.equal(stats.value('listener.0.0.0.0_15000.ssl.handshake'), 0);
    assert.equal(stats.value('listener.0.0.0.0_15000.ssl.nope'), undefined);
    handshake.inc();
    handshake.inc(2);
    assert.equal(handshake.value, 3);
    const active = scope.gauge('downstream_cx_active');
    active.inc();
    active.inc();
    active.dec();
    assert.equal(active.value, 1);
    assert.equal(scope.scope('ssl').counter('handshake'), handshake, 'a nested scope names the same stat');
  });

  test('a name is one kind of stat, and names stay parseable', () => {
    const stats = new StatsStore();
    stats.counter('server.x');
    assert.throws(() => stats.gauge('server.x'), InternalError);
    for (const bad of ['', 'a..b', '.a', 'a.', 'a b', 'a:b', 'a\nb']) assert.throws(() => stats.counter(bad), InternalError, JSON.stringify(bad));
  });
});

describe('scopes and removal', () => {
  test('closing a scope removes its stats (and its children\'s) from /stats', () => {
    const stats = new StatsStore();
    const cluster = stats.scope('cluster.a.');
    cluster.counter('upstream_cx_total').inc();
    cluster.scope('circuit_breakers.default').gauge('cx_open').set(0);
    stats.counter('cluster_manager.cluster_removed');
    cluster.close();
    assert.equal(renderText(stats), 'cluster_manager.cluster_removed: 0\n');
    assert.equal(cluster.closed, true);
  });

  test('an updated cluster keeps its counts: the new scope holds the same stats before the old one closes', () => {
    const stats = new StatsStore();
    const v1 = stats.scope('cluster.a.');
    v1.counter('upstream_rq_total').inc(5);
    const v2 = stats.scope('cluster.a.');
    const total = v2.counter('upstream_rq_total');
    v1.close();
    total.inc();
    assert.equal(stats.get('cluster.a.upstream_rq_total')?.kind, 'counter');
    assert.match(renderText(stats), /^cluster\.a\.upstream_rq_total: 6$/m);
    v2.close();
    assert.equal(stats.get('cluster.a.upstream_rq_total'), undefined);
    const v3 = stats.scope('cluster.a.');
    assert.equal(v3.counter('upstream_rq_total').value, 0, 'a removed and re-added cluster starts from zero, as in Envoy');
  });

  test('handles outlive their scope without failing, and are no longer listed', () => {
    const stats = new StatsStore();
    const scope = stats.scope('listener.10.0.0.1_80');
    const cx = scope.counter('downstream_cx_total');
    scope.close();
    cx.inc();
    const late = scope.counter('downstream_cx_destroy');
    late.inc();
    assert.equal(late.value, 1);
    assert.equal(renderText(stats), '');
  });
});

describe('histograms', () => {
  test('one sample prints exactly what Envoy prints for it', () => {
    const stats = new StatsStore();
    const h = stats.histogram('cluster.x.upstream_rq_time');
    h.record(1);
    assert.equal(quantileSummary(h), 'P0(nan,1) P25(nan,1.025) P50(nan,1.05) P75(nan,1.075) P90(nan,1.09) P95(nan,1.095) P99(nan,1.099) P99.5(nan,1.0995) P99.9(nan,1.0999) P100(nan,1.1)');
    const big = stats.histogram('tls_inspector.bytes_processed');
    big.record(1400);
    assert.match(quantileSummary(big), /^P0\(nan,1400\) P25\(nan,1425\) P50\(nan,1450\) .* P99\(nan,1499\) .* P100\(nan,1500\)$/);
    assert.equal(quantileSummary(stats.histogram('cluster.x.upstream_cx_length_ms')), 'No recorded values');
  });

  test('percentiles of 1..10000 ms are within the bin resolution (two significant digits)', () => {
    const h = new StatsStore().histogram('http.ingress.downstream_rq_time');
    for (let v = 1; v <= 10000; v++) h.record(v);
    const [p50, p90, p99, p999] = h.quantiles([0.5, 0.9, 0.99, 0.999]);
    for (const [got, want] of [[p50, 5000], [p90, 9000], [p99, 9900], [p999, 9990]] as const) {
      assert.ok(Math.abs(got! - want) / want < 0.02, `${got} vs ${want}`);
    }
    assert.equal(h.count, 10000);
    assert.equal(h.sum, (10000 * 10001) / 2);
    const [p0, p100] = h.quantiles([0, 1]);
    assert.equal(p0, 1);
    assert.equal(p100, 11000, 'the top of the last bin, [10000, 11000)');
  });

  test('a bimodal latency shows its tail, and sub-millisecond values keep their precision', () => {
    const h = new StatsStore().histogram('cluster.x.upstream_rq_time');
    for (let i = 0; i < 990; i++) h.record(0.25);
    for (let i = 0; i < 10; i++) h.record(3000);
    const [p50, p99, p995, p100] = h.quantiles([0.5, 0.99, 0.995, 1]);
    assert.ok(p50! >= 0.25 && p50! < 0.26, String(p50));
    assert.ok(p99! <= 0.26, String(p99));
    assert.ok(p995! >= 3000 && p995! <= 3100, String(p995));
    assert.ok(p100! === 3100, String(p100));
  });

  test('the interval column covers the last flush interval; cumulative covers everything', () => {
    const stats = new StatsStore();
    const h = stats.histogram('cluster.x.upstream_rq_time');
    h.record(10);
    assert.match(quantileSummary(h), /^P0\(nan,10\)/);
    stats.flushHistograms();
    assert.match(quantileSummary(h), /^P0\(10,10\) /);
    h.record(100);
    stats.flushHistograms();
    assert.match(quantileSummary(h), /^P0\(100,10\) .* P100\(110,110\)$/);
    stats.flushHistograms();
    assert.match(quantileSummary(h), /^P0\(nan,10\) /, 'an empty interval is nan, as in Envoy');
  });

  test('zero, negative, NaN and huge samples do not break it', () => {
    const h = new StatsStore().histogram('x.y');
    h.record(0);
    h.record(-5);
    h.record(Number.NaN);
    h.record(1e300);
    h.record(Infinity);
    assert.equal(h.count, 4);
    const [p0, p100] = h.quantiles([0, 1]);
    assert.equal(p0, 0);
    assert.ok(Number.isFinite(p100));
  });

  test('Prometheus buckets are cumulative, with a sample at a bound counted in the next bucket as Envoy does', () => {
    const h = new StatsStore().histogram('x.y');
    for (const v of [0.3, 1, 7, 7, 40, 4000, 5e6]) h.record(v);
    const counts = h.buckets(DEFAULT_BUCKETS);
    assert.deepEqual(counts.slice(0, 5), [1, 1, 2, 4, 4]); // le 0.5, 1, 5, 10, 25
    assert.equal(counts.at(-1), 6, 'le 3600000: all but the 5e6 sample');
    for (let i = 1; i < counts.length; i++) assert.ok(counts[i]! >= counts[i - 1]!);
  });
});

describe('text and JSON', () => {
  test('/stats text: counters and gauges sorted together, then histograms', () => {
    const text = renderText(sampleStore());
    const lines = text.trimEnd().split('\n');
    const numeric = lines.filter((l) => !/: (P0\(|No recorded values)/.test(l));
    assert.deepEqual(numeric.map((l) => l.split(':')[0]), numeric.map((l) => l.split(':')[0]).sort());
    assert.deepEqual(lines.slice(-2).map((l) => l.split(':')[0]), [`cluster.${MESH_CLUSTER}.upstream_rq_time`, 'http.ingress.downstream_rq_time']);
    assert.ok(lines.includes('listener.0.0.0.0_15000.ssl.handshake: 3'));
    assert.ok(lines.includes('listener.0.0.0.0_15000.ssl.no_certificate: 0'));
    assert.ok(lines.includes(`cluster.${MESH_CLUSTER}.ssl.fail_verify_san: 49`));
    assert.ok(lines.includes('http.ingress.downstream_rq_time: No recorded values'));
    assert.ok(lines.includes('control_plane.connected_state: 1'));
  });

  test('filter and usedonly', () => {
    const stats = sampleStore();
    assert.equal(renderText(stats, { filter: /ssl\.handshake/ }), 'listener.0.0.0.0_15000.ssl.handshake: 3\n');
    const used = renderText(stats, { usedOnly: true });
    assert.doesNotMatch(used, /no_certificate|downstream_rq_time/);
    assert.match(used, /ssl\.handshake: 3/);
    assert.equal(renderText(stats, { filter: /^cluster\..*fail_verify/, usedOnly: true }), `cluster.${MESH_CLUSTER}.ssl.fail_verify_san: 49\n`);
    assert.equal(renderText(stats, { filter: /nothing-matches/ }), '');
  });

  test('JSON has Envoy\'s shape, NaN as null', () => {
    const doc = JSON.parse(renderJson(sampleStore())) as { stats: Record<string, any>[] };
    assert.deepEqual(doc.stats.find((s) => s.name === 'listener.0.0.0.0_15000.ssl.handshake'), { name: 'listener.0.0.0.0_15000.ssl.handshake', value: 3 });
    const last = doc.stats.at(-1)!;
    assert.deepEqual(last.histograms.supported_quantiles, [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]);
    const rq = last.histograms.computed_quantiles.find((h: any) => h.name.endsWith('upstream_rq_time'));
    assert.deepEqual(rq.values[0], { cumulative: 1, interval: null });
    assert.equal(rq.values.length, 10);
    assert.equal(JSON.parse(renderJson(new StatsStore())).stats.length, 0);
  });

  test('numbers print as Envoy\'s fmt prints doubles', () => {
    assert.equal(formatNumber(Number.NaN), 'nan');
    assert.equal(formatNumber(1.05), '1.05');
    assert.equal(formatNumber(3), '3');
    assert.equal(formatNumber(0.00001), '1e-05');
    assert.equal(formatNumber(1e16), '1e+16');
  });
});

describe('Envoy tag extraction', () => {
  const cases: [string, string, [string, string][]][] = [
    [`cluster.${MESH_CLUSTER}.upstream_rq_2xx`, 'cluster.upstream_rq_xx', [['envoy.response_code_class', '2'], ['envoy.cluster_name', MESH_CLUSTER]]],
    ['cluster.cds_egress_my-mesh_my-backend-node_http_9080.upstream_rq_503', 'cluster.upstream_rq', [['envoy.response_code', '503'], ['envoy.cluster_name', 'cds_egress_my-mesh_my-backend-node_http_9080']]],
    ['cluster.static_cluster_sds_unix_socket.ssl.fail_verify_san', 'cluster.ssl.fail_verify_san', [['envoy.cluster_name', 'static_cluster_sds_unix_socket']]],
    ['cluster.a-b_c.ssl.ciphers.ECDHE-RSA-AES128-GCM-SHA256', 'cluster.ssl.ciphers', [['cipher_suite', 'ECDHE-RSA-AES128-GCM-SHA256'], ['envoy.cluster_name', 'a-b_c']]],
    ['cluster.a.ssl.curves.X25519', 'cluster.ssl.curves', [['envoy.ssl_curve', 'X25519'], ['envoy.cluster_name', 'a']]],
    ['listener.0.0.0.0_15000.ssl.handshake', 'listener.ssl.handshake', [['envoy.listener_address', '0.0.0.0_15000']]],
    ['listener.[__]_15000.downstream_cx_total', 'listener.downstream_cx_total', [['envoy.listener_address', '[__]_15000']]],
    ['listener.0.0.0.0_15000.ssl.ciphers.TLS_AES_128_GCM_SHA256', 'listener.ssl.ciphers', [['envoy.ssl_cipher', 'TLS_AES_128_GCM_SHA256'], ['envoy.listener_address', '0.0.0.0_15000']]],
    ['listener.0.0.0.0_15000.ssl.versions.TLSv1.3', 'listener.ssl.versions', [['envoy.ssl_version', 'TLSv1.3'], ['envoy.listener_address', '0.0.0.0_15000']]],
    ['listener.0.0.0.0_15000.http.ingress.downstream_rq_2xx', 'listener.http.downstream_rq_xx', [['envoy.response_code_class', '2'], ['envoy.http_conn_manager_prefix', 'ingress'], ['envoy.listener_address', '0.0.0.0_15000']]],
    ['http.ingress.downstream_rq_total', 'http.downstream_rq_total', [['envoy.http_conn_manager_prefix', 'ingress']]],
    ['http.ingress.rds.rds_ingress_http_8080.update_success', 'http.rds.update_success', [['envoy.rds_route_config', 'rds_ingress_http_8080'], ['envoy.http_conn_manager_prefix', 'ingress']]],
    ['tcp.ingress_tcp_9000.downstream_cx_total', 'tcp.downstream_cx_total', [['envoy.tcp_prefix', 'ingress_tcp_9000']]],
    ['listener.admin.downstream_cx_total', 'listener.admin.downstream_cx_total', []],
    ['server.live', 'server.live', []],
    ['control_plane.connected_state', 'control_plane.connected_state', []],
    ['cluster_manager.cds.update_success', 'cluster_manager.cds.update_success', []],
  ];
  for (const [name, extracted, tags] of cases) {
    test(name, () => {
      const t = extractTags(name);
      assert.equal(t.name, extracted);
      assert.deepEqual(t.tags.map((x) => [x.name, x.value]), tags);
    });
  }
});

describe('Prometheus', () => {
  // The text exposition format, one regular expression per kind of line.
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
  const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?|[+-]Inf|NaN)';
  const SAMPLE = new RegExp(`^(${NAME})\\{((?:${LABEL}(?:,${LABEL})*)?)\\} (${VALUE})$`);
  const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram)$`);

  interface Sample { name: string; labels: Record<string, string>; value: number }

  function parse(text: string): { types: Map<string, string>; samples: Sample[] } {
    assert.ok(text.endsWith('\n'));
    const types = new Map<string, string>();
    const samples: Sample[] = [];
    let family = '';
    for (const line of text.slice(0, -1).split('\n')) {
      if (line === '') continue;
      const t = TYPE.exec(line);
      if (t) {
        assert.ok(!types.has(t[1]!), `${t[1]} typed twice: its lines must be grouped`);
        types.set(t[1]!, t[2]!);
        family = t[1]!;
        continue;
      }
      const s = SAMPLE.exec(line);
      assert.ok(s, `not a valid exposition line: ${JSON.stringify(line)}`);
      const name = s[1]!;
      const base = types.get(family) === 'histogram' ? name.replace(/_(bucket|sum|count)$/, '') : name;
      assert.equal(base, family, `${name} outside its # TYPE group`);
      const labels: Record<string, string> = {};
      for (const m of (s[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      samples.push({ name, labels, value: Number(s[3]!.replace('Inf', 'Infinity')) });
    }
    return { types, samples };
  }

  test('every line follows the exposition format, with Envoy\'s names and labels', () => {
    const { types, samples } = parse(renderPrometheus(sampleStore()));
    assert.equal(types.get('envoy_listener_ssl_handshake'), 'counter');
    assert.equal(types.get('envoy_cluster_upstream_rq_xx'), 'counter');
    assert.equal(types.get('envoy_control_plane_connected_state'), 'gauge');
    assert.equal(types.get('envoy_cluster_upstream_rq_time'), 'histogram');
    const find = (name: string) => samples.filter((s) => s.name === name);
    assert.deepEqual(find('envoy_listener_ssl_handshake'), [{ name: 'envoy_listener_ssl_handshake', labels: { envoy_listener_address: '0.0.0.0_15000' }, value: 3 }]);
    assert.deepEqual(find('envoy_cluster_ssl_fail_verify_san')[0]?.labels, { envoy_cluster_name: MESH_CLUSTER });
    assert.deepEqual(find('envoy_cluster_upstream_rq_xx')[0]?.labels, { envoy_response_code_class: '2', envoy_cluster_name: MESH_CLUSTER });
    assert.deepEqual(find('envoy_http_downstream_rq_total')[0]?.labels, { envoy_http_conn_manager_prefix: 'ingress' });
    assert.deepEqual(find('envoy_listener_ssl_versions')[0]?.labels, { envoy_ssl_version: 'TLSv1.3', envoy_listener_address: '0.0.0.0_15000' });
    assert.deepEqual(find('envoy_control_plane_connected_state'), [{ name: 'envoy_control_plane_connected_state', labels: {}, value: 1 }]);
  });

  test('histograms: buckets up to +Inf, then _sum and _count, in one group per metric', () => {
    const stats = new StatsStore();
    for (const name of ['cluster.a-1.upstream_rq_time', 'cluster.b_2.upstream_rq_time']) {
      const h = stats.histogram(name);
      for (const v of [2, 30, 30, 700]) h.record(v);
    }
    const text = renderPrometheus(stats);
    const { types, samples } = parse(text);
    assert.deepEqual([...types], [['envoy_cluster_upstream_rq_time', 'histogram']]);
    const a = samples.filter((s) => s.labels.envoy_cluster_name === 'a-1');
    const buckets = a.filter((s) => s.name.endsWith('_bucket'));
    assert.deepEqual(buckets.map((b) => b.labels.le), [...DEFAULT_BUCKETS.map(String), '+Inf']);
    assert.deepEqual(buckets.map((b) => b.value).slice(0, 8), [0, 0, 1, 1, 1, 3, 3, 3]);
    assert.equal(buckets.at(-1)?.value, 4);
    assert.deepEqual(a.filter((s) => !s.name.endsWith('_bucket')).map((s) => [s.name, s.value]), [['envoy_cluster_upstream_rq_time_sum', 762], ['envoy_cluster_upstream_rq_time_count', 4]]);
    assert.match(text, /^envoy_cluster_upstream_rq_time_bucket\{envoy_cluster_name="a-1",le="0\.5"\} 0$/m);
  });

  test('filter and usedonly apply; odd characters are sanitised and label values escaped', () => {
    const stats = sampleStore();
    const { samples } = parse(renderPrometheus(stats, { filter: /ssl/, usedOnly: true }));
    assert.ok(samples.every((s) => s.name.includes('ssl')));
    assert.ok(!samples.some((s) => s.name === 'envoy_listener_ssl_no_certificate'));
    const odd = new StatsStore();
    odd.counter('cluster.we"ird\\name.upstream_cx_total').inc();
    odd.counter('9lives.x-y').inc();
    const parsed = parse(renderPrometheus(odd));
    assert.deepEqual(parsed.samples.map((s) => [s.name, s.labels]), [['envoy_9lives_x_y', {}], ['envoy_cluster_upstream_cx_total', { envoy_cluster_name: 'we"ird\\name' }]]);
  });
});

// HostSet: round robin (plain and weighted), panic mode and degraded hosts, EDS updates that keep host state,
// Envoy's keep-while-healthy removal under active health checking, DNS (strict and logical) with an injected
// resolver and clock, ORIGINAL_DST hosts and their cleanup.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Json } from '../resources/values.ts';
import { compileCluster, type ClusterSpec, type Endpoint } from './compile.ts';
import { resolve, type Resolver } from './dns.ts';
import { HostSet, type Host } from './hosts.ts';
import { StatsCounter } from './stats.ts';
import { ManualTimers } from './timers.ts';

const flush = () => new Promise<void>((r) => setImmediate(r));
const ep = (address: string, port = 80, extra: Partial<Endpoint> = {}): Endpoint => ({ address, port, weight: 1, healthStatus: 'UNKNOWN', ...extra });
const lbEndpoint = (address: string, port = 80) => ({ endpoint: { address: { socketAddress: { address, portValue: port } } } });
const HC = { timeout: { seconds: '1' }, interval: { seconds: '1' }, unhealthyThreshold: { value: 2 }, healthyThreshold: { value: 2 }, tcpHealthCheck: {} };

function cluster(extra: Json = {}): ClusterSpec {
  return compileCluster({ name: 'c', type: 'EDS', edsClusterConfig: { edsConfig: { ads: {} } }, ...extra });
}
function staticCluster(addresses: string[], extra: Json = {}): ClusterSpec {
  return compileCluster({ name: 's', type: 'STATIC', loadAssignment: { clusterName: 's', endpoints: [{ lbEndpoints: addresses.map((a) => lbEndpoint(a)) }] }, ...extra });
}
/** A deterministic "random": 0 unless a sequence is given. */
function seq(values: number[] = [0]): () => number {
  let i = 0;
  return () => values[i++ % values.length] as number;
}
const picks = (set: HostSet, n: number) => Array.from({ length: n }, () => set.pick()?.address ?? '-');
const byAddress = (set: HostSet, address: string) => set.hosts.find((h) => h.address === address) as Host;

test('round robin over the hosts in order, from a random offset', () => {
  const set = new HostSet(staticCluster(['10.0.0.1', '10.0.0.2', '10.0.0.3']), { random: seq() });
  assert.deepEqual(picks(set, 7), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.1']);
  // Envoy's seed: another offset, same cycle.
  const other = new HostSet(staticCluster(['10.0.0.1', '10.0.0.2', '10.0.0.3']), { random: seq([1 / 2 ** 32]) });
  assert.deepEqual(picks(other, 3), ['10.0.0.2', '10.0.0.3', '10.0.0.1']);
});

test('unhealthy hosts are skipped while at least half of the hosts are available', () => {
  const stats = new StatsCounter();
  const set = new HostSet(staticCluster(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']), { random: seq(), stats: stats.sink });
  byAddress(set, '10.0.0.2').setEjected(true);
  assert.deepEqual(picks(set, 6), ['10.0.0.1', '10.0.0.3', '10.0.0.4', '10.0.0.1', '10.0.0.3', '10.0.0.4']);
  // Exactly 50 % available is not panic (Envoy: panic below the threshold).
  byAddress(set, '10.0.0.3').setActiveHealth(true);
  assert.deepEqual(new Set(picks(set, 8)), new Set(['10.0.0.1', '10.0.0.4']));
  assert.equal(stats.get('lb_healthy_panic'), 0);
  assert.equal(stats.get('membership_total'), 4);
  assert.equal(stats.get('membership_healthy'), 2);
});

test('panic: with fewer than 50 % available, every host may be chosen (and lb_healthy_panic counts it)', () => {
  const stats = new StatsCounter();
  const set = new HostSet(staticCluster(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']), { random: seq(), stats: stats.sink });
  for (const a of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) byAddress(set, a).setEjected(true);
  assert.deepEqual(picks(set, 4), ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4']);
  assert.equal(stats.get('lb_healthy_panic'), 4);
  // Back above the threshold: only the available ones.
  byAddress(set, '10.0.0.1').setEjected(false);
  assert.deepEqual(new Set(picks(set, 6)), new Set(['10.0.0.1', '10.0.0.4']));
  assert.equal(stats.get('lb_healthy_panic'), 4);
});

test('panic threshold 0 disables panic mode: no available host means no host', () => {
  const stats = new StatsCounter();
  const set = new HostSet(staticCluster(['10.0.0.1', '10.0.0.2'], { commonLbConfig: { healthyPanicThreshold: { value: 0 } } }), { random: seq(), stats: stats.sink });
  byAddress(set, '10.0.0.1').setEjected(true);
  assert.deepEqual(picks(set, 3), ['10.0.0.2', '10.0.0.2', '10.0.0.2']);
  byAddress(set, '10.0.0.2').setEjected(true);
  assert.equal(set.pick(), undefined);
  assert.equal(stats.get('upstream_cx_none_healthy'), 1);
  assert.equal(stats.get('lb_healthy_panic'), 0);
  // An empty cluster has no host either.
  assert.equal(new HostSet(cluster()).pick(), undefined);
});

test('degraded hosts get traffic only when healthy ones are too few (overprovisioning factor 1.4)', () => {
  const degraded = (addresses: string[], degradedOnes: string[], random: () => number) => {
    const set = new HostSet(cluster(), { random });
    set.setEndpoints(addresses.map((a) => ep(a, 80, { healthStatus: degradedOnes.includes(a) ? 'DEGRADED' : 'HEALTHY' })));
    return set;
  };
  // 4 healthy of 5: 4 × 1.4 / 5 ≥ 100 %: all traffic to the healthy ones.
  const a = degraded(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'], ['10.0.0.5'], seq());
  assert.ok(!picks(a, 20).includes('10.0.0.5'));
  // 3 healthy, 2 degraded: healthy 84 %, degraded 16 % (random % 100 < 84 → healthy).
  const rolls = Array.from({ length: 100 }, (_, i) => (i + 0.5) / 100);
  const b = degraded(['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'], ['10.0.0.4', '10.0.0.5'], seq(rolls));
  const share = picks(b, 1000).filter((x) => x === '10.0.0.4' || x === '10.0.0.5').length;
  assert.ok(share >= 155 && share <= 165, `degraded share ${share}/1000`);
});

test('weighted round robin (earliest deadline first) follows the weights', () => {
  const set = new HostSet(cluster(), { random: seq() });
  set.setEndpoints([ep('10.0.0.1', 80, { weight: 3 }), ep('10.0.0.2', 80, { weight: 1 })]);
  const chosen = picks(set, 8);
  assert.equal(chosen.filter((x) => x === '10.0.0.1').length, 6);
  assert.equal(chosen.filter((x) => x === '10.0.0.2').length, 2);
  // Never two light picks in a row.
  assert.ok(!chosen.join(',').includes('10.0.0.2,10.0.0.2'));
});

test('EDS updates keep the state of hosts that stay (same address:port)', () => {
  const stats = new StatsCounter();
  const set = new HostSet(cluster(), { random: seq(), stats: stats.sink });
  const changes: string[] = [];
  set.onMembershipChange((c) => changes.push(`+${c.added.map((h) => h.key).join(',')} -${c.removed.map((h) => h.key).join(',')}`));
  let ready = false;
  void set.ready.then(() => { ready = true; });
  set.setEndpoints([ep('10.0.0.1'), ep('10.0.0.2')]);
  const first = byAddress(set, '10.0.0.1');
  first.setEjected(true);
  first.connectionOpened();
  first.requestStarted();
  set.setEndpoints([ep('10.0.0.1', 80, { weight: 5 }), ep('10.0.0.3'), ep('10.0.0.1')]);
  assert.deepEqual(set.hosts.map((h) => h.key), ['10.0.0.1:80', '10.0.0.3:80']);
  const kept = byAddress(set, '10.0.0.1');
  assert.equal(kept, first, 'the same Host object');
  assert.equal(kept.ejected, true);
  assert.equal(kept.activeConnections, 1);
  assert.equal(kept.activeRequests, 1);
  assert.equal(kept.weight, 5);
  // A different port is a different host.
  set.setEndpoints([ep('10.0.0.1', 81), ep('10.0.0.3')]);
  assert.notEqual(byAddress(set, '10.0.0.1'), first);
  assert.equal(byAddress(set, '10.0.0.1').ejected, false);
  assert.deepEqual(changes, ['+10.0.0.1:80,10.0.0.2:80 -', '+10.0.0.3:80 -10.0.0.2:80', '+10.0.0.1:81 -10.0.0.1:80']);
  assert.equal(stats.get('membership_change'), 3);
  assert.equal(stats.get('membership_total'), 2);
  assert.equal(set.trafficSeen, true);
  // EDS health: an endpoint marked UNHEALTHY is not chosen.
  set.setEndpoints([ep('10.0.0.1', 81, { healthStatus: 'UNHEALTHY' }), ep('10.0.0.3'), ep('10.0.0.4')]);
  assert.ok(!picks(set, 6).includes('10.0.0.1'));
  return flush().then(() => assert.equal(ready, true));
});

test('with active health checking: new hosts start unhealthy; a removed host stays while it passes checks', () => {
  const set = new HostSet(cluster({ healthChecks: [HC] }), { random: seq() });
  set.setEndpoints([ep('10.0.0.1'), ep('10.0.0.2')]);
  assert.ok(set.hosts.every((h) => h.failedActiveHealthCheck && h.health === 'unhealthy'));
  // All unhealthy: panic, so traffic still flows (Envoy does the same until the first checks pass).
  assert.equal(set.pick()?.address, '10.0.0.1');
  byAddress(set, '10.0.0.1').setActiveHealth(false);
  byAddress(set, '10.0.0.2').setActiveHealth(false);
  set.setEndpoints([ep('10.0.0.2')]);
  const leaving = byAddress(set, '10.0.0.1');
  assert.equal(leaving.pendingRemoval, true);
  assert.deepEqual(set.hosts.map((h) => h.address), ['10.0.0.2', '10.0.0.1']);
  assert.ok(picks(set, 4).includes('10.0.0.1'), 'still load balanced while healthy');
  const removed: string[] = [];
  set.onMembershipChange((c) => removed.push(...c.removed.map((h) => h.address)));
  leaving.setActiveHealth(true);
  assert.deepEqual(set.hosts.map((h) => h.address), ['10.0.0.2']);
  assert.deepEqual(removed, ['10.0.0.1']);
  // Coming back before it failed clears the mark.
  set.setEndpoints([ep('10.0.0.2'), ep('10.0.0.3')]);
  byAddress(set, '10.0.0.3').setActiveHealth(false);
  set.setEndpoints([ep('10.0.0.2')]);
  assert.equal(byAddress(set, '10.0.0.3').pendingRemoval, true);
  set.setEndpoints([ep('10.0.0.2'), ep('10.0.0.3')]);
  assert.equal(byAddress(set, '10.0.0.3').pendingRemoval, false);

  // ignore_health_on_host_removal: removed at once; failing hosts are removed at once anyway.
  const ignore = new HostSet(cluster({ healthChecks: [HC], ignoreHealthOnHostRemoval: true }));
  ignore.setEndpoints([ep('10.0.0.1')]);
  ignore.hosts[0]?.setActiveHealth(false);
  ignore.setEndpoints([]);
  assert.equal(ignore.hosts.length, 0);
  const failing = new HostSet(cluster({ healthChecks: [HC] }));
  failing.setEndpoints([ep('10.0.0.1')]);
  failing.setEndpoints([]);
  assert.equal(failing.hosts.length, 0);
  // ignore_new_hosts_until_first_hc: excluded (not counted, not chosen outside panic) until checked.
  const warm = new HostSet(cluster({ healthChecks: [HC], commonLbConfig: { ignoreNewHostsUntilFirstHc: true } }), { random: seq() });
  warm.setEndpoints([ep('10.0.0.1'), ep('10.0.0.2')]);
  byAddress(warm, '10.0.0.1').setActiveHealth(false);
  assert.equal(byAddress(warm, '10.0.0.2').excluded, true);
  assert.deepEqual(picks(warm, 3), ['10.0.0.1', '10.0.0.1', '10.0.0.1']);
});

/** A resolver answering from a table, recording what it was asked. */
function fakeResolver(table: Map<string, { 4?: string[]; 6?: string[] } | Error>, asked: string[] = []): Resolver {
  return async (hostname, family) => {
    asked.push(`${hostname}/${family}`);
    const entry = table.get(hostname);
    if (!entry || entry instanceof Error) throw entry ?? Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
    const found = entry[family];
    if (!found || found.length === 0) throw Object.assign(new Error(`getaddrinfo ENODATA ${hostname}`), { code: 'ENODATA' });
    return found;
  };
}

test('dns_lookup_family: V4_ONLY, V6_ONLY, AUTO (IPv6 first), V4_PREFERRED, ALL', async () => {
  const table = new Map([['both', { 4: ['10.0.0.1'], 6: ['fd00::1'] }], ['v4', { 4: ['10.0.0.2'] }], ['v6', { 6: ['fd00::2'] }]]);
  const asked: string[] = [];
  const r = fakeResolver(table, asked);
  assert.deepEqual(await resolve(r, 'both', 'V4_ONLY'), ['10.0.0.1']);
  assert.deepEqual(await resolve(r, 'both', 'V6_ONLY'), ['fd00::1']);
  assert.deepEqual(await resolve(r, 'both', 'AUTO'), ['fd00::1']);
  assert.deepEqual(await resolve(r, 'v4', 'AUTO'), ['10.0.0.2']);
  assert.deepEqual(await resolve(r, 'both', 'V4_PREFERRED'), ['10.0.0.1']);
  assert.deepEqual(await resolve(r, 'v6', 'V4_PREFERRED'), ['fd00::2']);
  assert.deepEqual(await resolve(r, 'both', 'ALL'), ['10.0.0.1', 'fd00::1']);
  await assert.rejects(resolve(r, 'v6', 'V4_ONLY'), /no address for v6 \(V4_ONLY\): getaddrinfo ENODATA v6/);
  await assert.rejects(resolve(r, 'missing', 'AUTO'), /no address for missing \(AUTO\)/);
  assert.deepEqual(asked.slice(0, 6), ['both/4', 'both/6', 'both/6', 'v4/6', 'v4/4', 'both/4']);
});

test('STRICT_DNS: every address of every name is a host; re-resolved every 5 s; a failure keeps the hosts', async () => {
  const timers = new ManualTimers();
  const stats = new StatsCounter();
  const table = new Map<string, { 4?: string[]; 6?: string[] } | Error>([['a.local', { 4: ['10.0.0.1', '10.0.0.2'] }], ['b.local', { 4: ['10.0.0.3'] }]]);
  const spec = compileCluster({ name: 'dns', type: 'STRICT_DNS', dnsLookupFamily: 'V4_ONLY', loadAssignment: { clusterName: 'dns', endpoints: [{ lbEndpoints: [lbEndpoint('a.local', 8080), lbEndpoint('b.local', 9090)] }] } });
  const set = new HostSet(spec, { timers, resolver: fakeResolver(table), random: seq(), stats: stats.sink });
  let ready = false;
  void set.ready.then(() => { ready = true; });
  assert.equal(set.pick(), undefined, 'nothing before the first resolution');
  set.start();
  await flush();
  assert.equal(ready, true);
  assert.deepEqual(set.hosts.map((h) => h.key).sort(), ['10.0.0.1:8080', '10.0.0.2:8080', '10.0.0.3:9090']);
  assert.equal(byAddress(set, '10.0.0.1').hostname, 'a.local');
  const kept = byAddress(set, '10.0.0.2');
  kept.setEjected(true);

  table.set('a.local', { 4: ['10.0.0.2', '10.0.0.4'] });
  timers.advance(4999);
  await flush();
  assert.equal(set.hosts.length, 3, 'not before dns_refresh_rate');
  timers.advance(1);
  await flush();
  assert.deepEqual(set.hosts.map((h) => h.key).sort(), ['10.0.0.2:8080', '10.0.0.3:9090', '10.0.0.4:8080']);
  assert.equal(byAddress(set, '10.0.0.2'), kept);
  assert.equal(kept.ejected, true);

  table.set('a.local', new Error('SERVFAIL'));
  timers.advance(5000);
  await flush();
  assert.deepEqual(set.hosts.map((h) => h.key).sort(), ['10.0.0.2:8080', '10.0.0.3:9090', '10.0.0.4:8080']);
  assert.equal(stats.get('update_failure'), 1);
  assert.equal(stats.get('update_success'), 5);
  set.stop();
  assert.equal(timers.pending, 0);
});

test('STRICT_DNS with dns_failure_refresh_rate retries sooner after a failure', async () => {
  const timers = new ManualTimers();
  const table = new Map<string, { 4?: string[]; 6?: string[] } | Error>();
  const spec = compileCluster({ name: 'dns', type: 'STRICT_DNS', dnsFailureRefreshRate: { baseInterval: { seconds: '1' }, maxInterval: { seconds: '2' } }, loadAssignment: { endpoints: [{ lbEndpoints: [lbEndpoint('late.local')] }] } });
  const set = new HostSet(spec, { timers, resolver: fakeResolver(table), random: seq([0.99]) });
  set.start();
  await flush();
  assert.equal(set.hosts.length, 0);
  table.set('late.local', { 6: ['fd00::7'] });
  timers.advance(990); // 0.99 × min(2 s, 1 s × (2¹ − 1))
  await flush();
  assert.deepEqual(set.hosts.map((h) => h.key), ['[fd00::7]:80']);
  set.stop();
});

test('LOGICAL_DNS: one host whose address is the first of the latest resolution', async () => {
  const timers = new ManualTimers();
  const table = new Map<string, { 4?: string[]; 6?: string[] } | Error>([['lb.local', { 4: ['10.0.0.1', '10.0.0.2'] }]]);
  const spec = compileCluster({ name: 'l', type: 'LOGICAL_DNS', dnsLookupFamily: 'V4_ONLY', loadAssignment: { endpoints: [{ lbEndpoints: [lbEndpoint('lb.local', 443)] }] } });
  const set = new HostSet(spec, { timers, resolver: fakeResolver(table), random: seq() });
  set.start();
  await set.ready;
  const host = set.pick();
  assert.ok(host);
  assert.equal(host.address, '10.0.0.1');
  assert.equal(host.port, 443);
  assert.equal(host.hostname, 'lb.local');
  assert.equal(host.key, 'lb.local:443');
  table.set('lb.local', { 4: ['10.0.0.9', '10.0.0.1'] });
  timers.advance(5000);
  await flush();
  assert.equal(set.pick(), host, 'the same logical host');
  assert.equal(host.address, '10.0.0.9', 'new connections go to the new first address');
  table.set('lb.local', new Error('timeout'));
  timers.advance(5000);
  await flush();
  assert.equal(host.address, '10.0.0.9');
  assert.equal(set.hosts.length, 1);
  set.stop();
});

test('ORIGINAL_DST: a host per original destination, dropped after a cleanup interval without use', () => {
  const timers = new ManualTimers();
  const spec = compileCluster({ name: 'pass', type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED' });
  const set = new HostSet(spec, { timers });
  set.start();
  assert.equal(set.pick(), undefined);
  const a = set.pick({ originalDst: { address: '93.184.216.34', port: 443 } });
  assert.ok(a);
  assert.equal(set.pick({ originalDst: { address: '93.184.216.34', port: 443 } }), a);
  const b = set.pick({ originalDst: { address: '10.1.1.1', port: 80 } });
  b?.connectionOpened();
  timers.advance(5000); // used since the start: kept
  assert.equal(set.hosts.length, 2);
  timers.advance(5000); // a unused for an interval: gone; b has an open connection
  assert.deepEqual(set.hosts.map((h) => h.key), ['10.1.1.1:80']);
  b?.connectionClosed();
  timers.advance(5000);
  timers.advance(5000);
  assert.equal(set.hosts.length, 0);
  set.stop();
});

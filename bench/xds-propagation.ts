// xDS propagation benchmark: the time from an API write to the last proxy's ACK of the new configuration,
// for N connected proxies, and the control plane's memory per connected proxy. See docs/benchmarks.md.
//
// Two processes, both on this machine:
// - this process (run with --expose-gc) is the control plane, wired as `keymesh server` wires it
//   (src/cli/server-command.ts): SqliteStore + SqliteCaStore on one keymesh.db in a temp dir, the
//   CertificateAuthority, ResourceManager, StoreConfigSource, CaSecretSource, createXdsServer on 127.0.0.1:0
//   with the control-plane TLS and `authenticate` = authority.identityFromPeerCertificate. No HTTP API: writes
//   go through ResourceManager.update, the code path the API calls after parsing and authenticating a request.
// - a child process (this file with `--clients`) runs the N simulated Envoys: one grpc-js channel (own TCP
//   connection, own TLS session, own SVID) and one ADS stream each; they subscribe CDS and LDS (wildcard) and
//   RDS for the route configurations the listeners name, and ACK every response at once.
// Keeping the clients out of the control plane's process keeps its memory figures its own; both processes share
// the machine's CPUs, as an Envoy fleet on the same host would not.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadControlPlaneTls } from '../src/api/identity/control-plane-tls.ts';
import { systemClock } from '../src/base/clock.ts';
import { CertificateAuthority } from '../src/ca/authority.ts';
import { decodeResource, TYPE_URLS as T } from '../src/envoy/protos.ts';
import { DEFAULT_LIMITS } from '../src/mesh/limits.ts';
import { ResourceManager } from '../src/mesh/manager.ts';
import { createCsr } from '../src/pki/csr.ts';
import { exportPrivateKeyPem, generateKeyPair } from '../src/pki/keys.ts';
import { SqliteCaStore } from '../src/store/sqlite/sqlite-ca-store.ts';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { adsClientConstructor, type DiscoveryRequest, type DiscoveryResponse } from '../src/envoy/ads-service.ts';
import { XdsBundleDistribution } from '../src/xds/bundle-distribution.ts';
import { createControlPlaneXds } from '../src/xds/control-plane-xds.ts';
import { fmtRatio, formatTable } from './harness.ts';

const ACCOUNT = '000000000000';
const REGION = 'us-east-1';
const SHARED_SERVICE = 'backend.bench.local';
/** A proxy is settled after a write when no response reached any proxy for this long (not part of the time). */
const QUIET_MS = 400;

/** Wall-clock milliseconds with sub-millisecond resolution, comparable between the two processes. */
const wallNow = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// --- messages between the control plane and the client process ------------------------------------------

interface ClientSpec { nodeId: string; certChainPem: string }
type ToClients =
  | { type: 'start'; address: string; caPem: string; keyPem: string; clients: ClientSpec[]; concurrency: number; timeoutMs: number }
  | { type: 'mark' }
  | { type: 'settle'; timeoutMs: number }
  | { type: 'stop' };
type FromClients =
  | { type: 'connected'; ms: number; rdsSubscribed: number }
  | { type: 'marked' }
  | { type: 'settled'; lastAckAt: number; firstResponseAt: number; responses: number; clientsUpdated: number }
  | { type: 'failed'; message: string };

// --- the simulated Envoys (child process) -----------------------------------------------------------------

class SimEnvoy {
  readonly #client: grpc.Client;
  readonly #call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  readonly #nodeId: string;
  #nodeSent = false;
  #routeNames = '';
  ended: string | undefined;
  /** Types this proxy has ACKed at least once. */
  readonly acked = new Set<string>();
  responsesSinceMark = 0;
  lastAckAt = 0;

  constructor(address: string, creds: grpc.ChannelCredentials, nodeId: string, onResponse: () => void) {
    this.#nodeId = nodeId;
    const Client = adsClientConstructor();
    this.#client = new Client(address, creds, {
      'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost',
      // One connection per proxy, as N Envoys have: no subchannel sharing between clients.
      'grpc.use_local_subchannel_pool': 1,
    });
    this.#call = (this.#client as unknown as { StreamAggregatedResources(): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> }).StreamAggregatedResources();
    this.#call.on('data', (r: DiscoveryResponse) => {
      this.#send(r.typeUrl, r.versionInfo, r.nonce, r.typeUrl === T.routeConfiguration ? this.#routeNames.split('\n').filter(Boolean) : []);
      this.lastAckAt = wallNow();
      this.acked.add(r.typeUrl);
      this.responsesSinceMark++;
      if (r.typeUrl === T.listener) this.#followRoutes(r);
      onResponse();
    });
    const end = (e: { code?: number; details?: string; message?: string }) => {
      this.ended ??= `${e.code ?? ''} ${e.details ?? e.message ?? ''}`;
    };
    this.#call.on('error', end);
    this.#call.on('status', (s: grpc.StatusObject) => {
      if (s.code !== grpc.status.OK) end(s);
    });
    this.#send(T.cluster, '', '', []);
    this.#send(T.listener, '', '', []);
  }

  #send(typeUrl: string, versionInfo: string, nonce: string, names: string[]): void {
    const msg: DiscoveryRequest = { typeUrl, versionInfo, responseNonce: nonce, resourceNames: names };
    if (!this.#nodeSent) msg.node = { id: this.#nodeId, cluster: 'bench' };
    this.#nodeSent = true;
    this.#call.write(msg);
  }

  /** Subscribes RDS to the route configurations the listeners name (as Envoy does), when they change. */
  #followRoutes(r: DiscoveryResponse): void {
    const names = new Set<string>();
    for (const a of r.resources ?? []) {
      for (const m of JSON.stringify(decodeResource(a.type_url, a.value)).matchAll(/"routeConfigName":"([^"]+)"/g)) names.add(m[1]!);
    }
    const joined = [...names].sort().join('\n');
    if (joined === this.#routeNames) return;
    this.#routeNames = joined;
    this.#send(T.routeConfiguration, '', '', [...names].sort());
  }

  get routeSubscribed(): boolean {
    return this.#routeNames !== '';
  }

  close(): void {
    this.#call.cancel();
    this.#client.close();
  }
}

async function clientMain(): Promise<void> {
  const send = (m: FromClients) => process.send!(m);
  let envoys: SimEnvoy[] = [];
  let lastResponseAt = 0;
  const onResponse = () => {
    lastResponseAt = wallNow();
  };
  const failed = () => envoys.find((e) => e.ended !== undefined);
  process.on('message', (raw) => {
    const m = raw as ToClients;
    void (async () => {
      if (m.type === 'start') {
        const started = wallNow();
        const deadline = Date.now() + m.timeoutMs;
        const key = Buffer.from(m.keyPem);
        const ca = Buffer.from(m.caPem);
        // Connect in waves of `concurrency`; each wave has its first CDS/LDS before the next starts.
        for (let i = 0; i < m.clients.length; i += m.concurrency) {
          const wave = m.clients.slice(i, i + m.concurrency).map((c) => new SimEnvoy(m.address, grpc.credentials.createSsl(ca, key, Buffer.from(c.certChainPem)), c.nodeId, onResponse));
          envoys.push(...wave);
          while (!wave.every((e) => e.acked.has(T.cluster) && e.acked.has(T.listener))) {
            const bad = failed();
            if (bad) return send({ type: 'failed', message: `a proxy's stream ended while connecting: ${bad.ended}` });
            if (Date.now() > deadline) return send({ type: 'failed', message: `only ${envoys.filter((e) => e.acked.has(T.listener)).length}/${m.clients.length} proxies had CDS+LDS within ${m.timeoutMs} ms` });
            await sleep(5);
          }
        }
        // Everyone quiet (RDS follow-ups included).
        while (wallNow() - lastResponseAt < QUIET_MS) await sleep(20);
        const bad = failed();
        if (bad) return send({ type: 'failed', message: `a proxy's stream ended: ${bad.ended}` });
        send({ type: 'connected', ms: lastResponseAt - started, rdsSubscribed: envoys.filter((e) => e.routeSubscribed).length });
      } else if (m.type === 'mark') {
        for (const e of envoys) e.responsesSinceMark = 0;
        send({ type: 'marked' });
      } else if (m.type === 'settle') {
        const deadline = Date.now() + m.timeoutMs;
        for (;;) {
          const bad = failed();
          if (bad) return send({ type: 'failed', message: `a proxy's stream ended: ${bad.ended}` });
          const updated = envoys.filter((e) => e.responsesSinceMark > 0).length;
          if (updated === envoys.length && wallNow() - lastResponseAt >= QUIET_MS) {
            const acks = envoys.map((e) => e.lastAckAt);
            return send({
              type: 'settled', lastAckAt: Math.max(...acks), firstResponseAt: Math.min(...acks),
              responses: envoys.reduce((s, e) => s + e.responsesSinceMark, 0), clientsUpdated: updated,
            });
          }
          if (Date.now() > deadline) return send({ type: 'failed', message: `${updated}/${envoys.length} proxies had the new configuration within ${m.timeoutMs} ms` });
          await sleep(5);
        }
      } else {
        for (const e of envoys) e.close();
        envoys = [];
        process.disconnect();
      }
    })().catch((e: unknown) => send({ type: 'failed', message: (e as Error).stack ?? String(e) }));
  });
}

// --- the control plane and the measurement (main process) -------------------------------------------------

interface Options { ns: number[]; writes: number; concurrency: number; json: string }

function readOptions(argv: string[]): Options {
  const o: Options = { ns: [1, 100, 1000], writes: 5, concurrency: 50, json: fileURLToPath(new URL('./results/xds-propagation.json', import.meta.url)) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') o.ns = [1, 10, 50];
    else if (a === '--n') o.ns = value().split(',').map(Number);
    else if (a === '--writes') o.writes = Number(value());
    else if (a === '--concurrency') o.concurrency = Number(value());
    else if (a === '--json') o.json = value();
    else if (a === '--help' || a === '-h') {
      process.stdout.write([
        'node --expose-gc bench/xds-propagation.ts [--quick] [--n 1,100,1000] [--writes 5] [--concurrency 50] [--json path]',
        '  --quick        N = 1, 10, 50',
        '  --n LIST       proxy counts; the first is the baseline of the ratios',
        '  --writes K     timed writes per N (default 5)',
        '  --concurrency  proxies connecting at once (default 50)',
        '',
      ].join('\n'));
      process.exit(0);
    } else throw new Error(`unknown option ${a}; see --help`);
  }
  if (!o.ns.every((n) => Number.isSafeInteger(n) && n > 0) || !(o.writes > 0) || !(o.concurrency > 0)) throw new Error('--n, --writes and --concurrency take positive integers');
  return o;
}

const log = (s: string) => process.stderr.write(`${s}\n`);

function gcNow(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc (npm run bench does)');
  for (let i = 0; i < 3; i++) gc();
}

async function memory(): Promise<{ heapUsed: number; rss: number }> {
  await sleep(200);
  gcNow();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss };
}

/** Nearest-rank percentile. */
function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (!s.length) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

class Clients {
  readonly #child: ChildProcess;
  readonly #inbox: FromClients[] = [];
  #wake: (() => void) | undefined;
  #exited: string | undefined;

  constructor() {
    this.#child = fork(fileURLToPath(import.meta.url), ['--clients'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (m) => {
      this.#inbox.push(m as FromClients);
      this.#wake?.();
    });
    this.#child.on('exit', (code, signal) => {
      this.#exited = `the client process exited (${code ?? signal})`;
      this.#wake?.();
    });
  }

  async ask<K extends FromClients['type']>(msg: ToClients, want: K, timeoutMs: number): Promise<Extract<FromClients, { type: K }>> {
    this.#child.send(msg);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.#inbox.shift();
      if (m?.type === 'failed') throw new Error(m.message);
      if (m?.type === want) return m as Extract<FromClients, { type: K }>;
      if (m) continue;
      if (this.#exited) throw new Error(this.#exited);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no "${want}" from the client process within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((r) => this.#child.once('exit', () => r()));
    try {
      this.#child.send({ type: 'stop' } satisfies ToClients);
    } catch {
      // already gone
    }
    const t = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}

interface NResult {
  n: number;
  ok: boolean;
  error?: string;
  setupMs?: number;
  connectMs?: number;
  rdsSubscribed?: number;
  writeToLastAckMs?: number[];
  writeToFirstResponseMs?: number[];
  managerUpdateMs?: number[];
  responsesPerWrite?: number[];
  serverCheck?: string;
  memory?: { before: { heapUsed: number; rss: number }; after: { heapUsed: number; rss: number }; heapPerProxy: number; rssPerProxy: number };
}

async function main(): Promise<void> {
  const opts = readOptions(process.argv.slice(2));
  gcNow();
  const dataDir = mkdtempSync(join(tmpdir(), 'keymesh-bench-xds-'));
  const loadBefore = loadavg()[0] ?? Number.NaN;
  log(`control plane data in ${dataDir}; N = ${opts.ns.join(', ')}; ${opts.writes} timed writes per N`);

  // The server's wiring (server-command.ts), minus the HTTP API and the identity endpoint.
  const dbPath = join(dataDir, 'keymesh.db');
  const store = SqliteStore.open(dbPath);
  const caStore = SqliteCaStore.open(dbPath);
  const distribution = new XdsBundleDistribution();
  const authority = new CertificateAuthority({ caStore, resources: store, dataDir, clock: systemClock, region: REGION, account: ACCOUNT, distribution });
  const limits = { ...DEFAULT_LIMITS, virtualNodesPerMesh: Math.max(...opts.ns) + 10 };
  const manager = new ResourceManager({
    store, clock: systemClock, account: ACCOUNT, region: REGION, limits,
    externalReferences: { exists: (kind, arn) => authority.exists(kind, arn) },
  });
  const cpTls = await loadControlPlaneTls(dataDir, systemClock);
  // One mesh per N, each with its own CA; all meshes exist before the xDS server starts (its anchors).
  // A warm-up phase first (1 proxy, 2 writes, not reported): the first connection loads the ADS protos, grpc-js's
  // server paths and the translation code, which would otherwise land in the N=1 baseline's memory and time.
  const phases = [{ n: 1, mesh: 'bench-warmup', writes: 2, warmup: true }, ...opts.ns.map((n) => ({ n, mesh: `bench-n${n}`, writes: opts.writes, warmup: false }))];
  for (const { mesh } of phases) {
    await manager.create({ kind: 'mesh', mesh, parent: '', name: mesh }, {}, []);
    await authority.ensureCa(mesh);
  }
  const controlPlaneXds = await createControlPlaneXds({ store, authority, distribution, tls: cpTls });
  const xds = controlPlaneXds.server;
  const port = await xds.listen('127.0.0.1:0');
  const address = `127.0.0.1:${port}`;
  log(`xDS server on ${address}`);

  // One workload key for every SVID (saves N key generations; the server still signs N certificates and
  // every connection still does its own TLS handshake and SVID check). A CSR without names is valid for any node.
  const workloadKeys = await generateKeyPair('ec-p256');
  const keyPem = await exportPrivateKeyPem(workloadKeys);
  const csrPem = await createCsr(workloadKeys, {});

  const results: NResult[] = [];
  let stopLarger: string | undefined;
  for (const { n, mesh, writes, warmup } of phases) {
    if (stopLarger) {
      results.push({ n, ok: false, error: `skipped: ${stopLarger}` });
      continue;
    }
    const r: NResult = { n, ok: false };
    if (!warmup) results.push(r);
    const tag = warmup ? 'warm-up' : `N=${n}`;
    const clients = new Clients();
    try {
      // The mesh: a shared backend service every proxy uses, and N nodes.
      const t0 = performance.now();
      const listenerOn = (portNumber: number) => ({ listeners: [{ portMapping: { port: portNumber, protocol: 'http' } }] });
      await manager.create({ kind: 'virtualNode', mesh, parent: '', name: 'backend' }, { ...listenerOn(8080), serviceDiscovery: { dns: { hostname: SHARED_SERVICE } } }, []);
      await manager.create({ kind: 'virtualService', mesh, parent: '', name: SHARED_SERVICE }, { provider: { virtualNode: { virtualNodeName: 'backend' } } }, []);
      const specs: ClientSpec[] = [];
      for (let i = 0; i < n; i++) {
        const name = `app-${i}`;
        await manager.create({ kind: 'virtualNode', mesh, parent: '', name }, {
          ...listenerOn(9080), serviceDiscovery: { dns: { hostname: `${name}.bench.local` } }, backends: [{ virtualService: { virtualServiceName: SHARED_SERVICE } }],
        }, []);
        const svid = await authority.issue({ mesh, kind: 'virtualNode', name }, csrPem);
        specs.push({ nodeId: `mesh/${mesh}/virtualNode/${name}`, certChainPem: svid.certChainPem });
      }
      r.setupMs = performance.now() - t0;
      log(`${tag}: mesh, ${n} nodes and SVIDs in ${(r.setupMs / 1000).toFixed(1)} s; connecting`);

      const before = await memory();
      const connectTimeout = 60_000 + 200 * n;
      const connected = await clients.ask({ type: 'start', address, caPem: cpTls.caCertPem, keyPem, clients: specs, concurrency: opts.concurrency, timeoutMs: connectTimeout }, 'connected', connectTimeout + 10_000);
      r.connectMs = connected.ms;
      r.rdsSubscribed = connected.rdsSubscribed;
      const after = await memory();
      const live = xds.proxies().filter((p) => p.identity.mesh === mesh).length;
      if (live !== n) throw new Error(`the server lists ${live} proxies of ${mesh}, expected ${n}`);
      r.memory = { before, after, heapPerProxy: (after.heapUsed - before.heapUsed) / n, rssPerProxy: (after.rss - before.rss) / n };
      log(`${tag}: connected and ACKed in ${(connected.ms / 1000).toFixed(1)} s; ${(r.memory.heapPerProxy / 1024).toFixed(1)} KiB heap, ${(r.memory.rssPerProxy / 1024).toFixed(1)} KiB rss per proxy`);

      // Timed writes: the backend's port alternates, which changes every proxy's egress cluster and listener.
      r.writeToLastAckMs = [];
      r.writeToFirstResponseMs = [];
      r.managerUpdateMs = [];
      r.responsesPerWrite = [];
      const writeTimeout = 30_000 + 60 * n;
      for (let k = 0; k < writes; k++) {
        const cdsBefore = new Map(xds.proxies().filter((p) => p.identity.mesh === mesh).map((p) => [p.stream, p.lastAck[T.cluster]?.version]));
        await clients.ask({ type: 'mark' }, 'marked', 10_000);
        const start = wallNow();
        await manager.update({ kind: 'virtualNode', mesh, parent: '', name: 'backend' }, { ...listenerOn(k % 2 === 0 ? 8081 : 8080), serviceDiscovery: { dns: { hostname: SHARED_SERVICE } } });
        r.managerUpdateMs.push(wallNow() - start);
        const settled = await clients.ask({ type: 'settle', timeoutMs: writeTimeout }, 'settled', writeTimeout + 10_000);
        r.writeToLastAckMs.push(settled.lastAckAt - start);
        r.writeToFirstResponseMs.push(settled.firstResponseAt - start);
        r.responsesPerWrite.push(settled.responses);
        // The server's own view: every proxy ACKed what it was last sent, and its CDS version changed.
        const proxies = xds.proxies().filter((p) => p.identity.mesh === mesh);
        const behind = proxies.filter((p) => Object.entries(p.lastSent).some(([type, s]) => p.lastAck[type]?.version !== s.version) || p.lastAck[T.cluster]?.version === cdsBefore.get(p.stream));
        if (behind.length || proxies.length !== n) throw new Error(`after write ${k + 1}: ${behind.length} of ${proxies.length} proxies have not ACKed the new versions on the server`);
        r.serverCheck = `all ${n} proxies ACKed every type's last sent version; CDS version changed on each write`;
        log(`${tag}: write ${k + 1}/${writes}: last ACK after ${(settled.lastAckAt - start).toFixed(1)} ms (${settled.responses} responses)`);
        await sleep(100);
      }
      r.ok = true;
    } catch (e) {
      r.error = (e as Error).message;
      stopLarger = `${tag} failed: ${r.error}`;
      log(`${tag}: FAILED: ${r.error}`);
    } finally {
      await clients.stop();
      // Wait until the server has let go of the streams before the next N measures its baseline.
      const deadline = Date.now() + 30_000;
      while (xds.proxies().length && Date.now() < deadline) await sleep(50);
    }
  }

  const loadAfter = loadavg()[0] ?? Number.NaN;
  await controlPlaneXds.close();
  await caStore.close();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });

  // Report.
  const base = results[0];
  const baseP50 = base?.ok ? percentile(base.writeToLastAckMs!, 50) : Number.NaN;
  const baseP95 = base?.ok ? percentile(base.writeToLastAckMs!, 95) : Number.NaN;
  const baseMax = base?.ok ? Math.max(...base.writeToLastAckMs!) : Number.NaN;
  const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
  const kib = (v: number) => (Number.isFinite(v) ? (v / 1024).toFixed(1) : 'n/a');
  const rows = results.map((r) => {
    if (!r.ok) return [String(r.n), 'failed', '', '', '', '', '', '', '', ''];
    const w = r.writeToLastAckMs!;
    const p50 = percentile(w, 50);
    const p95 = percentile(w, 95);
    const max = Math.max(...w);
    return [String(r.n), ms(p50), ms(p95), ms(max), fmtRatio(p50 / baseP50), fmtRatio(p95 / baseP95), fmtRatio(max / baseMax),
      ms(percentile(r.writeToFirstResponseMs!, 50)), kib(r.memory!.heapPerProxy), kib(r.memory!.rssPerProxy)];
  });
  const env = {
    cpu: cpus()[0]?.model ?? 'unknown', logicalCpus: availableParallelism(), memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
    os: `${platform()} ${release()}`, node: process.version,
  };
  process.stdout.write([
    '',
    'xDS propagation: API write (ResourceManager.update) -> last proxy ACK of the new configuration',
    `machine: ${env.cpu}, ${env.logicalCpus} CPUs, ${env.memoryGiB} GiB, ${env.os}; node ${env.node}; load ${loadBefore.toFixed(2)} -> ${loadAfter.toFixed(2)}`,
    `${opts.writes} writes per N; ratios against N=${base?.n ?? '?'} measured in this run; memory = control-plane process delta after GC / N`,
    '',
    formatTable(['N proxies', 'p50 ms', 'p95 ms', 'max ms', 'p50 vs base', 'p95 vs base', 'max vs base', 'first resp p50 ms', 'heap KiB/proxy', 'rss KiB/proxy'], rows),
    ...results.filter((r) => !r.ok).map((r) => `N=${r.n}: ${r.error}`),
    '',
  ].join('\n'));
  mkdirSync(join(opts.json, '..'), { recursive: true });
  writeFileSync(opts.json, `${JSON.stringify({ bench: 'xds-propagation', at: new Date().toISOString(), machine: env, loadBefore, loadAfter, options: opts, quietMs: QUIET_MS, results }, null, 2)}\n`);
  process.stdout.write(`results written to ${opts.json}\n`);
  if (!results[0]?.ok) process.exitCode = 1;
}

if (process.argv.includes('--clients')) {
  await clientMain();
} else {
  try {
    await main();
  } catch (e) {
    process.stderr.write(`xds-propagation: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  }
}

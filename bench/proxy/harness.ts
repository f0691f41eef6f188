// The proxy bench's harness: what a "pair" is (the plug-in point for keymesh's own pair), and the run —
// tools, certificates, the app, each pair started, checked, loaded with wrk and stopped in turn, the
// report. See bench/proxy/run.ts for the command line and docs/benchmarks.md for how to read the output.
//
// A pair is the two-hop path of issue 5:
//
//   wrk ──HTTP/1.1──▶ client-side sidecar ──mTLS (TLS 1.3)──▶ server-side sidecar ──HTTP/1.1──▶ app
//
// each sidecar ONE process with one worker/thread. A PairSetup starts one on loopback, in one of two modes:
//
//   reuse      the client-side sidecar keeps a pool of mTLS connections to the server side (and may resume
//              TLS sessions); wrk keeps its 16 connections open. This is the throughput/latency measurement.
//   handshake  no reuse between the sidecars: the client side opens a new TCP connection and does a FULL
//              mutual TLS 1.3 handshake (no session tickets, no session cache) for every request, and closes
//              it after the response; wrk sends `Connection: close`, so the first hop is new per request too.
//              The server side keeps its pool to the app. Requests/s here = mTLS handshakes/s between the
//              sidecars (checked: accepted mTLS connections per request ≈ 1 when the pair reports them).
//
// Both modes: TLS 1.3 only, key exchange X25519 (pinned on both sides, so a Node 24/OpenSSL 3.5 side does not
// pick the costlier hybrid ML-KEM group that OpenSSL 3.0 in nginx/haproxy lacks), ECDSA P-256 certificates,
// both sides verify the peer's chain to the bench CA; the client side also checks the server's DNS name.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { availableParallelism, cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fmtRate, fmtRatio, formatTable, median } from '../harness.ts';
import { appBody, startApp, type AppKind, type StartedApp } from './app.ts';
import { makeMtlsFiles, type MtlsFiles } from './certs.ts';
import {
  findExecutable, freePort, machineCpuSeconds, selfCpuSeconds, sleep, Supervisor, treeCpuSeconds, treeMemory, waitForPort, within,
  type ManagedProcess, type MemoryKiB, type SpawnOptions,
} from './procs.ts';
import { ensureTools, versionOf } from './tools.ts';
import { runWrk, type WrkResult } from './wrk.ts';

// --- the plug-in point -----------------------------------------------------------------------------------

export type PairMode = 'reuse' | 'handshake';
export const PAIR_MODES: readonly PairMode[] = ['reuse', 'handshake'];

/** What a PairSetup gets to start one pair. Everything spawned through `spawn` is stopped by the harness too. */
export interface PairContext {
  readonly mode: PairMode;
  /** A private temporary directory for this pair instance (configs, sockets, state); removed afterwards. */
  readonly dir: string;
  readonly certs: MtlsFiles;
  /** The app the server-side sidecar forwards to. */
  readonly app: { readonly host: '127.0.0.1'; readonly port: number };
  /** The TLS every pair uses on the sidecar-to-sidecar hop. */
  readonly tls: { readonly version: 'TLSv1.3'; readonly group: 'X25519' };
  /** The Node binary running the bench (Node 24), for setups that start Node processes. */
  readonly nodeBin: string;
  /** Absolute paths of the programs this setup `requires`. */
  readonly tools: ReadonlyMap<string, string>;
  freePort(): Promise<number>;
  /** Starts a process in its own process group; the harness ends the group when the pair is done (or on Ctrl-C). */
  spawn(name: string, command: string, args: readonly string[], opts?: SpawnOptions): ManagedProcess;
  /** Resolves when 127.0.0.1:port accepts connections; rejects if `proc` exits first or after 15 s. */
  waitForPort(port: number, proc?: ManagedProcess): Promise<void>;
  log(message: string): void;
}

export interface StartedPair {
  /** Plaintext HTTP/1.1 port the load generator connects to (the client-side sidecar's, or the app's for direct). */
  readonly entryPort: number;
  /**
   * Host header of every request to the entry port (the bench's checks and wrk), for a client side that routes
   * by Host (keymesh's egress listener: the virtual service's name). Default: what the HTTP client sends.
   */
  readonly entryHost?: string;
  /**
   * The server-side sidecar's mTLS port: the harness checks that it answers a client holding the client
   * certificate and refuses one with no certificate or with one from another CA.
   */
  readonly mtlsPort?: number;
  /**
   * What that check presents and trusts, when the pair does not use ctx.certs (e.g. certificates issued by
   * the pair's own control plane). Default: ctx.certs' CA, client certificate and server name.
   */
  readonly mtlsProbe?: MtlsProbe;
  /** The proxy processes (each measured with its descendants); `extra` (e.g. a control plane) is reported apart. */
  readonly pids: { readonly client?: number; readonly server?: number; readonly extra?: Readonly<Record<string, number>> };
  /** Stops the pair (the harness also ends every process started through ctx.spawn afterwards). */
  stop(): Promise<void>;
  /** Connections accepted so far on the mTLS listener (to check "one handshake per request"); optional. */
  acceptedMtlsConnections?(): Promise<number>;
  /** Version of the proxy software, for the report. */
  readonly version?: string;
  /** The configuration files written, name → text, kept in the JSON (first round only). */
  readonly config?: Readonly<Record<string, string>>;
  /** Something the reader must know to read this pair's numbers (e.g. a mode it cannot provide exactly): printed under the tables. */
  readonly note?: string;
}

export interface MtlsProbe {
  /** CA file to verify the server side with, client certificate and key to present, server name to send and check. */
  readonly caFile: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly serverName: string;
}

export interface PairSetup {
  /** Short name, used by --only and in the tables. */
  readonly name: string;
  readonly description: string;
  /** Programs (looked up in PATH and the sbin directories) without which the setup is skipped; wrk is always needed. */
  readonly requires: readonly string[];
  /** No proxies: the load generator talks to the app (the "direct" baseline). */
  readonly direct?: boolean;
  startPair(ctx: PairContext): Promise<StartedPair>;
}

const registry = new Map<string, PairSetup>();

/** Adds a setup to the bench (e.g. keymesh's pair). Names are unique. */
export function registerPair(setup: PairSetup): void {
  if (registry.has(setup.name)) throw new Error(`a pair setup named ${setup.name} is already registered`);
  registry.set(setup.name, setup);
}

export function registeredPairs(): PairSetup[] {
  return [...registry.values()];
}

// --- options -------------------------------------------------------------------------------------------

export interface Options {
  readonly quick: boolean;
  readonly only: readonly string[] | undefined;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly handshakeSeconds: number;
  readonly connections: number;
  readonly threads: number;
  readonly rounds: number;
  readonly bodyBytes: number;
  readonly app: AppKind | 'auto';
  readonly handshake: boolean;
  readonly install: boolean;
  readonly json: string | undefined;
  /** Before each setup's warm-up, wait up to this many seconds for the machine's other load to drop. */
  readonly quietWaitSeconds: number;
  /** "Quiet": CPU used outside the bench at most this share of the machine (0..1). */
  readonly quietThreshold: number;
}

const USAGE = `usage: node bench/proxy/run.ts [options]
  --quick              3 s per measurement, 1 s warm-up (checks that the bench works; numbers are rough)
  --only LIST          comma-separated setups (default: all registered: %SETUPS%)
  --duration S         seconds per measurement (default 10; --quick 3)
  --warmup S           untimed seconds of load before each measurement (default 2; --quick 1)
  --handshake-duration S  seconds of the new-connection-per-request measurement (default: --duration)
  --no-handshake       skip the handshake measurement
  --connections N      wrk connections (default 16)
  --threads N          wrk threads (default 1)
  --rounds N           measure every setup N times, order rotated each round; medians reported (default 1)
  --body-bytes N       response body size (default 3: "ok\\n")
  --app nginx|node     the upstream app (default: nginx when installed, else node)
  --no-install         never run apt-get (missing programs: setups skipped)
  --quiet-wait S       before each measurement, wait up to S s for other processes to use less than
                       --quiet-threshold of the CPUs (default 15; 0: never wait)
  --quiet-threshold F  share of all CPUs, 0..1 (default 0.25)
  --json PATH          results file (default bench/results/proxy-<timestamp>.json)
`;

export function readOptions(argv: readonly string[], setups: readonly PairSetup[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'handshake-duration': { type: 'string' },
      'no-handshake': { type: 'boolean', default: false },
      connections: { type: 'string' },
      threads: { type: 'string' },
      rounds: { type: 'string' },
      'body-bytes': { type: 'string' },
      app: { type: 'string' },
      'no-install': { type: 'boolean', default: false },
      json: { type: 'string' },
      'quiet-wait': { type: 'string' },
      'quiet-threshold': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE.replace('%SETUPS%', setups.map((s) => s.name).join(',')));
    process.exit(0);
  }
  const num = (name: string, raw: string | undefined, fallback: number, min: number, max: number, integer = true): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) throw new Error(`--${name} ${raw}: expected ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}`);
    return n;
  };
  const quick = values.quick;
  const only = values.only?.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const name of only ?? []) {
    if (!setups.some((s) => s.name === name)) throw new Error(`--only ${name}: no such setup (have ${setups.map((s) => s.name).join(', ')})`);
  }
  const app = values.app ?? 'auto';
  if (app !== 'auto' && app !== 'nginx' && app !== 'node') throw new Error(`--app ${app}: expected nginx or node`);
  const seconds = num('duration', values.duration, quick ? 3 : 10, 1, 600);
  return {
    quick,
    only,
    seconds,
    warmupSeconds: num('warmup', values.warmup, quick ? 1 : 2, 0, 600),
    handshakeSeconds: num('handshake-duration', values['handshake-duration'], seconds, 1, 600),
    connections: num('connections', values.connections, 16, 1, 10_000),
    threads: num('threads', values.threads, 1, 1, 64),
    rounds: num('rounds', values.rounds, 1, 1, 20),
    bodyBytes: num('body-bytes', values['body-bytes'], 3, 1, 1024 * 1024),
    app,
    handshake: !values['no-handshake'],
    install: !values['no-install'],
    json: values.json,
    quietWaitSeconds: num('quiet-wait', values['quiet-wait'], 15, 0, 600),
    quietThreshold: num('quiet-threshold', values['quiet-threshold'], 0.25, 0, 1, false),
  };
}

// --- checks --------------------------------------------------------------------------------------------

/** GET / on the entry port until 200 with the app's body (bounded: 40 tries, 250 ms apart). */
async function checkThrough(port: number, body: string, host: string | undefined): Promise<void> {
  let last = '';
  for (let attempt = 0; attempt < 40; attempt++) {
    last = await new Promise<string>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/', agent: false, headers: { connection: 'close', ...(host ? { host } : {}) }, timeout: 5_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve(res.statusCode === 200 && text === body ? 'ok' : `status ${res.statusCode}, body ${JSON.stringify(text.slice(0, 200))}`);
        });
        res.on('error', (e) => resolve(`response error: ${e.message}`));
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (e) => resolve(`request error: ${e.message}`));
      req.end();
    });
    if (last === 'ok') return;
    await sleep(250);
  }
  throw new Error(`a GET through the pair (port ${port}) never returned 200 with the app's body; last: ${last}`);
}

/** One request straight to the mTLS port, with the given client certificate (or none): "status NNN" or "refused: ...". */
function mtlsProbe(port: number, probe: MtlsProbe, client: { cert: string; key: string } | undefined): Promise<string> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: string) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(r);
    };
    const socket = tlsConnect({
      host: '127.0.0.1', port, servername: probe.serverName, ca: readFileSync(probe.caFile), minVersion: 'TLSv1.3',
      ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}),
    });
    let data = '';
    socket.setTimeout(5_000, () => done('refused: timed out'));
    socket.on('secureConnect', () => socket.write(`GET / HTTP/1.1\r\nHost: ${probe.serverName}\r\nConnection: close\r\n\r\n`));
    socket.on('data', (b: Buffer) => {
      data += b.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      if (m) done(`status ${m[1]}`);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => done(`refused: ${e.code ?? e.message}`));
    socket.on('end', () => done('refused: closed without a response'));
  });
}

export interface MtlsCheck {
  readonly ok: boolean;
  readonly trustedClient: string;
  readonly noClientCert: string;
  readonly untrustedClient: string;
}

/** The server side answers a client with the pair's client certificate, and nobody else (no certificate, or one from another CA). */
async function checkMtls(port: number, certs: MtlsFiles, probe: MtlsProbe | undefined): Promise<MtlsCheck> {
  const p = probe ?? { caFile: certs.caFile, clientCert: certs.clientCert, clientKey: certs.clientKey, serverName: certs.serverName };
  const trustedClient = await mtlsProbe(port, p, { cert: p.clientCert, key: p.clientKey });
  const noClientCert = await mtlsProbe(port, p, undefined);
  const untrustedClient = await mtlsProbe(port, p, { cert: certs.rogueClientCert, key: certs.rogueClientKey });
  const ok = trustedClient === 'status 200' && noClientCert !== 'status 200' && untrustedClient !== 'status 200';
  return { ok, trustedClient, noClientCert, untrustedClient };
}

// --- a quiet machine -----------------------------------------------------------------------------------

/**
 * Samples the machine for 1 s at a time until processes outside the bench use at most `threshold` of the
 * CPUs, or `maxSeconds` have passed (then it goes ahead: the measurement records the load it saw). The bench's
 * own processes (`pids`, idle at this point) are not counted.
 */
async function waitForQuiet(maxSeconds: number, threshold: number, pids: readonly number[], log: (m: string) => void): Promise<{ waitedSeconds: number; otherLoad: number }> {
  const start = performance.now();
  const ours = () => pids.reduce((a, p) => a + treeCpuSeconds(p), 0) + selfCpuSeconds().self;
  let otherLoad = Number.NaN;
  let told = false;
  for (let i = 0; i <= maxSeconds; i++) {
    const m0 = machineCpuSeconds();
    const o0 = ours();
    await sleep(1_000);
    const m1 = machineCpuSeconds();
    const total = m1.total - m0.total;
    otherLoad = total > 0 ? Math.max(0, m1.busy - m0.busy - (ours() - o0)) / total : 0;
    if (otherLoad <= threshold) break;
    if (!told) {
      log(`  the machine is busy (other processes use ${(otherLoad * 100).toFixed(0)}% of the CPUs): waiting up to ${maxSeconds} s for it to calm down`);
      told = true;
    }
  }
  return { waitedSeconds: (performance.now() - start) / 1000, otherLoad };
}

// --- one measurement -----------------------------------------------------------------------------------

interface CpuSnapshot {
  readonly at: number;
  readonly procs: Record<string, number>;
  readonly self: number;
  readonly reaped: number;
  readonly machineBusy: number;
  readonly machineTotal: number;
}

export interface Measurement {
  readonly setup: string;
  readonly mode: PairMode;
  readonly round: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly wrk?: WrkResult;
  /** Errors the load generator saw (socket errors + non-2xx) per request. */
  readonly errorRate?: number;
  /** CPU seconds during the timed run: each proxy (with descendants), the app, wrk, this process, and everything else. */
  readonly cpuSeconds?: Record<string, number>;
  /** CPU microseconds per request: client + server sidecars together, and each. */
  readonly cpuUsPerRequest?: Record<string, number>;
  /** Share of the machine's CPU capacity used by processes not part of this bench during the run (0..1). */
  readonly otherLoad?: number;
  readonly memoryKiB?: { idle: Record<string, MemoryKiB>; afterLoad: Record<string, MemoryKiB> };
  readonly mtlsConnections?: { readonly during: number; readonly perRequest: number };
  readonly mtlsCheck?: MtlsCheck;
  /** The wait for a quiet machine before the warm-up, and the other load seen when it ended. */
  readonly quiet?: { readonly waitedSeconds: number; readonly otherLoad: number };
  readonly version?: string;
  readonly config?: Readonly<Record<string, string>>;
  readonly note?: string;
}

interface RunState {
  readonly opts: Options;
  readonly root: string;
  readonly certs: MtlsFiles;
  readonly app: StartedApp;
  readonly tools: ReadonlyMap<string, string>;
  readonly supervisors: Set<Supervisor>;
  readonly log: (m: string) => void;
}

function pidsOf(p: StartedPair): Record<string, number> {
  const out: Record<string, number> = {};
  if (p.pids.client !== undefined) out.client = p.pids.client;
  if (p.pids.server !== undefined) out.server = p.pids.server;
  for (const [k, v] of Object.entries(p.pids.extra ?? {})) out[k] = v;
  return out;
}

function cpuSnapshot(pids: Record<string, number>, appPid: number): CpuSnapshot {
  const procs: Record<string, number> = { app: treeCpuSeconds(appPid) };
  for (const [k, pid] of Object.entries(pids)) procs[k] = treeCpuSeconds(pid);
  const s = selfCpuSeconds();
  const m = machineCpuSeconds();
  return { at: performance.now(), procs, self: s.self, reaped: s.reapedChildren, machineBusy: m.busy, machineTotal: m.total };
}

async function measure(st: RunState, setup: PairSetup, mode: PairMode, round: number): Promise<Measurement> {
  const { opts, certs, app } = st;
  const dir = mkdtempSync(join(st.root, `${setup.name}-${mode}-`));
  const sup = new Supervisor();
  st.supervisors.add(sup);
  let pair: StartedPair | undefined;
  const ctx: PairContext = {
    mode, dir, certs, app: { host: '127.0.0.1', port: app.port }, tls: { version: 'TLSv1.3', group: 'X25519' },
    nodeBin: process.execPath, tools: st.tools, freePort,
    spawn: (name, command, args, o) => sup.spawn(name, command, args, o),
    waitForPort: (port, proc) => waitForPort(port, proc ? { proc } : {}),
    log: (m) => st.log(`  [${setup.name}/${mode}] ${m}`),
  };
  try {
    pair = await within(setup.startPair(ctx), 60_000);
    if (!pair) throw new Error('startPair did not finish within 60 s');
    const body = appBody(opts.bodyBytes);
    await checkThrough(pair.entryPort, body, pair.entryHost);
    let mtlsCheck: MtlsCheck | undefined;
    if (mode === 'reuse' && pair.mtlsPort !== undefined) {
      mtlsCheck = await checkMtls(pair.mtlsPort, certs, pair.mtlsProbe);
      if (!mtlsCheck.ok) throw new Error(`the server side does not enforce mTLS as required: ${JSON.stringify(mtlsCheck)}`);
    } else if (!setup.direct && pair.mtlsPort === undefined) {
      ctx.log('no mtlsPort given: the refusal check is skipped');
    }
    const pids = pidsOf(pair);
    await sleep(200);
    const idle: Record<string, MemoryKiB> = {};
    for (const [k, pid] of Object.entries(pids)) idle[k] = treeMemory(pid);

    const quiet = opts.quietWaitSeconds > 0
      ? await waitForQuiet(opts.quietWaitSeconds, opts.quietThreshold, [app.proc.pid, ...Object.values(pids)], st.log)
      : undefined;
    const url = `http://127.0.0.1:${pair.entryPort}/`;
    const newConnectionPerRequest = mode === 'handshake';
    const seconds = mode === 'handshake' ? opts.handshakeSeconds : opts.seconds;
    const wrkBase = {
      wrk: st.tools.get('wrk') as string, url, connections: opts.connections, threads: opts.threads, newConnectionPerRequest,
      ...(pair.entryHost ? { host: pair.entryHost } : {}),
    };
    if (opts.warmupSeconds > 0) await runWrk(sup, { ...wrkBase, seconds: opts.warmupSeconds });

    const conns0 = pair.acceptedMtlsConnections ? await pair.acceptedMtlsConnections() : undefined;
    const c0 = cpuSnapshot(pids, app.proc.pid);
    const w = await runWrk(sup, { ...wrkBase, seconds });
    const c1 = cpuSnapshot(pids, app.proc.pid);
    const dead = sup.processes().filter((p) => p.exitStatus());
    if (dead.length > 0) throw new Error(`${dead.map((p) => p.name).join(', ')} exited during the run`);
    const conns1 = pair.acceptedMtlsConnections && conns0 !== undefined ? await pair.acceptedMtlsConnections() : undefined;
    const afterLoad: Record<string, MemoryKiB> = {};
    for (const [k, pid] of Object.entries(pids)) afterLoad[k] = treeMemory(pid);

    const cpuSeconds: Record<string, number> = {};
    for (const k of Object.keys(c1.procs)) cpuSeconds[k] = (c1.procs[k] ?? 0) - (c0.procs[k] ?? 0);
    cpuSeconds.wrk = c1.reaped - c0.reaped;
    cpuSeconds.harness = c1.self - c0.self;
    cpuSeconds.machineBusy = c1.machineBusy - c0.machineBusy;
    const ours = Object.entries(cpuSeconds).filter(([k]) => k !== 'machineBusy').reduce((a, [, v]) => a + v, 0);
    cpuSeconds.other = Math.max(0, cpuSeconds.machineBusy - ours);
    const capacity = c1.machineTotal - c0.machineTotal;
    const perReq = (s: number) => (w.requests > 0 ? (s * 1e6) / w.requests : Number.NaN);
    const cpuUsPerRequest: Record<string, number> = {
      proxies: perReq((cpuSeconds.client ?? 0) + (cpuSeconds.server ?? 0)),
      app: perReq(cpuSeconds.app ?? 0),
      wrk: perReq(cpuSeconds.wrk ?? 0),
    };
    if (cpuSeconds.client !== undefined) cpuUsPerRequest.client = perReq(cpuSeconds.client);
    if (cpuSeconds.server !== undefined) cpuUsPerRequest.server = perReq(cpuSeconds.server);
    const errors = w.non2xx + w.socketErrors.connect + w.socketErrors.read + w.socketErrors.write + w.socketErrors.timeout;
    return {
      setup: setup.name, mode, round, ok: true, wrk: w,
      errorRate: w.requests > 0 ? errors / w.requests : Number.NaN,
      cpuSeconds, cpuUsPerRequest,
      otherLoad: capacity > 0 ? cpuSeconds.other / capacity : Number.NaN,
      memoryKiB: { idle, afterLoad },
      ...(conns0 !== undefined && conns1 !== undefined
        ? { mtlsConnections: { during: conns1 - conns0, perRequest: w.requests > 0 ? (conns1 - conns0) / w.requests : Number.NaN } }
        : {}),
      ...(mtlsCheck ? { mtlsCheck } : {}),
      ...(quiet ? { quiet } : {}),
      ...(pair.version ? { version: pair.version } : {}),
      ...(pair.note ? { note: pair.note } : {}),
      ...(round === 0 && pair.config ? { config: pair.config } : {}),
    };
  } catch (e) {
    const outputs = sup.processes().filter((p) => p.name !== 'wrk')
      .map((p) => `--- ${p.name} (pid ${p.pid}) output:\n${p.output().trim().slice(-2000)}`).join('\n');
    return { setup: setup.name, mode, round, ok: false, error: `${e instanceof Error ? e.message : String(e)}${outputs ? `\n${outputs}` : ''}` };
  } finally {
    if (pair) {
      try {
        await within(pair.stop(), 15_000);
      } catch (e) {
        st.log(`  [${setup.name}/${mode}] stop failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    await sup.stopAll();
    sup.close();
    st.supervisors.delete(sup);
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- summary and report --------------------------------------------------------------------------------

export interface SetupSummary {
  readonly setup: string;
  /** The no-proxy baseline. */
  readonly direct?: boolean;
  readonly description: string;
  readonly status: 'measured' | 'skipped' | 'failed';
  readonly reason?: string;
  readonly reuse?: ModeSummary;
  readonly handshake?: ModeSummary;
}

interface ModeSummary {
  readonly rounds: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly proxyCpuUsPerRequest: number;
  readonly errorRate: number;
  readonly otherLoad: number;
  readonly mtlsConnectionsPerRequest: number;
  /** MiB, client + server sidecars (each with descendants), medians over rounds. */
  readonly rssIdleMiB: number;
  readonly rssLoadMiB: number;
  readonly hwmMiB: number;
  /** Proportional set size after load (shared pages split among sharers), MiB; NaN when unreadable. */
  readonly pssLoadMiB: number;
  readonly rssMiBBySide: Record<string, { idle: number; load: number }>;
}

const MiB = (kib: number) => kib / 1024;

function summarize(ms: readonly Measurement[]): ModeSummary | undefined {
  const ok = ms.filter((m) => m.ok && m.wrk);
  if (ok.length === 0) return undefined;
  const med = (f: (m: Measurement) => number | undefined) => median(ok.map(f).filter((v): v is number => v !== undefined && Number.isFinite(v)));
  const sum = (rec: Record<string, MemoryKiB> | undefined, field: 'rss' | 'hwm', keys: readonly string[]) =>
    keys.reduce((a, k) => a + (rec?.[k]?.[field] ?? 0), 0);
  const sides = ['client', 'server'];
  const bySide: Record<string, { idle: number; load: number }> = {};
  const allKeys = new Set(ok.flatMap((m) => Object.keys(m.memoryKiB?.idle ?? {})));
  for (const k of allKeys) {
    bySide[k] = { idle: MiB(med((m) => m.memoryKiB?.idle[k]?.rss)), load: MiB(med((m) => m.memoryKiB?.afterLoad[k]?.rss)) };
  }
  return {
    rounds: ok.length,
    rps: med((m) => m.wrk?.rps),
    p50Ms: med((m) => m.wrk?.latencyMs.p50),
    p90Ms: med((m) => m.wrk?.latencyMs.p90),
    p99Ms: med((m) => m.wrk?.latencyMs.p99),
    proxyCpuUsPerRequest: med((m) => m.cpuUsPerRequest?.proxies),
    errorRate: med((m) => m.errorRate),
    otherLoad: med((m) => m.otherLoad),
    mtlsConnectionsPerRequest: med((m) => m.mtlsConnections?.perRequest),
    rssIdleMiB: MiB(med((m) => sum(m.memoryKiB?.idle, 'rss', sides))),
    rssLoadMiB: MiB(med((m) => sum(m.memoryKiB?.afterLoad, 'rss', sides))),
    hwmMiB: MiB(med((m) => sum(m.memoryKiB?.afterLoad, 'hwm', sides))),
    pssLoadMiB: MiB(med((m) => {
      const rec = m.memoryKiB?.afterLoad;
      if (!rec || sides.some((k) => rec[k] && rec[k].pss === null)) return undefined;
      return sides.reduce((a, k) => a + (rec[k]?.pss ?? 0), 0);
    })),
    rssMiBBySide: bySide,
  };
}

const fmtMs = (v: number) => (Number.isFinite(v) ? (v >= 10 ? v.toFixed(1) : v.toFixed(2)) : 'n/a');
const fmtMiB = (v: number) => (Number.isFinite(v) && v > 0 ? v.toFixed(1) : '-');
const fmtPct = (v: number) => (Number.isFinite(v) ? `${(v * 100).toFixed(v < 0.01 && v > 0 ? 2 : 0)}%` : 'n/a');
const fmtUs = (v: number) => (Number.isFinite(v) && v > 0 ? v.toFixed(1) : '-');

export function renderReport(summaries: readonly SetupSummary[], header: readonly string[], footer: readonly string[]): string {
  const find = (name: string) => summaries.find((s) => s.setup === name && s.status === 'measured');
  const nginx = find('nginx');
  const direct = find('direct');
  const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? fmtRatio(a / b) : 'n/a');
  const measured = summaries.filter((s) => s.status === 'measured' || s.reuse || s.handshake);

  const tput = summaries.map((s) => {
    const r = s.reuse;
    if (!r) return [s.setup, s.status === 'skipped' ? 'SKIPPED' : 'FAILED', '', '', '', '', '', '', '', '', '', ''];
    return [
      s.setup, fmtRate(r.rps), fmtMs(r.p50Ms), fmtMs(r.p90Ms), fmtMs(r.p99Ms),
      ratio(r.rps, nginx?.reuse?.rps), ratio(r.p99Ms, nginx?.reuse?.p99Ms), ratio(r.rps, direct?.reuse?.rps),
      fmtUs(r.proxyCpuUsPerRequest), s.direct ? '-' : ratio(r.proxyCpuUsPerRequest, nginx?.reuse?.proxyCpuUsPerRequest), fmtPct(r.errorRate), fmtPct(r.otherLoad),
    ];
  });
  const hs = summaries.map((s) => {
    const h = s.handshake;
    if (!h) return [s.setup, s.status === 'skipped' ? 'SKIPPED' : s.status === 'failed' ? 'FAILED' : 'n/a', '', '', '', '', '', '', '', ''];
    return [
      s.setup, fmtRate(h.rps), fmtMs(h.p50Ms), fmtMs(h.p99Ms), ratio(h.rps, nginx?.handshake?.rps),
      Number.isFinite(h.mtlsConnectionsPerRequest) ? h.mtlsConnectionsPerRequest.toFixed(3) : (s.setup === 'direct' ? '-' : 'n/a'),
      fmtUs(h.proxyCpuUsPerRequest), s.direct ? '-' : ratio(h.proxyCpuUsPerRequest, nginx?.handshake?.proxyCpuUsPerRequest), fmtPct(h.errorRate), fmtPct(h.otherLoad),
    ];
  });
  const mem = measured.filter((s) => s.reuse && Object.keys(s.reuse.rssMiBBySide).length > 0).map((s) => {
    const r = s.reuse as ModeSummary;
    const side = (k: string) => r.rssMiBBySide[k];
    const extra = Object.entries(r.rssMiBBySide).filter(([k]) => k !== 'client' && k !== 'server').map(([k, v]) => `${k} ${fmtMiB(v.idle)}→${fmtMiB(v.load)}`).join(', ');
    return [
      s.setup, fmtMiB(side('client')?.idle ?? 0), fmtMiB(side('client')?.load ?? 0), fmtMiB(side('server')?.idle ?? 0), fmtMiB(side('server')?.load ?? 0),
      fmtMiB(r.rssIdleMiB), fmtMiB(r.rssLoadMiB), fmtMiB(r.hwmMiB), fmtMiB(r.pssLoadMiB), ratio(r.rssLoadMiB, nginx?.reuse?.rssLoadMiB), extra || '-',
    ];
  });
  const bar = measured.filter((s) => !['nginx', 'direct'].includes(s.setup) && s.reuse && nginx?.reuse).map((s) => {
    const r = s.reuse as ModeSummary;
    const n = nginx?.reuse as ModeSummary;
    const pass = r.rps >= n.rps && r.p99Ms <= n.p99Ms;
    return `  ${s.setup.padEnd(12)} ${pass ? 'MEETS' : 'misses'} the bar: throughput ${fmtRatio(r.rps / n.rps)} of nginx (needs ≥ 1.00x), p99 ${fmtRatio(r.p99Ms / n.p99Ms)} of nginx (needs ≤ 1.00x)`;
  });
  const notMeasured = summaries.filter((s) => s.status !== 'measured').map((s) => `  ${s.setup}: ${s.status}${s.reason ? ` — ${s.reason.split('\n')[0]}` : ''}`);

  return [
    '',
    ...header,
    '',
    'Keep-alive throughput (reuse mode): requests/s and latency at the load generator',
    '',
    tput.length === 0 ? '  (nothing selected)' : formatTable(['setup', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'rps/nginx', 'p99/nginx', 'rps/direct', 'proxy CPU µs/req', 'CPU/nginx', 'errors', 'other load'], tput),
    '',
    'New connection per request (handshake mode): each request = one full mTLS handshake between the sidecars',
    '',
    hs.length === 0 ? '  (nothing selected)' : formatTable(['setup', 'handshakes/s', 'p50 ms', 'p99 ms', 'hs/nginx', 'mTLS conns/req', 'proxy CPU µs/hs', 'CPU/nginx', 'errors', 'other load'], hs),
    '',
    'Memory of the sidecars (VmRSS MiB, each with its descendants; idle = started + one request; load = right after the keep-alive run)',
    '',
    mem.length > 0
      ? formatTable(['setup', 'client idle', 'client load', 'server idle', 'server load', 'total idle', 'total load', 'peak (HWM)', 'PSS load', 'load/nginx', 'other processes'], mem)
      : '  (no proxy measured)',
    '',
    ...(bar.length > 0 ? ['Issue 5 bar (16 connections, keep-alive; vs nginx in this run):', ...bar, ''] : []),
    ...(notMeasured.length > 0 ? ['Not measured:', ...notMeasured, ''] : []),
    ...footer,
    '',
  ].join('\n');
}

// --- the run -------------------------------------------------------------------------------------------

async function machine(): Promise<Record<string, string | number>> {
  const v = (name: string, flag: string) => {
    const path = findExecutable(name);
    return path ? versionOf(path, flag) : `${name} not installed`;
  };
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    logicalCpus: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    node: process.version,
    nodeOpenssl: process.versions.openssl ?? 'unknown',
    nginx: v('nginx', '-v'),
    haproxy: v('haproxy', '-v'),
    wrk: v('wrk', '-v'),
  };
}

/**
 * Runs the proxy bench over `setups` with the command-line `argv`; prints the report, writes the JSON.
 * Resolves with the process exit code (0: everything selected was measured or skipped for a missing program).
 */
export async function runProxyBench(argv: readonly string[], setups: readonly PairSetup[] = registeredPairs()): Promise<number> {
  const opts = readOptions(argv, setups);
  const log = (m: string) => process.stderr.write(`${m}\n`);
  const selected = setups.filter((s) => !opts.only || opts.only.includes(s.name));

  // Programs: wrk always; each selected setup's; nginx for the app when asked.
  const wanted = [...new Set(['wrk', ...selected.flatMap((s) => s.requires), ...(opts.app === 'nginx' ? ['nginx'] : [])])];
  const toolCheck = ensureTools(wanted, opts.install, log);
  for (const n of toolCheck.notes) log(n);
  const tools = new Map(toolCheck.found);
  const nginxPath = findExecutable('nginx');
  if (nginxPath) tools.set('nginx', nginxPath);
  const appKind: AppKind = opts.app === 'auto' ? (tools.has('nginx') ? 'nginx' : 'node') : opts.app;

  const summaries = new Map<string, SetupSummary>();
  const runnable: PairSetup[] = [];
  for (const s of selected) {
    const missing = ['wrk', ...s.requires, ...(appKind === 'nginx' ? ['nginx'] : [])].filter((p) => !tools.has(p));
    if (missing.length > 0) {
      summaries.set(s.name, {
        setup: s.name, description: s.description, status: 'skipped',
        reason: `${missing.join(', ')} not installed; install with: ${toolCheck.installCommand ?? 'apt-get install -y ' + missing.join(' ')}`,
      });
    } else {
      runnable.push(s);
    }
  }
  if (toolCheck.missing.length > 0) log(`missing: ${toolCheck.missing.join(', ')}; to install: ${toolCheck.installCommand}`);

  // Everything below is undone on any exit: processes (by process group) and the temporary directory.
  const supervisors = new Set<Supervisor>();
  const root = mkdtempSync(join(tmpdir(), 'keymesh-proxy-bench-'));
  const cleanupSync = () => {
    for (const s of supervisors) s.killAllSync();
    rmSync(root, { recursive: true, force: true });
  };
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      cleanupSync();
      process.exit(130);
    }
    stopping = true;
    log(`\n${signal}: stopping every process of the bench (no results written)...`);
    void within(Promise.all([...supervisors].map((s) => s.stopAll())), 8_000).finally(() => {
      cleanupSync();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  process.on('exit', cleanupSync);

  const started = performance.now();
  const loadBefore = loadavg()[0] ?? Number.NaN;
  const measurements: Measurement[] = [];
  let appInfo: { kind: AppKind; port: number } | undefined;
  let env: Record<string, string | number> = {};
  let fatal: unknown;
  try {
    env = await machine();
    if (runnable.length > 0) {
      log(`certificates and app (${appKind}) in ${root} ...`);
      const certDir = join(root, 'certs');
      mkdirSync(certDir, { mode: 0o700 });
      const certs = await makeMtlsFiles(certDir);
      const appSup = new Supervisor();
      supervisors.add(appSup);
      const appDir = join(root, 'app');
      mkdirSync(appDir, { mode: 0o700 });
      const app = await startApp(appSup, appKind, appDir, opts.bodyBytes, tools.get('nginx'));
      appInfo = { kind: app.kind, port: app.port };
      const st: RunState = { opts, root, certs, app, tools, supervisors, log };
      const modes = PAIR_MODES.filter((m) => m === 'reuse' || opts.handshake);
      for (let round = 0; round < opts.rounds; round++) {
        // Rotate the order each round so a busy moment of the machine does not always land on the same setup.
        const order = runnable.map((_, i) => runnable[(i + round) % runnable.length] as PairSetup);
        for (const setup of order) {
          for (const mode of modes) {
            if (stopping) return 130;
            log(`round ${round + 1}/${opts.rounds}: ${setup.name}, ${mode} ...`);
            const m = await measure(st, setup, mode, round);
            measurements.push(m);
            if (m.ok && m.wrk) {
              log(`  ${fmtRate(m.wrk.rps)} req/s, p50 ${fmtMs(m.wrk.latencyMs.p50)} ms, p99 ${fmtMs(m.wrk.latencyMs.p99)} ms, proxies ${fmtUs(m.cpuUsPerRequest?.proxies ?? Number.NaN)} µs CPU/req${m.mtlsConnections ? `, mTLS conns/req ${m.mtlsConnections.perRequest.toFixed(3)}` : ''}, other load ${fmtPct(m.otherLoad ?? Number.NaN)}`);
            } else if (!stopping) {
              log(`  FAILED: ${m.error}`);
            }
            if (app.proc.exitStatus()) throw new Error(`the app exited during the run:\n${app.proc.output()}`);
          }
        }
      }
      await appSup.stopAll();
      supervisors.delete(appSup);
    }
  } catch (e) {
    fatal = e;
  } finally {
    await within(Promise.all([...supervisors].map((s) => s.stopAll())), 10_000);
    cleanupSync();
    for (const s of signals) process.off(s, onSignal);
    process.off('exit', cleanupSync);
  }
  const elapsedS = (performance.now() - started) / 1000;
  const loadAfter = loadavg()[0] ?? Number.NaN;

  for (const s of runnable) {
    const mine = measurements.filter((m) => m.setup === s.name);
    const reuse = summarize(mine.filter((m) => m.mode === 'reuse'));
    const handshake = summarize(mine.filter((m) => m.mode === 'handshake'));
    const failures = mine.filter((m) => !m.ok);
    summaries.set(s.name, {
      setup: s.name, description: s.description, ...(s.direct ? { direct: true } : {}),
      status: reuse ? 'measured' : 'failed',
      ...(failures.length > 0 ? { reason: failures.map((f) => `${f.mode} round ${f.round + 1}: ${f.error}`).join('\n') } : {}),
      ...(reuse ? { reuse } : {}),
      ...(handshake ? { handshake } : {}),
    });
  }
  const ordered = setups.map((s) => summaries.get(s.name)).filter((s): s is SetupSummary => s !== undefined);

  const header = [
    `Proxy pairs: wrk → client-side sidecar → mTLS (TLS 1.3, X25519, ECDSA P-256, both sides verified) → server-side sidecar → app (${appInfo?.kind ?? appKind}, ${opts.bodyBytes}-byte body)`,
    `wrk: ${opts.connections} connections, ${opts.threads} thread(s), ${opts.seconds} s per keep-alive run, ${opts.handshake ? `${opts.handshakeSeconds} s per handshake run, ` : ''}${opts.warmupSeconds} s untimed warm-up before each; ${opts.rounds} round(s), medians${opts.quick ? ' (--quick: rough numbers)' : ''}`,
  ];
  const busy = measurements.filter((m) => m.ok && (m.otherLoad ?? 0) > opts.quietThreshold);
  const erring = measurements.filter((m) => m.ok && (m.errorRate ?? 0) > 0.001);
  const notes = [...new Set(measurements.filter((m) => m.ok && m.note).map((m) => m.note as string))];
  const footer = [
    ...notes.flatMap((n) => [`NOTE: ${n}`, '']),
    ...(erring.length > 0
      ? [`WARNING: the load generator saw errors (socket errors or non-2xx) in ${erring.map((m) => `${m.setup}/${m.mode} ${fmtPct(m.errorRate ?? Number.NaN)}`).join(', ')}; see the JSON (wrk.raw).`, '']
      : []),
    ...(busy.length > 0
      ? [`WARNING: ${busy.length} of ${measurements.filter((m) => m.ok).length} measurements ran while other processes used more than ${(opts.quietThreshold * 100).toFixed(0)}% of the CPUs (${busy.map((m) => `${m.setup}/${m.mode}${opts.rounds > 1 ? `#${m.round + 1}` : ''} ${fmtPct(m.otherLoad ?? Number.NaN)}`).join(', ')}): their req/s and latencies are skewed; compare CPU µs/req, or rerun on a quiet machine / with --rounds 3.`, '']
      : []),
    'rps/nginx, hs/nginx: above 1.00x is faster than nginx; p99/nginx: below 1.00x is better; rps/direct: share of the no-proxy ceiling.',
    'Memory: RSS counts shared pages (libraries) in every process; PSS splits them among the processes sharing them (nginx: master + worker).',
    'proxy CPU µs/req: CPU time of both sidecars (with descendants) per request; CPU/nginx: that divided by nginx\'s (below 1.00x = cheaper).',
    '  It is the steadiest figure on a shared machine: other processes change req/s and latency a lot, CPU per request much less.',
    `other load: CPU used by processes outside the bench during the run, as a share of all ${env.logicalCpus ?? availableParallelism()} CPUs (high = numbers skewed).`,
    `Nothing is pinned: wrk, both sidecars and the app share the ${env.logicalCpus ?? availableParallelism()} CPUs, so throughput is a measure of CPU cost per request as much as of speed; latency percentiles are wrk's (closed loop, coordinated omission not corrected).`,
    ...toolCheck.notes,
    `machine: ${env.cpu ?? '?'}, ${env.logicalCpus ?? '?'} CPUs, ${env.os ?? '?'}; node ${process.version} (OpenSSL ${process.versions.openssl}); ${env.nginx ?? ''}; ${env.haproxy ?? ''}; ${env.wrk ?? ''}`,
    `load: 1-minute load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after; total bench time ${elapsedS.toFixed(1)} s`,
  ];
  process.stdout.write(renderReport(ordered, header, footer));
  for (const s of ordered.filter((x) => x.status === 'failed')) process.stdout.write(`\n${s.setup} failed:\n${s.reason ?? ''}\n`);

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const jsonPath = opts.json ?? fileURLToPath(new URL(`../results/proxy-${stamp}.json`, import.meta.url));
  mkdirSync(join(jsonPath, '..'), { recursive: true });
  writeFileSync(jsonPath, `${JSON.stringify({
    benchmark: 'proxy',
    date: new Date().toISOString(),
    machine: env,
    options: opts,
    app: appInfo,
    elapsedSeconds: Number(elapsedS.toFixed(1)),
    loadAverage1m: { before: loadBefore, after: loadAfter },
    summaries: ordered,
    measurements,
    ...(fatal ? { fatal: fatal instanceof Error ? (fatal.stack ?? fatal.message) : String(fatal) } : {}),
  }, null, 2)}\n`);
  process.stdout.write(`results written to ${jsonPath}\n`);
  if (fatal) {
    process.stderr.write(`bench failed: ${fatal instanceof Error ? (fatal.stack ?? fatal.message) : String(fatal)}\n`);
    return 1;
  }
  const anyMeasured = ordered.some((s) => s.status === 'measured');
  const anyFailed = ordered.some((s) => s.status === 'failed' || (s.reason !== undefined && s.status === 'measured'));
  return !anyMeasured || anyFailed ? 1 : 0;
}

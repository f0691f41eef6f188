// Processes of the proxy bench: a supervisor that starts every child in its own process group and ends each
// group (by its id) on stop, on failure, on Ctrl-C and at exit; free loopback ports; waiting for a port; and
// what /proc says about a process tree (RSS, CPU time) and about the whole machine (CPU busy time).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { delimiter, join } from 'node:path';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** `promise`'s value, or undefined when it has not settled within `ms` (the timer does not outlive the race). */
export async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((r) => {
    timer = setTimeout(() => r(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Bytes of a child's output kept for error messages (stdout and stderr together, the latest). */
const OUTPUT_KEEP = 16 * 1024;
/** How long a group gets between SIGTERM and SIGKILL. */
const TERM_GRACE_MS = 3_000;

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ExitStatus>;
  /** Set once the process has exited. */
  exitStatus(): ExitStatus | undefined;
  /** The last OUTPUT_KEEP bytes of its stdout and stderr, interleaved as they arrived. */
  output(): string;
}

export interface SpawnOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Stdout is collected in full (for wrk); otherwise only the tail is kept. */
  readonly collectStdout?: boolean;
}

interface Entry {
  readonly proc: ManagedProcess;
  stdout: Buffer[];
}

/**
 * Starts children in their own process groups (`detached`), so that ending a child also ends whatever it
 * forked (nginx's worker) — by the group's id, never by name. Everything started here is stopped by
 * `stopAll`, and SIGKILLed by `killAllSync` (meant for `process.on('exit')`).
 */
export class Supervisor {
  private readonly live = new Map<number, Entry>();
  private closed = false;

  spawn(name: string, command: string, args: readonly string[], opts: SpawnOptions = {}): ManagedProcess {
    if (this.closed) throw new Error(`not starting ${name}: the bench is shutting down`);
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let tail = '';
    const keep = (b: Buffer) => {
      tail += b.toString('utf8');
      if (tail.length > OUTPUT_KEEP) tail = tail.slice(tail.length - OUTPUT_KEEP);
    };
    let status: ExitStatus | undefined;
    const exited = new Promise<ExitStatus>((resolve) => {
      child.on('error', (e) => {
        keep(Buffer.from(`\n[spawn error: ${e.message}]\n`));
        status ??= { code: -1, signal: null };
        resolve(status);
      });
      child.on('exit', (code, signal) => {
        status = { code, signal };
        resolve(status);
      });
    });
    if (child.pid === undefined) {
      // spawn failed synchronously (ENOENT is reported through 'error'); keep the shape.
      const proc: ManagedProcess = { name, pid: -1, child, exited, exitStatus: () => status, output: () => tail };
      return proc;
    }
    const pid = child.pid;
    const entry: Entry = {
      proc: { name, pid, child, exited, exitStatus: () => status, output: () => tail },
      stdout: [],
    };
    child.stdout?.on('data', (b: Buffer) => {
      if (opts.collectStdout) entry.stdout.push(b);
      keep(b);
    });
    child.stderr?.on('data', keep);
    this.live.set(pid, entry);
    return entry.proc;
  }

  /** The processes started here and not stopped yet. */
  processes(): ManagedProcess[] {
    return [...this.live.values()].map((e) => e.proc);
  }

  /** Full stdout of a process started with collectStdout. */
  stdoutOf(proc: ManagedProcess): string {
    return Buffer.concat(this.live.get(proc.pid)?.stdout ?? []).toString('utf8');
  }

  /** SIGTERM to the process's group, SIGKILL after TERM_GRACE_MS, then SIGKILL to anything left in the group. */
  async stop(proc: ManagedProcess): Promise<void> {
    if (proc.pid <= 0) return;
    if (!proc.exitStatus()) {
      signalGroup(proc.pid, 'SIGTERM');
      if (!(await within(proc.exited, TERM_GRACE_MS))) {
        signalGroup(proc.pid, 'SIGKILL');
        await within(proc.exited, TERM_GRACE_MS);
      }
    }
    // Leftovers of the group (a worker whose master died): the group id is the leader's pid.
    if (groupMembers(proc.pid).length > 0) signalGroup(proc.pid, 'SIGKILL');
    this.live.delete(proc.pid);
  }

  /** Stops every process this supervisor started that is still registered, all at once, bounded. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.live.values()].map((e) => this.stop(e.proc)));
  }

  /** No more spawns; SIGKILL every registered group now (synchronous: for exit handlers). */
  killAllSync(): void {
    this.closed = true;
    for (const pid of this.live.keys()) signalGroup(pid, 'SIGKILL');
    this.live.clear();
  }

  close(): void {
    this.closed = true;
  }
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

// --- /proc ---------------------------------------------------------------------------------------------

interface StatLine {
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  /** utime + stime, clock ticks. */
  readonly ticks: number;
  /** cutime + cstime: CPU time of waited-for children, clock ticks. */
  readonly childTicks: number;
}

function readStat(pid: number | 'self'): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): field n is f[n - 3].
  const num = (n: number) => Number(f[n - 3]);
  return {
    pid: pid === 'self' ? process.pid : pid,
    ppid: num(4),
    pgrp: num(5),
    ticks: num(14) + num(15),
    childTicks: num(16) + num(17),
  };
}

function allStats(): StatLine[] {
  const out: StatLine[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) out.push(s);
  }
  return out;
}

function groupMembers(pgid: number): number[] {
  return allStats().filter((s) => s.pgrp === pgid).map((s) => s.pid);
}

/** `pid` and all its descendants that are alive now. */
export function processTree(pid: number): number[] {
  const stats = allStats();
  const children = new Map<number, number[]>();
  for (const s of stats) {
    const list = children.get(s.ppid) ?? [];
    list.push(s.pid);
    children.set(s.ppid, list);
  }
  if (!stats.some((s) => s.pid === pid)) return [];
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && out.length < 10_000) {
    const p = queue.shift() as number;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(r.stdout?.trim());
  return Number.isInteger(n) && n > 0 ? n : 100;
})();

/** CPU seconds (user + system) used so far by `pid` and its living descendants. */
export function treeCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) ticks += readStat(p)?.ticks ?? 0;
  return ticks / CLK_TCK;
}

/** CPU seconds of this process, and of its children that it has waited for (e.g. a finished wrk). */
export function selfCpuSeconds(): { self: number; reapedChildren: number } {
  const s = readStat('self');
  return { self: (s?.ticks ?? 0) / CLK_TCK, reapedChildren: (s?.childTicks ?? 0) / CLK_TCK };
}

/** Busy and total CPU seconds of the whole machine (all CPUs) from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
  const total = v.slice(0, 8).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK };
}

export interface MemoryKiB {
  /** VmRSS summed over the process tree. */
  readonly rss: number;
  /** VmHWM (peak RSS) summed over the process tree. */
  readonly hwm: number;
  /** Pss (shared pages split among the processes sharing them) summed, when smaps_rollup is readable. */
  readonly pss: number | null;
  /** Per process: pid, command name, VmRSS. */
  readonly processes: { pid: number; name: string; rss: number }[];
}

function statusField(text: string, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

export function treeMemory(pid: number): MemoryKiB {
  let rss = 0;
  let hwm = 0;
  let pss: number | null = 0;
  const processes: MemoryKiB['processes'] = [];
  for (const p of processTree(pid)) {
    let status: string;
    try {
      status = readFileSync(`/proc/${p}/status`, 'utf8');
    } catch {
      continue;
    }
    const r = statusField(status, 'VmRSS');
    rss += r;
    hwm += statusField(status, 'VmHWM');
    processes.push({ pid: p, name: /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?', rss: r });
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      if (pss !== null) pss = m ? pss + Number(m[1]) : null;
    } catch {
      pss = null;
    }
  }
  return { rss, hwm, pss, processes };
}

// --- ports ---------------------------------------------------------------------------------------------

const handedOut = new Set<number>();

/** A loopback TCP port that was free a moment ago and has not been handed out before in this run. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const p = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(p));
      });
    });
    if (port > 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('could not find a free loopback port in 50 attempts');
}

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1_000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Resolves once 127.0.0.1:`port` accepts a TCP connection; rejects after `timeoutMs` or when `proc` exits first. */
export async function waitForPort(port: number, opts: { proc?: ManagedProcess; timeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    const st = opts.proc?.exitStatus();
    if (st) throw new Error(`${opts.proc?.name} exited (${st.code ?? st.signal}) before listening on ${port}:\n${opts.proc?.output().trim()}`);
    if (await tryConnect(port)) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${opts.timeoutMs ?? 15_000} ms${opts.proc ? ` (${opts.proc.name}):\n${opts.proc.output().trim()}` : ''}`);
}

// --- executables ---------------------------------------------------------------------------------------

/** The path of an executable, looked up in PATH and then in the sbin directories (nginx, haproxy live there). */
export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

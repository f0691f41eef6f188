// `keymesh demo ...` as a new user runs it, for the demo integration tests: a real process with an empty HOME and
// no credentials in the environment, its output cut at the walkthrough's headings, and the checks around it
// (commands run as real processes, ports that must be closed, the example files being the demo's calls).
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after } from 'node:test';
import { KEYMESH_MAIN, makeTempDir, removeDir, REPO_ROOT } from './keymesh-server.ts';

const children = new Set<ChildProcess>();
const dirs: string[] = [];

/**
 * Registers (with node:test's `after`) the SIGKILL of every demo still running and the removal of removeAtEnd's
 * directories. Call once per test file.
 */
export function cleanUpAfterTests(): void {
  after(() => {
    for (const child of children) child.kill('SIGKILL');
    for (const dir of dirs.splice(0)) removeDir(dir);
  });
}

/** Directories removed after the file's tests (see cleanUpAfterTests). */
export function removeAtEnd(...paths: string[]): void {
  dirs.push(...paths);
}

export interface Demo {
  /** `keymesh demo ARGS`, for messages. */
  readonly name: string;
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  readonly exited: Promise<number | string>;
}

const CREDENTIALS = ['KEYMESH_ACCESS_KEY_ID', 'KEYMESH_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'KEYMESH_CA_PASSPHRASE'];

/**
 * `node src/cli/main.ts demo ARGS` (ARGS: the walkthrough's name and options) with a fresh empty HOME, no keymesh
 * or AWS credentials, and NO_COLOR.
 */
export function startDemo(args: readonly string[]): Demo {
  const home = makeTempDir('keymesh-demo-home-');
  removeAtEnd(home);
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, NO_COLOR: '1' };
  for (const name of CREDENTIALS) delete env[name];
  const child = spawn(process.execPath, [KEYMESH_MAIN, 'demo', ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
    if (process.env.KEYMESH_TEST_VERBOSE) process.stderr.write(d);
  });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => {
    children.delete(child);
    resolve(code ?? signal ?? 'unknown');
  }));
  return { name: ['keymesh demo', ...args].join(' '), child, stdout: () => out, stderr: () => err, exited };
}

/** `promise`, or a rejection with `what()` after `ms`. */
function bounded<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error(what())), ms); }),
  ]).finally(() => clearTimeout(timer));
}

const output = (demo: Demo) => `${demo.stdout()}\n${demo.stderr()}`;

/**
 * Waits (at most `ms`) for the demo to end by itself, and fails unless it succeeded: exit code 0, no ✘, and quiet
 * components (no info logs from the proxies or the control plane, on either stream). Its stdout.
 */
export async function succeeded(demo: Demo, ms: number): Promise<string> {
  const code = await bounded(demo.exited, ms, () => `${demo.name} still running after ${ms / 1000} s:\n${output(demo)}`);
  const out = demo.stdout();
  assert.equal(code, 0, `exit ${code}:\n${out}\n${demo.stderr()}`);
  assert.doesNotMatch(out, /✘/);
  assert.doesNotMatch(`${out}\n${demo.stderr()}`, /keymesh (proxy|xds) info|"level":30/);
  return out;
}

/** The directory the demo's last line says it removed (`removed DIR`) is gone. */
export function assertRemovedItsDirectory(out: string): void {
  const dir = /removed (\/\S+?)\.?$/m.exec(out)?.[1];
  assert.ok(dir, `no "removed DIR" line:\n${out}`);
  assert.equal(existsSync(dir), false, `${dir} is still there`);
}

/** Resolves once a `--keep` demo says it stays up (within `ms`); rejects if it exits first. */
export function keptRunning(demo: Demo, ms: number): Promise<void> {
  return bounded(new Promise<void>((resolve, reject) => {
    const check = () => { if (/press Ctrl-C to stop/.test(demo.stdout())) resolve(); };
    demo.child.stdout!.on('data', check);
    void demo.exited.then((code) => reject(new Error(`${demo.name} exited (${code}) before it was ready:\n${output(demo)}`)));
  }), ms, () => `${demo.name} not ready after ${ms / 1000} s:\n${output(demo)}`);
}

/** SIGINT to a `--keep` demo: it exits with 0 within 30 s, leaving its directory `dir` gone and nothing listening on `listening`. */
export async function assertStopsOnSigint(demo: Demo, dir: string, listening: readonly (readonly [string, number])[]): Promise<void> {
  demo.child.kill('SIGINT');
  const code = await bounded(demo.exited, 30_000, () => `${demo.name} still running 30 s after SIGINT:\n${output(demo)}`);
  assert.equal(code, 0, `exit ${code}:\n${output(demo)}`);
  assert.equal(existsSync(dir), false, `${dir} is still there`);
  for (const [host, port] of listening) assert.ok(await refused(host, port), `${host}:${port} still accepts connections`);
}

export interface Run { readonly code: number | null; readonly stdout: string; readonly stderr: string }

/** A command as a real process, asynchronously, from the repository, bounded in time; never throws (code null: killed). */
export function run(file: string, args: readonly string[], o: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: REPO_ROOT, env: o.env ?? process.env, timeout: o.timeoutMs ?? 60_000, maxBuffer: 8 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

/**
 * The output cut at its headings: each of `headings` is matched against every line; a line it matches from its
 * start begins a section, named by the pattern's first group. Text before the first heading is left out.
 */
export function sections(output: string, headings: readonly RegExp[]): Map<string, string> {
  const map = new Map<string, string>();
  let name: string | undefined;
  let start = 0;
  let at = 0;
  for (const line of output.split('\n')) {
    const m = headings.map((h) => h.exec(line)).find((r) => r?.index === 0);
    if (m) {
      if (name !== undefined) map.set(name, output.slice(start, at));
      name = m[1] ?? m[0];
      start = at;
    }
    at += line.length + 1;
  }
  if (name !== undefined) map.set(name, output.slice(start));
  return map;
}

/** The values of the stat lines `NAME: N` whose name matches `name` (a regular expression source), in order. */
export function statValues(text: string, name: string): number[] {
  return [...text.matchAll(new RegExp(`^\\s*${name}: (\\d+)$`, 'gm'))].map((m) => Number(m[1]));
}

/** The value of the last stat line matching `name` (a regular expression source); fails when there is none. */
export function stat(text: string, name: string): number {
  const values = statValues(text, name);
  assert.ok(values.length >= 1, `no stat line ${name} in:\n${text}`);
  return values.at(-1)!;
}

/** Whether a connection to host:port is refused (false when it connects, or nothing answers in 2 s). */
function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(2_000, () => { socket.destroy(); resolve(false); });
    socket.once('connect', () => { socket.destroy(); resolve(false); });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/** Whether host:port refuses connections within `ms` (a process that was sent SIGTERM ends on its own time). */
export async function refusedWithin(host: string, port: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await refused(host, port)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** An App Mesh operation as the AWS CLI names it: CreateVirtualNode -> create-virtual-node. */
export function cliOperation(operation: string): string {
  return operation.replace(/[A-Z]/g, (c, i: number) => `${i === 0 ? '' : '-'}${c.toLowerCase()}`);
}

/**
 * examples/SEED: its JSON files are exactly `calls`' files, each with the call's input, and its steps.sh sends
 * each with `appmesh <cli operation> <file>` (`sentAs`: the ways the script may write a file's name there).
 */
export function assertExamplesAreCalls(
  seed: string,
  calls: readonly { readonly file: string; readonly operation: string; readonly input: unknown }[],
  sentAs: (file: string) => string[] = (file) => [file],
): void {
  const examples = join(REPO_ROOT, 'examples', seed);
  assert.deepEqual(readdirSync(examples).filter((f) => f.endsWith('.json')).sort(), calls.map((c) => c.file).sort());
  const script = readFileSync(join(examples, 'steps.sh'), 'utf8');
  for (const call of calls) {
    assert.deepEqual(JSON.parse(readFileSync(join(examples, call.file), 'utf8')), call.input, call.file);
    const cli = cliOperation(call.operation);
    assert.ok(sentAs(call.file).some((sent) => script.includes(`appmesh ${cli} ${sent}`)), `steps.sh does not send ${call.file} with ${cli}`);
  }
}

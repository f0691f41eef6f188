// `keymesh demo` as a new user runs it (`npm start`): a real process with an empty HOME and no credentials in
// the environment. It must walk through seed 004 to a successful end, showing each step's outcome and the stats
// the seed states; with --keep it stays up until SIGINT, then leaves no directory and no listening port behind.
// The example files (examples/seed004/) must be the demo's own calls.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { seed004Calls } from '../../src/cli/demo/seed004.ts';
import { KEYMESH_MAIN, makeTempDir, removeDir, REPO_ROOT } from '../support/keymesh-server.ts';

const RUN_MS = 120_000;
const children = new Set<ChildProcess>();
const homes: string[] = [];

after(() => {
  for (const child of children) child.kill('SIGKILL');
  for (const home of homes) removeDir(home);
});

interface Demo {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  readonly exited: Promise<number | string>;
}

/** `node src/cli/main.ts demo ARGS` with a fresh empty HOME and no keymesh or AWS credentials set. */
function startDemo(args: string[]): Demo {
  const home = makeTempDir('keymesh-demo-home-');
  homes.push(home);
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, NO_COLOR: '1' };
  for (const name of ['KEYMESH_ACCESS_KEY_ID', 'KEYMESH_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'KEYMESH_CA_PASSPHRASE']) delete env[name];
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
  return { child, stdout: () => out, stderr: () => err, exited };
}

function bounded<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error(what())), ms); }),
  ]).finally(() => clearTimeout(timer));
}

/** The output cut at its headings: `Setup`, `Part 1: ...`, `Step 1/5: ...`, ..., `Done`. */
function sections(output: string): Map<string, string> {
  const map = new Map<string, string>();
  const parts = output.split(/^(?=Setup$|Part 1:|Step \d\/5:|Done$|Still running)/m);
  for (const part of parts) {
    const m = /^(Setup|Part 1|Step \d|Done|Still running)/.exec(part);
    if (m) map.set(m[1]!, part);
  }
  return map;
}

/** The value of the one stat line matching `name` (a regular expression source) in a section. */
function stat(section: string, name: string): number {
  const values = [...section.matchAll(new RegExp(`^\\s+${name}: (\\d+)$`, 'gm'))].map((m) => Number(m[1]));
  assert.ok(values.length >= 1, `no stat line ${name} in:\n${section}`);
  return values.at(-1)!;
}

const CT_LISTENER = 'listener\\.127\\.0\\.0\\.\\d+_15000\\.ssl';
const GW_CLUSTER = 'cluster\\.cds_egress_ColorApp-MutualTLS_colorteller-vn_http_9080\\.ssl';

function refused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.setTimeout(2_000, () => { socket.destroy(); resolve(false); });
    socket.once('connect', () => { socket.destroy(); resolve(false); });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

test('keymesh demo walks through seed 004 and shows each step as the seed states it', { timeout: RUN_MS + 30_000 }, async () => {
  const demo = startDemo([]);
  const code = await bounded(demo.exited, RUN_MS, () => `keymesh demo still running after ${RUN_MS / 1000} s:\n${demo.stdout()}\n${demo.stderr()}`);
  const out = demo.stdout();
  assert.equal(code, 0, `exit ${code}:\n${out}\n${demo.stderr()}`);
  assert.doesNotMatch(out, /✘/);
  // Quiet components: no info logs from the proxies or the control plane, on either stream.
  assert.doesNotMatch(`${out}\n${demo.stderr()}`, /keymesh (proxy|xds) info|"level":30/);

  const s = sections(out);
  for (const heading of ['Setup', 'Part 1', 'Step 1', 'Step 2', 'Step 3', 'Step 4', 'Step 5', 'Done']) assert.ok(s.has(heading), `no section ${heading}:\n${out}`);
  // Each step says which App Mesh call made the change, and checked its outcome.
  for (const [heading, operation] of [['Step 1', 'update-virtual-node'], ['Step 2', 'update-virtual-gateway'], ['Step 3', 'update-virtual-gateway'], ['Step 4', 'update-virtual-node'], ['Step 5', 'update-virtual-gateway']] as const) {
    assert.match(s.get(heading)!, new RegExp(`\\$ aws appmesh ${operation} --cli-input-json file://examples/seed004/step${heading.at(-1)}-`));
    assert.match(s.get(heading)!, /PUT \/v20190125\/meshes\/ColorApp-MutualTLS\/virtual(Node|Gateway)s\/[a-z-]+: 200/);
    assert.match(s.get(heading)!, /✔ as the seed says/);
  }

  // Part 1: plain HTTP, no TLS handshake yet.
  assert.match(s.get('Part 1')!, /^\s+200 white$/m);
  assert.match(s.get('Part 1')!, /grep ssl\.handshake.*\n\s+\(no output\)/);

  // Step 1: success over TLS; the colorteller's handshakes rise and ssl.no_certificate equals them.
  const step1 = s.get('Step 1')!;
  assert.match(step1, /^\s+200 white$/m);
  const handshakes1 = stat(step1, `${CT_LISTENER}\\.handshake`);
  assert.ok(handshakes1 >= 1);
  assert.equal(stat(step1, `${CT_LISTENER}\\.no_certificate`), handshakes1);
  assert.ok(stat(step1, `${GW_CLUSTER}\\.handshake`) >= 1);

  // Step 2: the wrong SAN: the request fails and the gateway's ssl.fail_verify_san counts it.
  const step2 = s.get('Step 2')!;
  assert.match(step2, /^\s+5\d\d upstream connect error/m);
  assert.ok(stat(step2, `${GW_CLUSTER}\\.fail_verify_san`) > 0);

  // Step 3: the right SAN: success again.
  assert.match(s.get('Step 3')!, /^\s+200 white$/m);

  // Step 4: a client certificate is required: the request fails, ssl.fail_verify_no_cert counts it.
  const step4 = s.get('Step 4')!;
  assert.match(step4, /^\s+5\d\d /m);
  assert.ok(stat(step4, `${CT_LISTENER}\\.fail_verify_no_cert`) > 0);

  // Step 5: mutual TLS: success; more handshakes than handshakes without a client certificate.
  const step5 = s.get('Step 5')!;
  assert.match(step5, /^\s+200 white$/m);
  const handshakes5 = stat(step5, `${CT_LISTENER}\\.handshake`);
  const noCert5 = stat(step5, `${CT_LISTENER}\\.no_certificate`);
  assert.ok(handshakes5 > handshakes1, `handshakes ${handshakes1} -> ${handshakes5}`);
  assert.ok(handshakes5 > noCert5, `handshakes ${handshakes5}, no_certificate ${noCert5}`);

  // The summary, and nothing left behind.
  assert.match(s.get('Done')!, /mutual TLS/);
  const dir = /removed (\/\S+?)\.?$/m.exec(out)?.[1];
  assert.ok(dir, `no "removed DIR" line:\n${out}`);
  assert.equal(existsSync(dir), false, `${dir} is still there`);
});

test('keymesh demo --keep stays up until SIGINT, then leaves no directory and no listening port behind', { timeout: RUN_MS + 60_000 }, async () => {
  const demo = startDemo(['--keep']);
  await bounded(new Promise<void>((resolve, reject) => {
    const check = () => { if (/press Ctrl-C to stop/.test(demo.stdout())) resolve(); };
    demo.child.stdout!.on('data', check);
    void demo.exited.then((code) => reject(new Error(`keymesh demo --keep exited (${code}) before it was ready:\n${demo.stdout()}\n${demo.stderr()}`)));
  }), RUN_MS, () => `keymesh demo --keep not ready after ${RUN_MS / 1000} s:\n${demo.stdout()}\n${demo.stderr()}`);
  const out = demo.stdout();
  const s = sections(out);
  const keep = s.get('Still running') ?? '';
  // How to poke it: curl through the gateway, the admin ports' stats, the AWS CLI with the credentials.
  const gateway = /^\s+curl (http:\/\/(127\.0\.0\.\d+):9080\/)$/m.exec(keep);
  assert.ok(gateway, `no curl through the gateway in:\n${keep}`);
  assert.match(keep, /curl -s 127\.0\.0\.1:\d+\/stats \| grep ssl/);
  assert.match(keep, /^\s+export AWS_ACCESS_KEY_ID=\S+ AWS_SECRET_ACCESS_KEY=\S+ AWS_DEFAULT_REGION=us-east-1$/m);
  assert.match(keep, /aws appmesh describe-virtual-node .*--endpoint-url http:\/\/127\.0\.0\.1:\d+/);
  // It does keep running: the gateway answers.
  const answer = await fetch(gateway[1]!);
  assert.equal(answer.status, 200);
  assert.equal(await answer.text(), 'white');

  // Everything it listens on, as the output names it.
  const listening: [string, number][] = [];
  for (const m of out.matchAll(/(?:https?:\/\/)?(127\.0\.0\.\d+):(\d+)/g)) listening.push([m[1]!, Number(m[2])]);
  for (const m of out.matchAll(/keymesh proxy on (127\.0\.0\.\d+) \(ingress :(\d+), egress :(\d+)\)/g)) listening.push([m[1]!, Number(m[2])], [m[1]!, Number(m[3])]);
  assert.ok(listening.length >= 7, `addresses found: ${JSON.stringify(listening)}`);
  const dir = /data and certificate files: (\/\S+)/.exec(out)?.[1];
  assert.ok(dir && existsSync(join(dir, 'keys', 'ca_cert.pem')), `no data directory in:\n${out}`);

  demo.child.kill('SIGINT');
  const code = await bounded(demo.exited, 30_000, () => `keymesh demo --keep still running 30 s after SIGINT:\n${demo.stdout()}\n${demo.stderr()}`);
  assert.equal(code, 0, `exit ${code}:\n${demo.stdout()}\n${demo.stderr()}`);
  assert.match(demo.stdout(), /SIGINT, stopping everything/);
  assert.equal(existsSync(dir), false, `${dir} is still there`);
  for (const [host, port] of listening) assert.ok(await refused(host, port), `${host}:${port} still accepts connections`);
});

test('examples/seed004: its JSON files are the demo\'s calls, and steps.sh sends each of them', () => {
  const examples = join(REPO_ROOT, 'examples', 'seed004');
  const { setup, steps } = seed004Calls();
  const calls = [...setup, ...steps];
  assert.deepEqual(readdirSync(examples).filter((f) => f.endsWith('.json')).sort(), calls.map((c) => c.file).sort());
  const script = readFileSync(join(examples, 'steps.sh'), 'utf8');
  for (const call of calls) {
    assert.deepEqual(JSON.parse(readFileSync(join(examples, call.file), 'utf8')), call.input, call.file);
    const cli = call.operation.replace(/[A-Z]/g, (c, i: number) => `${i === 0 ? '' : '-'}${c.toLowerCase()}`);
    assert.ok(script.includes(`appmesh ${cli} ${call.file}`), `steps.sh does not send ${call.file} with ${cli}`);
  }
});

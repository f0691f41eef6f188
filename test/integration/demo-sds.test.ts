// `keymesh demo sds` (seed 003, mTLS with SPIFFE identities over SDS) as a user runs it: a real process with an
// empty HOME and no credentials in the environment. It must walk through the seed to a successful end, showing
// each step's outcome and the stats the seed states; with --keep, real curl sees what the seed's curl saw
// (blue through front; `curl -k` straight to blue fails the TLS handshake) and the AWS CLI reads the mesh; SIGINT
// then leaves no directory and no listening port. The example files must be the demo's calls, and steps.sh must
// replay the walkthrough with the AWS CLI against a `keymesh server` process.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { COLORS, MESH, seed003Calls, spiffeId, WORKLOADS } from '../../src/cli/demo/seed003-calls.ts';
import { freeLoopbackAddresses } from '../../src/cli/demo/stage.ts';
import { AWS_CLI, awsEnv } from '../support/aws-cli.ts';
import {
  assertExamplesAreCalls, assertRemovedItsDirectory, assertStopsOnSigint, cleanUpAfterTests, cliOperation, keptRunning, refusedWithin, removeAtEnd,
  run, type Run, sections, startDemo, stat as statMatching, succeeded,
} from '../support/demo-process.ts';
import { makeTempDir, REPO_ROOT, startKeymeshServer, TEST_CREDENTIALS, type ServerHandle } from '../support/keymesh-server.ts';
import { freeLoopbackPorts } from '../support/mesh-processes.ts';

const RUN_MS = 120_000;
const servers: ServerHandle[] = [];
after(async () => {
  for (const server of servers) await server.kill();
});
cleanUpAfterTests();

/** The headings the output is cut at: `Setup`, `Step 1/4: ...`, ..., `Done`, `Still running`. */
const HEADINGS = [/^(Setup)$/, /^(Step \d)\/4:/, /^(Done)$/, /^(Still running)/];

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The value of the last stat line `NAME: value` in a piece of output, NAME exactly. */
const stat = (text: string, name: string) => statMatching(text, esc(name));

/** The workloads' addresses, from the Step 2 lines `✔ blue   app 127.0.0.x:8080 ...`. */
function addresses(step2: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const m of step2.matchAll(/✔ (front|red|green|blue)\s+app (127\.0\.0\.\d+):8080/g)) found[m[1]!] = m[2]!;
  assert.deepEqual(Object.keys(found).sort(), [...WORKLOADS].sort(), `workload addresses in:\n${step2}`);
  return found;
}

test('keymesh demo sds walks through seed 003 and shows each step as the seed states it', { timeout: RUN_MS + 30_000 }, async () => {
  const demo = startDemo(['sds']);
  const out = await succeeded(demo, RUN_MS);
  const s = sections(out, HEADINGS);
  for (const heading of ['Setup', 'Step 1', 'Step 2', 'Step 3', 'Step 4', 'Done']) assert.ok(s.has(heading), `no section ${heading}:\n${out}`);
  for (const heading of ['Step 1', 'Step 2', 'Step 3', 'Step 4']) assert.match(s.get(heading)!, /✔ as the seed/, heading);

  // Setup: SPIRE's trust domain.
  assert.match(s.get('Setup')!, /keymesh ca settings --mesh howto-k8s-mtls-sds-based --trust-domain howto-k8s-mtls-sds-based\.aws/);

  // Step 1: every call of the seed's deploy, with its example file, answered 200; the ARNs the seed lists.
  const step1 = s.get('Step 1')!;
  for (const call of seed003Calls()) {
    const cli = cliOperation(call.operation);
    assert.match(step1, new RegExp(`\\$ aws appmesh ${cli} --cli-input-json file://examples/seed003/${esc(call.file)}\\s.*: 200$`, 'm'), call.file);
  }
  for (const w of WORKLOADS) assert.match(step1, new RegExp(`arn:aws:appmesh:us-east-1:\\d{12}:mesh/${MESH}/virtualNode/${w}_${MESH}$`, 'm'));
  assert.match(step1, new RegExp(`virtualRouter/color_${MESH}$`, 'm'));
  assert.match(step1, new RegExp(`virtualService/color\\.${MESH}\\.svc\\.cluster\\.local$`, 'm'));

  // Step 2: one SVID per workload in the seed's trust domain, TTL 3600 (entry show), each presented by its proxy.
  const step2 = s.get('Step 2')!;
  for (const w of WORKLOADS) {
    assert.match(step2, new RegExp(`^\\s+${esc(spiffeId(w))}\\s+3600\\s+\\S+Z\\s+[0-9a-f]+$`, 'm'), w);
    assert.match(step2, new RegExp(`presents ${esc(spiffeId(w))} \\(serial [0-9a-f]+, until \\S+\\); trusts the CA of spiffe://howto-k8s-mtls-sds-based\\.aws`), w);
  }
  assert.match(step2, /Auto-rotation/);
  const ip = addresses(step2);

  // Step 3: each color through front; each color's sidecar counts a TLS handshake, none without a client certificate.
  const step3 = s.get('Step 3')!;
  for (const c of COLORS) {
    assert.match(step3, new RegExp(`\\$ curl -H "color_header: ${c}" http://${esc(ip.front!)}:15000/\\s*(#.*)?\\n\\s+200 ${c}$`, 'm'), c);
    assert.ok(stat(step3, `listener.${ip[c]}_15000.ssl.handshake`) >= 1, c);
    assert.equal(stat(step3, `listener.${ip[c]}_15000.ssl.no_certificate`), 0, c);
    assert.ok(stat(step3, `cluster.cds_egress_${MESH}_${c}_${MESH}_http_8080.ssl.handshake`) >= 1, c);
  }

  // Step 4: straight to blue without a certificate: the handshake fails with the seed's alert; the counter rises.
  const step4 = s.get('Step 4')!;
  assert.match(step4, /TLS handshake failed: ssl\/tls alert handshake failure \(SSL alert number 40\)/);
  assert.match(step4, /tlsv13 alert certificate required \(SSL alert number 116\)/);
  assert.equal(stat(step4, `listener.${ip.blue}_15000.ssl.fail_verify_no_cert`), 2);
  assert.equal(stat(step4, `listener.${ip.blue}_15000.ssl.handshake`), stat(step3, `listener.${ip.blue}_15000.ssl.handshake`));
  assert.match(step4, /ssl\.fail_verify_no_cert 0 -> 2/);

  assert.match(s.get('Done')!, /mutual TLS with SPIFFE identities/);
  assertRemovedItsDirectory(out);
});

test('keymesh demo sds --keep: real curl and the AWS CLI see the seed\'s mesh; SIGINT leaves nothing behind', { timeout: RUN_MS + 60_000 }, async () => {
  const demo = startDemo(['sds', '--keep']);
  await keptRunning(demo, RUN_MS);
  const out = demo.stdout();
  const keep = sections(out, HEADINGS).get('Still running') ?? '';
  const ip = addresses(sections(out, HEADINGS).get('Step 2')!);
  const printedNoCert = stat(sections(out, HEADINGS).get('Step 4')!, `listener.${ip.blue}_15000.ssl.fail_verify_no_cert`);

  // The seed's curl through front, as printed.
  for (const c of COLORS) {
    const line = new RegExp(`^\\s+curl -H "color_header: ${c}" (http://\\S+)$`, 'm').exec(keep);
    assert.ok(line, `no curl for ${c} in:\n${keep}`);
    const r = await run('curl', ['-sS', '-m', '10', '-H', `color_header: ${c}`, line[1]!]);
    assert.equal(r.stdout, c, `${c}: ${r.code} ${r.stderr}`);
  }

  // The seed's curl -k straight to blue: TLS 1.2 as its curl spoke, the same alert; TLS 1.3 as today's curl.
  const direct = /^\s+curl -k -v --tls-max 1\.2 (https:\/\/\S+)$/m.exec(keep);
  assert.ok(direct, `no direct curl in:\n${keep}`);
  const tls12 = await run('curl', ['-k', '-v', '-m', '10', '--tls-max', '1.2', direct[1]!]);
  assert.equal(tls12.code, 35, tls12.stderr);
  assert.match(tls12.stderr, /TLS handshake, Request CERT \(13\)/);
  assert.match(tls12.stderr, /curl: \(35\) .*alert handshake failure/);
  const tls13 = await run('curl', ['-k', '-sS', '-m', '10', '--tlsv1.3', direct[1]!]);
  assert.notEqual(tls13.code, 0);
  assert.match(tls13.stderr, /alert certificate required/);
  const blueStats = new RegExp(`^\\s+curl -s (127\\.0\\.0\\.1:\\d+)/stats \\| grep listener\\.${esc(ip.blue!)}_15000\\.ssl\\s+# blue$`, 'm').exec(keep);
  assert.ok(blueStats, `no stats line for blue in:\n${keep}`);
  const stats = await run('curl', ['-sS', '-m', '5', `http://${blueStats[1]}/stats`]);
  assert.equal(stat(stats.stdout, `listener.${ip.blue}_15000.ssl.fail_verify_no_cert`), printedNoCert + 2);

  // The AWS CLI with the printed credentials sees the four virtual nodes under the seed's names.
  const exportLine = /^\s+export AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+) AWS_DEFAULT_REGION=us-east-1$/m.exec(keep);
  const endpoint = /aws appmesh list-virtual-nodes --mesh-name \S+ --endpoint-url (http:\/\/127\.0\.0\.1:\d+)/.exec(keep);
  assert.ok(exportLine && endpoint, `no AWS CLI lines in:\n${keep}`);
  const cli = await run(AWS_CLI, ['appmesh', 'list-virtual-nodes', '--mesh-name', MESH, '--endpoint-url', endpoint[1]!, '--output', 'json'],
    { env: awsEnv({ accessKeyId: exportLine[1]!, secretAccessKey: exportLine[2]! }), timeoutMs: 60_000 });
  assert.equal(cli.code, 0, cli.stderr);
  const names = (JSON.parse(cli.stdout) as { virtualNodes: { virtualNodeName: string }[] }).virtualNodes.map((n) => n.virtualNodeName).sort();
  assert.deepEqual(names, WORKLOADS.map((w) => `${w}_${MESH}`).sort());

  const listening: [string, number][] = [];
  for (const m of out.matchAll(/(?:https?:\/\/)?(127\.0\.0\.\d+):(\d+)/g)) listening.push([m[1]!, Number(m[2])]);
  for (const address of Object.values(ip)) listening.push([address, 15000], [address, 15001], [address, 8080]);
  const dir = /data and certificate files: (\/\S+)/.exec(out)?.[1];
  assert.ok(dir && existsSync(dir), `no data directory in:\n${out}`);

  await assertStopsOnSigint(demo, dir, listening);
  assert.match(demo.stdout(), /SIGINT, stopping everything/);
});

test('examples/seed003: its JSON files are the demo\'s calls, and steps.sh sends each of them', () => {
  // The colors' files are sent in a loop over red, green and blue.
  assertExamplesAreCalls('seed003', seed003Calls(), (file) => {
    const sent = file.replace(/^(red|green|blue)-vn\.json$/, '$c-vn.json').replace(/^color-route-(red|green|blue)\.json$/, 'color-route-$c.json');
    return [sent, `"${sent}"`];
  });
});

test('examples/seed003/steps.sh all: the AWS CLI replays the walkthrough against a keymesh server process', { timeout: 420_000 }, async () => {
  const server = await startKeymeshServer();
  servers.push(server);
  const work = makeTempDir('keymesh-seed003-steps-');
  removeAtEnd(work);
  const [front, red, green, blue] = await freeLoopbackAddresses(4, [8080, 15000, 15001], Array.from({ length: 20 }, (_v, i) => `127.0.0.${181 + i}`));
  const admin = (await freeLoopbackPorts(4)).map((p) => `127.0.0.1:${p}`);
  const env = {
    ...awsEnv(TEST_CREDENTIALS),
    KEYMESH_ENDPOINT: server.url, KEYMESH_XDS: server.xdsAddress, KEYMESH_IDENTITY_ENDPOINT: server.identityUrl, WORK_DIR: work,
    FRONT_IP: front!, RED_IP: red!, GREEN_IP: green!, BLUE_IP: blue!,
    FRONT_ADMIN: admin[0]!, RED_ADMIN: admin[1]!, GREEN_ADMIN: admin[2]!, BLUE_ADMIN: admin[3]!,
  };
  const script = join(REPO_ROOT, 'examples', 'seed003', 'steps.sh');
  let r: Run;
  try {
    r = await run(script, ['all'], { env, timeoutMs: 400_000 });
  } finally {
    // Whatever happened, nothing it started stays up (stop is a no-op once `all` stopped everything).
    await run(script, ['stop'], { env, timeoutMs: 30_000 });
  }
  const out = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.code, 0, out);
  // The SVIDs, as entry show lists them.
  for (const w of WORKLOADS) assert.match(out, new RegExp(`${esc(spiffeId(w))}\\s`), w);
  // Each color through front, then its sidecar's counters: a handshake, none without a client certificate.
  const ips: Record<string, string> = { red: red!, green: green!, blue: blue! };
  for (const c of COLORS) {
    assert.match(out, new RegExp(`^\\+ curl -H "color_header: ${c}" http://${esc(front!)}:15000/\\n${c}$`, 'm'), c);
    assert.ok(stat(out, `listener.${ips[c]}_15000.ssl.handshake`) >= 1, c);
    assert.equal(stat(out, `listener.${ips[c]}_15000.ssl.no_certificate`), 0, c);
  }
  // Straight to blue: the seed's curl error, and the counter.
  assert.match(out, /^curl: \(35\) .*alert handshake failure$/m);
  assert.equal(stat(out, `listener.${blue}_15000.ssl.fail_verify_no_cert`), 1);
  // stop and down: no proxy or app left, no mesh left.
  assert.match(out, /stopped blue-app/);
  assert.match(out, new RegExp(`^arn:aws:appmesh:us-east-1:\\d{12}:mesh/${MESH}$`, 'm'));
  // stop sent SIGTERM; the processes end on their own time (bounded).
  for (const address of [front!, red!, green!, blue!]) {
    for (const port of [8080, 15000]) assert.ok(await refusedWithin(address, port, 10_000), `${address}:${port} still accepts connections`);
  }
});

// `keymesh demo migrate` (seed 001: migrating services communicating over plaintext to mutual TLS) as a new user
// runs it: a real process with an empty HOME and no credentials in the environment. It must take the mesh from
// plaintext through PERMISSIVE to STRICT under continuous traffic with not one failed request, each step showing
// what the seed says to verify; with --keep the printed commands must work as printed. The example files must be
// the demo's calls, and steps.sh must replay the migration with the real AWS CLI and curl against a real keymesh
// server and real proxy processes, again without a failed request.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { seed001Calls } from '../../src/cli/demo/seed001-mesh.ts';
import { freeLoopbackAddresses } from '../../src/cli/demo/stage.ts';
import { awsEnv } from '../support/aws-cli.ts';
import {
  assertExamplesAreCalls, assertRemovedItsDirectory, assertStopsOnSigint, cleanUpAfterTests, keptRunning, removeAtEnd, run, sections, startDemo, statValues, succeeded,
} from '../support/demo-process.ts';
import { makeTempDir, REPO_ROOT, startKeymeshServer } from '../support/keymesh-server.ts';

const RUN_MS = 120_000;
cleanUpAfterTests();

/** The headings the output is cut at: `Setup`, `Before: ...`, `Step 1/5: ...`, ..., `Done`, `Still running`. */
const HEADINGS = [/^(Setup)$/, /^(Before):/, /^(Step \d)\/5:/, /^(Done)$/, /^(Still running)/];

/** The value of the stat line matching `name` (a regular expression source) in a section; 0 when absent. */
const stat = (section: string, name: string) => statValues(section, name).at(-1) ?? 0;

/** `traffic: N requests sent (+d), F failed`: the counts a section reports. */
function traffic(section: string): { sent: number; failed: number } {
  const m = /^\s+traffic: (\d+) requests sent(?: \(\+\d+\))?, (\d+) failed/m.exec(section);
  assert.ok(m, `no traffic line in:\n${section}`);
  return { sent: Number(m[1]), failed: Number(m[2]) };
}

const LISTENER = 'listener\\.127\\.0\\.0\\.\\d+_15000';
const CLUSTER = 'cluster\\.cds_egress_my-mesh_my-backend-node_http_9080';
const ANSWER = 'hello from my-backend-node';

test('keymesh demo migrate: plaintext to PERMISSIVE to STRICT under continuous traffic, zero failed requests, each step as the seed says', { timeout: RUN_MS + 30_000 }, async () => {
  const demo = startDemo(['migrate']);
  const out = await succeeded(demo, RUN_MS);

  const s = sections(out, HEADINGS);
  for (const heading of ['Setup', 'Before', 'Step 1', 'Step 2', 'Step 3', 'Step 4', 'Step 5', 'Done']) assert.ok(s.has(heading), `no section ${heading}:\n${out}`);
  // Each step but the third (which only looks) is one App Mesh call, from the example files.
  for (const [heading, file] of [['Step 1', 'step1-backend-vn-permissive'], ['Step 2', 'step2-backend-vn-mtls'], ['Step 4', 'step4-client-vn-mtls'], ['Step 5', 'step5-backend-vn-strict']] as const) {
    assert.match(s.get(heading)!, new RegExp(`\\$ aws appmesh update-virtual-node --cli-input-json file://examples/seed001/${file}\\.json`));
    assert.match(s.get(heading)!, /PUT \/v20190125\/meshes\/my-mesh\/virtualNodes\/my-(backend|client)-node: 200/);
  }
  assert.doesNotMatch(s.get('Step 3')!, /aws appmesh/);

  // The traffic: running through every step, never a failed request.
  let sent = 0;
  for (const heading of ['Before', 'Step 1', 'Step 2', 'Step 3', 'Step 4', 'Step 5']) {
    const t = traffic(s.get(heading)!);
    assert.equal(t.failed, 0, `${heading}: ${t.failed} failed`);
    assert.ok(t.sent > sent, `${heading}: ${t.sent} requests sent, not more than ${sent} before`);
    sent = t.sent;
    assert.match(s.get(heading)!, /✔ /, heading);
  }

  // Before: plaintext connections, no TLS stats at all (the listener has no TLS chain).
  const before = s.get('Before')!;
  assert.ok(stat(before, `${LISTENER}\\.keymesh\\.plaintext_cx_active`) >= 1);
  assert.doesNotMatch(before, /_15000\.ssl\./);

  // Step 1: PERMISSIVE; the client follows the server into TLS, without a certificate; no plaintext left open.
  const step1 = s.get('Step 1')!;
  const hs1 = stat(step1, `${LISTENER}\\.ssl\\.handshake`);
  assert.ok(hs1 >= 1, step1);
  assert.equal(stat(step1, `${LISTENER}\\.ssl\\.no_certificate`), hs1);
  assert.equal(stat(step1, `${LISTENER}\\.keymesh\\.plaintext_cx_active`), 0);
  assert.ok(stat(step1, `${CLUSTER}\\.ssl\\.handshake`) >= 1);
  const plain1 = stat(step1, `${LISTENER}\\.keymesh\\.plaintext_cx_total`);

  // Step 2: the server validates client certificates; PERMISSIVE takes the client's new TLS connections without one.
  const step2 = s.get('Step 2')!;
  const hs2 = stat(step2, `${LISTENER}\\.ssl\\.handshake`);
  assert.ok(hs2 > hs1, `handshakes ${hs1} -> ${hs2}`);
  assert.equal(stat(step2, `${LISTENER}\\.ssl\\.no_certificate`), hs2);
  assert.equal(stat(step2, `${LISTENER}\\.ssl\\.fail_verify_no_cert`), 0);
  assert.equal(stat(step2, `${LISTENER}\\.keymesh\\.plaintext_cx_total`), plain1);

  // Step 3: TLS confirmed: no plaintext; the server's certificate and trust checked by hand; a wrong SAN refused.
  const step3 = s.get('Step 3')!;
  assert.equal(stat(step3, `${LISTENER}\\.keymesh\\.plaintext_cx_active`), 0);
  assert.equal(stat(step3, `${LISTENER}\\.keymesh\\.plaintext_cx_total`), plain1);
  assert.match(step3, new RegExp(`-cert \\S+/client_cert_chain\\.pem .*\\n\\s+TLSv1\\.[23], server DNS:backend\\.my-mesh\\.local, 200 ${ANSWER}$`, 'm'));
  assert.match(step3, /-cert \S+\/other_cert_chain\.pem .*\n\s+refused/);
  assert.match(step3, /ssl\.fail_verify_san 0 -> 1/);
  assert.match(step3, new RegExp(`\\$ curl http://127\\.0\\.0\\.\\d+:15000/ .*\\n\\s+200 ${ANSWER}$`, 'm'));
  const noCert3 = stat(step3, `${LISTENER}\\.ssl\\.no_certificate`);

  // Step 4: the client presents its certificate: handshakes rise, ssl.no_certificate does not (the seed's check).
  const step4 = s.get('Step 4')!;
  const hs4 = stat(step4, `${LISTENER}\\.ssl\\.handshake`);
  assert.ok(hs4 > stat(step3, `${LISTENER}\\.ssl\\.handshake`), step4);
  assert.equal(stat(step4, `${LISTENER}\\.ssl\\.no_certificate`), noCert3);
  assert.equal(stat(step4, `${CLUSTER}\\.ssl\\.fail_verify_san`), 0);

  // Step 5: STRICT: plaintext gets no answer, TLS without a certificate is refused, the traffic goes on.
  const step5 = s.get('Step 5')!;
  assert.match(step5, /\$ curl http:\/\/127\.0\.0\.\d+:15000\/ .*\n\s+no answer/);
  assert.match(step5, /# TLS without a client certificate, then GET \/\n\s+refused/);
  assert.ok(stat(step5, `${LISTENER}\\.ssl\\.fail_verify_no_cert`) >= 1);
  assert.ok(stat(step5, `${LISTENER}\\.ssl\\.handshake`) > hs4);
  assert.equal(stat(step5, `${LISTENER}\\.ssl\\.no_certificate`), noCert3);
  assert.equal(stat(step5, `${LISTENER}\\.keymesh\\.plaintext_cx_active`), 0);

  // The end: every request answered, nothing left behind.
  const done = s.get('Done')!;
  const total = /(\d+) requests, 0 failed\./.exec(done);
  assert.ok(total && Number(total[1]) >= sent, done);
  assertRemovedItsDirectory(out);
});

test('keymesh demo migrate --keep: the printed commands work as printed; SIGINT leaves nothing behind', { timeout: RUN_MS + 60_000 }, async () => {
  const demo = startDemo(['migrate', '--keep']);
  await keptRunning(demo, RUN_MS);
  const out = demo.stdout();
  const keep = sections(out, HEADINGS).get('Still running') ?? '';
  const line = (re: RegExp) => {
    const m = re.exec(keep);
    assert.ok(m, `no line ${re} in:\n${keep}`);
    return m[0].trim();
  };
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  // Through the client's sidecar: mutual TLS to the server.
  const viaClient = await run('bash', ['-c', `${line(/^\s+curl -H 'Host: backend\.my-mesh\.local:9080' http:\/\/127\.0\.0\.\d+:15001\/$/m)} -s -m 5`], { env });
  assert.equal(viaClient.stdout, ANSWER, viaClient.stderr);
  // Straight to the server's ingress: plaintext refused, mutual TLS with the client's certificate served.
  const plain = await run('bash', ['-c', `${line(/^\s+curl http:\/\/127\.0\.0\.\d+:15000\/$/m)} -s -m 5`], { env });
  assert.notEqual(plain.code, 0);
  const mtls = await run('bash', ['-c', `${line(/^\s+curl --cacert \S+ --cert \S+ --key \S+ --resolve \S+ https:\/\/backend\.my-mesh\.local:15000\/$/m)} -s -m 5`], { env });
  assert.equal(mtls.stdout, ANSWER, mtls.stderr);
  assert.match(keep, /curl -s 127\.0\.0\.1:\d+\/stats \| grep -E 'ssl\|plaintext'/);
  assert.match(keep, /^\s+export AWS_ACCESS_KEY_ID=\S+ AWS_SECRET_ACCESS_KEY=\S+ AWS_DEFAULT_REGION=us-east-1$/m);
  assert.match(keep, /aws appmesh describe-virtual-node --mesh-name my-mesh --virtual-node-name my-backend-node --endpoint-url http:\/\/127\.0\.0\.1:\d+/);

  const listening: [string, number][] = [];
  for (const m of out.matchAll(/(?:https?:\/\/)?(127\.0\.0\.\d+):(\d+)/g)) listening.push([m[1]!, Number(m[2])]);
  assert.ok(listening.length >= 6, `addresses found: ${JSON.stringify(listening)}`);
  const dir = /data and certificate files: (\/\S+)/.exec(out)?.[1];
  assert.ok(dir && existsSync(join(dir, 'keys', 'client_cert_chain.pem')), `no data directory in:\n${out}`);

  await assertStopsOnSigint(demo, dir, listening);
});

test('examples/seed001: its JSON files are the demo\'s calls, and steps.sh sends each of them', () => {
  const { setup, steps } = seed001Calls();
  assertExamplesAreCalls('seed001', [...setup, ...steps.flatMap((st) => (st.call ? [st.call] : []))]);
});

test('examples/seed001/steps.sh all: the migration by hand (AWS CLI, curl, keymesh proxy processes), zero failed requests', { timeout: 240_000 }, async () => {
  const server = await startKeymeshServer();
  const work = makeTempDir('keymesh-seed001-steps-');
  removeAtEnd(server.dataDir, work);
  try {
    const [serverIp, clientIp] = await freeLoopbackAddresses(2, [9080, 9901, 15000, 15001], Array.from({ length: 20 }, (_v, i) => `127.0.0.${201 + i}`));
    const env = {
      ...awsEnv(), PATH: process.env.PATH ?? '/usr/bin:/bin', WORK_DIR: work, SERVER_IP: serverIp!, CLIENT_IP: clientIp!, RATE: '50',
      KEYMESH_ENDPOINT: server.url, KEYMESH_XDS: server.xdsAddress, KEYMESH_IDENTITY_ENDPOINT: server.identityUrl,
    };
    const r = await run(join(REPO_ROOT, 'examples', 'seed001', 'steps.sh'), ['all'], { env, timeoutMs: 200_000 });
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    for (const n of [1, 2, 3, 4, 5]) assert.match(r.stdout, new RegExp(`^== step ${n}: `, 'm'));
    const done = /^== done: (\d+) requests, none failed/m.exec(r.stdout);
    assert.ok(done && Number(done[1]) > 50, r.stdout);
    assert.match(r.stdout, new RegExp(`listener\\.${serverIp!.replaceAll('.', '\\.')}_15000\\.ssl\\.fail_verify_no_cert: 1`));
    for (const name of ['my-client-node', 'my-backend-node', 'backend-app', 'traffic']) assert.equal(existsSync(join(work, `${name}.pid`)), false, `${name} left running`);
  } finally {
    await server.stop();
  }
});

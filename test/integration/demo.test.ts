// `keymesh demo` as a new user runs it (`npm start`): a real process with an empty HOME and no credentials in
// the environment. It must walk through seed 004 to a successful end, showing each step's outcome and the stats
// the seed states; with --keep it stays up until SIGINT, then leaves no directory and no listening port behind.
// The example files (examples/seed004/) must be the demo's own calls.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { seed004Calls } from '../../src/cli/demo/seed004.ts';
import {
  assertExamplesAreCalls, assertRemovedItsDirectory, assertStopsOnSigint, cleanUpAfterTests, keptRunning, sections, startDemo, stat, succeeded,
} from '../support/demo-process.ts';

const RUN_MS = 120_000;
cleanUpAfterTests();

/** The headings the output is cut at: `Setup`, `Part 1: ...`, `Step 1/5: ...`, ..., `Done`, `Still running ...`. */
const HEADINGS = [/^(Setup)$/, /^(Part 1):/, /^(Step \d)\/5:/, /^(Done)$/, /^(Still running)/];

const CT_LISTENER = 'listener\\.127\\.0\\.0\\.\\d+_15000\\.ssl';
const GW_CLUSTER = 'cluster\\.cds_egress_ColorApp-MutualTLS_colorteller-vn_http_9080\\.ssl';

test('keymesh demo walks through seed 004 and shows each step as the seed states it', { timeout: RUN_MS + 30_000 }, async () => {
  const demo = startDemo([]);
  const out = await succeeded(demo, RUN_MS);

  const s = sections(out, HEADINGS);
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
  assertRemovedItsDirectory(out);
});

test('keymesh demo --keep stays up until SIGINT, then leaves no directory and no listening port behind', { timeout: RUN_MS + 60_000 }, async () => {
  const demo = startDemo(['--keep']);
  await keptRunning(demo, RUN_MS);
  const out = demo.stdout();
  const s = sections(out, HEADINGS);
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

  await assertStopsOnSigint(demo, dir, listening);
  assert.match(demo.stdout(), /SIGINT, stopping everything/);
});

test('examples/seed004: its JSON files are the demo\'s calls, and steps.sh sends each of them', () => {
  const { setup, steps } = seed004Calls();
  assertExamplesAreCalls('seed004', [...setup, ...steps]);
});

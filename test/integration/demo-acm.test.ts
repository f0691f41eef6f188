// `keymesh demo acm` (seed 002) as a new user runs it: a real process with an empty HOME and no credentials in
// the environment. It must walk through the seed to a successful end, showing each step's outcome and the
// stats the seed states (listener...15000.ssl.handshake: 1), the renewal under traffic and who holds the key;
// with --keep, the printed commands (curl, keymesh ca renew-certificate) must work as printed. The example files
// must be the demo's calls, and steps.sh must send them with the real AWS CLI to a real keymesh server.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DescribeGatewayRouteCommand, DescribeVirtualGatewayCommand, DescribeVirtualNodeCommand } from '@aws-sdk/client-app-mesh';
import { seed002Calls } from '../../src/cli/demo/seed002-calls.ts';
import { awsEnv, sdkClient } from '../support/aws-cli.ts';
import {
  assertExamplesAreCalls, assertRemovedItsDirectory, assertStopsOnSigint, cleanUpAfterTests, cliOperation, keptRunning, removeAtEnd, run, sections, startDemo, stat, succeeded,
} from '../support/demo-process.ts';
import { KEYMESH_MAIN, makeTempDir, REPO_ROOT, startKeymeshServer } from '../support/keymesh-server.ts';

const RUN_MS = 120_000;
cleanUpAfterTests();

/** The headings the output is cut at. */
const HEADINGS = [/^(Setup)$/, /^(Step \d)\/5:/, /^(The seed's question)/, /^(Done)$/, /^(Still running)/];

const CT_HANDSHAKE = 'listener\\.127\\.0\\.0\\.\\d+_15000\\.ssl\\.handshake';
const GW_HANDSHAKE = 'cluster\\.cds_egress_ColorApp-TLS_ColorTellerWhite_http_(?:80|8080)\\.ssl\\.handshake';

/** The serial the colorteller presents for the managed certificate, from its /certs. */
async function servedSerial(certsUrl: string): Promise<string | undefined> {
  const certs = await (await fetch(certsUrl)).json() as { certificates: { cert_chain: { serial_number: string; subject_alt_names: { dns?: string }[] }[] }[] };
  return certs.certificates.flatMap((c) => c.cert_chain).find((d) => d.subject_alt_names.some((n) => n.dns === '*.default.svc.cluster.local'))?.serial_number;
}

test('keymesh demo acm walks through seed 002 and shows each step as the seed states it', { timeout: RUN_MS + 30_000 }, async () => {
  const demo = startDemo(['acm']);
  const out = await succeeded(demo, RUN_MS);
  const s = sections(out, HEADINGS);
  for (const heading of ['Setup', 'Step 1', 'Step 2', 'Step 3', 'Step 4', 'Step 5', 'The seed\'s question', 'Done']) assert.ok(s.has(heading), `no section ${heading}:\n${out}`);

  // Step 1: the root CA, RSA 2048 as the seed's, named by an ACM Private CA ARN.
  const step1 = s.get('Step 1')!;
  assert.match(step1, /\$ keymesh ca init --mesh ColorApp-TLS --endpoint http:\/\/127\.0\.0\.1:\d+/);
  const caArn = /export ROOT_CA_ARN=(arn:aws:acm-pca:us-east-1:\d{12}:certificate-authority\/[0-9a-f-]+)$/m.exec(step1)?.[1];
  assert.ok(caArn, step1);
  assert.match(step1, /status: active, trust domain colorapp-tls, key rsa-2048/);

  // Step 2: the managed certificate for *.default.svc.cluster.local, from that CA.
  const step2 = s.get('Step 2')!;
  const certArn = /export CERTIFICATE_ARN=(arn:aws:acm:us-east-1:\d{12}:certificate\/[0-9a-f-]+)$/m.exec(step2)?.[1];
  assert.ok(certArn, step2);
  const m2 = /names \*\.default\.svc\.cluster\.local; serial ([0-9a-f]+); valid until \S+; issued by (\S+)$/m.exec(step2);
  assert.ok(m2, step2);
  const firstSerial = m2[1]!;
  assert.equal(m2[2], caArn);

  // Step 3: the seed's mesh, one App Mesh call per example file, each answered 200.
  const step3 = s.get('Step 3')!;
  for (const call of seed002Calls()) {
    const cli = cliOperation(call.operation);
    assert.match(step3, new RegExp(`\\$ aws appmesh ${cli} --cli-input-json file://examples/seed002/${call.file.replaceAll('.', '\\.')} .*: 200$`, 'm'));
  }

  // Step 4: white through the gateway; one TLS handshake at the colorteller, as the seed shows; it presents the certificate.
  const step4 = s.get('Step 4')!;
  assert.match(step4, /\$ curl http:\/\/127\.0\.0\.\d+(:8080)?\/color\n\s+200 white$/m);
  assert.match(step4, /\$ curl -s http:\/\/127\.0\.0\.\d+:9901\/stats \| grep ssl\.handshake/);
  assert.equal(stat(step4, CT_HANDSHAKE), 1);
  assert.equal(stat(step4, GW_HANDSHAKE), 1);
  assert.match(step4, new RegExp(`presents serial ${firstSerial} \\(\\*\\.default\\.svc\\.cluster\\.local\\)`));

  // Step 5: renewed under traffic: no failure, the old serial then the new one, which /certs shows.
  const step5 = s.get('Step 5')!;
  const m5 = /serial ([0-9a-f]+) -> ([0-9a-f]+); valid until \S+; same ARN, new key/.exec(step5);
  assert.ok(m5, step5);
  assert.equal(m5[1], firstSerial);
  const newSerial = m5[2]!;
  assert.notEqual(newSerial, firstSerial);
  const rounds = /^\s+(\d+) rounds in [\d.]+ s: (\d+)\/\1 "white" through the gateway and over direct TLS, 0 failed$/m.exec(step5);
  assert.ok(rounds, step5);
  assert.equal(rounds[2], rounds[1]);
  const runs = /new handshakes got: serial ([0-9a-f]+) x(\d+), then serial ([0-9a-f]+) x(\d+)$/m.exec(step5);
  assert.ok(runs, step5);
  assert.deepEqual([runs[1], runs[3]], [firstSerial, newSerial]);
  assert.ok(Number(runs[2]) >= 5 && Number(runs[4]) >= 5, runs[0]);
  assert.match(step5, new RegExp(`presents serial ${newSerial} \\(\\*\\.default\\.svc\\.cluster\\.local\\)`));
  assert.ok(stat(step5, CT_HANDSHAKE) >= 1 + Number(rounds[1]), step5);

  // The question: the colorteller holds the certificate, the gateway only the CA.
  const question = s.get('The seed\'s question')!;
  assert.match(question, new RegExp(`presents ${newSerial} \\(\\*\\.default\\.svc\\.cluster\\.local\\): it holds the key`));
  assert.match(question, /presents nothing for \*\.default\.svc\.cluster\.local; trusts the CA [0-9a-f]+/);

  assert.match(s.get('Done')!, /renewed under traffic/);
  assertRemovedItsDirectory(out);
});

test('keymesh demo acm --keep: the printed commands work as printed; SIGINT leaves nothing behind', { timeout: RUN_MS + 60_000 }, async () => {
  const demo = startDemo(['acm', '--keep']);
  await keptRunning(demo, RUN_MS);
  const out = demo.stdout();
  const keep = sections(out, HEADINGS).get('Still running') ?? '';

  // Through the gateway.
  const gateway = /^\s+curl (http:\/\/127\.0\.0\.\d+(?::8080)?\/color)$/m.exec(keep);
  assert.ok(gateway, keep);
  const answer = await fetch(gateway[1]!);
  assert.equal(await answer.text(), 'white');

  // Straight to the colorteller over TLS with the real curl, as printed (the CA file, --resolve).
  const direct = /^\s+curl (--cacert \S+ --resolve \S+ https:\/\/colorteller\.default\.svc\.cluster\.local:15000\/color)$/m.exec(keep);
  assert.ok(direct, keep);
  const curl = await run('curl', ['-s', '-S', ...direct[1]!.split(' ')]);
  assert.equal(curl.code, 0, curl.stderr);
  assert.equal(curl.stdout, 'white');

  // keymesh ca renew-certificate as printed, with the printed credentials: the colorteller gets the new serial.
  const certsUrl = /^\s+curl -s (http:\/\/127\.0\.0\.\d+:9901\/certs)\s+# ColorTellerWhite$/m.exec(keep)?.[1];
  assert.ok(certsUrl, keep);
  const before = await servedSerial(certsUrl);
  assert.ok(before);
  const exported = /^\s+export AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+) AWS_DEFAULT_REGION=(\S+)$/m.exec(keep);
  assert.ok(exported, keep);
  const renew = /^\s+npx keymesh (ca renew-certificate arn:aws:acm:\S+ --endpoint http:\/\/127\.0\.0\.1:\d+)$/m.exec(keep);
  assert.ok(renew, keep);
  const env = { ...process.env, AWS_ACCESS_KEY_ID: exported[1]!, AWS_SECRET_ACCESS_KEY: exported[2]!, AWS_DEFAULT_REGION: exported[3]! };
  const renewed = await run(process.execPath, [KEYMESH_MAIN, ...renew[1]!.split(' ')], { env });
  assert.equal(renewed.code, 0, renewed.stderr);
  const newSerial = (JSON.parse(renewed.stdout) as { serial: string }).serial;
  assert.notEqual(newSerial, before);
  let served: string | undefined = before;
  for (let i = 0; i < 100 && served !== newSerial; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    served = await servedSerial(certsUrl);
  }
  assert.equal(served, newSerial);

  const listening: [string, number][] = [];
  for (const m of out.matchAll(/(127\.0\.0\.\d+):(\d+)/g)) listening.push([m[1]!, Number(m[2])]);
  for (const m of out.matchAll(/keymesh proxy on (127\.0\.0\.\d+) \(ingress :(\d+), egress :(\d+)\)/g)) listening.push([m[1]!, Number(m[2])], [m[1]!, Number(m[3])]);
  assert.ok(listening.length >= 7, `addresses found: ${JSON.stringify(listening)}`);
  const dir = /data and certificate files: (\/\S+)/.exec(out)?.[1];
  assert.ok(dir && existsSync(join(dir, 'root-ca.pem')), `no data directory in:\n${out}`);

  await assertStopsOnSigint(demo, dir, listening);
});

test('examples/seed002: its JSON files are the demo\'s calls, and steps.sh sends each of them', () => {
  assertExamplesAreCalls('seed002', seed002Calls());
});

test('examples/seed002/steps.sh ca up: the real AWS CLI takes the files with the ARNs and the port filled in', { timeout: 180_000 }, async () => {
  const server = await startKeymeshServer();
  const work = makeTempDir('keymesh-seed002-steps-');
  removeAtEnd(server.dataDir, work);
  const client = sdkClient(server.url);
  try {
    const env = {
      ...awsEnv(), PATH: process.env.PATH ?? '/usr/bin:/bin', WORK_DIR: work, PORT: '8080',
      KEYMESH_ENDPOINT: server.url, KEYMESH_XDS: server.xdsAddress, KEYMESH_IDENTITY_ENDPOINT: server.identityUrl,
    };
    const up = await run(join(REPO_ROOT, 'examples', 'seed002', 'steps.sh'), ['ca', 'up'], { env, timeoutMs: 120_000 });
    assert.equal(up.code, 0, `${up.stdout}\n${up.stderr}`);
    const certificateArn = readFileSync(join(work, 'certificate.arn'), 'utf8').trim();
    const caArn = readFileSync(join(work, 'root-ca.arn'), 'utf8').trim();
    assert.match(certificateArn, /^arn:aws:acm:us-east-1:\d{12}:certificate\//);
    assert.match(caArn, /^arn:aws:acm-pca:us-east-1:\d{12}:certificate-authority\//);

    // What keymesh server holds is the example files' spec, with the ARNs and the port filled in.
    const expected = seed002Calls({ certificateArn, caArn }, 8080);
    const node = await client.send(new DescribeVirtualNodeCommand({ meshName: 'ColorApp-TLS', virtualNodeName: 'ColorTellerWhite' }));
    // App Mesh fills in the health check's port: the listener's.
    const [listener] = (expected[1]!.input.spec as { listeners: { healthCheck: object }[] }).listeners;
    assert.deepEqual(node.virtualNode?.spec?.listeners, [{ ...listener, healthCheck: { ...listener!.healthCheck, port: 8080 } }]);
    const gateway = await client.send(new DescribeVirtualGatewayCommand({ meshName: 'ColorApp-TLS', virtualGatewayName: 'ColorGateway' }));
    assert.deepEqual(gateway.virtualGateway?.spec?.backendDefaults, (expected[3]!.input.spec as { backendDefaults: unknown }).backendDefaults);
    const route = await client.send(new DescribeGatewayRouteCommand({ meshName: 'ColorApp-TLS', virtualGatewayName: 'ColorGateway', gatewayRouteName: 'ColorGatewayRoute' }));
    assert.equal(route.gatewayRoute?.spec?.httpRoute?.action?.target?.virtualService?.virtualServiceName, 'colorteller.default.svc.cluster.local');
  } finally {
    client.destroy();
    await server.stop();
  }
});

// Certificates through xDS, end to end: a real `keymesh server` process, meshes made with the AWS CLI, SVIDs
// bootstrapped with join tokens over the identity endpoint, and scripted Envoys (test/support/ads-client.ts:
// grpc-js ADS over mTLS) that subscribe to exactly the SDS secrets their configuration names and ACK like Envoy.
//
// 1. CA rotation through a real SDS subscription (seed 003's SPIFFE specs): `keymesh ca rotate prepare` puts
//    the new CA in the trust bundle both proxies receive; `activate` is refused while one proxy has not ACKed
//    that bundle, and succeeds once it has; SVIDs issued afterwards chain to the new CA.
// 2. A managed certificate re-issued under a new CA (seed 002's ACM specs): the client proxy, which has no
//    client policy and so validates the server against the certificate's issuing CA, gets a new CDS version
//    naming the new CA's ARN on its open stream.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test, type TestContext } from 'node:test';
import { openssl } from '../../src/pki/testing-openssl.ts';
import * as seed from '../fixtures/seed-specs.ts';
import { AdsClient, bootstrapSvid, sdsSecretNames, shortType, T, waitFor, type AdsResponse, type Svid } from '../support/ads-client.ts';
import { appmeshCli } from '../support/aws-cli.ts';
import { keymeshAcm } from '../support/keymesh-acm.ts';
import { KEYMESH_MAIN, makeTempDir, removeDir, startKeymeshServer, TEST_CREDENTIALS, type ServerHandle } from '../support/keymesh-server.ts';

/** Per test, setup included; each normally takes well under a minute. */
const TEST_TIMEOUT_MS = 180_000;
/** For a push or an ACK to arrive: generous, for a loaded 2-CPU machine. */
const PUSH_MS = 20_000;

let server: ServerHandle;
let dir: string;
let cpCaPem: string;
const clients: AdsClient[] = [];

// --- the user's tools ----------------------------------------------------------------------------------------

interface Run { code: number; stdout: string; stderr: string }

/** `keymesh <args>` against the server, as a separate process (asynchronous: the scripted Envoys keep running). */
function keymesh(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [KEYMESH_MAIN, ...args, '--endpoint', server.url, '--data-dir', server.dataDir], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey },
    }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr: error && code === -1 ? `${stderr}${error.message}` : stderr });
    });
  });
}

async function keymeshOk(args: readonly string[]): Promise<string> {
  const r = await keymesh(args);
  assert.equal(r.code, 0, `keymesh ${args.join(' ')} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

async function aws(args: string[]): Promise<any> {
  const r = await appmeshCli(server.url, args);
  assert.equal(r.code, 0, `aws appmesh ${args[0]}: ${r.stderr}`);
  return r.json;
}

const spec = (s: unknown) => ['--spec', JSON.stringify(s)];

interface CaInfo { id: string; arn: string; status: string; certPem: string; lastIssuedNotAfter: number }

async function svidFor(mesh: string, kind: 'virtualNode' | 'virtualGateway', name: string): Promise<Svid> {
  const token = (await keymeshOk(['token', 'create', '--mesh', mesh, kind === 'virtualNode' ? '--virtual-node' : '--virtual-gateway', name])).trim();
  return bootstrapSvid({ identityUrl: server.identityUrl, controlPlaneCaPem: cpCaPem, joinToken: token, workDir: dir, name });
}

/** A scripted Envoy for the endpoint, named by its App Mesh ARN; closed when the test ends. */
function connect(t: TestContext, svid: Svid, mesh: string, kind: 'virtualNode' | 'virtualGateway', name: string): AdsClient {
  const client = new AdsClient({
    address: server.xdsAddress, controlPlaneCaPem: cpCaPem, svid, label: `${kind}/${name}`,
    nodeId: `arn:aws:appmesh:us-east-1:000000000000:mesh/${mesh}/${kind}/${name}`,
  });
  clients.push(client);
  t.after(() => client.close());
  return client.followLikeEnvoy();
}

// --- what the proxies hold -----------------------------------------------------------------------------------

/** The certificates of a PEM text, parsed by Node (OpenSSL), in order. */
function certificates(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((b) => new X509Certificate(b));
}

const fingerprints = (pem: string) => certificates(pem).map((c) => c.fingerprint256).sort();

/** The validation secret named `name` in an SDS response: the anchors it carries (fingerprints), or undefined. */
function trustedCas(r: AdsResponse | undefined, name: string): string[] | undefined {
  const secret = r?.resources.find((s) => s.name === name);
  const pem = secret?.validationContext?.trustedCa?.inlineString;
  return typeof pem === 'string' ? fingerprints(pem) : undefined;
}

const holdsExactly = (r: AdsResponse | undefined, name: string, cas: readonly CaInfo[]) =>
  JSON.stringify(trustedCas(r, name)) === JSON.stringify(cas.flatMap((c) => fingerprints(c.certPem)).sort());

/** openssl verify of a leaf (and the chain after it) against one CA certificate. */
function verifies(chainPem: string, caPem: string, name: string): { ok: boolean; output: string } {
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const leaf = join(dir, `${name}-leaf.pem`);
  const untrusted = join(dir, `${name}-untrusted.pem`);
  const ca = join(dir, `${name}-ca.pem`);
  writeFileSync(leaf, `${blocks[0] ?? ''}\n`);
  writeFileSync(untrusted, `${blocks.slice(1).join('\n')}\n`);
  writeFileSync(ca, caPem);
  const r = openssl(['verify', '-CAfile', ca, ...(blocks.length > 1 ? ['-untrusted', untrusted] : []), leaf]);
  return { ok: r.status === 0 && /: OK/.test(r.stdout), output: r.output };
}

interface ProxyJson {
  stream: number;
  connectedAt: number;
  identity: { mesh: string; kind: string; name: string; spiffeId: string };
  lastSent: Record<string, { version: string }>;
  lastAck: Record<string, { version: string }>;
}

async function proxies(mesh: string): Promise<ProxyJson[]> {
  return (JSON.parse(await keymeshOk(['proxies', '--mesh', mesh, '--json'])) as { proxies: ProxyJson[] }).proxies;
}

/** Every proxy of the mesh that was sent secrets has ACKed the last secrets sent to it, as the server sees it. */
async function allSdsAcked(mesh: string): Promise<boolean> {
  const ps = await proxies(mesh);
  return ps.length > 0 && ps.every((p) => !p.lastSent[T.secret] || p.lastAck[T.secret]?.version === p.lastSent[T.secret]!.version);
}

/**
 * `keymesh ca rotate activate` once the server has every proxy's ACK of the current secrets. A refusal counts
 * only if no proxy was sent newer secrets in the meantime (a CRL refresh by the server's upkeep can push new
 * secrets at any moment; then the proxies ACK again and activation is retried).
 */
async function activateWhenAcked(mesh: string, ca: CaInfo, watching: readonly AdsClient[]): Promise<{ activated: CaInfo; retiring: CaInfo }> {
  const deadline = Date.now() + 3 * PUSH_MS;
  for (;;) {
    await waitFor(`every proxy of ${mesh} has ACKed its secrets`, () => allSdsAcked(mesh), PUSH_MS, 100);
    const before = watching.map((c) => c.received(T.secret).length);
    const r = await keymesh(['ca', 'rotate', 'activate', '--ca', ca.id]);
    if (r.code === 0) return JSON.parse(r.stdout) as { activated: CaInfo; retiring: CaInfo };
    const pushedMeanwhile = watching.some((c, i) => c.received(T.secret).length > before[i]!);
    if (!pushedMeanwhile || Date.now() > deadline) {
      assert.fail(`activation refused although every proxy had ACKed the bundle:\n${r.stdout}${r.stderr}\nserver log (tail):\n${server.stderr().slice(-3000)}`);
    }
  }
}

function timer(t: TestContext): (step: string) => void {
  const started = Date.now();
  return (step) => t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s: ${step}`);
}

before(async () => {
  dir = makeTempDir('keymesh-xds-certs-');
  server = await startKeymeshServer();
  cpCaPem = readFileSync(join(server.dataDir, 'control-plane', 'ca-cert.pem'), 'utf8');
});

after(async () => {
  for (const c of clients) c.close();
  // The server process is unref'd (support/keymesh-server.ts), so waiting for its exit alone does not keep this
  // process alive: without a pending timer the test process may exit before the directories are removed.
  const keepAlive = setTimeout(() => {}, 30_000);
  try {
    await server?.stop();
  } finally {
    clearTimeout(keepAlive);
    if (dir) removeDir(dir);
    if (server) removeDir(server.dataDir);
  }
});

describe('certificates through xDS, from a real keymesh server', () => {
  test('CA rotation over SDS: both proxies get the two-CA bundle; activate waits for the last ACK; new SVIDs chain to the new CA', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const step = timer(t);
    // Seed 003's mesh: its specs name the trust domain howto-k8s-mtls-sds-based.aws, set before the first CA.
    const MESH = 'howto-k8s-mtls-sds-based';
    const TD = 'howto-k8s-mtls-sds-based.aws';
    const BUNDLE = `spiffe://${TD}`;
    await aws(['create-mesh', '--mesh-name', MESH]);
    await keymeshOk(['ca', 'settings', '--mesh', MESH, '--trust-domain', TD]);
    await aws(['create-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'red', ...spec(seed.sdsColorNode('red'))]);
    await aws(['create-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'front', ...spec(seed.sdsFrontNode)]);
    await aws(['create-virtual-service', '--mesh-name', MESH, '--virtual-service-name', 'color.howto-k8s-mtls-sds-based.svc.cluster.local',
      ...spec({ provider: { virtualNode: { virtualNodeName: 'red' } } })]);
    const frontSvid = await svidFor(MESH, 'virtualNode', 'front');
    const redSvid = await svidFor(MESH, 'virtualNode', 'red');
    assert.equal(frontSvid.spiffeId, `${BUNDLE}/front`);
    const oldCa = JSON.parse(await keymeshOk(['ca', 'init', '--mesh', MESH])) as CaInfo;
    assert.equal(oldCa.status, 'active');
    step('mesh, SVIDs');

    // Both proxies subscribe to the validation secret their configuration names (the trust bundle, by the
    // trust domain's SPIFFE ID; their own SVIDs are name-only static secrets), and ACK it.
    const front = connect(t, frontSvid, MESH, 'virtualNode', 'front');
    const red = connect(t, redSvid, MESH, 'virtualNode', 'red');
    for (const p of [front, red]) {
      await p.acked(T.secret, (r) => holdsExactly(r, BUNDLE, [oldCa]), 'the trust bundle with the one CA', PUSH_MS);
      assert.deepEqual(p.subscribed(T.secret), [BUNDLE], `${p.label} subscribes to the secrets its configuration fetches over SDS`);
    }
    const frontCluster = front.lastAcked(T.cluster)!.resources.find((c) => String(c.name).startsWith(`cds_egress_${MESH}_red`));
    assert.ok(frontCluster, `front has an egress cluster to red: ${front.lastAcked(T.cluster)!.resources.map((c) => c.name).join(', ')}`);
    assert.deepEqual(sdsSecretNames([frontCluster]), [BUNDLE]);
    step('both proxies hold the bundle');

    // red keeps receiving but stops ACKing secrets.
    red.holdAcks(T.secret);
    const redAckedBefore = red.lastAcked(T.secret)!;
    const newCa = JSON.parse(await keymeshOk(['ca', 'rotate', 'prepare', '--mesh', MESH])) as CaInfo;
    assert.equal(newCa.status, 'prepared');
    assert.notEqual(newCa.id, oldCa.id);
    await front.acked(T.secret, (r) => holdsExactly(r, BUNDLE, [oldCa, newCa]), 'the bundle with the old and the new CA', PUSH_MS);
    const pushedToRed = await red.next(T.secret, { match: (r) => holdsExactly(r, BUNDLE, [oldCa, newCa]), what: 'the bundle with both CAs', timeoutMs: PUSH_MS });
    assert.notEqual(pushedToRed.versionInfo, redAckedBefore.versionInfo);
    assert.equal(red.lastAcked(T.secret), redAckedBefore, 'red has not ACKed the new bundle');
    step('prepare: both proxies received the two-CA bundle; red withholds its ACK');

    // Activation is refused: red has not ACKed the bundle with the new CA.
    await waitFor('the server recorded front\'s ACK of the new bundle', async () => {
      const f = (await proxies(MESH)).find((p) => p.identity.name === 'front');
      return f?.lastAck[T.secret]?.version === front.lastAcked(T.secret)!.versionInfo;
    }, PUSH_MS, 100);
    const refused = await keymesh(['ca', 'rotate', 'activate', '--ca', newCa.id]);
    assert.equal(refused.code, 1, `activate must be refused while red has not ACKed:\n${refused.stdout}${refused.stderr}`);
    t.diagnostic(`refused: ${refused.stderr.trim()}`);
    assert.match(refused.stderr, /^keymesh: ConflictException: /);
    assert.match(refused.stderr, new RegExp(`Not every connected proxy of trust domain ${TD.replace(/\./g, '\\.')} has received the bundle with CA ${newCa.id}`));
    assert.match(refused.stderr, /Retry shortly, or force/);
    assert.equal(refused.stdout, '');
    assert.equal((JSON.parse(await keymeshOk(['ca', 'show', newCa.id])) as CaInfo).status, 'prepared', 'the refused CA still only prepared');
    assert.equal((JSON.parse(await keymeshOk(['ca', 'show', oldCa.id])) as CaInfo).status, 'active', 'the old CA still signs');
    // What the operator sees in `keymesh proxies --json`: red was sent secrets it has not ACKed.
    const status = await proxies(MESH);
    const redStatus = status.find((p) => p.identity.name === 'red')!;
    assert.equal(redStatus.lastSent[T.secret]?.version, pushedToRed.versionInfo);
    assert.equal(redStatus.lastAck[T.secret]?.version, redAckedBefore.versionInfo);
    step('activate refused while red withholds its ACK');

    // red ACKs: activation goes through.
    red.releaseAcks(T.secret);
    await red.acked(T.secret, (r) => holdsExactly(r, BUNDLE, [oldCa, newCa]), 'the bundle with both CAs', PUSH_MS);
    const activation = await activateWhenAcked(MESH, newCa, [front, red]);
    assert.equal(activation.activated.id, newCa.id);
    assert.equal(activation.activated.status, 'active');
    assert.equal(activation.retiring.id, oldCa.id);
    assert.equal(activation.retiring.status, 'retiring');
    step('activate succeeded once red ACKed');

    // A new SVID comes from the new CA; the bundle keeps both CAs; nobody's stream was disturbed.
    const fresh = await svidFor(MESH, 'virtualNode', 'red');
    const withNew = verifies(fresh.certChainPem, newCa.certPem, 'fresh-new');
    assert.ok(withNew.ok, `the new SVID chains to the new CA:\n${withNew.output}`);
    const withOld = verifies(fresh.certChainPem, oldCa.certPem, 'fresh-old');
    assert.ok(!withOld.ok, `the new SVID must not chain to the old CA:\n${withOld.output}`);
    assert.deepEqual(fingerprints(fresh.bundlePem), fingerprints(oldCa.certPem + newCa.certPem), 'the bundle delivered with it has both CAs');
    assert.ok(verifies(frontSvid.certChainPem, oldCa.certPem, 'front-old').ok, 'front\'s SVID is from the old CA');
    for (const p of [front, red]) {
      assert.equal(p.status, undefined, `${p.label}'s stream is still open`);
      assert.ok(holdsExactly(p.latest(T.secret), BUNDLE, [oldCa, newCa]), `${p.label} still holds both CAs`);
    }
    // The xDS server accepts the new CA's SVIDs: a proxy restarted with it gets its configuration and bundle.
    const restarted = connect(t, fresh, MESH, 'virtualNode', 'red');
    await restarted.acked(T.secret, (r) => holdsExactly(r, BUNDLE, [oldCa, newCa]), 'the bundle with both CAs', PUSH_MS);
    assert.ok(restarted.lastAcked(T.listener)!.resources.some((l) => l.name === 'lds_ingress_0.0.0.0_15000'));
    step('new SVID from the new CA, accepted by the xDS server');

    // Retirement waits until the last certificate of the old CA has expired: the SVIDs above live an hour.
    const retiring = JSON.parse(await keymeshOk(['ca', 'show', oldCa.id])) as CaInfo;
    assert.equal(retiring.status, 'retiring');
    assert.ok(retiring.lastIssuedNotAfter > Date.now() + 30 * 60_000, 'the old CA has certificates valid for a while yet');
    t.diagnostic(`retirement not exercised: the old CA's last certificate expires at ${new Date(retiring.lastIssuedNotAfter).toISOString()}`);
  });

  test('a managed certificate re-issued by a new CA: the client proxy gets a new CDS version naming that CA, on its open stream', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const step = timer(t);
    // Seed 002: colorteller-white serves a keymesh managed certificate (an ACM ARN); the gateway has no client
    // policy, so it validates the colorteller against the certificate's issuing CA (App Mesh's behaviour).
    const MESH = 'appmesh-acm';
    const SERVICE = 'colorteller.appmesh-acm.local';
    await aws(['create-mesh', '--mesh-name', MESH]);
    const { caArn: oldCaArn, certArn } = await keymeshAcm(server.url, MESH, 'colorteller-white.appmesh-acm.local');
    await aws(['create-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'colorteller-white', ...spec(seed.acmColortellerNodeFor(certArn))]);
    await aws(['create-virtual-service', '--mesh-name', MESH, '--virtual-service-name', SERVICE, ...spec({ provider: { virtualNode: { virtualNodeName: 'colorteller-white' } } })]);
    await aws(['create-virtual-gateway', '--mesh-name', MESH, '--virtual-gateway-name', 'gateway', ...spec({ listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] })]);
    await aws(['create-gateway-route', '--mesh-name', MESH, '--virtual-gateway-name', 'gateway', '--gateway-route-name', 'to-colorteller',
      ...spec({ httpRoute: { match: { prefix: '/' }, action: { target: { virtualService: { virtualServiceName: SERVICE } } } } })]);
    const oldCa = JSON.parse(await keymeshOk(['ca', 'show', oldCaArn])) as CaInfo;
    const gatewaySvid = await svidFor(MESH, 'virtualGateway', 'gateway');
    const whiteSvid = await svidFor(MESH, 'virtualNode', 'colorteller-white');
    step('mesh, managed certificate, SVIDs');

    const egressOf = (r: AdsResponse) => r.resources.find((c) => String(c.name).startsWith(`cds_egress_${MESH}_colorteller-white_`));
    const validatesWith = (r: AdsResponse) => {
      const cluster = egressOf(r);
      return cluster ? sdsSecretNames([cluster]) : [];
    };
    const gateway = connect(t, gatewaySvid, MESH, 'virtualGateway', 'gateway');
    const white = connect(t, whiteSvid, MESH, 'virtualNode', 'colorteller-white');
    const cds0 = await gateway.acked(T.cluster, (r) => egressOf(r) !== undefined, 'its egress cluster to colorteller-white', PUSH_MS);
    assert.deepEqual(validatesWith(cds0), [oldCaArn], 'the cluster validates against the issuing CA of the certificate');
    await gateway.acked(T.secret, (r) => holdsExactly(r, oldCaArn, [oldCa]), 'the validation secret of the issuing CA', PUSH_MS);
    assert.deepEqual(gateway.subscribed(T.secret), [oldCaArn]);
    const cert0 = await white.acked(T.secret, (r) => r.resources.some((s) => s.name === certArn), 'its managed certificate', PUSH_MS);
    const chain0 = cert0.resources.find((s) => s.name === certArn)!.tlsCertificate.certificateChain.inlineString as string;
    assert.ok(verifies(chain0, oldCa.certPem, 'managed-0').ok, 'the managed certificate is from the first CA');
    const streamBefore = (await proxies(MESH)).find((p) => p.identity.name === 'gateway')!;
    step(`gateway: CDS ${cds0.versionInfo} validating with ${oldCaArn}`);

    // Rotate the mesh CA (the gateway holds the CA ARN's validation secret, so activation waits for its ACK).
    const newCa = JSON.parse(await keymeshOk(['ca', 'rotate', 'prepare', '--mesh', MESH])) as CaInfo;
    await gateway.acked(T.secret, (r) => holdsExactly(r, oldCaArn, [oldCa, newCa]), 'the secret of the CA ARN, now with both CAs', PUSH_MS);
    const activation = await activateWhenAcked(MESH, newCa, [gateway, white]);
    assert.equal(activation.activated.arn, newCa.arn);
    step('rotated: new CA active');

    // Re-issue the managed certificate now: it comes from the active (new) CA (the server's upkeep would also
    // renew it within 30 s, since its CA no longer signs).
    const renewed = JSON.parse(await keymeshOk(['ca', 'renew-certificate', certArn])) as { arn: string; caArn: string };
    assert.equal(renewed.arn, certArn, 'the same ARN');
    assert.equal(renewed.caArn, newCa.arn, 'issued by the new CA');
    const cds1 = await gateway.next(T.cluster, {
      match: (r) => JSON.stringify(validatesWith(r)) === JSON.stringify([newCa.arn]), what: `validating with the new CA ${newCa.arn}`, timeoutMs: PUSH_MS,
    });
    assert.notEqual(cds1.versionInfo, cds0.versionInfo);
    assert.equal(egressOf(cds1)!.name, egressOf(cds0)!.name, 'the same cluster, with a new validation secret');
    step(`gateway: CDS ${cds1.versionInfo} validating with ${newCa.arn}`);

    // On the same stream: the gateway follows the new name over SDS, and colorteller-white serves the new certificate.
    await gateway.acked(T.secret, (r) => holdsExactly(r, newCa.arn, [oldCa, newCa]), 'the validation secret of the new CA ARN', PUSH_MS);
    assert.deepEqual(gateway.subscribed(T.secret), [newCa.arn]);
    const cert1 = await white.acked(T.secret, (r) => {
      const chain = r.resources.find((s) => s.name === certArn)?.tlsCertificate?.certificateChain?.inlineString;
      return typeof chain === 'string' && chain !== chain0;
    }, 'the re-issued managed certificate', PUSH_MS);
    const chain1 = cert1.resources.find((s) => s.name === certArn)!.tlsCertificate.certificateChain.inlineString as string;
    const byNew = verifies(chain1, newCa.certPem, 'managed-1');
    assert.ok(byNew.ok, `the re-issued certificate chains to the new CA:\n${byNew.output}`);
    assert.ok(!verifies(chain1, oldCa.certPem, 'managed-1-old').ok, 'and not to the old one');
    for (const p of [gateway, white]) assert.equal(p.status, undefined, `${p.label}'s stream is still open`);
    const streamAfter = (await proxies(MESH)).filter((p) => p.identity.name === 'gateway');
    assert.deepEqual(streamAfter.map((p) => [p.stream, p.connectedAt]), [[streamBefore.stream, streamBefore.connectedAt]], 'one gateway stream, the same one: no reconnect');
    assert.equal(streamAfter[0]!.lastAck[T.cluster]?.version, cds1.versionInfo);
    const superseded = JSON.parse(await keymeshOk(['ca', 'show', oldCa.id])) as CaInfo;
    t.diagnostic(`the old CA is ${superseded.status} until ${new Date(superseded.lastIssuedNotAfter).toISOString()} (the notAfter of the managed certificate it signed before the renewal)`);
    t.diagnostic(`CDS pushes to the gateway: ${gateway.received(T.cluster).map((r) => r.versionInfo).join(' → ')}; ${shortType(T.secret)} names ${gateway.subscribed(T.secret).join(', ')}`);
  });
});

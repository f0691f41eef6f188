// `openssl s_client` and curl against the ingress listeners of real `keymesh proxy` processes in each TLS mode,
// each refusal with the Envoy counter that names it (read from the admin /stats):
//
// - STRICT, requiring a client certificate whose SPIFFE ID is `tester` (trust and CRLs over SDS): accepted with
//   tester's SVID; refused without a certificate (ssl.fail_verify_no_cert), with a certificate from another CA,
//   an expired one, one revoked in keymesh's CA after it was accepted (ssl.fail_verify_error: the CRL reaches the
//   proxy in the validation secret), another workload's SVID (ssl.fail_verify_san), plaintext
//   (ssl.connection_error). Each refusal leaves ssl.handshake where it was, and no request reaches the app.
// - PERMISSIVE: TLS (ssl.handshake, ssl.no_certificate) and plaintext (keymesh.plaintext_cx_total) both served.
// - DISABLED: plaintext served; a TLS client gets no TLS, and the listener has no ssl.* stats at all.
//
// The mesh's CA is the test's own root (`keymesh ca import`), so openssl can also sign the expired certificate
// under it; keymesh issues the SVIDs (`keymesh identity run --once`) and the CRL. Every command and wait is
// bounded. KEYMESH_TEST_VERBOSE=1 shows the processes' output.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CreateMeshCommand, CreateVirtualNodeCommand, type AppMeshClient } from '@aws-sdk/client-app-mesh';
import { sdkClient } from '../support/aws-cli.ts';
import { KEYMESH_MAIN, makeTempDir } from '../support/keymesh-server.ts';
import { ControlPlane, HttpApp, MeshProxy, tearDownMesh, until } from '../support/mesh-processes.ts';

const MESH = 'refusals';
const TRUST_DOMAIN = 'refusals.keymesh.test';
const TD = `spiffe://${TRUST_DOMAIN}`;
const APP_PORT = 8080;
const IPS = { strict: '127.0.0.91', permissive: '127.0.0.92', disabled: '127.0.0.93' } as const;
type Mode = keyof typeof IPS;
const listenerStat = (mode: Mode, name: string) => `listener.${IPS[mode]}_15000.${name}`;
const SSL_COUNTERS = ['handshake', 'no_certificate', 'fail_verify_no_cert', 'fail_verify_error', 'fail_verify_san', 'connection_error'] as const;

let cp: ControlPlane;
let appmesh: AppMeshClient;
let dir: string;
const proxies: Partial<Record<Mode, MeshProxy>> = {};
const sidecar = (mode: Mode): MeshProxy => proxies[mode] ?? assert.fail(`the ${mode} sidecar did not start`);

interface Run { readonly code: number | null; readonly stdout: string; readonly stderr: string }

/** A command, asynchronously (the proxies and apps are other processes, but nothing here may block), bounded. */
function run(command: string, args: readonly string[], o: { input?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // a peer that closes first is what some cases are about
    child.stdin.end(o.input ?? '');
  });
}

async function opensslOk(args: readonly string[]): Promise<string> {
  const r = await run('openssl', args);
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** `keymesh <args>` without server options (identity run talks to the identity endpoint itself). */
async function keymeshOk(args: readonly string[]): Promise<string> {
  const r = await run(process.execPath, [KEYMESH_MAIN, ...args], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`keymesh ${args.join(' ')} exited ${r.code}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

interface ClientCert { readonly cert: string; readonly key: string }

/** An SVID issued by keymesh's CA to a virtual node: a join token, then `keymesh identity run --once`. */
async function svidFor(node: string, out: string): Promise<ClientCert> {
  const token = join(dir, `${out}.token`);
  writeFileSync(token, await cp.joinToken(MESH, 'virtualNode', node), { mode: 0o600 });
  await keymeshOk(['identity', 'run', '--once', '--endpoint', cp.identityUrl, '--control-plane-ca', cp.caFile, '--join-token-file', token, '--out', join(dir, out)]);
  return { cert: join(dir, out, 'svid.pem'), key: join(dir, out, 'svid_key.pem') };
}

/** openssl's serial of a certificate file, as `keymesh ca revoke --serial` takes it (hex). */
async function serialOf(cert: string): Promise<string> {
  return (await opensslOk(['x509', '-in', cert, '-noout', '-serial'])).trim().replace(/^serial=/, '');
}

const ROOT_EXT = 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n';
const LEAF_EXT = (uri: string) => `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth,serverAuth\nsubjectAltName=URI:${uri}\n`;

/** A self-signed CA `<name>.pem` / `<name>.key` made by openssl. */
async function opensslRoot(name: string): Promise<void> {
  writeFileSync(join(dir, `${name}.cnf`), `[req]\ndistinguished_name=dn\nprompt=no\n[dn]\nCN=${name}\n[ext]\n${ROOT_EXT}`);
  await opensslOk(['req', '-x509', '-config', `${name}.cnf`, '-extensions', 'ext', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '30']);
}

const asn1Time = (ms: number) => new Date(ms).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';

/**
 * A leaf `<name>.pem` / `<name>.key` for `uri` signed by CA `<issuer>` with `openssl ca`, which (unlike
 * `openssl x509 -req`) takes any validity window: `validity` in ms relative to now.
 */
async function opensslLeaf(name: string, issuer: string, uri: string, validity: { from: number; to: number }): Promise<ClientCert> {
  await opensslOk(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  writeFileSync(join(dir, `${name}.ext`), `[ext]\n${LEAF_EXT(uri)}`);
  writeFileSync(join(dir, `${name}.db`), '');
  writeFileSync(join(dir, `${name}-ca.cnf`), [
    '[ca]', 'default_ca=d', '[d]', `database=${name}.db`, 'new_certs_dir=.', 'rand_serial=yes', 'default_md=sha256',
    'policy=p', 'unique_subject=no', '[p]', 'commonName=supplied', '',
  ].join('\n'));
  const now = Date.now();
  await opensslOk(['ca', '-batch', '-notext', '-config', `${name}-ca.cnf`, '-cert', `${issuer}.pem`, '-keyfile', `${issuer}.key`, '-in', `${name}.csr`, '-out', `${name}.pem`,
    '-startdate', asn1Time(now + validity.from), '-enddate', asn1Time(now + validity.to), '-extfile', `${name}.ext`, '-extensions', 'ext']);
  return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

interface Attempt {
  /** The application's answer came back through the TLS connection. */
  readonly served: boolean;
  readonly output: string;
}

/**
 * `openssl s_client` to a sidecar's ingress listener: verifies the sidecar's SVID against the mesh root, presents
 * `client` when given, sends one HTTP request and reads until the peer closes.
 */
async function sClient(mode: Mode, client?: ClientCert): Promise<Attempt> {
  const r = await run('openssl', [
    's_client', '-connect', `${IPS[mode]}:15000`, '-CAfile', 'root.pem', '-verify_return_error', '-ign_eof',
    ...(client ? ['-cert', client.cert, '-key', client.key] : []),
  ], { input: `GET /through-tls HTTP/1.1\r\nHost: ${mode}\r\nConnection: close\r\n\r\n` });
  const output = `${r.stdout}${r.stderr}`;
  return { served: /HTTP\/1\.1 200 OK[\s\S]*"app":"/.test(r.stdout), output };
}

/** curl without TLS to a sidecar's ingress listener. */
async function curlPlain(mode: Mode): Promise<{ status: number; body: string }> {
  const r = await run('curl', ['-s', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', `http://${IPS[mode]}:15000/plain`]);
  const lines = r.stdout.split('\n');
  return { status: Number(lines.at(-1)), body: lines.slice(0, -1).join('\n') };
}

/** The listener's ssl.* counters and a few others. */
async function counters(mode: Mode): Promise<Record<string, number>> {
  const stats = await sidecar(mode).stats();
  const out: Record<string, number> = {};
  for (const c of SSL_COUNTERS) out[`ssl.${c}`] = stats.get(listenerStat(mode, `ssl.${c}`)) ?? 0;
  out.plaintext = stats.get(listenerStat(mode, 'keymesh.plaintext_cx_total')) ?? 0;
  out.app_requests = stats.get(`cluster.cds_ingress_${MESH}_${mode}_http_${APP_PORT}.upstream_rq_total`) ?? 0;
  return out;
}

/**
 * Runs `what` and returns how the counters moved. The proxy counts before it closes a connection, so the
 * counters are final once the client saw the end; the wait is for the admin reads only (bounded).
 */
async function delta(mode: Mode, what: () => Promise<unknown>, expectChange: string): Promise<Record<string, number>> {
  const before = await counters(mode);
  await what();
  const after = await until(`${mode}: ${expectChange} moves`, async () => {
    const now = await counters(mode);
    return now[expectChange] !== before[expectChange] ? now : undefined;
  }, 5_000, 100);
  return Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - before[k]!]).filter(([, v]) => v !== 0));
}

const certs: Record<'tester' | 'revoked' | 'other' | 'rogue' | 'expired', ClientCert> = {} as never;

before(async () => {
  dir = makeTempDir('keymesh-tls-refusals-');
  // The mesh's CA is our own root (imported below), so that openssl can sign an expired certificate under it too.
  [cp] = await Promise.all([ControlPlane.start(), opensslRoot('root'), opensslRoot('rogue-root')]);
  appmesh = sdkClient(cp.url);
  await appmesh.send(new CreateMeshCommand({ meshName: MESH }));
  await cp.cliOk(['ca', 'settings', '--mesh', MESH, '--trust-domain', TRUST_DOMAIN]);
  await cp.cliOk(['ca', 'import', '--mesh', MESH, '--cert', join(dir, 'root.pem'), '--key', join(dir, 'root.key')]);

  const tls = (mode: 'STRICT' | 'PERMISSIVE', name: string, validation?: object) => ({ mode, certificate: { sds: { secretName: `${TD}/${name}` } }, ...(validation ? { validation } : {}) });
  const served = (name: Mode, listenerTls?: object) => ({
    listeners: [{ portMapping: { port: APP_PORT, protocol: 'http' }, ...(listenerTls ? { tls: listenerTls } : {}) }],
    serviceDiscovery: { dns: { hostname: `${name}.${MESH}.local` } },
  });
  const nodes: Record<string, object> = {
    strict: served('strict', tls('STRICT', 'strict', { trust: { sds: { secretName: TD } }, subjectAlternativeNames: { match: { exact: [`${TD}/tester`] } } })),
    permissive: served('permissive', tls('PERMISSIVE', 'permissive')),
    disabled: served('disabled'),
    // Identities only: the clients openssl plays.
    tester: {},
    other: {},
  };
  for (const [name, spec] of Object.entries(nodes)) await appmesh.send(new CreateVirtualNodeCommand({ meshName: MESH, virtualNodeName: name, spec }));

  // Everything else at once: applications, sidecars, and the client certificates.
  const modes = Object.keys(IPS) as Mode[];
  const hour = 3_600_000;
  const [, started, svids, rogue, expired] = await Promise.all([
    Promise.all(modes.map((m) => HttpApp.start({ name: m, host: IPS[m], port: APP_PORT }))),
    Promise.all(modes.map((m) => MeshProxy.start(cp, { kind: 'proxy', mesh: MESH, name: m, ip: IPS[m], workDir: dir }))),
    Promise.all([svidFor('tester', 'tester'), svidFor('tester', 'tester-revoked'), svidFor('other', 'other')]),
    opensslLeaf('rogue', 'rogue-root', `${TD}/tester`, { from: -hour, to: 24 * hour }),
    opensslLeaf('expired', 'root', `${TD}/tester`, { from: -48 * hour, to: -24 * hour }),
  ]);
  modes.forEach((m, i) => { proxies[m] = started[i]; });
  [certs.tester, certs.revoked, certs.other] = svids;
  certs.rogue = rogue;
  certs.expired = expired;
});

after(() => tearDownMesh({ cp, appmesh, dir }));

test('the client certificates are what their cases say (openssl verify against the mesh root)', async () => {
  const verify = async (c: ClientCert) => {
    const r = await run('openssl', ['verify', '-CAfile', 'root.pem', '-purpose', 'sslclient', c.cert]);
    return `${r.stdout}${r.stderr}`;
  };
  for (const c of [certs.tester, certs.revoked, certs.other]) assert.match(await verify(c), /: OK/);
  assert.match(await verify(certs.expired), /certificate has expired/);
  assert.match(await verify(certs.rogue), /unable to get local issuer certificate/);
  const uri = async (c: ClientCert) => /URI:(\S+)/.exec(await opensslOk(['x509', '-in', c.cert, '-noout', '-ext', 'subjectAltName']))?.[1];
  assert.deepEqual(await Promise.all([certs.tester, certs.revoked, certs.rogue, certs.expired, certs.other].map(uri)), [`${TD}/tester`, `${TD}/tester`, `${TD}/tester`, `${TD}/tester`, `${TD}/other`]);
});

test('STRICT: the expected client certificate is served over mutual TLS; the answer comes from the app', async () => {
  let attempt: Attempt | undefined;
  const moved = await delta('strict', async () => { attempt = await sClient('strict', certs.tester); }, 'ssl.handshake');
  assert.ok(attempt!.served, attempt!.output);
  assert.match(attempt!.output, /Verify return code: 0 \(ok\)/);
  assert.deepEqual(moved, { 'ssl.handshake': 1, app_requests: 1 });
});

const refusals: [string, () => ClientCert | undefined, string][] = [
  ['no client certificate', () => undefined, 'ssl.fail_verify_no_cert'],
  ['a certificate from another CA (same SPIFFE ID)', () => certs.rogue, 'ssl.fail_verify_error'],
  ['an expired certificate of the mesh CA', () => certs.expired, 'ssl.fail_verify_error'],
  ["another workload's SVID (the listener wants tester's SAN)", () => certs.other, 'ssl.fail_verify_san'],
];
for (const [what, cert, counter] of refusals) {
  test(`STRICT refuses ${what}: ${counter}`, async () => {
    let attempt: Attempt | undefined;
    const moved = await delta('strict', async () => { attempt = await sClient('strict', cert()); }, counter);
    assert.equal(attempt!.served, false, attempt!.output);
    assert.deepEqual(moved, { [counter]: 1 }, 'only that counter moved: no handshake counted, no request to the app');
  });
}

test('STRICT refuses plaintext (curl): ssl.connection_error', async () => {
  let answer: { status: number } | undefined;
  const moved = await delta('strict', async () => { answer = await curlPlain('strict'); }, 'ssl.connection_error');
  assert.equal(answer!.status, 0, 'no HTTP answer');
  assert.deepEqual(moved, { 'ssl.connection_error': 1 });
});

test('STRICT refuses a certificate once keymesh revoked it: the CRL reaches the proxy over SDS; ssl.fail_verify_error', async () => {
  const first = await sClient('strict', certs.revoked);
  assert.ok(first.served, `accepted before the revocation:\n${first.output}`);
  const serial = await serialOf(certs.revoked.cert);
  await cp.cliOk(['ca', 'revoke', '--serial', serial]);
  // The validation secret the listener uses (the trust domain's) now carries a CRL listing the serial.
  await until('the strict sidecar holds a CRL that lists the serial', async () => {
    const secret = (await sidecar('strict').configDump()).configs.Secret?.find((s) => s.name === TD);
    const crl = secret?.validationContext?.crl as { inlineString?: string; inlineBytes?: string } | undefined;
    const pem = crl?.inlineString ?? (crl?.inlineBytes ? Buffer.from(crl.inlineBytes, 'base64').toString('utf8') : undefined);
    if (!pem) return false;
    const text = await run('openssl', ['crl', '-noout', '-text'], { input: pem });
    return new RegExp(`Serial Number: 0*${serial.replace(/^0+/, '')}\\b`, 'i').test(text.stdout);
  }, 15_000, 250);
  let attempt: Attempt | undefined;
  const moved = await delta('strict', async () => { attempt = await sClient('strict', certs.revoked); }, 'ssl.fail_verify_error');
  assert.equal(attempt!.served, false, attempt!.output);
  assert.deepEqual(moved, { 'ssl.fail_verify_error': 1 });
  // The same identity with another (unrevoked) certificate is still served: it is that certificate that is refused.
  assert.ok((await sClient('strict', certs.tester)).served);
});

test('PERMISSIVE serves TLS (no client certificate needed) and plaintext on the same port', async () => {
  let attempt: Attempt | undefined;
  const tlsMoved = await delta('permissive', async () => { attempt = await sClient('permissive'); }, 'ssl.handshake');
  assert.ok(attempt!.served, attempt!.output);
  assert.deepEqual(tlsMoved, { 'ssl.handshake': 1, 'ssl.no_certificate': 1, app_requests: 1 });

  let plain: { status: number; body: string } | undefined;
  const plainMoved = await delta('permissive', async () => { plain = await curlPlain('permissive'); }, 'plaintext');
  assert.equal(plain!.status, 200);
  assert.equal(JSON.parse(plain!.body).app, 'permissive');
  assert.deepEqual(plainMoved, { plaintext: 1, app_requests: 1 });
});

test('DISABLED serves plaintext only: a TLS client gets no handshake, and the listener has no ssl.* stats', async () => {
  let plain: { status: number; body: string } | undefined;
  const moved = await delta('disabled', async () => { plain = await curlPlain('disabled'); }, 'plaintext');
  assert.equal(plain!.status, 200);
  assert.equal(JSON.parse(plain!.body).app, 'disabled');
  assert.deepEqual(moved, { plaintext: 1, app_requests: 1 });

  const before = await sidecar('disabled').stats();
  const attempt = await sClient('disabled');
  assert.equal(attempt.served, false, attempt.output);
  assert.match(attempt.output, /no peer certificate available[\s\S]*Cipher is \(NONE\)[\s\S]*wrong version number/, 'the answer to the ClientHello is not TLS');
  const after = await sidecar('disabled').stats();
  assert.deepEqual([...after.keys()].filter((k) => k.startsWith(listenerStat('disabled', 'ssl.'))), []);
  const requests = `cluster.cds_ingress_${MESH}_disabled_http_${APP_PORT}.upstream_rq_total`;
  assert.equal(after.get(requests), before.get(requests), 'the ClientHello reached no application');
  assert.equal((after.get('http.ingress.downstream_cx_protocol_error') ?? 0) - (before.get('http.ingress.downstream_cx_protocol_error') ?? 0), 1, 'the HTTP codec refused the ClientHello');
});

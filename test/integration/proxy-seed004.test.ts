// Seed 004 through keymesh's own data plane, with real processes: a control plane, the colorteller app, its
// sidecar (`keymesh proxy`) and a virtual gateway (`keymesh gateway`), each proxy on its own loopback
// address. Each of the five steps is an API call with the AWS CLI, a request through the gateway with curl,
// and the Envoy stats the seed reads from the proxies' admin ports.
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as seed from '../fixtures/seed-specs.ts';
import { appmeshCli } from '../support/aws-cli.ts';
import { KEYMESH_MAIN, makeTempDir, removeDir, startKeymeshServer, TEST_CREDENTIALS, type ServerHandle } from '../support/keymesh-server.ts';
import { DATA_PLANE_V8_FLAGS } from '../../src/cli/runtime-flags.ts';

const MESH = 'appmesh-mtls';
const SERVICE = 'colorteller.appmesh-mtls.local';
const CT_IP = '127.0.0.21';
const GW_IP = '127.0.0.22';
const CLUSTER = `cluster.cds_egress_${MESH}_colorteller_http_9080`;
const CT_LISTENER = `listener.${CT_IP}_15000`;

let server: ServerHandle;
let dir: string;
let app: Server;
const procs: ChildProcess[] = [];
const admins: Record<'colorteller' | 'gateway', number> = { colorteller: 0, gateway: 0 };

function keymesh(args: string[]): string {
  const r = spawnSync(process.execPath, [KEYMESH_MAIN, ...args], {
    encoding: 'utf8', timeout: 30_000,
    env: { ...process.env, AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey },
  });
  assert.equal(r.status, 0, `keymesh ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** A seed spec with its /keys/ paths pointing at this test's certificate files. */
const withKeys = <T>(spec: T): T => JSON.parse(JSON.stringify(spec).replaceAll('/keys/', `${dir}/`)) as T;

async function aws(args: string[]): Promise<void> {
  const r = await appmeshCli(server.url, args);
  assert.equal(r.code, 0, `aws appmesh ${args[0]}: ${r.stderr}`);
}

/** Starts `keymesh proxy|gateway` and resolves with its admin port once it says it is ready. */
async function startProxy(kind: 'proxy' | 'gateway', name: string, ip: string): Promise<number> {
  const tokenFile = join(dir, `${name}.token`);
  writeFileSync(tokenFile, keymesh(['token', 'create', '--mesh', MESH, kind === 'proxy' ? '--virtual-node' : '--virtual-gateway', name, '--endpoint', server.url, '--data-dir', server.dataDir]).trim(), { mode: 0o600 });
  const child = spawn(process.execPath, [
    KEYMESH_MAIN, kind, '--mesh', MESH, kind === 'proxy' ? '--virtual-node' : '--virtual-gateway', name,
    '--xds', server.xdsAddress, '--identity-endpoint', server.identityUrl, '--control-plane-ca', join(server.dataDir, 'control-plane', 'ca-cert.pem'),
    '--join-token-file', tokenFile, '--admin', '127.0.0.1:0', '--listen-address', ip, '--app-address', ip,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  procs.push(child);
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (process.env.KEYMESH_TEST_VERBOSE) process.stderr.write(`[${name}] ${d}`);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`keymesh ${kind} ${name} not ready in 30 s:\n${out}`)), 30_000);
    const check = () => {
      const m = /admin on [^:]+:(\d+)/.exec(out);
      if (m && /ready \(every listener serving\)/.test(out)) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => reject(new Error(`keymesh ${kind} ${name} exited with ${code}:\n${out}`)));
  });
}

/** curl, asynchronously: the colorteller app runs in this process and must keep answering meanwhile. */
function curl(url: string): Promise<{ code: number; body: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-s', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', url], { encoding: 'utf8', timeout: 20_000 }, (_e, stdout) => {
      const lines = stdout.split('\n');
      resolve({ code: Number(lines.at(-1)), body: lines.slice(0, -1).join('\n') });
    });
  });
}

/** `curl -s localhost:9901/stats | grep <name>`, as the seed does. */
function stat(who: 'colorteller' | 'gateway', name: string): number {
  const t0 = Date.now();
  const r = spawnSync('sh', ['-c', `curl -s 127.0.0.1:${admins[who]}/stats | grep -F '${name}: '`], { encoding: 'utf8', timeout: 10_000 });
  if (process.env.KEYMESH_TEST_VERBOSE) process.stderr.write(`stat ${name} in ${Date.now() - t0} ms\n`);
  const m = new RegExp(`^${name.replaceAll('.', '\\.')}: (\\d+)$`, 'm').exec(r.stdout);
  return m ? Number(m[1]) : 0;
}

/** Waits until the gateway's configuration reflects an update (its request outcome changes), bounded. */
async function untilStatus(expected: number, what: string): Promise<{ code: number; body: string }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const t0 = Date.now();
    const r = await curl(`http://${GW_IP}:9080/`);
    if (process.env.KEYMESH_TEST_VERBOSE) process.stderr.write(`curl ${r.code} in ${Date.now() - t0} ms\n`);
    if (r.code === expected) return r;
    if (Date.now() > deadline) {
      if (process.env.KEYMESH_TEST_VERBOSE) {
        process.stderr.write(`proxies: ${keymesh(['proxies', '--json', '--endpoint', server.url, '--data-dir', server.dataDir]).replace(/\s+/g, ' ')}\n`);
        for (const who of ['colorteller', 'gateway'] as const) process.stderr.write(`${who} stats:\n${spawnSync('sh', ['-c', `curl -s 127.0.0.1:${admins[who]}/stats | grep -v ': 0$'`], { encoding: 'utf8' }).stdout}\n`);
        for (const who of ['colorteller', 'gateway'] as const) process.stderr.write(`${who} config_dump: ${spawnSync('curl', ['-s', `127.0.0.1:${admins[who]}/config_dump`], { encoding: 'utf8' }).stdout.replace(/\s+/g, " ").slice(0, 20000)}\n`);
      }
      throw new Error(`${what}: the gateway still answers ${r.code} (${r.body}) after 20 s`);
    }
    await new Promise((res) => setTimeout(res, 200));
  }
}

before(async () => {
  dir = makeTempDir('keymesh-seed004-');
  server = await startKeymeshServer();
  keymesh(['certs', 'ca', '--out', dir]);
  keymesh(['certs', 'issue', '--ca-dir', dir, '--name', 'colorteller', '--dns', SERVICE, '--out', dir]);
  keymesh(['certs', 'issue', '--ca-dir', dir, '--name', 'gateway', '--dns', 'gateway.appmesh-mtls.local', '--out', dir]);
  app = createServer((req, res) => res.end(req.url === '/ping' ? 'pong' : 'white'));
  await new Promise<void>((r) => app.listen(9080, CT_IP, r));
  await aws(['create-mesh', '--mesh-name', MESH]);
  await aws(['create-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'colorteller', '--spec', JSON.stringify(withKeys(seed.colortellerStrictTls))]);
  await aws(['create-virtual-service', '--mesh-name', MESH, '--virtual-service-name', SERVICE, '--spec', JSON.stringify(seed.colortellerService)]);
  await aws(['create-virtual-gateway', '--mesh-name', MESH, '--virtual-gateway-name', 'gateway', '--spec', JSON.stringify({ listeners: [{ portMapping: { port: 9080, protocol: 'http' } }] })]);
  await aws(['create-gateway-route', '--mesh-name', MESH, '--virtual-gateway-name', 'gateway', '--gateway-route-name', 'gateway-route', '--spec', JSON.stringify(seed.gatewayRouteToColorteller)]);
  admins.colorteller = await startProxy('proxy', 'colorteller', CT_IP);
  admins.gateway = await startProxy('gateway', 'gateway', GW_IP);
});

after(async () => {
  for (const p of procs) p.kill('SIGKILL');
  app?.close();
  await server?.kill();
  if (server) removeDir(server.dataDir);
  if (dir) removeDir(dir);
});

test('the sidecar and the gateway run with the data-plane V8 settings, in the process that was started', () => {
  for (const child of procs) {
    const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'latin1').split('\0');
    for (const flag of DATA_PLANE_V8_FLAGS) assert.ok(argv.includes(flag), `${flag} in ${argv.join(' ')}`);
  }
});

test('step 1, strict TLS on the colorteller: the request succeeds; ssl.handshake rises and ssl.no_certificate equals it', async () => {
  const r = await untilStatus(200, 'step 1');
  assert.equal(r.body, 'white');
  const handshakes = stat('colorteller', `${CT_LISTENER}.ssl.handshake`);
  assert.ok(handshakes >= 1, `handshakes ${handshakes}`);
  assert.equal(stat('colorteller', `${CT_LISTENER}.ssl.no_certificate`), handshakes);
});

test('step 2, a client policy with the wrong SAN: the request fails and ssl.fail_verify_san rises on the gateway', async () => {
  const wrong = withKeys({
    listeners: [{ portMapping: { port: 9080, protocol: 'http' } }],
    backendDefaults: { clientPolicy: { tls: { validation: { trust: { file: { certificateChain: '/keys/ca_cert.pem' } }, subjectAlternativeNames: { match: { exact: ['colorteller-wrong.appmesh-mtls.local'] } } } } } },
  });
  await aws(['update-virtual-gateway', '--mesh-name', MESH, '--virtual-gateway-name', 'gateway', '--spec', JSON.stringify(wrong)]);
  await untilStatus(503, 'step 2');
  assert.ok(stat('gateway', `${CLUSTER}.ssl.fail_verify_san`) >= 1);
});

test('step 3, the right SAN: success again', async () => {
  const right = withKeys({
    listeners: [{ portMapping: { port: 9080, protocol: 'http' } }],
    backendDefaults: { clientPolicy: { tls: { validation: { trust: { file: { certificateChain: '/keys/ca_cert.pem' } }, subjectAlternativeNames: { match: { exact: [SERVICE] } } } } } },
  });
  await aws(['update-virtual-gateway', '--mesh-name', MESH, '--virtual-gateway-name', 'gateway', '--spec', JSON.stringify(right)]);
  assert.equal((await untilStatus(200, 'step 3')).body, 'white');
});

test('step 4, the colorteller requires a client certificate: the request fails and ssl.fail_verify_no_cert rises', async () => {
  await aws(['update-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'colorteller', '--spec', JSON.stringify(withKeys(seed.colortellerRequireClientCert))]);
  await untilStatus(503, 'step 4');
  assert.ok(stat('colorteller', `${CT_LISTENER}.ssl.fail_verify_no_cert`) >= 1);
});

test('step 5, the gateway presents its certificate: mutual TLS, success; handshakes rise while no_certificate does not', async () => {
  const noCertBefore = stat('colorteller', `${CT_LISTENER}.ssl.no_certificate`);
  const handshakesBefore = stat('colorteller', `${CT_LISTENER}.ssl.handshake`);
  await aws(['update-virtual-gateway', '--mesh-name', MESH, '--virtual-gateway-name', 'gateway', '--spec', JSON.stringify(withKeys(seed.gatewayWithClientCert))]);
  assert.equal((await untilStatus(200, 'step 5')).body, 'white');
  assert.ok(stat('colorteller', `${CT_LISTENER}.ssl.handshake`) > handshakesBefore);
  assert.equal(stat('colorteller', `${CT_LISTENER}.ssl.no_certificate`), noCertBefore);
  assert.match(readFileSync(join(dir, 'gateway_cert_chain.pem'), 'utf8'), /BEGIN CERTIFICATE/);
});

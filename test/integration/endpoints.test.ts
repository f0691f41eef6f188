// The endpoint registry end to end: sidecars (scripted Envoys over mTLS with real SVIDs) register their node's
// instance through node.metadata, clients get it as an EDS load assignment, a disconnected sidecar lapses after
// the grace period, a restarted control plane keeps registrations until their sidecars come back, and
// operators list, register and deregister instances with `keymesh endpoints`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { AdsClient, bootstrapSvid, T, waitFor, type AdsResponse, type Svid } from '../support/ads-client.ts';
import { appmeshCli } from '../support/aws-cli.ts';
import { KEYMESH_MAIN, makeTempDir, removeDir, startKeymeshServer, TEST_CREDENTIALS, type ServerHandle } from '../support/keymesh-server.ts';

const MESH = 'registry';
const CLUSTER = `cds_egress_${MESH}_backend_http_8080`;
const GRACE = '3s';

let server: ServerHandle;
let dir: string;
let cpCaPem: string;
const svids: Record<string, Svid> = {};
const clients: AdsClient[] = [];

/** status, stdout, and stdout + stderr. */
function keymesh(args: string[]): { status: number | null; stdout: string; out: string } {
  const r = spawnSync(process.execPath, [KEYMESH_MAIN, ...args, '--endpoint', server.url, '--data-dir', server.dataDir], {
    encoding: 'utf8', timeout: 30_000,
    env: { ...process.env, AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey },
  });
  return { status: r.status, stdout: r.stdout, out: `${r.stdout}${r.stderr}` };
}

function keymeshOk(args: string[]): string {
  const r = keymesh(args);
  assert.equal(r.status, 0, `keymesh ${args.join(' ')}:\n${r.out}`);
  return r.stdout;
}

async function aws(args: string[]): Promise<void> {
  const r = await appmeshCli(server.url, args);
  assert.equal(r.code, 0, `aws appmesh ${args[0]}: ${r.stderr}`);
}

function envoy(name: string, metadata?: Record<string, unknown>): AdsClient {
  const c = new AdsClient({ address: server.xdsAddress, controlPlaneCaPem: cpCaPem, svid: svids[name]!, nodeId: `mesh/${MESH}/virtualNode/${name}`, ...(metadata ? { metadata } : {}) });
  clients.push(c);
  return c.followLikeEnvoy();
}

const clusterType = (r: AdsResponse) => r.resources.find((c) => c.name === CLUSTER)?.type as string | undefined;
const addresses = (r: AdsResponse) => (r.resources.find((a) => a.clusterName === CLUSTER)?.endpoints ?? [])
  .flatMap((l: any) => l.lbEndpoints.map((e: any) => `${e.endpoint.address.socketAddress.address}:${e.endpoint.address.socketAddress.portValue}`)).sort();

before(async () => {
  dir = makeTempDir('keymesh-endpoints-');
  server = await startKeymeshServer({ args: ['--endpoint-grace', GRACE] });
  cpCaPem = readFileSync(join(server.dataDir, 'control-plane', 'ca-cert.pem'), 'utf8');
  await aws(['create-mesh', '--mesh-name', MESH]);
  await aws(['create-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'backend', '--spec',
    JSON.stringify({ listeners: [{ portMapping: { port: 8080, protocol: 'http' } }], serviceDiscovery: { dns: { hostname: 'backend.registry.local' } } })]);
  await aws(['create-virtual-service', '--mesh-name', MESH, '--virtual-service-name', 'backend.registry.local', '--spec',
    JSON.stringify({ provider: { virtualNode: { virtualNodeName: 'backend' } } })]);
  await aws(['create-virtual-node', '--mesh-name', MESH, '--virtual-node-name', 'client', '--spec',
    JSON.stringify({ backends: [{ virtualService: { virtualServiceName: 'backend.registry.local' } }] })]);
  for (const name of ['backend', 'client']) {
    const joinToken = keymeshOk(['token', 'create', '--mesh', MESH, '--virtual-node', name]).trim();
    svids[name] = await bootstrapSvid({ identityUrl: server.identityUrl, controlPlaneCaPem: cpCaPem, joinToken, workDir: dir, name });
  }
});

after(async () => {
  for (const c of clients) c.close();
  await server?.kill();
  removeDir(dir);
  if (server) removeDir(server.dataDir);
});

test("a connected sidecar is its node's instance for its clients; once gone it lapses after the grace period", async () => {
  const client = envoy('client');
  await client.next(T.cluster, { match: (r) => clusterType(r) === 'LOGICAL_DNS', what: 'no instance yet: DNS on the hostname' });

  const backend = envoy('backend', { keymesh: { listen_address: '127.0.0.1', ingress_port: 15010, egress_port: 15011 } });
  const listeners = await backend.next(T.listener);
  assert.ok(listeners.resources.some((l) => l.name === 'lds_ingress_127.0.0.1_15010'), `its ingress listener on its own port: ${listeners.resources.map((l) => l.name).join(', ')}`);
  await client.next(T.cluster, { match: (r) => clusterType(r) === 'EDS', what: 'EDS once the backend registered' });
  const eds = await client.next(T.clusterLoadAssignment, { match: (r) => addresses(r).length > 0 });
  assert.deepEqual(addresses(eds), ['127.0.0.1:15010']);
  assert.match(keymeshOk(['endpoints', 'list', '--mesh', MESH]), /registry\s+backend\s+127\.0\.0\.1:15010\s+127\.0\.0\.1:15010\s+connected/);

  backend.close();
  await waitFor('the registration shows as disconnected', () => /disconnected, lapses in \d+s/.test(keymeshOk(['endpoints', 'list'])) || undefined, 10_000);
  await client.next(T.cluster, { match: (r) => clusterType(r) === 'LOGICAL_DNS', what: 'back to DNS after the grace period', timeoutMs: 20_000 });
  assert.doesNotMatch(keymeshOk(['endpoints', 'list', '--mesh', MESH]), /backend/);
  client.close();
});

test('operators register instances without a sidecar; bad registrations are refused with the reason', async () => {
  const client = envoy('client');
  await client.next(T.cluster);
  assert.match(keymeshOk(['endpoints', 'register', '--mesh', MESH, '--virtual-node', 'backend', '--address', '127.0.0.1', '--port', '18080', '--instance', 'vm-1']), /registered vm-1/);
  const eds = await client.next(T.clusterLoadAssignment, { match: (r) => addresses(r).includes('127.0.0.1:18080'), what: 'the static instance' });
  assert.deepEqual(addresses(eds), ['127.0.0.1:18080']);
  assert.match(keymeshOk(['endpoints', 'list']), /vm-1\s+127\.0\.0\.1:18080\s+static/);

  const bad: [string[], RegExp][] = [
    [['--address', 'backend.local', '--port', '1'], /not an IP address/],
    [['--address', '127.0.0.1', '--port', '0'], /not a comma-separated list of ports|not a port/],
    [['--address', '127.0.0.1', '--port', '1', '--instance', 'two words'], /instance id "two words"/],
  ];
  for (const [args, message] of bad) {
    const r = keymesh(['endpoints', 'register', '--mesh', MESH, '--virtual-node', 'backend', ...args]);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.out, message);
  }
  const ghost = keymesh(['endpoints', 'register', '--mesh', MESH, '--virtual-node', 'ghost', '--address', '127.0.0.1', '--port', '1']);
  assert.notEqual(ghost.status, 0);
  assert.match(ghost.out, /Virtual node ghost does not exist in mesh registry/);
  assert.equal((keymeshOk(['endpoints', 'list', '--mesh', MESH]).match(/vm-1/g) ?? []).length, 1, 'nothing else stored');

  keymeshOk(['endpoints', 'deregister', '--mesh', MESH, '--virtual-node', 'backend', '--instance', 'vm-1']);
  await client.next(T.cluster, { match: (r) => clusterType(r) === 'LOGICAL_DNS', what: 'DNS again after deregistration' });
  const missing = keymesh(['endpoints', 'deregister', '--mesh', MESH, '--virtual-node', 'backend', '--instance', 'vm-1']);
  assert.notEqual(missing.status, 0);
  assert.match(missing.out, /vm-1 of registry\/backend is not registered/);
  client.close();
});

test('a restarted control plane keeps the registrations of connected sidecars until they reconnect', async () => {
  const backend = envoy('backend', { keymesh: { listen_address: '127.0.0.1', ingress_port: 15020, egress_port: 15021 } });
  await backend.next(T.cluster);
  await waitFor('the backend is registered', () => /15020\s+connected/.test(keymeshOk(['endpoints', 'list'])) || undefined, 10_000);
  await server.kill();
  backend.close();
  server = await startKeymeshServer({ dataDir: server.dataDir, args: ['--endpoint-grace', '60s'] });
  const client = envoy('client');
  const eds = await client.next(T.clusterLoadAssignment, { match: (r) => addresses(r).length > 0, what: "the backend's instance, kept across the restart" });
  assert.deepEqual(addresses(eds), ['127.0.0.1:15020']);
  assert.match(keymeshOk(['endpoints', 'list']), /15020\s+disconnected, lapses in \d+s/);
  client.close();
});

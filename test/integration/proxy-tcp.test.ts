// A tcp backend through keymesh's data plane on one machine, with real processes: a control plane, a TCP
// echo application (its own process) behind the `echo` virtual node (a tcp listener, STRICT mTLS with SDS
// SVIDs, checking the client's SPIFFE ID), its sidecar, and the `client` sidecar started with
// `--tcp-egress-address`: without iptables, the client application reaches the tcp backend at
// <tcp egress address>:<backend port>, a listener the translation binds for that port (Istio's egress `bind`,
// Consul's `local_bind_port`), and the bytes go over mTLS between the sidecars.
//
// Every wait and every exchange is bounded; nothing asserts timing, only bytes and counters.
// KEYMESH_TEST_VERBOSE=1 shows the processes' output.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CreateMeshCommand, CreateVirtualNodeCommand, CreateVirtualServiceCommand, type AppMeshClient } from '@aws-sdk/client-app-mesh';
import { sdkClient } from '../support/aws-cli.ts';
import { KEYMESH_MAIN, makeTempDir, REPO_ROOT } from '../support/keymesh-server.ts';
import { ControlPlane, HttpApp, MeshProxy, tearDownMesh, until } from '../support/mesh-processes.ts';
import { sdsMutualTls } from '../support/sds-tls.ts';

const MESH = 'tcpmesh';
const TD = 'spiffe://tcpmesh.keymesh.test';
const SERVICE = 'echo.tcpmesh.local';
const ECHO_PORT = 7000;
const CLIENT_IP = '127.0.0.81';
const ECHO_IP = '127.0.0.82';
/** Where the client's tcp backends are bound: an address of its own, so no port of its application can clash. */
const TCP_EGRESS_IP = '127.0.0.83';
const ECHO_LISTENER = `listener.${ECHO_IP}_15000`;
const CLIENT_CLUSTER = `cluster.cds_egress_${MESH}_echo_tcp_${ECHO_PORT}`;
const TCP_LISTENER = `listener.${TCP_EGRESS_IP}_${ECHO_PORT}`;

let cp: ControlPlane;
let appmesh: AppMeshClient;
let dir: string;
const proxies: { client?: MeshProxy; echo?: MeshProxy } = {};
const sidecar = (name: 'client' | 'echo'): MeshProxy => proxies[name] ?? assert.fail(`the ${name} sidecar did not start`);

/**
 * Sends `payload` on a new connection to the client's tcp egress listener in chunks, then half-closes; resolves
 * with everything that came back once the other side closed. Bounded by `timeoutMs`.
 */
function exchange(payload: Buffer, timeoutMs = 15_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: TCP_EGRESS_IP, port: ECHO_PORT, allowHalfOpen: true });
    const back: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no complete echo within ${timeoutMs} ms (${Buffer.concat(back).length} of ${payload.length} bytes)`)), timeoutMs);
    socket.on('data', (d: Buffer) => back.push(d));
    socket.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on('close', (hadError) => {
      clearTimeout(timer);
      if (!hadError) resolve(Buffer.concat(back));
    });
    socket.on('connect', () => {
      // Several writes, so the bytes cross the sidecars in more than one record.
      for (let at = 0; at < payload.length; at += 16_384) socket.write(payload.subarray(at, at + 16_384));
      socket.end();
    });
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(async () => {
  dir = makeTempDir('keymesh-proxy-tcp-');
  cp = await ControlPlane.start();
  appmesh = sdkClient(cp.url);
  await appmesh.send(new CreateMeshCommand({ meshName: MESH }));
  await cp.cliOk(['ca', 'settings', '--mesh', MESH, '--trust-domain', TD.slice('spiffe://'.length)]);
  await appmesh.send(new CreateVirtualNodeCommand({
    meshName: MESH, virtualNodeName: 'echo', spec: {
      listeners: [{
        portMapping: { port: ECHO_PORT, protocol: 'tcp' },
        tls: { mode: 'STRICT', ...sdsMutualTls(TD, 'echo', ['client']) },
      }],
      serviceDiscovery: { dns: { hostname: SERVICE } },
    },
  }));
  await appmesh.send(new CreateVirtualServiceCommand({ meshName: MESH, virtualServiceName: SERVICE, spec: { provider: { virtualNode: { virtualNodeName: 'echo' } } } }));
  await appmesh.send(new CreateVirtualNodeCommand({
    meshName: MESH, virtualNodeName: 'client', spec: {
      backends: [{ virtualService: { virtualServiceName: SERVICE } }],
      backendDefaults: {
        clientPolicy: {
          tls: { enforce: true, ...sdsMutualTls(TD, 'client', ['echo']) },
        },
      },
    },
  }));
  await HttpApp.start({ name: 'echo', host: ECHO_IP, port: ECHO_PORT, script: join(REPO_ROOT, 'test/support/apps/tcp-echo-app.ts') });
  [proxies.echo, proxies.client] = await Promise.all([
    MeshProxy.start(cp, { kind: 'proxy', mesh: MESH, name: 'echo', ip: ECHO_IP, workDir: dir }),
    MeshProxy.start(cp, { kind: 'proxy', mesh: MESH, name: 'client', ip: CLIENT_IP, workDir: dir, extraArgs: ['--tcp-egress-address', TCP_EGRESS_IP] }),
  ]);
  // The client learns the echo sidecar's instance over EDS once that sidecar registered.
  await until('a first echo through both sidecars', async () => {
    const back = await exchange(Buffer.from('ping'), 5_000).catch(() => undefined);
    return back?.toString() === 'ping';
  }, 20_000, 250);
});

after(() => tearDownMesh({ cp, appmesh, dir }));

test('the client sidecar binds the tcp backend at the tcp egress address, with the egress chain of its port', async () => {
  const listeners = (await sidecar('client').configDump()).configs.Listener ?? [];
  const bound = listeners.find((l) => l.name === `lds_egress_tcp_${TCP_EGRESS_IP}_${ECHO_PORT}`);
  assert.ok(bound, `listeners: ${listeners.map((l) => l.name).join(', ')}`);
  assert.deepEqual(bound.address, { socketAddress: { address: TCP_EGRESS_IP, portValue: ECHO_PORT } });
  const egress = listeners.find((l) => l.name === `lds_egress_${CLIENT_IP}_15001`)!;
  const chain = (egress.filterChains as Record<string, unknown>[]).find((c) => c.name === `egress_tcp_${ECHO_PORT}`)!;
  assert.deepEqual(bound.filterChains, [{ name: `egress_tcp_${ECHO_PORT}`, filters: chain.filters }]);
});

test('bytes go both ways over STRICT mTLS: concurrent connections, each echoed intact; the echo sidecar counts a TLS handshake per connection', async () => {
  const connections = 6;
  const [echoBefore, clientBefore] = await Promise.all([sidecar('echo').stats(), sidecar('client').stats()]);
  const payloads = Array.from({ length: connections }, (_, i) => randomBytes(64 * 1024 * (i + 1)));
  const echoed = await Promise.all(payloads.map((p) => exchange(p)));
  for (const [i, p] of payloads.entries()) {
    assert.equal(echoed[i]!.length, p.length, `connection ${i}: bytes back`);
    assert.equal(sha(echoed[i]!), sha(p), `connection ${i}: the same bytes`);
  }
  const total = payloads.reduce((n, p) => n + p.length, 0);
  const [echo, client] = await Promise.all([sidecar('echo').stats(), sidecar('client').stats()]);
  const rose = (after: Map<string, number>, before: Map<string, number>, name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
  // Each downstream connection is its own upstream connection (tcp_proxy does not pool): a full mTLS handshake
  // in which the client presented its certificate.
  assert.ok(rose(echo, echoBefore, `${ECHO_LISTENER}.ssl.handshake`) >= connections, `echo sidecar handshakes: ${rose(echo, echoBefore, `${ECHO_LISTENER}.ssl.handshake`)}`);
  assert.equal(rose(echo, echoBefore, `${ECHO_LISTENER}.ssl.no_certificate`), 0);
  for (const problem of ['fail_verify_error', 'fail_verify_san', 'fail_verify_no_cert', 'connection_error']) {
    assert.equal(echo.get(`${ECHO_LISTENER}.ssl.${problem}`) ?? 0, 0, problem);
  }
  assert.ok(rose(client, clientBefore, `${CLIENT_CLUSTER}.ssl.handshake`) >= connections);
  assert.equal(rose(client, clientBefore, `${TCP_LISTENER}.downstream_cx_total`), connections);
  assert.equal(rose(client, clientBefore, `tcp.egress.tcp.${ECHO_PORT}.downstream_cx_total`), connections);
  assert.equal(rose(client, clientBefore, `tcp.egress.tcp.${ECHO_PORT}.downstream_cx_rx_bytes_total`), total);
  assert.equal(rose(client, clientBefore, `tcp.egress.tcp.${ECHO_PORT}.downstream_cx_tx_bytes_total`), total);
});

test('keymesh bootstrap envoy gives a stock Envoy the same placement; a bad address is refused by both commands', async () => {
  const keymesh = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [KEYMESH_MAIN, ...args], { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }));
  });
  const bootstrap = ['bootstrap', 'envoy', '--mesh', MESH, '--virtual-node', 'client', '--control-plane-ca', cp.caFile, '--svid-dir', join(dir, 'svid'), '--spiffe-id', `${TD}/client`];
  const [ok, bad, badProxy] = await Promise.all([
    keymesh([...bootstrap, '--listen-address', CLIENT_IP, '--tcp-egress-address', TCP_EGRESS_IP]),
    keymesh([...bootstrap, '--tcp-egress-address', 'echo.local']),
    keymesh(['proxy', '--mesh', MESH, '--virtual-node', 'client', '--control-plane-ca', cp.caFile, '--tcp-egress-address', 'echo.local']),
  ]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual((JSON.parse(ok.stdout) as { node: { metadata: unknown } }).node.metadata, { keymesh: { listen_address: CLIENT_IP, tcp_egress_address: TCP_EGRESS_IP } });
  for (const refused of [bad, badProxy]) {
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /--tcp-egress-address.*"echo\.local" is not an IP address/);
  }
});

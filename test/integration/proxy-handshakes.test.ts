// A new mTLS connection with a full handshake per request between two keymesh sidecars, the Envoy way: the
// client sidecar runs with `--upstream-max-requests-per-connection 1 --upstream-tls-max-session-keys 0`
// (node.metadata.keymesh), the control plane puts max_requests_per_connection 1 and max_session_keys 0 on its
// cluster to the server node, and keymesh's proxy honours both. A second client sidecar without the flags is
// the control: it pools its connection and resumes sessions. Real processes: a control plane, the server's
// application and sidecar, and the two client sidecars; every wait is bounded and only counters are asserted.
// KEYMESH_TEST_VERBOSE=1 shows the processes' output.
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import { CreateMeshCommand, CreateVirtualNodeCommand, CreateVirtualServiceCommand, type AppMeshClient } from '@aws-sdk/client-app-mesh';
import { sdkClient } from '../support/aws-cli.ts';
import { makeTempDir } from '../support/keymesh-server.ts';
import { ControlPlane, HttpApp, MeshProxy, tearDownMesh, until } from '../support/mesh-processes.ts';

const MESH = 'handshakes';
const TD = `spiffe://${MESH}`;
const SERVICE = `server.${MESH}.local`;
const APP_PORT = 8080;
const EGRESS_PORT = 15001;
const IPS = { server: '127.0.0.101', fresh: '127.0.0.102', pooled: '127.0.0.103' } as const;
type Client = 'fresh' | 'pooled';
const SERVER_HANDSHAKES = `listener.${IPS.server}_15000.ssl.handshake`;
const CLUSTER = `cluster.cds_egress_${MESH}_server_http_${APP_PORT}`;

let cp: ControlPlane;
let appmesh: AppMeshClient;
let dir: string;
const proxies: Partial<Record<'server' | Client, MeshProxy>> = {};
const proxy = (name: 'server' | Client): MeshProxy => proxies[name] ?? assert.fail(`the ${name} sidecar did not start`);

/** One GET through a client sidecar's egress listener; the answering application's name, or the failure. */
function once(client: Client, agent: Agent): Promise<string> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: IPS[client], port: EGRESS_PORT, path: '/', agent, headers: { host: SERVICE }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve(res.statusCode === 200 ? (JSON.parse(text) as { app: string }).app : `status ${res.statusCode}: ${text.slice(0, 200)}`);
        } catch {
          resolve(`not the application's answer: ${text.slice(0, 200)}`);
        }
      });
      res.on('error', (e) => resolve(e.message));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (e) => resolve(e.message));
    req.end();
  });
}

/** `n` requests one after another over one kept-alive downstream connection; how the counters moved. */
async function run(client: Client, n: number): Promise<Record<string, number>> {
  const names = [`${CLUSTER}.ssl.handshake`, `${CLUSTER}.ssl.session_reused`, `${CLUSTER}.upstream_cx_total`, `${CLUSTER}.upstream_cx_max_requests`, `${CLUSTER}.upstream_rq_total`];
  const read = async (): Promise<Record<string, number>> => {
    const [c, s] = await Promise.all([proxy(client).stats(), proxy('server').stats()]);
    return { ...Object.fromEntries(names.map((k) => [k.slice(CLUSTER.length + 1), c.get(k) ?? 0])), server_handshakes: s.get(SERVER_HANDSHAKES) ?? 0 };
  };
  const before = await read();
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < n; i++) assert.equal(await once(client, agent), 'server', `request ${i + 1} through the ${client} sidecar`);
  } finally {
    agent.destroy();
  }
  // Counters move as the exchanges end, and the client may see its response first: a bounded wait for the
  // request count, then a moment for the connections' close to be counted.
  await until(`the ${client} run's requests are counted`, async () => (await read()).upstream_rq_total! - before.upstream_rq_total! >= n, 5_000, 100);
  await new Promise((r) => setTimeout(r, 200));
  const last = await read();
  return Object.fromEntries(Object.entries(last).map(([k, v]) => [k, v - before[k]!]));
}

before(async () => {
  dir = makeTempDir('keymesh-proxy-handshakes-');
  cp = await ControlPlane.start();
  appmesh = sdkClient(cp.url);
  await appmesh.send(new CreateMeshCommand({ meshName: MESH }));
  await appmesh.send(new CreateVirtualNodeCommand({
    meshName: MESH, virtualNodeName: 'server',
    spec: {
      listeners: [{
        portMapping: { port: APP_PORT, protocol: 'http' },
        tls: {
          mode: 'STRICT', certificate: { sds: { secretName: `${TD}/server` } },
          validation: { trust: { sds: { secretName: TD } }, subjectAlternativeNames: { match: { exact: [`${TD}/fresh`, `${TD}/pooled`] } } },
        },
      }],
      serviceDiscovery: { dns: { hostname: SERVICE } },
    },
  }));
  await appmesh.send(new CreateVirtualServiceCommand({ meshName: MESH, virtualServiceName: SERVICE, spec: { provider: { virtualNode: { virtualNodeName: 'server' } } } }));
  for (const name of ['fresh', 'pooled'] as const) {
    await appmesh.send(new CreateVirtualNodeCommand({
      meshName: MESH, virtualNodeName: name,
      spec: {
        backends: [{ virtualService: { virtualServiceName: SERVICE } }],
        backendDefaults: {
          clientPolicy: {
            tls: {
              certificate: { sds: { secretName: `${TD}/${name}` } },
              validation: { trust: { sds: { secretName: TD } }, subjectAlternativeNames: { match: { exact: [`${TD}/server`] } } },
            },
          },
        },
      },
    }));
  }
  const [, server] = await Promise.all([
    HttpApp.start({ name: 'server', host: IPS.server, port: APP_PORT }),
    MeshProxy.start(cp, { kind: 'proxy', mesh: MESH, name: 'server', ip: IPS.server, workDir: dir }),
  ]);
  proxies.server = server;
  [proxies.fresh, proxies.pooled] = await Promise.all([
    MeshProxy.start(cp, {
      kind: 'proxy', mesh: MESH, name: 'fresh', ip: IPS.fresh, workDir: dir,
      extraArgs: ['--upstream-max-requests-per-connection', '1', '--upstream-tls-max-session-keys', '0'],
    }),
    MeshProxy.start(cp, { kind: 'proxy', mesh: MESH, name: 'pooled', ip: IPS.pooled, workDir: dir }),
  ]);
  // Both clients reach the server once its sidecar registered and they got its instance over EDS.
  for (const client of ['fresh', 'pooled'] as const) {
    const agent = new Agent({ keepAlive: false });
    await until(`the server answers through the ${client} sidecar`, async () => (await once(client, agent)) === 'server', 30_000, 100);
  }
});

after(() => tearDownMesh({ cp, appmesh, dir }));

test("the control plane puts both settings on the flagged client's cluster to the server, and only there", async () => {
  const clusterOf = async (client: Client) => ((await proxy(client).configDump()).configs.Cluster ?? []).find((c) => c.name === CLUSTER.slice('cluster.'.length));
  const fresh = await clusterOf('fresh');
  assert.ok(fresh, 'the fresh sidecar has the cluster');
  const options = fresh.typedExtensionProtocolOptions?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
  assert.deepEqual(options?.commonHttpProtocolOptions?.maxRequestsPerConnection, { value: 1 });
  // protobuf leaves a wrapper's 0 out: `{}` is max_session_keys 0.
  assert.ok([JSON.stringify({}), JSON.stringify({ value: 0 })].includes(JSON.stringify(fresh.transportSocket?.typedConfig?.maxSessionKeys)), JSON.stringify(fresh.transportSocket));
  const pooled = await clusterOf('pooled');
  assert.ok(pooled);
  assert.equal(pooled.typedExtensionProtocolOptions, undefined);
  assert.equal(pooled.transportSocket?.typedConfig?.maxSessionKeys, undefined);
});

test('max_requests_per_connection 1 and max_session_keys 0: each of N requests is a new mTLS connection with a full handshake', async () => {
  const n = 12;
  const d = await run('fresh', n);
  assert.equal(d.upstream_rq_total, n);
  assert.equal(d.upstream_cx_total, n, JSON.stringify(d));
  assert.equal(d.upstream_cx_max_requests, n, JSON.stringify(d));
  assert.equal(d['ssl.handshake'], n, JSON.stringify(d));
  assert.equal(d['ssl.session_reused'], 0, JSON.stringify(d));
  assert.equal(d.server_handshakes, n, JSON.stringify(d));
});

test('without them (the control): one pooled mTLS connection serves every request', async () => {
  const n = 12;
  const d = await run('pooled', n);
  assert.equal(d.upstream_rq_total, n);
  assert.ok(d.upstream_cx_total! <= 1, JSON.stringify(d));
  assert.ok(d.server_handshakes! <= 1, JSON.stringify(d));
  assert.equal(d.upstream_cx_max_requests, 0);
});

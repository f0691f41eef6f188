// Weighted routing through keymesh's data plane, with real processes: a control plane, two applications
// (`blue` and `green`, each its own process) behind their sidecars, and a `client` sidecar whose egress
// listener routes `color.routing.local` through a virtual router with one route to both nodes. The split of
// a bounded number of requests must be within a statistical bound of the weights; a weight change made
// through the API moves every new request.
//
// Every wait and the request loops are bounded in count and time; only counts are asserted.
// KEYMESH_TEST_VERBOSE=1 shows the processes' output.
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import {
  CreateMeshCommand, CreateRouteCommand, CreateVirtualNodeCommand, CreateVirtualRouterCommand, CreateVirtualServiceCommand, UpdateRouteCommand, type AppMeshClient,
} from '@aws-sdk/client-app-mesh';
import { sdkClient } from '../support/aws-cli.ts';
import { makeTempDir } from '../support/keymesh-server.ts';
import { ControlPlane, HttpApp, MeshProxy, tearDownMesh, until } from '../support/mesh-processes.ts';

const MESH = 'routing';
const SERVICE = 'color.routing.local';
const APP_PORT = 8080;
const IPS = { client: '127.0.0.61', blue: '127.0.0.62', green: '127.0.0.63' } as const;
type Color = 'blue' | 'green';
const EGRESS_PORT = 15001;
const ROUTE_CONFIG = `rds_egress_http_${EGRESS_PORT}`;
const clusterOf = (color: Color) => `cds_egress_${MESH}_${color}_http_${APP_PORT}`;

let cp: ControlPlane;
let appmesh: AppMeshClient;
let dir: string;
let client: MeshProxy | undefined;
const clientSidecar = (): MeshProxy => client ?? assert.fail('the client sidecar did not start');

const routeSpec = (blue: number, green: number) => ({
  httpRoute: { match: { prefix: '/' }, action: { weightedTargets: [{ virtualNode: 'blue', weight: blue }, { virtualNode: 'green', weight: green }] } },
});

/** One GET through the client sidecar's egress listener: the application that answered, or the failure. */
function once(agent: Agent, path: string): Promise<{ app?: string; problem?: string }> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: IPS.client, port: EGRESS_PORT, path, agent, headers: { host: SERVICE }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) return resolve({ problem: `status ${res.statusCode}: ${text.slice(0, 200)}` });
        try {
          resolve({ app: (JSON.parse(text) as { app: string }).app });
        } catch {
          resolve({ problem: `not the application's answer: ${text.slice(0, 200)}` });
        }
      });
      res.on('error', (e) => resolve({ problem: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (e) => resolve({ problem: e.message }));
    req.end();
  });
}

/** `n` requests, `concurrency` at a time over kept-alive connections; counts by answering application. */
async function requests(n: number, concurrency = 8): Promise<{ counts: Record<string, number>; problems: string[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const counts: Record<string, number> = {};
  const problems: string[] = [];
  let next = 0;
  const deadline = Date.now() + 60_000;
  const worker = async () => {
    while (next < n && Date.now() < deadline) {
      const r = await once(agent, `/split/${next++}`);
      if (r.app) counts[r.app] = (counts[r.app] ?? 0) + 1;
      else problems.push(r.problem ?? 'unknown');
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return { counts, problems };
}

before(async () => {
  dir = makeTempDir('keymesh-proxy-routing-');
  cp = await ControlPlane.start();
  appmesh = sdkClient(cp.url);
  await appmesh.send(new CreateMeshCommand({ meshName: MESH }));
  for (const color of ['blue', 'green'] as const) {
    await appmesh.send(new CreateVirtualNodeCommand({
      meshName: MESH, virtualNodeName: color,
      spec: { listeners: [{ portMapping: { port: APP_PORT, protocol: 'http' } }], serviceDiscovery: { dns: { hostname: `${color}.${MESH}.local` } } },
    }));
  }
  await appmesh.send(new CreateVirtualRouterCommand({ meshName: MESH, virtualRouterName: 'color', spec: { listeners: [{ portMapping: { port: APP_PORT, protocol: 'http' } }] } }));
  await appmesh.send(new CreateRouteCommand({ meshName: MESH, virtualRouterName: 'color', routeName: 'split', spec: routeSpec(3, 1) }));
  await appmesh.send(new CreateVirtualServiceCommand({ meshName: MESH, virtualServiceName: SERVICE, spec: { provider: { virtualRouter: { virtualRouterName: 'color' } } } }));
  await appmesh.send(new CreateVirtualNodeCommand({ meshName: MESH, virtualNodeName: 'client', spec: { backends: [{ virtualService: { virtualServiceName: SERVICE } }] } }));
  const [, started] = await Promise.all([
    Promise.all((['blue', 'green'] as const).map((c) => HttpApp.start({ name: c, host: IPS[c], port: APP_PORT }))),
    Promise.all((['client', 'blue', 'green'] as const).map((name) => MeshProxy.start(cp, { kind: 'proxy', mesh: MESH, name, ip: IPS[name], workDir: dir }))),
  ]);
  client = started[0];
  // Both targets answer once their sidecars registered and the client got them over EDS.
  const seen = new Set<string>();
  const agent = new Agent({ keepAlive: false });
  await until('both blue and green answered through the client sidecar', async () => {
    const r = await once(agent, '/warm-up');
    if (r.app) seen.add(r.app);
    return seen.size === 2;
  }, 30_000, 100);
});

after(() => tearDownMesh({ cp, appmesh, dir }));

test('weights 3:1: 400 requests split within a statistical bound of 300:100', async () => {
  const n = 400;
  const { counts, problems } = await requests(n);
  assert.deepEqual(problems, []);
  assert.equal((counts.blue ?? 0) + (counts.green ?? 0), n, JSON.stringify(counts));
  // Each request picks blue with probability 3/4: mean 300, standard deviation √(400·¾·¼) ≈ 8.7. Five standard
  // deviations either way (±44) fails a correct proxy about once in two million runs.
  const blue = counts.blue ?? 0;
  assert.ok(blue >= 256 && blue <= 344, `blue answered ${blue} of ${n} (expected 300 ± 44)`);
});

test('weights 0:1 through the API: once the client sidecar has the route, every new request goes to green', async () => {
  await appmesh.send(new UpdateRouteCommand({ meshName: MESH, virtualRouterName: 'color', routeName: 'split', spec: routeSpec(0, 1) }));
  // App Mesh's weight 0 is "no traffic": the route then names green's cluster alone.
  await until('the client sidecar routes to green alone', async () => {
    const config = (await clientSidecar().configDump()).configs.RouteConfiguration?.find((r) => r.name === ROUTE_CONFIG);
    const host = (config?.virtualHosts as { name: string; routes: { route: { cluster?: string } }[] }[] | undefined)?.find((h) => h.name === `${SERVICE}:${APP_PORT}`);
    const route = host?.routes[0];
    return route?.route.cluster === clusterOf('green');
  }, 20_000, 200);
  const { counts, problems } = await requests(200);
  assert.deepEqual(problems, []);
  assert.deepEqual(counts, { green: 200 });
  // Weight 0 builds no cluster: blue's leaves the client's configuration too (its own xDS update, which may come
  // after the route's).
  await until("blue's cluster leaves the client sidecar", async () => {
    const clusters = ((await clientSidecar().configDump()).configs.Cluster ?? []).map((c) => c.name as string);
    return clusters.includes(clusterOf('green')) && !clusters.includes(clusterOf('blue'));
  }, 10_000, 200);
});

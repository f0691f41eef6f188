// WebSocket through keymesh's data plane, with real processes and Node's own WebSocket client: a virtual
// gateway (`keymesh gateway`) routes `/` to the `chat` service, whose sidecar (`keymesh proxy`) fronts a
// WebSocket echo application; gateway to sidecar is mutual TLS with SDS SVIDs. App Mesh's Envoys pass WebSocket
// upgrades through on HTTP listeners, and so does keymesh: the upgrade reaches the application, the 101 comes
// back, and messages flow both ways until the client closes. Every wait is bounded.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  CreateGatewayRouteCommand, CreateMeshCommand, CreateVirtualGatewayCommand, CreateVirtualNodeCommand, CreateVirtualServiceCommand, type AppMeshClient,
} from '@aws-sdk/client-app-mesh';
import { sdkClient } from '../support/aws-cli.ts';
import { makeTempDir, REPO_ROOT } from '../support/keymesh-server.ts';
import { ControlPlane, HttpApp, MeshProxy, tearDownMesh, until } from '../support/mesh-processes.ts';
import { sdsMutualTls } from '../support/sds-tls.ts';

const MESH = 'websocket';
const TD = 'spiffe://websocket.keymesh.test';
const IPS = { gateway: '127.0.0.95', chat: '127.0.0.96' } as const;
const APP_PORT = 8080;
const GATEWAY_PORT = 8088;
const SERVICE = `chat.${MESH}.local`;

let cp: ControlPlane;
let appmesh: AppMeshClient;
let dir: string;
let gateway: MeshProxy | undefined;
let chat: MeshProxy | undefined;

/** Opens a WebSocket through the gateway; resolves once open, rejects on error or after 10 s. */
function open(path: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://${IPS.gateway}:${GATEWAY_PORT}${path}`);
    const timer = setTimeout(() => {
      ws.close();
      reject(new Error('no WebSocket in 10 s'));
    }, 10_000);
    ws.onopen = () => {
      clearTimeout(timer);
      resolve(ws);
    };
    ws.onerror = () => {
      clearTimeout(timer);
      reject(new Error('the WebSocket failed to open'));
    };
  });
}

/** Sends `text` and resolves with the next message, bounded. */
function roundTrip(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer to ${text} in 10 s`)), 10_000);
    ws.onmessage = (m) => {
      clearTimeout(timer);
      resolve(String(m.data));
    };
    ws.send(text);
  });
}

before(async () => {
  dir = makeTempDir('keymesh-proxy-websocket-');
  cp = await ControlPlane.start();
  appmesh = sdkClient(cp.url);
  await appmesh.send(new CreateMeshCommand({ meshName: MESH }));
  await cp.cliOk(['ca', 'settings', '--mesh', MESH, '--trust-domain', TD.slice('spiffe://'.length)]);
  await appmesh.send(new CreateVirtualNodeCommand({
    meshName: MESH, virtualNodeName: 'chat', spec: {
      listeners: [{ portMapping: { port: APP_PORT, protocol: 'http' }, tls: { mode: 'STRICT', ...sdsMutualTls(TD, 'chat', ['virtualGateway/gateway']) } }],
      serviceDiscovery: { dns: { hostname: SERVICE } },
    },
  }));
  await appmesh.send(new CreateVirtualServiceCommand({ meshName: MESH, virtualServiceName: SERVICE, spec: { provider: { virtualNode: { virtualNodeName: 'chat' } } } }));
  await appmesh.send(new CreateVirtualGatewayCommand({
    meshName: MESH, virtualGatewayName: 'gateway', spec: {
      listeners: [{ portMapping: { port: GATEWAY_PORT, protocol: 'http' } }],
      backendDefaults: { clientPolicy: { tls: sdsMutualTls(TD, 'virtualGateway/gateway', ['chat']) } },
    },
  }));
  await appmesh.send(new CreateGatewayRouteCommand({
    meshName: MESH, virtualGatewayName: 'gateway', gatewayRouteName: 'all', spec: {
      httpRoute: { match: { prefix: '/' }, action: { target: { virtualService: { virtualServiceName: SERVICE } } } },
    },
  }));
  const [, started] = await Promise.all([
    HttpApp.start({ name: 'chat', host: IPS.chat, port: APP_PORT, script: join(REPO_ROOT, 'test/support/apps/ws-echo-app.ts') }),
    Promise.all([
      MeshProxy.start(cp, { kind: 'proxy', mesh: MESH, name: 'chat', ip: IPS.chat, workDir: dir }),
      MeshProxy.start(cp, { kind: 'gateway', mesh: MESH, name: 'gateway', ip: IPS.gateway, workDir: dir }),
    ]),
  ]);
  [chat, gateway] = started;
  await until('plain HTTP reaches the chat application through the gateway', async () => {
    const r = await fetch(`http://${IPS.gateway}:${GATEWAY_PORT}/`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
    return r?.status === 200 && (await r.text()).startsWith('chat:');
  }, 30_000, 250);
});

after(() => tearDownMesh({ cp, appmesh, dir }));

test('a WebSocket opens through the gateway and the sidecar (over mTLS), messages go both ways, the close is clean', async () => {
  const gw = gateway ?? assert.fail('the gateway did not start');
  const sidecar = chat ?? assert.fail('the chat sidecar did not start');
  const ws = await open('/room/1');
  for (const text of ['hello', 'through two proxies', 'x'.repeat(2000)]) assert.equal(await roundTrip(ws, text), `chat:${text}`);
  assert.equal(await gw.stat('http.ingress.downstream_cx_upgrades_active'), 1);
  const closed = new Promise<number>((resolve) => { ws.onclose = (e) => resolve(e.code); });
  ws.close(1000, 'done');
  assert.equal(await closed, 1000);
  await until('the gateway counts the tunnel closed', async () => (await gw.stat('http.ingress.downstream_cx_upgrades_active')) === 0, 10_000);
  assert.equal(await gw.stat('http.ingress.downstream_cx_upgrades_total'), 1);
  // The sidecar's side of it: one more upgrade, on a listener that took the gateway's certificate.
  assert.ok((await sidecar.stat('http.ingress.downstream_cx_upgrades_total')) >= 1);
  assert.ok((await sidecar.stat(`listener.${IPS.chat}_15000.ssl.handshake`)) >= 1);
  assert.equal(await sidecar.stat(`listener.${IPS.chat}_15000.ssl.no_certificate`), 0);
});

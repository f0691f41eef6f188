// HTTP/2 and gRPC through keymesh's data plane, with real processes: a control plane; an HTTP/2 application
// (node:http2, h2c) behind the `h2` virtual node (an http2 listener) and a gRPC application (@grpc/grpc-js)
// behind the `grpc` virtual node (a grpc listener), each in its own process with its sidecar; and a `client`
// sidecar. The test plays the client application: it speaks h2c with prior knowledge to its sidecar's egress
// listener (as gRPC clients do), naming the service in :authority. Between the sidecars: mutual TLS with SDS
// SVIDs, each side checking the other's SPIFFE ID.
//
// On one machine the ingress listener cannot tell several App Mesh listeners of a node apart (that needs the
// original destination port iptables keeps), so the http2 and grpc listeners are on two nodes.
//
// Every request, call and wait is bounded. KEYMESH_TEST_VERBOSE=1 shows the processes' output.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect as http2Connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { CreateMeshCommand, CreateVirtualNodeCommand, CreateVirtualServiceCommand, type AppMeshClient } from '@aws-sdk/client-app-mesh';
import { ECHO_SERVICE } from '../support/apps/grpc-echo-service.ts';
import { sdkClient } from '../support/aws-cli.ts';
import { makeTempDir, REPO_ROOT } from '../support/keymesh-server.ts';
import { ControlPlane, HttpApp, MeshProxy, tearDownMesh, until } from '../support/mesh-processes.ts';
import { sdsMutualTls } from '../support/sds-tls.ts';

const MESH = 'h2grpc';
const TD = 'spiffe://h2grpc.keymesh.test';
const IPS = { client: '127.0.0.71', h2: '127.0.0.72', grpc: '127.0.0.73' } as const;
const PORTS = { h2: 8082, grpc: 50051 } as const;
const PROTOCOLS = { h2: 'http2', grpc: 'grpc' } as const;
const SERVICES = { h2: `h2.${MESH}.local`, grpc: `grpc.${MESH}.local` } as const;
const EGRESS = `http://${IPS.client}:15001`;
type Server = 'h2' | 'grpc';
const ingressListener = (s: Server) => `listener.${IPS[s]}_15000`;
const clientCluster = (s: Server) => `cluster.cds_egress_${MESH}_${s}_${PROTOCOLS[s]}_${PORTS[s]}`;

let cp: ControlPlane;
let appmesh: AppMeshClient;
let dir: string;
const proxies: Partial<Record<'client' | Server, MeshProxy>> = {};
const sidecar = (name: 'client' | Server): MeshProxy => proxies[name] ?? assert.fail(`the ${name} sidecar did not start`);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface H2Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly trailers: IncomingHttpHeaders | undefined;
}

/** One stream on `session` to the h2 service through the client sidecar, bounded. */
function h2Request(session: ClientHttp2Session, method: 'GET' | 'POST', path: string, body?: Buffer, timeoutMs = 10_000): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':method': method, ':path': path, ':authority': SERVICES.h2, ...(body ? { 'content-type': 'application/octet-stream' } : {}) }, { endStream: !body });
    const timer = setTimeout(() => stream.close(0x8), timeoutMs);
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => { headers = h; });
    stream.on('trailers', (t) => { trailers = t; });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    stream.on('close', () => {
      clearTimeout(timer);
      if (headers[':status'] === undefined) reject(new Error(`${method} ${path}: no response (stream closed with code ${stream.rstCode})`));
      else resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks), trailers });
    });
    if (body) stream.end(body);
  });
}

/** An h2c session to the client sidecar's egress listener (prior knowledge, as gRPC clients connect). */
function h2Session(): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(EGRESS);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo');
type Echo = InstanceType<typeof EchoClient> & Record<string, (...args: any[]) => any>;

/** A gRPC client whose channel goes to the client sidecar's egress listener with the service as :authority. */
function echoClient(): Echo {
  return new EchoClient(`${IPS.client}:15001`, grpc.credentials.createInsecure(), { 'grpc.default_authority': SERVICES.grpc }) as Echo;
}

const deadline = (ms = 10_000) => ({ deadline: Date.now() + ms });

function unary(client: Echo, method: 'Echo' | 'Fail', request: string): Promise<{ error: grpc.ServiceError | null; reply: Buffer | undefined; trailers: grpc.Metadata | undefined }> {
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const call = client[method]!(Buffer.from(request), new grpc.Metadata(), deadline(), (error: grpc.ServiceError | null, reply?: Buffer) => {
      // The status (with its trailers) arrives with or before the callback; a tick lets it land.
      setImmediate(() => resolve({ error, reply, trailers: error?.metadata ?? trailers }));
    }) as grpc.ClientUnaryCall;
    call.on('status', (s: grpc.StatusObject) => { trailers = s.metadata; });
  });
}

function counted(client: Echo, n: number): Promise<{ messages: string[]; status: grpc.StatusObject }> {
  return new Promise((resolve, reject) => {
    const messages: string[] = [];
    const call = client.Count!(Buffer.from(String(n)), new grpc.Metadata(), deadline()) as grpc.ClientReadableStream<Buffer>;
    call.on('data', (m: Buffer) => messages.push(m.toString('utf8')));
    call.on('error', reject);
    call.on('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) resolve({ messages, status });
    });
  });
}

before(async () => {
  dir = makeTempDir('keymesh-proxy-h2-grpc-');
  cp = await ControlPlane.start();
  appmesh = sdkClient(cp.url);
  await appmesh.send(new CreateMeshCommand({ meshName: MESH }));
  await cp.cliOk(['ca', 'settings', '--mesh', MESH, '--trust-domain', TD.slice('spiffe://'.length)]);
  for (const s of ['h2', 'grpc'] as const) {
    await appmesh.send(new CreateVirtualNodeCommand({
      meshName: MESH, virtualNodeName: s, spec: {
        listeners: [{
          portMapping: { port: PORTS[s], protocol: PROTOCOLS[s] },
          tls: { mode: 'STRICT', ...sdsMutualTls(TD, s, ['client']) },
        }],
        serviceDiscovery: { dns: { hostname: SERVICES[s] } },
      },
    }));
    await appmesh.send(new CreateVirtualServiceCommand({ meshName: MESH, virtualServiceName: SERVICES[s], spec: { provider: { virtualNode: { virtualNodeName: s } } } }));
  }
  await appmesh.send(new CreateVirtualNodeCommand({
    meshName: MESH, virtualNodeName: 'client', spec: {
      backends: [{ virtualService: { virtualServiceName: SERVICES.h2 } }, { virtualService: { virtualServiceName: SERVICES.grpc } }],
      backendDefaults: {
        clientPolicy: {
          tls: sdsMutualTls(TD, 'client', ['h2', 'grpc']),
        },
      },
    },
  }));
  const apps = join(REPO_ROOT, 'test/support/apps');
  const [, started] = await Promise.all([
    Promise.all([
      HttpApp.start({ name: 'h2', host: IPS.h2, port: PORTS.h2, script: join(apps, 'h2-app.ts') }),
      HttpApp.start({ name: 'grpc', host: IPS.grpc, port: PORTS.grpc, script: join(apps, 'grpc-app.ts') }),
    ]),
    Promise.all((['client', 'h2', 'grpc'] as const).map((name) => MeshProxy.start(cp, { kind: 'proxy', mesh: MESH, name, ip: IPS[name], workDir: dir }))),
  ]);
  [proxies.client, proxies.h2, proxies.grpc] = started;
  // The client learns both sidecars' instances over EDS once they registered.
  await until('both services answer through the client sidecar', async () => {
    const session = await h2Session().catch(() => undefined);
    if (!session) return false;
    const client = echoClient();
    try {
      const [h2, echo] = await Promise.all([h2Request(session, 'GET', '/warm-up', undefined, 5_000).catch(() => undefined), unary(client, 'Echo', 'warm-up')]);
      return h2?.status === 200 && echo.reply?.toString() === 'grpc:warm-up';
    } finally {
      session.destroy();
      client.close();
    }
  }, 30_000, 250);
});

after(() => tearDownMesh({ cp, appmesh, dir }));

/**
 * The server sidecar's TLS counters: handshakes with the client's certificate, and no failure. (The sidecars
 * pool their connections, so the requests of one test may all ride a connection made before it.)
 */
async function assertMutualTls(s: Server): Promise<void> {
  const stats = await sidecar(s).stats();
  const handshakes = stats.get(`${ingressListener(s)}.ssl.handshake`) ?? 0;
  assert.ok(handshakes >= 1, `${s} sidecar: ssl.handshake ${handshakes}`);
  assert.equal(stats.get(`${ingressListener(s)}.ssl.no_certificate`) ?? 0, 0, `${s}: every handshake had the client's certificate`);
  for (const problem of ['fail_verify_error', 'fail_verify_san', 'fail_verify_no_cert', 'connection_error']) {
    assert.equal(stats.get(`${ingressListener(s)}.ssl.${problem}`) ?? 0, 0, `${s}: ssl.${problem}`);
  }
  assert.ok((await sidecar('client').stat(`${clientCluster(s)}.ssl.handshake`)) >= 1, `client sidecar: ${clientCluster(s)}.ssl.handshake`);
}

test('HTTP/2: concurrent streams on one h2c session through the mesh, bodies intact, trailers delivered, HTTP/2 between the sidecars', async () => {
  const [clientBefore, serverBefore] = await Promise.all([sidecar('client').stats(), sidecar('h2').stats()]);
  const session = await h2Session();
  try {
    const bodies = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? undefined : randomBytes(8_192 * i)));
    const answers = await Promise.all(bodies.map((b, i) => h2Request(session, b ? 'POST' : 'GET', `/stream/${i}`, b)));
    for (const [i, a] of answers.entries()) {
      assert.equal(a.status, 200, `stream ${i}: ${a.body.toString('utf8').slice(0, 200)}`);
      const seen = JSON.parse(a.body.toString('utf8')) as { app: string; method: string; path: string; authority: string; bytes: number; sha256: string };
      const body = bodies[i] ?? Buffer.alloc(0);
      assert.deepEqual({ app: seen.app, method: seen.method, path: seen.path, bytes: seen.bytes, sha256: seen.sha256 },
        { app: 'h2', method: body.length > 0 ? 'POST' : 'GET', path: `/stream/${i}`, bytes: body.length, sha256: sha(body) });
      assert.equal(seen.authority, SERVICES.h2);
      assert.equal(a.trailers?.['x-app-trailer'], 'h2', `stream ${i}: the application's trailer`);
    }
  } finally {
    session.close();
  }
  const [client, server] = await Promise.all([sidecar('client').stats(), sidecar('h2').stats()]);
  const rose = (after: Map<string, number>, before: Map<string, number>, name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
  assert.equal(rose(client, clientBefore, 'http.egress.downstream_rq_http2_total'), 12, 'the client spoke HTTP/2 to its sidecar');
  assert.equal(rose(client, clientBefore, `${clientCluster('h2')}.upstream_rq_total`), 12);
  assert.ok(rose(server, serverBefore, 'http.ingress.downstream_rq_http2_total') >= 12, 'HTTP/2 over mTLS between the sidecars');
  await assertMutualTls('h2');
});

test('gRPC: unary calls, a status with its message and trailers, a server stream; through both sidecars over mTLS', async () => {
  const requestsBefore = await sidecar('client').stat(`${clientCluster('grpc')}.upstream_rq_total`);
  const client = echoClient();
  try {
    const calls = await Promise.all(Array.from({ length: 20 }, (_, i) => unary(client, 'Echo', `call ${i}`)));
    for (const [i, c] of calls.entries()) {
      assert.equal(c.error, null, `call ${i}: ${c.error?.message}`);
      assert.equal(c.reply?.toString('utf8'), `grpc:call ${i}`);
    }

    const failed = await unary(client, 'Fail', 'the-thing');
    assert.equal(failed.error?.code, grpc.status.NOT_FOUND, failed.error?.message);
    assert.equal(failed.error?.details, 'no such thing: the-thing');
    assert.deepEqual(failed.trailers?.get('x-reason'), ['grpc refused the-thing'], 'the trailer from the application');

    const stream = await counted(client, 50);
    assert.deepEqual(stream.messages, Array.from({ length: 50 }, (_, i) => `grpc:${i + 1}`));
    assert.equal(stream.status.code, grpc.status.OK);
  } finally {
    client.close();
  }
  assert.equal((await sidecar('client').stat(`${clientCluster('grpc')}.upstream_rq_total`)) - requestsBefore, 22);
  assert.ok((await sidecar('grpc').stat('http.ingress.downstream_rq_http2_total')) >= 22, 'gRPC (HTTP/2) between the sidecars');
  await assertMutualTls('grpc');
});

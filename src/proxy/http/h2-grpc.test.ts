// gRPC end to end through the proxy: @grpc/grpc-js client → running listener (h2c with the AUTO codec, and h2
// over TLS) → @grpc/grpc-js server. Unary and server-streaming calls, error statuses in trailers, Envoy's gRPC
// local replies (no route, upstream down, route timeout), gRPC retry conditions, and cancellation.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { makeTestPki, type TestPki } from '../test-pki.ts';
import { closeH2Pools } from './h2-pool.ts';
import { TestCluster, eventually, freePort, route, routes, startProxy, type Proxy } from './h2-test-harness.ts';

const PROTO = `
syntax = "proto3";
package km.test;
service Echo {
  rpc Unary (Msg) returns (Msg);
  rpc Count (Msg) returns (stream Msg);
  rpc Fail (Msg) returns (Msg);
  rpc Hang (Msg) returns (Msg);
  rpc Flaky (Msg) returns (Msg);
}
message Msg { string text = 1; int32 n = 2; }
`;

interface Msg { text: string; n: number }
type EchoClient = grpc.Client & {
  Unary(m: Partial<Msg>, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientUnaryCall;
  Count(m: Partial<Msg>, opts?: grpc.CallOptions): grpc.ClientReadableStream<Msg>;
  Fail(m: Partial<Msg>, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientUnaryCall;
  Hang(m: Partial<Msg>, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientUnaryCall;
  Flaky(m: Partial<Msg>, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Msg) => void): grpc.ClientUnaryCall;
};
type EchoCtor = new (address: string, creds: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => EchoClient;

let dir: string;
let pki: TestPki;
let Echo: EchoCtor;
let service: grpc.ServiceDefinition;
let server: grpc.Server;
let serverPort: number;
let proxy: Proxy;
let tlsProxy: Proxy;
let cluster: TestCluster;
const clients: grpc.Client[] = [];
const hangCancelled: boolean[] = [];
let flakyCalls = 0;

before(async () => {
  pki = await makeTestPki();
  dir = mkdtempSync(join(tmpdir(), 'km-grpc-'));
  const protoPath = join(dir, 'echo.proto');
  writeFileSync(protoPath, PROTO);
  const def = protoLoader.loadSync(protoPath, { keepCase: true, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { km: { test: { Echo: EchoCtor & { service: grpc.ServiceDefinition } } } };
  Echo = pkg.km.test.Echo;
  service = pkg.km.test.Echo.service;
  server = new grpc.Server();
  server.addService(service, {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const who = call.metadata.get('x-who')[0] ?? '';
      cb(null, { text: `echo:${call.request.text}:${String(who)}`, n: call.request.n });
    },
    Count: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      for (let i = 1; i <= call.request.n; i++) call.write({ text: `item ${i}`, n: i });
      call.end();
    },
    Fail: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const md = new grpc.Metadata();
      md.set('x-reason', 'testing');
      cb({ code: grpc.status.NOT_FOUND, details: 'no such thing: 100% missing', metadata: md });
    },
    Hang: (call: grpc.ServerUnaryCall<Msg, Msg>) => {
      const i = hangCancelled.push(false) - 1;
      call.on('cancelled', () => { hangCancelled[i] = true; });
    },
    Flaky: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      if (flakyCalls++ % 2 === 0) cb({ code: grpc.status.UNAVAILABLE, details: 'try again' });
      else cb(null, { text: 'finally', n: flakyCalls });
    },
  });
  serverPort = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => (e ? reject(e) : resolve(port))));
  cluster = new TestCluster(serverPort, { http2: true });
  const retry = { retryOn: 'unavailable', numRetries: { value: 2 }, retryBackOff: { baseInterval: { nanos: 1_000_000 } } };
  const closed = await freePort();
  const table = routes(
    route('/km.test.Echo/Hang', 'grpc', { timeout: { nanos: 300_000_000 } }),
    route('/km.test.Echo/Flaky', 'grpc', { retryPolicy: retry }),
    route('/km.test.Echo/', 'grpc', {}, { grpc: {} }),
    route('/down.Service/', 'down'),
  );
  const clusters = { grpc: cluster, down: new TestCluster(closed, { http2: true }) };
  proxy = await startProxy({ routes: table, clusters });
  tlsProxy = await startProxy({ routes: table, clusters, mode: 'tls', pki });
});

after(async () => {
  for (const c of clients) c.close();
  closeH2Pools();
  await proxy.close();
  await tlsProxy.close();
  cluster.close();
  server.forceShutdown();
  rmSync(dir, { recursive: true, force: true });
  rmSync(pki.dir, { recursive: true, force: true });
});

function client(port = proxy.port): EchoClient {
  const c = new Echo(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  clients.push(c);
  return c;
}

/** A call with a 10 s deadline unless given. */
function unary(c: EchoClient, method: 'Unary' | 'Fail' | 'Hang' | 'Flaky', req: Partial<Msg>, opts: { deadlineMs?: number; md?: grpc.Metadata } = {}): Promise<{ err: grpc.ServiceError | null; res?: Msg }> {
  return new Promise((resolve) => {
    c[method](req, opts.md ?? new grpc.Metadata(), { deadline: Date.now() + (opts.deadlineMs ?? 10_000) }, (err, res) => resolve({ err, ...(res ? { res } : {}) }));
  });
}

test('unary and server-streaming calls pass through; metadata reaches the server', async () => {
  const c = client();
  const md = new grpc.Metadata();
  md.set('x-who', 'alice');
  const r = await unary(c, 'Unary', { text: 'hi', n: 7 }, { md });
  assert.equal(r.err, null);
  assert.deepEqual(r.res, { text: 'echo:hi:alice', n: 7 });
  const items: Msg[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = c.Count({ n: 5 }, { deadline: Date.now() + 10_000 });
    call.on('data', (m: Msg) => items.push(m));
    call.on('error', reject);
    call.on('end', () => resolve());
  });
  assert.deepEqual(items.map((m) => m.text), ['item 1', 'item 2', 'item 3', 'item 4', 'item 5']);
  assert.equal(cluster.stat('upstream_rq_200'), 2);
  await eventually(() => proxy.log.filter((e) => e.path.startsWith('/km.test.Echo/')).length >= 2);
  assert.ok(proxy.log.every((e) => e.protocol === 'HTTP/2'));
});

test('a gRPC error status passes through in trailers, with its message and trailing metadata', async () => {
  const r = await unary(client(), 'Fail', { text: 'x' });
  assert.equal(r.err?.code, grpc.status.NOT_FOUND);
  assert.equal(r.err?.details, 'no such thing: 100% missing');
  assert.equal(r.err?.metadata.get('x-reason')[0], 'testing');
});

test('gRPC over TLS (h2 by ALPN) to the same service', async () => {
  const c = new Echo(`127.0.0.1:${tlsProxy.port}`, grpc.credentials.createSsl(Buffer.from(pki.caPem)), { 'grpc.ssl_target_name_override': 'colorteller.mesh.local', 'grpc.default_authority': 'colorteller.mesh.local' });
  clients.push(c);
  const r = await unary(c, 'Unary', { text: 'secure' });
  assert.equal(r.err, null);
  assert.equal(r.res?.text, 'echo:secure:');
  assert.ok(tlsProxy.stat('downstream_rq_http2_total') >= 1);
});

test("Envoy's gRPC local replies: no route → UNIMPLEMENTED, upstream down → UNAVAILABLE, route timeout → UNAVAILABLE 'upstream request timeout'", async () => {
  const c = client();
  const nr = await new Promise<grpc.ServiceError | null>((resolve) => {
    // A method of a service the routes do not know.
    const other = new grpc.Client(`127.0.0.1:${proxy.port}`, grpc.credentials.createInsecure());
    clients.push(other);
    other.makeUnaryRequest('/unknown.Service/Call', (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), { deadline: Date.now() + 10_000 }, (e) => resolve(e));
  });
  assert.equal(nr?.code, grpc.status.UNIMPLEMENTED);
  const down = await new Promise<grpc.ServiceError | null>((resolve) => {
    const other = new grpc.Client(`127.0.0.1:${proxy.port}`, grpc.credentials.createInsecure());
    clients.push(other);
    other.makeUnaryRequest('/down.Service/Call', (x: Buffer) => x, (x: Buffer) => x, Buffer.alloc(0), { deadline: Date.now() + 10_000 }, (e) => resolve(e));
  });
  assert.equal(down?.code, grpc.status.UNAVAILABLE);
  assert.match(down?.details ?? '', /^upstream connect error or disconnect\/reset before headers\. reset reason: connection failure/);
  // Envoy answers its upstream timeout with 504, which httpToGrpcStatus makes UNAVAILABLE.
  const t = await unary(c, 'Hang', { text: 'slow' });
  assert.equal(t.err?.code, grpc.status.UNAVAILABLE);
  assert.equal(t.err?.details, 'upstream request timeout');
  await eventually(() => hangCancelled.length === 1 && hangCancelled[0] === true);
  await eventually(() => proxy.log.some((e) => e.path === '/km.test.Echo/Hang'));
  const entry = proxy.log.find((e) => e.path === '/km.test.Echo/Hang')!;
  assert.equal(entry.responseFlags, 'UT');
  assert.equal(entry.status, 200);
});

test("the client's own deadline: DEADLINE_EXCEEDED at the client, the upstream call is cancelled through the proxy", async () => {
  const r = await unary(client(), 'Hang', { text: 'short' }, { deadlineMs: 100 });
  assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
  await eventually(() => hangCancelled.length === 2 && hangCancelled[1] === true);
});

test('gRPC retry_on unavailable: a trailers-only UNAVAILABLE is retried', async () => {
  const before = cluster.stat('upstream_rq_retry');
  const r = await unary(client(), 'Flaky', { text: 'x' });
  assert.equal(r.err, null);
  assert.equal(r.res?.text, 'finally');
  assert.equal(cluster.stat('upstream_rq_retry'), before + 1);
  assert.equal(cluster.stat('upstream_rq_retry_success'), 1);
});

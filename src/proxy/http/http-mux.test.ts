// keymesh's multiplexed sidecar-to-sidecar hop, as the two proxies run it: a client-side HTTP/1 connection manager
// (Http1Session) → a ClusterRuntime with mutual TLS → a RunningListener with a TLS HTTP chain (handleHttp) → a
// plain cluster → a node:http backend. Real sockets and real TLS in one process. What a user notices: requests
// share one mTLS connection (the mux counters, the server's ssl.handshake), stock TLS servers and TLS clients
// (curl, openssl) see no difference, a drain or a TLS change moves traffic to a new connection without failing
// a request, and a reset of a reused stream is retried.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer as createHttpServer, request as httpRequest, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { after, before, test } from 'node:test';
import { StatsStore } from '../admin/stats.ts';
import { compileListener } from '../listeners/compile.ts';
import { RunningListener } from '../listeners/listener.ts';
import { MUX_ALPN } from '../mux/frames.ts';
import { MuxSession } from '../mux/session.ts';
import type { MuxStream } from '../mux/stream.ts';
import { compileRouteConfiguration, type RouteTable } from '../routing/compile.ts';
import { makeTestPki, type TestPki } from '../test-pki.ts';
import { eventually, freePort, httpConnectionManagerFilter, runProgram } from '../test-support.ts';
import { TlsProvider } from '../tls/provider.ts';
import { ClusterRuntime } from '../upstream/cluster-runtime.ts';
import { compileCluster } from '../upstream/compile.ts';
import { handleHttp } from './http-handler.ts';
import { Http1Session, httpManagerStats } from './http1-session.ts';
import { httpStatsWithHttp2 } from './http2-session.ts';

let pki: TestPki;
const tls = new TlsProvider(() => undefined);
let backend: HttpServer;
let backendPort = 0;
const cleanups: Array<() => unknown> = [];

const routesTo = (cluster: string): RouteTable => compileRouteConfiguration({
  name: 'rds', virtualHosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster, timeout: { seconds: '10' } } }] }],
});

before(async () => {
  pki = await makeTestPki();
  // The application behind the server-side proxy: echoes the method, path and body; /slow/<ms> answers late.
  backend = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const delay = /^\/slow\/(\d+)/.exec(req.url ?? '')?.[1];
      setTimeout(() => res.end(`${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`), Number(delay ?? 0));
    });
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  backendPort = (backend.address() as AddressInfo).port;
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  tls.close();
  await new Promise<void>((r) => backend.close(() => r()));
  rmSync(pki.dir, { recursive: true, force: true });
});

function downstreamTls(requireClient: boolean, alpn?: string[], trustPath = pki.caPath) {
  return {
    name: 'envoy.transport_sockets.tls',
    typedConfig: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      commonTlsContext: {
        tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' },
        tlsCertificates: [{ certificateChain: { filename: pki.server.cert }, privateKey: { filename: pki.server.key } }],
        validationContext: { trustedCa: { filename: trustPath } },
        ...(alpn ? { alpnProtocols: alpn } : {}),
      },
      ...(requireClient ? { requireClientCertificate: { value: true } } : {}),
    },
  };
}

function upstreamTls(extra: Record<string, unknown> = {}, trustPath = pki.caPath) {
  return {
    name: 'envoy.transport_sockets.tls',
    typedConfig: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
      commonTlsContext: {
        tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' },
        tlsCertificates: [{ certificateChain: { filename: pki.client.cert }, privateKey: { filename: pki.client.key } }],
        validationContext: { trustedCa: { filename: trustPath }, matchTypedSubjectAltNames: [{ sanType: 'DNS', matcher: { exact: 'colorteller.mesh.local' } }] },
      },
      ...extra,
    },
  };
}

function clusterSpec(name: string, port: number, transportSocket?: unknown) {
  return compileCluster({
    name, type: 'STATIC', connectTimeout: { seconds: '2' },
    loadAssignment: { endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } }] }] },
    ...(transportSocket ? { transportSocket } : {}),
  });
}

interface ServerProxy {
  port: number;
  listener: RunningListener;
  stats: StatsStore;
  /** listener.<...>.<name> */
  listenerStat(name: string): number;
  /** http.ingress.<name> */
  httpStat(name: string): number;
  /** The same listener with its chain changed (renamed): its connections drain. */
  changeChain(): void;
}

/** The server-side keymesh proxy: a TLS HTTP chain in front of the backend. */
async function serverProxy(o: { requireClient?: boolean; alpn?: string[]; trustPath?: string } = {}): Promise<ServerProxy> {
  const stats = new StatsStore();
  const local = new ClusterRuntime(clusterSpec('local', backendPort), { stats, tls, log: () => {} });
  const port = await freePort();
  const compile = (chainName: string) => compileListener({
    name: 'ingress', address: { socketAddress: { address: '127.0.0.1', portValue: port } },
    filterChains: [{ name: chainName, filters: [httpConnectionManagerFilter('ingress')], transportSocket: downstreamTls(o.requireClient ?? true, o.alpn, o.trustPath) }],
  });
  const httpStats = httpStatsWithHttp2(stats.scope('http.ingress'));
  const table = routesTo('local');
  const listener = new RunningListener(compile('tls'), {
    tls, stats: stats.scope('listener.ingress'),
    handlerFor: () => (conn) => handleHttp(conn, { routes: () => table, cluster: (n) => (n === 'local' ? local.http : undefined), stats: httpStats, codec: 'AUTO', now: Date.now }),
  });
  await listener.listen();
  let version = 0;
  cleanups.push(async () => {
    await listener.close(200);
    local.close();
  });
  return {
    port, listener, stats,
    listenerStat: (n) => stats.value(`listener.ingress.${n}`) ?? 0,
    httpStat: (n) => stats.value(`http.ingress.${n}`) ?? 0,
    changeChain: () => listener.update(compile(`tls-v${++version}`)),
  };
}

interface ClientProxy {
  port: number;
  cluster: ClusterRuntime;
  stats: StatsStore;
  /** cluster.peer.<name> */
  clusterStat(name: string): number;
}

/** The client-side keymesh proxy: plain HTTP/1.1 in, the `peer` cluster (TLS per `transportSocket`) out. */
async function clientProxy(upstreamPort: number, transportSocket: unknown = upstreamTls()): Promise<ClientProxy> {
  const stats = new StatsStore();
  const cluster = new ClusterRuntime(clusterSpec('peer', upstreamPort, transportSocket), { stats, tls, log: () => {} });
  const table = routesTo('peer');
  const s = httpManagerStats(stats.scope('http.egress'));
  const server: NetServer = createNetServer({ noDelay: true }, (socket) => {
    new Http1Session(socket, { routes: () => table, cluster: (n) => (n === 'peer' ? cluster.http : undefined), stats: s, scheme: 'http', remoteAddress: '127.0.0.1', now: Date.now, timeouts: {} });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(async () => {
    cluster.close();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as AddressInfo).port, cluster, stats, clusterStat: (n) => stats.value(`cluster.peer.${n}`) ?? 0 };
}

/** One request on a connection of its own to the client proxy: status and body. */
function get(port: number, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: body === undefined ? 'GET' : 'POST', agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function many(port: number, n: number, path = (i: number) => `/r/${i}`): Promise<void> {
  const got = await Promise.all(Array.from({ length: n }, (_, i) => get(port, path(i), `body-${i}`)));
  got.forEach((r, i) => assert.deepEqual(r, { status: 200, body: `POST ${path(i)} body-${i}` }, `request ${i}`));
}

test('keymesh to keymesh: concurrent requests share ONE mutual-TLS connection, each a stream; responses intact', async () => {
  const srv = await serverProxy();
  const cli = await clientProxy(srv.port);
  await many(cli.port, 40);
  await many(cli.port, 40);
  assert.equal(cli.clusterStat('keymesh.upstream_cx_mux_total'), 1);
  assert.equal(cli.clusterStat('keymesh.upstream_cx_mux_active'), 1);
  assert.equal(cli.clusterStat('ssl.handshake'), 1);
  assert.equal(srv.listenerStat('ssl.handshake'), 1);
  assert.equal(srv.listenerStat('downstream_cx_total'), 1);
  assert.equal(srv.httpStat('keymesh.downstream_cx_mux_total'), 1);
  assert.equal(srv.httpStat('keymesh.downstream_cx_mux_active'), 1);
  assert.equal(srv.httpStat('downstream_rq_2xx'), 80);
  assert.equal(cli.clusterStat('upstream_rq_200'), 80);
  // A large body each way goes through as well.
  const big = 'x'.repeat(3 * 1024 * 1024);
  const r = await get(cli.port, '/big', big);
  assert.equal(r.status, 200);
  assert.equal(r.body, `POST /big ${big}`);
  assert.equal(cli.clusterStat('keymesh.upstream_cx_mux_total'), 1);
});

test('a stock TLS server upstream (node https, with and without ALPNProtocols) gets plain pooled connections', async () => {
  for (const alpn of [undefined, ['http/1.1'], ['h2', 'http/1.1']]) {
    let connections = 0;
    const selected: string[] = [];
    const https = createHttpsServer({ cert: pki.server.certPem, key: pki.server.keyPem, ...(alpn ? { ALPNProtocols: alpn } : {}) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => setTimeout(() => res.end(`${req.method} ${req.url} ${Buffer.concat(chunks).toString()}`), 20));
    });
    https.on('secureConnection', (s) => {
      connections++;
      selected.push(String(s.alpnProtocol));
    });
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      https.closeAllConnections();
      https.close();
    });
    const cli = await clientProxy((https.address() as AddressInfo).port);
    await many(cli.port, 8);
    await many(cli.port, 8);
    assert.equal(cli.clusterStat('keymesh.upstream_cx_mux_total'), 0, `ALPN ${String(alpn)}`);
    assert.equal(cli.clusterStat('upstream_rq_200'), 16);
    assert.ok(connections >= 2 && connections <= 9, `${connections} connections: concurrent requests each had one, then they were pooled`);
    assert.ok(cli.clusterStat('keymesh.upstream_cx_reused') >= 7, 'the second round reused them');
    // The first dial offered keymesh-mux/1 and http/1.1 (http/1.1 chosen, never h2); the plain ones offer what
    // the cluster's TLS configures (nothing here), as before the mux existed.
    if (alpn) assert.ok(selected.every((p) => p === 'http/1.1' || p === 'false') && selected[0] === 'http/1.1', `selected ${selected.join(' ')}`);
    https.closeAllConnections();
    await new Promise<void>((r) => https.close(() => r()));
  }
});

test('openssl s_server -www upstream: plain connections, no mux', async () => {
  const port = await freePort();
  const proc = spawn('openssl', ['s_server', '-accept', String(port), '-cert', pki.server.cert, '-key', pki.server.key, '-www', '-quiet'], { stdio: 'ignore' });
  cleanups.push(() => proc.kill('SIGKILL'));
  const cli = await clientProxy(port);
  // Until s_server listens the cluster answers 503.
  let first = { status: 0, body: '' };
  for (let i = 0; i < 100 && first.status !== 200; i++) {
    first = await get(cli.port, '/');
    if (first.status !== 200) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(first.status, 200, first.body);
  assert.match(first.body, /s_server/);
  // -www answers HTTP/1.0 and closes: each request has a connection of its own.
  for (let i = 0; i < 3; i++) assert.equal((await get(cli.port, '/')).status, 200);
  assert.equal(cli.clusterStat('keymesh.upstream_cx_mux_total'), 0);
  assert.equal(cli.clusterStat('keymesh.upstream_cx_mux_active'), 0);
});

test('curl and openssl s_client against the keymesh listener: ALPN http/1.1 as before; an unknown protocol only is refused', async () => {
  const srv = await serverProxy();
  const creds = ['--cacert', pki.caPath, '--cert', pki.client.cert, '--key', pki.client.key, '--resolve', `colorteller.mesh.local:${srv.port}:127.0.0.1`];
  const curl = await runProgram('curl', ['-sS', '--max-time', '5', '-w', ' %{http_version}', ...creds, `https://colorteller.mesh.local:${srv.port}/c`]);
  assert.equal(curl.out, 'GET /c  1.1');
  const viaH1 = await runProgram('curl', ['-sS', '--max-time', '5', '--http1.1', ...creds, `https://colorteller.mesh.local:${srv.port}/d`]);
  assert.equal(viaH1.out, 'GET /d ');
  const base = ['s_client', '-connect', `127.0.0.1:${srv.port}`, '-CAfile', pki.caPath, '-cert', pki.client.cert, '-key', pki.client.key, '-servername', 'colorteller.mesh.local', '-ign_eof'];
  const ok = await runProgram('openssl', [...base, '-alpn', 'h2,http/1.1'], 'GET /o HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(ok.out, /ALPN protocol: http\/1\.1/);
  assert.match(ok.out, /HTTP\/1\.1 200 OK/);
  assert.match(ok.out, /GET \/o /);
  const refused = await runProgram('openssl', [...base, '-alpn', 'spdy/3'], 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(refused.out, /no application protocol|alert/i);
  assert.doesNotMatch(refused.out, /HTTP\/1\.1 200/);
  assert.equal(srv.httpStat('keymesh.downstream_cx_mux_total'), 0);
  assert.equal(srv.httpStat('downstream_rq_2xx'), 3);
});

test("a filter-chain change on the server drains: in-flight requests finish, new ones go over a new connection", async () => {
  const srv = await serverProxy();
  const cli = await clientProxy(srv.port);
  await many(cli.port, 5);
  assert.equal(cli.clusterStat('keymesh.upstream_cx_mux_total'), 1);
  const inflight = Array.from({ length: 5 }, (_, i) => get(cli.port, `/slow/300/${i}`, 'late'));
  await eventually(() => srv.httpStat('downstream_rq_total') === 10, 'the slow requests reached the server');
  srv.changeChain();
  const done = await Promise.all(inflight);
  done.forEach((r, i) => assert.deepEqual(r, { status: 200, body: `POST /slow/300/${i} late` }));
  await many(cli.port, 10);
  assert.equal(cli.clusterStat('keymesh.upstream_cx_mux_total'), 2, 'a new mux connection');
  assert.equal(srv.listenerStat('ssl.handshake'), 2);
  await eventually(() => srv.httpStat('keymesh.downstream_cx_mux_active') === 1 && cli.clusterStat('keymesh.upstream_cx_mux_active') === 1, 'the drained connection closed');
  assert.equal(cli.clusterStat('upstream_rq_503'), 0);
});

test('requests sent just as the server drains (GOAWAY in flight) are not failed', async () => {
  const srv = await serverProxy();
  const cli = await clientProxy(srv.port);
  await many(cli.port, 3);
  for (let round = 0; round < 3; round++) {
    const requests = Array.from({ length: 12 }, (_, i) => get(cli.port, `/race/${round}/${i}`));
    // While the requests are on their way: the chain changes.
    await eventually(() => srv.httpStat('downstream_rq_total') > 0);
    setImmediate(() => srv.changeChain());
    const got = await Promise.all(requests);
    got.forEach((r, i) => assert.equal(r.status, 200, `round ${round} request ${i}: ${r.body}`));
  }
  assert.equal(cli.clusterStat('upstream_rq_503'), 0);
});

test("the cluster's TLS changing (ClusterRuntime.update) retires the old mux connection; in-flight requests finish", async () => {
  const srv = await serverProxy();
  const cli = await clientProxy(srv.port);
  await many(cli.port, 5);
  const inflight = get(cli.port, '/slow/300/x', 'y');
  await eventually(() => srv.httpStat('downstream_rq_total') === 6, 'the slow request reached the server');
  cli.cluster.update(clusterSpec('peer', srv.port, upstreamTls({ sni: 'colorteller.mesh.local' })));
  await many(cli.port, 5);
  assert.deepEqual(await inflight, { status: 200, body: 'POST /slow/300/x y' });
  assert.equal(cli.clusterStat('keymesh.upstream_cx_mux_total'), 2);
  await eventually(() => cli.clusterStat('keymesh.upstream_cx_mux_active') === 1 && srv.httpStat('keymesh.downstream_cx_mux_active') === 1, 'the old connection closed after its last stream');
  assert.equal(srv.listenerStat('ssl.handshake'), 2);
});

/**
 * A keymesh-like peer scripted by the test: selects the mux protocol and answers each request on its streams,
 * `onRequest` deciding (answer, or reset the stream, or retire the session first).
 */
async function scriptedPeer(onRequest: (ctx: { session: MuxSession; stream: MuxStream; nth: number; onStream: number; sessions: number }) => 'answer' | 'reset') {
  let sessions = 0;
  let requests = 0;
  const server: TlsServer = createTlsServer({ cert: pki.server.certPem, key: pki.server.keyPem, ALPNCallback: ({ protocols }) => (protocols.includes(MUX_ALPN) ? MUX_ALPN : protocols[0]) }, (socket) => {
    sessions++;
    const sessionNo = sessions;
    const session: MuxSession = new MuxSession(socket, {
      role: 'server', allowHalfOpen: true,
      onStream: (stream) => {
        let onStream = 0;
        let buf = '';
        stream.on('data', (b: Buffer) => {
          buf += b.toString('latin1');
          for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
            const path = /^\w+ (\S+)/.exec(buf)?.[1] ?? '?';
            buf = buf.slice(end + 4);
            requests++;
            onStream++;
            if (onRequest({ session, stream, nth: requests, onStream, sessions: sessionNo }) === 'reset') {
              stream.destroy();
              return;
            }
            const text = `${path} from session ${sessionNo}`;
            stream.write(`HTTP/1.1 200 OK\r\ncontent-length: ${text.length}\r\n\r\n${text}`);
          }
        });
        stream.on('end', () => stream.end());
      },
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as AddressInfo).port, sessions: () => sessions, requests: () => requests };
}

test('an upstream reset of a reused stream before its response is retried, as a pooled connection\'s', async () => {
  // The second request on any stream is reset (as a peer that just closed that idle connection would).
  const peer = await scriptedPeer(({ onStream }) => (onStream === 2 ? 'reset' : 'answer'));
  const cli = await clientProxy(peer.port);
  assert.deepEqual(await get(cli.port, '/one'), { status: 200, body: '/one from session 1' });
  assert.deepEqual(await get(cli.port, '/two'), { status: 200, body: '/two from session 1' });
  assert.equal(peer.requests(), 3, 'the reset request, then its retry on a new stream');
  assert.equal(cli.clusterStat('keymesh.upstream_cx_reused'), 1, 'the pooled stream; the retry opened a new one');
  assert.equal(cli.clusterStat('keymesh.upstream_cx_mux_total'), 1);
  assert.equal(cli.clusterStat('upstream_rq_503'), 0);
});

test('streams the peer refuses because it retired just then (GOAWAY crossing them) are retried on a new connection', async () => {
  // On session 1, the first request of the second round retires it before the other streams' bytes are read:
  // those are refused (RESET) by the peer's session.
  const peer = await scriptedPeer(({ session, sessions, nth }) => {
    if (sessions === 1 && nth === 2) session.retire();
    return 'answer';
  });
  const cli = await clientProxy(peer.port);
  assert.equal((await get(cli.port, '/warm')).status, 200);
  const got = await Promise.all(Array.from({ length: 4 }, (_, i) => get(cli.port, `/r${i}`)));
  got.forEach((r, i) => assert.equal(r.status, 200, `request ${i}: ${r.body}`));
  assert.equal(peer.sessions(), 2);
  assert.equal(cli.clusterStat('upstream_rq_503'), 0);
});

/** Repeats `step` (which sends requests) until it says done, within 10 s. */
async function until(step: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await step())) {
    if (Date.now() > deadline) assert.fail(`not within 10 s: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a change of TLS material moves the traffic to a new mutual-TLS connection (client trust, then server trust); no request fails', async () => {
  // Each side's trust bundle in a file of its own, replaced atomically (rename) as a rotation would.
  const clientTrust = join(pki.dir, 'mux-client-trust.pem');
  const serverTrust = join(pki.dir, 'mux-server-trust.pem');
  const replace = (path: string, text: string) => {
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
  };
  replace(clientTrust, pki.caPem);
  replace(serverTrust, pki.caPem);
  const srv = await serverProxy({ trustPath: serverTrust });
  const cli = await clientProxy(srv.port, upstreamTls({}, clientTrust));
  await many(cli.port, 20);
  assert.equal(cli.clusterStat('keymesh.upstream_cx_mux_total'), 1);
  assert.equal(srv.listenerStat('ssl.handshake'), 1);

  // The client's trust gains a second anchor: its mux connection retires, the next requests handshake anew.
  replace(clientTrust, `${pki.caPem}${pki.rogue.certPem}`);
  await until(async () => {
    await many(cli.port, 4);
    return cli.clusterStat('keymesh.upstream_cx_mux_total') === 2;
  }, 'a new mux connection after the client-side change');
  assert.equal(srv.listenerStat('ssl.handshake'), 2);
  await eventually(() => cli.clusterStat('keymesh.upstream_cx_mux_active') === 1, 'the retired connection closed', 5_000);

  // The server's trust changes: it drains its connection (GOAWAY), the client reconnects.
  replace(serverTrust, `${pki.caPem}${pki.rogue.certPem}`);
  await until(async () => {
    await many(cli.port, 4);
    return cli.clusterStat('keymesh.upstream_cx_mux_total') === 3;
  }, 'a new mux connection after the server-side change');
  assert.equal(srv.listenerStat('ssl.handshake'), 3);
  await eventually(() => srv.httpStat('keymesh.downstream_cx_mux_active') === 1, 'the drained connection closed', 5_000);
  assert.equal(cli.clusterStat('upstream_rq_5xx'), 0);
});

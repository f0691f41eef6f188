// Garbage on a listener's port is contained (issue 5): bytes that are not TLS on a TLS port, clients that stall
// before or during the handshake or while the listener filters wait for the first bytes, more than a ClientHello's
// worth of garbage. Each case runs over real sockets (scripted net/tls clients, curl, openssl s_client) against a
// RunningListener with real TLS, and checks that the connection is closed within a bounded wait and which
// `listener.<address>_<port>.` counter says why. Timeouts are shortened through the listener's deps; nothing
// measures time.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { after, before, test } from 'node:test';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { StatsStore } from '../admin/stats.ts';
import { Http1Session, httpManagerStats } from '../http/http1-session.ts';
import { compileRouteConfiguration } from '../routing/compile.ts';
import { makeTestPki, type TestPki } from '../test-pki.ts';
import { TlsProvider } from '../tls/provider.ts';
import { compileListener } from './compile.ts';
import { LISTENER_FILTERS_TIMEOUT_MS, RunningListener, TLS_HANDSHAKE_TIMEOUT_MS, type ChainHandler, type DownstreamConnection } from './listener.ts';
import { MAX_INSPECT_BYTES } from './inspect.ts';
import { TLS_INSPECTOR_FILTER, eventually, freePort, httpConnectionManagerFilter, runProgram } from '../test-support.ts';

let pki: TestPki;
const stats = new StatsStore();
const tls = new TlsProvider(() => undefined);
const running: RunningListener[] = [];

before(async () => {
  pki = await makeTestPki();
});

after(async () => {
  for (const l of running) await l.close(100);
  tls.close();
  rmSync(pki.dir, { recursive: true, force: true });
});



const HCM = httpConnectionManagerFilter('containment', 'AUTO');

const TLS_INSPECTOR = TLS_INSPECTOR_FILTER;

function tlsSocket() {
  return {
    name: 'envoy.transport_sockets.tls',
    typedConfig: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      commonTlsContext: { tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' }, tlsCertificates: [{ certificateChain: { filename: pki.server.cert }, privateKey: { filename: pki.server.key } }] },
    },
  };
}

/** Answers the first bytes with one HTTP response naming the connection's remote port, and records the connection. */
const seen: DownstreamConnection[] = [];
function answer(conn: DownstreamConnection): void {
  seen.push(conn);
  conn.socket.once('data', () => {
    const body = `${conn.remotePort}`;
    conn.socket.end(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
  });
}

let prefixSeq = 0;

/** The HTTP/1 connection manager with no routes: enough to see what it does with garbage. */
function httpSession(prefix: string): ChainHandler {
  const table = compileRouteConfiguration({ name: 'rds', virtualHosts: [] });
  const s = httpManagerStats(stats.scope(`http.${prefix}`));
  return (conn) => {
    seen.push(conn);
    const session = new Http1Session(conn.socket, { routes: () => table, cluster: () => undefined, stats: s, scheme: conn.tls ? 'https' : 'http', remoteAddress: conn.remoteAddress, now: Date.now });
    conn.onDrain(() => session.drain());
  };
}

interface Started {
  readonly port: number;
  /** `listener.<prefix>.<name>` */
  stat(name: string): number;
  /** `http.<prefix>.<name>` (when the chains run the HTTP session) */
  http(name: string): number;
}

/**
 * STRICT: one TLS chain, no listener filter. PERMISSIVE: tls_inspector, a TLS chain and a plaintext chain.
 * TLS_ONLY: tls_inspector and only a chain matching transport_protocol tls.
 */
async function start(mode: 'STRICT' | 'PERMISSIVE' | 'TLS_ONLY', opts: { filtersTimeoutMs?: number; tlsHandshakeTimeoutMs?: number; http?: boolean } = {}): Promise<Started> {
  const port = await freePort();
  const chains = mode === 'STRICT' ? [{ name: 'tls', filters: [HCM], transportSocket: tlsSocket() }]
    : mode === 'TLS_ONLY' ? [{ name: 'tls', filterChainMatch: { transportProtocol: 'tls' }, filters: [HCM], transportSocket: tlsSocket() }]
      : [{ name: 'tls', filterChainMatch: { transportProtocol: 'tls' }, filters: [HCM], transportSocket: tlsSocket() }, { name: 'plain', filters: [HCM] }];
  const spec = compileListener({
    name: `l_${port}`, address: { socketAddress: { address: '127.0.0.1', portValue: port } }, filterChains: chains,
    ...(mode === 'STRICT' ? {} : { listenerFilters: [TLS_INSPECTOR] }),
  });
  const prefix = `c${++prefixSeq}`;
  const handler = opts.http ? httpSession(prefix) : answer;
  const l = new RunningListener(spec, {
    tls, handlerFor: () => handler, stats: stats.scope(`listener.${prefix}`),
    ...(opts.filtersTimeoutMs !== undefined ? { filtersTimeoutMs: opts.filtersTimeoutMs } : {}),
    ...(opts.tlsHandshakeTimeoutMs !== undefined ? { tlsHandshakeTimeoutMs: opts.tlsHandshakeTimeoutMs } : {}),
  });
  await l.listen();
  running.push(l);
  return { port, stat: (n) => stats.value(`listener.${prefix}.${n}`) ?? 0, http: (n) => stats.value(`http.${prefix}.${n}`) ?? 0 };
}

interface RawClient {
  readonly socket: Socket;
  /** Everything received. */
  received(): Buffer;
  /** Resolves when the socket closed; fails after `ms`. */
  closed(ms?: number): Promise<void>;
}

function dial(port: number): Promise<RawClient> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let isClosed = false;
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.once('close', () => { isClosed = true; });
    socket.once('connect', () => resolve({
      socket,
      received: () => Buffer.concat(chunks),
      closed: (ms = 8000) => eventually(() => isClosed, 'the proxy closes the connection', ms),
    }));
    socket.once('error', reject);
  });
}

/** The first bytes a TLS client sends: its ClientHello record, as node writes it. */
function clientHello(servername = 'colorteller.mesh.local'): Promise<Buffer> {
  return new Promise((resolve) => {
    const d = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        resolve(Buffer.from(chunk));
        cb();
        setImmediate(() => t.destroy());
      },
    });
    const t = tlsConnect({ socket: d, servername, rejectUnauthorized: false });
    t.on('error', () => {});
  });
}

test('defaults: listener filters get Envoy\'s 15 s; a TLS handshake 10 s', () => {
  assert.equal(LISTENER_FILTERS_TIMEOUT_MS, 15_000);
  assert.equal(TLS_HANDSHAKE_TIMEOUT_MS, 10_000);
});

// --- case 1: bytes that are not TLS on a TLS port ----------------------------------------------------------

test('STRICT: random bytes fail the handshake: ssl.connection_error, connection closed', async () => {
  const l = await start('STRICT');
  const garbage = randomBytes(4096);
  garbage[0] = 0x42; // not a TLS record type
  const c = await dial(l.port);
  c.socket.write(garbage);
  await c.closed();
  assert.equal(l.stat('ssl.connection_error'), 1);
  assert.equal(l.stat('ssl.handshake'), 0);
  await eventually(() => l.stat('downstream_cx_active') === 0, 'downstream_cx_active back to 0');
  assert.equal(l.stat('downstream_cx_destroy'), 1);
});

test('STRICT: a plaintext HTTP request (curl http://) fails the handshake: ssl.connection_error, connection closed', async () => {
  const l = await start('STRICT');
  const r = await runProgram('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${l.port}/`]);
  assert.notEqual(r.code, 0);
  assert.doesNotMatch(r.out, /timed out/i, 'the proxy closed the connection; curl did not wait for its own timeout');
  await eventually(() => l.stat('ssl.connection_error') === 1, 'ssl.connection_error counted');
  await eventually(() => l.stat('downstream_cx_active') === 0, 'downstream_cx_active back to 0');
  assert.equal(seen.filter((s) => s.localPort === l.port).length, 0, 'no connection reached the network filter');
});

test('STRICT: openssl s_client offering only TLS 1.1 is refused: ssl.connection_error, connection closed', async () => {
  const l = await start('STRICT');
  const r = await runProgram('openssl', ['s_client', '-connect', `127.0.0.1:${l.port}`, '-tls1_1'], 'Q\n');
  assert.match(r.out, /alert protocol version|Cipher is \(NONE\)|no protocols available/);
  await eventually(() => l.stat('ssl.connection_error') === 1, 'ssl.connection_error counted');
  await eventually(() => l.stat('downstream_cx_active') === 0, 'downstream_cx_active back to 0');
});

// --- case 2: stalled handshakes ------------------------------------------------------------------------------

test('STRICT: a client that never sends its ClientHello is closed at the handshake timeout: downstream_cx_transport_socket_connect_timeout', async () => {
  const l = await start('STRICT', { tlsHandshakeTimeoutMs: 500 });
  const c = await dial(l.port);
  await c.closed();
  assert.equal(c.received().length, 0);
  assert.equal(l.stat('downstream_cx_transport_socket_connect_timeout'), 1);
  assert.equal(l.stat('ssl.connection_error'), 0, 'a timeout, not a TLS error');
  await eventually(() => l.stat('downstream_cx_active') === 0, 'downstream_cx_active back to 0');
});

test('STRICT: a client that stops mid-handshake (ClientHello sent, never its Finished) is closed at the handshake timeout', async () => {
  const l = await start('STRICT', { tlsHandshakeTimeoutMs: 500 });
  const c = await dial(l.port);
  c.socket.write(await clientHello());
  await c.closed();
  assert.ok(c.received().length > 0, 'the proxy answered the ClientHello (ServerHello...) before giving up');
  assert.equal(c.received()[0], 0x16, 'a TLS handshake record');
  assert.equal(l.stat('downstream_cx_transport_socket_connect_timeout'), 1);
  assert.equal(l.stat('ssl.handshake'), 0);
});

test('STRICT: a ClientHello trickled one byte at a time does not restart the handshake timeout', async () => {
  const l = await start('STRICT', { tlsHandshakeTimeoutMs: 800 });
  const hello = await clientHello();
  const c = await dial(l.port);
  let i = 0;
  const trickle = setInterval(() => {
    if (i < hello.length && !c.socket.destroyed) c.socket.write(hello.subarray(i, ++i));
  }, 50);
  try {
    await c.closed();
  } finally {
    clearInterval(trickle);
  }
  assert.ok(i < hello.length, 'cut before the whole ClientHello arrived');
  assert.equal(l.stat('downstream_cx_transport_socket_connect_timeout'), 1);
});

test('PERMISSIVE: a ClientHello that passes the inspector, then a stall: closed at the handshake timeout', async () => {
  const l = await start('PERMISSIVE', { tlsHandshakeTimeoutMs: 500 });
  const c = await dial(l.port);
  c.socket.write(await clientHello());
  await c.closed();
  assert.equal(l.stat('downstream_cx_transport_socket_connect_timeout'), 1);
  assert.equal(l.stat('downstream_pre_cx_timeout'), 0, 'the listener filters were done');
  assert.equal(l.stat('downstream_pre_cx_active'), 0);
});

// --- case 3: listener filters ----------------------------------------------------------------------------------

test('PERMISSIVE: one byte then a stall: closed at the listener filter timeout: downstream_pre_cx_timeout', async () => {
  const l = await start('PERMISSIVE', { filtersTimeoutMs: 500 });
  const c = await dial(l.port);
  c.socket.write(Buffer.from([0x16]));
  await eventually(() => l.stat('downstream_pre_cx_active') === 1, 'the socket is being inspected');
  await c.closed();
  assert.equal(l.stat('downstream_pre_cx_timeout'), 1);
  assert.equal(l.stat('downstream_pre_cx_active'), 0);
  assert.equal(l.stat('keymesh.plaintext_cx_total'), 0, 'not handed to the plaintext chain');
  await eventually(() => l.stat('downstream_cx_active') === 0, 'downstream_cx_active back to 0');
});

test('PERMISSIVE: a client that sends one byte and goes away while inspected: downstream_listener_filter_remote_close', async () => {
  const l = await start('PERMISSIVE');
  const c = await dial(l.port);
  c.socket.end(Buffer.from([0x16]));
  await c.closed();
  await eventually(() => l.stat('downstream_listener_filter_remote_close') === 1, 'remote close counted');
  assert.equal(l.stat('downstream_pre_cx_active'), 0);
});

test('PERMISSIVE: a TLS record longer than 16 KiB is no ClientHello the inspector reads: closed, tls_inspector.client_hello_too_large', async () => {
  const l = await start('PERMISSIVE', { http: true });
  const c = await dial(l.port);
  const record = Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]), randomBytes(MAX_INSPECT_BYTES + 1024)]);
  c.socket.write(record);
  await c.closed();
  assert.equal(l.stat('tls_inspector.client_hello_too_large'), 1);
  assert.equal(l.stat('keymesh.plaintext_cx_total'), 0);
  assert.equal(l.stat('ssl.connection_error'), 0);
});

test('PERMISSIVE: more than 16 KiB of non-TLS, non-HTTP garbage goes to the plaintext chain, whose HTTP codec answers 400 and closes', async () => {
  const l = await start('PERMISSIVE', { http: true });
  const c = await dial(l.port);
  const garbage = randomBytes(MAX_INSPECT_BYTES + 4096);
  garbage[0] = 0x01;
  c.socket.write(garbage);
  await c.closed();
  assert.match(c.received().toString('latin1'), /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(c.received().toString('latin1'), /\r\nconnection: close\r\n/i);
  assert.equal(l.stat('keymesh.plaintext_cx_total'), 1);
  assert.equal(l.http('downstream_cx_protocol_error'), 1);
  assert.equal(l.http('downstream_rq_4xx'), 1);
});

test('TLS-only listener with tls_inspector: plaintext garbage matches no filter chain: no_filter_chain_match, closed', async () => {
  const l = await start('TLS_ONLY');
  const c = await dial(l.port);
  const garbage = randomBytes(MAX_INSPECT_BYTES + 4096);
  garbage[0] = 0x01;
  c.socket.write(garbage);
  await c.closed();
  assert.equal(c.received().length, 0);
  assert.equal(l.stat('no_filter_chain_match'), 1);
  await eventually(() => l.stat('downstream_cx_active') === 0, 'downstream_cx_active back to 0');
});

test('TLS-only listener: an HTTP request matches no filter chain either (curl http://)', async () => {
  const l = await start('TLS_ONLY');
  const r = await runProgram('curl', ['-sS', '--max-time', '10', `http://127.0.0.1:${l.port}/`]);
  assert.notEqual(r.code, 0);
  await eventually(() => l.stat('no_filter_chain_match') === 1, 'no_filter_chain_match counted');
});

// --- the filter chain gets the right connection ------------------------------------------------------------

test('concurrent TLS connections each reach the network filter as themselves (STRICT and PERMISSIVE)', async () => {
  for (const mode of ['STRICT', 'PERMISSIVE'] as const) {
    const l = await start(mode);
    const clients = await Promise.all(Array.from({ length: 8 }, () => new Promise<{ local: number; body: string }>((resolve, reject) => {
      const s: TLSSocket = tlsConnect({ host: '127.0.0.1', port: l.port, servername: 'colorteller.mesh.local', ca: pki.caPem });
      let out = '';
      s.on('data', (d) => { out += String(d); });
      s.once('error', reject);
      s.once('secureConnect', () => {
        const local = s.localPort!;
        s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n');
        s.once('end', () => resolve({ local, body: out.slice(out.indexOf('\r\n\r\n') + 4) }));
      });
    })));
    for (const c of clients) assert.equal(c.body, String(c.local), `${mode}: the handler saw the connection's own remote port`);
    assert.equal(l.stat('ssl.handshake'), 8);
    await eventually(() => l.stat('downstream_cx_active') === 0, `${mode}: all closed`);
  }
});

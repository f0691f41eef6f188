// First-byte inspection on real ClientHellos (node:tls, openssl s_client) and HTTP, and Envoy's chain choice.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { connect } from 'node:tls';
import { test } from 'node:test';
import type { FilterChainSpec } from './compile.ts';
import { inspect } from './inspect.ts';
import { selectChain } from './select-chain.ts';

/** The first bytes a client sends to a plain TCP server, captured. */
async function firstBytes(send: (port: number) => void): Promise<Buffer> {
  let resolve!: (b: Buffer) => void;
  const got = new Promise<Buffer>((r) => { resolve = r; });
  const server = createServer((s: Socket) => {
    s.once('data', (d: Buffer) => {
      resolve(d);
      s.destroy();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  send((server.address() as { port: number }).port);
  try {
    return await got;
  } finally {
    server.close();
  }
}

test('a real ClientHello: TLS with its SNI and ALPN offers, byte by byte until complete', async () => {
  const hello = await firstBytes((port) => {
    connect({ host: '127.0.0.1', port, servername: 'Colorteller.Mesh.Local', ALPNProtocols: ['h2', 'http/1.1'] }).on('error', () => {});
  });
  for (let i = 1; i < Math.min(hello.length, 200); i++) {
    const partial = inspect(hello.subarray(0, i));
    assert.ok(partial === undefined || partial.kind === 'tls', `prefix ${i}`);
  }
  assert.deepEqual(inspect(hello), { kind: 'tls', serverName: 'colorteller.mesh.local', alpn: ['h2', 'http/1.1'] });
});

test("openssl s_client's ClientHello without SNI", async () => {
  const hello = await firstBytes((port) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-noservername'], { stdio: ['pipe', 'ignore', 'ignore'] });
    p.stdin.end();
    setTimeout(() => p.kill(), 3000).unref();
  });
  const r = inspect(hello);
  assert.equal(r?.kind, 'tls');
  assert.equal(r?.kind === 'tls' ? r.serverName : 'x', undefined);
});

test('plaintext: HTTP/1.1, HTTP/1.0, h2c prior knowledge, and other protocols', () => {
  assert.deepEqual(inspect(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), { kind: 'http', protocol: 'http/1.1' });
  assert.deepEqual(inspect(Buffer.from('POST /a HTTP/1.0\r\n')), { kind: 'http', protocol: 'http/1.0' });
  assert.deepEqual(inspect(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')), { kind: 'http', protocol: 'h2c' });
  assert.equal(inspect(Buffer.from('PRI * HTT')), undefined);
  assert.equal(inspect(Buffer.from('GET /long')), undefined);
  assert.deepEqual(inspect(Buffer.from('SSH-2.0-OpenSSH\r\n')), { kind: 'other' });
  assert.deepEqual(inspect(Buffer.from([0, 1, 2, 3])), { kind: 'other' });
});

const chain = (name: string, match: FilterChainSpec['match']): FilterChainSpec => ({ name, match, tls: undefined, filter: { kind: 'tcp', statPrefix: name, clusters: [], idleTimeoutMs: undefined, accessLogs: [] } });

test("chain choice follows Envoy's order: port, server name (exact, then longest wildcard), transport, ALPN", () => {
  const chains = [
    chain('tcp_9000', { destinationPort: 9000 }),
    chain('aws', { serverNames: ['*.amazonaws.com'], transportProtocol: 'tls' }),
    chain('sts', { serverNames: ['sts.us-east-1.amazonaws.com'], transportProtocol: 'tls' }),
    chain('http', { applicationProtocols: ['http/1.1', 'h2c'] }),
    chain('tls', { transportProtocol: 'tls' }),
    chain('default', {}),
  ];
  const pick = (f: Partial<Parameters<typeof selectChain>[1]>) => selectChain(chains, { destinationPort: 15001, serverName: undefined, transportProtocol: 'raw_buffer', applicationProtocols: [], ...f })?.name;
  assert.equal(pick({ destinationPort: 9000 }), 'tcp_9000');
  assert.equal(pick({ serverName: 'sts.us-east-1.amazonaws.com', transportProtocol: 'tls' }), 'sts');
  assert.equal(pick({ serverName: 's3.amazonaws.com', transportProtocol: 'tls' }), 'aws');
  assert.equal(pick({ serverName: 'example.com', transportProtocol: 'tls', applicationProtocols: ['h2'] }), 'tls');
  assert.equal(pick({ applicationProtocols: ['http/1.1'] }), 'http');
  assert.equal(pick({}), 'default');
  assert.equal(selectChain([chain('only-tls', { transportProtocol: 'tls' })], { destinationPort: 1, serverName: undefined, transportProtocol: 'raw_buffer', applicationProtocols: [] }), undefined);
});

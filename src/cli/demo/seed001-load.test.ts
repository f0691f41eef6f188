// The migration walkthrough's traffic against a real HTTP server on loopback: its bounds (count and time), its
// keep-alive connections, its failure accounting, and its refusal of bad options.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { LoadLoop, type LoadOptions } from './seed001-load.ts';

const servers: Server[] = [];
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

/** A server answering `ok`, or 500 for the request numbers in `failing`; it counts connections and requests. */
async function server(failing: ReadonlySet<number> = new Set()): Promise<{ url: string; connections: () => number; hosts: string[] }> {
  let n = 0;
  let connections = 0;
  const hosts: string[] = [];
  const s = createServer((req, res) => {
    n++;
    hosts.push(req.headers.host ?? '');
    res.statusCode = failing.has(n) ? 500 : 200;
    res.end(failing.has(n) ? 'boom' : 'ok');
  });
  s.on('connection', () => { connections++; });
  servers.push(s);
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/`, connections: () => connections, hosts };
}

const check: LoadOptions['check'] = (status, body) => (status === 200 && body === 'ok' ? null : `${status} ${body}`);

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const started = Date.now();
  while (!ok()) {
    assert.ok(Date.now() - started < ms, `${what} within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

test('stops by itself at the request bound, on its keep-alive connections, with the Host it was given', async () => {
  const s = await server();
  const load = new LoadLoop({ url: s.url, host: 'backend.mesh.local:9080', connections: 3, ratePerSecond: 1000, maxRequests: 60, maxMs: 60_000, check });
  load.start();
  await until('the request bound', () => load.endedBy !== undefined);
  const counts = await load.stop();
  assert.equal(load.endedBy, 'max-requests');
  assert.deepEqual(counts, { sent: 60, ok: 60, failed: 0 });
  assert.ok(s.connections() <= 3, `${s.connections()} connections for 3 workers`);
  assert.deepEqual(new Set(s.hosts), new Set(['backend.mesh.local:9080']));
});

test('stops by itself at the time bound, never faster than its rate', async () => {
  const s = await server();
  const started = Date.now();
  const load = new LoadLoop({ url: s.url, host: 'h', connections: 2, ratePerSecond: 40, maxRequests: 100_000, maxMs: 300, check });
  load.start();
  await until('the time bound', () => load.endedBy !== undefined);
  const counts = await load.stop();
  const elapsed = Date.now() - started;
  assert.equal(load.endedBy, 'max-time');
  assert.ok(counts.sent >= 1 && counts.sent <= Math.ceil((40 * elapsed) / 1000) + 2, `${counts.sent} requests in ${elapsed} ms at 40/s`);
});

test('a wrong answer or no answer is a failure, counted and kept with its reason', async () => {
  const s = await server(new Set([3, 5]));
  const load = new LoadLoop({ url: s.url, host: 'h', connections: 1, ratePerSecond: 500, maxRequests: 8, maxMs: 60_000, check });
  load.start();
  await until('the request bound', () => load.endedBy !== undefined);
  assert.deepEqual(await load.stop(), { sent: 8, ok: 6, failed: 2 });
  assert.deepEqual(load.failures.map((f) => f.reason), ['500 boom', '500 boom']);

  // Nobody listening (a port just freed): every request fails with the reason, none hangs.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const refused = new LoadLoop({ url: `http://127.0.0.1:${port}/`, host: 'h', connections: 2, ratePerSecond: 200, maxRequests: 4, maxMs: 60_000, check });
  refused.start();
  await until('the request bound', () => refused.endedBy !== undefined);
  assert.deepEqual(await refused.stop(), { sent: 4, ok: 0, failed: 4 });
  assert.match(refused.failures[0]!.reason, /no answer: ECONNREFUSED/);
});

test('stop() before a bound: the loop ends as stopped, and stopping twice is harmless', async () => {
  const s = await server();
  const load = new LoadLoop({ url: s.url, host: 'h', connections: 4, ratePerSecond: 100, maxRequests: 10_000, maxMs: 60_000, check });
  load.start();
  await until('some traffic', () => load.counts.ok >= 5);
  const counts = await load.stop();
  assert.equal(load.endedBy, 'stopped');
  assert.equal(counts.failed, 0);
  assert.deepEqual(await load.stop(), counts);
  assert.throws(() => load.start(), /already started/);
});

test('bad options are refused with what is wrong', () => {
  const base = { url: 'http://127.0.0.1:1/', host: 'h', connections: 1, ratePerSecond: 1, maxRequests: 1, maxMs: 1, check };
  assert.throws(() => new LoadLoop({ ...base, connections: 0 }), /connections must be a whole number >= 1, got 0/);
  assert.throws(() => new LoadLoop({ ...base, ratePerSecond: Number.POSITIVE_INFINITY }), /ratePerSecond must be > 0/);
  assert.throws(() => new LoadLoop({ ...base, maxRequests: 1.5 }), /maxRequests must be a whole number/);
  assert.throws(() => new LoadLoop({ ...base, maxMs: -1 }), /maxMs must be a whole number/);
});

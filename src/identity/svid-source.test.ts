import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { ConfigError, UnavailableError } from '../errors/index.ts';
import type { Svid } from './svid.ts';
import { SvidSource, type SvidSourceOptions } from './svid-source.ts';
import { STATE_FILE } from './svid-state.ts';
import { FakeCa, FakeTimers, RecordingLog, seededRand, spki } from './test-support.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

async function setup(opts: { lifetime?: number; rand?: () => number; token?: boolean } & Partial<SvidSourceOptions> = {}) {
  const timers = new FakeTimers();
  const log = new RecordingLog();
  const ca = await FakeCa.create(timers, opts.lifetime ?? HOUR);
  const token = opts.token === false ? undefined : ca.newToken();
  const updates: (Svid | undefined)[] = [];
  const source = new SvidSource({
    transport: ca,
    clock: timers,
    timers,
    log,
    rand: opts.rand ?? seededRand(7),
    ...(token !== undefined ? { joinToken: token } : {}),
    onUpdate: (svid) => updates.push(svid),
    ...opts,
  });
  return { timers, log, ca, source, updates, token };
}

/** Fires timers until the CA has seen `n` more requests. */
async function untilCalls(timers: FakeTimers, ca: FakeCa, n: number): Promise<void> {
  const target = ca.calls.length + n;
  while (ca.calls.length < target) assert.notEqual(await timers.runNext(), undefined, 'no timer left to fire');
}

test('start bootstraps once with the join token; the CSR carries a key generated here', async () => {
  const { source, ca, updates, log, token } = await setup();
  await source.start();
  const svid = source.current();
  assert.ok(svid);
  assert.equal(svid.spiffeId, ca.spiffeId);
  assert.deepEqual(updates, [svid]);
  assert.equal(await source.ready(), svid);
  assert.equal(ca.calls.length, 1);
  assert.equal(ca.calls[0]?.kind, 'bootstrap');
  assert.equal(ca.calls[0]?.csrKey, await spki(svid.keys.publicKey), 'the certificate is for the key in our CSR');
  assert.equal(svid.keyPem.includes('PRIVATE KEY'), true);
  // the token is spent: it is not kept for later
  assert.equal(await ca.bootstrap('x', token as string).catch(() => 'refused'), 'refused');
  // nothing secret in logs, inspect or JSON
  for (const text of [log.all(), inspect(svid, { depth: 5 }), JSON.stringify(svid), JSON.stringify(source.status())]) {
    assert.ok(!text.includes('PRIVATE KEY') && !text.includes(token as string), text);
  }
  source.stop();
});

test('renews at half-life ± 10% with a new key each time, authenticating with the current SVID', async () => {
  const { source, ca, timers, updates } = await setup({ lifetime: HOUR });
  await source.start();
  for (let i = 0; i < 6; i++) {
    const before = source.current() as Svid;
    await untilCalls(timers, ca, 1);
    const call = ca.calls.at(-1)!;
    const lifetime = before.notAfter - before.notBefore;
    assert.equal(call.kind, 'renew');
    assert.ok(call.at >= before.notBefore + 0.4 * lifetime && call.at <= before.notBefore + 0.6 * lifetime, `renewal ${i} at ${(call.at - before.notBefore) / lifetime}`);
    assert.equal(call.presentedChain, before.certChainPem);
    assert.deepEqual(call.csrUris, [ca.spiffeId], 'a renewal asks for the identity it already has');
    const after = source.current() as Svid;
    assert.notEqual(after.serial, before.serial);
    assert.equal(call.csrKey, await spki(after.keys.publicKey));
  }
  const keys = new Set(ca.calls.map((c) => c.csrKey));
  assert.equal(keys.size, 7, 'every bootstrap/renewal used a fresh key');
  assert.equal(updates.length, 7);
  assert.ok(updates.every((u) => u !== undefined));
  source.stop();
});

test('proxies bootstrapped at the same moment schedule their renewals apart', async () => {
  const timers = new FakeTimers();
  const ca = await FakeCa.create(timers, DAY);
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const source = new SvidSource({ transport: ca, clock: timers, timers, log: new RecordingLog(), rand: seededRand(100 + i), joinToken: ca.newToken() });
    await source.start();
    times.push(source.status().nextAttemptAt as number);
    source.stop();
  }
  const t0 = timers.now();
  for (const t of times) assert.ok(t >= t0 + 0.4 * DAY - SECOND && t <= t0 + 0.6 * DAY, `${(t - t0) / DAY}`);
  assert.equal(new Set(times).size, 20);
  const spread = Math.max(...times) - Math.min(...times);
  assert.ok(spread > 0.1 * DAY, `renewals spread over ${spread / HOUR} h only`);
});

test('failed renewals retry at the backoff delays, capped, and then succeed', async () => {
  // rand = 0.5: renewal exactly at half-life, retry n after a delay of half its ceiling
  const { source, ca, timers, log } = await setup({ lifetime: 2 * HOUR, rand: () => 0.5 });
  await source.start();
  const first = source.current() as Svid;
  ca.script.push(...new Array<'fail'>(10).fill('fail'));
  await untilCalls(timers, ca, 11);
  const renewals = ca.calls.slice(1);
  assert.equal(renewals[0]?.at, first.notBefore + HOUR);
  const gaps = renewals.slice(1).map((c, i) => c.at - renewals[i]!.at);
  assert.deepEqual(gaps, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000]);
  const renewed = source.current() as Svid;
  assert.notEqual(renewed.serial, first.serial);
  assert.equal(source.status().failures, 0);
  // the first failure warns, the routine retries after it are info
  assert.equal(log.warnings().filter((w) => w.includes('renewal failed')).length, 1);
  assert.equal(log.lines.filter((l) => l.msg.includes('renewal failed')).length, 10);
  source.stop();
});

test('warns once per level as expiry nears, fails closed at expiry, recovers with a new join token', async () => {
  const lifetime = HOUR;
  const { source, ca, timers, log, updates } = await setup({ lifetime, rand: () => 0.5 });
  await source.start();
  const svid = source.current() as Svid;
  ca.script.push(...new Array<'fail'>(1000).fill('fail'));

  await timers.advanceTo(svid.notAfter - lifetime / 4 - 1);
  assert.deepEqual(log.warnings().map(kind), ['failed']);
  await timers.advanceTo(svid.notAfter - lifetime / 4);
  assert.deepEqual(log.warnings().map(kind), ['failed', 'warn']);
  await timers.advanceTo(svid.notAfter - lifetime / 10);
  assert.deepEqual(log.warnings().map(kind), ['failed', 'warn', 'critical']);
  assert.equal(source.current(), svid, 'still valid, still served');
  assert.equal(source.status().level, 'critical');

  await timers.advanceTo(svid.notAfter);
  assert.equal(source.current(), undefined, 'fail closed from notAfter on');
  assert.deepEqual(updates, [svid, undefined]);
  // one last retry finds neither a valid SVID nor a token, and the source goes quiet
  await timers.advance(HOUR);
  assert.deepEqual(log.warnings().map(kind), ['failed', 'warn', 'critical', 'expired', 'waiting']);
  assert.equal(timers.pending, 0);
  assert.match(log.warnings()[3]!, /expired .* without renewal.*set a new join token.*last error: the CA is down/);

  ca.script.length = 0;
  const token = ca.newToken('second');
  source.setJoinToken(token);
  await timers.advance(0);
  const again = source.current();
  assert.ok(again);
  assert.equal(ca.calls.at(-1)?.kind, 'bootstrap');
  assert.deepEqual(updates, [svid, undefined, again]);
  assert.ok(!log.all().includes(token));
  source.stop();
});

test('after expiry a join token already given is used to bootstrap again at once (A8)', async () => {
  const { source, ca, timers, updates } = await setup({ lifetime: HOUR, rand: () => 0.5 });
  await source.start();
  const svid = source.current() as Svid;
  source.setJoinToken(ca.newToken('spare'));
  assert.equal(timers.pending, 2, 'a valid SVID is renewed, not replaced: the token waits');
  ca.script.push(...new Array<'fail'>(200).fill('fail')); // renewals fail; the token call comes after them
  await timers.advanceTo(svid.notAfter - 1);
  const failed = ca.calls.length;
  ca.script.length = 0;
  await timers.advanceTo(svid.notAfter);
  assert.equal(ca.calls.length, failed + 1);
  assert.deepEqual({ kind: ca.calls.at(-1)?.kind, at: ca.calls.at(-1)?.at }, { kind: 'bootstrap', at: svid.notAfter });
  assert.equal(updates.length, 3);
  assert.equal(updates[1], undefined);
  assert.equal(source.current(), updates[2]);
  source.stop();
});

test('bad responses are rejected, never published, and retried', async () => {
  const { source, ca, timers, updates, log } = await setup({ lifetime: HOUR, rand: () => 0.5 });
  await source.start();
  const first = source.current() as Svid;
  ca.script.push('foreign-key', 'expired', 'untrusted', 'other-id');
  await untilCalls(timers, ca, 4);
  assert.equal(source.current(), first);
  assert.deepEqual(updates, [first]);
  assert.equal(source.status().failures, 4);
  const messages = log.lines.filter((l) => l.msg.includes('renewal failed')).map((l) => l.msg);
  assert.match(messages[0]!, /not for the key this workload generated/);
  assert.match(messages[1]!, /expired/);
  assert.match(messages[2]!, /no issuer|does not verify/);
  assert.match(messages[3]!, /expected an SVID for spiffe:\/\/keymesh.test\/mesh\/demo\/virtualNode\/web/);
  await untilCalls(timers, ca, 1);
  const good = source.current() as Svid;
  assert.notEqual(good.serial, first.serial);
  assert.deepEqual(updates, [first, good]);
  source.stop();
});

test('a bad bootstrap answer spends the token; the source waits for a new one', async () => {
  const { source, ca, timers, log } = await setup();
  ca.script.push('foreign-key');
  await source.start();
  assert.equal(source.current(), undefined);
  assert.equal(timers.pending, 0, 'no retry with a spent token');
  assert.match(log.warnings()[0]!, /bootstrap failed .*not for the key.*no join token left/);
  const ready = source.ready();
  source.setJoinToken(ca.newToken('next'));
  await timers.advance(0);
  assert.equal(await ready, source.current());
  source.stop();
});

test('a refused join token is dropped; an unreachable CA is retried with the same token', async () => {
  const { source, ca, timers, token } = await setup();
  ca.script.push('fail', 'fail');
  await source.start();
  await untilCalls(timers, ca, 2);
  assert.ok(source.current(), 'the token survived two network failures');
  assert.equal(ca.calls.length, 3);

  const other = await setup({ joinToken: 'kmjt.unknown.c2VjcmV0' });
  await other.source.start();
  assert.equal(other.timers.pending, 0);
  assert.match(other.log.warnings()[0]!, /bootstrap failed .*not known.*no join token left/);
  assert.ok(!other.log.all().includes('kmjt.unknown.c2VjcmV0'), 'the token is redacted from the error text');
  assert.ok(token);
  source.stop();
  other.source.stop();
});

test('stop() clears every timer and discards an attempt in flight', async () => {
  const { source, ca, timers, updates } = await setup({ lifetime: HOUR });
  await source.start();
  assert.ok(timers.pending > 0);
  source.stop();
  assert.equal(timers.pending, 0);
  await timers.advance(10 * HOUR);
  assert.equal(ca.calls.length, 1);

  // stopped while a renewal is at the CA
  const second = await setup({ lifetime: HOUR });
  await second.source.start();
  let release!: () => void;
  let arrived!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const atCa = new Promise<void>((r) => (arrived = r));
  const renew = second.ca.renew.bind(second.ca);
  let reached = false;
  second.ca.renew = async (csr, current) => {
    reached = true;
    arrived();
    await gate;
    return renew(csr, current);
  };
  // Wake-up ticks come before the renewal; the timer that reaches the CA stays blocked on the gate.
  const firing = (async () => {
    while (!reached && second.timers.pending > 0) await second.timers.runNext();
  })();
  await atCa;
  second.source.stop();
  release();
  await firing;
  assert.equal(second.updates.length, 1, 'the renewal that finished after stop() was not published');
  assert.equal(second.timers.pending, 0);
  assert.equal(updates.length, 1);
});

test('ready() waits for the first SVID and rejects if stopped first', async () => {
  const { source, ca, timers } = await setup();
  ca.script.push('fail');
  await source.start();
  assert.equal(source.current(), undefined);
  const ready = source.ready();
  await timers.runNext();
  assert.equal(await ready, source.current());
  source.stop();

  const other = await setup();
  other.ca.script.push('fail');
  await other.source.start();
  const pending = other.source.ready();
  other.source.stop();
  await assert.rejects(pending, UnavailableError);
});

test('listeners added later get the current SVID asynchronously; a throwing listener does not break others', async () => {
  const { source, log } = await setup();
  await source.start();
  const got: (Svid | undefined)[] = [];
  source.onUpdate(() => {
    throw new Error('listener bug');
  });
  const off = source.onUpdate((s) => got.push(s));
  assert.deepEqual(got, [], 'not called from inside onUpdate');
  await Promise.resolve();
  assert.deepEqual(got, [source.current()]);
  assert.match(log.warnings().join('\n'), /listener failed: listener bug/);
  off();
  source.stop();
});

test('renewal of a long-lived SVID is scheduled beyond setTimeout\'s 24.8-day limit', async () => {
  const { source, ca, timers } = await setup({ lifetime: 90 * DAY, rand: () => 0.5 });
  await source.start(); // FakeTimers throws on a delay setTimeout would not honour
  const svid = source.current() as Svid;
  await timers.advance(44 * DAY);
  assert.equal(ca.calls.length, 1);
  await timers.advance(2 * DAY);
  assert.equal(ca.calls.length, 2);
  assert.equal(ca.calls[1]?.at, svid.notBefore + 45 * DAY);
  source.stop();
});

test('after the machine sleeps past expiry the source notices within minutes and bootstraps again', async () => {
  const { source, ca, timers, updates } = await setup({ lifetime: HOUR, rand: () => 0.5 });
  await source.start();
  const svid = source.current() as Svid;
  source.setJoinToken(ca.newToken('spare'));
  await timers.advance(10 * MINUTE);
  timers.jump(3 * HOUR); // suspended with 20 minutes left on the renewal timer
  assert.equal(source.current(), undefined, 'fail closed at once: current() reads the wall clock');
  await timers.advance(5 * MINUTE);
  assert.deepEqual(ca.calls.map((c) => c.kind), ['bootstrap', 'bootstrap']);
  assert.equal(updates.length, 3);
  assert.equal(updates[1], undefined);
  assert.ok(source.current() && source.current() !== svid);
  source.stop();
});

test('with a stateDir the SVID is saved (0600) after each update and a restart needs no join token', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'keymesh-identity-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const stateDir = join(dir, 'state');
  const first = await setup({ lifetime: HOUR, rand: () => 0.5, stateDir });
  await first.source.start();
  const issued = first.source.current() as Svid;
  const file = join(stateDir, STATE_FILE);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(stateDir)).mode & 0o777, 0o700);
  first.source.stop();

  // restart: same CA, no token
  const log = new RecordingLog();
  const restarted = new SvidSource({ transport: first.ca, clock: first.timers, timers: first.timers, log, rand: () => 0.5, stateDir });
  await restarted.start();
  assert.equal(restarted.current()?.serial, issued.serial);
  assert.equal(first.ca.calls.length, 1, 'no request to the CA');
  await untilCalls(first.timers, first.ca, 1);
  const renewed = restarted.current() as Svid;
  assert.equal(JSON.parse(await readFile(file, 'utf8')).certChainPem, renewed.certChainPem, 'the renewal was saved');
  restarted.stop();

  // a saved SVID that has expired is not used; without a token start() says so
  await first.timers.advanceTo(renewed.notAfter);
  const late = new SvidSource({ transport: first.ca, clock: first.timers, timers: first.timers, log, rand: () => 0.5, stateDir });
  await assert.rejects(late.start(), ConfigError);
  assert.match(log.warnings().at(-1)!, /saved SVID .* is not usable .*expired/);

  // a damaged file is reported, and a token still works
  await writeFile(file, '{"version":1,');
  const damaged = await setup({ stateDir });
  await damaged.source.start();
  assert.ok(damaged.source.current());
  assert.match(damaged.log.warnings()[0]!, /not valid JSON/);
  damaged.source.stop();
});

/** Which warning a line is, for comparing sequences. */
function kind(msg: string): string {
  if (msg.includes('failed (attempt')) return 'failed';
  if (msg.includes('(warn)')) return 'warn';
  if (msg.includes('(critical)')) return 'critical';
  if (msg.includes('expired at')) return 'expired';
  if (msg.includes('waiting for a new join token')) return 'waiting';
  return msg;
}

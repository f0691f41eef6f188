// Two MuxSessions over a real TLS connection on 127.0.0.1 (the test PKI's server certificate, ALPN keymesh-mux/1):
// what the HTTP/1.1 code on either side sees of its streams — bytes intact, back-pressure, half-close as a
// net.Socket's, resets, GOAWAY and retirement, the connection dying, a peer breaking the framing, the idle
// timeout and the concurrent-stream limit.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { connect as tlsConnect, createServer, type Server, type TLSSocket } from 'node:tls';
import { after, before, test } from 'node:test';
import { makeTestPki, type TestPki } from '../test-pki.ts';
import { eventually } from '../test-support.ts';
import {
  DATA, END, FrameReader, HEADER_BYTES, INITIAL_WINDOW, MAX_CONCURRENT_STREAMS, MUX_ALPN, MuxProtocolError, RESET, u32Payload, WINDOW, writeHeader, type FrameType,
} from './frames.ts';
import { MuxSession, type MuxSessionOptions } from './session.ts';
import type { MuxStream } from './stream.ts';

let pki: TestPki;
let server: Server;
let port = 0;
/** Accepted TLS sockets, in order, for the test that dialed them. */
const waiting: Array<(s: TLSSocket) => void> = [];
const open = new Set<TLSSocket>();

before(async () => {
  pki = await makeTestPki();
  server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem, ALPNProtocols: [MUX_ALPN] }, (s) => {
    open.add(s);
    s.once('close', () => open.delete(s));
    waiting.shift()!(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

after(async () => {
  for (const s of open) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(pki.dir, { recursive: true, force: true });
});

async function tlsPair(): Promise<{ clientSocket: TLSSocket; serverSocket: TLSSocket }> {
  const accepted = new Promise<TLSSocket>((r) => waiting.push(r));
  const clientSocket = tlsConnect({ host: '127.0.0.1', port, ca: pki.caPem, servername: 'colorteller.mesh.local', ALPNProtocols: [MUX_ALPN] });
  await new Promise<void>((resolve, reject) => clientSocket.once('secureConnect', resolve).once('error', reject));
  open.add(clientSocket);
  clientSocket.once('close', () => open.delete(clientSocket));
  assert.equal(clientSocket.alpnProtocol, MUX_ALPN);
  return { clientSocket, serverSocket: await accepted };
}

type Extra = Partial<Omit<MuxSessionOptions, 'role'>>;

interface Pair {
  client: MuxSession;
  server: MuxSession;
  clientSocket: TLSSocket;
  serverSocket: TLSSocket;
  /** Streams the server accepted, in order. */
  accepted: MuxStream[];
  clientClosed: Promise<void>;
  serverClosed: Promise<void>;
}

/** A client and a server session on one TLS connection; the server's streams get `onStream` (echo by default). */
async function pair(o: { client?: Extra; server?: Extra; onStream?: (s: MuxStream) => void } = {}): Promise<Pair> {
  const { clientSocket, serverSocket } = await tlsPair();
  const accepted: MuxStream[] = [];
  let clientDone!: () => void;
  let serverDone!: () => void;
  const clientClosed = new Promise<void>((r) => (clientDone = r));
  const serverClosed = new Promise<void>((r) => (serverDone = r));
  const onStream = o.onStream ?? echo;
  const srv = new MuxSession(serverSocket, {
    role: 'server', allowHalfOpen: true, ...o.server,
    onStream: (s) => { accepted.push(s); onStream(s); },
    onClose: () => { o.server?.onClose?.(); serverDone(); },
  });
  const cli = new MuxSession(clientSocket, {
    role: 'client', allowHalfOpen: false, ...o.client,
    onClose: () => { o.client?.onClose?.(); clientDone(); },
  });
  return { client: cli, server: srv, clientSocket, serverSocket, accepted, clientClosed, serverClosed };
}

/** Writes back what it reads (pausing while the peer holds its writes back), and ends when the peer ends. */
function echo(s: MuxStream): void {
  s.on('data', (b: Buffer) => {
    if (!s.write(Buffer.from(b))) {
      s.pause();
      s.once('drain', () => s.resume());
    }
  });
  s.on('end', () => s.end());
}

interface Outcome { data: Buffer; ended: boolean }

/** What a stream receives until its 'close'; whether 'end' came before it. */
function collect(s: MuxStream): Promise<Outcome> {
  const chunks: Buffer[] = [];
  let ended = false;
  s.on('data', (b: Buffer) => chunks.push(Buffer.from(b)));
  s.on('end', () => (ended = true));
  return new Promise((resolve) => s.once('close', () => resolve({ data: Buffer.concat(chunks), ended })));
}

/** Writes all of `bytes` in `chunk`-sized pieces, honouring write()'s false and 'drain'. */
async function writeAll(s: MuxStream, bytes: Buffer, chunk = 16 * 1024): Promise<void> {
  for (let off = 0; off < bytes.length; off += chunk) {
    if (!s.write(bytes.subarray(off, off + chunk))) await new Promise((r) => s.once('drain', r));
  }
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

test('many concurrent streams echo byte for byte, each closed on both sides afterwards', async () => {
  const p = await pair();
  const n = 300;
  const sent = Array.from({ length: n }, (_, i) => randomBytes(1 + ((i * 7919) % 90_000)));
  const streams = sent.map(() => p.client.open()!);
  assert.equal(new Set(streams.map((s) => s.id)).size, n);
  assert.ok(streams.every((s) => s.id % 2 === 1), 'client ids are odd');
  const results = streams.map((s) => collect(s));
  await Promise.all(streams.map(async (s, i) => {
    await writeAll(s, sent[i]!, 1000 + (i % 5) * 3000);
    s.end();
  }));
  const got = await Promise.all(results);
  for (let i = 0; i < n; i++) {
    assert.equal(got[i]!.data.length, sent[i]!.length, `stream ${i}`);
    assert.ok(got[i]!.data.equals(sent[i]!), `stream ${i} bytes`);
    assert.equal(got[i]!.ended, true);
  }
  await eventually(() => p.client.streams === 0 && p.server.streams === 0, 'both tables empty');
  assert.equal(p.accepted.length, n);
  p.client.destroy();
  await p.serverClosed;
});

test('8 MiB each way on four streams at once arrives intact, under flow control', async () => {
  const p = await pair();
  const size = 8 * 1024 * 1024;
  const payloads = Array.from({ length: 4 }, () => randomBytes(size));
  const streams = payloads.map(() => p.client.open()!);
  const results = streams.map((s) => collect(s));
  await Promise.all(streams.map(async (s, i) => {
    await writeAll(s, payloads[i]!, 256 * 1024);
    s.end();
  }));
  const got = await Promise.all(results);
  for (let i = 0; i < payloads.length; i++) {
    assert.equal(got[i]!.data.length, size);
    assert.equal(sha(got[i]!.data), sha(payloads[i]!));
  }
  p.client.destroy();
  await p.serverClosed;
});

test('a paused receiver holds at most the window: write() is false and drain waits for resume()', async () => {
  let receiver!: MuxStream;
  const received: Buffer[] = [];
  const p = await pair({
    onStream: (s) => {
      receiver = s;
      s.pause();
      s.on('data', (b: Buffer) => received.push(Buffer.from(b)));
    },
  });
  const s = p.client.open()!;
  const total = 8 * 1024 * 1024;
  const payload = randomBytes(total);
  let accepted = 0;
  let drained = false;
  s.on('drain', () => (drained = true));
  // Writes until the stream says to wait.
  while (accepted < total) {
    const ok = s.write(payload.subarray(accepted, accepted + 16 * 1024));
    accepted += 16 * 1024;
    if (!ok) break;
  }
  assert.ok(accepted <= INITIAL_WINDOW + 16 * 1024, `write() turned false after ${accepted} bytes`);
  assert.ok(accepted >= INITIAL_WINDOW, 'the whole window may be used before it does');
  await eventually(() => receiver !== undefined, 'the server has the stream');
  await tick(200);
  assert.equal(received.length, 0, 'nothing delivered while paused');
  assert.equal(drained, false, 'no drain while the receiver is paused');
  assert.ok(s.writableLength > 0);
  // resume() delivers what was held, synchronously: at most one window.
  receiver.resume();
  const held = received.reduce((n, b) => n + b.length, 0);
  assert.ok(held > 0 && held <= INITIAL_WINDOW, `held ${held} bytes`);
  receiver.pause();
  await eventually(() => drained, 'drain after resume()');
  // Then the rest, with the receiver paused every so often.
  receiver.on('data', () => {
    receiver.pause();
    setImmediate(() => receiver.resume());
  });
  receiver.resume();
  drained = false;
  const rest = payload.subarray(accepted);
  await writeAll(s, rest, 64 * 1024);
  s.end();
  await new Promise((r) => receiver.once('end', r));
  assert.equal(sha(Buffer.concat(received)), sha(payload));
  p.client.destroy();
  await p.serverClosed;
});

test('half-close, allowHalfOpen true (the server): the peer\'s END is an \'end\', the stream still writes', async () => {
  let serverStream!: MuxStream;
  let serverEnded = false;
  const p = await pair({
    onStream: (s) => {
      serverStream = s;
      s.on('end', () => {
        serverEnded = true;
        // Later, after the client's half-close: the answer still goes through.
        setTimeout(() => {
          assert.equal(s.writable, true);
          s.write('late ');
          s.end('answer');
        }, 50);
      });
    },
  });
  const s = p.client.open()!;
  const result = collect(s);
  s.end('request');
  assert.equal(s.writable, false, 'ended: no more writes');
  assert.equal(s.write('more'), false);
  const got = await result;
  assert.equal(serverEnded, true);
  assert.equal(got.data.toString(), 'late answer');
  assert.equal(got.ended, true);
  await eventually(() => serverStream.destroyed, 'the server stream is over too');
  assert.equal(p.server.streams, 0);
  assert.equal(p.client.streams, 0);
  p.client.destroy();
});

test('half-close, allowHalfOpen false (the client): the peer\'s END ends this side too, after its \'end\' listeners', async () => {
  let serverGotEnd = false;
  let serverClosed = false;
  let serverStream!: MuxStream;
  const p = await pair({
    onStream: (s) => {
      serverStream = s;
      s.once('data', () => s.end('bye'));
      s.on('end', () => (serverGotEnd = true));
      s.on('close', () => (serverClosed = true));
    },
  });
  const s = p.client.open()!;
  let writableInEnd: boolean | undefined;
  s.on('end', () => (writableInEnd = s.writable));
  const result = collect(s);
  s.write('hello');
  const got = await result;
  assert.equal(got.data.toString(), 'bye');
  assert.equal(got.ended, true);
  assert.equal(writableInEnd, true, "still writable inside 'end' (as net.Socket)");
  assert.equal(s.writable, false);
  await eventually(() => serverGotEnd && serverClosed, 'the server stream got the automatic END, then closed');
  assert.equal(serverStream.destroyed, true);
  p.client.destroy();
});

test('a paused stream keeps what it holds: the peer\'s bytes and END come on resume(), even when this side ended meanwhile', { timeout: 5000 }, async () => {
  const p = await pair({ onStream: (s) => s.once('data', () => s.end('the whole answer')) });
  const s = p.client.open()!;
  const result = collect(s);
  s.pause();
  s.write('q');
  await tick(100); // the answer and its END arrived, held
  s.end();
  await tick(50);
  s.resume();
  const got = await result;
  assert.equal(got.data.toString(), 'the whole answer');
  assert.equal(got.ended, true);
  p.client.destroy();
});

test('a stream ended before it wrote anything still reaches the peer (and closes)', async () => {
  const p = await pair();
  const s = p.client.open()!;
  const result = collect(s);
  s.end();
  const got = await Promise.race([result, tick(2000).then(() => undefined)]);
  assert.ok(got, "the stream closed (the server saw its END and echoed it)");
  assert.equal(got.ended, true);
  await eventually(() => p.client.streams === 0 && p.server.streams === 0, 'both tables empty');
  p.client.destroy();
});

test('streams may start talking in any order: each reaches the peer, none is taken for one already over', { timeout: 5000 }, async () => {
  const p = await pair();
  const streams = Array.from({ length: 6 }, () => p.client.open()!);
  const results = streams.map((s) => collect(s));
  // The newest first, then the others; the second one is destroyed before it said anything.
  streams[5]!.end('five');
  streams[1]!.destroy();
  for (const i of [3, 0, 4]) streams[i]!.end(`s${i}`);
  streams[2]!.end();
  const got = await Promise.all(results);
  assert.deepEqual(got.map((g) => g.data.toString()), ['s0', '', '', 's3', 's4', 'five']);
  assert.deepEqual(got.map((g) => g.ended), [true, false, true, true, true, true]);
  await eventually(() => p.client.streams === 0 && p.server.streams === 0, 'both tables empty');
  p.client.destroy();
});

test("destroy() on one side: the peer's stream gets 'close' without 'end'; other streams go on", async () => {
  const serverSide: Array<Promise<Outcome>> = [];
  const p = await pair({
    onStream: (s) => {
      serverSide.push(collect(s));
      s.on('data', () => s.write('pong'));
    },
  });
  const a = p.client.open()!;
  const b = p.client.open()!;
  const aOut = collect(a);
  const bOut = collect(b);
  a.write('ping');
  b.write('ping');
  await eventually(() => serverSide.length === 2, 'two server streams');
  a.destroy();
  assert.equal(a.destroyed, true);
  const gone = await serverSide[0]!;
  assert.equal(gone.ended, false, "reset: no 'end'");
  assert.equal(gone.data.toString(), 'ping');
  const aGot = await aOut;
  assert.equal(aGot.ended, false);
  // The other stream still works, both ways; then the server side destroys it.
  b.write('again');
  await eventually(() => p.accepted[1]!.listenerCount('data') > 0 && p.server.streams === 1, 'b still open');
  await tick(50);
  p.accepted[1]!.destroy();
  const bGot = await bOut;
  assert.equal(bGot.ended, false);
  assert.match(bGot.data.toString(), /^(pong)+$/);
  await eventually(() => p.client.streams === 0 && p.server.streams === 0, 'both tables empty');
  p.client.destroy();
});

test('client retire(): no new streams, open ones finish, then the TLS connection closes', async () => {
  const p = await pair({ onStream: (s) => s.on('data', (d: Buffer) => setTimeout(() => s.end(Buffer.from(d).toString().toUpperCase()), 100)) });
  const a = p.client.open()!;
  const b = p.client.open()!;
  const results = [collect(a), collect(b)];
  a.write('one');
  b.write('two');
  let socketClosed = false;
  p.clientSocket.once('close', () => (socketClosed = true));
  p.client.retire();
  assert.equal(p.client.retired, true);
  assert.equal(p.client.open(), undefined);
  const got = await Promise.all(results);
  assert.deepEqual(got.map((g) => g.data.toString()), ['ONE', 'TWO']);
  assert.ok(got.every((g) => g.ended));
  await Promise.all([p.clientClosed, p.serverClosed]);
  await eventually(() => socketClosed, 'the TLS connection closed');
});

test('GOAWAY (server retire()): the client opens no new stream, open ones finish, the connection closes after the last', async () => {
  const requests: MuxStream[] = [];
  const p = await pair({ onStream: (s) => requests.push(s) });
  const a = p.client.open()!;
  const b = p.client.open()!;
  const results = [collect(a), collect(b)];
  a.write('a');
  b.write('b');
  await eventually(() => requests.length === 2, 'both streams reached the server');
  p.server.retire();
  await eventually(() => p.client.retired, 'the client got GOAWAY');
  assert.equal(p.client.open(), undefined);
  assert.equal(p.server.retired, true);
  requests[0]!.end('A');
  const first = await results[0]!;
  assert.equal(first.data.toString(), 'A');
  await tick(50);
  assert.equal(p.clientSocket.destroyed, false, 'the connection stays for the open stream');
  requests[1]!.write('B1');
  requests[1]!.end('B2');
  const second = await results[1]!;
  assert.equal(second.data.toString(), 'B1B2');
  assert.equal(second.ended, true);
  await Promise.all([p.clientClosed, p.serverClosed]);
});

test("the TLS connection dying resets every stream: 'close' on all, on both sides", async () => {
  const p = await pair({ onStream: () => {} });
  const streams = Array.from({ length: 20 }, () => p.client.open()!);
  const results = streams.map((s) => collect(s));
  for (const s of streams) s.write('x');
  await eventually(() => p.accepted.length === 20, 'the server has them all');
  const serverResults = p.accepted.map((s) => collect(s));
  p.serverSocket.destroy();
  const got = await Promise.all(results);
  assert.ok(got.every((g) => !g.ended), "no 'end': a reset");
  const serverGot = await Promise.all(serverResults);
  assert.ok(serverGot.every((g) => !g.ended));
  await Promise.all([p.clientClosed, p.serverClosed]);
  assert.equal(p.client.streams, 0);
  assert.equal(p.client.retired, true, 'a closed session takes no stream');
  assert.equal(p.client.open(), undefined);
});

/** A server session whose client is a raw TLS socket the test writes frames (or garbage) on. */
async function rawClient(server: Extra = {}, onStream: (s: MuxStream) => void = echo) {
  const { clientSocket, serverSocket } = await tlsPair();
  const errors: MuxProtocolError[] = [];
  const accepted: MuxStream[] = [];
  let closed = false;
  const session = new MuxSession(serverSocket, {
    role: 'server', allowHalfOpen: true, ...server,
    onStream: (s) => { accepted.push(s); onStream(s); },
    onProtocolError: (e) => errors.push(e),
    onClose: () => (closed = true),
  });
  const frames: Array<{ type: FrameType; stream: number; payload: Buffer }> = [];
  const reader = new FrameReader({ frame: (type, stream, payload) => frames.push({ type, stream, payload: Buffer.from(payload) }) });
  clientSocket.on('data', (b: Buffer) => reader.push(b));
  let socketClosed = false;
  clientSocket.once('close', () => (socketClosed = true));
  return { clientSocket, session, errors, accepted, frames, isClosed: () => closed, socketClosed: () => socketClosed };
}

function rawFrame(type: number, stream: number, payload: Buffer = Buffer.alloc(0), length = payload.length): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  writeHeader(h, 0, type as FrameType, stream, length);
  return Buffer.concat([h, payload]);
}

test('a peer writing garbage: onProtocolError, the session and its streams close, nothing thrown', async () => {
  const r = await rawClient();
  r.clientSocket.write(rawFrame(DATA, 1, Buffer.from('hi')));
  await eventually(() => r.frames.length === 1, 'the echo');
  const streamClosed = new Promise((res) => r.accepted[0]!.once('close', res));
  r.clientSocket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await eventually(() => r.isClosed() && r.socketClosed(), 'the session closed');
  await streamClosed;
  assert.equal(r.errors.length, 1);
  assert.match(r.errors[0]!.message, /unknown frame type 71/);
});

test('an oversized DATA frame, an even stream id, a zero WINDOW: each closes the session with onProtocolError', async () => {
  for (const [bytes, why] of [
    [rawFrame(DATA, 1, Buffer.alloc(0), 1 << 30), /DATA frame of 1073741824 bytes/],
    [rawFrame(DATA, 2, Buffer.from('x')), /even id/],
    [Buffer.concat([rawFrame(DATA, 1, Buffer.from('x')), rawFrame(WINDOW, 1, u32Payload(0))]), /WINDOW frame of 0 bytes/],
  ] as const) {
    const r = await rawClient();
    r.clientSocket.write(bytes);
    await eventually(() => r.isClosed() && r.socketClosed(), `the session closed (${String(why)})`);
    assert.equal(r.errors.length, 1);
    assert.match(r.errors[0]!.message, why);
  }
});

test('a peer sending past its window gets that stream reset; the others go on', async () => {
  const r = await rawClient({}, (s) => s.pause());
  const chunk = Buffer.alloc(64 * 1024, 1);
  const frames: Buffer[] = [rawFrame(DATA, 1, Buffer.from('other'))];
  for (let sent = 0; sent <= INITIAL_WINDOW; sent += chunk.length) frames.push(rawFrame(DATA, 3, chunk));
  r.clientSocket.write(Buffer.concat(frames));
  await eventually(() => r.frames.some((f) => f.type === RESET && f.stream === 3), 'stream 3 reset');
  assert.equal(r.frames.find((f) => f.type === RESET)!.payload.readUInt32BE(0), 2, 'code 2: protocol');
  assert.equal(r.isClosed(), false);
  assert.equal(r.session.streams, 1, 'stream 1 is still open');
  assert.equal(r.errors.length, 0);
  r.session.destroy();
});

test('idle timeout: a session without streams closes; one with a stream stays until it is over', async () => {
  const idle = await pair({ server: { idleTimeoutMs: 100 } });
  await Promise.all([idle.serverClosed, idle.clientClosed]);

  const busy = await pair({ server: { idleTimeoutMs: 150 }, onStream: (s) => s.on('data', () => {}) });
  const s = busy.client.open()!;
  const result = collect(s);
  s.write('x');
  let closed = false;
  void busy.serverClosed.then(() => (closed = true));
  await tick(400);
  assert.equal(closed, false, 'a stream is open: no idle timeout');
  busy.accepted[0]!.end();
  await result;
  await Promise.all([busy.serverClosed, busy.clientClosed]);
});

test('client side: open() refuses past MAX_CONCURRENT_STREAMS', async () => {
  const p = await pair({ onStream: () => {} });
  const streams: MuxStream[] = [];
  for (let i = 0; i < MAX_CONCURRENT_STREAMS; i++) streams.push(p.client.open()!);
  assert.ok(streams.every((s) => s !== undefined));
  assert.equal(p.client.open(), undefined, 'full');
  streams[0]!.destroy();
  assert.ok(p.client.open(), 'room again');
  p.client.destroy();
});

test('server side: a stream past MAX_CONCURRENT_STREAMS is refused (RESET), the others work', async () => {
  const r = await rawClient({}, (s) => s.on('data', (b: Buffer) => s.write(Buffer.from(b))));
  const opening: Buffer[] = [];
  for (let i = 0; i <= MAX_CONCURRENT_STREAMS; i++) opening.push(rawFrame(DATA, 2 * i + 1, Buffer.from(`s${i}`)));
  r.clientSocket.write(Buffer.concat(opening));
  const refusedId = 2 * MAX_CONCURRENT_STREAMS + 1;
  await eventually(() => r.frames.filter((f) => f.type === DATA).length === MAX_CONCURRENT_STREAMS && r.frames.some((f) => f.type === RESET), 'echoes and one refusal');
  const resets = r.frames.filter((f) => f.type === RESET);
  assert.deepEqual(resets.map((f) => [f.stream, f.payload.readUInt32BE(0)]), [[refusedId, 1]], 'refused: code 1');
  const echoed = r.frames.filter((f) => f.type === DATA);
  assert.ok(echoed.every((f) => f.payload.toString() === `s${(f.stream - 1) / 2}`));
  assert.equal(r.session.streams, MAX_CONCURRENT_STREAMS);
  // One ends: a new stream is taken again.
  r.clientSocket.write(Buffer.concat([rawFrame(RESET, 1, u32Payload(0)), rawFrame(DATA, refusedId + 2, Buffer.from('late'))]));
  await eventually(() => r.frames.some((f) => f.type === DATA && f.stream === refusedId + 2), 'the new stream works');
  assert.equal(r.frames.filter((f) => f.type === RESET).length, 1);
  // Frames for the refused stream are ignored; END on a live one is its half-close.
  r.clientSocket.write(Buffer.concat([rawFrame(DATA, refusedId, Buffer.from('ignored')), rawFrame(END, 3)]));
  await eventually(() => r.accepted[1]!.listenerCount('data') > 0 && r.session.streams === MAX_CONCURRENT_STREAMS, 'table unchanged');
  assert.equal(r.errors.length, 0);
  r.session.destroy();
});

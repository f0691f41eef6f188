// A WebSocket echo application in its own process, for tests through the mesh: it accepts the RFC 6455 opening
// handshake on any path and answers every text message with `<APP_NAME>:<message>`; a close frame is answered
// with one. Small on purpose (text frames up to 64 KiB, no fragmentation, no extensions). Env: APP_NAME,
// APP_HOST, APP_PORT.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { Duplex } from 'node:stream';

const NAME = process.env.APP_NAME ?? 'ws';
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function frame(opcode: number, payload: Buffer): Buffer {
  const head = payload.length < 126 ? Buffer.from([0x80 | opcode, payload.length]) : Buffer.from([0x80 | opcode, 126, payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, payload]);
}

/** Reads client frames (always masked) from `buf`; returns what is left over. */
function serve(socket: Duplex, buf: Buffer): Buffer {
  for (;;) {
    if (buf.length < 2) return buf;
    const opcode = buf[0]! & 0x0f;
    let len = buf[1]! & 0x7f;
    let at = 2;
    if (len === 126) {
      if (buf.length < 4) return buf;
      len = buf.readUInt16BE(2);
      at = 4;
    }
    if (buf.length < at + 4 + len) return buf;
    const mask = buf.subarray(at, at + 4);
    const payload = Buffer.from(buf.subarray(at + 4, at + 4 + len));
    for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
    buf = buf.subarray(at + 4 + len);
    if (opcode === 0x1) socket.write(frame(0x1, Buffer.from(`${NAME}:${payload.toString('utf8')}`)));
    else if (opcode === 0x8) socket.end(frame(0x8, payload.subarray(0, 2)));
    else if (opcode === 0x9) socket.write(frame(0xa, payload));
  }
}

const server = createServer((_req, res) => res.end(`${NAME}: plain HTTP\n`));
server.on('upgrade', (req, socket, head) => {
  const key = req.headers['sec-websocket-key'];
  if (String(req.headers.upgrade).toLowerCase() !== 'websocket' || typeof key !== 'string') {
    socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  const accept = createHash('sha1').update(key + GUID).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  socket.on('error', () => socket.destroy());
  let buf = serve(socket, head);
  socket.on('data', (c: Buffer) => { buf = serve(socket, Buffer.concat([buf, c])); });
});
server.listen(Number(process.env.APP_PORT), process.env.APP_HOST, () => process.stdout.write('app listening\n'));
// Upgraded sockets are no longer the HTTP server's to close: leave at once.
process.on('SIGTERM', () => process.exit(0));

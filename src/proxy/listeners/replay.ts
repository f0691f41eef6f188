// A socket with bytes put back in front: after the listener filters have read the first bytes, TLS must see
// them again. node's TLSSocket reads a net.Socket's handle directly (past anything unshifted), so inspected
// connections go through this small Duplex instead; only listeners that inspect (PERMISSIVE, SNI matches) pay
// for the JS stream.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

export function withReplay(socket: Socket, head: Buffer): Duplex {
  const d = new Duplex({
    allowHalfOpen: false,
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  if (head.length > 0) d.push(head);
  socket.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) socket.pause();
  });
  socket.once('end', () => d.push(null));
  socket.once('close', () => d.destroy());
  socket.on('error', (e) => d.destroy(e));
  return d;
}

// The HTTP connection manager's side of keymesh's multiplexed hop (mux/session.ts): a TLS connection whose ALPN
// chose `keymesh-mux/1` carries many virtual connections, and each is an HTTP/1.1 connection of its own (an
// Http1Session, the same code as for a TCP connection). A drain of the filter chain sends GOAWAY and drains
// every stream's session; the TLS connection closes when the last stream is over. So does a change of the chain's
// TLS material (a rotated certificate, new trust, a new CRL): the client reconnects under the new material, and
// a revoked peer is refused then, instead of riding on a connection made before.
//
// Decided here, not in Envoy (which keeps open connections on a secret update): a multiplexed connection would
// otherwise carry every request of a pair of proxies for as long as both run.
import type { DownstreamConnection } from '../listeners/listener.ts';
import { MuxSession } from '../mux/session.ts';
import { DEFAULT_IDLE_TIMEOUT_MS, Http1Session, type Http1Context } from './http1-session.ts';

export function serveMux(conn: DownstreamConnection, ctx: Http1Context): void {
  const stats = ctx.stats;
  const sessions = new Set<Http1Session>();
  stats.cxMuxTotal.inc();
  stats.cxMuxActive.inc();
  const mux = new MuxSession(conn.socket, {
    role: 'server',
    allowHalfOpen: true,
    idleTimeoutMs: ctx.timeouts?.idleMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    onStream: (stream) => {
      const session = new Http1Session(stream, ctx);
      sessions.add(session);
      stream.once('close', () => sessions.delete(session));
    },
    // Framing a keymesh proxy would never send: counted as the codec's protocol errors are.
    onProtocolError: () => stats.cxProtocolError.inc(),
    onClose: () => stats.cxMuxActive.dec(),
  });
  const drain = () => {
    mux.retire();
    for (const s of [...sessions]) s.drain();
  };
  conn.onDrain(drain);
  const unsubscribe = conn.onTlsMaterialChange?.(drain);
  if (unsubscribe) conn.socket.once('close', unsubscribe);
}

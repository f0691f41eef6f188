// TLS origination to an upstream host, as Envoy's UpstreamTlsContext does it: the proxy's certificate (when
// configured), the peer verified against the trusted CAs, then Envoy's SAN matchers (no hostname check
// otherwise) and the leaf CRL, all inside the handshake so a refused server never sees a request. Sessions
// are resumed per host (fewer full handshakes between sidecars) unless max_session_keys is 0. Counts
// `cluster.<name>.ssl.*` as Envoy.
import { createHash, X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { StatsScope } from '../admin/stats.ts';
import type { UpstreamTls } from './compile.ts';
import type { TlsProvider } from './provider.ts';
import { sansMatch, sansOf } from './san.ts';

export interface UpstreamTlsCounters {
  readonly handshake: ReturnType<StatsScope['counter']>;
  readonly connectionError: ReturnType<StatsScope['counter']>;
  readonly failVerifyError: ReturnType<StatsScope['counter']>;
  readonly failVerifySan: ReturnType<StatsScope['counter']>;
  readonly sessionReused: ReturnType<StatsScope['counter']>;
}

/** `cluster.<name>.ssl.*` */
export function upstreamTlsCounters(cluster: StatsScope): UpstreamTlsCounters {
  const ssl = cluster.scope('ssl');
  return {
    handshake: ssl.counter('handshake'),
    connectionError: ssl.counter('connection_error'),
    failVerifyError: ssl.counter('fail_verify_error'),
    failVerifySan: ssl.counter('fail_verify_san'),
    sessionReused: ssl.counter('session_reused'),
  };
}

class SanMismatch extends Error {
  constructor(sans: string) {
    super(`the upstream certificate's SANs (${sans || 'none'}) match none of the configured ones`);
  }
}

class RevokedPeer extends Error {}

/** Per host:port, the last TLS session, for resumption. */
export class SessionCache {
  readonly #sessions = new Map<string, Buffer>();

  get(key: string): Buffer | undefined {
    return this.#sessions.get(key);
  }

  set(key: string, session: Buffer): void {
    if (this.#sessions.size >= 1024 && !this.#sessions.has(key)) this.#sessions.delete(this.#sessions.keys().next().value!);
    this.#sessions.set(key, session);
  }
}

export interface DialOptions {
  readonly tls: UpstreamTls;
  readonly provider: TlsProvider;
  readonly counters: UpstreamTlsCounters;
  readonly sessions: SessionCache;
  /** An already connected TCP socket to the host. */
  readonly socket: Socket;
  readonly host: string;
  readonly port: number;
  readonly alpn?: readonly string[];
}

/** Resolves with the TLS socket once the handshake and Envoy's checks passed; rejects with why not. */
export function dialTls(o: DialOptions): Promise<TLSSocket> {
  const provided = o.provider.get(o.tls);
  if (!provided.ok) {
    o.counters.connectionError.inc();
    o.socket.destroy();
    return Promise.reject(new Error(`TLS material for the upstream is missing: ${provided.missing}`));
  }
  const m = provided.material;
  // A session is only resumed under exactly the material and checks it was made with: a changed certificate,
  // trust or SAN list must not ride on an old session.
  // max_session_keys 0: no resumption at all, neither a session offered nor one kept (every handshake is full).
  const resume = o.tls.maxSessionKeys > 0;
  const sessionKey = resume ? `${o.host}:${o.port}|${o.tls.sni ?? ''}|${createHash('sha256').update(m.key).update(sanKey(o.tls)).digest('hex')}` : '';
  const session = resume ? o.sessions.get(sessionKey) : undefined;
  return new Promise((resolve, reject) => {
    let verifyProblem: 'san' | 'error' | undefined;
    const peerProblem = (x: X509Certificate): Error | undefined => {
      if (m.crl?.revoked(x)) return new RevokedPeer(`the upstream certificate (serial ${x.serialNumber}) is revoked`);
      if (o.tls.validation && !sansMatch(o.tls.validation.sans, sansOf(x))) return new SanMismatch(x.subjectAltName ?? '');
      return undefined;
    };
    const tlsSocket = connect({
      socket: o.socket,
      secureContext: provided.context,
      ...(o.tls.sni ? { servername: o.tls.sni } : {}),
      ...(session ? { session } : {}),
      ...(o.alpn && o.alpn.length > 0 ? { ALPNProtocols: [...o.alpn] } : o.tls.alpn.length > 0 ? { ALPNProtocols: [...o.tls.alpn] } : {}),
      minVersion: m.minVersion,
      maxVersion: m.maxVersion,
      // Without trust Envoy does not verify the server; with it, OpenSSL verifies the chain in the handshake.
      rejectUnauthorized: m.caPem !== undefined,
      checkServerIdentity: (_host: string, cert: PeerCertificate) => {
        if (!cert.raw) return undefined;
        const problem = peerProblem(new X509Certificate(cert.raw));
        if (problem) verifyProblem = problem instanceof SanMismatch ? 'san' : 'error';
        return problem;
      },
    });
    if (resume) tlsSocket.on('session', (s: Buffer) => o.sessions.set(sessionKey, s));
    const onError = (e: Error & { code?: string }) => {
      if (verifyProblem === 'san') o.counters.failVerifySan.inc();
      else if (verifyProblem === 'error' || /CERT|VERIFY|ISSUER|SELF_SIGNED/i.test(e.code ?? '')) o.counters.failVerifyError.inc();
      else o.counters.connectionError.inc();
      tlsSocket.destroy();
      reject(e);
    };
    tlsSocket.once('error', onError);
    tlsSocket.once('secureConnect', () => {
      if (tlsSocket.isSessionReused()) {
        // node skips checkServerIdentity on a resumed session: the checks run here instead.
        const peer = tlsSocket.getPeerX509Certificate();
        const problem = peer ? peerProblem(peer) : undefined;
        if (problem) {
          verifyProblem = problem instanceof SanMismatch ? 'san' : 'error';
          onError(problem);
          return;
        }
        o.counters.sessionReused.inc();
      }
      tlsSocket.off('error', onError);
      o.counters.handshake.inc();
      resolve(tlsSocket);
    });
  });
}

/** The SAN checks of a context, as part of its session key. */
function sanKey(tls: UpstreamTls): string {
  return JSON.stringify(tls.validation?.sans ?? [], (_k, v: unknown) => (v instanceof RegExp ? v.source : v));
}

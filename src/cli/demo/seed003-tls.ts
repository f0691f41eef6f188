// Seed 003's last check, `curl -k https://color-blue...:8080 -v` from outside the mesh, done with node:tls: a
// TLS client that trusts anything (-k) and has no certificate to present. Against a STRICT listener that
// requires a client certificate the handshake must end in the server's alert, as the seed's curl shows
// ("sslv3 alert handshake failure"); anything else (an answer, a connection cut without an alert) is reported
// as it is, for the walkthrough to refuse.
import { connect, type ConnectionOptions, type SecureVersion } from 'node:tls';

export interface TlsProbeResult {
  /** `alert`: the server refused the handshake with a TLS alert; `answered`: it served an HTTP request. */
  readonly outcome: 'alert' | 'answered' | 'closed';
  /** The TLS alert's number (40 handshake_failure, 116 certificate_required), when there was one. */
  readonly alert?: number;
  /** Whether the client got as far as a completed handshake (TLS 1.3 completes before the server's verdict). */
  readonly handshakeCompleted: boolean;
  /** OpenSSL's words for what happened, or the HTTP status line. */
  readonly detail: string;
}

/** A TLS client without a certificate (as curl -k without --cert), sending `GET /` once connected. */
export function probeWithoutClientCertificate(host: string, port: number, o: { maxVersion?: SecureVersion; timeoutMs?: number } = {}): Promise<TlsProbeResult> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  return new Promise((resolve) => {
    let handshakeCompleted = false;
    let received = '';
    const options: ConnectionOptions = { host, port, rejectUnauthorized: false, ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}) };
    const socket = connect(options, () => {
      handshakeCompleted = true;
      socket.write(`GET / HTTP/1.1\r\nhost: ${host}:${port}\r\nuser-agent: keymesh-demo\r\nconnection: close\r\n\r\n`);
    });
    const done = (r: TlsProbeResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ outcome: 'closed', handshakeCompleted, detail: `no verdict in ${timeoutMs / 1000} s` }), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => { received += d; });
    socket.on('error', (e: Error & { code?: string }) => {
      const alert = /SSL alert number (\d+)/.exec(e.message)?.[1];
      const words = /:([^:]*alert[^:]*):/.exec(e.message)?.[1] ?? e.message.split('\n')[0]!;
      done(alert !== undefined
        ? { outcome: 'alert', alert: Number(alert), handshakeCompleted, detail: `${words.trim()} (SSL alert number ${alert})` }
        : { outcome: 'closed', handshakeCompleted, detail: `${e.code ?? 'error'}: ${e.message.split('\n')[0]!}` });
    });
    socket.on('close', () => {
      const status = received.split('\r\n')[0] ?? '';
      done(status.startsWith('HTTP/') ? { outcome: 'answered', handshakeCompleted, detail: status } : { outcome: 'closed', handshakeCompleted, detail: 'the server closed the connection without an alert' });
    });
  });
}

/** The probe's result as curl would say it: `curl: (35) ... alert handshake failure` and the like. */
export function describeProbe(r: TlsProbeResult): string {
  if (r.outcome === 'answered') return `the server answered: ${r.detail}`;
  if (r.outcome === 'alert') return `${r.handshakeCompleted ? 'right after the handshake' : 'TLS handshake failed'}: ${r.detail}`;
  return `${r.handshakeCompleted ? 'after the handshake' : 'during the handshake'}: ${r.detail}`;
}

// The walkthrough's own TLS client, for what the seed asks to confirm by hand: does the server's ingress offer
// TLS with a certificate the mesh's CA vouches for, under the expected name, and does it accept (or refuse) a
// given client certificate? One connection: the handshake, then one HTTP/1.1 GET over it. With TLS 1.3 the server
// judges the client certificate after the client's side of the handshake is done, so a refusal shows as an
// alert or a reset on that request, not in the handshake: only the answer tells.
import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';

export interface TlsProbeOptions {
  readonly host: string;
  readonly port: number;
  /** The CA file to verify the server's certificate with. */
  readonly caFile: string;
  /** The DNS name the server's certificate must carry (also sent as SNI). */
  readonly servername: string;
  /** A client certificate to present (chain and key files), or none. */
  readonly client?: { readonly certFile: string; readonly keyFile: string };
  readonly timeoutMs?: number;
}

export type TlsProbeResult =
  | { readonly ok: true; readonly protocol: string; readonly serverSans: string; readonly status: number; readonly body: string }
  | { readonly ok: false; readonly stage: 'handshake' | 'request'; readonly error: string };

/** Connects, verifies the server, sends `GET /` and reads the answer (the connection is closed after it). */
export function tlsProbe(o: TlsProbeOptions): Promise<TlsProbeResult> {
  const timeoutMs = o.timeoutMs ?? 5_000;
  return new Promise((resolve) => {
    let settled = false;
    let handshaken = false;
    let protocol = '';
    let serverSans = '';
    let answer = '';
    const done = (r: TlsProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const socket = connect({
      host: o.host,
      port: o.port,
      servername: o.servername,
      ca: readFileSync(o.caFile),
      ...(o.client ? { cert: readFileSync(o.client.certFile), key: readFileSync(o.client.keyFile) } : {}),
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
    });
    const timer = setTimeout(() => done({ ok: false, stage: handshaken ? 'request' : 'handshake', error: `no answer in ${timeoutMs} ms` }), timeoutMs);
    socket.once('secureConnect', () => {
      handshaken = true;
      protocol = socket.getProtocol() ?? '';
      serverSans = socket.getPeerX509Certificate()?.subjectAltName ?? '';
      // `connection: close`: the server ends the connection after its answer, which marks the answer's end.
      socket.write(`GET / HTTP/1.1\r\nhost: ${o.servername}\r\nuser-agent: keymesh-demo-probe\r\nconnection: close\r\n\r\n`);
    });
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => { answer += d; });
    socket.once('end', () => {
      const m = /^HTTP\/1\.1 (\d{3})[^\r\n]*\r\n[\s\S]*?\r\n\r\n([\s\S]*)$/.exec(answer);
      if (!m) done({ ok: false, stage: handshaken ? 'request' : 'handshake', error: answer === '' ? 'the server closed the connection without answering' : `not an HTTP answer: ${JSON.stringify(answer.slice(0, 80))}` });
      else done({ ok: true, protocol, serverSans, status: Number(m[1]), body: m[2]! });
    });
    // OpenSSL's messages run long; its code (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED) says it.
    socket.once('error', (e: NodeJS.ErrnoException) => done({ ok: false, stage: handshaken ? 'request' : 'handshake', error: e.code?.startsWith('ERR_SSL_') ? e.code : e.message }));
  });
}

/** `TLSv1.3, server DNS:backend.my-mesh.local, 200 backend` or `refused (request): ...`. */
export function describeProbe(r: TlsProbeResult): string {
  if (!r.ok) return `refused (${r.stage}): ${r.error}`;
  return `${r.protocol}, server ${r.serverSans}, ${r.status} ${r.body.trim()}`;
}

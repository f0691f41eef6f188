// A request straight to a TLS listener on a new connection, trusting only the given CA and checking the server
// name, the way `curl --cacert ca.pem --resolve NAME:PORT:IP https://NAME:PORT/PATH` does: it tells which
// certificate a new handshake gets (its serial), so a renewal can be watched from outside the proxy.
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface TlsAnswer {
  /** The HTTP status, or 0 when there was none (handshake refused, certificate not trusted, reset...). */
  readonly status: number;
  readonly body: string;
  /** The serial of the certificate the server presented, as /certs prints it (lowercase hex, no leading zeros). */
  readonly serial?: string;
  readonly error?: string;
}

export interface TlsTarget {
  /** The address to connect to (curl's --resolve). */
  readonly ip: string;
  readonly port: number;
  /** The name sent as SNI and checked against the certificate. */
  readonly serverName: string;
  /** The only CA trusted (PEM). */
  readonly caPem: string;
}

/** `7B0F…` or `007b…` → `7b0f…`: Node's serial as Envoy's /certs writes it. */
export function normalizeSerial(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '');
}

/** GET `path` over TLS on a new connection (no pooling, so every call is a handshake), bounded by `timeoutMs`. */
export function httpsGet(target: TlsTarget, path: string, timeoutMs = 10_000): Promise<TlsAnswer> {
  return new Promise((resolve) => {
    let serial: string | undefined;
    const req = request({
      host: target.ip, port: target.port, path, servername: target.serverName, ca: target.caPem, agent: false,
      headers: { host: `${target.serverName}:${target.port}`, 'user-agent': 'keymesh-demo' },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ...(serial !== undefined ? { serial } : {}) }));
      res.on('error', (e) => resolve({ status: 0, body, error: e.message }));
    });
    req.on('socket', (socket) => {
      socket.once('secureConnect', () => {
        const peer = (socket as TLSSocket).getPeerCertificate();
        if (peer.serialNumber) serial = normalizeSerial(peer.serialNumber);
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs / 1000} s`)));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, body: '', error: e.code ? `${e.code}: ${e.message}` : e.message }));
    req.end();
  });
}

/** The `curl` line httpsGet stands for. */
export function curlLine(target: TlsTarget, caFile: string, path: string): string {
  return `curl --cacert ${caFile} --resolve ${target.serverName}:${target.port}:${target.ip} https://${target.serverName}:${target.port}${path}`;
}

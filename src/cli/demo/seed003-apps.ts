// Seed 003's applications: red, green and blue answer their color; front asks the color service for one,
// passing on the caller's `color_header`, and answers what it got. Front sends its request to its sidecar's
// egress listener with the service's name in Host, which is what App Mesh's iptables rules made of its
// request to color.howto-k8s-mtls-sds-based.svc.cluster.local:8080: the sidecar routes by Host and header.
import { request, type IncomingMessage, type ServerResponse } from 'node:http';

/** How long front waits for the color service (the sidecar's route timeout is 15 s). */
const UPSTREAM_TIMEOUT_MS = 20_000;

/** A color app: its color on every path, `pong` on /ping (as the seed's colorteller). */
export function colorApp(color: string): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(req.url === '/ping' ? 'pong' : color);
  };
}

export interface FrontTarget {
  /** The sidecar's egress listener. */
  readonly egressHost: string;
  readonly egressPort: number;
  /** `color.<namespace>.svc.cluster.local:8080`: what the app would have dialed. */
  readonly serviceAuthority: string;
  /** The header passed on to the color service. */
  readonly header: string;
}

/** Front: the color service's answer (status and body), or 502 saying why there was none. */
export function frontApp(t: FrontTarget): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.url === '/ping') {
      res.end('pong');
      return;
    }
    const value = req.headers[t.header];
    const upstream = request({
      host: t.egressHost, port: t.egressPort, path: '/', method: 'GET', agent: false,
      headers: { host: t.serviceAuthority, ...(value !== undefined ? { [t.header]: value } : {}) },
    }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, { 'content-type': answer.headers['content-type'] ?? 'text/plain' });
      answer.pipe(res);
    });
    upstream.setTimeout(UPSTREAM_TIMEOUT_MS, () => upstream.destroy(new Error(`no answer in ${UPSTREAM_TIMEOUT_MS / 1000} s`)));
    upstream.on('error', (e) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`front: the color service at ${t.serviceAuthority} (via ${t.egressHost}:${t.egressPort}) failed: ${e.message}`);
    });
    upstream.end();
  };
}

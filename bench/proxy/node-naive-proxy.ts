// The "straightforward Node proxy" of issue 5, one process per side: `node node-naive-proxy.ts '<json>'`.
//
// client side: http.createServer → https.request (an https.Agent holding the client certificate, trusting the
//              bench CA, checking the server's DNS name; keep-alive pool in "reuse" mode, no pool and no TLS
//              session cache in "handshake" mode)
// server side: https.createServer (requestCert + rejectUnauthorized against the bench CA) → http.request to
//              the app (keep-alive pool); a second, plaintext listener on statsPort answers with the number of
//              TLS connections accepted so far.
// Hop-by-hop headers (RFC 9110 §7.6.1) are dropped in both directions, as any HTTP proxy must; nothing else.
import { readFileSync } from 'node:fs';
import { constants } from 'node:crypto';
import { Agent as HttpAgent, createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, createServer as createHttpsServer, request as httpsRequest } from 'node:https';

interface Config {
  readonly role: 'client' | 'server';
  readonly mode: 'reuse' | 'handshake';
  readonly listenPort: number;
  readonly upstreamPort: number;
  readonly statsPort?: number;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly serverName: string;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  const named = new Set(String(headers.connection ?? '').toLowerCase().split(',').map((s) => s.trim()));
  for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k) && !named.has(k)) out[k] = v;
  return out;
}

function relay(req: IncomingMessage, res: ServerResponse, send: (cb: (up: IncomingMessage) => void) => ReturnType<typeof httpRequest>): void {
  const up = send((ur) => {
    res.writeHead(ur.statusCode ?? 502, endToEnd(ur.headers));
    ur.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(up);
}

const ca = readFileSync(cfg.caFile);
const cert = readFileSync(cfg.certFile);
const key = readFileSync(cfg.keyFile);
const reuse = cfg.mode === 'reuse';

if (cfg.role === 'client') {
  const agent = new HttpsAgent({
    keepAlive: reuse, maxFreeSockets: 256, ca, cert, key, servername: cfg.serverName,
    minVersion: 'TLSv1.3', ecdhCurve: 'X25519', maxCachedSessions: reuse ? 100 : 0,
  });
  createHttpServer({ keepAliveTimeout: 75_000 }, (req, res) => {
    relay(req, res, (cb) => httpsRequest({ host: '127.0.0.1', port: cfg.upstreamPort, method: req.method, path: req.url, headers: endToEnd(req.headers), agent }, cb));
  }).listen(cfg.listenPort, '127.0.0.1');
} else {
  const agent = new HttpAgent({ keepAlive: true, maxFreeSockets: 256 });
  let accepted = 0;
  const server = createHttpsServer({
    ca, cert, key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3', ecdhCurve: 'X25519',
    keepAliveTimeout: 75_000,
    // No session tickets in handshake mode, so every connection is a full handshake.
    ...(reuse ? {} : { secureOptions: constants.SSL_OP_NO_TICKET }),
  }, (req, res) => {
    relay(req, res, (cb) => httpRequest({ host: '127.0.0.1', port: cfg.upstreamPort, method: req.method, path: req.url, headers: endToEnd(req.headers), agent }, cb));
  });
  server.on('secureConnection', () => accepted++);
  server.listen(cfg.listenPort, '127.0.0.1');
  if (cfg.statsPort) createHttpServer((_req, res) => res.end(`${accepted}\n`)).listen(cfg.statsPort, '127.0.0.1');
}
process.on('SIGTERM', () => process.exit(0));

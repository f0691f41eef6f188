// The haproxy pair: two haproxy processes, each `nbthread 1` in the foreground (-db: no master, no fork).
//
// client side: `bind` plaintext → backend whose server line is `ssl verify required ca-file <CA> crt <client
//              cert+key> sni str(<name>) verifyhost <name> ssl-min-ver TLSv1.3`. reuse mode: `http-reuse
//              always` (idle server connections shared by all client connections, TLS sessions resumed on
//              reconnect); handshake mode: `http-reuse never`, `option http-server-close` (server connection
//              closed after each response) and `no-ssl-reuse`, plus `tune.ssl.cachesize 0`.
// server side: `bind ... ssl crt <server cert+key> ca-file <CA> verify required ssl-min-ver TLSv1.3 curves
//              X25519` → the app with `http-reuse always`. handshake mode: `no-tls-tickets` and
//              `tune.ssl.cachesize 0` (every connection a full handshake). A stats socket reports the
//              frontend's accepted connections.
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { PairSetup } from '../harness.ts';
import { versionOf } from '../tools.ts';

/** `show stat` on haproxy's stats socket: the `conn_tot` of frontend `name`. */
function frontendConnections(socketPath: string, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = connect({ path: socketPath });
    let text = '';
    s.setTimeout(5_000, () => s.destroy(new Error('stats socket timed out')));
    s.on('connect', () => s.write('show stat\n'));
    s.on('data', (b: Buffer) => (text += b.toString('utf8')));
    s.on('error', reject);
    s.on('close', () => {
      const lines = text.split('\n');
      const head = (lines[0] ?? '').replace(/^# /, '').split(',');
      const col = head.indexOf('conn_tot');
      const row = lines.map((l) => l.split(',')).find((f) => f[0] === name && f[1] === 'FRONTEND');
      const v = row && col >= 0 ? Number(row[col]) : Number.NaN;
      if (Number.isFinite(v)) resolve(v);
      else reject(new Error(`no conn_tot for frontend ${name} in: ${text.slice(0, 500)}`));
    });
  });
}

const DEFAULTS = [
  'defaults',
  '  mode http',
  '  option http-keep-alive',
  '  timeout connect 5s',
  '  timeout client 75s',
  '  timeout server 75s',
  '  timeout http-keep-alive 75s',
  '  timeout http-request 10s',
];

export const haproxyPair: PairSetup = {
  name: 'haproxy',
  description: 'haproxy → mTLS → haproxy (nbthread 1 each)',
  requires: ['haproxy'],
  async startPair(ctx) {
    const haproxy = ctx.tools.get('haproxy') as string;
    const reuse = ctx.mode === 'reuse';
    const [entryPort, mtlsPort] = [await ctx.freePort(), await ctx.freePort()];
    const c = ctx.certs;
    const statsSocket = join(ctx.dir, 'server-side.sock');
    const global = (extra: string[]) => [
      'global',
      '  nbthread 1',
      '  maxconn 8192',
      ...(reuse ? [] : ['  tune.ssl.cachesize 0']),
      ...extra,
    ];

    const server = [
      ...global([`  stats socket ${statsSocket} mode 600 level user`]),
      ...DEFAULTS,
      'frontend mtls',
      `  bind 127.0.0.1:${mtlsPort} ssl crt ${c.serverBundle} ca-file ${c.caFile} verify required ssl-min-ver TLSv1.3 curves X25519${reuse ? '' : ' no-tls-tickets'}`,
      '  default_backend app',
      'backend app',
      '  http-reuse always',
      `  server app 127.0.0.1:${ctx.app.port}`,
      '',
    ].join('\n');

    const client = [
      ...global(['  ssl-server-verify required']),
      ...DEFAULTS,
      'frontend entry',
      `  bind 127.0.0.1:${entryPort}`,
      '  default_backend server_side',
      'backend server_side',
      ...(reuse ? ['  http-reuse always'] : ['  http-reuse never', '  option http-server-close']),
      `  server sidecar 127.0.0.1:${mtlsPort} ssl verify required ca-file ${c.caFile} crt ${c.clientBundle} sni str(${c.serverName}) verifyhost ${c.serverName} ssl-min-ver TLSv1.3${reuse ? '' : ' no-ssl-reuse'}`,
      '',
    ].join('\n');

    const serverConf = join(ctx.dir, 'server.cfg');
    const clientConf = join(ctx.dir, 'client.cfg');
    writeFileSync(serverConf, server);
    writeFileSync(clientConf, client);
    const serverProc = ctx.spawn('haproxy server side', haproxy, ['-db', '-f', serverConf]);
    await ctx.waitForPort(mtlsPort, serverProc);
    const clientProc = ctx.spawn('haproxy client side', haproxy, ['-db', '-f', clientConf]);
    await ctx.waitForPort(entryPort, clientProc);
    return {
      entryPort, mtlsPort,
      pids: { client: clientProc.pid, server: serverProc.pid },
      acceptedMtlsConnections: () => frontendConnections(statsSocket, 'mtls'),
      version: versionOf(haproxy, '-v'),
      config: { 'client.cfg': client, 'server.cfg': server },
      async stop() {
        // The harness ends both processes (SIGTERM, then SIGKILL if needed).
      },
    };
  },
};

// The nginx pair: two nginx processes (master + ONE worker each), configured as an nginx user would set up a
// sidecar pair with mTLS between them.
//
// client side: plaintext listener → proxy_pass https://<upstream> with the client certificate, the bench CA as
//              trust anchor, proxy_ssl_verify on + proxy_ssl_name (DNS SAN of the server cert, also sent as
//              SNI), TLS 1.3 only, X25519. reuse mode: an upstream keepalive pool (HTTP/1.1, Connection ""
//              cleared) and proxy_ssl_session_reuse on; handshake mode: no pool, proxy_ssl_session_reuse off.
// server side: `listen ssl` with ssl_verify_client on against the bench CA, TLS 1.3, X25519 → proxy_pass to
//              the app over a keepalive pool. reuse mode: shared session cache + tickets (nginx's usual
//              setup); handshake mode: ssl_session_cache off + ssl_session_tickets off (every connection a full
//              handshake). A stub_status listener reports accepted connections.
// Both: keepalive_requests raised from nginx's default of 1,000 (a sidecar must not drop its pooled
// connection every 1,000 requests), access_log off, responses never spooled to disk.
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { nginxArgs, nginxHead, nginxHttpCommon } from '../app.ts';
import type { PairSetup } from '../harness.ts';
import { versionOf } from '../tools.ts';

/** Connections accepted so far by the nginx whose stub_status listens on `port` (minus this query). */
function stubStatusAccepts(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5_000 }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString('utf8')));
      res.on('end', () => {
        const m = /server accepts handled requests\s+(\d+)/.exec(text);
        if (m) resolve(Number(m[1]) - 1);
        else reject(new Error(`unexpected stub_status output: ${text}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error('stub_status timed out')));
    req.on('error', reject);
    req.end();
  });
}

export const nginxPair: PairSetup = {
  name: 'nginx',
  description: 'nginx → mTLS → nginx (1 worker each)',
  requires: ['nginx'],
  async startPair(ctx) {
    const nginx = ctx.tools.get('nginx') as string;
    const reuse = ctx.mode === 'reuse';
    const [entryPort, mtlsPort, statsPort] = [await ctx.freePort(), await ctx.freePort(), await ctx.freePort()];
    const c = ctx.certs;
    const pool = (n: number) => [`    keepalive ${n};`, '    keepalive_requests 1000000;', '    keepalive_timeout 75s;'];

    const server = [
      nginxHead(ctx.dir, 'server'),
      'http {',
      nginxHttpCommon(ctx.dir),
      '  upstream app {',
      `    server 127.0.0.1:${ctx.app.port};`,
      ...pool(64),
      '  }',
      '  server {',
      `    listen 127.0.0.1:${mtlsPort} ssl backlog=4096;`,
      `    ssl_certificate ${c.serverCert};`,
      `    ssl_certificate_key ${c.serverKey};`,
      `    ssl_client_certificate ${c.caFile};`,
      '    ssl_verify_client on;',
      '    ssl_verify_depth 2;',
      '    ssl_protocols TLSv1.3;',
      '    ssl_ecdh_curve X25519;',
      ...(reuse
        ? ['    ssl_session_cache shared:SSL:4m;', '    ssl_session_timeout 1h;']
        : ['    ssl_session_cache off;', '    ssl_session_tickets off;']),
      '    location / {',
      '      proxy_pass http://app;',
      '      proxy_http_version 1.1;',
      '      proxy_set_header Connection "";',
      '      proxy_max_temp_file_size 0;',
      '    }',
      '  }',
      '  server {',
      `    listen 127.0.0.1:${statsPort};`,
      '    location / { stub_status; }',
      '  }',
      '}',
      '',
    ].join('\n');

    const client = [
      nginxHead(ctx.dir, 'client'),
      'http {',
      nginxHttpCommon(ctx.dir),
      '  upstream server_side {',
      `    server 127.0.0.1:${mtlsPort};`,
      ...(reuse ? pool(64) : []),
      '  }',
      '  server {',
      `    listen 127.0.0.1:${entryPort} backlog=4096;`,
      '    location / {',
      '      proxy_pass https://server_side;',
      '      proxy_http_version 1.1;',
      '      proxy_set_header Connection "";',
      `      proxy_ssl_certificate ${c.clientCert};`,
      `      proxy_ssl_certificate_key ${c.clientKey};`,
      `      proxy_ssl_trusted_certificate ${c.caFile};`,
      '      proxy_ssl_verify on;',
      '      proxy_ssl_verify_depth 2;',
      `      proxy_ssl_name ${c.serverName};`,
      '      proxy_ssl_server_name on;',
      '      proxy_ssl_protocols TLSv1.3;',
      '      proxy_ssl_conf_command Groups X25519;',
      `      proxy_ssl_session_reuse ${reuse ? 'on' : 'off'};`,
      '      proxy_max_temp_file_size 0;',
      '    }',
      '  }',
      '}',
      '',
    ].join('\n');

    const serverConf = join(ctx.dir, 'server.conf');
    const clientConf = join(ctx.dir, 'client.conf');
    writeFileSync(serverConf, server);
    writeFileSync(clientConf, client);
    const serverProc = ctx.spawn('nginx server side', nginx, nginxArgs(ctx.dir, serverConf));
    await ctx.waitForPort(mtlsPort, serverProc);
    const clientProc = ctx.spawn('nginx client side', nginx, nginxArgs(ctx.dir, clientConf));
    await ctx.waitForPort(entryPort, clientProc);
    return {
      entryPort, mtlsPort,
      pids: { client: clientProc.pid, server: serverProc.pid },
      acceptedMtlsConnections: () => stubStatusAccepts(statsPort),
      version: versionOf(nginx, '-v'),
      config: { 'client.conf': client, 'server.conf': server },
      async stop() {
        // The harness ends both process groups (SIGTERM: nginx's fast shutdown, then SIGKILL if needed).
      },
    };
  },
};

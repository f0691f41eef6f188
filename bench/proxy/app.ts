// The upstream application behind every pair: a minimal HTTP/1.1 server answering every request with the same
// small body. Two implementations, chosen with --app: nginx with `return 200` (the default when nginx is
// installed: it needs the least CPU per request, which matters when app, proxies and load generator share two
// CPUs) and a Node http server (app-server.ts), the fallback when nginx is missing. One process each (nginx:
// master + one worker), keep-alive with no per-connection request limit.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitForPort, type ManagedProcess, type Supervisor } from './procs.ts';

export type AppKind = 'nginx' | 'node';

/** The response body: "ok\n" for 3 bytes, otherwise `bytes - 1` x's and a newline. */
export function appBody(bytes: number): string {
  return bytes === 3 ? 'ok\n' : `${'x'.repeat(Math.max(0, bytes - 1))}\n`;
}

export interface StartedApp {
  readonly kind: AppKind;
  readonly port: number;
  readonly proc: ManagedProcess;
}

/** The lines every nginx of the bench starts with: one worker, no daemon, files in `dir`, errors on stderr. */
export function nginxHead(dir: string, name: string): string {
  return [
    'worker_processes 1;',
    'worker_rlimit_nofile 16384;',
    `pid ${join(dir, `${name}.pid`)};`,
    'error_log stderr warn;',
    'events { worker_connections 4096; }',
  ].join('\n');
}

/** http{}-level lines every nginx of the bench has: no access log, temp files in `dir`, long keep-alive. */
export function nginxHttpCommon(dir: string): string {
  return [
    '  access_log off;',
    `  client_body_temp_path ${join(dir, 'client_body')};`,
    `  proxy_temp_path ${join(dir, 'proxy')};`,
    `  fastcgi_temp_path ${join(dir, 'fastcgi')};`,
    `  uwsgi_temp_path ${join(dir, 'uwsgi')};`,
    `  scgi_temp_path ${join(dir, 'scgi')};`,
    // nginx closes a client connection after 1,000 requests by default; a sidecar keeps it.
    '  keepalive_requests 1000000;',
    '  keepalive_timeout 75s;',
  ].join('\n');
}

/** Arguments to run nginx in the foreground with `conf`, its prefix and early error log in `dir`. */
export function nginxArgs(dir: string, conf: string): string[] {
  return ['-p', dir, '-e', 'stderr', '-c', conf, '-g', 'daemon off;'];
}

function nginxString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

export async function startApp(sup: Supervisor, kind: AppKind, dir: string, bodyBytes: number, nginx: string | undefined): Promise<StartedApp> {
  const port = await freePort();
  let proc: ManagedProcess;
  if (kind === 'nginx') {
    if (!nginx) throw new Error('--app nginx: nginx is not installed');
    const conf = join(dir, 'app-nginx.conf');
    writeFileSync(conf, [
      nginxHead(dir, 'app'),
      'http {',
      nginxHttpCommon(dir),
      '  default_type text/plain;',
      '  server {',
      `    listen 127.0.0.1:${port} backlog=4096;`,
      `    location / { return 200 ${nginxString(appBody(bodyBytes))}; }`,
      '  }',
      '}',
      '',
    ].join('\n'));
    proc = sup.spawn('app (nginx)', nginx, nginxArgs(dir, conf));
  } else {
    proc = sup.spawn('app (node)', process.execPath, [fileURLToPath(new URL('./app-server.ts', import.meta.url)), String(port), String(bodyBytes)]);
  }
  await waitForPort(port, { proc });
  return { kind, port, proc };
}

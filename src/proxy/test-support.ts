// Small helpers shared by the proxy's tests (none of it runs in the proxy): free ports, bounded polling, and
// the Envoy objects a test listener is built from.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';

/** A port free on 127.0.0.1 right now (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves when `check` holds, polling every 10 ms; fails naming `what` after `ms`. */
export async function eventually(check: () => boolean, what = 'the condition', ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An http_connection_manager network filter with the router, its routes from RDS `routeConfigName`. */
export function httpConnectionManagerFilter(statPrefix: string, codecType: 'AUTO' | 'HTTP1' | 'HTTP2' = 'AUTO', routeConfigName = 'rds') {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typedConfig: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      statPrefix, codecType, rds: { routeConfigName, configSource: { ads: {}, resourceApiVersion: 'V3' } },
      httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
    },
  };
}

export const TLS_INSPECTOR_FILTER = {
  name: 'envoy.filters.listener.tls_inspector',
  typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' },
};

/** A real client program (curl, openssl), asynchronously, `input` on its stdin: exit code and stdout+stderr; killed after 15 s. */
export function runProgram(cmd: string, args: readonly string[], input = ''): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += String(d); });
    p.stderr.on('data', (d) => { out += String(d); });
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
    p.stdin.on('error', () => {});
    p.stdin.end(input);
  });
}

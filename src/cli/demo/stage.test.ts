import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { permittedPort } from './stage.ts';

/** The lowest port an unprivileged user may listen on (Linux; elsewhere assumed open, as on macOS). */
function unprivilegedPortStart(): number {
  const file = '/proc/sys/net/ipv4/ip_unprivileged_port_start';
  return existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0;
}

test('permittedPort: port 80 for a user who may listen on it, the fallback for one who may not', async () => {
  // Run as an unprivileged user: as root, drop to nobody for real.
  const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const script = `import { permittedPort } from ${JSON.stringify(new URL('./stage.ts', import.meta.url).href)};
    console.log(await permittedPort('127.0.0.1', 80, 8080));`;
  const out = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { ...asUser, timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(stdout.trim());
    });
  });
  assert.equal(out, unprivilegedPortStart() <= 80 ? '80' : '8080');
});

test('permittedPort: a port merely in use keeps the preferred one (the address search moves on instead)', async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    assert.equal(await permittedPort('127.0.0.1', port, 8080), port);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

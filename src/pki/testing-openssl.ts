// Test support (not part of pki): runs the real `openssl` command line against files keymesh produced,
// so tests check interoperability rather than keymesh agreeing with itself.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OpensslResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout and stderr together, for matching messages that OpenSSL prints on either. */
  readonly output: string;
}

export function openssl(args: readonly string[], opts: { cwd?: string; input?: string } = {}): OpensslResult {
  const r = spawnSync('openssl', args, { cwd: opts.cwd, input: opts.input, encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, output: `${r.stdout}${r.stderr}` };
}

/** Like openssl(), but fails the test with OpenSSL's own output when the command does not succeed. */
export function opensslOk(args: readonly string[], opts: { cwd?: string; input?: string } = {}): string {
  const r = openssl(args, opts);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.status}:\n${r.output}`);
  return r.stdout;
}

/** A scratch directory removed after `fn`, with a helper that writes a file into it and returns its path. */
export async function withScratchDir<T>(fn: (dir: string, write: (name: string, content: string) => string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'keymesh-pki-'));
  const write = (name: string, content: string) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };
  try {
    return await fn(dir, write);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

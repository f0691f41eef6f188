// Runs a real `keymesh server` process on a loopback port chosen by the OS, for integration tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const KEYMESH_MAIN = join(REPO_ROOT, 'src/cli/main.ts');

export const TEST_CREDENTIALS = Object.freeze({
  accessKeyId: 'AKIAKEYMESHTEST0001',
  secretAccessKey: 'keymesh-test-secret-key-0123456789abcdef',
});

export interface ServerHandle {
  url: string;
  /** The workload identity endpoint (https://...). */
  identityUrl: string;
  /** The xDS server, host:port (ADS over gRPC, mTLS). */
  xdsAddress: string;
  dataDir: string;
  process: ChildProcess;
  /** Everything the process printed on stdout so far. */
  stdout(): string;
  stderr(): string;
  /** SIGTERM and wait for exit. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

export interface StartOptions {
  dataDir?: string;
  args?: string[];
  /** Extra environment; credentials default to TEST_CREDENTIALS unless `generatedCredentials` is set. */
  env?: Record<string, string>;
  generatedCredentials?: boolean;
  timeoutMs?: number;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export function makeTempDir(prefix = 'keymesh-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Starts `keymesh server` and resolves once it prints the address it listens on. */
export async function startKeymeshServer(options: StartOptions = {}): Promise<ServerHandle> {
  const dataDir = options.dataDir ?? makeTempDir();
  const env: Record<string, string> = { ...(process.env as Record<string, string>), ...options.env };
  delete env.KEYMESH_ACCESS_KEY_ID;
  delete env.KEYMESH_SECRET_ACCESS_KEY;
  if (!options.generatedCredentials) {
    env.KEYMESH_ACCESS_KEY_ID = TEST_CREDENTIALS.accessKeyId;
    env.KEYMESH_SECRET_ACCESS_KEY = TEST_CREDENTIALS.secretAccessKey;
  }
  Object.assign(env, options.env ?? {});
  const child = spawn(process.execPath, [KEYMESH_MAIN, 'server', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--workload-listen', '127.0.0.1:0', '--xds-listen', '127.0.0.1:0', '--log-level', 'warn', ...(options.args ?? [])], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A failing test must not leave a server behind or keep the test process alive waiting for it.
  live.add(child);
  child.once('exit', () => live.delete(child));
  child.unref();
  (child.stdout as unknown as { unref(): void }).unref();
  (child.stderr as unknown as { unref(): void }).unref();
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const [url, identityUrl, xdsAddress] = await new Promise<[string, string, string]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`keymesh server did not start in time:\n${out}\n${err}`)), options.timeoutMs ?? 20_000);
    const check = () => {
      // The identity endpoint line comes after the API's "listening on" line.
      const m = /listening on (http:\/\/\S+)/.exec(out);
      const id = /identity endpoint on (https:\/\/\S+)/.exec(out);
      const xds = /xDS \(ADS over gRPC, mTLS\) on (\S+)/.exec(out);
      if (m && id && xds) {
        clearTimeout(timer);
        resolve([m[1]!, id[1]!, xds[1]!]);
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`keymesh server exited with ${code} before listening:\n${out}\n${err}`));
    });
  });

  return {
    url,
    identityUrl,
    xdsAddress,
    dataDir,
    process: child,
    stdout: () => out,
    stderr: () => err,
    // The child is unref'd so a failing test cannot hang on it; while we wait for its exit it must keep the
    // event loop alive, or an after() hook's cleanup could be cut short when the test process runs out of work.
    stop: async () => {
      child.ref();
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      child.ref();
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

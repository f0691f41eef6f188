// The programs the proxy bench runs (wrk, nginx, haproxy): where they are, installing the missing ones with
// apt-get when running as root, and their versions for the report.
import { spawnSync } from 'node:child_process';
import { findExecutable } from './procs.ts';

/** Debian package providing each program. nginx-light is the smallest nginx flavour with ssl + proxy + upstream keepalive. */
export const DEBIAN_PACKAGE: Readonly<Record<string, string>> = { wrk: 'wrk', nginx: 'nginx-light', haproxy: 'haproxy' };

export interface ToolCheck {
  /** Program name → absolute path, for the programs found. */
  readonly found: Map<string, string>;
  /** Programs still missing after any installation attempt. */
  readonly missing: string[];
  /** The command that would install the missing ones. */
  readonly installCommand: string | undefined;
  /** What happened, for the report. */
  readonly notes: string[];
}

function aptCommand(programs: readonly string[]): string {
  const pkgs = [...new Set(programs.map((p) => DEBIAN_PACKAGE[p] ?? p))];
  return `apt-get install -y --no-install-recommends ${pkgs.join(' ')}`;
}

/** Finds `programs`; when some are missing and we are root (and `install`), installs them with apt-get first. */
export function ensureTools(programs: readonly string[], install: boolean, log: (m: string) => void): ToolCheck {
  const notes: string[] = [];
  const lookup = () => {
    const found = new Map<string, string>();
    for (const p of programs) {
      const path = findExecutable(p);
      if (path) found.set(p, path);
    }
    return found;
  };
  let found = lookup();
  let missing = programs.filter((p) => !found.has(p));
  if (missing.length > 0 && install && process.getuid?.() === 0) {
    const pkgs = [...new Set(missing.map((p) => DEBIAN_PACKAGE[p] ?? p))];
    log(`installing ${pkgs.join(', ')} with apt-get (running as root)...`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
    if (r.status !== 0) {
      // Usually a stale package index: refresh it once and retry.
      spawnSync('apt-get', ['update'], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
      r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
    }
    notes.push(r.status === 0
      ? `installed ${pkgs.join(', ')} with apt-get (Debian may have enabled their system services; this bench never uses them)`
      : `apt-get install ${pkgs.join(' ')} failed: ${r.stderr?.toString().trim().split('\n').slice(-3).join(' / ')}`);
    found = lookup();
    missing = programs.filter((p) => !found.has(p));
  }
  const installCommand = missing.length > 0 ? `${process.getuid?.() === 0 ? '' : 'sudo '}${aptCommand(missing)}` : undefined;
  return { found, missing, installCommand, notes };
}

/** First line of `<program> <flag>` (stdout or stderr), e.g. "nginx version: nginx/1.22.1". */
export function versionOf(path: string, flag: string): string {
  const r = spawnSync(path, [flag], { encoding: 'utf8', timeout: 10_000 });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim();
  return text.split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown';
}

// V8 settings for the data plane. A proxy is on every request's path, so its garbage collector's pauses are
// its tail latency. Node's default young generation grows to 64 MiB here: each scavenge then copies what a
// burst of requests left alive, which measured 10-50 ms pauses under load (docs/benchmarks.md). A 4 MiB semi
// space keeps scavenges around a millisecond (a 1 MiB one scavenged four times as often, for no shorter pauses
// once per-request allocation was cut, and promoted more to the old generation: 15 % more CPU per request and a
// longer tail in the proxy bench of 2026-12-08); collecting on the proxy's own thread keeps it to the one
// thread a sidecar is given (Envoy with --concurrency 1), instead of waking helper threads that compete
// with the application for the same CPUs. These are V8 start-up settings, so `keymesh proxy` and
// `keymesh gateway` restart themselves once with them (same PID, through execve) before loading anything.
// Flags the user already gave Node (command line or NODE_OPTIONS) win.

/** The commands that carry traffic. */
const DATA_PLANE_COMMANDS: ReadonlySet<string> = new Set(['proxy', 'gateway']);

export const DATA_PLANE_V8_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--single-threaded-gc'];

/** `--max-semi-space-size=1` → `--max-semi-space-size`; `--no-single-threaded-gc` → `--single-threaded-gc`. */
function flagName(flag: string): string {
  return flag.split('=')[0]!.replace(/_/g, '-').replace(/^--no-/, '--');
}

/**
 * The argv to restart with (`[node, ...flags, ...execArgv, script, ...args]`), or undefined when the
 * command is not a data-plane one or no flag is missing. Pure.
 */
export function dataPlaneRestartArgs(o: { execPath: string; execArgv: readonly string[]; argv: readonly string[]; nodeOptions: string | undefined }): string[] | undefined {
  const command = o.argv[2];
  if (command === undefined || !DATA_PLANE_COMMANDS.has(command)) return undefined;
  const given = new Set([...o.execArgv, ...(o.nodeOptions ?? '').split(/\s+/)].filter((a) => a.startsWith('--')).map(flagName));
  const missing = DATA_PLANE_V8_FLAGS.filter((f) => !given.has(flagName(f)));
  if (missing.length === 0) return undefined;
  return [o.execPath, ...missing, ...o.execArgv, ...o.argv.slice(1)];
}

/** Replaces this process with one running the data-plane flags, when they are needed and execve exists. */
export function restartWithDataPlaneFlags(): void {
  if (typeof process.execve !== 'function') return; // Windows: runs with Node's defaults
  const args = dataPlaneRestartArgs({ execPath: process.execPath, execArgv: process.execArgv, argv: process.argv, nodeOptions: process.env.NODE_OPTIONS });
  if (args) process.execve(process.execPath, args, process.env);
}

// `keymesh demo [walkthrough] [--keep]`: a seed's walkthrough replayed in this process on loopback (a
// control plane, applications, keymesh's proxies), step by step with real App Mesh API calls, each step
// checked against what the seed says. Exits 0 when every step behaved, 1 with the reason otherwise. With
// --keep everything stays up until Ctrl-C (SIGINT or SIGTERM), which stops it all and removes the
// temporary directory.
import { existsSync } from 'node:fs';
import { Argument, type Command } from 'commander';
import { isKeymeshError } from '../../errors/index.ts';
import { Report } from './report.ts';
import type { Stage, Walkthrough } from './stage.ts';

/**
 * One module per walkthrough; the first is the default. Loaded when it runs: a walkthrough brings the control
 * plane and the proxy with it, which no other command (`keymesh proxy` least of all) should pay for.
 */
export const WALKTHROUGHS: readonly { readonly name: string; readonly seed: string; readonly title: string; load(): Promise<Walkthrough> }[] = [
  { name: 'file', seed: '004', title: 'mutual TLS with file-provided certificates', load: async () => (await import('./seed004.ts')).seed004 },
  { name: 'acm', seed: '002', title: 'TLS with a managed certificate and trust by CA ARN (ACM)', load: async () => (await import('./seed002.ts')).seed002 },
  { name: 'sds', seed: '003', title: 'mTLS with SPIFFE identities over SDS', load: async () => (await import('./seed003.ts')).seed003 },
  { name: 'migrate', seed: '001', title: 'migrating from plaintext through PERMISSIVE to STRICT under load', load: async () => (await import('./seed001.ts')).seed001 },
];

interface DemoFlags {
  keep?: boolean;
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('Walk through a seed on this machine: control plane, app, sidecar and gateway on loopback, every step checked.')
    .addArgument(new Argument('[walkthrough]', `which walkthrough: ${WALKTHROUGHS.map((w) => `${w.name} (seed ${w.seed}, ${w.title})`).join('; ')}`)
      .choices(WALKTHROUGHS.map((w) => w.name))
      .default(WALKTHROUGHS[0]!.name))
    .option('--keep', 'leave everything running at the end and print how to poke it; Ctrl-C stops it and cleans up')
    .addHelpText('after', `
Needs nothing but Node.js: no curl, no AWS CLI, no root. Each workload gets its own loopback address
(127.0.0.101 and up) with the seed's ports; the control plane takes ports chosen by the OS and a temporary
data directory. Credentials: KEYMESH_ACCESS_KEY_ID / KEYMESH_SECRET_ACCESS_KEY when set, else generated.

Examples:
  keymesh demo              # seed 004: strict TLS, wrong SAN, right SAN, client cert required, provided
  keymesh demo --keep       # then try it: curl, the admin ports' /stats, aws appmesh --endpoint-url ...
  keymesh demo acm          # seed 002: a certificate from the mesh's managed CA, trust by CA ARN, renewal
  keymesh demo sds          # seed 003: SPIFFE SVIDs over SDS, routing by header, no client cert = no handshake
  keymesh demo migrate      # seed 001: plaintext -> PERMISSIVE -> STRICT under load, zero failed requests
  npm start                 # the same as keymesh demo`)
    .action(async (name: string, flags: DemoFlags) => {
      const walkthrough = await (WALKTHROUGHS.find((w) => w.name === name) ?? WALKTHROUGHS[0]!).load();
      process.exitCode = await runDemo(walkthrough, { keep: flags.keep === true });
    });
}

/**
 * Runs a walkthrough; resolves with the exit code once it ended (after cleanup), or, with `keep`, never:
 * the process then ends from the signal handler.
 */
export async function runDemo(walkthrough: Walkthrough, o: { keep: boolean }): Promise<number> {
  const report = new Report({ out: process.stdout, err: process.stderr, color: process.stdout.isTTY === true && !process.env.NO_COLOR });
  let keeping = false;
  // The handlers come first: from the moment the temporary directory exists, a signal must remove it.
  const started: { stage?: Stage } = {};
  const stop = (signal: NodeJS.Signals) => {
    // Ctrl-C is how a --keep run ends; during the walkthrough it interrupts it (128 + the signal, as shells say).
    const code = keeping ? 0 : signal === 'SIGINT' ? 130 : 143;
    const current = started.stage;
    if (!current) process.exit(code);
    if (current.closing) return;
    report.raw('');
    report.raw(`keymesh demo: ${signal}, stopping everything`);
    void current.close().then(() => {
      report.raw(`keymesh demo: stopped the proxies, the application and the control plane; removed ${current.dir}`);
      void exit(code);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const { Stage } = await import('./stage.ts');
  const stage = new Stage(report);
  started.stage = stage;

  let result;
  try {
    result = await walkthrough.run(stage);
  } catch (e) {
    if (stage.closing) return new Promise<number>(() => {}); // a signal is tearing everything down
    report.raw('');
    // Expected failures are told in one line; a bug (TypeError and the like) with its stack.
    const expected = e instanceof Error && e.name === 'StepFailed' || isKeymeshError(e) || (e instanceof Error && e.constructor === Error);
    const reason = e instanceof Error ? (expected ? e.message : (e.stack ?? e.message)) : String(e);
    process.stderr.write(`keymesh demo: ${reason}\n`);
    await stage.close();
    report.raw(`keymesh demo: failed (seed ${walkthrough.seed}); cleaned up, removed ${stage.dir}`);
    return exit(1);
  }

  report.section('Done');
  for (const line of result.summary) report.line(line);
  report.raw('');
  if (!o.keep) {
    await stage.close();
    report.line(`Cleaned up: stopped the proxies, the application and the control plane; removed ${stage.dir}.`);
    const again = walkthrough.name === WALKTHROUGHS[0]!.name ? '`keymesh demo --keep` (npm start -- --keep)' : `\`keymesh demo ${walkthrough.name} --keep\``;
    const byHand = existsSync(`examples/seed${walkthrough.seed}/README.md`) ? `examples/seed${walkthrough.seed}/README.md` : 'examples/README.md';
    report.line(`Run ${again} to leave it running and poke it; ${byHand} replays it with the AWS CLI.`);
    return exit(0);
  }
  keeping = true;
  report.section('Still running (--keep)', 'Ctrl-C stops everything and removes the temporary directory');
  for (const { comment, commands } of result.keep) {
    report.line(`# ${comment}`);
    for (const command of commands) report.line(command);
  }
  report.line(`# data and certificate files: ${stage.dir}`);
  report.raw('');
  report.raw('keymesh demo: running; press Ctrl-C to stop');
  return new Promise<number>(() => {});
}

/**
 * Ends the process once stdout has drained: the proxies' and the control plane's timers and sockets are
 * closed, but some libraries keep handles (gRPC's channels) that would hold a plain return open.
 */
function exit(code: number): Promise<number> {
  process.stdout.write('', () => process.exit(code));
  return new Promise<number>(() => {});
}

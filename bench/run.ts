// `npm run bench`: the signing bench, then the xDS propagation bench, then the proxy bench, each in its own process
// (the xDS one with --expose-gc, for its memory figures). Each writes its own JSON to bench/results/.
//
//   npm run bench                                   all three, default sizes
//   npm run bench -- --quick                        all three, quick sizes
//   npm run bench -- --rounds 5                     options before `--xds`/`--proxy` go to bench/signing.ts (with --quick)
//   npm run bench -- --xds --n 1,100,500 --writes 10 options after `--xds` go to bench/xds-propagation.ts
//   npm run bench -- --proxy --only nginx,keymesh   options after `--proxy` go to bench/proxy/run.ts
//   npm run bench -- --only signing | xds | proxy   one of the three
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const NAMES = ['signing', 'xds', 'proxy'] as const;

// Split the arguments at the `--xds` and `--proxy` markers (in either order).
const argv = process.argv.slice(2);
const sections: Record<(typeof NAMES)[number], string[]> = { signing: [], xds: [], proxy: [] };
let current: (typeof NAMES)[number] = 'signing';
for (const a of argv) {
  if (a === '--xds') current = 'xds';
  else if (a === '--proxy') current = 'proxy';
  else sections[current].push(a);
}
let signingArgs = sections.signing;
const { xds: xdsArgs, proxy: proxyArgs } = sections;
let only: string | undefined;
const o = signingArgs.indexOf('--only');
if (o >= 0) {
  only = signingArgs[o + 1];
  signingArgs = [...signingArgs.slice(0, o), ...signingArgs.slice(o + 2)];
  if (!NAMES.some((n) => n === only)) {
    process.stderr.write(`--only takes ${NAMES.join(', ')}\n`);
    process.exit(2);
  }
}
if (signingArgs.includes('--quick')) {
  if (!xdsArgs.includes('--quick')) xdsArgs.unshift('--quick');
  if (!proxyArgs.includes('--quick')) proxyArgs.unshift('--quick');
}

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const runs: [string, string[]][] = [
  ['signing', [here('./signing.ts'), ...signingArgs]],
  ['xds', ['--expose-gc', here('./xds-propagation.ts'), ...xdsArgs]],
  ['proxy', [here('./proxy/run.ts'), ...proxyArgs]],
];
let failed = false;
for (const [name, args] of runs) {
  if (only && only !== name) continue;
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`bench ${name} failed (${r.status ?? r.signal})\n`);
    failed = true;
  }
}
process.exitCode = failed ? 1 : 0;

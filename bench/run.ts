// `npm run bench`: the signing bench, then the xDS propagation bench, each in its own process (the xDS one with
// --expose-gc, for its memory figures). Each writes its own JSON to bench/results/.
//
//   npm run bench                                   both, default sizes
//   npm run bench -- --quick                        both, quick sizes
//   npm run bench -- --rounds 5                     options before `--xds` go to bench/signing.ts (with --quick)
//   npm run bench -- --xds --n 1,100,500 --writes 10 options after `--xds` go to bench/xds-propagation.ts
//   npm run bench -- --only signing | --only xds    one of the two
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const argv = process.argv.slice(2);
const split = argv.indexOf('--xds');
let signingArgs = split >= 0 ? argv.slice(0, split) : argv;
const xdsArgs = split >= 0 ? argv.slice(split + 1) : [];
let only: string | undefined;
const o = signingArgs.indexOf('--only');
if (o >= 0) {
  only = signingArgs[o + 1];
  signingArgs = [...signingArgs.slice(0, o), ...signingArgs.slice(o + 2)];
  if (only !== 'signing' && only !== 'xds') {
    process.stderr.write('--only takes signing or xds\n');
    process.exit(2);
  }
}
if (signingArgs.includes('--quick') && !xdsArgs.includes('--quick')) xdsArgs.unshift('--quick');

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
const runs: [string, string[]][] = [
  ['signing', [here('./signing.ts'), ...signingArgs]],
  ['xds', ['--expose-gc', here('./xds-propagation.ts'), ...xdsArgs]],
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

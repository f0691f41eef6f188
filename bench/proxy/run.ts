// The proxy bench (issue 5): keymesh's data-plane pair (setups/keymesh.ts) beside nginx, haproxy, a
// straightforward Node proxy and a direct connection, in the same run. See bench/proxy/harness.ts for what a
// pair is and docs/benchmarks.md.
//
//   node bench/proxy/run.ts                        all setups, 10 s per measurement (~2-3 minutes)
//   node bench/proxy/run.ts --quick                3 s per measurement
//   node bench/proxy/run.ts --only direct,nginx    some of them
//   node bench/proxy/run.ts --help
//
// Adding a setup: write a PairSetup (bench/proxy/setups/*.ts shows five) and add it to SETUPS below, or call
// registerPair/runProxyBench from another entry point.
import { registerPair, registeredPairs, runProxyBench } from './harness.ts';
import { direct } from './setups/direct.ts';
import { haproxyPair } from './setups/haproxy.ts';
import { keymeshPair } from './setups/keymesh.ts';
import { nginxPair } from './setups/nginx.ts';
import { nodeNaivePair } from './setups/node-naive.ts';

export { registerPair, runProxyBench };
export type { MtlsProbe, PairContext, PairMode, PairSetup, StartedPair } from './harness.ts';

// The order of the tables. nginx is the baseline of the ratios, direct the ceiling.
const SETUPS = [direct, nginxPair, haproxyPair, nodeNaivePair, keymeshPair];

if (import.meta.main) {
  for (const s of SETUPS) registerPair(s);
  runProxyBench(process.argv.slice(2), registeredPairs()).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`proxy bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}

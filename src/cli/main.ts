#!/usr/bin/env node
// The `keymesh` command. This entry stays small on purpose: a data-plane command first restarts the process
// with the V8 settings a proxy runs with (runtime-flags.ts), which must happen before the rest of the command
// line (hundreds of modules) is loaded, or the load would be paid twice.
import { restartWithDataPlaneFlags } from './runtime-flags.ts';

restartWithDataPlaneFlags();
const { runCli } = await import('./program.ts');
runCli(process.argv);

// The `keymesh` command line: one subcommand per job. Errors leave as one clear line and a non-zero exit.
// main.ts is the entry; it loads this once the process runs with the settings its command needs.
import { createRequire } from 'node:module';
import { Command, Option } from 'commander';
import { formatExportLines, resolveAdminCredentials } from '../config/credentials.ts';
import { buildServerConfig, DEFAULT_ACCOUNT, DEFAULT_ENDPOINT_GRACE, DEFAULT_LISTEN, DEFAULT_REGION, DEFAULT_WORKLOAD_LISTEN, DEFAULT_XDS_LISTEN, defaultDataDir, type ServerFlags } from '../config/server-config.ts';
import { isKeymeshError } from '../errors/index.ts';
import { registerBootstrapCommand } from './bootstrap-command.ts';
import { registerCaCommands } from './ca-command.ts';
import { registerCertsCommand } from './certs-command.ts';
import { registerDemoCommand } from './demo/demo-command.ts';
import { registerIdentityCommand } from './identity-command.ts';
import { registerEndpointsCommand } from './endpoints-command.ts';
import { registerProxiesCommand } from './proxies-command.ts';
import { registerProxyCommands } from './proxy-command.ts';

/** The package's version: package.json sits two levels up from both src/cli and dist/cli. */
const VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

const program = new Command()
  .name('keymesh')
  .version(VERSION, '-V, --version', 'print keymesh\'s version')
  .description('A service mesh for mutual TLS between services. Speaks the AWS App Mesh API and Envoy xDS.')
  .showHelpAfterError();

program
  .command('server')
  .description('Run the control plane: the App Mesh-compatible API on an embedded SQLite store.')
  .option('--data-dir <dir>', 'where keymesh keeps its database, keys and credentials', defaultDataDir())
  .option('--listen <host:port>', 'address of the App Mesh API', DEFAULT_LISTEN)
  .option('--workload-listen <host:port>', 'address of the workload identity endpoint (HTTPS: join-token bootstrap, SVID renewal)', DEFAULT_WORKLOAD_LISTEN)
  .option('--xds-listen <host:port>', 'address of the xDS server (ADS over gRPC, mTLS: proxies present their SVIDs)', DEFAULT_XDS_LISTEN)
  .option('--region <region>', 'region shown in resource ARNs', DEFAULT_REGION)
  .option('--account-id <id>', '12-digit account id shown as mesh and resource owner', DEFAULT_ACCOUNT)
  .option('--endpoint-grace <duration>', 'how long a disconnected sidecar stays registered as an instance of its virtual node', DEFAULT_ENDPOINT_GRACE)
  .option('--limit <name=value>', 'raise a service quota, e.g. meshes=100 (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option('--rate-limit <rps>', 'API requests per second per caller before TooManyRequestsException', '100')
  .addOption(new Option('--log-level <level>', 'server log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'))
  .option('--insecure-no-auth', 'accept unsigned requests (local experiments only: anyone who can connect can change the mesh)')
  .addHelpText('after', `
Credentials: requests must be AWS SigV4-signed with the admin credentials. They come from
KEYMESH_ACCESS_KEY_ID / KEYMESH_SECRET_ACCESS_KEY when set; otherwise keymesh generates them on first
start, stores them (mode 600) in the data directory and prints the export lines to use.

CA keys: stored under DATA_DIR/ca (mode 600); set KEYMESH_CA_PASSPHRASE to encrypt them at rest.

Example:
  keymesh server --data-dir ./km --listen 127.0.0.1:7000
  aws appmesh create-mesh --mesh-name demo --endpoint-url http://127.0.0.1:7000`)
  .action(async (flags: ServerFlags) => {
    // Loaded here, not up front: the control plane's modules are no business of the other commands (a sidecar).
    const { startServer } = await import('./server-command.ts');
    const server = await startServer(buildServerConfig(flags));
    let closing = false;
    const stop = (signal: string) => {
      if (closing) return;
      closing = true;
      process.stdout.write(`keymesh server: ${signal}, shutting down\n`);
      server.close().then(() => process.exit(0), (e: unknown) => fail(e));
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });

program
  .command('credentials')
  .description('Print the export lines for the admin credentials stored in a data directory.')
  .option('--data-dir <dir>', 'the server\'s data directory', defaultDataDir())
  .option('--region <region>', 'region for AWS_DEFAULT_REGION', DEFAULT_REGION)
  .action((flags: { dataDir: string; region: string }) => {
    const creds = resolveAdminCredentials({ dataDir: flags.dataDir, env: process.env, create: false });
    process.stdout.write(`${formatExportLines(creds, flags.region)}\n`);
  });

registerCaCommands(program);
registerCertsCommand(program);
registerIdentityCommand(program);
registerProxiesCommand(program);
registerEndpointsCommand(program);
registerBootstrapCommand(program);
registerProxyCommands(program);
registerDemoCommand(program);

function fail(e: unknown): never {
  if (isKeymeshError(e)) {
    process.stderr.write(`keymesh: ${e.message}\n`);
  } else if (e instanceof Error && 'code' in e && e.code === 'EADDRINUSE') {
    process.stderr.write(`keymesh: ${e.message}: another process is listening there; pick another --listen address\n`);
  } else {
    process.stderr.write(`keymesh: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  }
  process.exit(1);
}

/** Parses `argv` (process.argv's shape) and runs the command. */
export function runCli(argv: readonly string[]): void {
  program.parseAsync([...argv]).catch(fail);
}

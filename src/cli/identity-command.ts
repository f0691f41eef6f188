// `keymesh identity run`: the workload side of the identity lifecycle as a process, for workloads that read
// certificates from files (like spiffe-helper beside a SPIRE agent). It generates the key locally, bootstraps
// with a join token, renews at half-life over mTLS, and rewrites svid.pem / svid_key.pem / bundle.pem on
// every change. keymesh's own proxy uses the same SvidSource in process.
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { systemClock } from '../base/clock.ts';
import { ConfigError } from '../errors/index.ts';
import { KEY_TYPES, type KeyType } from '../pki/api.ts';
import { XDS_CLIENT_SECRET_FILE, xdsClientSecretFile } from '../envoy/bootstrap.ts';
import { HttpIdentityTransport } from '../identity/http-transport.ts';
import type { Svid } from '../identity/svid.ts';
import { SvidSource } from '../identity/svid-source.ts';

const TOKEN_ENV = 'KEYMESH_JOIN_TOKEN';

interface RunFlags {
  endpoint: string;
  controlPlaneCa: string;
  out: string;
  joinTokenFile?: string;
  spiffeId?: string;
  keyType: KeyType;
  once?: boolean;
}

export function registerIdentityCommand(program: Command): void {
  const identity = program.command('identity').description('Workload identity (X.509 SVIDs) from the keymesh identity endpoint.');
  identity
    .command('run')
    .description('Get an SVID with a join token, keep it renewed, and write it to files on every change.')
    .requiredOption('--endpoint <url>', 'the identity endpoint, e.g. https://127.0.0.1:7443')
    .requiredOption('--control-plane-ca <file>', 'the control-plane CA certificate to pin (keymesh token create --ca-out, or DATA_DIR/control-plane/ca-cert.pem)')
    .requiredOption('--out <dir>', 'where to write svid.pem, svid_key.pem (mode 600), bundle.pem, and the saved state')
    .option('--join-token-file <file>', `file holding the join token (or set ${TOKEN_ENV}); not needed while a saved SVID is valid`)
    .option('--spiffe-id <id>', 'refuse any identity but this one')
    .addOption(new Option('--key-type <type>', 'key type generated for each SVID').choices(KEY_TYPES).default('ec-p256'))
    .option('--once', 'exit after writing the first SVID')
    .addHelpText('after', `
The join token is read from a file or the environment, never from the command line (where other users of the
machine could see it). The private key is generated here; only a CSR leaves this process.`)
    .action(async (flags: RunFlags) => {
      const caPem = await readFile(flags.controlPlaneCa, 'utf8').catch((e: NodeJS.ErrnoException) => {
        throw new ConfigError(`--control-plane-ca ${flags.controlPlaneCa}: cannot read it (${e.code ?? e.message})`);
      });
      const joinToken = flags.joinTokenFile !== undefined
        ? (await readFile(flags.joinTokenFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
          throw new ConfigError(`--join-token-file ${flags.joinTokenFile}: cannot read it (${e.code ?? e.message})`);
        })).trim()
        : process.env[TOKEN_ENV];
      await mkdir(flags.out, { recursive: true, mode: 0o700 });
      // For a stock Envoy (keymesh bootstrap envoy): the file-based SDS secret naming the SVID files.
      await replace(join(flags.out, XDS_CLIENT_SECRET_FILE), `${JSON.stringify(xdsClientSecretFile(resolve(flags.out)), null, 2)}\n`, 0o644);
      const log = {
        info: (m: string) => process.stdout.write(`${m}\n`),
        warn: (m: string) => process.stderr.write(`${m}\n`),
      };
      const source = new SvidSource({
        transport: new HttpIdentityTransport({ endpoint: flags.endpoint, caPem }),
        clock: systemClock,
        log,
        keyType: flags.keyType,
        stateDir: join(flags.out, 'state'),
        ...(joinToken ? { joinToken } : {}),
        ...(flags.spiffeId !== undefined ? { expectedSpiffeId: flags.spiffeId } : {}),
      });
      let writes = Promise.resolve();
      source.onUpdate((svid) => {
        if (svid) writes = writes.then(() => writeSvidFiles(flags.out, svid)).catch((e: Error) => {
          log.warn(`identity: cannot write the SVID files: ${e.message}`);
        });
      });
      await source.start();
      const first = await source.ready();
      await writes;
      await writeSvidFiles(flags.out, first);
      if (flags.once) {
        source.stop();
        return;
      }
      const stop = () => {
        source.stop();
        process.exit(0);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
}

/** Each file is replaced whole (temp + rename), key first, so a reader never sees half a file. */
async function writeSvidFiles(dir: string, svid: Svid): Promise<void> {
  await replace(join(dir, 'svid_key.pem'), svid.keyPem, 0o600);
  await replace(join(dir, 'svid.pem'), svid.certChainPem, 0o644);
  await replace(join(dir, 'bundle.pem'), svid.bundlePem, 0o644);
}

async function replace(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, content, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

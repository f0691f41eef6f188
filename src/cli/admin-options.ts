// Options shared by the commands that talk to a running keymesh server (`keymesh ca`, `token`, `proxies`) and
// by those that name one mesh endpoint (`--virtual-node` or `--virtual-gateway`).
import type { Command } from 'commander';
import { DEFAULT_LISTEN, defaultDataDir } from '../config/server-config.ts';
import { ConfigError } from '../errors/index.ts';
import { adminTarget, type AdminTarget } from './admin-client.ts';

export interface ConnFlags {
  endpoint: string;
  dataDir: string;
}

export function withConnection(cmd: Command): Command {
  return cmd
    .option('--endpoint <url>', 'the keymesh server API', `http://${DEFAULT_LISTEN}`)
    .option('--data-dir <dir>', "the server's data directory, for its stored admin credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY win when set)", defaultDataDir());
}

export function target(flags: ConnFlags): AdminTarget {
  return adminTarget({ endpoint: flags.endpoint, dataDir: flags.dataDir, env: process.env });
}

export interface IdentityFlags {
  mesh: string;
  virtualNode?: string;
  virtualGateway?: string;
}

export function identityOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--mesh <mesh>', 'the mesh')
    .option('--virtual-node <name>', 'a virtual node of the mesh')
    .option('--virtual-gateway <name>', 'a virtual gateway of the mesh');
}

/** The endpoint named by exactly one of --virtual-node or --virtual-gateway. */
export function chosenIdentity(flags: IdentityFlags): { kind: 'virtualNode' | 'virtualGateway'; name: string } {
  if ((flags.virtualNode === undefined) === (flags.virtualGateway === undefined)) {
    throw new ConfigError('name exactly one of --virtual-node or --virtual-gateway');
  }
  return flags.virtualNode !== undefined ? { kind: 'virtualNode', name: flags.virtualNode } : { kind: 'virtualGateway', name: flags.virtualGateway as string };
}

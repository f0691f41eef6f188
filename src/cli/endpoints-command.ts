// `keymesh endpoints`: the endpoint registry of a running keymesh server (GET/POST/DELETE under
// /keymesh/v1, SigV4 with the admin credentials): which instances serve each virtual node, whether their
// sidecar is connected, and registration of instances that have no keymesh proxy.
import { Command } from 'commander';
import { adminCall } from './admin-client.ts';
import { target, withConnection, type ConnFlags } from './admin-options.ts';
import { table } from './text-table.ts';
import { portList, portNumber } from './option-values.ts';

export interface EndpointRow {
  mesh: string;
  virtualNode: string;
  instance: string;
  address: string;
  port: number;
  ports: number[];
  source: 'proxy' | 'static';
  registeredAt: number;
  expiresAt: number | null;
}

function state(e: EndpointRow, now: number): string {
  if (e.source === 'static') return 'static';
  if (e.expiresAt === null) return 'connected';
  return `disconnected, lapses in ${Math.max(0, Math.ceil((e.expiresAt - now) / 1000))}s`;
}

/** The table `keymesh endpoints list` prints (a header line even when the registry is empty). */
export function endpointsTable(endpoints: readonly EndpointRow[], now = Date.now()): string {
  const rows = [['MESH', 'VIRTUAL NODE', 'INSTANCE', 'ADDRESS', 'STATE']];
  for (const e of endpoints) {
    const ports = [e.port, ...e.ports].join(',');
    rows.push([e.mesh, e.virtualNode, e.instance, `${e.address.includes(':') ? `[${e.address}]` : e.address}:${ports}`, state(e, now)]);
  }
  return table(rows);
}

const nodePath = (mesh: string, node: string) => `/keymesh/v1/meshes/${encodeURIComponent(mesh)}/virtualNodes/${encodeURIComponent(node)}/endpoints`;

export function registerEndpointsCommand(program: Command): void {
  const endpoints = program.command('endpoints').description('The endpoint registry: the instances of each virtual node (EDS).');
  withConnection(endpoints.command('list'))
    .description('List registered instances: their virtual node, address and whether their sidecar is connected.')
    .option('--mesh <mesh>', 'only this mesh')
    .option('--json', 'print JSON')
    .action(async (f: ConnFlags & { mesh?: string; json?: boolean }) => {
      const answer = await adminCall<{ endpoints: EndpointRow[] }>(target(f), 'GET', `/keymesh/v1/endpoints${f.mesh ? `?mesh=${encodeURIComponent(f.mesh)}` : ''}`);
      process.stdout.write(f.json ? `${JSON.stringify(answer, null, 2)}\n` : `${endpointsTable(answer.endpoints)}\n`);
    });
  withConnection(endpoints.command('register'))
    .description('Register an instance that has no keymesh proxy (kept until deregistered).')
    .requiredOption('--mesh <mesh>', 'the mesh')
    .requiredOption('--virtual-node <name>', 'the virtual node it serves')
    .requiredOption('--address <ip>', 'the IP address clients connect to')
    .requiredOption('--port <port>', 'the port clients connect to', portNumber)
    .option('--ports <list>', 'further listener ports it serves, comma-separated', portList)
    .option('--instance <id>', 'instance id (default ADDRESS:PORT)')
    .action(async (f: ConnFlags & { mesh: string; virtualNode: string; address: string; port: number; ports?: number[]; instance?: string }) => {
      const body = { address: f.address, port: f.port, ...(f.ports ? { ports: f.ports } : {}), ...(f.instance ? { instance: f.instance } : {}) };
      const e = await adminCall<EndpointRow>(target(f), 'POST', nodePath(f.mesh, f.virtualNode), body);
      process.stdout.write(`registered ${e.instance} for ${e.mesh}/${e.virtualNode}\n`);
    });
  withConnection(endpoints.command('deregister'))
    .description('Remove a registered instance.')
    .requiredOption('--mesh <mesh>', 'the mesh')
    .requiredOption('--virtual-node <name>', 'the virtual node')
    .requiredOption('--instance <id>', 'the instance id (see `keymesh endpoints list`)')
    .action(async (f: ConnFlags & { mesh: string; virtualNode: string; instance: string }) => {
      await adminCall(target(f), 'DELETE', `${nodePath(f.mesh, f.virtualNode)}/${encodeURIComponent(f.instance)}`);
      process.stdout.write(`deregistered ${f.instance} of ${f.mesh}/${f.virtualNode}\n`);
    });
}

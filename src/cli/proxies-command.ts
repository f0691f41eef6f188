// `keymesh proxies`: the proxies connected to a running keymesh server's xDS server, from
// GET /keymesh/v1/proxies (SigV4 with the admin credentials, like `keymesh ca`): who each one is, since when,
// the versions it last ACKed per resource type, and the message of its last NACK.
import { Command } from 'commander';
import { TYPE_URLS } from '../envoy/protos.ts';
import { adminCall } from './admin-client.ts';
import { target, withConnection, type ConnFlags } from './admin-options.ts';
import { table } from './text-table.ts';

interface Ack { version: string; at: number }

export interface ProxyRow {
  stream: number;
  identity: { mesh: string; kind: string; name: string; spiffeId: string };
  nodeId?: string;
  connectedAt: number;
  lastAck: Record<string, Ack>;
  lastNack?: { typeUrl: string; version: string; message: string; at: number };
  nacks?: { typeUrl: string; version: string; message: string; at: number }[];
  refusedSecrets?: { name: string }[];
  configError?: { problems: string[] };
}

const SHORT_TYPES: Record<string, string> = {
  [TYPE_URLS.cluster]: 'CDS',
  [TYPE_URLS.clusterLoadAssignment]: 'EDS',
  [TYPE_URLS.listener]: 'LDS',
  [TYPE_URLS.routeConfiguration]: 'RDS',
  [TYPE_URLS.secret]: 'SDS',
};
const ORDER = ['CDS', 'EDS', 'LDS', 'RDS', 'SDS'];
const short = (typeUrl: string) => SHORT_TYPES[typeUrl] ?? typeUrl.replace(/^.*\./, '');

/** The table `keymesh proxies` prints (one line per stream; a header line even when none is connected). */
export function proxiesTable(proxies: readonly ProxyRow[]): string {
  const rows = [['IDENTITY', 'CONNECTED SINCE', 'ACKED', 'LAST NACK']];
  for (const p of proxies) {
    const acks = Object.entries(p.lastAck).map(([t, a]) => [short(t), a.version] as const)
      .sort(([a], [b]) => ORDER.indexOf(a) - ORDER.indexOf(b)).map(([t, v]) => `${t}=${v}`).join(' ');
    const earlier = (p.nacks?.length ?? 0) - 1;
    const nack = p.lastNack
      ? `${short(p.lastNack.typeUrl)} ${p.lastNack.version}: ${p.lastNack.message.replace(/\s+/g, ' ')}${earlier > 0 ? ` (+${earlier} earlier, see --json)` : ''}`
      : '-';
    rows.push([`${p.identity.spiffeId} (${p.identity.mesh}/${p.identity.kind}/${p.identity.name})`, new Date(p.connectedAt).toISOString(), acks || '-', nack]);
  }
  return table(rows);
}

export function registerProxiesCommand(program: Command): void {
  withConnection(program.command('proxies'))
    .description('List the proxies connected to the xDS server: identity, connected since, last ACKed versions, last NACK.')
    .option('--mesh <mesh>', 'only the proxies of this mesh')
    .option('--json', 'print the full status as JSON')
    .action(async (f: ConnFlags & { mesh?: string; json?: boolean }) => {
      const path = `/keymesh/v1/proxies${f.mesh ? `?mesh=${encodeURIComponent(f.mesh)}` : ''}`;
      const answer = await adminCall<{ proxies: ProxyRow[] }>(target(f), 'GET', path);
      process.stdout.write(f.json ? `${JSON.stringify(answer, null, 2)}\n` : `${proxiesTable(answer.proxies)}\n`);
    });
}

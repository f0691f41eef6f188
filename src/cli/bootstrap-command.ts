// `keymesh bootstrap envoy`: prints the bootstrap for a stock Envoy sidecar or gateway that takes its whole
// configuration from keymesh over ADS (src/envoy/bootstrap.ts says what is in it and why).
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { DEFAULT_ACCOUNT, DEFAULT_REGION, DEFAULT_XDS_LISTEN, parseListen } from '../config/server-config.ts';
import { envoyBootstrap } from '../envoy/bootstrap.ts';
import { loadSvid } from '../identity/svid-state.ts';
import { arnFor } from '../model/kinds.ts';
import { chosenIdentity, identityOptions, type IdentityFlags } from './admin-options.ts';
import { ipAddress, portNumber, uint32AtLeast } from './option-values.ts';

interface Flags extends IdentityFlags {
  xds: string;
  controlPlaneCa: string;
  svidDir: string;
  admin: string;
  region: string;
  accountId: string;
  spiffeId?: string;
  listenAddress?: string;
  ingressPort?: number;
  egressPort?: number;
  tcpEgressAddress?: string;
  upstreamMaxRequestsPerConnection?: number;
  upstreamTlsMaxSessionKeys?: number;
}

export function registerBootstrapCommand(program: Command): void {
  const bootstrap = program.command('bootstrap').description('Bootstrap files for data planes that are not keymesh\'s own.');
  identityOptions(bootstrap.command('envoy'))
    .description('Print an Envoy bootstrap (JSON) that takes listeners, clusters, routes and secrets from keymesh over ADS.')
    .option('--xds <host:port>', 'the keymesh xDS endpoint', DEFAULT_XDS_LISTEN)
    .requiredOption('--control-plane-ca <file>', 'the control-plane CA certificate (DATA_DIR/control-plane/ca-cert.pem)')
    .requiredOption('--svid-dir <dir>', 'the directory `keymesh identity run --out` keeps the SVID in')
    .option('--admin <host:port>', 'Envoy admin interface (stats at /stats)', '127.0.0.1:9901')
    .option('--region <region>', 'region of the resource ARN', DEFAULT_REGION)
    .option('--account-id <id>', 'account of the resource ARN', DEFAULT_ACCOUNT)
    .option('--spiffe-id <id>', 'the SPIFFE ID specs name as SDS certificate (default: the one saved in --svid-dir)')
    .option('--listen-address <ip>', "the address the proxy's listeners bind (default 0.0.0.0, as App Mesh)", ipAddress)
    .option('--ingress-port <port>', 'its ingress listener port (default 15000; on one machine each sidecar needs its own)', portNumber)
    .option('--egress-port <port>', 'its egress listener port (default 15001)', portNumber)
    .option('--tcp-egress-address <ip>', "without iptables: a listener on this address at each tcp backend's port, to that backend", ipAddress)
    .option('--upstream-max-requests-per-connection <n>', "close an upstream connection after N requests (max_requests_per_connection on its clusters to other virtual nodes; 1: a new connection per request)", uint32AtLeast(1))
    .option('--upstream-tls-max-session-keys <n>', "TLS sessions to keep for resumption on those clusters (max_session_keys, default 1; 0: every connection a full handshake)", uint32AtLeast(0))
    .addHelpText('after', `
Example (seed 004's colorteller with a stock Envoy):
  keymesh identity run --endpoint https://127.0.0.1:7443 --control-plane-ca cp-ca.pem --join-token-file ct.token --out ./ct-svid &
  keymesh bootstrap envoy --mesh appmesh-mtls --virtual-node colorteller --control-plane-ca cp-ca.pem --svid-dir ./ct-svid > envoy.json
  envoy -c envoy.json`)
    .action(async (f: Flags) => {
      const { kind, name } = chosenIdentity(f);
      const xds = parseListen(f.xds, '--xds');
      const admin = parseListen(f.admin, '--admin');
      // The identity `keymesh identity run` saved there, so that SDS certificates named by it resolve locally.
      const spiffeId = f.spiffeId ?? (await loadSvid(join(resolve(f.svidDir), 'state')).catch(() => undefined))?.spiffeId;
      if (spiffeId === undefined) process.stderr.write(`keymesh: no SVID saved in ${f.svidDir} yet and no --spiffe-id: specs with an SDS certificate will not find it\n`);
      const placement = {
        listen_address: f.listenAddress, ingress_port: f.ingressPort, egress_port: f.egressPort, tcp_egress_address: f.tcpEgressAddress,
        upstream_max_requests_per_connection: f.upstreamMaxRequestsPerConnection, upstream_tls_max_session_keys: f.upstreamTlsMaxSessionKeys,
      };
      const given = Object.fromEntries(Object.entries(placement).filter(([, v]) => v !== undefined));
      const bootstrapObject = envoyBootstrap({
        ...(Object.keys(given).length > 0 ? { metadata: { keymesh: given } } : {}),
        nodeId: arnFor({ kind, mesh: f.mesh, parent: '', name }, f.region, f.accountId),
        nodeCluster: name,
        xdsHost: xds.host,
        xdsPort: xds.port,
        controlPlaneCaPath: resolve(f.controlPlaneCa),
        svidDir: resolve(f.svidDir),
        adminAddress: admin.host,
        adminPort: admin.port,
        ...(spiffeId !== undefined ? { spiffeId } : {}),
      });
      process.stdout.write(`${JSON.stringify(bootstrapObject, null, 2)}\n`);
    });
}

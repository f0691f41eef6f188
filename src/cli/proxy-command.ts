// `keymesh proxy` (the sidecar of a virtual node) and `keymesh gateway` (a virtual gateway): keymesh's own data
// plane (src/proxy/sidecar.ts). Both take their identity from the identity endpoint with a join token and
// everything else from the control plane over xDS, like a stock Envoy would.
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { DEFAULT_WORKLOAD_LISTEN, DEFAULT_XDS_LISTEN, parseListen } from '../config/server-config.ts';
import { ConfigError } from '../errors/index.ts';
import { startSidecar } from '../proxy/sidecar.ts';
import { ipAddress, portNumber, uint32AtLeast } from './option-values.ts';

const TOKEN_ENV = 'KEYMESH_JOIN_TOKEN';
const RESOURCE_ENV = 'APPMESH_RESOURCE_ARN';

interface ProxyFlags {
  mesh?: string;
  virtualNode?: string;
  virtualGateway?: string;
  resource?: string;
  xds: string;
  identityEndpoint?: string;
  controlPlaneCa: string;
  joinTokenFile?: string;
  stateDir?: string;
  admin: string;
  listenAddress?: string;
  ingressPort?: number;
  egressPort?: number;
  appAddress?: string;
  tcpEgressAddress?: string;
  upstreamMaxRequestsPerConnection?: number;
  upstreamTlsMaxSessionKeys?: number;
  mux: boolean;
}

/** The xDS node id: --resource / APPMESH_RESOURCE_ARN, or built from --mesh and the endpoint flag. */
function nodeIdOf(f: ProxyFlags, kind: 'virtualNode' | 'virtualGateway'): string {
  const resource = f.resource ?? process.env[RESOURCE_ENV];
  if (resource) return resource;
  const name = kind === 'virtualNode' ? f.virtualNode : f.virtualGateway;
  if (!f.mesh || !name) throw new ConfigError(`name the ${kind === 'virtualNode' ? 'virtual node' : 'virtual gateway'} with --mesh and --${kind === 'virtualNode' ? 'virtual-node' : 'virtual-gateway'}, or --resource (or ${RESOURCE_ENV})`);
  return `mesh/${f.mesh}/${kind}/${name}`;
}

function define(cmd: Command, kind: 'virtualNode' | 'virtualGateway'): Command {
  return cmd
    .option('--mesh <mesh>', 'the mesh')
    .option(kind === 'virtualNode' ? '--virtual-node <name>' : '--virtual-gateway <name>', `the ${kind === 'virtualNode' ? 'virtual node' : 'virtual gateway'} this proxy is`)
    .option('--resource <id>', `mesh/<mesh>/${kind}/<name> or its App Mesh ARN (default: ${RESOURCE_ENV})`)
    .option('--xds <host:port>', 'the keymesh xDS server', DEFAULT_XDS_LISTEN)
    .option('--identity-endpoint <url>', `the identity endpoint (default https://${DEFAULT_WORKLOAD_LISTEN})`)
    .requiredOption('--control-plane-ca <file>', 'the control-plane CA certificate to pin (keymesh token create --ca-out)')
    .option('--join-token-file <file>', `file holding the join token (or ${TOKEN_ENV}); not needed while a saved SVID is valid`)
    .option('--state-dir <dir>', 'where the SVID is saved across restarts (mode 700)')
    .option('--admin <host:port>', 'the admin interface (Envoy-compatible /stats, /ready, /config_dump, /certs, /clusters)', '127.0.0.1:9901')
    .option('--listen-address <ip>', 'the address its listeners bind (default 0.0.0.0, as App Mesh)', ipAddress)
    .option('--ingress-port <port>', 'its ingress listener port (default 15000)', portNumber)
    .option('--egress-port <port>', 'its egress listener port (default 15001)', portNumber)
    .option('--app-address <ip>', 'where its application listens (default 127.0.0.1)', ipAddress)
    .option('--tcp-egress-address <ip>', "without iptables: a listener on this address at each tcp backend's port, to that backend", ipAddress)
    .option('--upstream-max-requests-per-connection <n>', "close an upstream connection after N requests (Envoy's max_requests_per_connection on its clusters to other virtual nodes; 1: a new connection per request)", uint32AtLeast(1))
    .option('--no-mux', "never offer keymesh's multiplexed hop to other keymesh proxies (keymesh-mux/1, docs/proxy.md): one pooled TLS connection per concurrent request, as to any other server")
    .option('--upstream-tls-max-session-keys <n>', "TLS sessions to keep for resumption on those clusters (Envoy's max_session_keys, default 1; 0: every connection a full handshake)", uint32AtLeast(0))
    .action(async (f: ProxyFlags) => {
      const nodeId = nodeIdOf(f, kind);
      const caPem = await readFile(f.controlPlaneCa, 'utf8').catch((e: NodeJS.ErrnoException) => {
        throw new ConfigError(`--control-plane-ca ${f.controlPlaneCa}: cannot read it (${e.code ?? e.message})`);
      });
      const joinToken = f.joinTokenFile !== undefined
        ? (await readFile(f.joinTokenFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
          throw new ConfigError(`--join-token-file ${f.joinTokenFile}: cannot read it (${e.code ?? e.message})`);
        })).trim()
        : process.env[TOKEN_ENV];
      const admin = parseListen(f.admin, '--admin');
      const placement = Object.fromEntries(Object.entries({
        listen_address: f.listenAddress, ingress_port: f.ingressPort, egress_port: f.egressPort, app_address: f.appAddress,
        tcp_egress_address: f.tcpEgressAddress, upstream_max_requests_per_connection: f.upstreamMaxRequestsPerConnection,
        upstream_tls_max_session_keys: f.upstreamTlsMaxSessionKeys,
      }).filter(([, v]) => v !== undefined));
      const sidecar = await startSidecar({
        nodeId,
        xdsAddress: f.xds,
        identityEndpoint: f.identityEndpoint ?? `https://${DEFAULT_WORKLOAD_LISTEN}`,
        controlPlaneCaPem: caPem,
        ...(joinToken ? { joinToken } : {}),
        ...(f.stateDir ? { stateDir: join(f.stateDir, 'svid') } : {}),
        admin,
        ...(Object.keys(placement).length > 0 ? { placement } : {}),
        ...(f.mux ? {} : { mux: false }),
      });
      process.stdout.write(`keymesh ${kind === 'virtualNode' ? 'proxy' : 'gateway'}: admin on ${admin.host}:${sidecar.adminPort}\n`);
      void sidecar.ready.then(() => process.stdout.write(`keymesh ${kind === 'virtualNode' ? 'proxy' : 'gateway'}: ready (every listener serving)\n`));
      let closing = false;
      const stop = (signal: string) => {
        if (closing) return;
        closing = true;
        process.stdout.write(`keymesh: ${signal}, draining\n`);
        sidecar.close().then(() => process.exit(0), () => process.exit(1));
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    });
}

export function registerProxyCommands(program: Command): void {
  define(program.command('proxy'), 'virtualNode')
    .description("Run the sidecar proxy of a virtual node: mTLS, routing and stats from the control plane's configuration.");
  define(program.command('gateway'), 'virtualGateway')
    .description('Run a virtual gateway: the entry into the mesh, configured by the control plane.');
}

// `keymesh server`: the composition root of the control plane. It picks the concrete store, wires the
// manager and the API, and owns start-up and shutdown.
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createIdentityServer } from '../api/identity/identity-server.ts';
import { loadControlPlaneTls } from '../api/identity/control-plane-tls.ts';
import { createApiServer } from '../api/server.ts';
import { systemClock } from '../base/clock.ts';
import { CertificateAuthority } from '../ca/authority.ts';
import { formatExportLines, resolveAdminCredentials } from '../config/credentials.ts';
import type { ServerConfig } from '../config/server-config.ts';
import { parseLimits } from '../mesh/limits.ts';
import { ResourceManager } from '../mesh/manager.ts';
import { EndpointRegistry } from '../discovery/endpoint-registry.ts';
import { SqliteCaStore } from '../store/sqlite/sqlite-ca-store.ts';
import { SqliteEndpointStore } from '../store/sqlite/sqlite-endpoint-store.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import { XdsBundleDistribution } from '../xds/bundle-distribution.ts';
import { createControlPlaneXds } from '../xds/control-plane-xds.ts';
import type { XdsLog } from '../xds/sources.ts';

/** How often the CA retires expired CAs, renews managed certificates and refreshes CRLs. */
const MAINTENANCE_EVERY_MS = 30_000;

export interface RunningServer {
  url: string;
  /** The workload identity endpoint (HTTPS). */
  identityUrl: string;
  /** host:port of the xDS server (ADS over gRPC, mTLS). */
  xdsAddress: string;
  close(): Promise<void>;
}

/** A host as it goes into a URL or host:port: IPv6 addresses in brackets. */
function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** Creates the data directory owner-only; warns when an existing one is readable by others. */
function prepareDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mode = statSync(dir).mode & 0o777;
  if (mode & 0o077) {
    chmodSync(dir, 0o700);
    process.stderr.write(`keymesh: tightened ${dir} from ${mode.toString(8)} to 700 (it holds keys and credentials)\n`);
  }
}

export async function startServer(config: ServerConfig, out: NodeJS.WritableStream = process.stdout): Promise<RunningServer> {
  prepareDataDir(config.dataDir);
  const limits = parseLimits(config.limitOverrides);
  const credentials = config.insecureNoAuth ? null : resolveAdminCredentials({ dataDir: config.dataDir, env: process.env });
  const dbPath = join(config.dataDir, 'keymesh.db');
  const store = SqliteStore.open(dbPath);
  const caStore = SqliteCaStore.open(dbPath);
  const endpointStore = SqliteEndpointStore.open(dbPath);
  const registry = new EndpointRegistry({
    store: endpointStore, clock: systemClock, graceMs: config.endpointGraceMs,
    onError: (what, e) => process.stderr.write(`keymesh: ${what}: ${(e as Error).message}\n`),
  });
  const closeStores = async () => {
    await registry.close();
    await endpointStore.close();
    await caStore.close();
    await store.close();
  };
  const logger = config.logLevel === 'silent' ? false : { level: config.logLevel };
  // Rotation's activate asks the xDS server whether every proxy holds the new bundle (attached below).
  const distribution = new XdsBundleDistribution();
  const authority = new CertificateAuthority({
    caStore, resources: store, dataDir: config.dataDir, clock: systemClock, region: config.region, account: config.accountId, distribution,
    ...(config.caPassphrase !== undefined ? { passphrase: config.caPassphrase } : {}),
    onListenerError: (e) => process.stderr.write(`keymesh: a CA event listener failed: ${(e as Error).message}\n`),
  });
  const manager = new ResourceManager({
    store, clock: systemClock, account: config.accountId, region: config.region, limits,
    externalReferences: { exists: (kind, arn) => authority.exists(kind, arn) },
  });
  let cpTls;
  try {
    await registry.start();
    cpTls = await loadControlPlaneTls(config.dataDir, systemClock, config.caPassphrase);
  } catch (e) {
    await closeStores();
    throw e;
  }
  const identity = createIdentityServer({ authority, tls: cpTls, logger });
  // xDS: configuration from the store through translate, secrets from the CA, proxies authenticated by SVID.
  const controlPlaneXds = await createControlPlaneXds({
    store, authority, distribution, registry, tls: cpTls, log: xdsLogger(config.logLevel),
    onError: (what, e) => process.stderr.write(`keymesh: ${what}: ${(e as Error).message}\n`),
  });
  const xds = controlPlaneXds.server;
  const closeXds = () => controlPlaneXds.close();
  const workloadHost = urlHost(config.workloadHost);
  // Join tokens name the identity endpoint; with port 0 the OS picks it, so it is known only once bound.
  let identityUrl = `https://${workloadHost}:${config.workloadPort}`;
  const app = createApiServer({
    manager,
    clock: systemClock,
    credentials: credentials ? { secretFor: (id: string) => (id === credentials.accessKeyId ? credentials.secretAccessKey : undefined) } : null,
    rateLimit: config.rateLimit,
    logger,
    ca: { authority, controlPlaneCaPem: cpTls.caCertPem, identityEndpoint: () => identityUrl },
    proxies: { proxies: () => xds.proxies() },
    endpoints: {
      registry,
      // An operator may only register instances of virtual nodes that exist (a typo would route nowhere).
      nodeExists: async (mesh, virtualNode) => (await store.get({ kind: 'virtualNode', mesh, parent: '', name: virtualNode })) !== undefined,
    },
  });
  const xdsHost = urlHost(config.xdsHost);
  let xdsPort: number;
  try {
    await app.listen({ host: config.host, port: config.port });
    await identity.listen({ host: config.workloadHost, port: config.workloadPort });
    xdsPort = await xds.listen(`${xdsHost}:${config.xdsPort}`);
  } catch (e) {
    await app.close();
    await identity.close();
    await closeXds();
    await closeStores();
    throw e;
  }
  const xdsAddress = `${xdsHost}:${xdsPort}`;
  const maintenance = setInterval(() => {
    authority.maintain().then(
      (r) => {
        if (r.retired.length || r.renewed.length) out.write(`keymesh: CA upkeep: retired ${r.retired.join(', ') || 'none'}; renewed ${r.renewed.join(', ') || 'none'}\n`);
      },
      (e: unknown) => process.stderr.write(`keymesh: CA upkeep failed: ${(e as Error).message}\n`),
    );
  }, MAINTENANCE_EVERY_MS);
  maintenance.unref();
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const host = urlHost(config.host);
  const url = `http://${host}:${port}`;
  const identityAddr = identity.server.address();
  identityUrl = `https://${workloadHost}:${typeof identityAddr === 'object' && identityAddr ? identityAddr.port : config.workloadPort}`;

  // Warnings first: whoever waits for the "listening" line has them by then.
  if (!credentials) {
    process.stderr.write('WARNING: --insecure-no-auth: requests are NOT authenticated. Anyone who can reach this port can change the mesh. Use only for local experiments.\n');
  }
  if (!['127.0.0.1', '::1', 'localhost'].includes(config.host)) {
    process.stderr.write(`WARNING: listening on ${config.host} without TLS: requests are signed but not encrypted; put the API behind TLS or keep it on loopback.\n`);
  }
  if (credentials?.source === 'generated') {
    out.write(`Generated admin credentials (stored in ${join(config.dataDir, 'credentials.json')}, mode 600). Use them with:\n`);
    out.write(`  ${formatExportLines(credentials, config.region)}\n`);
  } else if (credentials) {
    out.write(`Admin credentials: ${credentials.source === 'env' ? 'from KEYMESH_ACCESS_KEY_ID / KEYMESH_SECRET_ACCESS_KEY' : `stored in ${join(config.dataDir, 'credentials.json')}; print them with: keymesh credentials --data-dir ${config.dataDir}`}\n`);
  }
  out.write(`keymesh server listening on ${url} (account ${config.accountId}, region ${config.region}, data ${config.dataDir})\n`);
  out.write(`Workload identity endpoint on ${identityUrl} (workloads pin ${cpTls.caCertPath}${config.caPassphrase !== undefined ? '; CA keys encrypted at rest' : ''})\n`);
  out.write(`xDS (ADS over gRPC, mTLS) on ${xdsAddress} (proxies present their SVIDs and pin ${cpTls.caCertPath})\n`);
  out.write(`Try: aws appmesh list-meshes --endpoint-url ${url}\n`);
  return {
    url,
    identityUrl,
    xdsAddress,
    close: async () => {
      clearInterval(maintenance);
      await closeXds();
      await identity.close();
      await app.close();
      await closeStores();
    },
  };
}

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

/** xDS events on stderr, one line each, at or above the server's log level. */
function xdsLogger(level: string): XdsLog {
  const min = level === 'silent' ? Infinity : LEVELS.indexOf(level);
  return (lvl, message, fields) => {
    if (LEVELS.indexOf(lvl) < min) return;
    process.stderr.write(`keymesh xds ${lvl}: ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`);
  };
}

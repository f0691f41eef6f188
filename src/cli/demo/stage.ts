// The stage a walkthrough runs on, all in this process and on loopback: a temporary directory, a control plane
// (`keymesh server`'s startServer on ports chosen by the OS), certificate files (`keymesh certs`), tiny HTTP
// applications, and keymesh's proxy (startSidecar) as sidecars and gateways, each on its own loopback
// address. Everything started is stopped by close(), newest first, and the directory is removed.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatExportLines, resolveAdminCredentials } from '../../config/credentials.ts';
import { buildServerConfig, DEFAULT_REGION } from '../../config/server-config.ts';
import { ConfigError } from '../../errors/index.ts';
import type { ProxyLog } from '../../proxy/runtime.ts';
import { startSidecar } from '../../proxy/sidecar.ts';
import { createCaFiles, issueCertFiles } from '../certs-command.ts';
import { startServer } from '../server-command.ts';
import { AppMeshApi } from './api.ts';
import { withTimeout } from './probe.ts';
import type { Report } from './report.ts';

/** What a walkthrough leaves for the end of the run. */
export interface WalkthroughResult {
  /** The summary lines printed after a successful run. */
  readonly summary: readonly string[];
  /** With --keep: how to poke what is still running, a comment and its commands each. */
  readonly keep: readonly { readonly comment: string; readonly commands: readonly string[] }[];
}

/** One seed's walkthrough (one module each: seed004.ts, ...). */
export interface Walkthrough {
  /** The `keymesh demo NAME` argument. */
  readonly name: string;
  readonly seed: string;
  readonly title: string;
  run(stage: Stage): Promise<WalkthroughResult>;
}

/** A step did not behave as its seed says; the message says how. */
export class StepFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepFailed';
  }
}

/** How long one component may take to stop before the rest of the teardown goes on without it. */
const CLOSE_TIMEOUT_MS = 5_000;

export class Stage {
  /** The temporary directory: the control plane's data, the certificate files. */
  readonly dir: string;
  readonly report: Report;
  readonly #closers: { what: string; close: () => Promise<void> }[] = [];
  #closed: Promise<void> | undefined;

  constructor(report: Report, prefix = 'keymesh-demo-') {
    this.report = report;
    this.dir = mkdtempSync(join(tmpdir(), prefix));
  }

  get closing(): boolean {
    return this.#closed !== undefined;
  }

  /** Registers something to stop at close(), before everything registered earlier. */
  onClose(what: string, close: () => Promise<void>): void {
    this.#closers.push({ what, close });
  }

  /** Stops everything, newest first (each bounded), then removes the directory. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      for (const { what, close } of [...this.#closers].reverse()) {
        try {
          await withTimeout(close(), CLOSE_TIMEOUT_MS, `stopping ${what} took too long`);
        } catch (e) {
          this.report.warn('demo', `stopping ${what}: ${(e as Error).message}`);
        }
      }
      rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.#closed;
  }

  /** A log for startSidecar: warnings and errors as one line each on stderr; nothing once stopping. */
  quietLog(source: string): ProxyLog {
    return (level, message, fields) => {
      if (level === 'info' || this.closing) return;
      this.report.warn(source, `${level}: ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`);
    };
  }
}

// --- loopback addresses ---------------------------------------------------------------------------------

function canListen(host: string, port: number): Promise<true | string> {
  return new Promise((resolve) => {
    const server = createNetServer();
    server.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * `preferred` unless this user may not listen on it (ports below 1024 need privileges on most systems: seed
 * 002's port 80), then `fallback`. A port merely in use keeps `preferred`: freeLoopbackAddresses moves on.
 */
export async function permittedPort(ip: string, preferred: number, fallback: number): Promise<number> {
  return (await canListen(ip, preferred)) === 'EACCES' ? fallback : preferred;
}

/**
 * `count` loopback addresses (from `candidates`, in order) on which every one of `ports` is free right now,
 * so that each workload keeps the seed's ports on an address of its own.
 */
export async function freeLoopbackAddresses(count: number, ports: readonly number[], candidates: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  const busy: string[] = [];
  for (const ip of candidates) {
    let free = true;
    for (const port of ports) {
      const r = await canListen(ip, port);
      if (r === 'EADDRNOTAVAIL') {
        throw new ConfigError(`cannot listen on ${ip}: this system has no such loopback address (the demo gives each workload its own 127.0.0.x; on macOS add them with: sudo ifconfig lo0 alias ${ip} up)`);
      }
      if (r !== true) {
        free = false;
        busy.push(`${ip}:${port} (${r})`);
        break;
      }
    }
    if (free) found.push(ip);
    if (found.length === count) return found;
  }
  throw new ConfigError(`no ${count} loopback addresses with ports ${ports.join(', ')} free among ${candidates[0]}..${candidates.at(-1)}: ${busy.join(', ')}`);
}

// --- the control plane -----------------------------------------------------------------------------------

export interface ControlPlane {
  /** The App Mesh API, e.g. http://127.0.0.1:41234. */
  readonly url: string;
  readonly identityUrl: string;
  readonly xdsAddress: string;
  readonly dataDir: string;
  readonly region: string;
  readonly api: AppMeshApi;
  /** `export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=...`. */
  readonly exportLine: string;
  /** Where the admin credentials came from: the environment or generated into the data directory. */
  readonly credentialsSource: 'env' | 'generated' | 'stored';
}

/**
 * `keymesh server` in this process: data in the stage's directory, API, identity endpoint and xDS on
 * 127.0.0.1 with ports chosen by the OS, log level warn (warnings and errors still show). Credentials:
 * KEYMESH_ACCESS_KEY_ID / KEYMESH_SECRET_ACCESS_KEY when set, otherwise generated for this run.
 */
export async function startControlPlane(stage: Stage, env: NodeJS.ProcessEnv = process.env): Promise<ControlPlane> {
  const dataDir = join(stage.dir, 'server');
  const config = buildServerConfig({
    dataDir, listen: '127.0.0.1:0', workloadListen: '127.0.0.1:0', xdsListen: '127.0.0.1:0', logLevel: 'warn', region: DEFAULT_REGION,
  }, env);
  // Its start-up lines (addresses, credentials) are the demo's to tell; they are not printed as they are.
  const sink = { write: () => true } as unknown as NodeJS.WritableStream;
  const server = await startServer(config, sink);
  stage.onClose('the control plane', () => server.close());
  const credentials = resolveAdminCredentials({ dataDir, env, create: false });
  const api = new AppMeshApi({ endpoint: server.url, accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey, region: config.region });
  return {
    url: server.url,
    identityUrl: server.identityUrl,
    xdsAddress: server.xdsAddress,
    dataDir,
    region: config.region,
    api,
    exportLine: formatExportLines(credentials, config.region),
    credentialsSource: credentials.source,
  };
}

// --- certificate files -----------------------------------------------------------------------------------

export interface LeafCertificate {
  /** File name prefix: NAME_key.pem, NAME_cert.pem, NAME_cert_chain.pem. */
  readonly name: string;
  readonly dns: readonly string[];
}

/** What `keymesh certs ca` and `keymesh certs issue` write (seed 004's certs.sh): a CA and its leaves. */
export async function makeCertificates(dir: string, leaves: readonly LeafCertificate[]): Promise<void> {
  const now = new Date();
  // The demo's own throwaway CA: never encrypted with KEYMESH_CA_PASSPHRASE, whatever the environment says.
  await createCaFiles({ out: dir, name: 'ca', keyType: 'ec-p256', days: '30', pathLen: '0' }, undefined, now);
  for (const leaf of leaves) {
    await issueCertFiles({ caDir: dir, caName: 'ca', name: leaf.name, dns: [...leaf.dns], uri: [], days: '30', keyType: 'ec-p256', out: dir }, undefined, now);
  }
}

// --- applications ----------------------------------------------------------------------------------------

export interface App {
  readonly url: string;
}

/** A tiny HTTP application on ip:port; stopped with the stage (open connections cut). */
export async function startApp(stage: Stage, what: string, ip: string, port: number, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<App> {
  const server = createServer(handler);
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => {
      server.off('error', reject);
      resolve();
    });
  });
  stage.onClose(what, () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  }));
  return { url: `http://${ip}:${port}` };
}

// --- proxies ---------------------------------------------------------------------------------------------

export interface ProxyOptions {
  readonly kind: 'virtualNode' | 'virtualGateway';
  readonly mesh: string;
  readonly name: string;
  /** Its own loopback address: its listeners bind here, and its application (if any) listens here. */
  readonly ip: string;
  readonly ingressPort?: number;
  readonly egressPort?: number;
  /** The admin interface's port on `ip` (as the seeds' Envoys had 9901 on their own host); default 127.0.0.1, a free port. */
  readonly adminPort?: number;
}

export interface Proxy {
  readonly name: string;
  readonly adminHost: string;
  readonly adminPort: number;
}

/** How long a proxy may take to get its identity and a configuration whose listeners all serve. */
const PROXY_READY_MS = 30_000;

/**
 * keymesh's proxy in this process (what `keymesh proxy` / `keymesh gateway` run): a join token from the
 * control plane, its identity, its configuration over xDS; resolves once every listener serves.
 */
export async function startProxy(stage: Stage, cp: ControlPlane, o: ProxyOptions): Promise<Proxy> {
  const { token, controlPlaneCaPem } = await cp.api.joinToken(o.mesh, o.kind, o.name);
  const adminHost = o.adminPort !== undefined ? o.ip : '127.0.0.1';
  const sidecar = await withTimeout(startSidecar({
    nodeId: `mesh/${o.mesh}/${o.kind}/${o.name}`,
    xdsAddress: cp.xdsAddress,
    identityEndpoint: cp.identityUrl,
    controlPlaneCaPem,
    joinToken: token,
    admin: { host: adminHost, port: o.adminPort ?? 0 },
    placement: {
      listen_address: o.ip,
      app_address: o.ip,
      ...(o.ingressPort !== undefined ? { ingress_port: o.ingressPort } : {}),
      ...(o.egressPort !== undefined ? { egress_port: o.egressPort } : {}),
    },
    log: stage.quietLog(o.name),
  }), PROXY_READY_MS, `the proxy of ${o.name} got no identity from the control plane`);
  stage.onClose(`the proxy of ${o.name}`, () => sidecar.close());
  await withTimeout(sidecar.ready, PROXY_READY_MS, `the proxy of ${o.name} did not start serving its listeners (see the warnings above)`);
  return { name: o.name, adminHost, adminPort: sidecar.adminPort };
}

// `keymesh server` configuration: flags (and, for secrets, the environment) turned into one frozen,
// validated object. Everything else receives it as a parameter.
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { ConfigError } from '../errors/index.ts';
import { parseDuration } from './durations.ts';

export interface ServerConfig {
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly region: string;
  readonly accountId: string;
  readonly insecureNoAuth: boolean;
  readonly limitOverrides: readonly string[];
  readonly rateLimit: { readonly ratePerSecond: number; readonly burst: number };
  readonly logLevel: string;
  /** The workload identity endpoint (HTTPS; join-token bootstrap and mTLS renewal). */
  readonly workloadHost: string;
  readonly workloadPort: number;
  /** The xDS server (ADS over gRPC, mTLS with the proxies' SVIDs). */
  readonly xdsHost: string;
  readonly xdsPort: number;
  /** Encrypts CA private keys at rest (KEYMESH_CA_PASSPHRASE); unset: file modes only. Never logged. */
  readonly caPassphrase: string | undefined;
  /** How long a disconnected sidecar stays registered (and a restart keeps the previous registrations). */
  readonly endpointGraceMs: number;
}

export interface ServerFlags {
  dataDir?: string;
  listen?: string;
  region?: string;
  accountId?: string;
  insecureNoAuth?: boolean;
  limit?: string[];
  rateLimit?: string;
  logLevel?: string;
  workloadListen?: string;
  xdsListen?: string;
  endpointGrace?: string;
}

export const DEFAULT_LISTEN = '127.0.0.1:7000';
export const DEFAULT_WORKLOAD_LISTEN = '127.0.0.1:7443';
/** Where the xDS server (ADS over gRPC, mTLS) listens. */
export const DEFAULT_XDS_LISTEN = '127.0.0.1:7444';
export const CA_PASSPHRASE_ENV = 'KEYMESH_CA_PASSPHRASE';
/** LocalStack's convention for a local stand-in account; override with --account-id. */
export const DEFAULT_ACCOUNT = '000000000000';
export const DEFAULT_REGION = 'us-east-1';
export const DEFAULT_ENDPOINT_GRACE = '30s';

export function defaultDataDir(): string {
  return resolve(homedir(), '.keymesh');
}

/** Parses `host:port`, `[v6]:port` or `:port`. */
export function parseListen(value: string, flag = '--listen'): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new ConfigError(`${flag} ${value}: expected HOST:PORT (e.g. 127.0.0.1:7000 or [::1]:7000), port 0-65535`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export function buildServerConfig(flags: ServerFlags, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const { host, port } = parseListen(flags.listen ?? DEFAULT_LISTEN);
  const workload = parseListen(flags.workloadListen ?? DEFAULT_WORKLOAD_LISTEN, '--workload-listen');
  const xds = parseListen(flags.xdsListen ?? DEFAULT_XDS_LISTEN, '--xds-listen');
  const caPassphrase = env[CA_PASSPHRASE_ENV];
  if (caPassphrase !== undefined && caPassphrase.length < 8) {
    throw new ConfigError(`${CA_PASSPHRASE_ENV} is set but shorter than 8 characters; use a longer passphrase or unset it`);
  }
  const accountId = flags.accountId ?? DEFAULT_ACCOUNT;
  if (!/^\d{12}$/.test(accountId)) throw new ConfigError(`--account-id ${accountId}: must be 12 digits, like an AWS account id`);
  const region = flags.region ?? DEFAULT_REGION;
  if (!/^[a-z]{2}(-[a-z0-9]+)+$/.test(region)) throw new ConfigError(`--region ${region}: expected a region name such as us-east-1`);
  const rate = flags.rateLimit === undefined ? 100 : Number(flags.rateLimit);
  if (!Number.isFinite(rate) || rate <= 0) throw new ConfigError(`--rate-limit ${flags.rateLimit}: must be a positive number of requests per second`);
  const logLevel = flags.logLevel ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError(`--log-level ${logLevel}: expected one of fatal, error, warn, info, debug, trace, silent`);
  }
  return Object.freeze({
    dataDir: resolve(flags.dataDir ?? defaultDataDir()),
    host,
    port,
    region,
    accountId,
    insecureNoAuth: flags.insecureNoAuth === true,
    limitOverrides: Object.freeze([...(flags.limit ?? [])]),
    rateLimit: Object.freeze({ ratePerSecond: rate, burst: Math.max(1, Math.ceil(rate * 2)) }),
    logLevel,
    workloadHost: workload.host,
    workloadPort: workload.port,
    xdsHost: xds.host,
    xdsPort: xds.port,
    caPassphrase,
    endpointGraceMs: parseDuration(flags.endpointGrace ?? DEFAULT_ENDPOINT_GRACE, '--endpoint-grace'),
  });
}

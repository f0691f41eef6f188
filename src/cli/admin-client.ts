// The client side of keymesh's admin endpoints, for CLI commands: SigV4-signed JSON requests to a running
// `keymesh server`, with the same credentials the AWS CLI uses against it.
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import { resolveAdminCredentials } from '../config/credentials.ts';
import { ConfigError, KeymeshError } from '../errors/index.ts';

export interface AdminTarget {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** An error answered by the server, shown to the user as `Type: message`. */
export class AdminCallError extends KeymeshError {
  readonly status: number;
  readonly type: string;
  constructor(status: number, type: string, message: string) {
    super(status === 404 ? 'not-found' : status >= 500 ? 'internal' : 'bad-request', 'KM_ERR_ADMIN_CALL', `${type}: ${message}`);
    this.status = status;
    this.type = type;
  }
}

/**
 * Credentials: the AWS_* variables when set (as for the AWS CLI), else KEYMESH_* or the data directory's
 * stored admin credentials.
 */
export function adminTarget(opts: { endpoint: string; dataDir: string; env: NodeJS.ProcessEnv }): AdminTarget {
  const region = opts.env.AWS_REGION || opts.env.AWS_DEFAULT_REGION || 'us-east-1';
  if (opts.env.AWS_ACCESS_KEY_ID && opts.env.AWS_SECRET_ACCESS_KEY) {
    return { endpoint: opts.endpoint, accessKeyId: opts.env.AWS_ACCESS_KEY_ID, secretAccessKey: opts.env.AWS_SECRET_ACCESS_KEY, region };
  }
  const creds = resolveAdminCredentials({ dataDir: opts.dataDir, env: opts.env, create: false });
  return { endpoint: opts.endpoint, accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, region };
}

export async function adminCall<T>(target: AdminTarget, method: string, path: string, body?: unknown): Promise<T> {
  let url: URL;
  try {
    url = new URL(path, target.endpoint);
  } catch {
    throw new ConfigError(`--endpoint ${target.endpoint}: not a URL (e.g. http://127.0.0.1:7000)`);
  }
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const query: Record<string, string> = {};
  url.searchParams.forEach((v, k) => { query[k] = v; });
  const signer = new SignatureV4({
    service: 'appmesh',
    region: target.region,
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
    sha256: Sha256,
  });
  const signed = await signer.sign({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname,
    query,
    headers: { host: url.host, ...(payload !== undefined ? { 'content-type': 'application/json' } : {}) },
    body: payload,
  });
  let res: Response;
  try {
    res = await fetch(url, { method, headers: signed.headers as Record<string, string>, ...(payload !== undefined ? { body: payload } : {}) });
  } catch (e) {
    throw new ConfigError(`cannot reach keymesh server at ${target.endpoint}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`);
  }
  const text = await res.text();
  if (!res.ok) {
    let message = text;
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? text;
    } catch {
      // not JSON: show the text as it is
    }
    throw new AdminCallError(res.status, res.headers.get('x-amzn-errortype') ?? `HTTP ${res.status}`, message);
  }
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? JSON.parse(text) : text) as T;
}

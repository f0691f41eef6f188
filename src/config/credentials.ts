// The admin credentials `keymesh server` verifies SigV4 signatures against. From the environment when set,
// else from `<dataDir>/credentials.json`, else generated on first start and stored there (mode 600).
// No message here ever contains a secret: errors name the variable or file, never the value.
import { randomBytes, randomInt } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors/index.ts';

export interface AdminCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  source: 'env' | 'generated' | 'stored';
}

export interface ResolveOptions {
  dataDir: string;
  env: Record<string, string | undefined>;
  /** Generate and store credentials when none exist (`keymesh server`); false just reads (`keymesh credentials`). */
  create?: boolean;
}

export const CREDENTIALS_FILE = 'credentials.json';
const UPPER_DIGITS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const SECRET_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+';

export function resolveAdminCredentials({ dataDir, env, create = true }: ResolveOptions): AdminCredentials {
  // An empty variable counts as unset, so `KEYMESH_ACCESS_KEY_ID= keymesh ...` turns the override off.
  const id = env.KEYMESH_ACCESS_KEY_ID || undefined;
  const secret = env.KEYMESH_SECRET_ACCESS_KEY || undefined;
  if (id !== undefined || secret !== undefined) {
    if (id === undefined) throw new ConfigError('KEYMESH_SECRET_ACCESS_KEY is set but KEYMESH_ACCESS_KEY_ID is not; set both or neither.');
    if (secret === undefined) throw new ConfigError('KEYMESH_ACCESS_KEY_ID is set but KEYMESH_SECRET_ACCESS_KEY is not; set both or neither.');
    const problem = credentialProblem(id, secret, { id: 'KEYMESH_ACCESS_KEY_ID', secret: 'KEYMESH_SECRET_ACCESS_KEY' });
    if (problem) throw new ConfigError(problem);
    return { accessKeyId: id, secretAccessKey: secret, source: 'env' };
  }

  const file = join(dataDir, CREDENTIALS_FILE);
  const stored = readStored(file);
  if (stored) return { ...stored, source: 'stored' };
  if (!create) {
    throw new ConfigError(`No admin credentials: ${file} does not exist. Start \`keymesh server --data-dir ${dataDir}\` once to generate them, or set KEYMESH_ACCESS_KEY_ID and KEYMESH_SECRET_ACCESS_KEY.`);
  }
  const generated = { accessKeyId: `KM${randomString(UPPER_DIGITS, 18)}`, secretAccessKey: randomString(SECRET_CHARS, 40) };
  writeAtomically(dataDir, file, `${JSON.stringify(generated, null, 2)}\n`);
  return { ...generated, source: 'generated' };
}

/** One shell line that points the AWS CLI and SDKs at these credentials. */
export function formatExportLines(creds: { accessKeyId: string; secretAccessKey: string }, region: string): string {
  return `export AWS_ACCESS_KEY_ID=${creds.accessKeyId} AWS_SECRET_ACCESS_KEY=${creds.secretAccessKey} AWS_DEFAULT_REGION=${region}`;
}

/** Why a key pair is unusable, naming where it came from but not the values; null when fine. */
function credentialProblem(id: unknown, secret: unknown, names: { id: string; secret: string }): string | null {
  // AWS uses 20 upper-case alphanumerics (AKIA...); any 16..128 letters and digits will sign fine.
  if (typeof id !== 'string' || !/^[A-Za-z0-9]{16,128}$/.test(id)) return `${names.id} must be 16 to 128 letters and digits (like AWS's AKIA...).`;
  if (typeof secret !== 'string' || secret.length < 16 || /\s/.test(secret)) return `${names.secret} must be at least 16 characters with no whitespace.`;
  return null;
}

function readStored(file: string): { accessKeyId: string; secretAccessKey: string } | null {
  let mode: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new ConfigError(`${file} is not a regular file.`);
    mode = st.mode & 0o777;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e instanceof ConfigError ? e : new ConfigError(`Cannot read ${file}: ${(e as Error).message}`);
  }
  if (mode & 0o077) {
    throw new ConfigError(`${file} is mode ${mode.toString(8)}, but it holds the admin secret and must be readable only by its owner. Fix it with: chmod 600 ${file}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    // Not the parser's message: it quotes the text around the error, which may be the secret.
    const why = (e as NodeJS.ErrnoException).code ? (e as Error).message : 'it is not valid JSON';
    throw new ConfigError(`Cannot use ${file}: ${why}. Fix or delete it (keymesh then generates new credentials).`);
  }
  const { accessKeyId, secretAccessKey } = (parsed ?? {}) as Record<string, unknown>;
  const problem = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
    ? credentialProblem(accessKeyId, secretAccessKey, { id: 'accessKeyId', secret: 'secretAccessKey' })
    : 'expected a JSON object with accessKeyId and secretAccessKey.';
  if (problem) throw new ConfigError(`Cannot use ${file}: ${problem} Fix or delete it (keymesh then generates new credentials).`);
  return { accessKeyId: accessKeyId as string, secretAccessKey: secretAccessKey as string };
}

/** Unbiased: randomInt rejects out-of-range draws instead of taking a modulus. */
function randomString(alphabet: string, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

/** Readers see either no file or the whole file, and it is never readable by others, not even briefly. */
function writeAtomically(dir: string, file: string, text: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600); // exact mode whatever the umask
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new ConfigError(`Cannot store generated credentials in ${file}: ${(e as Error).message}`);
  }
}

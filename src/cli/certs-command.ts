// `keymesh certs`: certificate files for people who manage them themselves, the job seed 004's certs.sh
// does with openssl. `certs ca` writes ca_cert.pem + ca_key.pem; `certs issue` writes NAME_key.pem,
// NAME_cert.pem and NAME_cert_chain.pem (leaf, then CA), the files App Mesh's `tls.certificate.file` and
// `validation.trust.file` point at.
import { Command, Option } from 'commander';
import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '../errors/index.ts';
import { KEY_TYPES, type KeyType } from '../pki/api.ts';
import { certificateMatchesKey, createRootCa, issueLeaf } from '../pki/issue.ts';
import { exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem } from '../pki/keys.ts';
import { parseCertificatePem, toPem } from '../pki/pem.ts';
import { dnsNameProblem, uriProblem } from '../pki/san.ts';
import { verifyChain } from '../pki/verify.ts';

const DAY = 86_400_000;
/** Backdating covers clocks that run a little behind the one that signed (STYLE.md P8). */
const BACKDATE_MS = 60_000;
const PASSPHRASE_ENV = 'KEYMESH_CA_PASSPHRASE';

interface CommonFlags {
  out: string;
  name: string;
  keyType: KeyType;
  days: string;
  force?: boolean;
}

export interface CaFlags extends CommonFlags {
  pathLen: string;
  trustDomain?: string;
}

export interface IssueFlags extends CommonFlags {
  caDir: string;
  caName: string;
  dns: string[];
  uri: string[];
}

interface OutputFile {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
}

export function registerCertsCommand(program: Command): void {
  const certs = program
    .command('certs')
    .description('Create a CA and issue certificate files for file-based TLS (as certs.sh does with openssl).');

  certs
    .command('ca')
    .description('Create a self-signed CA: NAME_cert.pem and NAME_key.pem (mode 600).')
    .requiredOption('--out <dir>', 'directory to write the files to (created if missing)')
    .option('--name <name>', 'file name prefix and common name of the CA', 'ca')
    .addOption(new Option('--key-type <type>', 'CA key type').choices(KEY_TYPES).default('ec-p256'))
    .option('--days <n>', 'validity in days', '365')
    .option('--path-len <n>', 'how many intermediate CAs may sit below this one (0: it signs only leaves)', '0')
    .option('--trust-domain <domain>', 'add the SPIFFE trust-domain URI SAN spiffe://DOMAIN')
    .option('--force', 'replace existing files')
    .addHelpText('after', `
When ${PASSPHRASE_ENV} is set, the CA key is written encrypted (PKCS#8, AES-256-CBC) with it.

Example:
  keymesh certs ca --out ./certs`)
    .action(async (flags: CaFlags) => {
      process.stdout.write(await createCaFiles(flags, process.env[PASSPHRASE_ENV], new Date()));
    });

  certs
    .command('issue')
    .description('Issue a TLS server+client certificate signed by a CA made with `keymesh certs ca`.')
    .requiredOption('--ca-dir <dir>', 'directory holding the CA files')
    .option('--ca-name <name>', 'file name prefix of the CA files', 'ca')
    .requiredOption('--name <name>', 'file name prefix: writes NAME_key.pem, NAME_cert.pem, NAME_cert_chain.pem')
    .option('--dns <name>', 'DNS subject alternative name, e.g. colorteller.appmesh-mtls.local (repeatable; the first is also the common name)', collect, [])
    .option('--uri <uri>', 'URI subject alternative name, e.g. spiffe://appmesh-mtls.local/colorteller (repeatable)', collect, [])
    .option('--days <n>', 'validity in days (never past the CA\'s own expiry)', '30')
    .addOption(new Option('--key-type <type>', 'key type of the new certificate').choices(KEY_TYPES).default('ec-p256'))
    .requiredOption('--out <dir>', 'directory to write the files to (created if missing)')
    .option('--force', 'replace existing files')
    .addHelpText('after', `
Set ${PASSPHRASE_ENV} when the CA key is encrypted.

Example (seed 004's colorteller and gateway):
  keymesh certs issue --ca-dir ./certs --name colorteller --dns colorteller.appmesh-mtls.local --out ./certs
  keymesh certs issue --ca-dir ./certs --name gateway --dns gateway.appmesh-mtls.local --out ./certs`)
    .action(async (flags: IssueFlags) => {
      process.stdout.write(await issueCertFiles(flags, process.env[PASSPHRASE_ENV], new Date()));
    });
}

/** Writes the CA files; returns what to tell the user. */
export async function createCaFiles(flags: CaFlags, passphrase: string | undefined, now: Date): Promise<string> {
  const name = fileName('--name', flags.name);
  const days = wholeNumber('--days', flags.days, 1, 36_500);
  const pathLength = wholeNumber('--path-len', flags.pathLen, 0, 10);
  if (passphrase === '') throw new ConfigError(`${PASSPHRASE_ENV} is set but empty; unset it to write an unencrypted CA key`);
  const uri = flags.trustDomain === undefined ? undefined : `spiffe://${flags.trustDomain}`;
  const uriError = uri === undefined ? null : uriProblem(uri);
  if (uriError) throw new ConfigError(`--trust-domain ${flags.trustDomain}: ${uriError}`);

  const files = { cert: join(flags.out, `${name}_cert.pem`), key: join(flags.out, `${name}_key.pem`) };
  refuseExisting(Object.values(files), flags.force);
  const keys = await generateKeyPair(flags.keyType);
  const cert = await createRootCa(keys, {
    commonName: name,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + days * DAY),
    pathLength,
    ...(uri ? { uri } : {}),
  });
  writeFiles([
    { path: files.key, content: await exportPrivateKeyPem(keys, passphrase), mode: 0o600 },
    { path: files.cert, content: toPem(cert), mode: 0o644 },
  ], flags.force);
  const protection = passphrase ? `encrypted with ${PASSPHRASE_ENV}` : `not encrypted; set ${PASSPHRASE_ENV} to encrypt it`;
  return [
    `Created CA "${cert.subject}" (${flags.keyType}, pathlen ${pathLength}, valid until ${cert.notAfter.toISOString()}):`,
    `  ${files.cert}`,
    `  ${files.key} (mode 600, ${protection})`,
    `Next: keymesh certs issue --ca-dir ${flags.out} --name NAME --dns NAME.example --out DIR`,
    '',
  ].join('\n');
}

/** Issues a leaf signed by the CA in --ca-dir and writes its key, certificate and chain. */
export async function issueCertFiles(flags: IssueFlags, passphrase: string | undefined, now: Date): Promise<string> {
  const name = fileName('--name', flags.name);
  const caName = fileName('--ca-name', flags.caName);
  const days = wholeNumber('--days', flags.days, 1, 36_500);
  for (const dns of flags.dns) {
    const problem = dnsNameProblem(dns);
    if (problem) throw new ConfigError(`--dns ${dns}: ${problem}`);
  }
  for (const uri of flags.uri) {
    const problem = uriProblem(uri);
    if (problem) throw new ConfigError(`--uri ${uri}: ${problem}`);
  }
  if (flags.dns.length + flags.uri.length === 0) throw new ConfigError('give at least one --dns or --uri: clients check the certificate\'s subject alternative names');

  const files = {
    key: join(flags.out, `${name}_key.pem`),
    cert: join(flags.out, `${name}_cert.pem`),
    chain: join(flags.out, `${name}_cert_chain.pem`),
  };
  refuseExisting(Object.values(files), flags.force);
  const ca = await loadCa(flags.caDir, caName, passphrase, now);

  const keys = await generateKeyPair(flags.keyType);
  const requestedNotAfter = new Date(now.getTime() + days * DAY);
  const cert = await issueLeaf({
    publicKey: keys.publicKey,
    issuerCert: ca.cert,
    issuerKeys: ca.keys,
    // As in certs.sh's *_cert.cfg, the common name is the service's DNS name; URI-only certificates have none.
    ...(flags.dns[0] ? { commonName: flags.dns[0] } : {}),
    uris: flags.uri,
    dnsNames: flags.dns,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: requestedNotAfter,
  });
  // Validate what was signed before anyone relies on it (STYLE.md P8).
  await verifyChain(cert, [], [ca.cert], now);

  writeFiles([
    { path: files.key, content: await exportPrivateKeyPem(keys), mode: 0o600 },
    { path: files.cert, content: toPem(cert), mode: 0o644 },
    { path: files.chain, content: toPem([cert, ca.cert]), mode: 0o644 },
  ], flags.force);
  const sans = [...flags.dns.map((d) => `DNS:${d}`), ...flags.uri.map((u) => `URI:${u}`)].join(', ');
  const capped = ca.cert.notAfter < requestedNotAfter ? ` (cut to the CA's expiry; --days ${days} would outlive it)` : '';
  return [
    `Issued "${name}" (${flags.keyType}; ${sans}) signed by "${ca.cert.subject}", valid until ${cert.notAfter.toISOString()}${capped}:`,
    `  ${files.key} (mode 600)`,
    `  ${files.cert}`,
    `  ${files.chain} (certificate, then ${basename(ca.certPath)})`,
    `Check: openssl verify -CAfile ${ca.certPath} ${files.cert}`,
    '',
  ].join('\n');
}

async function loadCa(dir: string, name: string, passphrase: string | undefined, now: Date) {
  const certPath = join(dir, `${name}_cert.pem`);
  const keyPath = join(dir, `${name}_key.pem`);
  const certText = readCaFile(certPath, dir);
  const keyText = readCaFile(keyPath, dir);
  if (keyText.includes('ENCRYPTED') && !passphrase) throw new ConfigError(`${keyPath} is encrypted: set ${PASSPHRASE_ENV} to its passphrase`);
  const cert = parseCertificatePem(certText, certPath);
  const keys = await importPrivateKeyPem(keyText, keyPath, passphrase || undefined);
  if (!(await certificateMatchesKey(cert, keys))) throw new ConfigError(`${keyPath} is not the private key of ${certPath}`);
  if (now > cert.notAfter) throw new ConfigError(`${certPath} expired at ${cert.notAfter.toISOString()}; create a new CA with keymesh certs ca`);
  return { cert, keys, certPath };
}

function readCaFile(path: string, dir: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') throw new ConfigError(`missing CA file ${path}; create the CA with: keymesh certs ca --out ${dir}`);
    throw new ConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
}

function refuseExisting(paths: readonly string[], force: boolean | undefined): void {
  if (force) return;
  for (const path of paths) {
    if (existsSync(path)) throw new ConfigError(`${path} already exists; pass --force to replace it`);
  }
}

/**
 * Each file is written to a temporary file created with its final mode (so a key is never readable by
 * others, even briefly), then moved into place: renamed over the old file with --force, otherwise
 * hard-linked, which fails rather than replace a file that appeared meanwhile.
 */
function writeFiles(files: readonly OutputFile[], force: boolean | undefined): void {
  const temps: string[] = [];
  try {
    for (const file of files) {
      mkdirSync(dirname(file.path), { recursive: true, mode: 0o700 });
      const temp = join(dirname(file.path), `.${basename(file.path)}.${randomBytes(6).toString('hex')}.tmp`);
      writeFileSync(temp, file.content, { mode: file.mode, flag: 'wx' });
      temps.push(temp);
    }
    files.forEach((file, i) => {
      const temp = temps[i] as string;
      if (force) {
        renameSync(temp, file.path);
        return;
      }
      try {
        linkSync(temp, file.path);
      } catch (e) {
        if ((e as { code?: string }).code === 'EEXIST') throw new ConfigError(`${file.path} already exists; pass --force to replace it`);
        throw e;
      }
    });
  } finally {
    for (const temp of temps) rmSync(temp, { force: true });
  }
}

function fileName(flag: string, name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) {
    throw new ConfigError(`${flag} ${name}: use letters, digits, dots, dashes and underscores (it becomes part of file names)`);
  }
  return name;
}

function wholeNumber(flag: string, value: string, min: number, max: number): number {
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) throw new ConfigError(`${flag} ${value}: expected a whole number from ${min} to ${max}`);
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

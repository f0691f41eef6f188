// Certificate-signing throughput of keymesh's CA beside the `openssl` command line, in the same run, on the
// same requests, with the same CA key. See docs/benchmarks.md for what is measured and how to read it.
//
//   npm run bench                       default run (well under two minutes)
//   npm run bench -- --quick            a tiny run, to check that the bench works
//   npm run bench -- --concurrency 4 --rounds 5 --count-ec-p256 400 --count-rsa-2048 200 --csr-key rsa-2048
//
// Per SVID request keymesh's CA parses and verifies the CSR (parseCsr), signs a leaf with the CSR's URI and
// DNS SANs valid for one hour (issueLeaf) and encodes it (toPem). The baseline is one
// `openssl x509 -req` process per certificate, which also verifies the CSR's self-signature; it runs twice:
// as any script would run it, and "lean", with the system trust store (which `openssl x509` loads on every
// start) pointed at an empty file. The cost of starting a process is measured on its own (`openssl version`)
// so that it can be subtracted.
import type { X509Certificate } from '@peculiar/x509';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { KeyPair, KeyType } from '../src/pki/api.ts';
import { parseCsr, createCsr } from '../src/pki/csr.ts';
import { createRootCa, issueLeaf, newSerial } from '../src/pki/issue.ts';
import { exportPrivateKeyPem, generateKeyPair } from '../src/pki/keys.ts';
import { toPem } from '../src/pki/pem.ts';
import { fmtRate, fmtRatio, formatTable, median, opensslAsync, perSecond, runPool, timePass } from './harness.ts';

const CA_KEY_TYPES = ['ec-p256', 'rsa-2048'] as const satisfies readonly KeyType[];
type CaKeyType = (typeof CA_KEY_TYPES)[number];

const TRUST_DOMAIN = 'bench.keymesh.test';
/** What signLeaf does for SVIDs: notBefore 10 s in the past (clock skew), here with a one-hour TTL. */
const NOT_BEFORE_SKEW_MS = 10_000;
const TTL_MS = 3_600_000;
type Measure = 'keymesh' | 'spawn' | 'openssl' | 'opensslLean';
const MEASURES: readonly Measure[] = ['keymesh', 'spawn', 'openssl', 'opensslLean'];
/** Smallest chunk of CSRs the measurements take turns on (concurrent runs use 4 × concurrency). */
const CHUNK_MIN = 20;
/** How many certificates of each signer are checked with `openssl verify` (warm-up and timed output). */
const VERIFY_SAMPLE = 5;

interface Options {
  readonly quick: boolean;
  readonly counts: Readonly<Record<CaKeyType, number>>;
  readonly concurrency: number;
  readonly rounds: number;
  readonly warmup: number;
  readonly csrKey: KeyType;
}

interface ModeResult {
  readonly mode: 'sequential' | 'concurrent';
  readonly concurrency: number;
  /** Median wall-clock milliseconds of one pass over all CSRs. */
  readonly keymeshMs: number;
  readonly opensslMs: number;
  readonly opensslLeanMs: number;
  readonly spawnMs: number;
  readonly keymeshPerSec: number;
  readonly opensslRawPerSec: number;
  /** Certificates per second with the time of `openssl version` for the same count subtracted. */
  readonly opensslAdjustedPerSec: number;
  /** openssl without loading the system trust store (SSL_CERT_FILE/SSL_CERT_DIR empty). */
  readonly opensslLeanPerSec: number;
  readonly opensslLeanAdjustedPerSec: number;
  readonly spawnOnlyPerSec: number;
  /** keymeshPerSec divided by the openssl rate named. */
  readonly ratioVsRaw: number;
  readonly ratioVsAdjusted: number;
  readonly ratioVsLeanAdjusted: number;
  /** Every timed pass, for judging the spread. */
  readonly samplesMs: Readonly<Record<Measure, number[]>>;
}

interface KeyTypeResult {
  readonly caKeyType: CaKeyType;
  readonly csrKeyType: KeyType;
  readonly certificates: number;
  readonly modes: ModeResult[];
}

function readOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      concurrency: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      'count-ec-p256': { type: 'string' },
      'count-rsa-2048': { type: 'string' },
      'csr-key': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write('usage: node bench/signing.ts [--quick] [--concurrency N] [--rounds N] [--warmup N] [--count-ec-p256 N] [--count-rsa-2048 N] [--csr-key ec-p256|ec-p384|rsa-2048|rsa-3072]\n');
    process.exit(0);
  }
  const quick = values.quick;
  const int = (name: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} ${raw}: expected a whole number, at least ${min}`);
    return n;
  };
  const csrKey = (values['csr-key'] ?? 'ec-p256') as KeyType;
  if (!['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072'].includes(csrKey)) throw new Error(`--csr-key ${csrKey}: expected ec-p256, ec-p384, rsa-2048 or rsa-3072`);
  return {
    quick,
    counts: {
      'ec-p256': int('count-ec-p256', values['count-ec-p256'], quick ? 16 : 96, 1),
      'rsa-2048': int('count-rsa-2048', values['count-rsa-2048'], quick ? 16 : 64, 1),
    },
    concurrency: int('concurrency', values.concurrency, 8, 2),
    rounds: int('rounds', values.rounds, quick ? 1 : 3, 1),
    warmup: int('warmup', values.warmup, quick ? 3 : 10, 1),
    csrKey,
  };
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

interface Fixture {
  readonly dir: string;
  /** The environment of the lean openssl runs: no system trust store to load. */
  readonly leanEnv: NodeJS.ProcessEnv;
  readonly caCert: X509Certificate;
  readonly caKeys: KeyPair;
  readonly csrs: string[];
  readonly uris: string[];
  readonly dnsNames: string[];
}

/** A root CA of `caKeyType` (PEM cert + key on disk for openssl) and `count` CSRs, each with its openssl extension file. */
async function makeFixture(caKeyType: CaKeyType, count: number, csrKey: KeyType): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), `keymesh-bench-${caKeyType}-`));
  const now = Date.now();
  const caKeys = await generateKeyPair(caKeyType);
  const caCert = await createRootCa(caKeys, {
    commonName: `keymesh bench ${caKeyType} CA`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 24 * 3_600_000),
    pathLength: 0,
    uri: `spiffe://${TRUST_DOMAIN}`,
  });
  writeFileSync(join(dir, 'ca.pem'), toPem(caCert));
  writeFileSync(join(dir, 'ca.key'), await exportPrivateKeyPem(caKeys), { mode: 0o600 });
  writeFileSync(join(dir, 'empty-store.pem'), '');
  mkdirSync(join(dir, 'empty-store.d'));
  const leanEnv = { ...process.env, SSL_CERT_FILE: join(dir, 'empty-store.pem'), SSL_CERT_DIR: join(dir, 'empty-store.d') };

  const indexes = Array.from({ length: count }, (_, i) => i);
  const uris = indexes.map((i) => `spiffe://${TRUST_DOMAIN}/mesh/bench/virtualNode/svc-${i}`);
  const dnsNames = indexes.map((i) => `svc-${i}.bench.svc.cluster.local`);
  // Workload keys: like an identity client, one fresh key per request.
  const csrs = await runPool(indexes, 8, async (i) => createCsr(await generateKeyPair(csrKey), { uris: [uris[i] as string], dnsNames: [dnsNames[i] as string] }));
  const leafUsage = csrKey.startsWith('rsa') ? 'digitalSignature, keyEncipherment' : 'digitalSignature';
  for (const i of indexes) {
    writeFileSync(join(dir, `csr-${i}.pem`), csrs[i] as string);
    // The same extensions issueLeaf puts in an SVID (subject empty, so the SAN is critical).
    writeFileSync(join(dir, `ext-${i}.cnf`), [
      'basicConstraints = critical, CA:FALSE',
      `keyUsage = critical, ${leafUsage}`,
      'extendedKeyUsage = serverAuth, clientAuth',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      `subjectAltName = critical, URI:${uris[i]}, DNS:${dnsNames[i]}`,
      '',
    ].join('\n'));
  }
  return { dir, leanEnv, caCert, caKeys, csrs, uris, dnsNames };
}

/** One SVID signing as keymesh's CA does it: verify + read the CSR, sign the leaf, encode it. */
async function keymeshSign(f: Fixture, csrPem: string): Promise<string> {
  const csr = await parseCsr(csrPem);
  const now = Date.now();
  const cert = await issueLeaf({
    publicKey: csr.publicKey,
    issuerCert: f.caCert,
    issuerKeys: f.caKeys,
    uris: csr.uris,
    dnsNames: csr.dnsNames,
    notBefore: new Date(now - NOT_BEFORE_SKEW_MS),
    notAfter: new Date(now + TTL_MS),
  });
  return toPem(cert);
}

/** One `openssl x509 -req` process signing CSR `i` with the same CA key; writes os-<i>.pem. */
async function opensslSign(f: Fixture, i: number, lean: boolean): Promise<void> {
  await opensslAsync([
    'x509', '-req', '-in', `csr-${i}.pem`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-sha256', '-days', '1',
    '-extfile', `ext-${i}.cnf`, '-set_serial', `0x${newSerial()}`, '-out', `os-${i}.pem`,
  ], { cwd: f.dir, env: lean ? f.leanEnv : process.env });
}

async function spawnOnly(): Promise<void> {
  await opensslAsync(['version']);
}

/** `openssl verify` accepts the certificate against the CA, and it carries the requested names; throws otherwise. */
async function checkCertificate(f: Fixture, file: string, i: number, signer: string): Promise<void> {
  let verified: string;
  try {
    verified = await opensslAsync(['verify', '-x509_strict', '-no-CApath', '-no-CAstore', '-CAfile', 'ca.pem', file], { cwd: f.dir });
  } catch (e) {
    throw new Error(`sanity check failed: a ${signer}-signed certificate (${file}) does not pass openssl verify`, { cause: e });
  }
  if (!verified.includes(`${file}: OK`)) throw new Error(`sanity check failed: openssl verify said ${JSON.stringify(verified)} for ${signer}-signed ${file}`);
  const san = await opensslAsync(['x509', '-in', file, '-noout', '-ext', 'subjectAltName'], { cwd: f.dir });
  if (!san.includes(`URI:${f.uris[i]}`) || !san.includes(`DNS:${f.dnsNames[i]}`)) {
    throw new Error(`sanity check failed: ${signer}-signed ${file} does not carry URI:${f.uris[i]} and DNS:${f.dnsNames[i]}:\n${san}`);
  }
}

/** Checks VERIFY_SAMPLE certificates of keymesh's (spread over the pass) and of openssl's (CSRs 0..opensslCount-1). */
async function checkSample(f: Fixture, keymeshPems: readonly string[], opensslCount: number, tag: string): Promise<void> {
  const spread = (n: number) => {
    const step = Math.max(1, Math.floor(n / VERIFY_SAMPLE));
    return Array.from({ length: Math.min(n, VERIFY_SAMPLE) }, (_, k) => k * step);
  };
  for (const i of spread(keymeshPems.length)) {
    const file = `km-${tag}-${i}.pem`;
    writeFileSync(join(f.dir, file), keymeshPems[i] as string);
    await checkCertificate(f, file, i, 'keymesh');
  }
  for (const i of spread(opensslCount)) await checkCertificate(f, `os-${i}.pem`, i, 'openssl');
}

/** `items` in order, cut into chunks of near-equal size, each of about `target` items. */
function splitEvenly<T>(items: readonly T[], target: number): T[][] {
  const n = Math.max(1, Math.round(items.length / target));
  return Array.from({ length: n }, (_, c) => items.slice(Math.floor((c * items.length) / n), Math.floor(((c + 1) * items.length) / n)));
}

async function benchKeyType(caKeyType: CaKeyType, opts: Options): Promise<KeyTypeResult> {
  const count = opts.counts[caKeyType];
  log(`[${caKeyType}] creating the CA and ${count} ${opts.csrKey} CSRs...`);
  const f = await makeFixture(caKeyType, count, opts.csrKey);
  try {
    const indexes = f.csrs.map((_, i) => i);
    const km = (i: number) => keymeshSign(f, f.csrs[i] as string);
    const os = (i: number) => opensslSign(f, i, false);
    const osLean = (i: number) => opensslSign(f, i, true);

    // Warm-up (untimed). keymesh signs every CSR once, so the JIT has compiled the whole path before timing
    // (a few signings are not enough: the first CA measured would pay for it). openssl needs only the page
    // cache warm (binary, libraries, files), so it signs a few.
    const warm = indexes.slice(0, Math.min(opts.warmup, count));
    const warmPems = await runPool(indexes, opts.concurrency, km);
    await runPool(warm, opts.concurrency, os);
    await runPool(warm, opts.concurrency, osLean);
    await runPool(warm, opts.concurrency, spawnOnly);
    await checkSample(f, warmPems, warm.length, 'warmup');

    const modes: ModeResult[] = [];
    for (const [mode, concurrency] of [['sequential', 1], ['concurrent', opts.concurrency]] as const) {
      const samples: Record<Measure, number[]> = { keymesh: [], spawn: [], openssl: [], opensslLean: [] };
      let lastPems: string[] = [];
      // A round is one pass over all CSRs per measurement, cut into chunks; each chunk runs every measurement
      // in turn (the order rotating), so a busy moment of the machine lands on all of them alike.
      const chunks = splitEvenly(indexes, Math.max(CHUNK_MIN, concurrency * 4));
      for (let r = 0; r < opts.rounds; r++) {
        const ms: Record<Measure, number> = { keymesh: 0, spawn: 0, openssl: 0, opensslLean: 0 };
        const pems: string[] = [];
        for (const [c, chunk] of chunks.entries()) {
          for (let m = 0; m < MEASURES.length; m++) {
            const measure = MEASURES[(m + c) % MEASURES.length] as Measure;
            if (measure === 'keymesh') {
              const t = await timePass(chunk, concurrency, km);
              ms.keymesh += t.ms;
              pems.push(...t.results);
            } else {
              ms[measure] += (await timePass(chunk, concurrency, { spawn: spawnOnly, openssl: os, opensslLean: osLean }[measure])).ms;
            }
          }
        }
        lastPems = pems;
        for (const m of MEASURES) samples[m].push(ms[m]);
        const last = (xs: number[]) => `${(xs.at(-1) ?? Number.NaN).toFixed(0)} ms`;
        log(`[${caKeyType}] ${mode} (concurrency ${concurrency}) round ${r + 1}/${opts.rounds}: keymesh ${last(samples.keymesh)}, `
          + `openssl version ${last(samples.spawn)}, openssl x509 ${last(samples.openssl)}, lean ${last(samples.opensslLean)}`);
      }
      await checkSample(f, lastPems, count, mode);
      const keymeshMs = median(samples.keymesh);
      const opensslMs = median(samples.openssl);
      const opensslLeanMs = median(samples.opensslLean);
      const spawnMs = median(samples.spawn);
      // Subtracting start-up can leave nothing (or less) when signing is cheaper than the timing noise.
      const adjusted = (ms: number) => (ms > spawnMs ? perSecond(count, ms - spawnMs) : Number.NaN);
      const keymeshPerSec = perSecond(count, keymeshMs);
      const opensslRawPerSec = perSecond(count, opensslMs);
      const opensslAdjustedPerSec = adjusted(opensslMs);
      const opensslLeanAdjustedPerSec = adjusted(opensslLeanMs);
      modes.push({
        mode, concurrency, keymeshMs, opensslMs, opensslLeanMs, spawnMs,
        keymeshPerSec, opensslRawPerSec, opensslAdjustedPerSec,
        opensslLeanPerSec: perSecond(count, opensslLeanMs), opensslLeanAdjustedPerSec,
        spawnOnlyPerSec: perSecond(count, spawnMs),
        ratioVsRaw: keymeshPerSec / opensslRawPerSec,
        ratioVsAdjusted: keymeshPerSec / opensslAdjustedPerSec,
        ratioVsLeanAdjusted: keymeshPerSec / opensslLeanAdjustedPerSec,
        samplesMs: samples,
      });
    }
    return { caKeyType, csrKeyType: opts.csrKey, certificates: count, modes };
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
}

async function machine(): Promise<Record<string, string | number>> {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    logicalCpus: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    node: process.version,
    openssl: (await opensslAsync(['version'])).trim(),
    nodeOpenssl: process.versions.openssl ?? 'unknown',
  };
}

async function main(): Promise<void> {
  const opts = readOptions(process.argv.slice(2));
  const env = await machine();
  const loadBefore = loadavg()[0] ?? Number.NaN;
  const started = performance.now();
  const results: KeyTypeResult[] = [];
  for (const type of CA_KEY_TYPES) results.push(await benchKeyType(type, opts));
  const elapsedS = (performance.now() - started) / 1000;
  const loadAfter = loadavg()[0] ?? Number.NaN;

  const rows = results.flatMap((r) => r.modes.map((m) => [
    r.caKeyType,
    m.mode === 'sequential' ? 'sequential' : `concurrency ${m.concurrency}`,
    String(r.certificates),
    fmtRate(m.keymeshPerSec),
    fmtRate(m.opensslRawPerSec),
    fmtRate(m.opensslAdjustedPerSec),
    fmtRate(m.opensslLeanPerSec),
    fmtRate(m.opensslLeanAdjustedPerSec),
    fmtRate(m.spawnOnlyPerSec),
    fmtRatio(m.ratioVsRaw),
    fmtRatio(m.ratioVsAdjusted),
    fmtRatio(m.ratioVsLeanAdjusted),
  ]));
  const out = [
    '',
    'Certificate signing throughput (certificates/s; median of timed passes; higher is better)',
    '',
    formatTable(
      ['CA key', 'mode', 'certs', 'keymesh', 'openssl raw', 'openssl adj', 'lean raw', 'lean adj', 'spawn only', 'ratio/raw', 'ratio/adj', 'ratio/lean adj'],
      rows,
    ),
    '',
    `keymesh:     parseCsr (verifies the CSR) + issueLeaf (1 h, URI+DNS SANs) + toPem, in this process, ${opts.csrKey} CSRs`,
    `openssl raw: one "openssl x509 -req" process per certificate (same CSRs, same CA key and extensions), same concurrency`,
    `openssl adj: raw time minus the time of the same number of "openssl version" processes (spawn only)`,
    `lean:        openssl x509 with SSL_CERT_FILE/SSL_CERT_DIR empty, so it skips loading the system trust store on start`,
    `ratio/X:     keymesh certs/s divided by openssl certs/s of column X; above 1 means keymesh signs faster`,
    `${opts.rounds} timed round(s) per mode, after an untimed warm-up (keymesh: every CSR once; openssl: ${opts.warmup} of each kind); sample certificates of both signers pass openssl verify`,
    `machine:     ${env.cpu}, ${env.logicalCpus} CPUs, ${env.os}; node ${env.node} (OpenSSL ${env.nodeOpenssl}); ${env.openssl}`,
    `load:        1-minute load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (the latter includes the bench itself; other work skews both sides)`,
    `total bench time ${elapsedS.toFixed(1)} s${opts.quick ? ' (--quick: too few certificates for stable numbers)' : ''}`,
    '',
  ].join('\n');
  process.stdout.write(out);

  const resultsDir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(resultsDir, { recursive: true });
  const jsonPath = join(resultsDir, 'latest.json');
  writeFileSync(jsonPath, `${JSON.stringify({
    benchmark: 'signing',
    date: new Date().toISOString(),
    machine: env,
    options: opts,
    elapsedSeconds: Number(elapsedS.toFixed(1)),
    loadAverage1m: { before: loadBefore, after: loadAfter },
    results,
  }, null, 2)}\n`);
  process.stdout.write(`results written to ${jsonPath}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  if (e instanceof Error && e.cause instanceof Error) process.stderr.write(`cause: ${e.cause.message}\n`);
  process.exitCode = 1;
});

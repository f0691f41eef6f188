// Test support for src/ca (not used by keymesh itself): a CertificateAuthority over a memory or SQLite CA
// store with App Mesh resources to issue for, CSRs as a proxy would make them, and helpers that check what
// the CA produced with the real `openssl` command line.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../base/clock.ts';
import type { JsonObject } from '../model/json.ts';
import type { KindName } from '../model/kinds.ts';
import type { ResourceRecord } from '../model/resource.ts';
import type { KeyPair, KeyType } from '../pki/api.ts';
import { createCsr } from '../pki/csr.ts';
import { generateKeyPair } from '../pki/keys.ts';
import { openssl, opensslOk, withScratchDir, type OpensslResult } from '../pki/testing-openssl.ts';
import type { CaStore } from '../store/ca-store.ts';
import { MemoryCaStore } from '../store/memory/memory-ca-store.ts';
import { MemoryStore } from '../store/memory/memory-store.ts';
import { SqliteCaStore } from '../store/sqlite/sqlite-ca-store.ts';
import { CertificateAuthority } from './authority.ts';
import type { CaEvent } from './events.ts';
import type { BundleDistribution } from './rotation.ts';

export const REGION = 'us-west-2';
export const ACCOUNT = '123456789012';
export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/** A virtual node spec with DNS service discovery, as App Mesh users write it. */
export function dnsNode(hostname: string): JsonObject {
  return { listeners: [{ portMapping: { port: 8080, protocol: 'http' } }], serviceDiscovery: { dns: { hostname } } };
}

export interface HarnessOptions {
  /** SQLite CA store in the harness's temp dir (default: memory). */
  sqlite?: boolean;
  passphrase?: string;
  distribution?: BundleDistribution;
  caValidityMs?: number;
  /** Reuse a data dir (and its keymesh.db) left by another harness: a restart. */
  dataDir?: string;
  clock?: ManualClock;
  resources?: MemoryStore;
}

export interface Harness {
  readonly ca: CertificateAuthority;
  readonly clock: ManualClock;
  readonly resources: MemoryStore;
  readonly caStore: CaStore;
  readonly dataDir: string;
  /** Every event the CA emitted, oldest first. */
  readonly events: CaEvent[];
  addNode(mesh: string, name: string, spec?: JsonObject): Promise<void>;
  addGateway(mesh: string, name: string): Promise<void>;
  /** `<dataDir>/ca/<file>` */
  keyPath(file: string): string;
  /** Names in the key directory, sorted ([] before the first key). */
  keyFiles(): string[];
  /** Closes the CA store; `remove` also deletes the data dir. */
  close(remove?: boolean): Promise<void>;
}

/** The clock starts at the current whole second, so certificates openssl makes now are valid on it. */
export function newClock(): ManualClock {
  return new ManualClock(Math.floor(Date.now() / 1000) * 1000);
}

export async function harness(options: HarnessOptions = {}): Promise<Harness> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'keymesh-ca-'));
  const clock = options.clock ?? newClock();
  const resources = options.resources ?? new MemoryStore();
  const caStore: CaStore = options.sqlite ? SqliteCaStore.open(join(dataDir, 'keymesh.db')) : new MemoryCaStore();
  const ca = new CertificateAuthority({
    caStore, resources, dataDir, clock, region: REGION, account: ACCOUNT,
    ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase }),
    ...(options.distribution === undefined ? {} : { distribution: options.distribution }),
    ...(options.caValidityMs === undefined ? {} : { caValidityMs: options.caValidityMs }),
  });
  const events: CaEvent[] = [];
  ca.watch((e) => events.push(e));
  const meshes = new Set<string>();
  const put = async (kind: KindName, mesh: string, name: string, spec: JsonObject) => {
    const now = clock.now();
    const path = kind === 'mesh' ? `mesh/${mesh}` : `mesh/${mesh}/${kind}/${name}`;
    const record: ResourceRecord = {
      kind, mesh, parent: '', name, spec, tags: [], rev: 0,
      metadata: { arn: `arn:aws:appmesh:${REGION}:${ACCOUNT}:${path}`, uid: randomUUID(), version: 1, createdAt: now, lastUpdatedAt: now, meshOwner: ACCOUNT, resourceOwner: ACCOUNT },
    };
    await resources.create(record);
  };
  const ensureMesh = async (mesh: string) => {
    if (meshes.has(mesh) || (await resources.get({ kind: 'mesh', mesh, parent: '', name: mesh }))) return;
    meshes.add(mesh);
    await put('mesh', mesh, mesh, {});
  };
  const keyDir = join(dataDir, 'ca');
  return {
    ca, clock, resources, caStore, dataDir, events,
    async addNode(mesh, name, spec = {}) {
      await ensureMesh(mesh);
      await put('virtualNode', mesh, name, spec);
    },
    async addGateway(mesh, name) {
      await ensureMesh(mesh);
      await put('virtualGateway', mesh, name, { listeners: [{ portMapping: { port: 443, protocol: 'http' } }] });
    },
    keyPath: (file) => join(keyDir, file),
    keyFiles: () => (existsSync(keyDir) ? readdirSync(keyDir).sort() : []),
    async close(remove = true) {
      await caStore.close();
      if (remove) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Everything the CA has stored (records and key files), to show that a refused request changed nothing. */
export async function snapshot(h: Harness, meshes: readonly string[]): Promise<unknown> {
  const s = h.caStore;
  return {
    settings: await Promise.all(meshes.map((m) => s.getSettings(m))),
    cas: await s.listCas(),
    issued: await s.listIssued({}),
    tokens: await s.listJoinTokens(),
    revoked: await s.listRevokedIdentities(),
    managed: await s.listManagedCertificates(),
    keyFiles: h.keyFiles(),
  };
}

/** A proxy's key and CSR. */
export async function csrFor(names: { uris?: string[]; dnsNames?: string[] } = {}, keyType: KeyType = 'ec-p256'): Promise<{ keys: KeyPair; csrPem: string }> {
  const keys = await generateKeyPair(keyType);
  return { keys, csrPem: await createCsr(keys, { ...(names.uris ? { uris: names.uris } : {}), ...(names.dnsNames ? { dnsNames: names.dnsNames } : {}) }) };
}

/** `promise` rejects with an instance of `errorClass` whose message matches every pattern (and whose code is `code`). */
export async function assertRefused(
  promise: Promise<unknown>,
  errorClass: abstract new (...args: never[]) => Error,
  message: RegExp | readonly RegExp[],
  code?: string,
): Promise<Error> {
  let caught: unknown;
  await assert.rejects(promise, (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof errorClass, `expected ${errorClass.name}, got ${String(caught instanceof Error ? caught.stack : caught)}`);
  for (const pattern of Array.isArray(message) ? message : [message as RegExp]) assert.match(caught.message, pattern);
  if (code !== undefined) assert.equal((caught as Error & { code?: string }).code, code);
  return caught;
}

/** The certificates of a PEM chain, one PEM string each, in order. */
export function splitPem(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
}

/** `openssl x509 -text -noout` of the first certificate of `pem`. */
export function certText(pem: string): string {
  return opensslOk(['x509', '-noout', '-text'], { input: splitPem(pem)[0] ?? pem });
}

/** `openssl x509 -noout -dates` as milliseconds since the epoch. */
export function certDates(pem: string): { notBefore: number; notAfter: number } {
  const out = opensslOk(['x509', '-noout', '-dates', '-dateopt', 'iso_8601'], { input: splitPem(pem)[0] ?? pem });
  const read = (name: string) => Date.parse(new RegExp(`${name}=(.+)`).exec(out)![1]!.trim().replace(' ', 'T'));
  return { notBefore: read('notBefore'), notAfter: read('notAfter') };
}

/** Hex serials as openssl prints them (upper case, padded), in keymesh's form (lower case, no leading zeros). */
export function normalizeHex(hex: string): string {
  return hex.toLowerCase().replace(/[^0-9a-f]/g, '').replace(/^0+/, '');
}

export interface VerifyInput {
  /** The anchors (-CAfile). */
  readonly bundlePem: string;
  /** Leaf first; the rest goes to -untrusted. */
  readonly chainPem: string;
  /** Checked at this time (ms), as the ManualClock says. */
  readonly at: number;
  /** With -crl_check against this CRL. */
  readonly crlPem?: string;
  readonly purpose?: 'sslserver' | 'sslclient';
}

/** `openssl verify`; the result, for asserting success or the failure reason. */
export async function opensslVerify(input: VerifyInput): Promise<OpensslResult> {
  return withScratchDir(async (_dir, write) => {
    const [leaf, ...rest] = splitPem(input.chainPem);
    assert.ok(leaf, 'the chain holds no certificate');
    const args = ['verify', '-attime', String(Math.floor(input.at / 1000)), '-CAfile', write('bundle.pem', input.bundlePem)];
    if (rest.length) args.push('-untrusted', write('chain.pem', rest.join('')));
    if (input.crlPem !== undefined) args.push('-crl_check', '-CRLfile', write('crl.pem', input.crlPem));
    if (input.purpose) args.push('-purpose', input.purpose);
    args.push(write('leaf.pem', leaf));
    return openssl(args);
  });
}

/** openssl verify must pass, as a TLS server and as a TLS client certificate. */
export async function assertVerifies(input: Omit<VerifyInput, 'purpose'>): Promise<void> {
  for (const purpose of ['sslserver', 'sslclient'] as const) {
    const r = await opensslVerify({ ...input, purpose });
    assert.equal(r.status, 0, `openssl verify (${purpose}) failed:\n${r.output}`);
    assert.match(r.stdout, /leaf\.pem: OK/);
  }
}

/** The subject alternative names in `openssl x509 -text` output, as openssl prints them ("URI:...", "DNS:..."), sorted. */
export function sanNames(text: string): string[] {
  const m = /X509v3 Subject Alternative Name:.*\n\s*(.+)/.exec(text);
  return m ? m[1]!.split(', ').map((s) => s.trim()).sort() : [];
}

/** Moves a ManualClock up to the real time, so certificates openssl has just made (valid from now) are valid on it. */
export function catchUp(clock: ManualClock): void {
  const behind = Date.now() - clock.now();
  if (behind > 0) clock.advance(Math.ceil(behind / 1000) * 1000);
}

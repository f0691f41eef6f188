// Test-only helpers for src/identity: a fake clock with timers, a seeded rand, a recording logger and a
// fake CA that signs CSRs with the real pki functions.
import type { X509Certificate } from '@peculiar/x509';
import type { Clock } from '../base/clock.ts';
import { ForbiddenError, UnavailableError } from '../errors/index.ts';
import type { CryptoKey, KeyPair } from '../pki/api.ts';
import { parseCsr } from '../pki/csr.ts';
import { createRootCa, issueLeaf } from '../pki/issue.ts';
import { generateKeyPair } from '../pki/keys.ts';
import { parseCertificateChainPem, toPem } from '../pki/pem.ts';
import { subtle } from '../pki/provider.ts';
import type { SvidResponse } from './svid.ts';
import type { IdentityTransport } from './svid-source.ts';
import { MAX_TIMER_DELAY, type Timers } from './timers.ts';

interface Pending {
  id: number;
  due: number;
  fn: () => unknown;
}

/**
 * A clock plus setTimeout/clearTimeout that only move when advance() is called. Timers fire in due order
 * with the clock set to their due time; a callback's returned promise is awaited before the next one runs,
 * so async work started by a timer (key generation, a transport call) finishes inside advance().
 */
export class FakeTimers implements Clock, Timers {
  #now: number;
  #nextId = 1;
  #pending: Pending[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => unknown, ms: number): unknown {
    // Node fires a delay above 2^31-1 ms after 1 ms; code under test must split long waits itself.
    if (!(ms <= MAX_TIMER_DELAY)) throw new RangeError(`timer delay ${ms} ms is beyond what setTimeout supports`);
    const id = this.#nextId++;
    this.#pending.push({ id, due: this.#now + Math.max(0, ms), fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.#pending = this.#pending.filter((p) => p.id !== handle);
  }

  /** Timers still scheduled. */
  get pending(): number {
    return this.#pending.length;
  }

  /** When the earliest scheduled timer is due, if any. */
  nextDue(): number | undefined {
    return this.#earliest()?.due;
  }

  /** Move the clock forward by ms, firing (and awaiting) every timer that falls due on the way. */
  async advance(ms: number): Promise<void> {
    await this.advanceTo(this.#now + ms);
  }

  async advanceTo(target: number): Promise<void> {
    for (let next = this.#earliest(); next && next.due <= target; next = this.#earliest()) {
      this.#pending = this.#pending.filter((p) => p !== next);
      this.#now = Math.max(this.#now, next.due);
      await next.fn();
    }
    this.#now = Math.max(this.#now, target);
  }

  /**
   * The machine sleeps for ms: the wall clock jumps, but timers (Node's run on the monotonic clock) fire
   * only as long after the wake-up as they had left before the sleep.
   */
  jump(ms: number): void {
    this.#now += ms;
    for (const p of this.#pending) p.due += ms;
  }

  /** Fire only the earliest timer (moving the clock to it); returns its due time. */
  async runNext(): Promise<number | undefined> {
    const next = this.#earliest();
    if (next) await this.advanceTo(next.due);
    return next?.due;
  }

  #earliest(): Pending | undefined {
    let best: Pending | undefined;
    for (const p of this.#pending) if (!best || p.due < best.due || (p.due === best.due && p.id < best.id)) best = p;
    return best;
  }
}

/** A deterministic rand() in [0, 1) (mulberry32), so "random" tests are repeatable. */
export function seededRand(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A logger that keeps what it was told, for asserting on warnings (and on what was never logged). */
export class RecordingLog {
  readonly lines: { level: 'info' | 'warn'; msg: string }[] = [];
  info(msg: string): void {
    this.lines.push({ level: 'info', msg });
  }
  warn(msg: string): void {
    this.lines.push({ level: 'warn', msg });
  }
  warnings(): string[] {
    return this.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
  }
  all(): string {
    return this.lines.map((l) => l.msg).join('\n');
  }
}

/** What the fake CA does with one request: answer properly, or one of the ways a server can get it wrong. */
export type FakeCaStep = 'ok' | 'fail' | 'foreign-key' | 'expired' | 'untrusted' | 'other-id';

export interface FakeCaCall {
  readonly kind: 'bootstrap' | 'renew';
  readonly at: number;
  /** SPKI (base64) of the key in the CSR. */
  readonly csrKey: string;
  readonly csrUris: readonly string[];
  /** For renewals: the certificate chain the caller authenticated with. */
  readonly presentedChain?: string;
}

interface TestCa {
  readonly cert: X509Certificate;
  readonly keys: KeyPair;
}

/** An IdentityTransport backed by a real (test) root CA, with scripted failures and bad answers. */
export class FakeCa implements IdentityTransport {
  readonly calls: FakeCaCall[] = [];
  /** Consumed one per request; 'ok' once empty. */
  readonly script: FakeCaStep[] = [];
  readonly #tokens = new Set<string>();
  readonly #clock: Clock;
  readonly #root: TestCa;
  /** Same name as the real root, different key: what an impostor would sign with. */
  readonly #rogue: TestCa;
  lifetimeMs: number;
  spiffeId = 'spiffe://keymesh.test/mesh/demo/virtualNode/web';

  private constructor(clock: Clock, lifetimeMs: number, root: TestCa, rogue: TestCa) {
    this.#clock = clock;
    this.lifetimeMs = lifetimeMs;
    this.#root = root;
    this.#rogue = rogue;
  }

  static async create(clock: Clock, lifetimeMs: number): Promise<FakeCa> {
    const ca = async (name: string) => {
      const keys = await generateKeyPair('ec-p256');
      const now = clock.now();
      const cert = await createRootCa(keys, { commonName: name, notBefore: new Date(now - 86_400_000), notAfter: new Date(now + 3650 * 86_400_000), pathLength: 0, uri: 'spiffe://keymesh.test' });
      return { cert, keys };
    };
    return new FakeCa(clock, lifetimeMs, await ca('keymesh test CA'), await ca('keymesh test CA'));
  }

  get bundlePem(): string {
    return toPem(this.#root.cert);
  }

  /** A join token this CA accepts once. */
  newToken(name = `token-${this.#tokens.size + 1}`): string {
    const token = `kmjt.${name}.c2VjcmV0`;
    this.#tokens.add(token);
    return token;
  }

  async bootstrap(csrPem: string, joinToken: string): Promise<SvidResponse> {
    const csr = await this.#record('bootstrap', csrPem);
    const step = this.script.shift() ?? 'ok';
    if (step === 'fail') throw new UnavailableError('the CA is down');
    if (!this.#tokens.delete(joinToken)) throw new ForbiddenError(`join token ${joinToken} is not known or was already used`, 'KM_ERR_TOKEN_UNKNOWN');
    return this.#issue(csr, step);
  }

  async renew(csrPem: string, current: { keyPem: string; certChainPem: string }): Promise<SvidResponse> {
    const csr = await this.#record('renew', csrPem, current.certChainPem);
    const step = this.script.shift() ?? 'ok';
    if (step === 'fail') throw new UnavailableError('the CA is down');
    const leaf = parseCertificateChainPem(current.certChainPem, 'presented chain')[0] as X509Certificate;
    if (leaf.notAfter.getTime() <= this.#clock.now()) throw new ForbiddenError('the presented SVID has expired');
    return this.#issue(csr, step);
  }

  async #record(kind: FakeCaCall['kind'], csrPem: string, presentedChain?: string): Promise<{ publicKey: CryptoKey }> {
    const csr = await parseCsr(csrPem);
    this.calls.push({ kind, at: this.#clock.now(), csrKey: await spki(csr.publicKey), csrUris: csr.uris, ...(presentedChain ? { presentedChain } : {}) });
    return csr;
  }

  async #issue(csr: { publicKey: CryptoKey }, step: FakeCaStep): Promise<SvidResponse> {
    const now = this.#clock.now();
    const expired = step === 'expired';
    const issuer = step === 'untrusted' ? this.#rogue : this.#root;
    const publicKey = step === 'foreign-key' ? (await generateKeyPair('ec-p256')).publicKey : csr.publicKey;
    const spiffeId = step === 'other-id' ? 'spiffe://keymesh.test/mesh/demo/virtualNode/db' : this.spiffeId;
    const leaf = await issueLeaf({
      publicKey,
      issuerCert: issuer.cert,
      issuerKeys: issuer.keys,
      uris: [spiffeId],
      dnsNames: [],
      notBefore: new Date(expired ? now - this.lifetimeMs - 1000 : now),
      notAfter: new Date(expired ? now - 1000 : now + this.lifetimeMs),
    });
    return { certChainPem: toPem(leaf), bundlePem: this.bundlePem, spiffeId, notBefore: leaf.notBefore.getTime(), notAfter: leaf.notAfter.getTime() };
  }
}

export async function spki(key: CryptoKey): Promise<string> {
  return Buffer.from(await subtle.exportKey('spki', key)).toString('base64');
}

// SvidSource: the workload side of keymesh's identity lifecycle. It keeps one workload's key, certificate
// chain and trust bundle fresh and tells listeners (the proxy's TLS contexts) about every change.
//
// - Keys are generated here and never leave the process: the control plane only ever sees CSRs.
// - Every renewal uses a new key (rotation on every renewal), so a leaked key is good for one lifetime.
// - Bootstrap uses a single-use join token; renewal authenticates with the current SVID instead.
// - Renewal is at half-life ± 10% (renewal-timing.ts); failures retry with jittered exponential backoff.
// - Responses are validated before anything is published; a bad one counts as a failed attempt.
// - Fail closed: from notAfter on current() is undefined and listeners get `undefined`. If a join token is
//   available (or arrives via setJoinToken) the source bootstraps again (STYLE.md A8).
// - With a stateDir, each new SVID is saved (svid-state.ts) and loaded on start, so a restart needs no token.
// - Logs carry SPIFFE IDs, serials and times, never keys or tokens.
import type { Clock } from '../base/clock.ts';
import { ConfigError, isKeymeshError, UnavailableError } from '../errors/index.ts';
import type { KeyPair, KeyType } from '../pki/api.ts';
import { createCsr } from '../pki/csr.ts';
import { exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem } from '../pki/keys.ts';
import { expiryWarning, nextLevelChangeAt, nextRetryDelay, renewAt, type ExpiryLevel } from './renewal-timing.ts';
import { Svid, validateSvid, type SvidResponse } from './svid.ts';
import { loadSvid, saveSvid } from './svid-state.ts';
import { MAX_TIMER_DELAY, systemTimers, type Timers } from './timers.ts';

/** How the source reaches the control plane's CA. Implemented over HTTP by the CA side; faked in tests. */
export interface IdentityTransport {
  /**
   * First identity, proven by a single-use join token. Reject with a KeymeshError of kind 'unauthenticated'
   * or 'forbidden' (or a KM_ERR_TOKEN_* code) when the token itself is refused, so the source stops reusing
   * it; any other error is retried with the same token.
   */
  bootstrap(csrPem: string, joinToken: string): Promise<SvidResponse>;
  /** A new SVID for the CSR's key, authenticated by the current (still valid) SVID, e.g. over mTLS. */
  renew(csrPem: string, current: { keyPem: string; certChainPem: string }): Promise<SvidResponse>;
}

export interface IdentityLog {
  info(msg: string): void;
  warn(msg: string): void;
}

/** Gets each new SVID, or undefined when the identity is lost (expired): refuse new mTLS connections then. */
export type SvidListener = (svid: Svid | undefined) => void;

export interface SvidSourceOptions {
  transport: IdentityTransport;
  clock: Clock;
  log: IdentityLog;
  /** Defaults to Node's timers. */
  timers?: Timers;
  /** Uniform in [0, 1); defaults to Math.random. */
  rand?: () => number;
  /** Defaults to 'ec-p256'. */
  keyType?: KeyType;
  joinToken?: string;
  /** Refuse SVIDs for any other SPIFFE ID. Without it a renewal must keep the current ID, and a bootstrap takes the token's. */
  expectedSpiffeId?: string;
  /** Where to save and load the SVID (svid.json, mode 0600). No persistence when omitted. */
  stateDir?: string;
  onUpdate?: SvidListener;
}

export interface SvidStatus {
  readonly spiffeId: string | undefined;
  readonly serial: string | undefined;
  readonly notAfter: number | undefined;
  /** When the next renewal (or retry) is due. */
  readonly nextAttemptAt: number | undefined;
  readonly level: ExpiryLevel | 'none';
  /** Failed attempts since the last success. */
  readonly failures: number;
  readonly lastError: string | undefined;
}

type Slot = 'attempt' | 'watch';

/** The longest a timer sleeps before re-checking the wall clock (see #arm). */
const WAKE_EVERY = Math.min(5 * 60_000, MAX_TIMER_DELAY);

export class SvidSource {
  readonly #o: SvidSourceOptions;
  readonly #timers: Timers;
  readonly #rand: () => number;
  readonly #keyType: KeyType;
  readonly #listeners = new Set<SvidListener>();
  readonly #handles: Record<Slot, unknown> = { attempt: undefined, watch: undefined };
  #waiters: { resolve: (s: Svid) => void; reject: (e: Error) => void }[] = [];
  #svid: Svid | undefined;
  #token: string | undefined;
  #level: ExpiryLevel = 'ok';
  #failures = 0;
  #lastError: string | undefined;
  #nextAttemptAt: number | undefined;
  #busy = false;
  #started = false;
  #stopped = false;

  constructor(opts: SvidSourceOptions) {
    this.#o = opts;
    this.#timers = opts.timers ?? systemTimers;
    this.#rand = opts.rand ?? Math.random;
    this.#keyType = opts.keyType ?? 'ec-p256';
    this.#token = opts.joinToken;
    if (opts.onUpdate) this.#listeners.add(opts.onUpdate);
  }

  /**
   * Loads the saved SVID (with a stateDir) or bootstraps with the join token. Resolves after that first
   * step; a failed bootstrap is retried in the background (await ready() for the identity). Throws a
   * ConfigError when there is neither a usable saved SVID nor a join token.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (this.#o.stateDir !== undefined) await this.#load(this.#o.stateDir);
    if (this.current()) return;
    if (this.#token === undefined) {
      this.#started = false;
      throw new ConfigError(`no ${this.#o.stateDir !== undefined ? 'usable saved SVID and no ' : ''}join token: this workload cannot get an identity`);
    }
    await this.#attempt();
  }

  /** Clears every timer; an attempt in flight finishes but is not published. */
  stop(): void {
    this.#stopped = true;
    this.#disarm('attempt');
    this.#disarm('watch');
    this.#nextAttemptAt = undefined;
    for (const w of this.#waiters.splice(0)) w.reject(new UnavailableError('the identity source was stopped'));
  }

  /** The SVID to use now, or undefined before the first one and from its notAfter on (fail closed). */
  current(): Svid | undefined {
    const svid = this.#svid;
    return svid && this.#o.clock.now() < svid.notAfter ? svid : undefined;
  }

  /** Resolves with the current SVID, or the next one published; rejects when stopped first. */
  ready(): Promise<Svid> {
    const svid = this.current();
    if (svid) return Promise.resolve(svid);
    if (this.#stopped) return Promise.reject(new UnavailableError('the identity source was stopped'));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /**
   * Calls `listener` with every new SVID and with undefined when the identity is lost. A listener added
   * while an SVID is current gets it too, asynchronously (never from inside onUpdate). Returns unsubscribe.
   */
  onUpdate(listener: SvidListener): () => void {
    this.#listeners.add(listener);
    const svid = this.current();
    if (svid) queueMicrotask(() => this.#listeners.has(listener) && this.current() === svid && this.#call(listener, svid));
    return () => this.#listeners.delete(listener);
  }

  /** A new single-use join token, used only when there is no valid SVID (first start, or after expiry). */
  setJoinToken(token: string): void {
    this.#token = token;
    this.#o.log.info('identity: a new join token was set');
    if (this.#started && !this.#stopped && !this.current() && !this.#busy) this.#arm('attempt', this.#o.clock.now(), () => this.#attempt());
  }

  status(): SvidStatus {
    const svid = this.#svid;
    return {
      spiffeId: svid?.spiffeId,
      serial: svid?.serial,
      notAfter: svid?.notAfter,
      nextAttemptAt: this.#nextAttemptAt,
      level: svid ? expiryWarning(this.#o.clock.now(), svid.notAfter, svid.notAfter - svid.notBefore) : 'none',
      failures: this.#failures,
      lastError: this.#lastError,
    };
  }

  /** One bootstrap or renewal, with a fresh key. Never rejects: timers call it and ignore the promise. */
  async #attempt(): Promise<void> {
    if (this.#stopped || this.#busy) return; // an attempt in flight schedules the next one when it ends
    // Woken after a sleep past notAfter: report the expiry (fail closed) before recovering.
    if (this.#svid && !this.current() && this.#level !== 'expired') this.#watch();
    const current = this.current();
    const token = this.#token;
    this.#nextAttemptAt = undefined;
    if (!current && token === undefined) {
      this.#o.log.warn('identity: no valid SVID and no join token; waiting for a new join token');
      return;
    }
    const mode = current ? 'renewal' : 'bootstrap';
    // A renewal keeps the identity it authenticates with; a bootstrap gets whatever its token is for.
    const expected = this.#o.expectedSpiffeId ?? current?.spiffeId;
    this.#busy = true;
    try {
      const keys = await generateKeyPair(this.#keyType);
      const csr = await createCsr(keys, { uris: expected !== undefined ? [expected] : [] });
      if (this.#stopped) return;
      let res: SvidResponse;
      if (current) {
        res = await this.#o.transport.renew(csr, { keyPem: current.keyPem, certChainPem: current.certChainPem });
      } else {
        try {
          res = await this.#o.transport.bootstrap(csr, token as string);
        } catch (e) {
          if (tokenRefused(e)) this.#spend(token);
          throw e;
        }
        this.#spend(token); // the server has consumed it, whatever we think of its answer
      }
      const svid = await validateSvid(keys, await exportPrivateKeyPem(keys), res, this.#o.clock.now(), expected);
      if (this.#stopped) return;
      this.#install(svid, mode === 'bootstrap' ? 'issued' : 'renewed');
      await this.#save(svid);
    } catch (e) {
      if (!this.#stopped) this.#failed(mode, e, token);
    } finally {
      this.#busy = false;
    }
  }

  #install(svid: Svid, how: 'issued' | 'renewed' | 'loaded'): void {
    this.#svid = svid;
    this.#failures = 0;
    this.#lastError = undefined;
    this.#level = 'ok';
    const at = renewAt(svid.notBefore, svid.notAfter, this.#rand);
    this.#o.log.info(`identity: SVID ${how} for ${svid.spiffeId} (serial ${svid.serial}), valid until ${iso(svid.notAfter)}, renewal at ${iso(at)}`);
    this.#arm('attempt', at, () => this.#attempt());
    this.#watch();
    for (const w of this.#waiters.splice(0)) w.resolve(svid);
    this.#publish(svid);
  }

  #failed(mode: 'bootstrap' | 'renewal', e: unknown, token: string | undefined): void {
    this.#failures += 1;
    this.#lastError = redact(e instanceof Error ? e.message : String(e), [token, this.#token]);
    const canRetry = this.current() !== undefined || this.#token !== undefined;
    const delay = nextRetryDelay(this.#failures - 1, this.#rand);
    const next = canRetry ? `retrying in ${duration(delay)}` : 'no join token left; set a new one to retry';
    // The first failure of a streak is worth a warning; the rest are routine until expiry comes close.
    const line = `identity: SVID ${mode} failed (attempt ${this.#failures}): ${this.#lastError}; ${next}`;
    if (this.#failures === 1 || !canRetry) this.#o.log.warn(line);
    else this.#o.log.info(line);
    if (canRetry) this.#arm('attempt', this.#o.clock.now() + delay, () => this.#attempt());
    this.#watch();
  }

  /** Logs each change of expiry level once, reports expiry, and wakes up at the next level change. */
  #watch(): void {
    const svid = this.#svid;
    if (!svid || this.#stopped) return;
    const now = this.#o.clock.now();
    const lifetime = svid.notAfter - svid.notBefore;
    const level = expiryWarning(now, svid.notAfter, lifetime);
    if (level !== this.#level) {
      this.#level = level;
      const why = this.#lastError !== undefined ? `; last error: ${this.#lastError}` : '';
      if (level === 'expired') {
        const recovery = this.#token !== undefined ? 'bootstrapping again with the join token' : 'set a new join token to recover';
        this.#o.log.warn(`identity: SVID for ${svid.spiffeId} expired at ${iso(svid.notAfter)} without renewal; new mTLS connections are refused; ${recovery}${why}`);
        this.#publish(undefined);
        if (this.#token !== undefined && !this.#busy) this.#arm('attempt', now, () => this.#attempt());
      } else if (level !== 'ok') {
        this.#o.log.warn(`identity: SVID for ${svid.spiffeId} not renewed yet (${level}): expires in ${duration(svid.notAfter - now)} at ${iso(svid.notAfter)}${why}`);
      }
    }
    const next = nextLevelChangeAt(now, svid.notAfter, lifetime);
    if (next === undefined) this.#disarm('watch');
    else this.#arm('watch', next, () => this.#watch());
  }

  async #load(dir: string): Promise<void> {
    try {
      const saved = await loadSvid(dir);
      if (!saved) return;
      const keys: KeyPair = await importPrivateKeyPem(saved.keyPem, 'saved SVID key');
      const svid = await validateSvid(keys, saved.keyPem, saved, this.#o.clock.now(), this.#o.expectedSpiffeId);
      this.#install(svid, 'loaded');
    } catch (e) {
      this.#o.log.warn(`identity: the saved SVID in ${dir} is not usable (${e instanceof Error ? e.message : String(e)}); a join token is needed`);
    }
  }

  async #save(svid: Svid): Promise<void> {
    if (this.#o.stateDir === undefined) return;
    try {
      await saveSvid(this.#o.stateDir, { ...svidResponse(svid), keyPem: svid.keyPem });
    } catch (e) {
      // Not fatal: the SVID is in use; only a restart after it expires would need a join token.
      this.#o.log.warn(`identity: could not save the SVID in ${this.#o.stateDir}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  #spend(token: string | undefined): void {
    if (token !== undefined && this.#token === token) this.#token = undefined;
  }

  #publish(svid: Svid | undefined): void {
    for (const l of [...this.#listeners]) this.#call(l, svid);
  }

  #call(listener: SvidListener, svid: Svid | undefined): void {
    try {
      listener(svid);
    } catch (e) {
      this.#o.log.warn(`identity: an SVID listener failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * Runs fn at the wall-clock time `at`, waking up at least every WAKE_EVERY to re-check the clock: Node's
   * timers run on the monotonic clock, which stops while the machine sleeps, so a single long timer would
   * notice an expiry (and start recovering) hours late. It also keeps delays within setTimeout's limit.
   */
  #arm(slot: Slot, at: number, fn: () => unknown): void {
    this.#disarm(slot);
    if (slot === 'attempt') this.#nextAttemptAt = at;
    const tick = (): unknown => {
      const wait = at - this.#o.clock.now();
      if (wait > 0) {
        this.#handles[slot] = this.#timers.setTimeout(tick, Math.min(wait, WAKE_EVERY));
        return undefined;
      }
      this.#handles[slot] = undefined;
      return fn();
    };
    this.#handles[slot] = this.#timers.setTimeout(tick, Math.min(Math.max(0, at - this.#o.clock.now()), WAKE_EVERY));
  }

  #disarm(slot: Slot): void {
    if (this.#handles[slot] !== undefined) this.#timers.clearTimeout(this.#handles[slot]);
    this.#handles[slot] = undefined;
  }
}

/** The control plane refused the token itself (unknown, used, expired, malformed): do not send it again. */
function tokenRefused(e: unknown): boolean {
  return isKeymeshError(e) && (e.kind === 'unauthenticated' || e.kind === 'forbidden' || e.code.startsWith('KM_ERR_TOKEN'));
}

function svidResponse(svid: Svid): SvidResponse {
  return { spiffeId: svid.spiffeId, certChainPem: svid.certChainPem, bundlePem: svid.bundlePem, notBefore: svid.notBefore, notAfter: svid.notAfter };
}

/** Error text from a transport may echo what it was sent; keep tokens out of logs and status. */
function redact(msg: string, secrets: readonly (string | undefined)[]): string {
  let out = msg;
  for (const s of secrets) if (s) out = out.split(s).join('[join token]');
  return out;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 360) / 10}h`;
}

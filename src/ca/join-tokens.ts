// Join tokens: the one-time credential a proxy uses for its first SVID, before it has a certificate to
// renew with. A token is bound to one identity; only the sha256 of its secret is stored; redeeming is
// single use even under concurrent calls (the store's claim is the guarantee).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { BadRequestError, ForbiddenError } from '../errors/index.ts';
import type { JoinTokenRecord } from '../store/ca-store.ts';
import { iso, type CaContext } from './context.ts';
import { describeIdentity, type Identity } from './spiffe.ts';
import type { Svid, SvidIssuer } from './svid-issuer.ts';
import type { Workloads } from './workloads.ts';

export const DEFAULT_TOKEN_TTL_MS = 10 * 60 * 1000;
export const MAX_TOKEN_TTL_MS = 24 * 60 * 60 * 1000;
const PREFIX = 'kmjt1';
/** kmjt1.<id: 12 random bytes>.<secret: 32 random bytes>, both base64url. */
const FORMAT = /^kmjt1\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/;

export interface CreatedJoinToken {
  /** The credential: shown once, never stored. */
  readonly token: string;
  readonly id: string;
  readonly identity: Identity;
  readonly spiffeId: string;
  readonly expiresAt: number;
}

/** A token as listed: everything but the secret. */
export type JoinTokenInfo = Omit<JoinTokenRecord, 'secretHash'>;

export class JoinTokens {
  readonly #ctx: CaContext;
  readonly #workloads: Workloads;
  readonly #issuer: SvidIssuer;

  constructor(ctx: CaContext, deps: { workloads: Workloads; issuer: SvidIssuer }) {
    this.#ctx = ctx;
    this.#workloads = deps.workloads;
    this.#issuer = deps.issuer;
  }

  async create(identity: Identity, options: { ttlMs?: number } = {}): Promise<CreatedJoinToken> {
    const ttl = options.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
    if (!Number.isInteger(ttl) || ttl <= 0 || ttl > MAX_TOKEN_TTL_MS) {
      throw new BadRequestError(`A join token lives between 1 ms and 24 hours (${MAX_TOKEN_TTL_MS} ms); got ${ttl}.`);
    }
    const workload = await this.#workloads.resolve(identity);
    await this.#issuer.checkNotRevoked(workload.identity, workload.spiffeId);
    const id = randomBytes(12).toString('base64url');
    const secret = randomBytes(32);
    const now = this.#ctx.clock.now();
    await this.#ctx.store.createJoinToken({
      id, secretHash: sha256(secret), mesh: identity.mesh, kind: identity.kind, name: identity.name, spiffeId: workload.spiffeId,
      createdAt: now, expiresAt: now + ttl, usedAt: null,
    });
    return { token: `${PREFIX}.${id}.${secret.toString('base64url')}`, id, identity: workload.identity, spiffeId: workload.spiffeId, expiresAt: now + ttl };
  }

  /** Bootstrap: the first SVID, for exactly the identity the token is bound to. */
  async redeem(token: string, csrPem: string): Promise<Svid> {
    const m = FORMAT.exec(token.trim());
    if (!m) throw new BadRequestError(`The join token is malformed: expected ${PREFIX}.<id>.<secret> as printed when it was created.`, 'KM_ERR_TOKEN_MALFORMED');
    const [, id, secret] = m as unknown as [string, string, string];
    const record = await this.#ctx.store.getJoinToken(id);
    // A wrong secret reads as an unknown token: nothing tells a guesser that the id exists.
    if (!record || !hashMatches(record.secretHash, Buffer.from(secret, 'base64url'))) {
      throw new ForbiddenError(`Join token ${id} is not known here (never created, deleted, or from another control plane).`, 'KM_ERR_TOKEN_UNKNOWN');
    }
    const identity: Identity = { mesh: record.mesh, kind: record.kind, name: record.name };
    if (record.usedAt !== null) {
      throw new ForbiddenError(`Join token ${id} was already used at ${iso(record.usedAt)}; a token bootstraps one proxy once. Create a new token for ${describeIdentity(identity)}.`, 'KM_ERR_TOKEN_USED');
    }
    const now = this.#ctx.clock.now();
    if (now >= record.expiresAt) { // expired *at* expiresAt, as certificates expire at their notAfter
      throw new ForbiddenError(`Join token ${id} for ${describeIdentity(identity)} expired at ${iso(record.expiresAt)}; create a new one.`, 'KM_ERR_TOKEN_EXPIRED');
    }
    // Everything that can refuse the request runs before the token is spent. A stale token is refused
    // before authorize, which may create the mesh's first CA and with it fix the trust domain.
    const stale = (current: string) => {
      if (current !== record.spiffeId) throw new ForbiddenError(`Join token ${id} was made for ${record.spiffeId}, but ${describeIdentity(identity)} is now ${current}; create a new token.`, 'KM_ERR_TOKEN_STALE');
    };
    stale((await this.#workloads.spiffeIdOf(identity)).spiffeId);
    const request = await this.#issuer.authorize(identity, csrPem);
    stale(request.workload.spiffeId); // again: the trust domain may have changed meanwhile
    if (!(await this.#ctx.store.claimJoinToken(id, now))) {
      const usedAt = (await this.#ctx.store.getJoinToken(id))?.usedAt ?? now;
      throw new ForbiddenError(`Join token ${id} was already used at ${iso(usedAt)}; a token bootstraps one proxy once. Create a new token for ${describeIdentity(identity)}.`, 'KM_ERR_TOKEN_USED');
    }
    return this.#issuer.sign(request);
  }

  async list(mesh?: string): Promise<JoinTokenInfo[]> {
    return (await this.#ctx.store.listJoinTokens(mesh)).map(({ secretHash: _hidden, ...info }) => info);
  }

  /** Deletes a token (used or not); false if it did not exist. */
  async delete(id: string): Promise<boolean> {
    return this.#ctx.store.deleteJoinToken(id);
  }
}

function sha256(secret: Buffer): string {
  return createHash('sha256').update(secret).digest('hex');
}

function hashMatches(storedHex: string, secret: Buffer): boolean {
  const stored = Buffer.from(storedHex, 'hex');
  const given = createHash('sha256').update(secret).digest();
  return stored.length === given.length && timingSafeEqual(stored, given);
}

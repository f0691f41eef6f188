// Per-mesh CA settings: the trust domain (fixed once the mesh has a CA, since it is part of every SPIFFE ID
// issued), the SVID lifetime and the key type of CAs created from now on.
import { BadRequestError, ConflictError } from '../errors/index.ts';
import { KEY_TYPES, type KeyType } from '../pki/api.ts';
import type { CaSettings } from '../store/ca-store.ts';
import type { CaContext } from './context.ts';
import { checkTrustDomain, defaultTrustDomain } from './spiffe.ts';

export const DEFAULT_SVID_TTL_MS = 60 * 60 * 1000;
export const DEFAULT_KEY_TYPE: KeyType = 'ec-p256';
/** Below a minute, renewal traffic dominates; above 30 days, a stolen SVID is useful for too long. */
export const MIN_SVID_TTL_MS = 60 * 1000;
export const MAX_SVID_TTL_MS = 30 * 24 * 60 * 60 * 1000;

export interface MeshCaSettings {
  readonly mesh: string;
  readonly trustDomain: string;
  readonly svidTtlMs: number;
  readonly keyType: KeyType;
  /** False while these are the derived defaults, not yet stored. */
  readonly stored: boolean;
}

export interface MeshCaSettingsChange {
  trustDomain?: string;
  svidTtlMs?: number;
  keyType?: string;
}

export class TrustDomains {
  readonly #ctx: CaContext;

  constructor(ctx: CaContext) {
    this.#ctx = ctx;
  }

  /** The stored settings, or the defaults derived from the mesh name. */
  async settingsFor(mesh: string): Promise<MeshCaSettings> {
    const s = await this.#ctx.store.getSettings(mesh);
    if (s) return { mesh, trustDomain: s.trustDomain, svidTtlMs: s.svidTtlMs, keyType: s.keyType as KeyType, stored: true };
    return { mesh, trustDomain: defaultTrustDomain(mesh), svidTtlMs: DEFAULT_SVID_TTL_MS, keyType: DEFAULT_KEY_TYPE, stored: false };
  }

  async configure(mesh: string, change: MeshCaSettingsChange): Promise<MeshCaSettings> {
    const current = await this.settingsFor(mesh);
    const next = {
      trustDomain: change.trustDomain === undefined ? current.trustDomain : checkTrustDomain(change.trustDomain),
      svidTtlMs: change.svidTtlMs === undefined ? current.svidTtlMs : checkTtl(change.svidTtlMs),
      keyType: change.keyType === undefined ? current.keyType : checkKeyType(change.keyType),
    };
    if (next.trustDomain !== current.trustDomain) {
      const cas = await this.#ctx.store.listCas({ mesh, statuses: ['pending', 'prepared', 'active', 'retiring'] });
      if (cas.length > 0) {
        throw new ConflictError(
          `Mesh ${mesh} already has a CA for trust domain ${current.trustDomain}; its trust domain cannot change (every SPIFFE ID it issued names it).`,
          'KM_ERR_TRUST_DOMAIN_FIXED',
        );
      }
    }
    return this.#put(mesh, next);
  }

  /**
   * The settings, refusing a default trust domain that another mesh has claimed ("Shop" and "shop" both
   * default to "shop"): SPIFFE IDs in it are the other mesh's, so using them would name, or revoke, that
   * mesh's workloads.
   */
  async ownSettingsFor(mesh: string): Promise<MeshCaSettings> {
    const settings = await this.settingsFor(mesh);
    if (settings.stored) return settings; // stored settings own their trust domain (putSettings saw to it)
    const owner = await this.meshOf(settings.trustDomain);
    if (owner !== undefined && owner !== mesh) {
      throw new ConflictError(
        `Trust domain ${settings.trustDomain} (the default for mesh ${mesh}) already belongs to mesh ${owner}. Configure a distinct trust domain for mesh ${mesh}.`,
        'KM_ERR_TRUST_DOMAIN_TAKEN',
      );
    }
    return settings;
  }

  /** Stores the effective settings (done when the mesh gets its first CA), reserving the trust domain. */
  async pin(mesh: string): Promise<MeshCaSettings> {
    const current = await this.settingsFor(mesh);
    return current.stored ? current : this.#put(mesh, current);
  }

  /** The mesh that owns a trust domain, if any mesh has claimed it. */
  async meshOf(trustDomain: string): Promise<string | undefined> {
    return (await this.#ctx.store.getSettingsByTrustDomain(trustDomain))?.mesh;
  }

  async #put(mesh: string, s: { trustDomain: string; svidTtlMs: number; keyType: KeyType }): Promise<MeshCaSettings> {
    const stored: CaSettings = { mesh, ...s, updatedAt: this.#ctx.clock.now() };
    try {
      await this.#ctx.store.putSettings(stored);
    } catch (e) {
      if (e instanceof ConflictError) {
        throw new ConflictError(`${e.message} Configure a distinct trust domain for mesh ${mesh}.`, 'KM_ERR_TRUST_DOMAIN_TAKEN');
      }
      throw e;
    }
    return { mesh, ...s, stored: true };
  }
}

function checkTtl(ms: number): number {
  if (!Number.isInteger(ms) || ms < MIN_SVID_TTL_MS || ms > MAX_SVID_TTL_MS) {
    throw new BadRequestError(`SVID TTL must be a whole number of milliseconds between ${MIN_SVID_TTL_MS} (1 minute) and ${MAX_SVID_TTL_MS} (30 days); got ${ms}.`);
  }
  return Math.floor(ms / 1000) * 1000;
}

export function checkKeyType(value: string): KeyType {
  if (!(KEY_TYPES as readonly string[]).includes(value)) throw new BadRequestError(`Unknown key type "${value}": use one of ${KEY_TYPES.join(', ')}.`);
  return value as KeyType;
}

// Persistence for keymesh's certificate authority (src/ca). Like ResourceStore, backends only persist: the
// CA's rules live in src/ca. The few invariants that must hold under concurrent callers are kept here, inside
// one transaction each: at most one active and one next (pending or prepared) CA per trust domain, a join
// token is claimed once, an issuance moves its CA's lastIssuedNotAfter, an identity revocation revokes its
// certificates. Private keys are never stored here: records name their key FILE (see src/ca/key-store.ts).
//
// Times are milliseconds since the epoch; `null` means "not (yet)". Key types are pki's KeyType names kept
// as plain strings, so that the store does not depend on src/pki.
import { ConflictError, NotFoundError } from '../errors/index.ts';

/**
 * pending: key made, CSR waiting for an offline root's signature; not trusted, signs nothing.
 * prepared: in the trust bundle, not signing yet (the next CA of a rotation).
 * active: in the bundle and signing; at most one per trust domain.
 * retiring: in the bundle, no longer signing; leaves once the last certificate it signed has expired.
 * retired: out of the bundle for good.
 */
export type CaStatus = 'pending' | 'prepared' | 'active' | 'retiring' | 'retired';
export const CA_STATUSES: readonly CaStatus[] = ['pending', 'prepared', 'active', 'retiring', 'retired'];

/** generated: keymesh's self-signed root. imported: a CA certificate and key brought by the user. offline-signed: keymesh's key, signed by the user's root from a CSR. */
export type CaOrigin = 'generated' | 'imported' | 'offline-signed';

export interface CaRecord {
  readonly id: string;
  /** `arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>` */
  readonly arn: string;
  readonly mesh: string;
  readonly trustDomain: string;
  readonly origin: CaOrigin;
  readonly keyType: string;
  /** Name of the CA's private key file in the key store directory (`<dataDir>/ca/`). */
  readonly keyFile: string;
  /** The CA's own certificate (PEM); '' while pending. */
  readonly certPem: string;
  /** The certificates above `certPem`, issuer first, ending with the root anchor; '' for a self-signed root. */
  readonly chainPem: string;
  /** The CSR handed out for an offline signature; '' unless origin is offline-signed. */
  readonly csrPem: string;
  readonly status: CaStatus;
  /** Validity of `certPem`; 0 while pending. */
  readonly notBefore: number;
  readonly notAfter: number;
  /** The latest notAfter of the certificates this CA signed (0: none yet). */
  readonly lastIssuedNotAfter: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly activatedAt: number | null;
  readonly retiringSince: number | null;
  readonly retiredAt: number | null;
}

export interface CaFilter {
  mesh?: string;
  trustDomain?: string;
  statuses?: readonly CaStatus[];
}

/** Per-mesh CA settings. A trust domain belongs to one mesh only (two meshes sharing one would share SPIFFE IDs). */
export interface CaSettings {
  readonly mesh: string;
  readonly trustDomain: string;
  readonly svidTtlMs: number;
  readonly keyType: string;
  readonly updatedAt: number;
}

export type IssuedKind = 'svid' | 'managed';

export interface IssuedCertificate {
  /** Lowercase hex without leading zeros. */
  readonly serial: string;
  readonly caId: string;
  readonly kind: IssuedKind;
  readonly mesh: string;
  /** The identity of an SVID; null for a managed certificate. */
  readonly spiffeId: string | null;
  /** The managed certificate this one belongs to; null for an SVID. */
  readonly managedArn: string | null;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly issuedAt: number;
  readonly revokedAt: number | null;
}

export interface IssuedFilter {
  caId?: string;
  spiffeId?: string;
  managedArn?: string;
  /** true: only revoked ones; false: only unrevoked ones. */
  revoked?: boolean;
  /** Only certificates with notAfter > this. */
  unexpiredAt?: number;
}

export type IdentityKind = 'virtualNode' | 'virtualGateway';

export interface JoinTokenRecord {
  readonly id: string;
  /** sha256 of the secret, hex. The secret itself is never stored. */
  readonly secretHash: string;
  readonly mesh: string;
  readonly kind: IdentityKind;
  readonly name: string;
  readonly spiffeId: string;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly usedAt: number | null;
}

export interface RevokedIdentity {
  readonly spiffeId: string;
  readonly mesh: string;
  readonly revokedAt: number;
  readonly reason: string;
}

export interface ManagedCertificateRecord {
  /** `arn:aws:acm:<region>:<account>:certificate/<id>` */
  readonly arn: string;
  readonly id: string;
  readonly mesh: string;
  /** The CA that signed the current certificate. */
  readonly caId: string;
  readonly domainName: string;
  /** Every DNS name in the certificate, domainName first. */
  readonly subjectAlternativeNames: readonly string[];
  readonly keyType: string;
  /** Name of the private key file in the key store directory. */
  readonly keyFile: string;
  readonly certPem: string;
  /** The CA certificates above the leaf, up to (not including) the root anchor. */
  readonly chainPem: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  /** Requested validity of each issuance. */
  readonly validityMs: number;
  readonly createdAt: number;
  readonly renewedAt: number | null;
  /** Store revision for compare-and-swap; assigned by the store. */
  readonly rev: number;
}

export interface CaStore {
  getSettings(mesh: string): Promise<CaSettings | undefined>;
  getSettingsByTrustDomain(trustDomain: string): Promise<CaSettings | undefined>;
  /** Creates or replaces a mesh's settings; ConflictError if another mesh has the trust domain. */
  putSettings(settings: CaSettings): Promise<CaSettings>;

  /**
   * Inserts a CA; ConflictError if the id or ARN exists, or if the record is active (or pending/prepared)
   * and its trust domain already has an active (or a pending/prepared) CA.
   */
  createCa(record: CaRecord): Promise<CaRecord>;
  getCa(id: string): Promise<CaRecord | undefined>;
  getCaByArn(arn: string): Promise<CaRecord | undefined>;
  /** Oldest first (createdAt, then id). */
  listCas(filter?: CaFilter): Promise<CaRecord[]>;
  /**
   * Moves a CA from one of `from` to `to` and stamps the matching time (activatedAt, retiringSince,
   * retiredAt). ConflictError if its status is not in `from` (or `to` would break the one-active /
   * one-next rule); NotFoundError if absent.
   */
  setCaStatus(id: string, from: readonly CaStatus[], to: CaStatus, at: number): Promise<CaRecord>;
  /** Gives a pending CA its signed certificate and makes it `status` (prepared or active), in one step. */
  completePendingCa(id: string, signed: { certPem: string; chainPem: string; notBefore: number; notAfter: number; status: 'prepared' | 'active' }, at: number): Promise<CaRecord>;
  /**
   * Rotation's switch, atomically: the prepared CA `id` becomes active and the trust domain's active CA (if
   * any) becomes retiring. ConflictError if `id` is not prepared.
   */
  activateCa(id: string, at: number): Promise<{ activated: CaRecord; retiring: CaRecord | undefined }>;
  /** Increments and returns the CA's CRL number (1, 2, ...). */
  nextCrlNumber(caId: string): Promise<number>;

  /** Records an issued certificate and raises its CA's lastIssuedNotAfter, in one transaction. ConflictError on a duplicate serial. */
  recordIssued(cert: IssuedCertificate): Promise<void>;
  getIssued(serial: string): Promise<IssuedCertificate | undefined>;
  /** Ordered by issuedAt, then serial. */
  listIssued(filter: IssuedFilter): Promise<IssuedCertificate[]>;
  /** Marks one certificate revoked; a second call keeps the first revokedAt. NotFoundError if unknown. */
  revokeCertificate(serial: string, at: number): Promise<IssuedCertificate>;

  /**
   * Revokes an identity and, in the same transaction, every unrevoked certificate of it that has not
   * expired at `at`. Revoking again keeps the first revokedAt and reason. Returns the newly revoked certificates.
   */
  revokeIdentity(identity: Omit<RevokedIdentity, 'revokedAt'>, at: number): Promise<{ identity: RevokedIdentity; revoked: IssuedCertificate[] }>;
  getRevokedIdentity(spiffeId: string): Promise<RevokedIdentity | undefined>;
  listRevokedIdentities(mesh?: string): Promise<RevokedIdentity[]>;
  /** Lets the identity bootstrap again (its revoked certificates stay revoked). False if it was not revoked. */
  unrevokeIdentity(spiffeId: string): Promise<boolean>;

  createJoinToken(record: JoinTokenRecord): Promise<void>;
  getJoinToken(id: string): Promise<JoinTokenRecord | undefined>;
  /** Ordered by createdAt, then id. */
  listJoinTokens(mesh?: string): Promise<JoinTokenRecord[]>;
  /** Marks the token used at `at` if it is unused; true only for the one caller that did so. NotFoundError if unknown. */
  claimJoinToken(id: string, at: number): Promise<boolean>;
  deleteJoinToken(id: string): Promise<boolean>;

  /** Inserts with rev 1; ConflictError if the ARN exists. */
  createManagedCertificate(record: ManagedCertificateRecord): Promise<ManagedCertificateRecord>;
  getManagedCertificate(arn: string): Promise<ManagedCertificateRecord | undefined>;
  /** Ordered by createdAt, then ARN. */
  listManagedCertificates(filter?: { mesh?: string; caId?: string }): Promise<ManagedCertificateRecord[]>;
  /** Replaces the record if its stored rev equals `expectedRev` (ConflictError otherwise); bumps rev. */
  updateManagedCertificate(record: ManagedCertificateRecord, expectedRev: number): Promise<ManagedCertificateRecord>;
  /** Deletes and returns the record; NotFoundError if absent. */
  deleteManagedCertificate(arn: string): Promise<ManagedCertificateRecord>;

  close(): Promise<void>;
}

/** Serials compare as lowercase hex without leading zeros (X.509 tools print them in different cases and paddings). */
export function normalizeSerial(serial: string): string {
  const s = serial.toLowerCase().replace(/[^0-9a-f]/g, '').replace(/^0+/, '');
  return s === '' ? '0' : s;
}

/** The time column each status stamps. */
export function statusTimeField(status: CaStatus): 'activatedAt' | 'retiringSince' | 'retiredAt' | undefined {
  if (status === 'active') return 'activatedAt';
  if (status === 'retiring') return 'retiringSince';
  if (status === 'retired') return 'retiredAt';
  return undefined;
}

export const NEXT_STATUSES: readonly CaStatus[] = ['pending', 'prepared'];

/** The ConflictError message for a CA that would break the one-active / one-next rule. */
export function caSlotMessage(trustDomain: string, status: CaStatus, taken: { id: string; status: CaStatus }): string {
  return status === 'active'
    ? `Trust domain ${trustDomain} already has an active CA (${taken.id}).`
    : `Trust domain ${trustDomain} already has a next CA (${taken.id}, ${taken.status}); activate or retire it first.`;
}

/** A CA moving to `to` must be in one of `from` (both backends); NotFoundError / ConflictError otherwise. */
export function checkCaTransition(id: string, ca: CaRecord | undefined, from: readonly CaStatus[], to: CaStatus): CaRecord {
  if (!ca) throw new NotFoundError(`CA ${id} does not exist.`);
  if (!from.includes(ca.status)) throw new ConflictError(`CA ${id} is ${ca.status}; only a CA that is ${from.join(' or ')} can become ${to}.`);
  return ca;
}

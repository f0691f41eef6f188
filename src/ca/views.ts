// What the admin API and CLI may show about a CA: the record without its key file name.
import type { CaOrigin, CaRecord, CaStatus } from '../store/ca-store.ts';

export interface CaView {
  readonly id: string;
  readonly arn: string;
  readonly mesh: string;
  readonly trustDomain: string;
  readonly origin: CaOrigin;
  readonly keyType: string;
  readonly status: CaStatus;
  /** '' while pending. */
  readonly certPem: string;
  /** Certificates above it up to the root ('' for a root). */
  readonly chainPem: string;
  /** The CSR to sign offline ('' unless origin is offline-signed). */
  readonly csrPem: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly lastIssuedNotAfter: number;
  readonly createdAt: number;
  readonly activatedAt: number | null;
  readonly retiringSince: number | null;
  readonly retiredAt: number | null;
}

export function caView(r: CaRecord): CaView {
  return {
    id: r.id, arn: r.arn, mesh: r.mesh, trustDomain: r.trustDomain, origin: r.origin, keyType: r.keyType, status: r.status,
    certPem: r.certPem, chainPem: r.chainPem, csrPem: r.csrPem, notBefore: r.notBefore, notAfter: r.notAfter,
    lastIssuedNotAfter: r.lastIssuedNotAfter, createdAt: r.createdAt, activatedAt: r.activatedAt, retiringSince: r.retiringSince, retiredAt: r.retiredAt,
  };
}

// What the admin API and CLI may show about a CA: the record without its key file name.
import type { CaRecord } from '../store/ca-store.ts';

/** Everything of the record except the key file name (and the store's bookkeeping time). */
export type CaView = Omit<CaRecord, 'keyFile' | 'updatedAt'>;

export function caView(r: CaRecord): CaView {
  return {
    id: r.id, arn: r.arn, mesh: r.mesh, trustDomain: r.trustDomain, origin: r.origin, keyType: r.keyType, status: r.status,
    certPem: r.certPem, chainPem: r.chainPem, csrPem: r.csrPem, notBefore: r.notBefore, notAfter: r.notAfter,
    lastIssuedNotAfter: r.lastIssuedNotAfter, createdAt: r.createdAt, activatedAt: r.activatedAt, retiringSince: r.retiringSince, retiredAt: r.retiredAt,
  };
}

// A CA record turned into what signing and verifying need: parsed certificates, the anchor, the chain to
// send with leaves, and (for signing) its private key, loaded once and cached in memory.
import type { X509Certificate } from '@peculiar/x509';
import { ConflictError } from '../errors/index.ts';
import type { KeyPair } from '../pki/api.ts';
import { parseCertificateChainPem, parseCertificatePem } from '../pki/pem.ts';
import type { CaRecord } from '../store/ca-store.ts';
import type { KeyStore } from './key-store.ts';

export interface CaCertificates {
  readonly cert: X509Certificate;
  /** The trust anchor that goes in the bundle: the root above this CA, or the CA itself when it is a root. */
  readonly anchor: X509Certificate;
  /** What a leaf's chain carries after the leaf: this CA and any CAs between it and the anchor. */
  readonly intermediates: readonly X509Certificate[];
}

export interface SigningCa extends CaCertificates {
  readonly record: CaRecord;
  readonly keys: KeyPair;
}

/** Parses a CA record's certificates; the record must have its certificate (not pending). */
export function caCertificates(record: CaRecord): CaCertificates {
  if (!record.certPem) throw new ConflictError(`CA ${record.id} is ${record.status} and has no certificate yet.`);
  const cert = parseCertificatePem(record.certPem, `certificate of CA ${record.id}`);
  if (!record.chainPem) return { cert, anchor: cert, intermediates: [] };
  const chain = parseCertificateChainPem(record.chainPem, `chain of CA ${record.id}`);
  return { cert, anchor: chain.at(-1)!, intermediates: [cert, ...chain.slice(0, -1)] };
}

export class CaMaterial {
  readonly #keys: KeyStore;
  /** By CA id; a record whose updatedAt changed is reloaded. */
  readonly #cache = new Map<string, { updatedAt: number; signer: Promise<SigningCa> }>();

  constructor(keys: KeyStore) {
    this.#keys = keys;
  }

  signer(record: CaRecord): Promise<SigningCa> {
    const hit = this.#cache.get(record.id);
    if (hit && hit.updatedAt === record.updatedAt) return hit.signer;
    const signer = (async () => ({ record, ...caCertificates(record), keys: await this.#keys.load(record.keyFile) }))();
    this.#cache.set(record.id, { updatedAt: record.updatedAt, signer });
    signer.catch(() => {
      if (this.#cache.get(record.id)?.signer === signer) this.#cache.delete(record.id); // a failed load is retried next time
    });
    return signer;
  }

  forget(id: string): void {
    this.#cache.delete(id);
  }
}

// What each supported key type means in WebCrypto terms: how to generate or import it, and how it signs.
// One table, so keys, CSRs, certificates and CRLs can never disagree about an algorithm.
import type { KeyType } from './api.ts';

interface KeyTypeAlgorithms {
  readonly generate: { name: string; namedCurve?: string; modulusLength?: number; publicExponent?: Uint8Array; hash?: string };
  /** For importing an existing key of this type (WebCrypto binds RSA keys to a hash at import). */
  readonly import: { name: string; namedCurve?: string; hash?: string };
  /** The signature this key type makes on certificates, CSRs and CRLs. */
  readonly sign: { name: string; hash: string };
}

const F4 = new Uint8Array([1, 0, 1]);

export const ALGORITHMS: Readonly<Record<KeyType, KeyTypeAlgorithms>> = {
  'ec-p256': {
    generate: { name: 'ECDSA', namedCurve: 'P-256' },
    import: { name: 'ECDSA', namedCurve: 'P-256' },
    sign: { name: 'ECDSA', hash: 'SHA-256' },
  },
  'ec-p384': {
    generate: { name: 'ECDSA', namedCurve: 'P-384' },
    import: { name: 'ECDSA', namedCurve: 'P-384' },
    sign: { name: 'ECDSA', hash: 'SHA-384' },
  },
  // RSASSA-PKCS1-v1_5 with SHA-256: what ACM Private CA's RSA_2048/SHA256WITHRSA and every TLS stack accept.
  'rsa-2048': {
    generate: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: F4, hash: 'SHA-256' },
    import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  },
  'rsa-3072': {
    generate: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 3072, publicExponent: F4, hash: 'SHA-256' },
    import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  },
};

export const SUPPORTED_KEY_TYPES = 'ec-p256, ec-p384, rsa-2048 or rsa-3072';

export function isKeyType(value: string): value is KeyType {
  return Object.hasOwn(ALGORITHMS, value);
}

/** A WebCrypto key algorithm as found on CryptoKey.algorithm or parsed from a SubjectPublicKeyInfo. */
export interface KeyAlgorithmLike {
  readonly name: string;
  readonly namedCurve?: string;
  readonly modulusLength?: number;
}

export function keyTypeFromAlgorithm(alg: KeyAlgorithmLike): KeyType | null {
  if (alg.name === 'ECDSA') {
    if (alg.namedCurve === 'P-256') return 'ec-p256';
    if (alg.namedCurve === 'P-384') return 'ec-p384';
    return null;
  }
  // RSA-PSS-only keys are refused: keymesh signs with PKCS#1 v1.5, which is what TLS stacks expect on certificates.
  if (alg.name === 'RSASSA-PKCS1-v1_5') {
    if (alg.modulusLength === 2048) return 'rsa-2048';
    if (alg.modulusLength === 3072) return 'rsa-3072';
  }
  return null;
}

/** "ECDSA P-521", "RSA 4096", "Ed25519": for error messages about keys keymesh does not use. */
export function describeAlgorithm(alg: KeyAlgorithmLike): string {
  if (alg.namedCurve) return `${alg.name} ${alg.namedCurve}`;
  if (alg.modulusLength) return `${alg.name === 'RSASSA-PKCS1-v1_5' ? 'RSA' : alg.name} ${alg.modulusLength}`;
  return alg.name;
}

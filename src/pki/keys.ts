// Key pairs: generation, and PKCS#8 PEM export/import (optionally encrypted with AES-256-CBC). PEM
// encryption goes through node:crypto KeyObjects because WebCrypto cannot wrap keys as encrypted PKCS#8.
import { createPrivateKey, createPublicKey, KeyObject } from 'node:crypto';
import { BadRequestError, PemError } from '../errors/index.ts';
import { ALGORITHMS, describeAlgorithm, isKeyType, keyTypeFromAlgorithm, SUPPORTED_KEY_TYPES } from './algorithms.ts';
import type { CryptoKey, KeyPair, KeyType } from './api.ts';
import { aBlock, splitPem, type PemBlock } from './pem-blocks.ts';
import { subtle } from './provider.ts';

const PRIVATE_KEY_LABELS = new Set(['PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'EC PRIVATE KEY', 'RSA PRIVATE KEY']);

export async function generateKeyPair(type: KeyType): Promise<KeyPair> {
  if (!isKeyType(type)) throw new BadRequestError(`unknown key type "${String(type)}"; use ${SUPPORTED_KEY_TYPES}`);
  // Extractable, so the private key can be written to a file; it never leaves the process otherwise.
  const pair = (await subtle.generateKey(ALGORITHMS[type].generate, true, ['sign', 'verify'])) as { privateKey: CryptoKey; publicKey: CryptoKey };
  return { type, privateKey: pair.privateKey, publicKey: pair.publicKey };
}

export async function exportPrivateKeyPem(keys: KeyPair, passphrase?: string): Promise<string> {
  const key = KeyObject.from(keys.privateKey);
  if (passphrase === undefined) return key.export({ type: 'pkcs8', format: 'pem' }) as string;
  if (passphrase === '') throw new PemError('refusing to encrypt a private key with an empty passphrase');
  return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;
}

export async function importPrivateKeyPem(pem: string, what: string, passphrase?: string): Promise<KeyPair> {
  const block = privateKeyBlock(pem, what);
  const encrypted = block.label === 'ENCRYPTED PRIVATE KEY' || (block.headers.get('Proc-Type') ?? '').includes('ENCRYPTED');
  if (encrypted && !passphrase) throw new PemError(`${what}: the private key is encrypted and no passphrase was given`);
  let key: KeyObject;
  try {
    key = createPrivateKey(encrypted ? { key: block.pem, format: 'pem', passphrase } : { key: block.pem, format: 'pem' });
  } catch (e) {
    // OpenSSL's message is kept as the cause for logs; it never contains the passphrase.
    if (!encrypted) throw new PemError(`${what}: the ${block.label} block is damaged: it is not a valid private key`, { cause: e });
    const badDecrypt = (e as { code?: string }).code === 'ERR_OSSL_BAD_DECRYPT';
    throw new PemError(`${what}: cannot decrypt the private key: ${badDecrypt ? 'wrong passphrase' : 'wrong passphrase, or the file is damaged'}`, { cause: e });
  }
  const type = keyTypeOfKeyObject(key);
  if (!type) throw new PemError(`${what}: unsupported key type ${describeKeyObject(key)}; keymesh uses ${SUPPORTED_KEY_TYPES}`);
  const alg = ALGORITHMS[type].import;
  return {
    type,
    privateKey: key.toCryptoKey(alg, true, ['sign']),
    publicKey: createPublicKey(key).toCryptoKey(alg, true, ['verify']),
  };
}

export function keyTypeOf(key: CryptoKey): KeyType {
  const type = keyTypeFromAlgorithm(key.algorithm);
  if (!type) throw new BadRequestError(`unsupported key type ${describeAlgorithm(key.algorithm)}; keymesh uses ${SUPPORTED_KEY_TYPES}`);
  return type;
}

/** The one private key in a PEM file; other blocks (EC PARAMETERS, a certificate bundled with it) are ignored. */
function privateKeyBlock(pem: string, what: string): PemBlock {
  const blocks = splitPem(pem, (problem) => new PemError(`${what}: ${problem}`));
  const keys = blocks.filter((b) => PRIVATE_KEY_LABELS.has(b.label));
  const first = keys[0];
  if (!first) {
    const found = [...new Set(blocks.map((b) => aBlock(b.label)))].join(' and ');
    throw new PemError(`${what}: expected a private key but found ${found}`);
  }
  if (keys.length > 1) throw new PemError(`${what}: holds ${keys.length} private keys; expected one`);
  return first;
}

function keyTypeOfKeyObject(key: KeyObject): KeyType | null {
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'ec') {
    if (details.namedCurve === 'prime256v1') return 'ec-p256';
    if (details.namedCurve === 'secp384r1') return 'ec-p384';
  } else if (key.asymmetricKeyType === 'rsa') {
    if (details.modulusLength === 2048) return 'rsa-2048';
    if (details.modulusLength === 3072) return 'rsa-3072';
  }
  return null;
}

function describeKeyObject(key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {};
  const size = details.namedCurve ?? (details.modulusLength ? `${details.modulusLength} bit` : '');
  return `${(key.asymmetricKeyType ?? 'unknown').toUpperCase()}${size ? ` ${size}` : ''}`;
}

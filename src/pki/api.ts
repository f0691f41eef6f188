// The PKI building blocks keymesh's CA, certificate tools and identity clients share. Pure X.509 work on
// top of @peculiar/x509 with node:crypto (WebCrypto) keys: no hand-rolled ASN.1, no I/O.
//
// This file is the contract; the implementations live beside it (keys.ts, pem.ts, csr.ts, issue.ts, crl.ts).
import type { X509Certificate } from '@peculiar/x509';
import type { webcrypto } from 'node:crypto';

export type CryptoKey = webcrypto.CryptoKey;

export type KeyType = 'ec-p256' | 'ec-p384' | 'rsa-2048' | 'rsa-3072';
export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072'];

export interface KeyPair {
  readonly type: KeyType;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

export interface ParsedCsr {
  /** The requester's public key (the CSR's self-signature has been verified). */
  readonly publicKey: CryptoKey;
  readonly keyType: KeyType;
  readonly subject: string;
  /** URI SANs the CSR asks for (e.g. a SPIFFE ID). */
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
}

export interface LeafRequest {
  readonly publicKey: CryptoKey;
  readonly issuerCert: X509Certificate;
  readonly issuerKeys: KeyPair;
  /** Omitted for SPIFFE SVIDs (identity is in the URI SAN); used for file certificates. */
  readonly commonName?: string;
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Hex; random when omitted. */
  readonly serial?: string;
}

export interface CaRequest {
  readonly commonName: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** pathLenConstraint; 0 = may sign only leaves. */
  readonly pathLength: number;
  /** SPIFFE trust-domain URI SAN (`spiffe://td`) for CA certificates of a trust domain. */
  readonly uri?: string;
}

export interface CrlEntry {
  readonly serial: string;
  readonly revokedAt: Date;
}

// Functions (implemented in the named files; every parse error is a PemError/CsrError that names what was
// being read and what is wrong):
//   keys.ts   generateKeyPair(type: KeyType): Promise<KeyPair>
//             exportPrivateKeyPem(keys: KeyPair, passphrase?: string): Promise<string>   PKCS#8; encrypted (AES-256) with a passphrase
//             importPrivateKeyPem(pem: string, what: string, passphrase?: string): Promise<KeyPair>
//             keyTypeOf(key: CryptoKey): KeyType
//   pem.ts    parseCertificatePem(pem: string, what: string): X509Certificate              exactly one certificate
//             parseCertificateChainPem(pem: string, what: string): X509Certificate[]      one or more, in file order
//             toPem(certs: X509Certificate | readonly X509Certificate[]): string
//   csr.ts    createCsr(keys: KeyPair, opts: { commonName?: string; uris?: string[]; dnsNames?: string[] }): Promise<string>
//             parseCsr(pem: string): Promise<ParsedCsr>                                    verifies the CSR's signature
//   issue.ts  createRootCa(keys: KeyPair, req: CaRequest): Promise<X509Certificate>
//             issueIntermediateCa(publicKey: CryptoKey, issuerCert: X509Certificate, issuerKeys: KeyPair, req: CaRequest): Promise<X509Certificate>
//             issueLeaf(req: LeafRequest): Promise<X509Certificate>                       CA:false, KU digitalSignature(+keyEncipherment for RSA), EKU serverAuth+clientAuth
//             newSerial(): string
//             certificateMatchesKey(cert: X509Certificate, keys: KeyPair): Promise<boolean>
//   crl.ts    buildCrl(issuerCert: X509Certificate, issuerKeys: KeyPair, entries: readonly CrlEntry[], thisUpdate: Date, nextUpdate: Date, crlNumber: number): Promise<string>  PEM
//   verify.ts verifyChain(leaf: X509Certificate, intermediates: readonly X509Certificate[], roots: readonly X509Certificate[], at: Date): Promise<void>  throws TrustError naming the failure

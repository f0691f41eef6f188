// Turning a compiled TLS context into what node:tls needs, from the proxy's current secrets: SDS secrets
// received over ADS, its own SVID (a certificate secret named without an SDS config), and files (Envoy's file
// DataSources, read when the context is built and re-read when they change, see FileCache).
//
// Peer verification follows Envoy: the chain must lead to the trusted CAs (OpenSSL, during the handshake),
// then the SAN matchers, then the leaf must not be on the CRLs delivered with the trust (keymesh sends
// `onlyVerifyLeafCertCrl`, so only the leaf is checked; done here rather than with OpenSSL's CRL flags, which
// would also demand a CRL for every intermediate).
import type { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { x509 } from '../../pki/provider.ts';
import type { CommonTls, TlsVersion } from './compile.ts';
import { sansMatch, sansOf } from './san.ts';

/** A compiled Secret resource. */
export type SecretMaterial =
  | { readonly kind: 'certificate'; readonly chainPem: string; readonly keyPem: string }
  | { readonly kind: 'validation'; readonly trustedCaPem: string; readonly crlPem: string | undefined };

export interface MaterialSources {
  /** A secret received over ADS. */
  secret(name: string): SecretMaterial | undefined;
  /** The proxy's own certificate named by `name` (its SPIFFE ID), for secrets referenced without an SDS config. */
  local(name: string): { readonly chainPem: string; readonly keyPem: string } | undefined;
  /** A file's current content; throws when it cannot be read. */
  file(path: string): string;
}

export interface TlsMaterial {
  readonly chainPem: string | undefined;
  readonly keyPem: string | undefined;
  readonly caPem: string | undefined;
  readonly crl: RevokedSerials | undefined;
  readonly minVersion: TlsVersion;
  readonly maxVersion: TlsVersion;
  /** A digest of everything above, to reuse SecureContexts. */
  readonly key: string;
}

/** Revoked serials per issuer (lowercase hex without leading zeros), from PEM CRLs. */
export class RevokedSerials {
  readonly #byIssuer = new Map<string, Set<string>>();

  constructor(crlPem: string) {
    for (const block of crlPem.match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g) ?? []) {
      const crl = new x509.X509Crl(block);
      const set = this.#byIssuer.get(crl.issuer) ?? new Set<string>();
      for (const entry of crl.entries) set.add(normalize(entry.serialNumber));
      this.#byIssuer.set(crl.issuer, set);
    }
  }

  revoked(cert: X509Certificate): boolean {
    return this.#byIssuer.get(issuerName(cert))?.has(normalize(cert.serialNumber)) ?? false;
  }
}

function normalize(serial: string): string {
  return serial.toLowerCase().replace(/^0+(?=.)/, '');
}

/** The issuer as @peculiar/x509 formats names (`CN=x, O=y`), from node's multi-line form. */
function issuerName(cert: X509Certificate): string {
  return cert.issuer.split('\n').filter(Boolean).join(', ');
}

export type Resolved = { readonly ok: true; readonly material: TlsMaterial } | { readonly ok: false; readonly missing: string };

/** The material for `tls` now; `missing` names what is not there yet (a secret not received, a file unreadable). */
export function resolveMaterial(tls: CommonTls, sources: MaterialSources): Resolved {
  let chainPem: string | undefined;
  let keyPem: string | undefined;
  const cert = tls.certificate;
  try {
    if (cert?.kind === 'file') {
      chainPem = sources.file(cert.chainPath);
      keyPem = sources.file(cert.keyPath);
    } else if (cert?.kind === 'inline') {
      chainPem = cert.chainPem;
      keyPem = cert.keyPem;
    } else if (cert?.kind === 'secret') {
      const s = cert.ads ? sources.secret(cert.name) : { kind: 'certificate' as const, ...sources.local(cert.name) };
      if (s?.kind !== 'certificate' || s.chainPem === undefined || s.keyPem === undefined) return { ok: false, missing: `certificate secret ${cert.name}` };
      chainPem = s.chainPem;
      keyPem = s.keyPem;
    }
  } catch (e) {
    return { ok: false, missing: `certificate: ${(e as Error).message}` };
  }
  let caPem: string | undefined;
  let crlPem: string | undefined = tls.validation?.crlPem;
  const trust = tls.validation?.trust;
  try {
    if (trust?.kind === 'file') caPem = sources.file(trust.path);
    else if (trust?.kind === 'inline') caPem = trust.pem;
    else if (trust?.kind === 'secret') {
      const s = sources.secret(trust.name);
      if (!s || s.kind !== 'validation') return { ok: false, missing: `validation secret ${trust.name}` };
      caPem = s.trustedCaPem;
      crlPem = s.crlPem ?? crlPem;
    }
  } catch (e) {
    return { ok: false, missing: `trusted CA: ${(e as Error).message}` };
  }
  const key = JSON.stringify([chainPem, keyPem, caPem, crlPem, tls.minVersion, tls.maxVersion]);
  return { ok: true, material: { chainPem, keyPem, caPem, crl: crlPem ? new RevokedSerials(crlPem) : undefined, minVersion: tls.minVersion, maxVersion: tls.maxVersion, key } };
}

/** SecureContexts by material, so equal material (most updates) does not rebuild; bounded. */
export class SecureContextCache {
  readonly #cache = new Map<string, SecureContext>();

  get(m: TlsMaterial): SecureContext {
    let ctx = this.#cache.get(m.key);
    if (!ctx) {
      ctx = createSecureContext({
        ...(m.chainPem ? { cert: m.chainPem } : {}),
        ...(m.keyPem ? { key: m.keyPem } : {}),
        ...(m.caPem ? { ca: m.caPem } : {}),
        minVersion: m.minVersion,
        maxVersion: m.maxVersion,
      });
      if (this.#cache.size >= 64) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(m.key, ctx);
    }
    return ctx;
  }
}

/** Why a peer certificate is refused, as Envoy's ssl stats name it. */
export type PeerProblem = 'fail_verify_no_cert' | 'fail_verify_error' | 'fail_verify_san';

/**
 * Envoy's checks of a peer certificate after OpenSSL verified (or, without trust, did not verify) the chain:
 * `authorized` is the TLS socket's verdict, meaningful only when trust is configured.
 */
export function checkPeer(tls: CommonTls, material: TlsMaterial, peer: X509Certificate | undefined, authorized: boolean, required: boolean): PeerProblem | undefined {
  if (!peer) return required ? 'fail_verify_no_cert' : undefined;
  if (material.caPem && !authorized) return 'fail_verify_error';
  if (material.crl?.revoked(peer)) return 'fail_verify_error';
  if (tls.validation && !sansMatch(tls.validation.sans, sansOf(peer))) return 'fail_verify_san';
  return undefined;
}

// The one place a leaf certificate is made, for SVIDs and managed certificates alike: build the request
// (validity capped by the CA chain, notBefore backdated for clock skew) → sign → re-check the result
// (chain, names) → record it. A leaf that fails its own check is never handed out.
import type { X509Certificate } from '@peculiar/x509';
import { InternalError, UnavailableError } from '../errors/index.ts';
import type { CryptoKey } from '../pki/api.ts';
import { issueLeaf } from '../pki/issue.ts';
import { verifyChain } from '../pki/verify.ts';
import { normalizeSerial, type CaRecord, type IssuedKind } from '../store/ca-store.ts';
import type { CaCertificates, SigningCa } from './ca-material.ts';
import { dnsSans, uriSans } from './cert-facts.ts';
import { iso, wholeSeconds, type CaContext } from './context.ts';

/** notBefore is this far in the past, so a peer whose clock is slightly behind accepts a fresh leaf. */
export const NOT_BEFORE_SKEW_MS = 10_000;

export interface LeafSpec {
  readonly publicKey: CryptoKey;
  readonly uris: readonly string[];
  readonly dnsNames: readonly string[];
  readonly commonName?: string;
  readonly ttlMs: number;
  readonly kind: IssuedKind;
  readonly mesh: string;
  readonly spiffeId: string | null;
  readonly managedArn: string | null;
}

export interface SignedLeaf {
  readonly cert: X509Certificate;
  /** The CA certificates to send after the leaf (anchor excluded). */
  readonly intermediates: readonly X509Certificate[];
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
  readonly caId: string;
}

/**
 * Until when the CA can sign (whole seconds): the earliest expiry in its chain, since a leaf never outlives
 * any CA above it (a peer would reject it from that moment on). UnavailableError once that has passed, so
 * callers can refuse before they commit to issuing (a join token is spent only on a request that will be signed).
 */
export function signableUntil(record: CaRecord, certs: CaCertificates, now: number): number {
  const caEnd = Math.min(...[certs.cert, ...certs.intermediates, certs.anchor].map((c) => c.notAfter.getTime()));
  if (wholeSeconds(caEnd) <= wholeSeconds(now)) {
    throw new UnavailableError(`CA ${record.id} of trust domain ${record.trustDomain} expired at ${iso(caEnd)}; rotate to a new CA before issuing.`);
  }
  return wholeSeconds(caEnd);
}

export async function signLeaf(ctx: CaContext, ca: SigningCa, spec: LeafSpec): Promise<SignedLeaf> {
  const now = ctx.clock.now();
  const start = wholeSeconds(now);
  const notAfter = Math.min(start + spec.ttlMs, signableUntil(ca.record, ca, now));
  const notBefore = start - NOT_BEFORE_SKEW_MS;
  const cert = await issueLeaf({
    publicKey: spec.publicKey,
    issuerCert: ca.cert,
    issuerKeys: ca.keys,
    ...(spec.commonName === undefined ? {} : { commonName: spec.commonName }),
    uris: spec.uris,
    dnsNames: spec.dnsNames,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
  });
  await checkIssued(cert, ca, spec, now);
  const serial = normalizeSerial(cert.serialNumber);
  await ctx.store.recordIssued({
    serial, caId: ca.record.id, kind: spec.kind, mesh: spec.mesh, spiffeId: spec.spiffeId, managedArn: spec.managedArn,
    notBefore, notAfter, issuedAt: now, revokedAt: null,
  });
  return { cert, intermediates: ca.intermediates, serial, notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime(), caId: ca.record.id };
}

async function checkIssued(cert: X509Certificate, ca: SigningCa, spec: LeafSpec, now: number): Promise<void> {
  try {
    await verifyChain(cert, ca.intermediates, [ca.anchor], new Date(now));
  } catch (e) {
    throw new InternalError(`A certificate just signed by CA ${ca.record.id} does not verify against its own chain; it was not issued.`, { cause: e });
  }
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));
  if (!same(uriSans(cert), spec.uris) || !same(dnsSans(cert), spec.dnsNames)) {
    throw new InternalError(`A certificate just signed by CA ${ca.record.id} does not carry the names it was asked for; it was not issued.`);
  }
}

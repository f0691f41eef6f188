// Chain verification for keymesh's own checks (an issued certificate before it is handed out, a CA file
// before it is trusted): builds the path from the leaf through the intermediates to one of the roots and
// checks signatures, validity at `at`, and the CA flag, key usage and pathLen of every issuer.
import type { X509Certificate } from '@peculiar/x509';
import { TrustError } from '../errors/index.ts';
import { x509 } from './provider.ts';

const MAX_DEPTH = 8;

export async function verifyChain(leaf: X509Certificate, intermediates: readonly X509Certificate[], roots: readonly X509Certificate[], at: Date): Promise<void> {
  if (roots.length === 0) throw new TrustError('no trusted roots were given');
  const path: X509Certificate[] = [leaf];
  let current = leaf;
  checkValidity(current, at);
  for (;;) {
    if (roots.some((r) => r.equal(current))) return; // the leaf itself is trusted
    if (path.length > MAX_DEPTH) throw new TrustError(`${describe(leaf)}: the chain is longer than ${MAX_DEPTH} certificates`);
    const fromRoots = await findIssuer(current, roots);
    const issuer = fromRoots ?? (await findIssuer(current, intermediates.filter((c) => !path.some((p) => p.equal(c)))));
    if (!issuer) {
      throw new TrustError(`${describe(current)}: no issuer "${current.issuer}" among the trusted roots${intermediates.length ? ' or intermediates' : ''}`);
    }
    checkValidity(issuer, at);
    checkCanIssue(issuer, current, path.length - 1);
    if (fromRoots) return;
    path.push(issuer);
    current = issuer;
  }
}

/** The candidate whose name (and key identifier, when both have one) matches and whose key verifies `cert`. */
async function findIssuer(cert: X509Certificate, candidates: readonly X509Certificate[]): Promise<X509Certificate | undefined> {
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  const named = candidates.filter((c) => {
    if (c.subject !== cert.issuer) return false;
    const ski = c.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
    return !aki || !ski || aki === ski;
  });
  for (const candidate of named) {
    const ok = await cert.verify({ publicKey: candidate.publicKey, signatureOnly: true }).catch(() => false);
    if (ok) return candidate;
  }
  const first = named[0];
  if (first) throw new TrustError(`${describe(cert)}: the signature does not verify with the key of its issuer ${describe(first)}`);
  return undefined;
}

function checkValidity(cert: X509Certificate, at: Date): void {
  if (at < cert.notBefore) throw new TrustError(`${describe(cert)}: not valid before ${cert.notBefore.toISOString()} (checked at ${at.toISOString()})`);
  if (at > cert.notAfter) throw new TrustError(`${describe(cert)}: expired at ${cert.notAfter.toISOString()} (checked at ${at.toISOString()})`);
}

/** `casBelow`: how many CA certificates sit between `issuer` and the leaf, which pathLen limits. */
function checkCanIssue(issuer: X509Certificate, subject: X509Certificate, casBelow: number): void {
  const bc = issuer.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new TrustError(`${describe(issuer)}, the issuer of ${describe(subject)}, is not a CA (basicConstraints CA:TRUE is missing)`);
  const ku = issuer.getExtension(x509.KeyUsagesExtension);
  if (ku && !(ku.usages & x509.KeyUsageFlags.keyCertSign)) throw new TrustError(`${describe(issuer)} may not sign certificates (keyUsage lacks keyCertSign)`);
  if (bc.pathLength !== undefined && casBelow > bc.pathLength) {
    throw new TrustError(`${describe(issuer)} has pathLen ${bc.pathLength} but ${casBelow} intermediate CA certificate(s) below it`);
  }
}

/** How a certificate is named in errors: its subject, or its first URI SAN when the subject is empty (SVIDs). */
function describe(cert: X509Certificate): string {
  let name = cert.subject;
  if (!name) {
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    name = san?.names.items.find((n) => n.type === 'url' || n.type === 'dns')?.value ?? '(empty subject)';
  }
  return `certificate "${name}" (serial ${cert.serialNumber})`;
}

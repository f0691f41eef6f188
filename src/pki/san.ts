// Syntax checks for the subject alternative names keymesh puts in certificates: DNS names (RFC 1123
// host names, optionally with one leading wildcard label) and URIs (SPIFFE IDs checked against the SPIFFE
// ID spec). Each returns the problem, or null when the name is fine, so callers choose the error class.

const LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

export function dnsNameProblem(name: string): string | null {
  if (name.length === 0) return 'empty DNS name';
  if (name.length > 253) return 'DNS name longer than 253 characters';
  const labels = name.split('.');
  const checked = labels[0] === '*' && labels.length > 2 ? labels.slice(1) : labels;
  for (const label of checked) {
    if (label === '') return 'DNS name has an empty label (leading, trailing or double dot)';
    if (!LABEL.test(label)) {
      return label.includes('*')
        ? 'a wildcard is allowed only as the whole leftmost label, as in *.example.com'
        : `label "${label}" is not a valid host name label (letters, digits and inner hyphens, at most 63)`;
    }
  }
  return null;
}

const SPIFFE_TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SPIFFE_SEGMENT = /^[A-Za-z0-9._-]+$/;

export function uriProblem(uri: string): string | null {
  // Certificates carry URIs as IA5String: ASCII without spaces or control characters.
  if (!/^[\x21-\x7e]+$/.test(uri)) return 'URI must be printable ASCII without spaces';
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri);
  if (!scheme) return 'URI has no scheme (expected e.g. spiffe://trust-domain/path)';
  if (scheme[1]?.toLowerCase() !== 'spiffe') return null;
  if (!uri.startsWith('spiffe://')) return 'SPIFFE ID must start with spiffe:// in lower case';
  const rest = uri.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  if (!SPIFFE_TRUST_DOMAIN.test(trustDomain)) return `SPIFFE trust domain "${trustDomain}" may hold only lower-case letters, digits, dots, dashes and underscores`;
  if (slash < 0) return null;
  const segments = rest.slice(slash + 1).split('/');
  for (const segment of segments) {
    if (segment === '' || segment === '.' || segment === '..' || !SPIFFE_SEGMENT.test(segment)) {
      return `SPIFFE ID path segment "${segment}" is not allowed (letters, digits, dots, dashes, underscores; no empty, "." or ".." segments, no query or fragment)`;
    }
  }
  return null;
}

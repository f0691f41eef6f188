// The peer certificate's subject alternative names and Envoy's SAN matching (match_typed_subject_alt_names:
// the certificate is accepted when ANY matcher matches ANY SAN of its type).
import type { X509Certificate } from 'node:crypto';
import type { SanMatcher, SanType } from './compile.ts';

export interface Sans {
  readonly DNS: readonly string[];
  readonly URI: readonly string[];
  readonly EMAIL: readonly string[];
  readonly IP_ADDRESS: readonly string[];
}

const PREFIXES: Record<string, SanType> = { DNS: 'DNS', URI: 'URI', email: 'EMAIL', 'IP Address': 'IP_ADDRESS' };

/**
 * SANs from node's `subjectAltName` text (`DNS:a, URI:spiffe://td/x, IP Address:127.0.0.1`). Node quotes a
 * value that contains a comma or quote as a JSON string, so those are decoded rather than split.
 */
export function parseSans(text: string | undefined): Sans {
  const out: Record<SanType, string[]> = { DNS: [], URI: [], EMAIL: [], IP_ADDRESS: [] };
  let i = 0;
  const s = text ?? '';
  while (i < s.length) {
    const colon = s.indexOf(':', i);
    if (colon < 0) break;
    const kind = s.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (s[colon + 1] === '"') {
      let j = colon + 2;
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      value = JSON.parse(s.slice(colon + 1, j + 1)) as string;
      next = s.indexOf(',', j + 1);
    } else {
      next = s.indexOf(', ', colon + 1);
      value = s.slice(colon + 1, next < 0 ? s.length : next);
    }
    const type = PREFIXES[kind];
    if (type) out[type].push(value);
    if (next < 0) break;
    i = next + (s[next + 1] === ' ' ? 2 : 1);
  }
  return out;
}

export function sansOf(cert: X509Certificate): Sans {
  return parseSans(cert.subjectAltName);
}

function matches(m: SanMatcher, value: string): boolean {
  const v = m.ignoreCase ? value.toLowerCase() : value;
  const lc = (x: string) => (m.ignoreCase ? x.toLowerCase() : x);
  if (m.exact !== undefined) return v === lc(m.exact);
  if (m.prefix !== undefined) return v.startsWith(lc(m.prefix));
  if (m.suffix !== undefined) return v.endsWith(lc(m.suffix));
  if (m.contains !== undefined) return v.includes(lc(m.contains));
  if (m.regex !== undefined) return m.regex.test(value);
  return false;
}

/** DNS SANs may be wildcards (`*.example.com` covers one label), as Envoy matches exact DNS matchers. */
function dnsMatches(m: SanMatcher, san: string): boolean {
  if (matches(m, san)) return true;
  if (m.exact === undefined || !san.startsWith('*.')) return false;
  const want = m.exact.toLowerCase();
  const dot = want.indexOf('.');
  return dot > 0 && want.slice(dot) === san.slice(1).toLowerCase();
}

/** True when no matcher is configured or one matches a SAN of its type. */
export function sansMatch(matchers: readonly SanMatcher[], sans: Sans): boolean {
  if (matchers.length === 0) return true;
  return matchers.some((m) => sans[m.type].some((san) => (m.type === 'DNS' ? dnsMatches(m, san) : matches(m, san))));
}

/** The SPIFFE ID (URI SAN with the spiffe scheme) of a certificate, if it has one. */
export function spiffeIdOf(sans: Sans): string | undefined {
  return sans.URI.find((u) => u.startsWith('spiffe://'));
}

// What `/config_dump` may show. Envoy redacts fields annotated `sensitive` (udpa.annotations.sensitive) in its
// config dump: every string and bytes value inside such a field becomes "[redacted]", whatever its depth, so a
// TlsCertificate's private key, inline or as a file name, never leaves the proxy through its admin endpoint.
// Same rule here, keyed by field name in both protobuf JSON spellings (`privateKey`/`private_key`, …), plus a
// safety net: any string holding a PEM private key (or base64 of one, as protobuf JSON writes bytes) is redacted
// wherever it is.
//
// The input is never modified. Maps become objects, Sets and typed arrays become arrays or base64 (as protobuf
// JSON writes bytes), cycles and absurd depth are cut, so the result always serialises.

export const REDACTED = '[redacted]';

/** Fields Envoy marks sensitive in secrets (TlsCertificate, TlsSessionTicketKeys, GenericSecret). */
const SENSITIVE = new Set([
  'privateKey', 'private_key',
  'password',
  'pkcs12',
  'sessionTicketKeys', 'session_ticket_keys',
  'genericSecret', 'generic_secret',
]);

const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const MAX_DEPTH = 64;

function leaksKey(s: string): boolean {
  if (PEM_PRIVATE_KEY.test(s)) return true;
  if (s.length < 64 || !BASE64.test(s)) return false;
  return PEM_PRIVATE_KEY.test(Buffer.from(s, 'base64').toString('latin1'));
}

/** A copy of `value` fit for `/config_dump`: JSON-safe, with secrets replaced by "[redacted]". */
export function redactSecrets(value: unknown): unknown {
  return walk(value, false, new WeakSet(), 0);
}

function walk(value: unknown, sensitive: boolean, seen: WeakSet<object>, depth: number): unknown {
  switch (typeof value) {
    case 'string':
      return sensitive || leaksKey(value) ? REDACTED : value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'boolean':
      return value;
    case 'bigint':
      return sensitive ? REDACTED : value.toString();
    case 'object':
      break;
    default:
      return undefined; // functions, symbols, undefined: dropped, as JSON.stringify does
  }
  if (value === null) return null;
  if (ArrayBuffer.isView(value)) {
    return walk(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'), sensitive, seen, depth);
  }
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  try {
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
    if (Array.isArray(value) || value instanceof Set) {
      return [...value].map((v) => walk(v, sensitive, seen, depth + 1) ?? null);
    }
    const entries = value instanceof Map ? [...value.entries()].map(([k, v]) => [String(k), v] as const) : Object.entries(value);
    const out: Record<string, unknown> = {};
    for (const [k, v] of entries) {
      const w = walk(v, sensitive || SENSITIVE.has(k), seen, depth + 1);
      if (w !== undefined) out[k] = w;
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

// What the first bytes of a connection say, as Envoy's tls_inspector and http_inspector find out: a TLS
// ClientHello (with its SNI and ALPN offers), plaintext HTTP/1.x or HTTP/2 with prior knowledge (h2c), or
// something else. PERMISSIVE mTLS rests on this: TLS and plaintext arrive on the same port. Pure.

export type Inspection =
  | { readonly kind: 'tls'; readonly serverName: string | undefined; readonly alpn: readonly string[] }
  | { readonly kind: 'http'; readonly protocol: 'http/1.0' | 'http/1.1' | 'h2c' }
  | { readonly kind: 'other' };

/** Envoy's tls_inspector reads at most one full ClientHello record; a longer one is not TLS it can inspect. */
export const MAX_INSPECT_BYTES = 16 * 1024 + 5;

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The inspection, or undefined when more bytes are needed to tell. */
export function inspect(buf: Buffer): Inspection | undefined {
  if (buf.length === 0) return undefined;
  if (buf[0] === 0x16) return inspectTls(buf);
  return inspectHttp(buf);
}

function inspectTls(buf: Buffer): Inspection | undefined {
  if (buf.length < 5) return undefined;
  if (buf[1] !== 0x03) return { kind: 'other' };
  const recordLength = buf.readUInt16BE(3);
  if (buf.length < 5 + recordLength) return buf.length >= MAX_INSPECT_BYTES ? { kind: 'other' } : undefined;
  const hello = parseClientHello(buf.subarray(5, 5 + recordLength));
  return hello ?? { kind: 'other' };
}

function parseClientHello(b: Buffer): Inspection | undefined {
  // Handshake header: type (1 = ClientHello), 3-byte length.
  if (b.length < 4 || b[0] !== 1) return undefined;
  let p = 4 + 2 + 32; // client_version, random
  if (p >= b.length) return undefined;
  p += 1 + b[p]!; // session_id
  if (p + 2 > b.length) return undefined;
  p += 2 + b.readUInt16BE(p); // cipher_suites
  if (p >= b.length) return undefined;
  p += 1 + b[p]!; // compression_methods
  let serverName: string | undefined;
  const alpn: string[] = [];
  if (p + 2 > b.length) return { kind: 'tls', serverName, alpn };
  const end = Math.min(b.length, p + 2 + b.readUInt16BE(p));
  p += 2;
  while (p + 4 <= end) {
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    const body = b.subarray(p + 4, Math.min(end, p + 4 + len));
    if (type === 0 && body.length >= 5 && body[2] === 0) {
      const n = body.readUInt16BE(3);
      serverName = body.toString('latin1', 5, 5 + n).toLowerCase();
    } else if (type === 16 && body.length >= 2) {
      let q = 2;
      while (q < body.length) {
        const n = body[q]!;
        alpn.push(body.toString('latin1', q + 1, q + 1 + n));
        q += 1 + n;
      }
    }
    p += 4 + len;
  }
  return { kind: 'tls', serverName, alpn };
}

function inspectHttp(buf: Buffer): Inspection | undefined {
  const prefaceBytes = Math.min(buf.length, H2_PREFACE.length);
  if (buf.subarray(0, prefaceBytes).equals(H2_PREFACE.subarray(0, prefaceBytes))) {
    return prefaceBytes === H2_PREFACE.length ? { kind: 'http', protocol: 'h2c' } : undefined;
  }
  const eol = buf.indexOf('\r\n');
  if (eol < 0) {
    // A request line is short; Envoy's http_inspector gives up after its buffer (8 KiB) too.
    if (buf.length > 8192) return { kind: 'other' };
    const sp = buf.indexOf(0x20);
    const method = buf.toString('latin1', 0, sp < 0 ? buf.length : sp);
    return method.length === 0 || !TOKEN.test(method) || method.length > 20 ? { kind: 'other' } : undefined;
  }
  const line = buf.toString('latin1', 0, eol);
  const parts = line.split(' ');
  if (parts.length !== 3 || !TOKEN.test(parts[0]!)) return { kind: 'other' };
  if (parts[2] === 'HTTP/1.1') return { kind: 'http', protocol: 'http/1.1' };
  if (parts[2] === 'HTTP/1.0') return { kind: 'http', protocol: 'http/1.0' };
  return { kind: 'other' };
}

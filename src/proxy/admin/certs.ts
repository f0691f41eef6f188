// Envoy's `/certs` answer (envoy.admin.v3.Certificates, printed as protobuf JSON with proto field names):
//
//   {"certificates":[{"ca_cert":[Details…],"cert_chain":[Details…]}, …]}
//   Details = {"path":"<inline>" | file, "serial_number":"7b17…" (lowercase hex, no leading zeros),
//              "subject_alt_names":[{"uri":…}|{"dns":…}|{"ip_address":…}],
//              "days_until_expiration":"0" (uint64, so a string; whole days left, 0 once expired),
//              "valid_from":"2020-11-11T23:19:45Z","expiration_time":"2020-11-12T00:19:55Z"}
//
// One entry per TLS context (a listener's or a cluster's). As in Envoy, `cert_chain` describes the leaf of each
// certificate chain the context presents. `ca_cert` describes every certificate of the context's trust bundle;
// Envoy shows only one, but during a CA rotation (two roots trusted) operators need to see both.
import type { X509Certificate } from '@peculiar/x509';
import { parseCertificateChainPem } from '../../pki/pem.ts';
import { x509 } from '../../pki/provider.ts';

export interface CertSource {
  readonly pem: string;
  /** The file it came from; Envoy says `<inline>` for SDS and inline material. */
  readonly path?: string;
}

export interface TlsContextCerts {
  /** Trust bundles (validation contexts). */
  readonly caCert?: readonly CertSource[];
  /** Certificate chains presented, leaf first. */
  readonly certChain?: readonly CertSource[];
}

export type SubjectAltName = { readonly dns: string } | { readonly uri: string } | { readonly ip_address: string };

export interface CertificateDetails {
  readonly path: string;
  readonly serial_number: string;
  readonly subject_alt_names: readonly SubjectAltName[];
  readonly days_until_expiration: string;
  readonly valid_from: string;
  readonly expiration_time: string;
}

export interface CertsJson {
  readonly certificates: readonly { readonly ca_cert: readonly CertificateDetails[]; readonly cert_chain: readonly CertificateDetails[] }[];
}

const DAY_MS = 86_400_000;

/** RFC 3339 as protobuf JSON prints a Timestamp: no fraction when it is zero. */
function timestamp(d: Date): string {
  return d.toISOString().replace(/\.000Z$/, 'Z');
}

export function certificateDetails(cert: X509Certificate, path: string, nowMs: number): CertificateDetails {
  const sans: SubjectAltName[] = [];
  for (const n of cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? []) {
    if (n.type === 'dns') sans.push({ dns: n.value });
    else if (n.type === 'url') sans.push({ uri: n.value });
    else if (n.type === 'ip') sans.push({ ip_address: n.value });
  }
  const serial = cert.serialNumber.toLowerCase().replace(/^0+(?=.)/, '');
  const left = cert.notAfter.getTime() - nowMs;
  return {
    path,
    serial_number: serial,
    subject_alt_names: sans,
    days_until_expiration: String(left > 0 ? Math.floor(left / DAY_MS) : 0),
    valid_from: timestamp(cert.notBefore),
    expiration_time: timestamp(cert.notAfter),
  };
}

/** The `/certs` body for these TLS contexts. Throws PemError on a certificate that does not parse. */
export function formatCerts(contexts: readonly TlsContextCerts[], nowMs: number): CertsJson {
  return {
    certificates: contexts.map((ctx) => ({
      ca_cert: (ctx.caCert ?? []).flatMap((src) => {
        const path = src.path ?? '<inline>';
        return parseCertificateChainPem(src.pem, `CA certificates ${path}`).map((c) => certificateDetails(c, path, nowMs));
      }),
      cert_chain: (ctx.certChain ?? []).map((src) => {
        const path = src.path ?? '<inline>';
        const [leaf] = parseCertificateChainPem(src.pem, `certificate chain ${path}`);
        return certificateDetails(leaf!, path, nowMs);
      }),
    })),
  };
}

// Envoy's Downstream/UpstreamTlsContext (protobufjs object form) as what keymesh's proxy needs to build TLS:
// where the certificate and the trust come from (files, SDS secrets over ADS, or the proxy's own SVID named
// without an SDS config), which SANs the peer must carry, whether a client certificate is required, and the
// protocol versions. Pure; every unsupported setting is a ProxyConfigError naming the field (the proxy NACKs).
import { list, obj, optObj, optStr, Path, str, wrapped, wrappedBool, type Json } from '../resources/values.ts';

export const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';
export const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
export const TLS_SOCKET = 'envoy.transport_sockets.tls';

/** A certificate with its key: files Envoy would read, or a secret (over ADS, or local when `ads` is false). */
export type CertificateSource =
  | { readonly kind: 'file'; readonly chainPath: string; readonly keyPath: string }
  | { readonly kind: 'inline'; readonly chainPem: string; readonly keyPem: string }
  | { readonly kind: 'secret'; readonly name: string; readonly ads: boolean };

export type TrustSource =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'inline'; readonly pem: string }
  | { readonly kind: 'secret'; readonly name: string };

export type SanType = 'DNS' | 'URI' | 'EMAIL' | 'IP_ADDRESS';

export interface SanMatcher {
  readonly type: SanType;
  readonly exact?: string;
  readonly prefix?: string;
  readonly suffix?: string;
  readonly contains?: string;
  readonly regex?: RegExp;
  readonly ignoreCase: boolean;
}

export interface Validation {
  /** Undefined: no trust configured (the peer's certificate is not verified). */
  readonly trust: TrustSource | undefined;
  /** Any one must match one of the peer's SANs; empty: no SAN check. */
  readonly sans: readonly SanMatcher[];
  /** CRLs given inline in a file-based validation context. */
  readonly crlPem?: string;
}

export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

export interface CommonTls {
  readonly certificate: CertificateSource | undefined;
  readonly validation: Validation | undefined;
  readonly minVersion: TlsVersion;
  readonly maxVersion: TlsVersion;
  readonly alpn: readonly string[];
}

export interface DownstreamTls extends CommonTls {
  readonly requireClientCertificate: boolean;
}

export interface UpstreamTls extends CommonTls {
  readonly sni: string | undefined;
  /**
   * max_session_keys: 0 = no client-side session resumption (no session offered, none stored); otherwise
   * sessions are resumed (keymesh keeps the last session per host). Envoy's default is 1.
   */
  readonly maxSessionKeys: number;
}

/** Envoy's default max_session_keys. */
export const DEFAULT_MAX_SESSION_KEYS = 1;

const VERSIONS: Record<string, TlsVersion | 'auto'> = { TLS_AUTO: 'auto', TLSv1_2: 'TLSv1.2', TLSv1_3: 'TLSv1.3' };
const REFUSED_VERSIONS = new Set(['TLSv1_0', 'TLSv1_1']);

function version(v: unknown, path: Path, auto: TlsVersion): TlsVersion {
  if (v === undefined || v === null) return auto;
  const name = str(v, path);
  if (REFUSED_VERSIONS.has(name)) path.fail(`${name} is refused: keymesh requires TLS 1.2 or newer`);
  const mapped = VERSIONS[name];
  if (!mapped) path.fail(`unknown TLS version ${name}`);
  return mapped === 'auto' ? auto : mapped;
}

/** A DataSource: a file name or inline text. */
function dataSource(v: unknown, path: Path): { file: string } | { inline: string } {
  const o = obj(v, path);
  if (typeof o.filename === 'string' && o.filename) return { file: o.filename };
  if (typeof o.inlineString === 'string') return { inline: o.inlineString };
  if (o.inlineBytes !== undefined) {
    const bytes = o.inlineBytes;
    return { inline: Buffer.isBuffer(bytes) || bytes instanceof Uint8Array ? Buffer.from(bytes).toString('utf8') : Buffer.from(str(bytes, path.at('inlineBytes')), 'base64').toString('utf8') };
  }
  return path.fail('needs filename, inlineString or inlineBytes');
}

function certificate(ctx: Json, path: Path): CertificateSource | undefined {
  const files = list(ctx.tlsCertificates, path.at('tlsCertificates'));
  const sds = list(ctx.tlsCertificateSdsSecretConfigs, path.at('tlsCertificateSdsSecretConfigs'));
  if (files.length + sds.length > 1) path.fail('keymesh\'s proxy supports one certificate per TLS context');
  if (files.length === 1) {
    const p = path.at('tlsCertificates').at(0);
    const c = obj(files[0], p);
    const chain = dataSource(c.certificateChain, p.at('certificateChain'));
    const key = dataSource(c.privateKey, p.at('privateKey'));
    if ('file' in chain && 'file' in key) return { kind: 'file', chainPath: chain.file, keyPath: key.file };
    if ('inline' in chain && 'inline' in key) return { kind: 'inline', chainPem: chain.inline, keyPem: key.inline };
    return p.fail('certificateChain and privateKey must both be files or both inline');
  }
  if (sds.length === 1) {
    const p = path.at('tlsCertificateSdsSecretConfigs').at(0);
    const s = obj(sds[0], p);
    return { kind: 'secret', name: str(s.name, p.at('name')), ads: sdsIsAds(s.sdsConfig, p.at('sdsConfig')) };
  }
  return undefined;
}

/** An SDS config must be ADS (keymesh serves secrets on the same stream); none means a local secret. */
function sdsIsAds(v: unknown, path: Path): boolean {
  const o = optObj(v, path);
  if (!o) return false;
  if (o.ads === undefined) path.fail('only ADS config sources are supported (secrets come over the same stream)');
  return true;
}

const SAN_TYPES = new Set<string>(['DNS', 'URI', 'EMAIL', 'IP_ADDRESS']);

function sanMatcher(v: unknown, path: Path): SanMatcher {
  const o = obj(v, path);
  const type = str(o.sanType, path.at('sanType'));
  if (!SAN_TYPES.has(type)) path.at('sanType').fail(`unsupported SAN type ${type}`);
  const m = obj(o.matcher, path.at('matcher'));
  const ignoreCase = m.ignoreCase === true;
  const mp = path.at('matcher');
  const base = { type: type as SanType, ignoreCase };
  if (typeof m.exact === 'string') return { ...base, exact: m.exact };
  if (typeof m.prefix === 'string') return { ...base, prefix: m.prefix };
  if (typeof m.suffix === 'string') return { ...base, suffix: m.suffix };
  if (typeof m.contains === 'string') return { ...base, contains: m.contains };
  if (m.safeRegex !== undefined) {
    const regex = str(obj(m.safeRegex, mp.at('safeRegex')).regex, mp.at('safeRegex').at('regex'));
    try {
      return { ...base, regex: new RegExp(`^(?:${regex})$`, ignoreCase ? 'i' : '') };
    } catch (e) {
      return mp.at('safeRegex').fail(`bad regex: ${(e as Error).message}`);
    }
  }
  return mp.fail('needs exact, prefix, suffix, contains or safeRegex');
}

const VALIDATION_FIELDS = new Set(['trustedCa', 'matchTypedSubjectAltNames', 'crl', 'onlyVerifyLeafCertCrl', 'trustChainVerification']);

function validationContext(v: Json, path: Path): Validation {
  for (const k of Object.keys(v)) if (!VALIDATION_FIELDS.has(k)) path.at(k).fail('is not supported by keymesh\'s proxy');
  if (v.trustChainVerification !== undefined && v.trustChainVerification !== 'VERIFY_TRUST_CHAIN') path.at('trustChainVerification').fail('only VERIFY_TRUST_CHAIN is supported');
  let trust: TrustSource | undefined;
  if (v.trustedCa !== undefined) {
    const d = dataSource(v.trustedCa, path.at('trustedCa'));
    trust = 'file' in d ? { kind: 'file', path: d.file } : { kind: 'inline', pem: d.inline };
  }
  const sans = list(v.matchTypedSubjectAltNames, path.at('matchTypedSubjectAltNames')).map((m, i) => sanMatcher(m, path.at('matchTypedSubjectAltNames').at(i)));
  let crlPem: string | undefined;
  if (v.crl !== undefined) {
    const d = dataSource(v.crl, path.at('crl'));
    if ('file' in d) path.at('crl').fail('CRLs from files are not supported; keymesh delivers them over SDS');
    else crlPem = d.inline;
  }
  return { trust, sans, ...(crlPem !== undefined ? { crlPem } : {}) };
}

function validation(ctx: Json, path: Path): Validation | undefined {
  if (ctx.validationContext !== undefined && ctx.combinedValidationContext !== undefined) path.fail('has both validationContext and combinedValidationContext');
  if (ctx.validationContext !== undefined) return validationContext(obj(ctx.validationContext, path.at('validationContext')), path.at('validationContext'));
  if (ctx.validationContextSdsSecretConfig !== undefined) {
    const p = path.at('validationContextSdsSecretConfig');
    const s = obj(ctx.validationContextSdsSecretConfig, p);
    sdsIsAds(s.sdsConfig, p.at('sdsConfig'));
    return { trust: { kind: 'secret', name: str(s.name, p.at('name')) }, sans: [] };
  }
  if (ctx.combinedValidationContext !== undefined) {
    const p = path.at('combinedValidationContext');
    const c = obj(ctx.combinedValidationContext, p);
    const defaults = validationContext(obj(c.defaultValidationContext ?? {}, p.at('defaultValidationContext')), p.at('defaultValidationContext'));
    if (defaults.trust) p.at('defaultValidationContext').at('trustedCa').fail('trust must come from the SDS secret in a combined validation context');
    const sp = p.at('validationContextSdsSecretConfig');
    const s = obj(c.validationContextSdsSecretConfig, sp);
    sdsIsAds(s.sdsConfig, sp.at('sdsConfig'));
    return { trust: { kind: 'secret', name: str(s.name, sp.at('name')) }, sans: defaults.sans };
  }
  return undefined;
}

const COMMON_FIELDS = new Set(['tlsParams', 'tlsCertificates', 'tlsCertificateSdsSecretConfigs', 'validationContext', 'validationContextSdsSecretConfig', 'combinedValidationContext', 'alpnProtocols']);

function common(ctx: Json, path: Path): CommonTls {
  for (const k of Object.keys(ctx)) if (!COMMON_FIELDS.has(k)) path.at(k).fail('is not supported by keymesh\'s proxy');
  const params = optObj(ctx.tlsParams, path.at('tlsParams')) ?? {};
  for (const k of Object.keys(params)) {
    if (k !== 'tlsMinimumProtocolVersion' && k !== 'tlsMaximumProtocolVersion') path.at('tlsParams').at(k).fail('is not supported by keymesh\'s proxy');
  }
  const minVersion = version(params.tlsMinimumProtocolVersion, path.at('tlsParams').at('tlsMinimumProtocolVersion'), 'TLSv1.2');
  const maxVersion = version(params.tlsMaximumProtocolVersion, path.at('tlsParams').at('tlsMaximumProtocolVersion'), 'TLSv1.3');
  if (minVersion === 'TLSv1.3' && maxVersion === 'TLSv1.2') path.at('tlsParams').fail('the minimum version is above the maximum');
  const alpn = list(ctx.alpnProtocols, path.at('alpnProtocols')).map((a, i) => str(a, path.at('alpnProtocols').at(i)));
  return { certificate: certificate(ctx, path), validation: validation(ctx, path), minVersion, maxVersion, alpn };
}

/** A listener filter chain's transport socket (`envoy.transport_sockets.tls` with a DownstreamTlsContext). */
export function compileDownstreamTls(socket: Json, path: Path): DownstreamTls {
  const typedConfig = tlsTypedConfig(socket, path, DOWNSTREAM_TLS);
  const tp = path.at('typedConfig');
  for (const k of Object.keys(typedConfig)) {
    if (!['@type', 'commonTlsContext', 'requireClientCertificate'].includes(k)) tp.at(k).fail('is not supported by keymesh\'s proxy');
  }
  const c = common(obj(typedConfig.commonTlsContext ?? {}, tp.at('commonTlsContext')), tp.at('commonTlsContext'));
  if (!c.certificate) tp.at('commonTlsContext').fail('a listener TLS context needs a certificate');
  return { ...c, requireClientCertificate: wrappedBool(typedConfig.requireClientCertificate, tp.at('requireClientCertificate')) ?? false };
}

/** A cluster's transport socket (`envoy.transport_sockets.tls` with an UpstreamTlsContext). */
export function compileUpstreamTls(socket: Json, path: Path): UpstreamTls {
  const typedConfig = tlsTypedConfig(socket, path, UPSTREAM_TLS);
  const tp = path.at('typedConfig');
  for (const k of Object.keys(typedConfig)) {
    if (!['@type', 'commonTlsContext', 'sni', 'maxSessionKeys'].includes(k)) tp.at(k).fail('is not supported by keymesh\'s proxy');
  }
  const c = common(obj(typedConfig.commonTlsContext ?? {}, tp.at('commonTlsContext')), tp.at('commonTlsContext'));
  return { ...c, sni: optStr(typedConfig.sni, tp.at('sni')), maxSessionKeys: maxSessionKeys(typedConfig.maxSessionKeys, tp.at('maxSessionKeys')) };
}

/** A UInt32Value: how many session keys to keep (0 disables resumption); absent: Envoy's default. */
function maxSessionKeys(v: unknown, path: Path): number {
  const n = wrapped(v, path);
  if (n === undefined) return DEFAULT_MAX_SESSION_KEYS;
  if (!Number.isInteger(n) || n < 0 || n > 4294967295) path.fail(`must be an integer from 0 to 4294967295, not ${n}`);
  return n;
}

function tlsTypedConfig(socket: Json, path: Path, type: string): Json {
  const name = str(socket.name, path.at('name'));
  if (name !== TLS_SOCKET) path.at('name').fail(`transport socket ${name} is not supported (only ${TLS_SOCKET})`);
  const typedConfig = obj(socket.typedConfig, path.at('typedConfig'));
  if (typedConfig['@type'] !== type) path.at('typedConfig').fail(`must be a ${type.slice(type.lastIndexOf('.') + 1)}`);
  return typedConfig;
}

/** The secrets (by name) a TLS context needs over ADS. */
export function secretNames(tls: CommonTls): string[] {
  const names: string[] = [];
  if (tls.certificate?.kind === 'secret' && tls.certificate.ads) names.push(tls.certificate.name);
  if (tls.validation?.trust?.kind === 'secret') names.push(tls.validation.trust.name);
  return names;
}

// App Mesh TLS (listener `tls`, client policy `tls`) as Envoy Downstream/UpstreamTlsContext transport sockets.
//
// Certificates: file → inline filename DataSources (Envoy reads the files); sds → the workload's own SVID,
// referenced by the spec's name ONLY (no sdsConfig): Envoy then takes it from its static secrets, which the
// proxy provides locally (keymesh's proxy in process; a stock Envoy from the bootstrap `keymesh bootstrap
// envoy` writes, on the files `keymesh identity run` renews). The control plane never holds SVID keys.
// acm → a keymesh-managed SDS secret named by the certificate ARN, over ADS. Trust: file → trustedCa filename;
// sds → the named validation secret; acm → ONE validation secret whose name is the CA ARNs, sorted and joined
// with ',' (Envoy takes a single validation secret; the xDS server serves the union of those CAs' bundles).
import type { JsonObject } from '../model/json.ts';
import { adsSource, T } from './envoy.ts';
import type { SecretCollector } from './secrets.ts';
import type { ClientPolicyTls, FileCertificate, ListenerCertificate, ListenerTls, SdsRef, Trust, ValidationContext } from './spec.ts';

/** SAN matchers: a value with a scheme (`spiffe://…`) is a URI SAN, anything else a DNS name. */
export function sanMatchers(sans: readonly string[]): JsonObject[] {
  return [...new Set(sans)].sort().map((san) => ({ sanType: /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(san) ? 'URI' : 'DNS', matcher: { exact: san } }));
}

function sdsSecret(name: string): JsonObject {
  return { name, sdsConfig: adsSource() };
}

function fileCertificate(f: FileCertificate): JsonObject {
  return { certificateChain: { filename: f.certificateChain }, privateKey: { filename: f.privateKey } };
}

function addCertificate(ctx: JsonObject, cert: ListenerCertificate, secrets: SecretCollector): void {
  if (cert.file) {
    ctx.tlsCertificates = [fileCertificate(cert.file)];
  } else if (cert.sds) {
    secrets.add({ name: cert.sds.secretName, type: 'certificate', source: 'sds' });
    ctx.tlsCertificateSdsSecretConfigs = [{ name: cert.sds.secretName }];
  } else if (cert.acm) {
    secrets.add({ name: cert.acm.certificateArn, type: 'certificate', source: 'acm' });
    ctx.tlsCertificateSdsSecretConfigs = [sdsSecret(cert.acm.certificateArn)];
  }
}

/** The secret name for ACM trust: the CA ARNs, sorted, joined with ','. */
export function acmTrustSecretName(arns: readonly string[]): string {
  return [...new Set(arns)].sort().join(',');
}

function trustSecret(trust: Trust, secrets: SecretCollector): string | undefined {
  if (trust.sds) {
    secrets.add({ name: trust.sds.secretName, type: 'validation', source: 'sds' });
    return trust.sds.secretName;
  }
  if (trust.acm) {
    const name = acmTrustSecretName(trust.acm.certificateAuthorityArns);
    secrets.add({ name, type: 'validation', source: 'acm' });
    return name;
  }
  return undefined;
}

/** Sets the validation part of a CommonTlsContext: trust plus SAN matching. */
function addValidation(ctx: JsonObject, v: ValidationContext, sans: readonly string[], secrets: SecretCollector): void {
  const matchers = sanMatchers(sans);
  const secret = trustSecret(v.trust, secrets);
  if (secret === undefined) {
    const vc: JsonObject = {};
    if (v.trust.file) vc.trustedCa = { filename: v.trust.file.certificateChain };
    if (matchers.length > 0) vc.matchTypedSubjectAltNames = matchers;
    ctx.validationContext = vc;
  } else if (matchers.length > 0) {
    ctx.combinedValidationContext = { defaultValidationContext: { matchTypedSubjectAltNames: matchers }, validationContextSdsSecretConfig: sdsSecret(secret) };
  } else {
    ctx.validationContextSdsSecretConfig = sdsSecret(secret);
  }
}

/**
 * Every TLS context starts here: TLS 1.2 is the minimum on both sides (Envoy's server-side default would
 * still accept TLS 1.0).
 */
function tlsCommon(): JsonObject {
  return { tlsParams: { tlsMinimumProtocolVersion: 'TLSv1_2' } };
}

function transportSocket(typedConfig: JsonObject): JsonObject {
  return { name: 'envoy.transport_sockets.tls', typedConfig };
}

/**
 * The server side of a listener with TLS (STRICT or PERMISSIVE). A validation context makes a STRICT listener
 * require a client certificate (App Mesh's rule); without a SAN list, any SAN the trust accepts is fine.
 * PERMISSIVE asks for one and checks what it gets, but lets a TLS client without one in, as it lets plaintext in:
 * requiring it would refuse exactly the clients the migration has not reached yet (clients without a client
 * policy follow the server into TLS without a certificate), and add nothing while plaintext is admitted
 * (seed 001's order: mTLS on the server, then on the clients, then STRICT; seed 000: "with and without client
 * certificates during a migration").
 */
export function downstreamTlsSocket(tls: ListenerTls, secrets: SecretCollector): JsonObject {
  const common: JsonObject = tlsCommon();
  addCertificate(common, tls.certificate, secrets);
  const ctx: JsonObject = { '@type': T.downstreamTls, commonTlsContext: common };
  if (tls.validation) {
    addValidation(common, tls.validation, tls.validation.subjectAlternativeNames?.match.exact ?? [], secrets);
    if (tls.mode !== 'PERMISSIVE') ctx.requireClientCertificate = { value: true };
  }
  return transportSocket(ctx);
}

export interface UpstreamTarget {
  /** The target node's listener port (client policies may be limited to ports). */
  readonly port: number;
  /** The target listener's TLS, for App Mesh's no-policy behaviour. */
  readonly serverTls: ListenerTls | undefined;
  /** SANs to require when the policy lists none: the target's service discovery name. */
  readonly defaultSans: readonly string[];
  /** ACM certificate ARN → issuing CA ARN, for validating an ACM server certificate without a client policy. */
  readonly acmIssuers?: Readonly<Record<string, string>> | undefined;
}

/**
 * Merges a backend's own client policy over the node's backendDefaults, field by field (a backend that sets
 * `validation` replaces the default's; one that leaves out `certificate` keeps the default's).
 */
export function mergeClientPolicy(defaults: ClientPolicyTls | undefined, own: ClientPolicyTls | undefined): ClientPolicyTls | undefined {
  if (!defaults) return own;
  if (!own) return defaults;
  return { ...defaults, ...own };
}

/** A policy applies when enforced (the default) and its ports are empty or include the target port. */
export function policyApplies(policy: ClientPolicyTls | undefined, port: number): policy is ClientPolicyTls {
  if (!policy || policy.enforce === false) return false;
  return !policy.ports || policy.ports.length === 0 || policy.ports.includes(port);
}

function clientCertificate(ctx: JsonObject, cert: { file?: FileCertificate; sds?: SdsRef } | undefined, secrets: SecretCollector): void {
  if (cert) addCertificate(ctx, cert, secrets);
}

/**
 * The client side towards one target listener, or undefined for plaintext.
 * - A matching client policy: TLS validated against its trust, with its SANs (or, when it lists none, the
 *   target's service discovery name), presenting its certificate when it has one.
 * - No matching policy: follow the server. DISABLED or no TLS → plaintext; STRICT/PERMISSIVE → TLS. An ACM
 *   server certificate whose issuer is known (acmIssuers) is validated against that CA (App Mesh: "validate it
 *   against the root CA it chains to"; trust only, no SAN check); any other is not validated ("accept any
 *   certificate", seed 004 step 1).
 */
export function upstreamTlsSocket(policy: ClientPolicyTls | undefined, target: UpstreamTarget, secrets: SecretCollector): JsonObject | undefined {
  if (policyApplies(policy, target.port)) {
    const common: JsonObject = tlsCommon();
    clientCertificate(common, policy.certificate, secrets);
    const sans = policy.validation.subjectAlternativeNames?.match.exact ?? target.defaultSans;
    addValidation(common, policy.validation, sans, secrets);
    return transportSocket({ '@type': T.upstreamTls, commonTlsContext: common });
  }
  const mode = target.serverTls?.mode ?? 'DISABLED';
  if (mode === 'DISABLED') return undefined;
  const common: JsonObject = tlsCommon();
  const certArn = target.serverTls?.certificate.acm?.certificateArn;
  const issuers = target.acmIssuers;
  const issuer = certArn !== undefined && issuers && Object.hasOwn(issuers, certArn) ? issuers[certArn] : undefined;
  if (issuer !== undefined) addValidation(common, { trust: { acm: { certificateAuthorityArns: [issuer] } } }, [], secrets);
  return transportSocket({ '@type': T.upstreamTls, commonTlsContext: common });
}

/**
 * How strict an upstream transport socket is, for choosing between the client TLS of two backends that reach
 * the same target cluster (ClusterSet): 3 = TLS presenting a client certificate and validating the server, 2 =
 * validated TLS, 1 = TLS without validation, 0 = plaintext (no socket).
 */
export function upstreamTlsStrength(socket: JsonObject | undefined): number {
  if (!socket) return 0;
  const common = ((socket.typedConfig as JsonObject | undefined)?.commonTlsContext ?? {}) as JsonObject;
  const validated = common.validationContext !== undefined || common.combinedValidationContext !== undefined || common.validationContextSdsSecretConfig !== undefined;
  const certificate = common.tlsCertificates !== undefined || common.tlsCertificateSdsSecretConfigs !== undefined;
  return validated ? (certificate ? 3 : 2) : 1;
}

// keymesh's certificate authority, as one object for the HTTP endpoints, the CLI and (later) the xDS/SDS
// server. It only wires the parts, each with one job (trust domains, provisioning, bundles, SVIDs, join
// tokens, peer identities, revocation, rotation, managed certificates), and forwards to them.
import { join } from 'node:path';
import type { X509Certificate } from '@peculiar/x509';
import type { Clock } from '../base/clock.ts';
import type { KeyPair } from '../pki/api.ts';
import type { CaFilter, CaStore, IssuedCertificate, RevokedIdentity } from '../store/ca-store.ts';
import type { ResourceStore } from '../store/store.ts';
import { Bundles, type TrustBundle } from './bundles.ts';
import { CaMaterial } from './ca-material.ts';
import { CaProvisioning, type CsrOptions, type ImportCaInput } from './ca-provisioning.ts';
import { findCa, type CaContext } from './context.ts';
import { CaEvents, type CaListener } from './events.ts';
import { JoinTokens, type CreatedJoinToken, type JoinTokenInfo } from './join-tokens.ts';
import { KeyStore } from './key-store.ts';
import { ManagedCertificates, type CertificateRequest, type ManagedCertificateView } from './managed-certs.ts';
import { PeerIdentities, type PeerIdentity } from './peer-identity.ts';
import { Revocation } from './revocation.ts';
import { noProxiesYet, Rotation, type BundleDistribution } from './rotation.ts';
import type { Identity } from './spiffe.ts';
import { SvidIssuer, type Svid } from './svid-issuer.ts';
import { TrustDomains, type MeshCaSettings, type MeshCaSettingsChange } from './trust-domains.ts';
import { throwIfFailed, type UpkeepFailure } from './upkeep.ts';
import { caView, type CaView } from './views.ts';
import { Workloads } from './workloads.ts';

export interface AuthorityOptions {
  /** CA persistence; normally SqliteCaStore on the server's keymesh.db. */
  caStore: CaStore;
  /** The App Mesh resources, read to check that identities exist and for their service discovery names. */
  resources: ResourceStore;
  /** Keys are written under `<dataDir>/ca/`. */
  dataDir: string;
  /** Encrypts key files; from config (KEYMESH_CA_PASSPHRASE). Unset: keys are protected by file modes only. */
  passphrase?: string;
  clock: Clock;
  region: string;
  account: string;
  /** Whether proxies hold a new bundle, for rotation's activate. Default: `noProxiesYet` (always true). */
  distribution?: BundleDistribution;
  /** Lifetime of roots keymesh generates. Default 1 year. */
  caValidityMs?: number;
  /** CRL nextUpdate - thisUpdate. Default 1 hour. */
  crlValidityMs?: number;
  /** Gets errors thrown by `watch` listeners. */
  onListenerError?: (error: unknown) => void;
}

export interface MaintenanceReport {
  /** CAs retired (out of the bundle, key deleted). */
  retired: string[];
  /** Managed certificate ARNs re-issued. */
  renewed: string[];
  /** CAs whose CRL was rebuilt. */
  crls: string[];
}

export class CertificateAuthority {
  readonly #ctx: CaContext;
  readonly #trustDomains: TrustDomains;
  readonly #provisioning: CaProvisioning;
  readonly #bundles: Bundles;
  readonly #issuer: SvidIssuer;
  readonly #tokens: JoinTokens;
  readonly #peers: PeerIdentities;
  readonly #revocation: Revocation;
  readonly #rotation: Rotation;
  readonly #managed: ManagedCertificates;

  constructor(options: AuthorityOptions) {
    const keys = new KeyStore({ dir: join(options.dataDir, 'ca'), ...(options.passphrase === undefined ? {} : { passphrase: options.passphrase }) });
    const ctx: CaContext = {
      store: options.caStore, keys, clock: options.clock, events: new CaEvents(options.onListenerError), region: options.region, account: options.account,
    };
    this.#ctx = ctx;
    const material = new CaMaterial(keys);
    const trustDomains = new TrustDomains(ctx);
    const workloads = new Workloads(options.resources, trustDomains);
    const provisioning = new CaProvisioning(ctx, trustDomains, options.caValidityMs === undefined ? {} : { caValidityMs: options.caValidityMs });
    const bundles = new Bundles(ctx);
    const issuer = new SvidIssuer(ctx, { workloads, trustDomains, provisioning, material, bundles });
    const revocation = new Revocation(ctx, { material, workloads }, options.crlValidityMs === undefined ? {} : { crlValidityMs: options.crlValidityMs });
    this.#trustDomains = trustDomains;
    this.#provisioning = provisioning;
    this.#bundles = bundles;
    this.#issuer = issuer;
    this.#revocation = revocation;
    this.#tokens = new JoinTokens(ctx, { workloads, issuer });
    this.#peers = new PeerIdentities(ctx, { trustDomains, issuer });
    this.#rotation = new Rotation(ctx, { provisioning, trustDomains, material, revocation, distribution: options.distribution ?? noProxiesYet });
    this.#managed = new ManagedCertificates(ctx, { provisioning, trustDomains, material });
  }

  // --- per-mesh settings -------------------------------------------------------------------------------

  settings(mesh: string): Promise<MeshCaSettings> {
    return this.#trustDomains.settingsFor(mesh);
  }

  /** Trust domain (only before the mesh has a CA), SVID TTL, key type of future CAs. */
  configure(mesh: string, change: MeshCaSettingsChange): Promise<MeshCaSettings> {
    return this.#trustDomains.configure(mesh, change);
  }

  // --- CAs ---------------------------------------------------------------------------------------------

  /** The mesh's active CA, created (self-signed root) on first use. */
  async ensureCa(mesh: string): Promise<CaView> {
    return caView(await this.#provisioning.active(mesh));
  }

  async listCas(filter: CaFilter = {}): Promise<CaView[]> {
    return (await this.#ctx.store.listCas(filter)).map(caView);
  }

  /** By id or ARN. */
  async describeCa(ref: string): Promise<CaView> {
    return caView(await findCa(this.#ctx.store, ref));
  }

  /** Brings the user's CA (a root, or an intermediate with its chain); active if the mesh has none, else prepared. */
  async importCa(mesh: string, input: ImportCaInput): Promise<CaView> {
    return caView(await this.#provisioning.importCa(mesh, input));
  }

  /** A pending CA and the CSR for the user's offline root to sign. */
  async prepareCsr(mesh: string, options: CsrOptions = {}): Promise<{ ca: CaView; csrPem: string }> {
    const { ca, csrPem } = await this.#provisioning.prepareCsr(mesh, options);
    return { ca: caView(ca), csrPem };
  }

  /** Completes a pending CA with the offline root's signature and that root's chain. */
  async importSigned(caRef: string, certPem: string, rootChainPem: string): Promise<CaView> {
    return caView(await this.#provisioning.importSigned(caRef, certPem, rootChainPem));
  }

  // --- trust bundles -----------------------------------------------------------------------------------

  trustBundle(trustDomain: string): Promise<TrustBundle> {
    return this.#bundles.forTrustDomain(trustDomain);
  }

  async trustBundleOfMesh(mesh: string): Promise<TrustBundle> {
    return this.#bundles.forTrustDomain((await this.#trustDomains.settingsFor(mesh)).trustDomain);
  }

  /** For `validation.trust.acm.certificateAuthorityArns`: the anchors, PEM. NotFoundError names an unknown ARN. */
  resolveCaArns(arns: readonly string[]): Promise<string> {
    return this.#bundles.resolveCaArns(arns);
  }

  /** The mesh manager's ExternalReferences check (src/mesh/manager.ts). */
  async exists(kind: 'certificate' | 'certificateAuthority', arn: string): Promise<boolean> {
    return kind === 'certificate' ? (await this.#ctx.store.getManagedCertificate(arn)) !== undefined : (await this.#ctx.store.getCaByArn(arn)) !== undefined;
  }

  // --- SVIDs -------------------------------------------------------------------------------------------

  /** Issues an SVID to an identity the caller has authenticated (admin use). */
  issue(identity: Identity, csrPem: string): Promise<Svid> {
    return this.#issuer.issue(identity, csrPem);
  }

  /** Renewal: `identity` comes from identityFromPeerCertificate on the mTLS peer certificate. */
  renew(identity: Identity, csrPem: string): Promise<Svid> {
    return this.#issuer.issue(identity, csrPem);
  }

  /** The identity a presented SVID proves (chain-verified, unexpired, issued by keymesh, unrevoked); TrustError/ForbiddenError otherwise. */
  identityFromPeerCertificate(presented: string | X509Certificate | readonly X509Certificate[]): Promise<PeerIdentity> {
    return this.#peers.identify(presented);
  }

  // --- join tokens -------------------------------------------------------------------------------------

  /** ttlMs default 10 minutes, at most 24 hours. The returned `token` is shown once and never stored. */
  createJoinToken(identity: Identity, options: { ttlMs?: number } = {}): Promise<CreatedJoinToken> {
    return this.#tokens.create(identity, options);
  }

  /** Bootstrap: single use; issues only for the identity the token is bound to. */
  redeemJoinToken(token: string, csrPem: string): Promise<Svid> {
    return this.#tokens.redeem(token, csrPem);
  }

  listJoinTokens(mesh?: string): Promise<JoinTokenInfo[]> {
    return this.#tokens.list(mesh);
  }

  deleteJoinToken(id: string): Promise<boolean> {
    return this.#tokens.delete(id);
  }

  // --- revocation --------------------------------------------------------------------------------------

  revokeCertificate(serial: string): Promise<IssuedCertificate> {
    return this.#revocation.revokeCertificate(serial);
  }

  /** Revokes every unexpired certificate of the identity and stops it from bootstrapping or renewing. */
  revokeIdentity(identity: Identity, reason = ''): Promise<{ identity: RevokedIdentity; revoked: IssuedCertificate[] }> {
    return this.#revocation.revokeIdentity(identity, reason);
  }

  unrevokeIdentity(identity: Identity): Promise<boolean> {
    return this.#revocation.unrevokeIdentity(identity);
  }

  listRevokedIdentities(mesh?: string): Promise<RevokedIdentity[]> {
    return this.#ctx.store.listRevokedIdentities(mesh);
  }

  listIssued(filter: Parameters<CaStore['listIssued']>[0]): Promise<IssuedCertificate[]> {
    return this.#ctx.store.listIssued(filter);
  }

  /** The CA's CRL, PEM (by id or ARN). */
  crl(caRef: string): Promise<string> {
    return this.#revocation.crl(caRef);
  }

  /** The CRLs of every CA in a trust domain's bundle, concatenated PEM. */
  crlsOf(trustDomain: string): Promise<string> {
    return this.#revocation.crlsOf(trustDomain);
  }

  // --- rotation ----------------------------------------------------------------------------------------

  async prepareRotation(trustDomain: string): Promise<CaView> {
    return caView(await this.#rotation.prepare(trustDomain));
  }

  async activate(trustDomain: string, caRef: string, options: { force?: boolean } = {}): Promise<{ activated: CaView; retiring: CaView | undefined }> {
    const { activated, retiring } = await this.#rotation.activate(trustDomain, caRef, options);
    return { activated: caView(activated), retiring: retiring && caView(retiring) };
  }

  /** Cancels a pending or prepared CA. */
  async abandonCa(caRef: string): Promise<CaView> {
    return caView(await this.#rotation.abandon(caRef));
  }

  async retireExpired(now?: number): Promise<CaView[]> {
    return (await this.#rotation.retireExpired(now)).map(caView);
  }

  // --- managed (ACM-style) certificates ----------------------------------------------------------------

  requestCertificate(request: CertificateRequest): Promise<ManagedCertificateView> {
    return this.#managed.request(request);
  }

  describeCertificate(arn: string): Promise<ManagedCertificateView> {
    return this.#managed.describe(arn);
  }

  listCertificates(mesh?: string): Promise<ManagedCertificateView[]> {
    return this.#managed.list(mesh);
  }

  renewCertificate(arn: string): Promise<ManagedCertificateView> {
    return this.#managed.renew(arn);
  }

  renewDue(now?: number): Promise<string[]> {
    return this.#managed.renewDue(now);
  }

  deleteCertificate(arn: string): Promise<void> {
    return this.#managed.delete(arn);
  }

  /** For `certificate.acm.certificateArn`: chain and validity; NotFoundError names an unknown ARN. */
  resolveCertificateArn(arn: string): Promise<ManagedCertificateView> {
    return this.#managed.resolveCertificateArn(arn);
  }

  /** The managed certificate's key, for the in-process SDS server only: never expose it through an API. */
  certificateKeyForSds(arn: string): Promise<KeyPair> {
    return this.#managed.privateKeyFor(arn);
  }

  // --- notifications and upkeep ------------------------------------------------------------------------

  /** Bundle, issuer, CRL, identity and managed-certificate changes, in process. Returns unsubscribe. */
  watch(listener: CaListener): () => void {
    return this.#ctx.events.watch(listener);
  }

  /**
   * Periodic upkeep (the server runs it every minute or so): retire expired CAs, renew due certificates,
   * refresh CRLs. Every item gets its turn even when some fail (one mesh's broken CA must not stop the
   * others'); then an UnavailableError names each failure and what was done.
   */
  async maintain(now = this.#ctx.clock.now()): Promise<MaintenanceReport> {
    const failures: UpkeepFailure[] = [];
    const retired = (await this.#rotation.retireExpired(now, failures)).map((c) => c.id);
    const renewed = await this.#managed.renewDue(now, failures);
    const crls = await this.#revocation.refreshDue(failures);
    throwIfFailed(failures, `retired ${retired.join(', ') || 'none'}; renewed ${renewed.join(', ') || 'none'}; refreshed the CRLs of ${crls.join(', ') || 'no CA'}`);
    return { retired, renewed, crls };
  }
}

// The control plane's xDS server, wired: configuration from the App Mesh store through translate, secrets
// from the CA, proxies authenticated by their SVIDs, client anchors following every trust bundle, streams
// ended when their identity or certificate is revoked, the CA's rotation gate answered from ACKs, and each
// virtual node's sidecar registered in the endpoint registry while it is connected.
// `keymesh server` and the propagation benchmark both build it here, so they measure and run the same thing.
import { systemClock, type Clock } from '../base/clock.ts';
import type { CertificateAuthority } from '../ca/authority.ts';
import { BUNDLE_STATUSES } from '../ca/bundles.ts';
import type { EndpointRegistry } from '../discovery/endpoint-registry.ts';
import { normalizeSerial } from '../store/ca-store.ts';
import type { ResourceStore } from '../store/store.ts';
import { createXdsServer, type XdsServer } from './ads-server.ts';
import type { XdsBundleDistribution } from './bundle-distribution.ts';
import { CaSecretSource } from './ca-secret-source.ts';
import { registrationOf } from './node-metadata.ts';
import type { OnConnected, XdsLog } from './sources.ts';
import { StoreConfigSource } from './store-config-source.ts';

export interface ControlPlaneXdsOptions {
  store: ResourceStore;
  authority: CertificateAuthority;
  /** The distribution the authority was built with; attached here to the running server. */
  distribution: XdsBundleDistribution;
  /** Where sidecars register their instances (EDS); omitted: none (DNS clusters only). */
  registry?: EndpointRegistry;
  /** The server's own certificate (the control-plane one) and, as client anchor while no mesh has a CA, its CA. */
  tls: { certPem: string; keyPem: string; caCertPem: string };
  log?: XdsLog;
  clock?: Clock;
  /** Problems of background work (anchor updates, revocation checks); default: the log at error. */
  onError?: (what: string, e: unknown) => void;
}

export interface ControlPlaneXds {
  readonly server: XdsServer;
  readonly configSource: StoreConfigSource;
  /** Stops watching, waits for background work, closes the server. */
  close(): Promise<void>;
}

export async function createControlPlaneXds(o: ControlPlaneXdsOptions): Promise<ControlPlaneXds> {
  const { authority, store } = o;
  const clock = o.clock ?? systemClock;
  const onError = o.onError ?? ((what, e) => o.log?.('error', `${what}: ${(e as Error).message}`));
  const registry = o.registry;
  const configSource = new StoreConfigSource({
    store,
    acmIssuers: async (mesh) => Object.fromEntries((await authority.listCertificates(mesh)).map((c) => [c.arn, c.caArn])),
    ...(registry ? { endpoints: (mesh: string) => registry.list({ mesh }) } : {}),
  });
  const unwatchEndpoints = registry?.watch((mesh) => configSource.endpointsChanged(mesh));
  // A virtual node's sidecar is an instance of its node for as long as it stays connected (plus the grace).
  const onConnected: OnConnected | undefined = registry && (async ({ identity, placement, peerAddress }) => {
    const at = identity.kind === 'virtualNode' ? registrationOf(placement, peerAddress) : undefined;
    if (!at) return () => {};
    return registry.attach({ mesh: identity.mesh, virtualNode: identity.name, ...at });
  });
  const secretSource = new CaSecretSource({ authority, store });
  // Before any mesh has a CA the control-plane CA is the only anchor, so Node never falls back to public roots.
  const material = async () => ({ clientRoots: (await allTrustAnchors(authority)) || o.tls.caCertPem, certChain: o.tls.certPem, privateKey: o.tls.keyPem });
  const server = createXdsServer({
    source: configSource,
    secrets: secretSource,
    authenticate: async (chain) => {
      const id = await authority.identityFromPeerCertificate(chain);
      return { mesh: id.mesh, kind: id.kind, name: id.name, spiffeId: id.spiffeId };
    },
    tls: await material(),
    ...(o.log ? { log: o.log } : {}),
    ...(onConnected ? { onConnected } : {}),
  });
  o.distribution.attach({ authority, proxies: () => server.proxies(), source: configSource, secrets: secretSource });

  // New anchors for new connections whenever a trust bundle changes (a mesh's first CA, rotation, retirement).
  let tlsUpdates = Promise.resolve();
  const unwatchBundles = authority.watch((event) => {
    if (event.type !== 'bundle' && event.type !== 'issuer') return;
    tlsUpdates = tlsUpdates.then(async () => server.updateTls(await material())).catch((e: unknown) => onError("could not update the xDS server's trust anchors", e));
  });
  // A stream does not outlive the identity or certificate it authenticated with (authenticate refuses new ones).
  let revocationChecks = Promise.resolve();
  // A managed certificate issued or renewed (perhaps by a new CA) changes which CA its clients validate against.
  const unwatchCertificates = authority.watch((event) => {
    if (event.type === 'managed-certificate') configSource.meshChanged(event.mesh);
  });
  const unwatchRevocations = authority.watch((event) => {
    if (event.type === 'identity' && event.revoked) {
      server.closeWhere((c) => c.identity.spiffeId === event.spiffeId, 'its identity was revoked');
    } else if (event.type === 'crl') {
      revocationChecks = revocationChecks.then(async () => {
        const revoked = new Set((await authority.listIssued({ caId: event.caId, revoked: true, unexpiredAt: clock.now() })).map((c) => c.serial));
        server.closeWhere((c) => revoked.has(normalizeSerial(c.serial)), (c) => `its certificate (serial ${c.serial}) was revoked`);
      }).catch((e: unknown) => onError('could not end the xDS streams of revoked certificates', e));
    }
  });

  return {
    server,
    configSource,
    close: async () => {
      unwatchBundles();
      unwatchCertificates();
      unwatchRevocations();
      unwatchEndpoints?.();
      await tlsUpdates;
      await revocationChecks;
      await server.close();
      configSource.close();
    },
  };
}

/** Every anchor of every trust bundle (all meshes): what a proxy's SVID may chain to. PEM, '' when no mesh has a CA. */
export async function allTrustAnchors(authority: CertificateAuthority): Promise<string> {
  const trustDomains = [...new Set((await authority.listCas({ statuses: BUNDLE_STATUSES })).map((c) => c.trustDomain))].sort();
  const pems: string[] = [];
  for (const td of trustDomains) {
    const pem = (await authority.trustBundle(td)).pem.trim();
    if (pem) pems.push(pem);
  }
  return pems.length ? `${pems.join('\n')}\n` : '';
}

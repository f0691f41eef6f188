// Test support for the xDS server (not used by it): real certificates from src/pki, an in-memory ConfigSource
// and SecretSource, a hand-written EnvoyConfig, and a scripted ADS client over real mTLS on loopback.
import * as grpc from '@grpc/grpc-js';
import type { X509Certificate } from '@peculiar/x509';
import { uriSans } from '../ca/cert-facts.ts';
import { parseSpiffeId } from '../ca/spiffe.ts';
import { decodeResource, TYPE_URLS } from '../envoy/protos.ts';
import { jsonToStruct } from '../envoy/struct.ts';
import { TrustError } from '../errors/index.ts';
import { createRootCa, issueLeaf } from '../pki/issue.ts';
import { exportPrivateKeyPem, generateKeyPair } from '../pki/keys.ts';
import { toPem } from '../pki/pem.ts';
import { verifyChain } from '../pki/verify.ts';
import type { EnvoyConfig, JsonObject } from '../translate/api.ts';
import { adsClientConstructor, type DiscoveryRequest, type DiscoveryResponse } from '../envoy/ads-service.ts';
import type { PlacementOptions } from './node-metadata.ts';
import type { AffectedPredicate, Authenticate, ConfigSource, ProxyIdentity, SecretSource } from './sources.ts';

export const MESH = 'shop';
export const TD = 'shop.example';
const HOUR = 3600_000;

export interface Pems {
  readonly cert: string;
  readonly key: string;
}

export interface Pki {
  readonly caPem: string;
  readonly ca: X509Certificate;
  readonly server: Pems;
  /** SVIDs by name: front, back (virtual nodes), gw (a virtual gateway), and `plain` (no SPIFFE ID). */
  readonly svids: Readonly<Record<'front' | 'back' | 'gw' | 'plain', Pems>>;
  /** An SVID for front from a CA the server does not trust. */
  readonly rogue: Pems;
  /** A fresh SVID from the trusted CA for `spiffe://shop.example/<path>`, valid from an hour ago for `lifetimeMs` from now (default an hour). */
  issueSvid(path: string, lifetimeMs?: number): Promise<Pems>;
}

async function leaf(issuer: X509Certificate, issuerKeys: Awaited<ReturnType<typeof generateKeyPair>>, names: { uris?: string[]; dnsNames?: string[] }, lifetimeMs = HOUR): Promise<Pems> {
  const keys = await generateKeyPair('ec-p256');
  const now = Date.now();
  const cert = await issueLeaf({
    publicKey: keys.publicKey, issuerCert: issuer, issuerKeys, uris: names.uris ?? [], dnsNames: names.dnsNames ?? [],
    notBefore: new Date(now - HOUR), notAfter: new Date(now + lifetimeMs),
  });
  return { cert: toPem(cert), key: await exportPrivateKeyPem(keys) };
}

export async function makePki(): Promise<Pki> {
  const now = Date.now();
  const window = { notBefore: new Date(now - 2 * HOUR), notAfter: new Date(now + 2 * HOUR) };
  const caKeys = await generateKeyPair('ec-p256');
  const ca = await createRootCa(caKeys, { commonName: 'shop mesh CA', pathLength: 0, uri: `spiffe://${TD}`, ...window });
  const rogueKeys = await generateKeyPair('ec-p256');
  const rogueCa = await createRootCa(rogueKeys, { commonName: 'rogue CA', pathLength: 0, uri: `spiffe://${TD}`, ...window });
  return {
    caPem: toPem(ca),
    ca,
    server: await leaf(ca, caKeys, { dnsNames: ['xds.keymesh.test'] }),
    svids: {
      front: await leaf(ca, caKeys, { uris: [`spiffe://${TD}/front`] }),
      back: await leaf(ca, caKeys, { uris: [`spiffe://${TD}/back`] }),
      gw: await leaf(ca, caKeys, { uris: [`spiffe://${TD}/virtualGateway/gw`] }),
      plain: await leaf(ca, caKeys, { dnsNames: ['not-a-proxy.test'] }),
    },
    rogue: await leaf(rogueCa, rogueKeys, { uris: [`spiffe://${TD}/front`] }),
    issueSvid: (path, lifetimeMs) => leaf(ca, caKeys, { uris: [`spiffe://${TD}/${path}`] }, lifetimeMs),
  };
}

/** A real check: the chain verifies to the CA, and the leaf's one SPIFFE ID is a keymesh proxy ID. */
export function authenticator(pki: Pki): Authenticate {
  return async (chain) => {
    const leafCert = chain[0];
    if (!leafCert) throw new TrustError('no certificate');
    await verifyChain(leafCert, chain.slice(1), [pki.ca], new Date());
    const uris = uriSans(leafCert).filter((u) => u.startsWith('spiffe://'));
    const parsed = uris.length === 1 ? parseSpiffeId(uris[0]!) : undefined;
    if (!parsed || parsed.trustDomain !== TD) throw new TrustError(`not a keymesh SVID (${uris.join(', ') || 'no SPIFFE ID'})`);
    return { mesh: MESH, kind: parsed.kind, name: parsed.name, spiffeId: uris[0]! };
  };
}

const ADS = { ads: {}, resourceApiVersion: 'V3' };

/** One listener → route configuration → EDS cluster → assignment, valid for roundTrip. */
export function proxyConfig(proxy: string, opts: { upstream?: string; port?: number } = {}): EnvoyConfig {
  const upstream = opts.upstream ?? 'back';
  const cluster = `cds_egress_${MESH}_${upstream}`;
  const routeName = `rds_egress_${proxy}`;
  const listener: JsonObject = {
    name: 'lds_egress_0.0.0.0_15001',
    address: { socketAddress: { address: '0.0.0.0', portValue: 15001 } },
    filterChains: [{
      filters: [{
        name: 'envoy.filters.network.http_connection_manager',
        typedConfig: {
          '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
          statPrefix: 'egress',
          rds: { routeConfigName: routeName, configSource: ADS },
          httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
        },
      }],
    }],
  };
  const route: JsonObject = {
    name: routeName,
    virtualHosts: [{ name: upstream, domains: [`${upstream}.${MESH}.local`], routes: [{ match: { prefix: '/' }, route: { cluster } }] }],
  };
  const clusterResource: JsonObject = {
    name: cluster,
    type: 'EDS',
    edsClusterConfig: { edsConfig: ADS },
    connectTimeout: { seconds: '1', nanos: 0 },
    transportSocket: {
      name: 'envoy.transport_sockets.tls',
      typedConfig: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        commonTlsContext: { tlsCertificateSdsSecretConfigs: [{ name: `spiffe://${TD}/${proxy}`, sdsConfig: ADS }] },
      },
    },
  };
  const assignment: JsonObject = {
    clusterName: cluster,
    endpoints: [{ lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '10.0.0.7', portValue: opts.port ?? 8080 } } } }] }],
  };
  return {
    listeners: [listener],
    routeConfigurations: [route],
    clusters: [clusterResource],
    clusterLoadAssignments: [assignment],
    secrets: [{ name: `spiffe://${TD}/${proxy}`, type: 'certificate', source: 'sds' }],
  };
}

/** An in-memory ConfigSource: `set` replaces a proxy's configuration and tells the watchers. */
export class MemoryConfigSource implements ConfigSource {
  readonly #configs = new Map<string, EnvoyConfig>();
  readonly #listeners = new Set<(affected: AffectedPredicate) => void>();
  calls = 0;
  /** The placement options of the latest configFor per proxy name. */
  readonly placements = new Map<string, PlacementOptions | undefined>();

  set(name: string, config: EnvoyConfig): void {
    this.#configs.set(name, config);
    for (const l of this.#listeners) l((p) => p.name === name);
  }

  async configFor(proxy: ProxyIdentity, placement?: PlacementOptions): Promise<EnvoyConfig> {
    this.calls++;
    this.placements.set(proxy.name, placement);
    const c = this.#configs.get(proxy.name);
    if (!c) throw new Error(`no configuration for ${proxy.name}`);
    return c;
  }

  watch(listener: (affected: AffectedPredicate) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** Each proxy may have its own certificate secret (named by its SPIFFE ID) and the trust bundle. */
export const memorySecrets: SecretSource = {
  async secretFor(proxy, name) {
    if (name === proxy.spiffeId) {
      return { name, tlsCertificate: { certificateChain: { inlineString: `chain of ${name}` }, privateKey: { inlineString: `key of ${name}` } } };
    }
    if (name === `spiffe://${TD}`) return { name, validationContext: { trustedCa: { inlineString: 'bundle' } } };
    return undefined;
  },
};

export interface Decoded {
  readonly versionInfo: string;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: Record<string, unknown>[];
}

export interface EndStatus {
  readonly code: number;
  readonly details: string;
}

/** A scripted Envoy: sends DiscoveryRequests, reads decoded DiscoveryResponses, with bounded waits. */
export class AdsClient {
  readonly #client: grpc.Client;
  readonly #call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  readonly #queue: Decoded[] = [];
  #waiter: (() => void) | undefined;
  #status: EndStatus | undefined;
  #statusWaiter: (() => void) | undefined;
  #nodeSent = false;
  readonly nodeId: string;
  /** node.metadata sent with the node (plain JSON). */
  metadata: Record<string, unknown> | undefined;

  constructor(port: number, pki: Pki, pems: Pems | undefined, nodeId: string, caPem = pki.caPem) {
    this.nodeId = nodeId;
    const Client = adsClientConstructor();
    const creds = pems
      ? grpc.credentials.createSsl(Buffer.from(caPem), Buffer.from(pems.key), Buffer.from(pems.cert))
      : grpc.credentials.createSsl(Buffer.from(caPem));
    this.#client = new Client(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'xds.keymesh.test', 'grpc.default_authority': 'xds.keymesh.test' });
    const call = (this.#client as unknown as { StreamAggregatedResources(): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> }).StreamAggregatedResources();
    this.#call = call;
    call.on('data', (r: DiscoveryResponse) => {
      this.#queue.push({
        versionInfo: r.versionInfo,
        typeUrl: r.typeUrl,
        nonce: r.nonce,
        resources: (r.resources ?? []).map((a) => decodeResource(a.type_url, a.value)),
      });
      this.#waiter?.();
    });
    call.on('error', (e: grpc.ServiceError) => this.#ended({ code: e.code, details: e.details }));
    call.on('status', (s: grpc.StatusObject) => this.#ended({ code: s.code, details: s.details }));
  }

  #ended(s: EndStatus): void {
    this.#status ??= s;
    this.#statusWaiter?.();
    this.#waiter?.();
  }

  send(typeUrl: string, req: { versionInfo?: string; resourceNames?: string[]; nonce?: string; error?: string; nodeId?: string } = {}): void {
    const msg: DiscoveryRequest = {
      typeUrl,
      versionInfo: req.versionInfo ?? '',
      resourceNames: req.resourceNames ?? [],
      responseNonce: req.nonce ?? '',
    };
    if (req.error !== undefined) msg.errorDetail = { code: 3, message: req.error };
    if (!this.#nodeSent || req.nodeId !== undefined) {
      msg.node = { id: req.nodeId ?? this.nodeId, cluster: 'test', ...(this.metadata ? { metadata: jsonToStruct(this.metadata) } : {}) };
    }
    this.#nodeSent = true;
    this.#call.write(msg);
  }

  ack(r: Decoded, resourceNames?: string[]): void {
    this.send(r.typeUrl, { versionInfo: r.versionInfo, nonce: r.nonce, ...(resourceNames ? { resourceNames } : {}) });
  }

  /** The next response; fails after `ms`. */
  async next(ms = 5000): Promise<Decoded> {
    const deadline = Date.now() + ms;
    while (this.#queue.length === 0) {
      if (this.#status) throw new Error(`the stream ended: ${this.#status.code} ${this.#status.details}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no DiscoveryResponse within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
    return this.#queue.shift()!;
  }

  /** Asserts that nothing arrives for `ms`. */
  async nothingFor(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    if (this.#queue.length) throw new Error(`unexpected DiscoveryResponse: ${this.#queue.map((r) => `${r.typeUrl} ${r.versionInfo}`).join('; ')}`);
  }

  /** How the stream ended; fails after `ms`. */
  async ended(ms = 5000): Promise<EndStatus> {
    if (!this.#status) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, ms);
        this.#statusWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    if (!this.#status) throw new Error(`the stream did not end within ${ms} ms`);
    return this.#status;
  }

  close(): void {
    this.#call.cancel();
    this.#client.close();
  }
}

/** Polls `check` until it returns a value other than undefined; fails after `ms`. */
export async function eventually<T>(check: () => T | undefined, ms = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const T = TYPE_URLS;

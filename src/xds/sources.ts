// What the xDS server needs from the rest of keymesh, injected so the server can be tested (and run) without
// the store, the translation or the CA: who a connected proxy is, its Envoy configuration, and its secrets.
import type { X509Certificate } from '@peculiar/x509';
import type { EnvoyConfig } from '../translate/api.ts';
import type { PlacementOptions, ProxyPlacement } from './node-metadata.ts';

export type ProxyKind = 'virtualNode' | 'virtualGateway';

/** The mesh endpoint a connected Envoy proves to be (from its SVID). */
export interface ProxyIdentity {
  readonly mesh: string;
  readonly kind: ProxyKind;
  readonly name: string;
  readonly spiffeId: string;
}

/** A proxy whose stream was accepted: who it is, where it runs, and the IP address it connects from. */
export interface ConnectedProxy {
  readonly identity: ProxyIdentity;
  readonly placement: ProxyPlacement;
  readonly peerAddress: string | undefined;
}

/**
 * Called once a stream's node is accepted (e.g. to register the proxy's instance); the function it resolves to
 * is called when that stream ends. A rejection is logged and the stream goes on.
 */
export type OnConnected = (proxy: ConnectedProxy) => Promise<() => Promise<void> | void>;

/** Called with an identity; true when a change may alter that proxy's configuration or secrets. */
export type AffectedPredicate = (proxy: ProxyIdentity) => boolean;

/** Returns a function that stops the watch. */
export type Watch = (listener: (affected: AffectedPredicate) => void) => () => void;

export interface ConfigSource {
  /**
   * The proxy's whole configuration (translate's output), for a proxy placed as `placement` says (its
   * node.metadata). A rejection is logged; nothing is published.
   */
  configFor(proxy: ProxyIdentity, placement?: PlacementOptions): Promise<EnvoyConfig>;
  watch: Watch;
}

export interface SecretSource {
  /**
   * An Envoy Secret (envoy.extensions.transport_sockets.tls.v3.Secret) in protobufjs object form, named
   * `name`; undefined when the proxy may not have it (or it does not exist). Never sent to any other proxy.
   */
  secretFor(proxy: ProxyIdentity, name: string): Promise<object | undefined>;
  /** Optional: rotation and revocation push new secrets through this. */
  watch?: Watch;
}

/**
 * The TLS layer has already checked that the chain leads to one of the server's client roots; this decides
 * whether it is a keymesh SVID that may fetch configuration (e.g. CertificateAuthority.identityFromPeerCertificate).
 * Throws (any error) to refuse. `chain` is leaf first; it may hold only the leaf.
 */
export type Authenticate = (chain: readonly X509Certificate[]) => Promise<ProxyIdentity>;

/** What an open ADS stream authenticated with (see XdsServer.closeWhere). */
export interface StreamCredential {
  readonly identity: ProxyIdentity;
  /** The TLS peer's leaf certificate. */
  readonly certificate: X509Certificate;
  /** Its serial as X509Certificate.serialNumber gives it (hex). */
  readonly serial: string;
  /** Its notAfter, ms since the epoch: the stream ends then. */
  readonly notAfter: number;
}

export type LogLevel = 'info' | 'warn' | 'error';
export type XdsLog = (level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>) => void;

// The contract of the translation: App Mesh resources in, one proxy's Envoy resources out. Pure: no I/O, no
// clock, no randomness; the same input always gives the same output (the xDS server hashes it into versions).
//
// Output objects are in protobufjs object form for Envoy's v3 protos (src/envoy/protos.ts): camelCase field
// names, `{'@type': typeUrl, ...fields}` for Any, wrapper types as `{ value: x }`, Durations as
// `{ seconds: '5', nanos: 0 }` (64-bit integers as strings), enums by name. Every emitted resource must
// survive `roundTrip` unchanged; the golden tests check it.
import type { JsonObject } from '../model/json.ts';
import type { ResourceRecord } from '../model/resource.ts';

/** Everything in one mesh that a translation may read. Lists are in any order; translate sorts what it emits. */
export interface MeshView {
  readonly mesh: ResourceRecord;
  readonly virtualNodes: readonly ResourceRecord[];
  readonly virtualServices: readonly ResourceRecord[];
  readonly virtualRouters: readonly ResourceRecord[];
  /** `parent` is the virtual router's name. */
  readonly routes: readonly ResourceRecord[];
  readonly virtualGateways: readonly ResourceRecord[];
  /** `parent` is the virtual gateway's name. */
  readonly gatewayRoutes: readonly ResourceRecord[];
}

/** The proxy the configuration is for. */
export interface ProxyRef {
  readonly kind: 'virtualNode' | 'virtualGateway';
  readonly name: string;
}

/** A registered instance of a virtual node (the role Cloud Map plays for App Mesh). */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface TranslateInput {
  readonly view: MeshView;
  readonly proxy: ProxyRef;
  /**
   * Instances of each virtual node, by node name. A node with DNS service discovery and no registered
   * instance gets a STRICT_DNS cluster on its hostname instead of an EDS one.
   */
  readonly endpoints: Readonly<Record<string, readonly Endpoint[]>>;
  readonly options?: TranslateOptions;
}

export interface TranslateOptions {
  /** Where the proxy's application listens; App Mesh's Envoy forwards ingress to 127.0.0.1. */
  readonly appAddress?: string;
  /** Default 15000 (App Mesh's ingress listener port). */
  readonly ingressPort?: number;
  /** Default 15001 (App Mesh's egress listener port). */
  readonly egressPort?: number;
  /** Access log path for the proxy, from the node's or gateway's `logging.accessLog.file.path`; overridable for tests. */
  readonly accessLogPath?: string;
}

/**
 * SDS secret names. File certificates are inlined as file paths (Envoy reads the files); SDS certificates use
 * the names in the spec (a SPIFFE ID, a trust domain); ACM certificates and CA ARNs become keymesh-managed
 * secrets named by the ARN. The xDS server serves a secret only to a proxy allowed to have it.
 */
export interface SecretRef {
  readonly name: string;
  /** 'certificate': a key and chain (only its owner gets it); 'validation': trust anchors (and CRLs). */
  readonly type: 'certificate' | 'validation';
  /** Where it comes from: a keymesh SVID or trust bundle ('sds'), or a managed certificate / CA ARNs ('acm'). */
  readonly source: 'sds' | 'acm';
}

/** One proxy's Envoy configuration. Each list is sorted by resource name. */
export interface EnvoyConfig {
  readonly listeners: readonly JsonObject[];
  readonly routeConfigurations: readonly JsonObject[];
  readonly clusters: readonly JsonObject[];
  /** One per EDS cluster, named like the cluster. */
  readonly clusterLoadAssignments: readonly JsonObject[];
  /** The SDS secrets the resources above refer to. */
  readonly secrets: readonly SecretRef[];
}

// translate.ts: translate(input: TranslateInput): EnvoyConfig. A proxy that is not in the view is a
// NotFoundError naming it; anything a valid App Mesh spec can say translates.
export type { JsonObject };

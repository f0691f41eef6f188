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

/**
 * A registered instance of a virtual node (the role Cloud Map plays for App Mesh).
 *
 * Ports: each listener of a node gets its own cluster, and an instance is in the cluster of listener port P,
 * at `address:P`, when P is `port` or one of `ports` (an instance takes traffic on its node's listener ports;
 * iptables hands them to its Envoy, which tells them apart by the original port). So a node with listeners
 * 8080 and 9090 registers `{ address, port: 8080, ports: [9090] }`, or one endpoint per port.
 * Backward compatible special case: on a node with ONE listener, an instance without `ports` is in that
 * listener's cluster at `address:port` even when `port` differs from the listener port. On a node with several
 * listeners, an instance whose ports match none of them is in no cluster.
 */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
  /** Further listener ports this instance serves, besides `port`. */
  readonly ports?: readonly number[];
}

export interface TranslateInput {
  readonly view: MeshView;
  readonly proxy: ProxyRef;
  /**
   * Instances of each virtual node, by node name. A listener of a node with DNS service discovery and no
   * registered instance for that listener (see Endpoint) gets a DNS cluster on the node's hostname instead of
   * an EDS one: LOGICAL_DNS for `responseType: LOADBALANCER` (App Mesh's default), STRICT_DNS for ENDPOINTS.
   */
  readonly endpoints: Readonly<Record<string, readonly Endpoint[]>>;
  /**
   * The issuing CA of each ACM certificate: certificate ARN → CA ARN (keymesh's managed certificates know it).
   * App Mesh clients with no matching client policy validate an ACM server certificate against the CA that
   * issued it; with the issuer known here they get the validation secret named by that CA's ARN (the naming of
   * ACM trust, see SecretRef). A certificate missing here leaves such clients on TLS without validation, as for
   * file certificates.
   */
  readonly acmIssuers?: Readonly<Record<string, string>>;
  readonly options?: TranslateOptions;
}

export interface TranslateOptions {
  /** Where the proxy's application listens; App Mesh's Envoy forwards ingress to 127.0.0.1. */
  readonly appAddress?: string;
  /** Default 15000 (App Mesh's ingress listener port). */
  readonly ingressPort?: number;
  /** Default 15001 (App Mesh's egress listener port). */
  readonly egressPort?: number;
  /**
   * The IP address the proxy's listeners bind: a node's ingress and egress listeners, a gateway's listeners
   * and its egress listener. Default '0.0.0.0', as App Mesh. Listener names follow the address used
   * (`lds_ingress_<address>_<port>`, `lds_egress_<address>_<port>`, and Envoy names listener stats
   * `listener.<address>_<port>.*` by it), so the default changes nothing. '::' also takes IPv4 (Envoy's
   * ipv4_compat). A gateway's self redirect dials its egress listener at this address, or loopback for the
   * unspecified ones (127.0.0.1 for '0.0.0.0', '::1' for '::'). Not validated here: the caller passes an IP.
   */
  readonly listenAddress?: string;
  /**
   * Opt-in for machines without traffic redirection (Istio's Sidecar egress `bind`, Consul's upstream
   * `local_bind_port`): a virtual node gets, for each tcp backend port P, a listener
   * `lds_egress_tcp_<address>_<P>` bound to this address at P whose only chain tcp-proxies to the backend, as
   * the egress listener's `egress_tcp_<P>` chain does (an application connects there instead of relying on
   * iptables and the original destination port). A port the ingress or egress listener already binds on an
   * overlapping address gets none (it could not bind). Not validated here: the caller passes an IP.
   */
  readonly tcpEgressAddress?: string;
  /**
   * Opt-in, for operators and benchmarks (App Mesh's API has no such setting): Envoy's
   * `max_requests_per_connection` (>= 1) in the `common_http_protocol_options` of the proxy's HTTP, HTTP/2 and
   * gRPC clusters to other virtual nodes (egress clusters; an HttpProtocolOptions with the explicit protocol is
   * added to an HTTP/1.1 cluster that had none). 1 turns upstream keep-alive off. Not validated here.
   */
  readonly upstreamMaxRequestsPerConnection?: number;
  /**
   * Opt-in, like upstreamMaxRequestsPerConnection: `max_session_keys` in the UpstreamTlsContext of the proxy's
   * TLS clusters to other virtual nodes (Envoy's default 1; 0 turns client-side TLS session resumption off).
   */
  readonly upstreamTlsMaxSessionKeys?: number;
  /** Access log path for the proxy, from the node's or gateway's `logging.accessLog.file.path`; overridable for tests. */
  readonly accessLogPath?: string;
}

/**
 * SDS secret names. File certificates are inlined as file paths (Envoy reads the files); SDS certificates use
 * the names in the spec (a SPIFFE ID, a trust domain); ACM certificates and CA ARNs become keymesh-managed
 * secrets named by the ARN: a certificate by its certificate ARN ('certificate'), trust by the CA ARNs, sorted
 * and joined with ',' ('validation'; a single CA ARN is just that ARN). The trust a client puts in an ACM
 * server certificate without a client policy is the same kind of secret: the issuing CA's ARN, from
 * TranslateInput.acmIssuers. The xDS server serves a secret only to a proxy allowed to have it.
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

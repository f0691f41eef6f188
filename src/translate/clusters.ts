// Clusters and their endpoints: the local application behind an ingress listener, one backend listener of a
// target virtual node (EDS when the node has registered instances, a DNS cluster on its DNS name otherwise),
// a gateway's hop back into its own egress listener, and the ORIGINAL_DST clusters out of the mesh. Every one
// carries circuit breakers (App Mesh's unlimited defaults unless a connection pool sets them).
import type { JsonObject } from '../model/json.ts';
import type { Endpoint } from './api.ts';
import { adsSource, duration, isHttpLike, millis, seconds, T, tcpAddress, uint32 } from './envoy.ts';
import { amazonawsClusterName, egressClusterName, ingressClusterName, passthroughClusterName } from './names.ts';
import type { SecretCollector } from './secrets.ts';
import type { ClientPolicyTls, ConnectionPool, Duration, HealthCheck, NodeListener, OutlierDetection, Protocol, VirtualNodeSpec } from './spec.ts';
import { upstreamTlsSocket } from './tls-context.ts';

/** Every cluster's connect timeout (1 s), a new object each time: outputs share no object (see envoy.ts). */
function connectTimeout(): JsonObject {
  return seconds(1);
}

/**
 * A Duration Envoy requires to be > 0 (outlier detection's interval and base ejection time, health check
 * timeout and interval), at least 1 ms. App Mesh accepts 0 for outlier detection (DurationValue has min 0) and
 * Envoy refuses the cluster, so a 0 becomes 1 ms, the closest valid value Envoy acts on: it reads these
 * fields as milliseconds, and a sub-millisecond one would arm a 0 ms timer (a busy loop). Omitting outlier
 * detection instead would silently drop the ejections the operator configured; App Mesh gives 0 the meaning
 * "disabled" only for timeouts, not here. 1 ms is what 0 asks for: sweep as often as possible (interval), eject
 * for as short as possible (base ejection; Envoy returns a host at the first sweep after it elapsed).
 */
function positiveDuration(d: Duration | number): JsonObject {
  const out = typeof d === 'number' ? millis(d) : duration(d);
  return out.seconds === '0' && (out.nanos as number) < 1_000_000 ? millis(1) : out;
}

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

function http2Options(protocol: Protocol): JsonObject | undefined {
  if (protocol !== 'http2' && protocol !== 'grpc') return undefined;
  return { [HTTP_PROTOCOL_OPTIONS]: { '@type': T.httpProtocolOptions, explicitHttpConfig: { http2ProtocolOptions: {} } } };
}

function loadAssignment(clusterName: string, endpoints: readonly { address: string; port: number }[]): JsonObject {
  const lbEndpoints = endpoints.map((e) => ({ endpoint: { address: tcpAddress(e.address, e.port) } }));
  return lbEndpoints.length > 0 ? { clusterName, endpoints: [{ lbEndpoints }] } : { clusterName };
}

function healthChecks(hc: HealthCheck | undefined): JsonObject[] {
  if (!hc) return [];
  const check: JsonObject = {
    timeout: positiveDuration(hc.timeoutMillis),
    interval: positiveDuration(hc.intervalMillis),
    healthyThreshold: uint32(hc.healthyThreshold),
    unhealthyThreshold: uint32(hc.unhealthyThreshold),
  };
  if (hc.protocol === 'tcp') check.tcpHealthCheck = {};
  else if (hc.protocol === 'grpc') check.grpcHealthCheck = {};
  else check.httpHealthCheck = { path: hc.path ?? '/', ...(hc.protocol === 'http2' ? { codecClientType: 'HTTP2' } : {}) };
  return [check];
}

/** App Mesh's "effectively off" circuit breaker limit (UG envoy-defaults), for every threshold no pool sets. */
export const UNLIMITED = 2147483647;

/**
 * The circuit breaker thresholds (default priority) of every cluster keymesh emits. App Mesh's Envoy has them
 * effectively off (UNLIMITED) rather than at Envoy's own defaults (1024 connections, pending and requests, 3
 * retries), which would throttle a busy proxy that no connection pool asked to limit. A listener's connection
 * pool overrides its part: http → maxConnections and maxPendingRequests, http2/grpc → maxRequests, tcp →
 * maxConnections.
 */
export function circuitBreakers(pool: ConnectionPool | undefined): JsonObject {
  const limits = { maxConnections: UNLIMITED, maxPendingRequests: UNLIMITED, maxRequests: UNLIMITED, maxRetries: UNLIMITED };
  const requests = pool?.http2 ?? pool?.grpc;
  if (pool?.http) {
    limits.maxConnections = pool.http.maxConnections;
    if (pool.http.maxPendingRequests !== undefined) limits.maxPendingRequests = pool.http.maxPendingRequests;
  } else if (requests) {
    limits.maxRequests = requests.maxRequests;
  } else if (pool?.tcp) {
    limits.maxConnections = pool.tcp.maxConnections;
  }
  const threshold: JsonObject = {};
  for (const [k, v] of Object.entries(limits)) threshold[k] = uint32(v);
  return { thresholds: [threshold] };
}

/**
 * A target listener's outlier detection: maxServerErrors consecutive 5xx eject a host for baseEjectionDuration.
 * A 0 interval or base ejection duration becomes 1 ms (see positiveDuration); counts are clamped to uint32.
 */
export function outlierDetection(od: OutlierDetection | undefined): JsonObject | undefined {
  if (!od) return undefined;
  return {
    consecutive_5xx: uint32(od.maxServerErrors), // protobufjs keeps '_5xx' (no letter to camelCase)
    interval: positiveDuration(od.interval),
    baseEjectionTime: positiveDuration(od.baseEjectionDuration),
    maxEjectionPercent: uint32(Math.min(od.maxEjectionPercent, 100)), // Envoy: <= 100 (App Mesh: 0-100 too)
  };
}

/** Circuit breakers (from the pool, or unlimited) and the upstream protocol options every cluster ends with. */
function finish(cluster: JsonObject, protocol: Protocol | undefined, pool?: ConnectionPool): JsonObject {
  cluster.circuitBreakers = circuitBreakers(pool);
  const opts = protocol && http2Options(protocol);
  if (opts) cluster.typedExtensionProtocolOptions = opts;
  return cluster;
}

/** The local application behind one listener of the proxy's virtual node. */
export function ingressCluster(mesh: string, node: string, listener: NodeListener, appAddress: string): JsonObject {
  const { port, protocol } = listener.portMapping;
  const name = ingressClusterName(mesh, node, protocol, port);
  const cluster: JsonObject = { name, type: 'STATIC', connectTimeout: connectTimeout(), loadAssignment: loadAssignment(name, [{ address: appAddress, port }]) };
  const checks = healthChecks(listener.healthCheck);
  if (checks.length > 0) cluster.healthChecks = checks;
  return finish(cluster, protocol, listener.connectionPool);
}

/**
 * A static cluster to an address on this host (a gateway's self redirect into its egress listener), with the
 * gateway listener's connection pool when it has one.
 */
export function localCluster(name: string, protocol: Protocol, address: string, port: number, pool?: ConnectionPool): JsonObject {
  const cluster: JsonObject = { name, type: 'STATIC', connectTimeout: connectTimeout(), loadAssignment: loadAssignment(name, [{ address, port }]) };
  return finish(cluster, protocol, pool);
}

/**
 * Egress to hosts outside the mesh: an ORIGINAL_DST cluster, which connects to the address the application
 * dialled (recovered by the egress listener's original_dst filter).
 */
function originalDstCluster(name: string): JsonObject {
  return finish({ name, type: 'ORIGINAL_DST', connectTimeout: connectTimeout(), lbPolicy: 'CLUSTER_PROVIDED' }, undefined);
}

/** Everything outside the mesh (mesh `egressFilter.type: ALLOW_ALL`). */
export function passthroughCluster(mesh: string): JsonObject {
  return originalDstCluster(passthroughClusterName(mesh));
}

/** AWS APIs (`*.amazonaws.com`), which App Mesh lets a virtual node reach under DROP_ALL. */
export function amazonawsCluster(mesh: string): JsonObject {
  return originalDstCluster(amazonawsClusterName(mesh));
}

/**
 * The instances of a node that serve one of its listeners, at that listener's port. An instance serves the
 * listener ports in `[port, ...ports]`; an instance of a node with a single listener that gives no `ports`
 * serves it at its own `port` whatever that is (the registration may name the application's real port).
 * Sorted by address, then port; duplicates removed.
 */
export function listenerEndpoints(endpoints: readonly Endpoint[] | undefined, listenerPort: number, singleListener: boolean): { address: string; port: number }[] {
  const seen = new Map<string, { address: string; port: number }>();
  for (const e of endpoints ?? []) {
    let port: number | undefined;
    if (e.port === listenerPort || (e.ports ?? []).includes(listenerPort)) port = listenerPort;
    else if (singleListener && e.ports === undefined) port = e.port;
    if (port !== undefined) seen.set(`${e.address}\u0000${port}`, { address: e.address, port });
  }
  return [...seen.values()].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port));
}

const DNS_FAMILY: Record<string, string> = { IPv4_ONLY: 'V4_ONLY', IPv6_ONLY: 'V6_ONLY', IPv4_PREFERRED: 'V4_PREFERRED', IPv6_PREFERRED: 'AUTO' };

/** The name a backend's certificate must carry when a client policy lists no SANs. */
export function serviceDiscoveryName(spec: VirtualNodeSpec): string[] {
  const sd = spec.serviceDiscovery;
  if (sd?.dns) return [sd.dns.hostname];
  if (sd?.awsCloudMap) return [`${sd.awsCloudMap.serviceName}.${sd.awsCloudMap.namespaceName}`];
  return [];
}

export interface EgressClusterInput {
  readonly mesh: string;
  readonly meshIpPreference: string | undefined;
  readonly node: string;
  readonly spec: VirtualNodeSpec;
  readonly listener: NodeListener;
  readonly endpoints: readonly Endpoint[] | undefined;
  readonly policy: ClientPolicyTls | undefined;
  /** A virtual gateway listener's connection pool, for the clusters that gateway listener routes to. */
  readonly pool?: ConnectionPool | undefined;
  /** ACM certificate ARN → issuing CA ARN (TranslateInput.acmIssuers). */
  readonly acmIssuers?: Readonly<Record<string, string>> | undefined;
  readonly upstream?: UpstreamConnectionOptions | undefined;
}

/** The opt-in connection settings of a proxy's egress clusters (TranslateOptions.upstream*). */
export interface UpstreamConnectionOptions {
  /** Envoy's max_requests_per_connection, for HTTP-like clusters. */
  readonly maxRequestsPerConnection?: number | undefined;
  /** UpstreamTlsContext.max_session_keys, for TLS clusters. */
  readonly maxSessionKeys?: number | undefined;
}

/**
 * max_requests_per_connection in the cluster's HttpProtocolOptions (common_http_protocol_options): the one an
 * HTTP/2 or gRPC cluster has, or a new one with the explicit HTTP/1.1 protocol (Envoy requires a protocol choice
 * in HttpProtocolOptions).
 */
function limitRequestsPerConnection(cluster: JsonObject, max: number): void {
  const options = (cluster.typedExtensionProtocolOptions ?? {}) as JsonObject;
  const current = options[HTTP_PROTOCOL_OPTIONS] as JsonObject | undefined;
  options[HTTP_PROTOCOL_OPTIONS] = {
    '@type': T.httpProtocolOptions,
    commonHttpProtocolOptions: { maxRequestsPerConnection: uint32(max) },
    explicitHttpConfig: current?.explicitHttpConfig ?? { httpProtocolOptions: {} },
  };
  cluster.typedExtensionProtocolOptions = options;
}

/** One listener of a target node, with its endpoints (a ClusterLoadAssignment for EDS) and client TLS. */
export function egressCluster(input: EgressClusterInput, secrets: SecretCollector): { cluster: JsonObject; assignment?: JsonObject } {
  const { port, protocol } = input.listener.portMapping;
  const name = egressClusterName(input.mesh, input.node, protocol, port);
  const cluster: JsonObject = { name, connectTimeout: connectTimeout() };
  let assignment: JsonObject | undefined;
  const dns = input.spec.serviceDiscovery?.dns;
  const registered = listenerEndpoints(input.endpoints, port, (input.spec.listeners ?? []).length <= 1);
  if (dns && registered.length === 0) {
    // responseType (UG: virtual nodes; aws-app-mesh-controller-for-k8s#479): LOADBALANCER, the default, means
    // the name fronts a load balancer → LOGICAL_DNS (one address per new connection); ENDPOINTS means every
    // address is an instance → STRICT_DNS (each address a host, so load balancing and outlier detection work).
    cluster.type = dns.responseType === 'ENDPOINTS' ? 'STRICT_DNS' : 'LOGICAL_DNS';
    const family = DNS_FAMILY[dns.ipPreference ?? input.meshIpPreference ?? ''];
    if (family) cluster.dnsLookupFamily = family;
    cluster.loadAssignment = loadAssignment(name, [{ address: dns.hostname, port }]);
  } else {
    cluster.type = 'EDS';
    cluster.edsClusterConfig = { edsConfig: adsSource() };
    assignment = loadAssignment(name, registered);
  }
  const od = outlierDetection(input.listener.outlierDetection);
  if (od) cluster.outlierDetection = od;
  const tls = upstreamTlsSocket(input.policy, { port, serverTls: input.listener.tls, defaultSans: serviceDiscoveryName(input.spec), acmIssuers: input.acmIssuers }, secrets);
  const maxSessionKeys = input.upstream?.maxSessionKeys;
  if (tls && maxSessionKeys !== undefined) (tls.typedConfig as JsonObject).maxSessionKeys = uint32(maxSessionKeys);
  if (tls) cluster.transportSocket = tls;
  finish(cluster, protocol, input.pool);
  const maxRequests = input.upstream?.maxRequestsPerConnection;
  if (maxRequests !== undefined && isHttpLike(protocol)) limitRequestsPerConnection(cluster, maxRequests);
  return assignment ? { cluster, assignment } : { cluster };
}

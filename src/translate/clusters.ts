// Clusters and their endpoints: the local application behind an ingress listener, one backend listener of a
// target virtual node (EDS when the node has registered instances, STRICT_DNS on its DNS name otherwise), and
// a gateway's hop back into its own egress listener.
import type { JsonObject } from '../model/json.ts';
import type { Endpoint } from './api.ts';
import { adsSource, millis, seconds, T, tcpAddress } from './envoy.ts';
import { egressClusterName, ingressClusterName } from './names.ts';
import type { SecretCollector } from './secrets.ts';
import type { ClientPolicyTls, HealthCheck, NodeListener, Protocol, VirtualNodeSpec } from './spec.ts';
import { upstreamTlsSocket } from './tls-context.ts';

const CONNECT_TIMEOUT = seconds(1);

function http2Options(protocol: Protocol): JsonObject | undefined {
  if (protocol !== 'http2' && protocol !== 'grpc') return undefined;
  return { 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': { '@type': T.httpProtocolOptions, explicitHttpConfig: { http2ProtocolOptions: {} } } };
}

function loadAssignment(clusterName: string, endpoints: readonly { address: string; port: number }[]): JsonObject {
  const lbEndpoints = endpoints.map((e) => ({ endpoint: { address: tcpAddress(e.address, e.port) } }));
  return lbEndpoints.length > 0 ? { clusterName, endpoints: [{ lbEndpoints }] } : { clusterName };
}

function healthChecks(hc: HealthCheck | undefined): JsonObject[] {
  if (!hc) return [];
  const check: JsonObject = {
    timeout: millis(hc.timeoutMillis),
    interval: millis(hc.intervalMillis),
    healthyThreshold: { value: hc.healthyThreshold },
    unhealthyThreshold: { value: hc.unhealthyThreshold },
  };
  if (hc.protocol === 'tcp') check.tcpHealthCheck = {};
  else if (hc.protocol === 'grpc') check.grpcHealthCheck = {};
  else check.httpHealthCheck = { path: hc.path ?? '/', ...(hc.protocol === 'http2' ? { codecClientType: 'HTTP2' } : {}) };
  return [check];
}

function finish(cluster: JsonObject, protocol: Protocol): JsonObject {
  const opts = http2Options(protocol);
  if (opts) cluster.typedExtensionProtocolOptions = opts;
  return cluster;
}

/** The local application behind one listener of the proxy's virtual node. */
export function ingressCluster(mesh: string, node: string, listener: NodeListener, appAddress: string): JsonObject {
  const { port, protocol } = listener.portMapping;
  const name = ingressClusterName(mesh, node, protocol, port);
  const cluster: JsonObject = { name, type: 'STATIC', connectTimeout: CONNECT_TIMEOUT, loadAssignment: loadAssignment(name, [{ address: appAddress, port }]) };
  const checks = healthChecks(listener.healthCheck);
  if (checks.length > 0) cluster.healthChecks = checks;
  return finish(cluster, protocol);
}

/** A static cluster to an address on this host (a gateway's self redirect into its egress listener). */
export function localCluster(name: string, protocol: Protocol, address: string, port: number): JsonObject {
  return finish({ name, type: 'STATIC', connectTimeout: CONNECT_TIMEOUT, loadAssignment: loadAssignment(name, [{ address, port }]) }, protocol);
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
}

/** One listener of a target node, with its endpoints (a ClusterLoadAssignment for EDS) and client TLS. */
export function egressCluster(input: EgressClusterInput, secrets: SecretCollector): { cluster: JsonObject; assignment?: JsonObject } {
  const { port, protocol } = input.listener.portMapping;
  const name = egressClusterName(input.mesh, input.node, protocol, port);
  const cluster: JsonObject = { name, connectTimeout: CONNECT_TIMEOUT };
  let assignment: JsonObject | undefined;
  const dns = input.spec.serviceDiscovery?.dns;
  const registered = [...(input.endpoints ?? [])].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port));
  if (dns && registered.length === 0) {
    cluster.type = 'STRICT_DNS';
    const family = DNS_FAMILY[dns.ipPreference ?? input.meshIpPreference ?? ''];
    if (family) cluster.dnsLookupFamily = family;
    cluster.loadAssignment = loadAssignment(name, [{ address: dns.hostname, port }]);
  } else {
    cluster.type = 'EDS';
    cluster.edsClusterConfig = { edsConfig: adsSource() };
    assignment = loadAssignment(name, registered);
  }
  const tls = upstreamTlsSocket(input.policy, { port, serverTls: input.listener.tls, defaultSans: serviceDiscoveryName(input.spec) }, secrets);
  if (tls) cluster.transportSocket = tls;
  finish(cluster, protocol);
  return assignment ? { cluster, assignment } : { cluster };
}

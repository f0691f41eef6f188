// The ingress side of a virtual node: ONE listener, `lds_ingress_0.0.0.0_15000` as in App Mesh (iptables
// redirects the node's listener ports to it), so its stats read `listener.0.0.0.0_15000.ssl.*` as in the
// seeds (0.0.0.0 is the default TranslateOptions.listenAddress). Each App Mesh listener becomes filter chains
// of that listener; with several App Mesh listeners the chains are told apart by the ORIGINAL destination
// port (`filterChainMatch.destinationPort`, recovered by the `original_dst` listener filter), with one
// listener there is no port match, so direct connections to 15000 work too. Traffic goes to the local
// application cluster `cds_ingress_<mesh>_<node>_<protocol>_<port>`.
import type { JsonObject } from '../model/json.ts';
import { ingressCluster } from './clusters.ts';
import { type AccessLogConfig, duration, httpConnectionManager, isHttpLike, listenerAddress, originalDstFilter, tcpProxy, tlsInspectorFilter } from './envoy.ts';
import { ingressClusterName, ingressListenerName, ingressRouteConfigName, statPrefix } from './names.ts';
import { timeouts } from './routes.ts';
import type { SecretCollector } from './secrets.ts';
import type { ListenerTls, NodeListener } from './spec.ts';
import { downstreamTlsSocket } from './tls-context.ts';

/**
 * Filter chains for one App Mesh listener's TLS mode: STRICT → a TLS chain only; PERMISSIVE → a TLS chain
 * matched on `transportProtocol: tls` plus a plaintext chain (needs the tls_inspector listener filter);
 * DISABLED or no `tls` → plaintext only (the certificate is not referenced).
 */
export function tlsFilterChains(name: string, tls: ListenerTls | undefined, filter: JsonObject, match: JsonObject | undefined, secrets: SecretCollector): { chains: JsonObject[]; inspector: boolean } {
  const mode = tls?.mode ?? 'DISABLED';
  const plaintext: JsonObject = { name: `${name}_plaintext`, filters: [filter] };
  if (match) plaintext.filterChainMatch = structuredClone(match);
  if (mode === 'DISABLED' || !tls) return { chains: [plaintext], inspector: false };
  // Each chain gets its own copy of the filter: no object appears twice in an output.
  const secure: JsonObject = { name: `${name}_tls`, filters: [structuredClone(filter)], transportSocket: downstreamTlsSocket(tls, secrets) };
  if (mode === 'STRICT') {
    if (match) secure.filterChainMatch = structuredClone(match);
    return { chains: [secure], inspector: false };
  }
  secure.filterChainMatch = { ...structuredClone(match ?? {}), transportProtocol: 'tls' };
  return { chains: [secure, plaintext], inspector: true };
}

/** Listener filters: original_dst (to match on the redirected port) before tls_inspector (PERMISSIVE). */
export function ingressTlsListenerFilters(originalDst: boolean, inspector: boolean): JsonObject[] {
  const filters: JsonObject[] = [];
  if (originalDst) filters.push(originalDstFilter());
  if (inspector) filters.push(tlsInspectorFilter());
  return filters;
}

export interface IngressInput {
  readonly mesh: string;
  readonly node: string;
  readonly listeners: readonly NodeListener[];
  readonly port: number;
  /** The address the listener binds (TranslateOptions.listenAddress). */
  readonly address: string;
  readonly appAddress: string;
  readonly log: AccessLogConfig | undefined;
}

export interface IngressOutput { listener?: JsonObject; routeConfigurations: JsonObject[]; clusters: JsonObject[] }

/** The ingress listener, its route configurations and local clusters; no listener when the node has none. */
export function ingress(input: IngressInput, secrets: SecretCollector): IngressOutput {
  const listeners = [...input.listeners].sort((a, b) => a.portMapping.port - b.portMapping.port);
  if (listeners.length === 0) return { routeConfigurations: [], clusters: [] };
  const several = listeners.length > 1;
  const chains: JsonObject[] = [];
  const routeConfigurations: JsonObject[] = [];
  const clusters: JsonObject[] = [];
  let inspector = false;
  for (const l of listeners) {
    const { port, protocol } = l.portMapping;
    const cluster = ingressClusterName(input.mesh, input.node, protocol, port);
    clusters.push(ingressCluster(input.mesh, input.node, l, input.appAddress));
    const stat = statPrefix('ingress', protocol, port, several);
    const t = l.timeout?.[protocol];
    let filter: JsonObject;
    if (isHttpLike(protocol)) {
      const rds = ingressRouteConfigName(protocol, port);
      filter = httpConnectionManager(stat, rds, input.log);
      routeConfigurations.push({
        name: rds,
        virtualHosts: [{ name: `${input.node}_${protocol}_${port}`, domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster, ...timeouts(t) } }] }],
      });
    } else {
      filter = tcpProxy(stat, cluster, input.log, t?.idle ? duration(t.idle) : undefined);
    }
    const built = tlsFilterChains(`ingress_${protocol}_${port}`, l.tls, filter, several ? { destinationPort: { value: port } } : undefined, secrets);
    chains.push(...built.chains);
    inspector ||= built.inspector;
  }
  const listenerFilters = ingressTlsListenerFilters(several, inspector);
  const listener: JsonObject = { name: ingressListenerName(input.address, input.port), address: listenerAddress(input.address, input.port), filterChains: chains };
  if (listenerFilters.length > 0) listener.listenerFilters = listenerFilters;
  return { listener, routeConfigurations, clusters };
}

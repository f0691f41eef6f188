// The egress side of a proxy: listener `lds_egress_0.0.0.0_15001` with one HTTP connection manager that
// routes by Host (`rds_egress_http_15001`: a virtual host per backend virtual service and port, domains
// `<service>:<port>`, plus the bare `<service>` on its lowest port) to the service's provider: a virtual
// node's cluster, or a virtual router's routes. A tcp backend gets its own filter chain matched on the
// original destination port (tcp_proxy; the `original_dst` listener filter recovers the port iptables
// redirected), since tcp has no Host to route by.
import type { JsonObject } from '../model/json.ts';
import type { Endpoint } from './api.ts';
import { egressCluster, passthroughCluster } from './clusters.ts';
import { type AccessLogConfig, duration, httpConnectionManager, isHttpLike, T, tcpAddress, tcpProxy } from './envoy.ts';
import { ANY_ADDRESS, egressListenerName, egressRouteConfigName } from './names.ts';
import { clusterSpecifier, retryPolicy, routerRoutes, routerTcpRoute, timeouts } from './routes.ts';
import type { SecretCollector } from './secrets.ts';
import type { ClientPolicyTls, ConnectionPool, NodeListener, WeightedTarget } from './spec.ts';
import type { View } from './view.ts';

/** The clusters (and EDS assignments) a proxy needs, built once per name. */
export class ClusterSet {
  readonly clusters = new Map<string, JsonObject>();
  readonly assignments = new Map<string, JsonObject>();

  add(cluster: JsonObject, assignment?: JsonObject): string {
    const name = String(cluster.name);
    // The first backend to reach a target listener decides its client TLS (backends are visited in name order).
    if (!this.clusters.has(name)) {
      this.clusters.set(name, cluster);
      if (assignment) this.assignments.set(name, assignment);
    }
    return name;
  }
}

export interface Backend {
  readonly service: string;
  readonly policy: ClientPolicyTls | undefined;
}

export interface EgressContext {
  readonly view: View;
  readonly endpoints: Readonly<Record<string, readonly Endpoint[]>>;
  readonly secrets: SecretCollector;
  readonly clusters: ClusterSet;
  readonly acmIssuers?: Readonly<Record<string, string>> | undefined;
}

/**
 * Builds (once) the cluster for a target node listener and returns its name. `pool` is a virtual gateway
 * listener's connection pool (the first gateway listener, by port, to reach a cluster decides its limits).
 */
export function clusterForListener(ctx: EgressContext, node: string, listener: NodeListener, policy: ClientPolicyTls | undefined, pool?: ConnectionPool): string {
  const spec = ctx.view.nodes.get(node)!.spec;
  const { cluster, assignment } = egressCluster({
    mesh: ctx.view.mesh,
    meshIpPreference: ctx.view.meshSpec.serviceDiscovery?.ipPreference,
    node, spec, listener, endpoints: Object.hasOwn(ctx.endpoints, node) ? ctx.endpoints[node] : undefined, policy, pool,
    acmIssuers: ctx.acmIssuers,
  }, ctx.secrets);
  return ctx.clusters.add(cluster, assignment);
}

function targetResolver(ctx: EgressContext, policy: ClientPolicyTls | undefined) {
  return (t: WeightedTarget): string | undefined => {
    const listener = ctx.view.nodeListener(t.virtualNode, t.port);
    return listener ? clusterForListener(ctx, t.virtualNode, listener, policy) : undefined;
  };
}

interface PortRoutes { port: number; routes: JsonObject[] }
interface TcpChain { port: number; filter: JsonObject }

/** What one backend virtual service contributes: HTTP routes per port and tcp chains. */
export function backendRoutes(ctx: EgressContext, backend: Backend, log: AccessLogConfig | undefined): { http: PortRoutes[]; tcp: TcpChain[] } {
  const http: PortRoutes[] = [];
  const tcp: TcpChain[] = [];
  const provider = ctx.view.services.get(backend.service)?.spec.provider;
  const stat = (port: number) => `egress.tcp.${port}`;
  if (provider?.virtualNode) {
    const node = ctx.view.nodes.get(provider.virtualNode.virtualNodeName);
    for (const l of [...(node?.spec.listeners ?? [])].sort((a, b) => a.portMapping.port - b.portMapping.port)) {
      const cluster = clusterForListener(ctx, node!.name, l, backend.policy);
      const { port, protocol } = l.portMapping;
      const t = l.timeout?.[protocol];
      if (isHttpLike(protocol)) {
        http.push({ port, routes: [{ name: backend.service, match: { prefix: '/' }, route: { cluster, ...timeouts(t), retryPolicy: retryPolicy(undefined, protocol) } }] });
      } else {
        tcp.push({ port, filter: tcpProxy(stat(port), cluster, log, t?.idle ? duration(t.idle) : undefined) });
      }
    }
  } else if (provider?.virtualRouter) {
    const name = provider.virtualRouter.virtualRouterName;
    const router = ctx.view.routers.get(name);
    const routes = ctx.view.routesOf(name);
    const resolve = targetResolver(ctx, backend.policy);
    for (const rl of [...(router?.spec.listeners ?? [])].sort((a, b) => a.portMapping.port - b.portMapping.port)) {
      const { port, protocol } = rl.portMapping;
      if (isHttpLike(protocol)) {
        const rs = routerRoutes(name, routes, port, resolve);
        if (rs.length > 0) http.push({ port, routes: rs });
      } else {
        const route = routerTcpRoute(routes, port);
        const spec = route && clusterSpecifier(route.targets, resolve);
        if (!spec) continue;
        const target = 'cluster' in spec ? String(spec.cluster) : ((spec.weightedClusters as { clusters: JsonObject[] }).clusters.map((c) => ({ name: c.name!, weight: (c.weight as { value: number }).value })));
        tcp.push({ port, filter: tcpProxy(stat(port), target, log, route.timeout?.idle ? duration(route.timeout.idle) : undefined) });
      }
    }
  }
  return { http, tcp };
}

/** The route configuration: a virtual host per backend service and port (plus `*` to `passthrough` under ALLOW_ALL). */
export function egressRouteConfiguration(name: string, perService: readonly { service: string; http: PortRoutes[] }[], passthrough?: string): JsonObject {
  const virtualHosts: JsonObject[] = [];
  for (const { service, http } of perService) {
    const sorted = [...http].sort((a, b) => a.port - b.port);
    sorted.forEach(({ port, routes }, i) => {
      const domains = i === 0 ? [service, `${service}:${port}`] : [`${service}:${port}`];
      virtualHosts.push({ name: `${service}:${port}`, domains, routes });
    });
  }
  // Envoy prefers exact domains over `*`, so the catch-all only gets hosts that are no backend's.
  if (passthrough !== undefined) {
    virtualHosts.push({ name: PASSTHROUGH, domains: ['*'], routes: [{ name: PASSTHROUGH, match: { prefix: '/' }, route: { cluster: passthrough, ...timeouts(undefined) } }] });
  }
  virtualHosts.sort((a, b) => (String(a.name) < String(b.name) ? -1 : 1));
  return virtualHosts.length > 0 ? { name, virtualHosts } : { name };
}

export interface EgressOutput { listener: JsonObject; routeConfiguration: JsonObject }

const PASSTHROUGH = 'passthrough';
/** What http_inspector reports for plaintext HTTP (h2c: HTTP/2 with prior knowledge, as gRPC clients send). */
const HTTP_PROTOCOLS = ['http/1.0', 'http/1.1', 'h2c'];

/** http_inspector, skipped on the ports of tcp chains (server-first protocols would wait on it). */
function httpInspector(tcpPorts: readonly number[]): JsonObject {
  const filter: JsonObject = { name: 'envoy.filters.listener.http_inspector', typedConfig: { '@type': T.httpInspector } };
  const rules = tcpPorts.map((p): JsonObject => ({ destinationPortRange: { start: p, end: p + 1 } }));
  if (rules.length === 1) filter.filterDisabled = rules[0]!;
  else if (rules.length > 1) filter.filterDisabled = { orMatch: { rules } };
  return filter;
}

/**
 * The egress listener and its route configuration for a proxy's backends (clusters go into ctx.clusters).
 *
 * `allowAll` (mesh `egressFilter.type: ALLOW_ALL`, virtual nodes only): traffic to hosts that are not the
 * node's backends passes through to where the application sent it, over the ORIGINAL_DST cluster
 * `cds_egress_<mesh>_passthrough`. Plaintext HTTP (told apart by http_inspector) keeps the HTTP chain, whose
 * route configuration gets a catch-all `*` virtual host to that cluster; anything else (TLS, other protocols)
 * falls to a default tcp_proxy chain to it. Mesh tcp backends keep their port-matched chains. Without
 * `allowAll` (DROP_ALL, the default) there is neither.
 */
export function egress(ctx: EgressContext, backends: readonly Backend[], port: number, log: AccessLogConfig | undefined, allowAll = false): EgressOutput {
  const perService: { service: string; http: PortRoutes[] }[] = [];
  const tcpChains = new Map<number, JsonObject>();
  for (const b of [...backends].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0))) {
    const { http, tcp } = backendRoutes(ctx, b, log);
    if (http.length > 0) perService.push({ service: b.service, http });
    // Two tcp backends on one port cannot be told apart by port; the first by service name keeps it.
    for (const c of tcp) if (!tcpChains.has(c.port)) tcpChains.set(c.port, c.filter);
  }
  const routeName = egressRouteConfigName(port);
  const tcpPorts = [...tcpChains.keys()].sort((a, b) => a - b);
  const chains: JsonObject[] = tcpPorts.map((p) => ({
    name: `egress_tcp_${p}`,
    filterChainMatch: { destinationPort: { value: p } },
    filters: [tcpChains.get(p)!],
  }));
  const httpChain: JsonObject = { name: 'egress_http', filters: [httpConnectionManager('egress', routeName, log)] };
  chains.push(httpChain);
  let passthrough: string | undefined;
  if (allowAll) {
    passthrough = ctx.clusters.add(passthroughCluster(ctx.view.mesh));
    httpChain.filterChainMatch = { applicationProtocols: HTTP_PROTOCOLS };
    chains.push({ name: 'egress_passthrough', filters: [tcpProxy('egress.passthrough', passthrough, log)] });
  }
  const listener: JsonObject = {
    name: egressListenerName(port),
    address: tcpAddress(ANY_ADDRESS, port),
    filterChains: chains,
  };
  const listenerFilters: JsonObject[] = [];
  if (tcpChains.size > 0 || allowAll) listenerFilters.push({ name: 'envoy.filters.listener.original_dst', typedConfig: { '@type': T.originalDst } });
  if (allowAll) {
    listenerFilters.push(httpInspector(tcpPorts));
    // A server-first protocol (the server speaks first) never satisfies http_inspector: let it through.
    listener.continueOnListenerFiltersTimeout = true;
  }
  if (listenerFilters.length > 0) listener.listenerFilters = listenerFilters;
  return { listener, routeConfiguration: egressRouteConfiguration(routeName, perService, passthrough) };
}

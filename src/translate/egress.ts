// The egress side of a proxy: listener `lds_egress_<address>_15001` (address 0.0.0.0 unless
// TranslateOptions.listenAddress says otherwise) with one HTTP connection manager that
// routes by Host (`rds_egress_http_15001`: a virtual host per backend virtual service and port, domains
// `<service>:<port>`, plus the bare `<service>` on its lowest port) to the service's provider: a virtual
// node's cluster, or a virtual router's routes. A tcp backend gets its own filter chain matched on the
// original destination port (tcp_proxy; the `original_dst` listener filter recovers the port iptables
// redirected), since tcp has no Host to route by (without iptables, tcp-egress.ts adds a listener per tcp
// port). Outside the mesh it reaches AWS APIs (a virtual node under
// DROP_ALL) or everything (ALLOW_ALL).
import type { JsonObject } from '../model/json.ts';
import type { Endpoint, SecretRef } from './api.ts';
import { amazonawsCluster, egressCluster, passthroughCluster, type UpstreamConnectionOptions } from './clusters.ts';
import { type AccessLogConfig, duration, httpConnectionManager, httpInspectorFilter, isHttpLike, listenerAddress, originalDstFilter, tcpProxy, tlsInspectorFilter } from './envoy.ts';
import { egressListenerName, egressRouteConfigName } from './names.ts';
import { clusterSpecifier, retryPolicy, routerRoutes, routerTcpRoute, timeouts } from './routes.ts';
import { SecretCollector } from './secrets.ts';
import type { ClientPolicyTls, ConnectionPool, NodeListener, WeightedTarget } from './spec.ts';
import { upstreamTlsStrength } from './tls-context.ts';
import type { View } from './view.ts';

interface KeptCluster {
  readonly cluster: JsonObject;
  readonly assignment: JsonObject | undefined;
  /** The SDS secrets this cluster refers to: listed only if the cluster is kept. */
  readonly secrets: readonly SecretRef[];
  /** upstreamTlsStrength of its transport socket. */
  readonly strength: number;
}

/**
 * The clusters (and EDS assignments) a proxy needs, one per name. Several backends of a node can reach the
 * same target listener (two virtual services provided by one node, or a service and a router target), each
 * with its own client policy, and so build the same cluster with different client TLS. The kept one is the
 * STRICTEST (upstreamTlsStrength: TLS with a client certificate and validation > validated TLS > unvalidated
 * TLS > plaintext), so one backend's weaker or absent policy never downgrades another's enforced mTLS to the
 * same target; between equally strict ones the first built wins (backends are visited in service name order;
 * a gateway's listeners by port, so the first gateway listener to reach a cluster decides its limits).
 * A candidate's secrets are listed only when it is the one kept.
 */
export class ClusterSet {
  readonly #kept = new Map<string, KeptCluster>();

  add(cluster: JsonObject, assignment?: JsonObject, secrets: readonly SecretRef[] = []): string {
    const name = String(cluster.name);
    const strength = upstreamTlsStrength(cluster.transportSocket as JsonObject | undefined);
    const kept = this.#kept.get(name);
    if (!kept || strength > kept.strength) this.#kept.set(name, { cluster, assignment, secrets, strength });
    return name;
  }

  clusters(): JsonObject[] {
    return [...this.#kept.values()].map((k) => k.cluster);
  }

  assignments(): JsonObject[] {
    return [...this.#kept.values()].flatMap((k) => (k.assignment ? [k.assignment] : []));
  }

  /** The secrets of the kept clusters. */
  secrets(): SecretRef[] {
    return [...this.#kept.values()].flatMap((k) => k.secrets);
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
  /** TranslateOptions.upstreamMaxRequestsPerConnection and upstreamTlsMaxSessionKeys, for egress clusters. */
  readonly upstream?: UpstreamConnectionOptions | undefined;
}

/**
 * Builds (once) the cluster for a target node listener and returns its name. `pool` is a virtual gateway
 * listener's connection pool (the first gateway listener, by port, to reach a cluster decides its limits).
 */
export function clusterForListener(ctx: EgressContext, node: string, listener: NodeListener, policy: ClientPolicyTls | undefined, pool?: ConnectionPool): string {
  const spec = ctx.view.nodes.get(node)!.spec;
  // The candidate's secrets are collected apart: they are listed only if ClusterSet keeps this candidate.
  const secrets = new SecretCollector();
  const { cluster, assignment } = egressCluster({
    mesh: ctx.view.mesh,
    meshIpPreference: ctx.view.meshSpec.serviceDiscovery?.ipPreference,
    node, spec, listener, endpoints: Object.hasOwn(ctx.endpoints, node) ? ctx.endpoints[node] : undefined, policy, pool,
    acmIssuers: ctx.acmIssuers, upstream: ctx.upstream,
  }, secrets);
  return ctx.clusters.add(cluster, assignment, secrets.list());
}

function targetResolver(ctx: EgressContext, policy: ClientPolicyTls | undefined) {
  return (t: WeightedTarget): string | undefined => {
    const listener = ctx.view.nodeListener(t.virtualNode, t.port);
    return listener ? clusterForListener(ctx, t.virtualNode, listener, policy) : undefined;
  };
}

interface PortRoutes { port: number; routes: JsonObject[] }
/** A tcp backend port's tcp_proxy filter (weights and idle timeout as its backend says). */
export interface TcpChain { readonly port: number; readonly filter: JsonObject }

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
        // tcp_proxy's weights are plain uint32 (>= 1): clusterSpecifier only lists positive, clamped ones.
        const target = 'cluster' in spec ? String(spec.cluster) : ((spec.weightedClusters as { clusters: JsonObject[] }).clusters.map((c) => ({ name: c.name!, weight: (c.weight as { value: number }).value })));
        tcp.push({ port, filter: tcpProxy(stat(port), target, log, route.timeout?.idle ? duration(route.timeout.idle) : undefined) });
      }
    }
  }
  return { http, tcp };
}

/** A virtual host that sends every request for `domains` to an out-of-mesh cluster. */
function outsideHost(name: string, domains: string[], cluster: string): JsonObject {
  return { name, domains, routes: [{ name, match: { prefix: '/' }, route: { cluster, ...timeouts(undefined) } }] };
}

/**
 * The route configuration: a virtual host per backend service and port, plus the `outside` hosts (`*` to the
 * passthrough, `*.amazonaws.com` to AWS). Envoy prefers exact domains to wildcards, so those only get hosts
 * that are no backend's; a domain a backend names itself stays the backend's.
 *
 * Envoy refuses a route configuration that names a domain twice, comparing domains case-insensitively (as
 * DNS does), and App Mesh service names are case-sensitive: `s.local` and `S.local` can both be backends.
 * Each domain goes to the first host that names it, ignoring case: services in name order (code-unit order, so
 * `S.local` before `s.local`; the same rule as two tcp backends on one port), then the outside hosts; a host
 * left with no domain is dropped. Requests for that name go to the service that kept it.
 */
export function egressRouteConfiguration(name: string, perService: readonly { service: string; http: PortRoutes[] }[], outside: readonly JsonObject[] = []): JsonObject {
  const virtualHosts: JsonObject[] = [];
  const taken = new Set<string>();
  const claim = (domains: readonly string[]) => domains.filter((d) => {
    const key = d.toLowerCase();
    if (taken.has(key)) return false;
    taken.add(key);
    return true;
  });
  for (const { service, http } of [...perService].sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0))) {
    const sorted = [...http].sort((a, b) => a.port - b.port);
    sorted.forEach(({ port, routes }, i) => {
      const domains = claim(i === 0 ? [service, `${service}:${port}`] : [`${service}:${port}`]);
      if (domains.length > 0) virtualHosts.push({ name: `${service}:${port}`, domains, routes });
    });
  }
  for (const host of outside) {
    const domains = claim(host.domains as string[]);
    if (domains.length > 0) virtualHosts.push({ ...host, domains });
  }
  virtualHosts.sort((a, b) => (String(a.name) < String(b.name) ? -1 : 1));
  return virtualHosts.length > 0 ? { name, virtualHosts } : { name };
}

/**
 * What a proxy's egress reaches outside the mesh: everything (mesh `egressFilter.type: ALLOW_ALL`), AWS APIs
 * only (a virtual node under DROP_ALL, the default), or nothing (a gateway's egress listener, which only its
 * own self redirect reaches, with the Host already rewritten to a mesh service).
 */
export type Outside = 'all' | 'aws' | 'none';

export interface EgressOptions {
  readonly port: number;
  /** The address the listener binds (TranslateOptions.listenAddress). */
  readonly address: string;
  readonly log: AccessLogConfig | undefined;
  readonly outside: Outside;
}

export interface EgressOutput {
  listener: JsonObject;
  routeConfiguration: JsonObject;
  /** The tcp backend ports' filters (one per port, by port), for listeners bound per port (tcp-egress.ts). */
  tcp: TcpChain[];
}

const PASSTHROUGH = 'passthrough';
const AMAZONAWS = 'amazonaws';
/**
 * The Hosts of plaintext HTTP to AWS. Envoy takes a leading `*` as a suffix wildcard and any other `*`
 * literally, so `*.amazonaws.com:*` would match nothing: the ports are spelled out (80, the plaintext one;
 * clients usually leave it out).
 */
const AMAZONAWS_DOMAINS: readonly string[] = Object.freeze(['*.amazonaws.com', '*.amazonaws.com:80']);
/** What http_inspector reports for plaintext HTTP (h2c: HTTP/2 with prior knowledge, as gRPC clients send). */
const HTTP_PROTOCOLS: readonly string[] = Object.freeze(['http/1.0', 'http/1.1', 'h2c']);

/** An inspector that skips the ports of tcp chains (server-first protocols would wait on it; the port decides). */
function inspector(filter: JsonObject, tcpPorts: readonly number[]): JsonObject {
  const rules = tcpPorts.map((p): JsonObject => ({ destinationPortRange: { start: p, end: p + 1 } }));
  if (rules.length === 1) filter.filterDisabled = rules[0]!;
  else if (rules.length > 1) filter.filterDisabled = { orMatch: { rules } };
  return filter;
}

/** What `outside` adds: filter chains, virtual hosts, listener filters, and the HTTP chain's match if any. */
interface OutsidePieces { chains: JsonObject[]; hosts: JsonObject[]; inspectors: JsonObject[]; httpMatch?: JsonObject }

/**
 * ALLOW_ALL: traffic to hosts that are not the node's backends passes through to where the application sent
 * it, over `cds_egress_<mesh>_passthrough`. Plaintext HTTP (told apart by http_inspector) keeps the HTTP
 * chain, whose routes get a catch-all `*` host to that cluster; anything else (TLS, other protocols) falls to
 * a default tcp_proxy chain to it. AWS APIs need nothing more: they go the same ORIGINAL_DST way, and adding
 * the 'aws' pieces here would put tls_inspector next to http_inspector, whose ALPN (http/1.1) would pull TLS
 * connections into the plaintext HTTP chain unless every chain also matched a transport protocol.
 */
function passthroughPieces(ctx: EgressContext, tcpPorts: readonly number[], log: AccessLogConfig | undefined): OutsidePieces {
  const cluster = ctx.clusters.add(passthroughCluster(ctx.view.mesh));
  return {
    chains: [{ name: 'egress_passthrough', filters: [tcpProxy('egress.passthrough', cluster, log)] }],
    hosts: [outsideHost(PASSTHROUGH, ['*'], cluster)],
    inspectors: [inspector(httpInspectorFilter(), tcpPorts)],
    // Copies of the module's constant lists: outputs share no object with each other.
    httpMatch: { applicationProtocols: [...HTTP_PROTOCOLS] },
  };
}

/**
 * DROP_ALL on a virtual node: App Mesh still lets it reach AWS APIs, over `cds_egress_<mesh>_amazonaws`
 * (ORIGINAL_DST). TLS is matched by SNI `*.amazonaws.com` (tls_inspector) and tcp-proxied; plaintext HTTP gets
 * a `*.amazonaws.com` host in the HTTP chain's routes. No destination port on the TLS chain: Envoy matches the
 * port first and would then drop other TLS to that port instead of falling back to the HTTP chain (App Mesh
 * roadmap #79). A mesh tcp backend's port-matched chain still wins on its port.
 */
function amazonawsPieces(ctx: EgressContext, tcpPorts: readonly number[], log: AccessLogConfig | undefined): OutsidePieces {
  const cluster = ctx.clusters.add(amazonawsCluster(ctx.view.mesh));
  return {
    chains: [{
      name: 'egress_amazonaws',
      filterChainMatch: { serverNames: ['*.amazonaws.com'], transportProtocol: 'tls' },
      filters: [tcpProxy('egress.amazonaws', cluster, log)],
    }],
    hosts: [outsideHost(AMAZONAWS, [...AMAZONAWS_DOMAINS], cluster)],
    inspectors: [inspector(tlsInspectorFilter(), tcpPorts)],
  };
}

/**
 * The egress listener and its route configuration for a proxy's backends (clusters go into ctx.clusters): a
 * port-matched tcp_proxy chain per tcp backend port, the HTTP chain, and what `outside` adds (see Outside,
 * passthroughPieces, amazonawsPieces).
 */
export function egress(ctx: EgressContext, backends: readonly Backend[], opts: EgressOptions): EgressOutput {
  const { port, log } = opts;
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
  const extra: OutsidePieces =
    opts.outside === 'all' ? passthroughPieces(ctx, tcpPorts, log)
    : opts.outside === 'aws' ? amazonawsPieces(ctx, tcpPorts, log)
    : { chains: [], hosts: [], inspectors: [] };
  const httpChain: JsonObject = { name: 'egress_http', filters: [httpConnectionManager('egress', routeName, log)] };
  if (extra.httpMatch) httpChain.filterChainMatch = extra.httpMatch;
  // Envoy ignores chain order (the most specific match wins); for readers, matched chains come before catch-alls.
  chains.push(...extra.chains.filter((c) => c.filterChainMatch), httpChain, ...extra.chains.filter((c) => !c.filterChainMatch));
  const listener: JsonObject = { name: egressListenerName(opts.address, port), address: listenerAddress(opts.address, port), filterChains: chains };
  // original_dst recovers the port the tcp chains match on and the address ORIGINAL_DST clusters connect to.
  const listenerFilters: JsonObject[] = [];
  if (tcpChains.size > 0 || opts.outside !== 'none') listenerFilters.push(originalDstFilter());
  listenerFilters.push(...extra.inspectors);
  if (listenerFilters.length > 0) listener.listenerFilters = listenerFilters;
  // A connection that never speaks first (a server-first protocol, an idle pre-connected client) would be
  // closed when an inspector times out; let it reach chain matching as it would without the inspector.
  if (extra.inspectors.length > 0) listener.continueOnListenerFiltersTimeout = true;
  const tcp = tcpPorts.map((p) => ({ port: p, filter: tcpChains.get(p)! }));
  return { listener, routeConfiguration: egressRouteConfiguration(routeName, perService, extra.hosts), tcp };
}

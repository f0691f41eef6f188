// A virtual gateway's Envoy: a listener per gateway listener port, `lds_ingress_<address>_<port>` (address
// 0.0.0.0 unless TranslateOptions.listenAddress; a gateway listens on its listener ports itself; no iptables),
// with the listener's TLS and a route configuration `rds_ingress_<protocol>_<port>` holding the gateway routes.
// A target virtual service provided by a virtual node goes straight to that node's cluster; one provided by a
// virtual router goes through App Mesh's self redirect (`cds_ingress_<mesh>_<gateway>_self_redirect_<protocol>_
// <egressPort>`, dialling the listen address, or loopback when that is 0.0.0.0 or ::) into the gateway's own
// egress listener, which applies the router's routes (the Host is then always rewritten to the service name,
// since that is what the egress listener routes on). The egress listener's port is the egress port unless a
// gateway listener uses it (gatewayEgressPort).
//
// A gateway listener's connection pool becomes circuit breakers on the clusters its routes lead to: the target
// node's cluster, or the self-redirect cluster (the first gateway listener, by port, to reach a cluster decides).
// Retries: App Mesh gateway routes have no retry policy (HttpGatewayRoute / GrpcGatewayRoute are match +
// action only, reference §3.2); a target behind a virtual router gets the router's retries in the egress hop.
import type { JsonObject } from '../model/json.ts';
import { localCluster } from './clusters.ts';
import { type Backend, clusterForListener, type EgressContext } from './egress.ts';
import { type AccessLogConfig, httpConnectionManager, listenerAddress, localDialAddress } from './envoy.ts';
import { ingressTlsListenerFilters, tlsFilterChains } from './ingress.ts';
import { httpRouteMatch, grpcRouteMatch } from './matchers.ts';
import { ingressListenerName, ingressRouteConfigName, selfRedirectClusterName, statPrefix } from './names.ts';
import { byPriority, timeouts } from './routes.ts';
import type { GatewayListener, GatewayRewrite, GatewayRouteSpec, GatewayTarget, HttpMatch, Protocol, VirtualGatewaySpec } from './spec.ts';
import type { Named } from './view.ts';

interface GatewayRouteKind { match: JsonObject; target: GatewayTarget; rewrite?: GatewayRewrite; httpMatch?: HttpMatch; port?: number }

function routeOfProtocol(spec: GatewayRouteSpec, protocol: Protocol): GatewayRouteKind | undefined {
  const http = protocol === 'http' ? spec.httpRoute : protocol === 'http2' ? spec.http2Route : undefined;
  if (http) return { match: httpRouteMatch(http.match), target: http.action.target, rewrite: http.action.rewrite, httpMatch: http.match, port: http.match.port };
  if (protocol === 'grpc' && spec.grpcRoute) return { match: grpcRouteMatch(spec.grpcRoute.match), target: spec.grpcRoute.action.target, rewrite: spec.grpcRoute.action.rewrite, port: spec.grpcRoute.match.port };
  return undefined;
}

/** Priority first; then exact/regex paths before prefixes, and the longest prefix first (App Mesh's rule). */
function gatewayOrder(a: Named<GatewayRouteSpec> & { k: GatewayRouteKind }, b: Named<GatewayRouteSpec> & { k: GatewayRouteKind }): number {
  const pa = a.spec.priority ?? Number.MAX_SAFE_INTEGER;
  const pb = b.spec.priority ?? Number.MAX_SAFE_INTEGER;
  if (pa !== pb) return pa - pb;
  const la = typeof a.k.match.prefix === 'string' ? a.k.match.prefix.length : Number.MAX_SAFE_INTEGER;
  const lb = typeof b.k.match.prefix === 'string' ? b.k.match.prefix.length : Number.MAX_SAFE_INTEGER;
  return lb - la || byPriority(a, b);
}

/** Path and host rewrites: by default the Host becomes the target service and the matched prefix becomes `/`. */
function rewrites(k: GatewayRouteKind, host: string, forceHost: boolean): JsonObject {
  const out: JsonObject = {};
  if (forceHost || k.rewrite?.hostname?.defaultTargetHostname !== 'DISABLED') out.hostRewriteLiteral = host;
  const prefix = k.httpMatch?.prefix;
  if (k.rewrite?.path?.exact !== undefined) {
    out.regexRewrite = { pattern: { regex: '^.*$' }, substitution: k.rewrite.path.exact };
  } else if (prefix !== undefined) {
    if (k.rewrite?.prefix?.value !== undefined) out.prefixRewrite = k.rewrite.prefix.value;
    else if (k.rewrite?.prefix?.defaultPrefix !== 'DISABLED' && prefix !== '/') out.prefixRewrite = '/';
  }
  return out;
}

/**
 * The port of a gateway's egress listener (the target of its self redirect): the egress port
 * (TranslateOptions.egressPort, App Mesh's 15001), or, when a gateway listener already uses it, the first port
 * above it that no gateway listener uses (below it, counting down, if none is left up to 65535). Two listeners on
 * one port would make Envoy refuse the configuration. App Mesh's Envoy reserves 15000 and 15001, but its API
 * takes any gateway listener port 1-65535 (ListenerPort), so a gateway may listen on the egress port itself.
 * Deterministic: it depends on the gateway's listener ports only.
 */
export function gatewayEgressPort(egressPort: number, listeners: readonly GatewayListener[]): number {
  const used = new Set(listeners.map((l) => l.portMapping.port));
  for (let p = egressPort; p <= 65535; p++) if (!used.has(p)) return p;
  for (let p = egressPort - 1; p >= 1; p--) if (!used.has(p)) return p;
  return egressPort; // 65535 listeners: cannot happen (App Mesh limits listeners per gateway to a handful)
}

export interface GatewayInput {
  readonly ctx: EgressContext;
  readonly gateway: Named<VirtualGatewaySpec>;
  /** The port of the gateway's egress listener (gatewayEgressPort), which its self redirect dials. */
  readonly egressPort: number;
  /** The address every listener of the gateway binds (TranslateOptions.listenAddress). */
  readonly listenAddress: string;
  readonly log: AccessLogConfig | undefined;
}

export interface GatewayOutput { listeners: JsonObject[]; routeConfigurations: JsonObject[]; redirected: Backend[] }

export function gateway(input: GatewayInput): GatewayOutput {
  const { ctx, gateway: gw } = input;
  const policy = gw.spec.backendDefaults?.clientPolicy?.tls;
  const listeners = [...gw.spec.listeners].sort((a, b) => a.portMapping.port - b.portMapping.port);
  const several = listeners.length > 1;
  const routes = ctx.view.gatewayRoutesOf(gw.name);
  const redirected = new Map<string, Backend>();
  const out: GatewayOutput = { listeners: [], routeConfigurations: [], redirected: [] };
  for (const l of listeners) {
    const { port, protocol } = l.portMapping;
    const rds = ingressRouteConfigName(protocol, port);
    const envoyRoutes: JsonObject[] = [];
    const applicable = routes
      .map((r) => ({ ...r, k: routeOfProtocol(r.spec, protocol) }))
      .filter((r): r is Named<GatewayRouteSpec> & { k: GatewayRouteKind } => r.k !== undefined && (r.k.port === undefined || r.k.port === port))
      .sort(gatewayOrder);
    for (const r of applicable) {
      const route = gatewayRouteAction(input, l, r.k, policy, redirected);
      if (route) envoyRoutes.push({ name: r.name, match: r.k.match, route });
    }
    out.routeConfigurations.push({ name: rds, virtualHosts: [{ name: `${gw.name}_${protocol}_${port}`, domains: ['*'], ...(envoyRoutes.length > 0 ? { routes: envoyRoutes } : {}) }] });
    const filter = httpConnectionManager(statPrefix('ingress', protocol, port, several), rds, input.log);
    const built = tlsFilterChains(`ingress_${protocol}_${port}`, l.tls, filter, undefined, ctx.secrets);
    const listener: JsonObject = { name: ingressListenerName(input.listenAddress, port), address: listenerAddress(input.listenAddress, port), filterChains: built.chains };
    const filters = ingressTlsListenerFilters(false, built.inspector);
    if (filters.length > 0) listener.listenerFilters = filters;
    out.listeners.push(listener);
  }
  out.redirected = [...redirected.values()];
  return out;
}

function gatewayRouteAction(input: GatewayInput, l: GatewayListener, k: GatewayRouteKind, policy: Backend['policy'], redirected: Map<string, Backend>): JsonObject | undefined {
  const { ctx } = input;
  const service = k.target.virtualService.virtualServiceName;
  const provider = ctx.view.services.get(service)?.spec.provider;
  if (provider?.virtualNode) {
    const node = provider.virtualNode.virtualNodeName;
    const listener = ctx.view.nodeListener(node, k.target.port);
    if (!listener) return undefined;
    return { cluster: clusterForListener(ctx, node, listener, policy, l.connectionPool), ...rewrites(k, service, false), ...timeouts(undefined) };
  }
  if (provider?.virtualRouter) {
    redirected.set(service, { service, policy });
    const name = selfRedirectClusterName(ctx.view.mesh, input.gateway.name, l.portMapping.protocol, input.egressPort);
    ctx.clusters.add(localCluster(name, l.portMapping.protocol, localDialAddress(input.listenAddress), input.egressPort, l.connectionPool));
    const host = k.target.port === undefined ? service : `${service}:${k.target.port}`;
    return { cluster: name, ...rewrites(k, host, true), ...timeouts(undefined) };
  }
  return undefined;
}

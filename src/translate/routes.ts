// A virtual router's routes as Envoy routes: matches, weighted clusters, retries, timeouts, in App Mesh's
// priority order (0 first; routes without a priority after all that have one; ties by route name).
import type { JsonObject } from '../model/json.ts';
import { duration, seconds, uint32 } from './envoy.ts';
import { grpcRouteMatch, httpRouteMatch } from './matchers.ts';
import type { Protocol, RetryPolicy, RouteSpec, Timeouts, WeightedTarget } from './spec.ts';
import type { Named } from './view.ts';

/** Resolves a weighted target to a cluster name (building the cluster), or undefined when it has none. */
export type TargetResolver = (target: WeightedTarget) => string | undefined;

const HTTP_EVENTS: Record<string, string> = {
  'server-error': '5xx',
  'gateway-error': 'gateway-error',
  'client-error': 'retriable-4xx',
  'stream-error': 'refused-stream',
};
const TCP_EVENTS: Record<string, string> = { 'connection-error': 'connect-failure' };

/** App Mesh's default retry policy (user guide, "Envoy defaults"): 2 retries on connect failures, resets, 503s. */
function defaultRetryPolicy(protocol: Protocol): JsonObject {
  const on = ['connect-failure', 'refused-stream', 'reset', 'retriable-status-codes'];
  if (protocol === 'grpc') on.push('unavailable');
  return { retryOn: on.sort().join(','), numRetries: uint32(2), retriableStatusCodes: [503] };
}

export function retryPolicy(p: RetryPolicy | undefined, protocol: Protocol): JsonObject {
  if (!p) return defaultRetryPolicy(protocol);
  const on = new Set<string>();
  for (const e of p.httpRetryEvents ?? []) on.add(HTTP_EVENTS[e] ?? e);
  for (const e of p.tcpRetryEvents ?? []) on.add(TCP_EVENTS[e] ?? e);
  for (const e of p.grpcRetryEvents ?? []) on.add(e);
  return { retryOn: [...on].sort().join(','), numRetries: uint32(p.maxRetries), perTryTimeout: duration(p.perRetryTimeout) };
}

/** Per-request timeout (App Mesh default 15 s; 0 disables) and idle timeout when set. */
export function timeouts(t: Timeouts | undefined): JsonObject {
  const out: JsonObject = { timeout: t?.perRequest ? duration(t.perRequest) : seconds(15) };
  if (t?.idle) out.idleTimeout = duration(t.idle);
  return out;
}

/**
 * Cluster or weighted clusters for the targets that carry traffic: weight > 0 and resolving to a cluster;
 * undefined when none does (the route is then left out, as for targets that resolve to nothing).
 *
 * Weight 0 targets are dropped before they are resolved (so their clusters are not built for them): App Mesh's
 * weight 0 means "no traffic", tcp_proxy refuses a cluster weight below 1 (its ClusterWeight.weight is
 * `uint32 {gte: 1}`), and a RouteAction's weighted clusters must sum to more than 0. A 0 entry would be legal
 * in a RouteAction, but it changes nothing there, so both kinds get the same rule.
 */
export function clusterSpecifier(targets: readonly WeightedTarget[], resolve: TargetResolver): JsonObject | undefined {
  const resolved: { name: string; weight: number }[] = [];
  for (const t of targets) {
    if (!(t.weight > 0)) continue;
    const name = resolve(t);
    if (name !== undefined) resolved.push({ name, weight: t.weight });
  }
  if (resolved.length === 0) return undefined;
  if (resolved.length === 1) return { cluster: resolved[0]!.name };
  const merged = new Map<string, number>();
  for (const r of resolved) merged.set(r.name, (merged.get(r.name) ?? 0) + r.weight);
  return { weightedClusters: { clusters: [...merged].sort(([a], [b]) => (a < b ? -1 : 1)).map(([name, weight]) => ({ name, weight: uint32(weight) })) } };
}

function routeKind(spec: RouteSpec): { protocol: Protocol; match: JsonObject; targets: WeightedTarget[]; retry?: RetryPolicy; timeout?: Timeouts; port?: number } | undefined {
  if (spec.httpRoute) return { protocol: 'http', match: httpRouteMatch(spec.httpRoute.match), targets: spec.httpRoute.action.weightedTargets, retry: spec.httpRoute.retryPolicy, timeout: spec.httpRoute.timeout, port: spec.httpRoute.match.port };
  if (spec.http2Route) return { protocol: 'http2', match: httpRouteMatch(spec.http2Route.match), targets: spec.http2Route.action.weightedTargets, retry: spec.http2Route.retryPolicy, timeout: spec.http2Route.timeout, port: spec.http2Route.match.port };
  if (spec.grpcRoute) return { protocol: 'grpc', match: grpcRouteMatch(spec.grpcRoute.match), targets: spec.grpcRoute.action.weightedTargets, retry: spec.grpcRoute.retryPolicy, timeout: spec.grpcRoute.timeout, port: spec.grpcRoute.match.port };
  return undefined;
}

export function byPriority<S extends { priority?: number }>(a: Named<S>, b: Named<S>): number {
  const pa = a.spec.priority ?? Number.MAX_SAFE_INTEGER;
  const pb = b.spec.priority ?? Number.MAX_SAFE_INTEGER;
  return pa - pb || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * The HTTP-family routes of a router for one router listener port (a route without `match.port` applies to
 * every port, which App Mesh only allows with a single listener). Routes whose targets resolve to nothing are
 * left out.
 */
export function routerRoutes(router: string, routes: readonly Named<RouteSpec>[], port: number, resolve: TargetResolver): JsonObject[] {
  const out: JsonObject[] = [];
  for (const r of [...routes].sort(byPriority)) {
    const k = routeKind(r.spec);
    if (!k || (k.port !== undefined && k.port !== port)) continue;
    const specifier = clusterSpecifier(k.targets, resolve);
    if (!specifier) continue;
    out.push({ name: `${router}/${r.name}`, match: k.match, route: { ...specifier, ...timeouts(k.timeout), retryPolicy: retryPolicy(k.retry, k.protocol) } });
  }
  return out;
}

/** Weighted targets of the router's tcp route for a port (App Mesh allows one tcp route per listener). */
export function routerTcpRoute(routes: readonly Named<RouteSpec>[], port: number): { targets: WeightedTarget[]; timeout?: Timeouts } | undefined {
  for (const r of [...routes].sort(byPriority)) {
    const tcp = r.spec.tcpRoute;
    if (tcp && (tcp.match?.port === undefined || tcp.match.port === port)) return { targets: tcp.action.weightedTargets, timeout: tcp.timeout };
  }
  return undefined;
}

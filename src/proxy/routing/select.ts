// Picking the route for a request from a compiled RouteTable, by Envoy's rules (source/common/router/
// config_impl.cc: RouteMatcher::findVirtualHost, RouteEntryImplBase::matchRoute and the path matchers,
// pickWeightedCluster, the path and host rewrites):
//
// - Virtual host: the Host/:authority, lower-cased and as it is (port included: keymesh's connection managers
//   keep the port, and its domains list `name` and `name:port`), is looked up among the exact domains, then the
//   suffix wildcards longest first, then the prefix wildcards longest first (a wildcard's `*` matches at least
//   one character), then `*`. With ignorePortInHostMatching the port is dropped first. No Host finds only a
//   route configuration whose sole domain is `*`.
// - Route: the first in order whose path matcher, header matchers, query parameter matchers and gRPC check all
//   hold. Paths are matched without the query string and fragment; `:path` in a header matcher is the full
//   path. Query parameters are the raw (not percent-decoded) `name=value` pairs; the first value counts.
// - Cluster: one, or a weighted pick with the injected random number.
// - Rewrites: prefixRewrite replaces the matched part (the prefix or exact path; the whole path of a regex
//   route), keeping the rest and the query string; regexRewrite replaces in the path and keeps the query
//   string. The host rewrite of the picked weighted cluster wins over the route's.
import type { HeaderMatcher, QueryParameterMatcher } from './matchers.ts';
import { asciiLower, startsWithLower } from './matchers.ts';
import type { PathMatch, Route, RouteMatch, RouteTable, VirtualHost } from './compile.ts';

/** What route selection reads of a request. */
export interface RequestView {
  /** Host (HTTP/1) or :authority (HTTP/2) as received; undefined when the request has none. */
  readonly authority: string | undefined;
  /** :path as received: the path with its query string. */
  readonly path: string;
  readonly method: string;
  /** :scheme (`http`/`https`); undefined when unknown. */
  readonly scheme?: string | undefined;
  /**
   * A request header by lower-case name: its value, or its values when repeated (a header matcher tests them
   * joined with ','); undefined when absent. Not asked for pseudo-headers nor for `host`.
   */
  readonly header: (name: string) => string | readonly string[] | undefined;
}

export type Selection =
  | RouteSelection
  /** No virtual host for the authority (Envoy answers 404). */
  | { readonly kind: 'no-virtual-host' }
  /** A virtual host but no route matched (Envoy answers 404). */
  | { readonly kind: 'no-route'; readonly virtualHost: VirtualHost };

export interface RouteSelection {
  readonly kind: 'route';
  readonly virtualHost: VirtualHost;
  readonly route: Route;
  /** The cluster to forward to (the weighted pick). */
  readonly cluster: string;
  /** The :path to send upstream. */
  readonly path: string;
  /** Whether the route rewrites the path (Envoy then also sends the request's as x-envoy-original-path). */
  readonly pathRewritten: boolean;
  /** The Host/:authority to send upstream when rewritten to a literal; undefined leaves it as it is. */
  readonly host: string | undefined;
  /** auto_host_rewrite: send the chosen upstream host's hostname as Host. */
  readonly autoHostRewrite: boolean;
}

const NO_VIRTUAL_HOST: Selection = Object.freeze({ kind: 'no-virtual-host' });

/**
 * The route for `request`. `random` gives a number in [0, 1) for the weighted cluster pick (Math.random by
 * default; tests pass a fixed sequence).
 */
export function selectRoute(table: RouteTable, request: RequestView, random: () => number = Math.random): Selection {
  const virtualHost = findVirtualHost(table, request.authority);
  if (!virtualHost) return NO_VIRTUAL_HOST;
  const state = new RequestState(request.path);
  for (const route of virtualHost.routes) {
    if (matches(route.match, request, state)) return selection(virtualHost, route, request, state, random);
  }
  return { kind: 'no-route', virtualHost };
}

/** The virtual host for an authority, or undefined. */
export function findVirtualHost(table: RouteTable, authority: string | undefined): VirtualHost | undefined {
  if (table.exactDomains.size === 0 && table.suffixDomains.length === 0 && table.prefixDomains.length === 0) return table.defaultVirtualHost;
  if (authority === undefined) return undefined;
  let host = authority;
  if (table.ignorePortInHostMatching) {
    const port = portStart(host);
    if (port >= 0) host = host.slice(0, port);
  }
  // Most hosts arrive lower-case: try as is before lower-casing (a hit means there was nothing to lower).
  const asIs = table.exactDomains.get(host);
  if (asIs) return asIs;
  const lower = asciiLower(host);
  if (lower !== host) {
    const exact = table.exactDomains.get(lower);
    if (exact) return exact;
    host = lower;
  }
  for (const w of table.suffixDomains) {
    if (host.length > w.text.length && host.endsWith(w.text)) return w.virtualHost;
  }
  for (const w of table.prefixDomains) {
    if (host.length > w.text.length && host.startsWith(w.text)) return w.virtualHost;
  }
  return table.defaultVirtualHost;
}

/** Where `:port` starts in a host (Envoy's HeaderUtility::getPortStart: an IPv6 literal is in brackets), or -1. */
function portStart(host: string): number {
  const colon = host.lastIndexOf(':');
  if (colon < 0) return -1;
  const bracket = host.lastIndexOf(']');
  return bracket < 0 || bracket < colon ? colon : -1;
}

/** Per-request values computed at most once, when a matcher needs them. */
class RequestState {
  /** Where the path ends (the first `?` or `#`). */
  readonly pathEnd: number;
  readonly #path: string;
  #pathOnly: string | undefined;
  #query: Map<string, string> | undefined;

  constructor(path: string) {
    this.#path = path;
    const query = path.indexOf('?');
    const fragment = path.indexOf('#');
    this.pathEnd = query < 0 ? (fragment < 0 ? path.length : fragment) : fragment < 0 ? query : Math.min(query, fragment);
  }

  /** The path without query string and fragment. */
  pathOnly(): string {
    this.#pathOnly ??= this.pathEnd === this.#path.length ? this.#path : this.#path.slice(0, this.pathEnd);
    return this.#pathOnly;
  }

  /** The first value of each query parameter (Envoy's QueryParamsMulti::parseQueryString, not decoded). */
  query(): Map<string, string> {
    if (this.#query) return this.#query;
    const q = new Map<string, string>();
    const path = this.#path;
    const start = path.indexOf('?');
    if (start >= 0) {
      for (const pair of path.slice(start + 1).split('&')) {
        const eq = pair.indexOf('=');
        const name = eq < 0 ? pair : pair.slice(0, eq);
        if (!q.has(name)) q.set(name, eq < 0 ? '' : pair.slice(eq + 1));
      }
    }
    this.#query = q;
    return q;
  }
}

function pathMatches(m: PathMatch, path: string, state: RequestState): boolean {
  const end = state.pathEnd;
  switch (m.kind) {
    case 'prefix':
      if (end < m.value.length) return false;
      return m.caseSensitive ? path.startsWith(m.value) : startsWithLower(path, m.value);
    case 'path':
      if (end !== m.value.length) return false;
      return m.caseSensitive ? path.startsWith(m.value) : startsWithLower(path, m.value);
    case 'pathSeparatedPrefix': {
      const n = m.value.length;
      if (end < n || (end > n && path.charCodeAt(n) !== 47)) return false;
      return m.caseSensitive ? path.startsWith(m.value) : startsWithLower(path, m.value);
    }
    case 'regex':
      return m.regex.fullMatch(state.pathOnly());
  }
}

function matches(m: RouteMatch, request: RequestView, state: RequestState): boolean {
  if (!pathMatches(m.path, request.path, state)) return false;
  if (m.grpc && !isGrpc(request)) return false;
  for (const h of m.headers) if (!headerMatches(h, request)) return false;
  if (m.queryParameters.length > 0) {
    const query = state.query();
    for (const q of m.queryParameters) if (!queryParameterMatches(q, query)) return false;
  }
  return true;
}

/** Envoy's Grpc::Common::isGrpcRequestHeaders: content-type application/grpc or application/grpc+... */
function isGrpc(request: RequestView): boolean {
  const ct = joined(request.header('content-type'));
  return ct !== undefined && ct.startsWith('application/grpc') && (ct.length === 16 || ct.charCodeAt(16) === 43);
}

function joined(v: string | readonly string[] | undefined): string | undefined {
  if (v === undefined || typeof v === 'string') return v;
  if (v.length === 0) return undefined;
  return v.length === 1 ? v[0] : v.join(',');
}

function headerValue(h: HeaderMatcher, request: RequestView): string | undefined {
  switch (h.source) {
    case ':authority': return request.authority;
    case ':path': return request.path;
    case ':method': return request.method;
    case ':scheme': return request.scheme;
    case 'host': return undefined;
    case 'header': return joined(request.header(h.name));
  }
}

function headerMatches(h: HeaderMatcher, request: RequestView): boolean {
  const value = headerValue(h, request);
  if (h.kind === 'present') return ((value !== undefined) === h.present) !== h.invert;
  if (value === undefined) return h.treatMissingAsEmpty ? h.test('') !== h.invert : false;
  return h.test(value) !== h.invert;
}

function queryParameterMatches(q: QueryParameterMatcher, query: Map<string, string>): boolean {
  const value = query.get(q.name);
  if (value === undefined) return false;
  return q.test === undefined || q.test(value);
}

function selection(virtualHost: VirtualHost, route: Route, request: RequestView, state: RequestState, random: () => number): RouteSelection {
  const a = route.action;
  let cluster: string;
  let host = a.hostRewrite?.kind === 'literal' ? a.hostRewrite.host : undefined;
  if (a.cluster.kind === 'cluster') {
    cluster = a.cluster.name;
  } else {
    const { clusters, totalWeight } = a.cluster;
    const value = Math.min(Math.floor(random() * totalWeight), totalWeight - 1);
    let end = 0;
    let picked = clusters[clusters.length - 1]!;
    for (const c of clusters) {
      end += c.weight;
      if (value < end) {
        picked = c;
        break;
      }
    }
    cluster = picked.name;
    if (picked.hostRewriteLiteral !== undefined) host = picked.hostRewriteLiteral;
  }
  let path = request.path;
  const rewrite = a.pathRewrite;
  if (rewrite?.kind === 'prefix') {
    const m = route.match.path;
    const matched = m.kind === 'regex' ? state.pathEnd : m.value.length;
    path = rewrite.prefix + path.slice(matched);
  } else if (rewrite?.kind === 'regex') {
    path = rewrite.pattern.replaceAll(state.pathOnly(), rewrite.substitution) + path.slice(state.pathEnd);
  }
  return { kind: 'route', virtualHost, route, cluster, path, pathRewritten: rewrite !== undefined, host, autoHostRewrite: a.hostRewrite?.kind === 'auto' };
}

// An Envoy v3 RouteConfiguration (protobufjs object form, as src/envoy/protos.ts decodes it) validated and
// compiled into a RouteTable: domains in lookup structures, matchers as test functions, regexes compiled,
// defaults applied (Envoy's 15 s route timeout, one retry, 25 ms retry back-off). Pure.
//
// Implemented: virtual hosts (domains: exact, `*.suffix`, `prefix*`, `*`; retryPolicy), routes in order with
// match prefix / path / safeRegex / pathSeparatedPrefix, caseSensitive, headers, queryParameters, grpc, and a
// `route` action: cluster or weightedClusters (per-cluster hostRewriteLiteral), timeout, idleTimeout,
// retryPolicy (retryOn, numRetries, perTryTimeout, perTryIdleTimeout, retriableStatusCodes, retryBackOff),
// prefixRewrite, regexRewrite, hostRewriteLiteral, autoHostRewrite, clusterNotFoundResponseCode; the route
// configuration's ignorePortInHostMatching. Anything else that changes behaviour is a ProxyConfigError naming
// the field (fields.ts), so the proxy NACKs what it would otherwise get wrong.
// src/proxy/config, spelled so that the layer rule does not read `../config/` as src/config.
import { durationMs, type Json, list, num, obj, optObj, optStr, Path, str, wrapped, wrappedBool } from '../resources/values.ts';
import { bool, enumName, type Fields, headerValueText, refuseOthers, requiredStr } from './fields.ts';
import { asciiLower, compileHeaderMatcher, compileQueryParameterMatcher, compileRegexMatcher, type HeaderMatcher, type QueryParameterMatcher } from './matchers.ts';
import { parseSubstitution, type Re2, Re2SyntaxError, type Substitution } from './re2.ts';

export interface RouteTable {
  readonly name: string;
  /** In configuration order. */
  readonly virtualHosts: readonly VirtualHost[];
  /** Envoy's ignore_port_in_host_matching: `host:port` is looked up as `host`. */
  readonly ignorePortInHostMatching: boolean;
  /** Exact domains, lower-case. */
  readonly exactDomains: ReadonlyMap<string, VirtualHost>;
  /** `*.foo.com` / `*-bar.foo.com` as `.foo.com` / `-bar.foo.com`, lower-case, longest first. */
  readonly suffixDomains: readonly WildcardDomain[];
  /** `foo.*` / `foo-*` as `foo.` / `foo-`, lower-case, longest first. */
  readonly prefixDomains: readonly WildcardDomain[];
  /** The virtual host with domain `*`. */
  readonly defaultVirtualHost: VirtualHost | undefined;
}

export interface WildcardDomain {
  /** The domain without its `*`. */
  readonly text: string;
  readonly virtualHost: VirtualHost;
}

export interface VirtualHost {
  readonly name: string;
  readonly domains: readonly string[];
  readonly routes: readonly Route[];
}

export interface Route {
  /** Route.name; informational (undefined when not set). */
  readonly name: string | undefined;
  readonly match: RouteMatch;
  readonly action: RouteAction;
}

/** Everything must hold: path, every header matcher, every query parameter matcher, and gRPC when `grpc`. */
export interface RouteMatch {
  readonly path: PathMatch;
  readonly headers: readonly HeaderMatcher[];
  readonly queryParameters: readonly QueryParameterMatcher[];
  /** Only requests with content-type application/grpc or application/grpc+... match. */
  readonly grpc: boolean;
}

/**
 * How the path (without query string and fragment) must match. `value` is lower-case when not caseSensitive
 * (comparisons are ASCII case-insensitive then); a regex always has to match the whole path.
 */
export type PathMatch =
  | { readonly kind: 'prefix'; readonly value: string; readonly caseSensitive: boolean }
  | { readonly kind: 'path'; readonly value: string; readonly caseSensitive: boolean }
  /** The path equals `value` or continues it with `/`. */
  | { readonly kind: 'pathSeparatedPrefix'; readonly value: string; readonly caseSensitive: boolean }
  | { readonly kind: 'regex'; readonly regex: Re2 };

export interface RouteAction {
  readonly cluster: ClusterSpecifier;
  /** Whole-request timeout in ms; 0 = none. Envoy's default when not set: 15000. */
  readonly timeoutMs: number;
  /** Stream idle timeout in ms; 0 = none; undefined = the connection manager's stream idle timeout. */
  readonly idleTimeoutMs: number | undefined;
  /** The route's retry policy, else its virtual host's; undefined = no retries. */
  readonly retryPolicy: RetryPolicy | undefined;
  readonly pathRewrite: PathRewrite | undefined;
  readonly hostRewrite: HostRewrite | undefined;
  /** The status when the cluster does not exist (ClusterNotFoundResponseCode; default 503). */
  readonly clusterNotFoundStatus: 503 | 404 | 500;
}

export type ClusterSpecifier =
  | { readonly kind: 'cluster'; readonly name: string }
  /** Picked by a random value in [0, totalWeight): the cluster whose cumulative weight interval holds it. */
  | { readonly kind: 'weighted'; readonly clusters: readonly WeightedCluster[]; readonly totalWeight: number };

export interface WeightedCluster {
  readonly name: string;
  readonly weight: number;
  /** Replaces the route's host rewrite when this cluster is picked. */
  readonly hostRewriteLiteral: string | undefined;
}

export type PathRewrite =
  /** The matched part (prefix, exact path, or the whole path of a regex route) becomes `prefix`; the rest stays. */
  | { readonly kind: 'prefix'; readonly prefix: string }
  /** Every match in the path (without query string) replaced, RE2::GlobalReplace style; the query string stays. */
  | { readonly kind: 'regex'; readonly pattern: Re2; readonly substitution: Substitution };

export type HostRewrite =
  | { readonly kind: 'literal'; readonly host: string }
  /** auto_host_rewrite: the upstream host's hostname (strict/logical DNS clusters), chosen by the forwarder. */
  | { readonly kind: 'auto' };

/** Envoy's retry_on conditions (HTTP and gRPC). */
export const RETRY_ON = [
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx',
  'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
] as const;
export type RetryOn = (typeof RETRY_ON)[number];

export interface RetryPolicy {
  /** De-duplicated, in configuration order. */
  readonly retryOn: readonly RetryOn[];
  /** Envoy's default: 1. */
  readonly numRetries: number;
  /** 0 = none (the route timeout applies). */
  readonly perTryTimeoutMs: number;
  /** 0 = none. */
  readonly perTryIdleTimeoutMs: number;
  readonly retriableStatusCodes: readonly number[];
  /** Exponential back-off with full jitter; Envoy's default 25 ms, capped at 10 × base. */
  readonly backOff: { readonly baseMs: number; readonly maxMs: number };
}

const ROUTE_CONFIGURATION: Fields = {
  '@type': 'ignored', name: 'ignored', metadata: 'ignored',
  virtualHosts: 'read', ignorePortInHostMatching: 'read', validateClusters: 'read',
  // Only matter with header mutations and direct responses, which are refused.
  mostSpecificHeaderMutationsWins: 'ignored', maxDirectResponseBodySizeBytes: 'ignored',
};
const VIRTUAL_HOST: Fields = {
  name: 'read', domains: 'read', routes: 'read', retryPolicy: 'read', requireTls: 'read',
  // Virtual clusters only name requests for stats.
  metadata: 'ignored', virtualClusters: 'ignored',
};
const ROUTE: Fields = { name: 'read', match: 'read', route: 'read', metadata: 'ignored', statPrefix: 'ignored' };
const ROUTE_MATCH: Fields = {
  prefix: 'read', path: 'read', safeRegex: 'read', pathSeparatedPrefix: 'read',
  caseSensitive: 'read', headers: 'read', queryParameters: 'read', grpc: 'read',
};
const ROUTE_ACTION: Fields = {
  cluster: 'read', weightedClusters: 'read', clusterNotFoundResponseCode: 'read', prefixRewrite: 'read', regexRewrite: 'read',
  hostRewriteLiteral: 'read', autoHostRewrite: 'read', timeout: 'read', idleTimeout: 'read', retryPolicy: 'read', priority: 'read',
};
const RETRY_POLICY: Fields = {
  retryOn: 'read', numRetries: 'read', perTryTimeout: 'read', perTryIdleTimeout: 'read', retriableStatusCodes: 'read', retryBackOff: 'read',
};

/** Envoy's defaults (config.route.v3.RouteAction.timeout, RetryPolicy.num_retries and retry_back_off). */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;
const DEFAULT_NUM_RETRIES = 1;
const DEFAULT_BACK_OFF_BASE_MS = 25;
const UINT32_MAX = 0xffffffff;

/**
 * Validates and compiles a RouteConfiguration; throws ProxyConfigError naming the resource and field
 * (`route configuration rds_x: virtualHosts[0].routes[2].match.safeRegex.regex: ...`).
 */
export function compileRouteConfiguration(resource: Json): RouteTable {
  const name = typeof resource.name === 'string' && resource.name !== '' ? resource.name : '(unnamed)';
  const at = (field: string) => new Path(`route configuration ${name}: ${field}`);
  refuseOthers(resource, at, ROUTE_CONFIGURATION);
  if (wrappedBool(resource.validateClusters, at('validateClusters'))) {
    at('validateClusters').fail('true is not supported by keymesh\'s proxy (clusters are resolved per request)');
  }
  const ignorePortInHostMatching = bool(resource.ignorePortInHostMatching, at('ignorePortInHostMatching'));

  const virtualHosts: VirtualHost[] = [];
  const exactDomains = new Map<string, VirtualHost>();
  const suffixes = new Map<string, VirtualHost>();
  const prefixes = new Map<string, VirtualHost>();
  /** Where each (lower-case) domain was first seen, for the duplicate message. */
  const seen = new Map<string, string>();
  let defaultVirtualHost: VirtualHost | undefined;

  list(resource.virtualHosts, at('virtualHosts')).forEach((raw, i) => {
    const path = at('virtualHosts').at(i);
    const vh = compileVirtualHost(raw, path);
    virtualHosts.push(vh);
    vh.domains.forEach((domain, j) => {
      const dpath = path.at('domains').at(j);
      const lower = asciiLower(domain);
      const first = seen.get(lower);
      if (first !== undefined) dpath.fail(`${domain} is already a domain of ${first} (domains must be unique in a route configuration)`);
      seen.set(lower, `virtualHosts[${i}]`);
      if (lower === '*') defaultVirtualHost = vh;
      else if (lower.startsWith('*')) suffixes.set(lower.slice(1), vh);
      else if (lower.endsWith('*')) prefixes.set(lower.slice(0, -1), vh);
      else exactDomains.set(lower, vh);
    });
  });
  const longestFirst = (m: Map<string, VirtualHost>): WildcardDomain[] =>
    [...m].map(([text, virtualHost]) => ({ text, virtualHost })).sort((a, b) => b.text.length - a.text.length);
  return {
    name,
    virtualHosts,
    ignorePortInHostMatching,
    exactDomains,
    suffixDomains: longestFirst(suffixes),
    prefixDomains: longestFirst(prefixes),
    defaultVirtualHost,
  };
}

function compileVirtualHost(raw: unknown, path: Path): VirtualHost {
  const o = obj(raw, path);
  refuseOthers(o, (f) => path.at(f), VIRTUAL_HOST);
  const name = requiredStr(o.name, path.at('name'));
  if (enumName(o.requireTls, path.at('requireTls'), ['NONE', 'EXTERNAL_ONLY', 'ALL']) !== 'NONE') {
    path.at('requireTls').fail('only NONE is supported by keymesh\'s proxy');
  }
  const domains = list(o.domains, path.at('domains')).map((d, j) => headerValueText(str(d, path.at('domains').at(j)), path.at('domains').at(j)));
  if (domains.length === 0) path.at('domains').fail('must list at least one domain');
  const vhRetry = optObj(o.retryPolicy, path.at('retryPolicy')) ? compileRetryPolicy(o.retryPolicy, path.at('retryPolicy')) : undefined;
  const routes = list(o.routes, path.at('routes')).map((r, k) => compileRoute(r, path.at('routes').at(k), vhRetry));
  return { name, domains, routes };
}

function compileRoute(raw: unknown, path: Path, vhRetry: RetryPolicy | undefined): Route {
  const o = obj(raw, path);
  const actions = ['route', 'redirect', 'directResponse', 'filterAction', 'nonForwardingAction'].filter((k) => o[k] !== undefined && o[k] !== null);
  if (actions.length > 1) path.fail(`sets ${actions.join(' and ')}; only one action may be set`);
  refuseOthers(o, (f) => path.at(f), ROUTE);
  if (o.route === undefined || o.route === null) path.fail('must have a route action');
  if (o.name !== undefined && o.name !== null) str(o.name, path.at('name'));
  const match = compileRouteMatch(o.match, path.at('match'));
  const action = compileRouteAction(o.route, path.at('route'), vhRetry);
  return { name: typeof o.name === 'string' && o.name !== '' ? o.name : undefined, match, action };
}

const PATH_KINDS = ['prefix', 'path', 'safeRegex', 'pathSeparatedPrefix', 'connectMatcher', 'pathMatchPolicy'] as const;

function compileRouteMatch(raw: unknown, path: Path): RouteMatch {
  if (raw === undefined || raw === null) path.fail('is required');
  const o = obj(raw, path);
  const kinds = PATH_KINDS.filter((k) => o[k] !== undefined && o[k] !== null);
  if (kinds.length > 1) path.fail(`sets ${kinds.join(' and ')}; only one may be set`);
  refuseOthers(o, (f) => path.at(f), ROUTE_MATCH);
  const caseSensitive = wrappedBool(o.caseSensitive, path.at('caseSensitive')) ?? true;
  const text = (k: 'prefix' | 'path' | 'pathSeparatedPrefix') => {
    const v = headerValueText(str(o[k], path.at(k)), path.at(k));
    return caseSensitive ? v : asciiLower(v);
  };
  let pathMatch: PathMatch;
  switch (kinds[0]) {
    case 'prefix':
      pathMatch = { kind: 'prefix', value: text('prefix'), caseSensitive };
      break;
    case 'path':
      pathMatch = { kind: 'path', value: text('path'), caseSensitive };
      break;
    case 'pathSeparatedPrefix': {
      const value = text('pathSeparatedPrefix');
      if (!/^[^?#]+[^?#/]$/.test(value)) path.at('pathSeparatedPrefix').fail('must not contain ? or #, nor end with /');
      pathMatch = { kind: 'pathSeparatedPrefix', value, caseSensitive };
      break;
    }
    case 'safeRegex':
      pathMatch = { kind: 'regex', regex: compileRegexMatcher(o.safeRegex, path.at('safeRegex')) };
      break;
    default:
      return path.fail('must set one of prefix, path, safeRegex, pathSeparatedPrefix');
  }
  const headers = list(o.headers, path.at('headers')).map((h, i) => compileHeaderMatcher(h, path.at('headers').at(i)));
  const queryParameters = list(o.queryParameters, path.at('queryParameters')).map((q, i) => compileQueryParameterMatcher(q, path.at('queryParameters').at(i)));
  const grpc = optObj(o.grpc, path.at('grpc'));
  if (grpc) refuseOthers(grpc, (f) => path.at('grpc').at(f), {});
  return { path: pathMatch, headers, queryParameters, grpc: grpc !== undefined };
}

/** An optional header-value string ('' is absent). */
function optText(v: unknown, path: Path): string | undefined {
  const s = optStr(v, path);
  return s === undefined ? undefined : headerValueText(s, path);
}

const CLUSTER_NOT_FOUND = ['SERVICE_UNAVAILABLE', 'NOT_FOUND', 'INTERNAL_SERVER_ERROR'] as const;
const CLUSTER_NOT_FOUND_STATUS = { SERVICE_UNAVAILABLE: 503, NOT_FOUND: 404, INTERNAL_SERVER_ERROR: 500 } as const;

function compileRouteAction(raw: unknown, path: Path, vhRetry: RetryPolicy | undefined): RouteAction {
  const o = obj(raw, path);
  const specifiers = ['cluster', 'weightedClusters', 'clusterHeader', 'clusterSpecifierPlugin', 'inlineClusterSpecifierPlugin'].filter((k) => o[k] !== undefined && o[k] !== null && o[k] !== '');
  if (specifiers.length > 1) path.fail(`sets ${specifiers.join(' and ')}; only one may be set`);
  const hostRewrites = ['hostRewriteLiteral', 'autoHostRewrite', 'hostRewriteHeader', 'hostRewritePathRegex'].filter((k) => o[k] !== undefined && o[k] !== null && o[k] !== '');
  if (hostRewrites.length > 1) path.fail(`sets ${hostRewrites.join(' and ')}; only one may be set`);
  refuseOthers(o, (f) => path.at(f), ROUTE_ACTION);
  if (enumName(o.priority, path.at('priority'), ['DEFAULT', 'HIGH']) !== 'DEFAULT') path.at('priority').fail('only DEFAULT is supported by keymesh\'s proxy');

  let cluster: ClusterSpecifier;
  if (o.weightedClusters !== undefined && o.weightedClusters !== null) cluster = compileWeightedClusters(o.weightedClusters, path.at('weightedClusters'));
  else if (o.cluster !== undefined && o.cluster !== null && o.cluster !== '') cluster = { kind: 'cluster', name: str(o.cluster, path.at('cluster')) };
  else return path.fail('must set cluster or weightedClusters');

  const prefixRewrite = optText(o.prefixRewrite, path.at('prefixRewrite'));
  const regexRewrite = optObj(o.regexRewrite, path.at('regexRewrite'));
  if (prefixRewrite !== undefined && regexRewrite) path.fail('sets prefixRewrite and regexRewrite; only one may be set');
  let pathRewrite: PathRewrite | undefined;
  if (prefixRewrite !== undefined) pathRewrite = { kind: 'prefix', prefix: prefixRewrite };
  else if (regexRewrite) pathRewrite = compileRegexRewrite(regexRewrite, path.at('regexRewrite'));

  let hostRewrite: HostRewrite | undefined;
  const literal = optText(o.hostRewriteLiteral, path.at('hostRewriteLiteral'));
  if (literal !== undefined) hostRewrite = { kind: 'literal', host: literal };
  else if (wrappedBool(o.autoHostRewrite, path.at('autoHostRewrite'))) hostRewrite = { kind: 'auto' };

  const timeoutMs = durationMs(o.timeout, path.at('timeout')) ?? DEFAULT_ROUTE_TIMEOUT_MS;
  const idleTimeoutMs = durationMs(o.idleTimeout, path.at('idleTimeout'));
  const retryPolicy = optObj(o.retryPolicy, path.at('retryPolicy')) ? compileRetryPolicy(o.retryPolicy, path.at('retryPolicy')) : vhRetry;
  const notFound = enumName(o.clusterNotFoundResponseCode, path.at('clusterNotFoundResponseCode'), CLUSTER_NOT_FOUND) as (typeof CLUSTER_NOT_FOUND)[number];
  return { cluster, timeoutMs, idleTimeoutMs, retryPolicy, pathRewrite, hostRewrite, clusterNotFoundStatus: CLUSTER_NOT_FOUND_STATUS[notFound] };
}

function compileRegexRewrite(o: Json, path: Path): PathRewrite {
  refuseOthers(o, (f) => path.at(f), { pattern: 'read', substitution: 'read' });
  if (o.pattern === undefined || o.pattern === null) path.at('pattern').fail('is required');
  const pattern = compileRegexMatcher(o.pattern, path.at('pattern'));
  const text = optText(o.substitution, path.at('substitution')) ?? '';
  try {
    return { kind: 'regex', pattern, substitution: parseSubstitution(text, pattern.groups) };
  } catch (e) {
    if (e instanceof Re2SyntaxError) path.at('substitution').fail(e.message);
    throw e;
  }
}

function compileWeightedClusters(raw: unknown, path: Path): ClusterSpecifier {
  const o = obj(raw, path);
  refuseOthers(o, (f) => path.at(f), { clusters: 'read', totalWeight: 'read' });
  const clusters = list(o.clusters, path.at('clusters')).map((c, i): WeightedCluster => {
    const cpath = path.at('clusters').at(i);
    const co = obj(c, cpath);
    refuseOthers(co, (f) => cpath.at(f), { name: 'read', weight: 'read', hostRewriteLiteral: 'read', metadata: 'ignored' });
    const weight = wrapped(co.weight, cpath.at('weight')) ?? 0;
    if (!Number.isInteger(weight) || weight < 0 || weight > UINT32_MAX) cpath.at('weight').fail('must be a 32-bit unsigned integer');
    return { name: requiredStr(co.name, cpath.at('name')), weight, hostRewriteLiteral: optText(co.hostRewriteLiteral, cpath.at('hostRewriteLiteral')) };
  });
  if (clusters.length === 0) path.at('clusters').fail('must list at least one cluster');
  const totalWeight = clusters.reduce((sum, c) => sum + c.weight, 0);
  if (totalWeight === 0) path.at('clusters').fail('the sum of the weights must be greater than 0');
  if (totalWeight > UINT32_MAX) path.at('clusters').fail('the sum of the weights must fit in 32 bits');
  const declared = wrapped(o.totalWeight, path.at('totalWeight'));
  if (declared !== undefined && declared !== totalWeight) path.at('totalWeight').fail(`is ${declared} but the weights add up to ${totalWeight}`);
  return { kind: 'weighted', clusters, totalWeight };
}

function compileRetryPolicy(raw: unknown, path: Path): RetryPolicy {
  const o = obj(raw, path);
  refuseOthers(o, (f) => path.at(f), RETRY_POLICY);
  const retryOn: RetryOn[] = [];
  const text = o.retryOn === undefined || o.retryOn === null ? '' : str(o.retryOn, path.at('retryOn'));
  for (const token of text.split(',').map((t) => t.trim()).filter((t) => t !== '')) {
    if (!(RETRY_ON as readonly string[]).includes(token)) path.at('retryOn').fail(`${token} is not a retry condition keymesh's proxy knows (${RETRY_ON.join(', ')})`);
    if (!retryOn.includes(token as RetryOn)) retryOn.push(token as RetryOn);
  }
  const numRetries = wrapped(o.numRetries, path.at('numRetries')) ?? DEFAULT_NUM_RETRIES;
  if (!Number.isInteger(numRetries) || numRetries < 0 || numRetries > UINT32_MAX) path.at('numRetries').fail('must be a 32-bit unsigned integer');
  const retriableStatusCodes = list(o.retriableStatusCodes, path.at('retriableStatusCodes')).map((c, i) => {
    const code = num(c, path.at('retriableStatusCodes').at(i));
    if (!Number.isInteger(code) || code < 0 || code > UINT32_MAX) path.at('retriableStatusCodes').at(i).fail('must be a 32-bit unsigned integer');
    return code;
  });
  let backOff = { baseMs: DEFAULT_BACK_OFF_BASE_MS, maxMs: DEFAULT_BACK_OFF_BASE_MS * 10 };
  const b = optObj(o.retryBackOff, path.at('retryBackOff'));
  if (b) {
    const bpath = path.at('retryBackOff');
    refuseOthers(b, (f) => bpath.at(f), { baseInterval: 'read', maxInterval: 'read' });
    const baseMs = durationMs(b.baseInterval, bpath.at('baseInterval'));
    if (baseMs === undefined) bpath.at('baseInterval').fail('is required');
    if (baseMs! <= 0) bpath.at('baseInterval').fail('must be greater than 0');
    const maxMs = durationMs(b.maxInterval, bpath.at('maxInterval')) ?? baseMs! * 10;
    if (maxMs <= 0) bpath.at('maxInterval').fail('must be greater than 0');
    if (maxMs < baseMs!) bpath.at('maxInterval').fail('must not be less than baseInterval');
    backOff = { baseMs: baseMs!, maxMs };
  }
  return {
    retryOn,
    numRetries,
    perTryTimeoutMs: durationMs(o.perTryTimeout, path.at('perTryTimeout')) ?? 0,
    perTryIdleTimeoutMs: durationMs(o.perTryIdleTimeout, path.at('perTryIdleTimeout')) ?? 0,
    retriableStatusCodes,
    backOff,
  };
}

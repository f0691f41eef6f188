// One proxy's configuration as the xDS server publishes it: each resource encoded once, named, and checked for
// consistency (a route never points at a cluster the proxy does not have, an EDS cluster always has its
// assignment, a listener's RDS name always exists). Versions are content hashes, so the same configuration
// always has the same version, across restarts and across control-plane replicas.
import { createHash } from 'node:crypto';
import { decodeResource, encodeResource, TYPE_URLS, type XdsTypeUrl } from '../envoy/protos.ts';
import type { EnvoyConfig } from '../translate/api.ts';

/** The order a configuration change is pushed in (make before break): clusters and their endpoints first. */
export const PUSH_ORDER: readonly XdsTypeUrl[] = [
  TYPE_URLS.cluster,
  TYPE_URLS.clusterLoadAssignment,
  TYPE_URLS.listener,
  TYPE_URLS.routeConfiguration,
  TYPE_URLS.secret,
];

/** LDS and CDS are wildcard subscriptions (an empty resource_names means all); the others are by name. */
export function isWildcardType(typeUrl: string): boolean {
  return typeUrl === TYPE_URLS.listener || typeUrl === TYPE_URLS.cluster;
}

export interface EncodedResource {
  readonly name: string;
  /** sha256 of the canonical JSON (hex); versions hash these. */
  readonly hash: string;
  readonly bytes: Uint8Array;
}

export interface Snapshot {
  /** Resources by type URL (not secrets) and by name. */
  readonly resources: ReadonlyMap<string, ReadonlyMap<string, EncodedResource>>;
  readonly secretNames: readonly string[];
}

/** JSON with object keys sorted, so equal content always hashes equally. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'));
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The version of a response: a short hash over the names and contents of exactly the resources in it. */
export function versionOf(resources: readonly EncodedResource[]): string {
  const sorted = [...resources].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return sha256Hex(sorted.map((r) => `${r.name}\n${r.hash}`).join('\n')).slice(0, 16);
}

export function encodeNamed(typeUrl: string, name: string, resource: object): EncodedResource {
  return { name, hash: sha256Hex(canonicalJson(resource)), bytes: encodeResource(typeUrl, resource) };
}

/** The first path where `b` differs from `a` (JSON values), or null when they are equal. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | null {
  if (canonicalJson(a) === canonicalJson(b)) return null;
  if (isObj(a) && isObj(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (a[k] === undefined && b[k] === undefined) continue;
      const d = firstDifference(a[k], b[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
  }
  return path || '(top level)';
}

/**
 * Encodes a resource and checks that decoding gives it back: protobufjs drops unknown fields and maps unknown
 * enum names silently, and a dropped transport socket would mean plaintext. Throws naming the first difference.
 */
export function encodeChecked(typeUrl: string, name: string, resource: object): EncodedResource {
  const canonical = canonicalJson(resource);
  const hash = sha256Hex(canonical);
  // Proxies of one mesh share many resources (a backend's cluster, identical listeners): the same content is
  // encoded and checked once. Keyed by type, name and content hash, so a hit is the same bytes and the same check.
  // Secrets (private keys) are not kept here.
  const cacheable = typeUrl !== TYPE_URLS.secret;
  const key = `${typeUrl}\n${name}\n${hash}`;
  const cached = cacheable ? checkedCache.get(key) : undefined;
  if (cached) {
    checkedCache.delete(key); // most recently used last
    checkedCache.set(key, cached);
    return cached;
  }
  const bytes = encodeResource(typeUrl, resource);
  const decoded = decodeResource(typeUrl, bytes);
  if (canonicalJson(decoded) !== canonical) {
    const diff = firstDifference(resource, decoded) ?? '(top level)';
    throw new Error(`${diff} does not survive encoding (a field, enum value or Any type Envoy does not know)`);
  }
  const encoded: EncodedResource = { name, hash, bytes };
  if (cacheable) {
    if (checkedCache.size >= CHECKED_CACHE_MAX) checkedCache.delete(checkedCache.keys().next().value!);
    checkedCache.set(key, encoded);
  }
  return encoded;
}

/** Encoded, checked resources by type, name and content hash; least recently used first out when full. */
const checkedCache = new Map<string, EncodedResource>();
const CHECKED_CACHE_MAX = 10_000;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

/** Clusters a RouteConfiguration's routes send to. */
function routeClusters(routeConfig: unknown, out: Set<string>): void {
  if (!isObj(routeConfig)) return;
  for (const vh of list(routeConfig.virtualHosts)) {
    if (!isObj(vh)) continue;
    for (const r of list(vh.routes)) {
      if (!isObj(r) || !isObj(r.route)) continue;
      const c = str(r.route.cluster);
      if (c) out.add(c);
      if (isObj(r.route.weightedClusters)) for (const w of list(r.route.weightedClusters.clusters)) if (isObj(w) && str(w.name)) out.add(w.name as string);
    }
  }
}

/** What the listeners refer to: RDS names, and clusters (TCP proxies, inline route configurations). */
function listenerRefs(listener: Obj, routeNames: Set<string>, clusters: Set<string>): void {
  const chains = [...list(listener.filterChains), ...(isObj(listener.defaultFilterChain) ? [listener.defaultFilterChain] : [])];
  for (const chain of chains) {
    if (!isObj(chain)) continue;
    for (const f of list(chain.filters)) {
      if (!isObj(f) || !isObj(f.typedConfig)) continue;
      const tc = f.typedConfig;
      if (tc['@type'] === HCM) {
        if (isObj(tc.rds) && str(tc.rds.routeConfigName)) routeNames.add(tc.rds.routeConfigName as string);
        routeClusters(tc.routeConfig, clusters);
      } else if (tc['@type'] === TCP_PROXY) {
        if (str(tc.cluster)) clusters.add(tc.cluster as string);
        if (isObj(tc.weightedClusters)) for (const w of list(tc.weightedClusters.clusters)) if (isObj(w) && str(w.name)) clusters.add(w.name as string);
      }
    }
  }
}

function isEds(cluster: Obj): boolean {
  return cluster.type === 'EDS';
}

/** Every reason `config` must not be published; empty when it is consistent. */
export function consistencyProblems(config: EnvoyConfig): string[] {
  const problems: string[] = [];
  const names = (items: readonly Obj[], key: string, what: string): Set<string> => {
    const seen = new Set<string>();
    for (const item of items) {
      const n = str(item[key]);
      if (!n) problems.push(`a ${what} has no ${key}`);
      else if (seen.has(n)) problems.push(`${what} ${n} appears twice`);
      else seen.add(n);
    }
    return seen;
  };
  const clusters = names(config.clusters, 'name', 'cluster');
  const assignments = names(config.clusterLoadAssignments, 'clusterName', 'cluster load assignment');
  const routeConfigs = names(config.routeConfigurations, 'name', 'route configuration');
  names(config.listeners, 'name', 'listener');

  for (const c of config.clusters) {
    if (!isEds(c)) continue;
    const serviceName = (isObj(c.edsClusterConfig) ? str(c.edsClusterConfig.serviceName) : undefined) ?? str(c.name);
    if (serviceName && !assignments.has(serviceName)) problems.push(`EDS cluster ${String(c.name)} has no cluster load assignment ${serviceName}`);
  }
  const wantedRoutes = new Set<string>();
  const wantedClusters = new Set<string>();
  for (const l of config.listeners) listenerRefs(l, wantedRoutes, wantedClusters);
  for (const rc of config.routeConfigurations) routeClusters(rc, wantedClusters);
  for (const r of [...wantedRoutes].sort()) if (!routeConfigs.has(r)) problems.push(`a listener refers to route configuration ${r}, which does not exist`);
  for (const c of [...wantedClusters].sort()) if (!clusters.has(c)) problems.push(`a route refers to cluster ${c}, which does not exist`);
  return problems;
}

export type BuildResult = { ok: true; snapshot: Snapshot } | { ok: false; problems: string[] };

/** Checks and encodes a configuration; a resource Envoy's protos cannot encode is a problem too. */
export function buildSnapshot(config: EnvoyConfig): BuildResult {
  const problems = consistencyProblems(config);
  if (problems.length) return { ok: false, problems };
  const resources = new Map<string, Map<string, EncodedResource>>();
  const add = (typeUrl: string, items: readonly Obj[], key: string): void => {
    const byName = new Map<string, EncodedResource>();
    for (const item of items) {
      const name = item[key] as string;
      try {
        byName.set(name, encodeChecked(typeUrl, name, item));
      } catch (e) {
        problems.push(`${typeUrl.slice(typeUrl.lastIndexOf('.') + 1)} ${name} cannot be encoded: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    resources.set(typeUrl, byName);
  };
  add(TYPE_URLS.cluster, config.clusters, 'name');
  add(TYPE_URLS.clusterLoadAssignment, config.clusterLoadAssignments, 'clusterName');
  add(TYPE_URLS.listener, config.listeners, 'name');
  add(TYPE_URLS.routeConfiguration, config.routeConfigurations, 'name');
  if (problems.length) return { ok: false, problems };
  return { ok: true, snapshot: { resources, secretNames: config.secrets.map((s) => s.name) } };
}

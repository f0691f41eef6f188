// Envoy Listeners (protobufjs object form) as the proxy's listener specs: where to bind, the listener filters
// (tls_inspector, http_inspector, original_dst), and the filter chains with their match, optional TLS and one
// network filter (HTTP connection manager or TCP proxy). Pure; an unsupported setting is a ProxyConfigError
// naming the field, so the proxy NACKs rather than running something else than was configured.
import { isIP } from 'node:net';
import { durationMs, list, num, obj, optObj, Path, str, typed, type Json } from '../resources/values.ts';
import { compileDownstreamTls, secretNames, type DownstreamTls } from '../tls/compile.ts';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';
const LISTENER_FILTERS: Record<string, string> = {
  'envoy.filters.listener.tls_inspector': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  'envoy.filters.listener.http_inspector': 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  'envoy.filters.listener.original_dst': 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
};

export interface AccessLogSpec {
  readonly path: string;
  /** Envoy command operators (`%START_TIME%` ...); undefined: Envoy's default format. */
  readonly text?: string;
  readonly json?: Readonly<Record<string, string>>;
}

export interface HttpFilterSpec {
  readonly kind: 'http';
  readonly statPrefix: string;
  readonly codec: 'AUTO' | 'HTTP1' | 'HTTP2';
  readonly routeConfigName: string;
  readonly accessLogs: readonly AccessLogSpec[];
  /** upgrade_configs: the upgrade types (lower case) passed through, e.g. websocket. */
  readonly upgrades: readonly string[];
}

export interface TcpFilterSpec {
  readonly kind: 'tcp';
  readonly statPrefix: string;
  readonly clusters: readonly { readonly name: string; readonly weight: number }[];
  readonly idleTimeoutMs: number | undefined;
  readonly accessLogs: readonly AccessLogSpec[];
}

export interface ChainMatch {
  readonly destinationPort?: number;
  readonly serverNames?: readonly string[];
  readonly transportProtocol?: 'tls' | 'raw_buffer';
  readonly applicationProtocols?: readonly string[];
}

export interface FilterChainSpec {
  readonly name: string;
  readonly match: ChainMatch;
  readonly tls: DownstreamTls | undefined;
  readonly filter: HttpFilterSpec | TcpFilterSpec;
}

export interface ListenerFilterSpec {
  readonly name: 'tls_inspector' | 'http_inspector' | 'original_dst';
  /** Destination port ranges [start, end) for which the filter is skipped. */
  readonly disabledPorts: readonly (readonly [number, number])[];
}

export interface ListenerSpec {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** `address.socketAddress.address` and port as Envoy names listener stats: `listener.<address>_<port>.`. */
  readonly statPrefix: string;
  readonly listenerFilters: readonly ListenerFilterSpec[];
  readonly continueOnListenerFiltersTimeout: boolean;
  readonly filterChains: readonly FilterChainSpec[];
}

const LISTENER_FIELDS = new Set(['name', 'address', 'filterChains', 'listenerFilters', 'continueOnListenerFiltersTimeout', 'trafficDirection']);

export function compileListener(resource: Json): ListenerSpec {
  const name = str(resource.name, new Path('listener'));
  const path = new Path(`listener ${name}`);
  for (const k of Object.keys(resource)) if (!LISTENER_FIELDS.has(k)) path.at(k).fail("is not supported by keymesh's proxy");
  const sa = obj(obj(resource.address, path.at('address')).socketAddress, path.at('address').at('socketAddress'));
  const address = str(sa.address, path.at('address.socketAddress.address'));
  if (isIP(address) === 0) path.at('address.socketAddress.address').fail(`${address} is not an IP address`);
  const port = num(sa.portValue, path.at('address.socketAddress.portValue'));
  if (!Number.isInteger(port) || port < 1 || port > 65535) path.at('address.socketAddress.portValue').fail(`${port} is not a port`);
  const listenerFilters = list(resource.listenerFilters, path.at('listenerFilters')).map((f, i) => listenerFilter(f, path.at('listenerFilters').at(i)));
  const chains = list(resource.filterChains, path.at('filterChains')).map((c, i) => filterChain(c, path.at('filterChains').at(i)));
  if (chains.length === 0) path.at('filterChains').fail('a listener needs at least one filter chain');
  const inspects = (n: string) => listenerFilters.some((f) => f.name === n);
  chains.forEach((c, i) => {
    const p = path.at('filterChains').at(i).at('filterChainMatch');
    if ((c.match.transportProtocol !== undefined || c.match.serverNames) && !inspects('tls_inspector')) p.fail('matching on TLS or server names needs the tls_inspector listener filter');
    if (c.match.applicationProtocols && !inspects('tls_inspector') && !inspects('http_inspector')) p.fail('matching on application protocols needs tls_inspector or http_inspector');
  });
  return {
    name, address, port, statPrefix: `${address}_${port}`, listenerFilters,
    continueOnListenerFiltersTimeout: resource.continueOnListenerFiltersTimeout === true, filterChains: chains,
  };
}

function listenerFilter(v: unknown, path: Path): ListenerFilterSpec {
  const f = obj(v, path);
  const name = str(f.name, path.at('name'));
  const type = LISTENER_FILTERS[name];
  if (!type) path.at('name').fail(`listener filter ${name} is not supported (supported: ${Object.keys(LISTENER_FILTERS).join(', ')})`);
  typed(f.typedConfig, path.at('typedConfig'), [type!]);
  return { name: name.slice('envoy.filters.listener.'.length) as ListenerFilterSpec['name'], disabledPorts: disabledPorts(f.filterDisabled, path.at('filterDisabled')) };
}

/** A filter_disabled ListenerFilterChainMatchPredicate: destination port ranges, possibly OR-ed. */
function disabledPorts(v: unknown, path: Path): [number, number][] {
  const p = optObj(v, path);
  if (!p) return [];
  if (p.destinationPortRange !== undefined) {
    const r = obj(p.destinationPortRange, path.at('destinationPortRange'));
    return [[num(r.start, path.at('destinationPortRange.start')), num(r.end, path.at('destinationPortRange.end'))]];
  }
  if (p.orMatch !== undefined) {
    return list(obj(p.orMatch, path.at('orMatch')).rules, path.at('orMatch.rules')).flatMap((r, i) => disabledPorts(r, path.at('orMatch.rules').at(i)));
  }
  return path.fail('only destinationPortRange and orMatch predicates are supported');
}

const MATCH_FIELDS = new Set(['destinationPort', 'serverNames', 'transportProtocol', 'applicationProtocols']);

function chainMatch(v: unknown, path: Path): ChainMatch {
  const m = optObj(v, path);
  if (!m) return {};
  for (const k of Object.keys(m)) if (!MATCH_FIELDS.has(k)) path.at(k).fail("is not supported by keymesh's proxy");
  const out: { -readonly [K in keyof ChainMatch]: ChainMatch[K] } = {};
  if (m.destinationPort !== undefined) out.destinationPort = num(obj(m.destinationPort, path.at('destinationPort')).value, path.at('destinationPort.value'));
  const names = list(m.serverNames, path.at('serverNames')).map((n, i) => str(n, path.at('serverNames').at(i)).toLowerCase());
  if (names.length > 0) out.serverNames = names;
  if (m.transportProtocol !== undefined) {
    const t = str(m.transportProtocol, path.at('transportProtocol'));
    if (t !== 'tls' && t !== 'raw_buffer') path.at('transportProtocol').fail(`${t} is not tls or raw_buffer`);
    out.transportProtocol = t as 'tls' | 'raw_buffer';
  }
  const alpn = list(m.applicationProtocols, path.at('applicationProtocols')).map((n, i) => str(n, path.at('applicationProtocols').at(i)));
  if (alpn.length > 0) out.applicationProtocols = alpn;
  return out;
}

function filterChain(v: unknown, path: Path): FilterChainSpec {
  const c = obj(v, path);
  const name = typeof c.name === 'string' ? c.name : String(path);
  const filters = list(c.filters, path.at('filters'));
  if (filters.length !== 1) path.at('filters').fail('keymesh\'s proxy runs exactly one network filter per chain (http_connection_manager or tcp_proxy)');
  const tls = c.transportSocket === undefined ? undefined : compileDownstreamTls(obj(c.transportSocket, path.at('transportSocket')), path.at('transportSocket'));
  return { name, match: chainMatch(c.filterChainMatch, path.at('filterChainMatch')), tls, filter: networkFilter(filters[0], path.at('filters').at(0)) };
}

function networkFilter(v: unknown, path: Path): HttpFilterSpec | TcpFilterSpec {
  const f = obj(v, path);
  const name = str(f.name, path.at('name'));
  const tp = path.at('typedConfig');
  if (name === 'envoy.filters.network.http_connection_manager') {
    const cfg = typed(f.typedConfig, tp, [HCM]);
    for (const k of Object.keys(cfg)) if (!['@type', 'statPrefix', 'codecType', 'rds', 'httpFilters', 'accessLog', 'upgradeConfigs'].includes(k)) tp.at(k).fail("is not supported by keymesh's proxy");
    const codec = cfg.codecType === undefined ? 'AUTO' : str(cfg.codecType, tp.at('codecType'));
    if (!['AUTO', 'HTTP1', 'HTTP2'].includes(codec)) tp.at('codecType').fail(`codec ${codec} is not supported`);
    const rds = obj(cfg.rds, tp.at('rds'));
    if (obj(rds.configSource, tp.at('rds.configSource')).ads === undefined) tp.at('rds.configSource').fail('route configurations must come over ADS');
    const httpFilters = list(cfg.httpFilters, tp.at('httpFilters'));
    httpFilters.forEach((h, i) => {
      const hp = tp.at('httpFilters').at(i);
      const hf = obj(h, hp);
      if (hf.name !== 'envoy.filters.http.router') hp.at('name').fail(`HTTP filter ${String(hf.name)} is not supported (only envoy.filters.http.router)`);
      typed(hf.typedConfig, hp.at('typedConfig'), [ROUTER]);
    });
    if (httpFilters.length !== 1) tp.at('httpFilters').fail('needs exactly the router filter');
    return {
      kind: 'http', statPrefix: str(cfg.statPrefix, tp.at('statPrefix')), codec: codec as HttpFilterSpec['codec'],
      routeConfigName: str(rds.routeConfigName, tp.at('rds.routeConfigName')), accessLogs: accessLogs(cfg.accessLog, tp.at('accessLog')),
      upgrades: upgradeTypes(cfg.upgradeConfigs, tp.at('upgradeConfigs')),
    };
  }
  if (name === 'envoy.filters.network.tcp_proxy') {
    const cfg = typed(f.typedConfig, tp, [TCP_PROXY]);
    for (const k of Object.keys(cfg)) if (!['@type', 'statPrefix', 'cluster', 'weightedClusters', 'idleTimeout', 'accessLog'].includes(k)) tp.at(k).fail("is not supported by keymesh's proxy");
    let clusters: { name: string; weight: number }[];
    if (typeof cfg.cluster === 'string') clusters = [{ name: cfg.cluster, weight: 1 }];
    else {
      const wp = tp.at('weightedClusters.clusters');
      clusters = list(obj(cfg.weightedClusters, tp.at('weightedClusters')).clusters, wp).map((w, i) => {
        const o = obj(w, wp.at(i));
        return { name: str(o.name, wp.at(i).at('name')), weight: num(o.weight, wp.at(i).at('weight')) };
      });
      if (clusters.length === 0 || clusters.every((c) => c.weight <= 0)) tp.fail('needs a cluster or weighted clusters with a positive weight');
    }
    return {
      kind: 'tcp', statPrefix: str(cfg.statPrefix, tp.at('statPrefix')), clusters,
      idleTimeoutMs: durationMs(cfg.idleTimeout, tp.at('idleTimeout')), accessLogs: accessLogs(cfg.accessLog, tp.at('accessLog')),
    };
  }
  return path.at('name').fail(`network filter ${name} is not supported (only http_connection_manager and tcp_proxy)`);
}

/** HttpConnectionManager.upgrade_configs: the enabled upgrade types, lower case (Envoy compares them so). */
function upgradeTypes(v: unknown, path: Path): string[] {
  const types: string[] = [];
  list(v, path).forEach((u, i) => {
    const p = path.at(i);
    const c = obj(u, p);
    for (const k of Object.keys(c)) if (!['upgradeType', 'enabled'].includes(k)) p.at(k).fail("is not supported by keymesh's proxy");
    const type = str(c.upgradeType, p.at('upgradeType')).toLowerCase();
    if (type === 'connect') p.at('upgradeType').fail('CONNECT is not supported by keymesh\'s proxy');
    const enabled = c.enabled === undefined ? true : obj(c.enabled, p.at('enabled')).value !== false;
    if (enabled && !types.includes(type)) types.push(type);
  });
  return types;
}

function accessLogs(v: unknown, path: Path): AccessLogSpec[] {
  return list(v, path).map((l, i) => {
    const p = path.at(i);
    const cfg = typed(obj(l, p).typedConfig, p.at('typedConfig'), [FILE_LOG]);
    const logPath = str(cfg.path, p.at('typedConfig.path'));
    const format = optObj(cfg.logFormat, p.at('typedConfig.logFormat'));
    if (!format) return { path: logPath };
    if (format.textFormatSource !== undefined) return { path: logPath, text: str(obj(format.textFormatSource, p.at('logFormat.textFormatSource')).inlineString, p.at('logFormat.textFormatSource.inlineString')) };
    if (format.jsonFormat !== undefined) {
      const fields = obj(obj(format.jsonFormat, p.at('logFormat.jsonFormat')).fields ?? {}, p.at('logFormat.jsonFormat.fields'));
      const json: Record<string, string> = {};
      for (const [k, fv] of Object.entries(fields)) json[k] = str(obj(fv, p.at(`logFormat.jsonFormat.fields.${k}`)).stringValue, p.at(`logFormat.jsonFormat.fields.${k}`));
      return { path: logPath, json };
    }
    return p.at('typedConfig.logFormat').fail('only text and JSON formats are supported');
  });
}

/** Secrets (over ADS) and route configurations this listener needs before it can serve. */
export function listenerNeeds(l: ListenerSpec): { secrets: string[]; routeConfigurations: string[] } {
  const secrets = new Set<string>();
  const routes = new Set<string>();
  for (const c of l.filterChains) {
    if (c.tls) for (const s of secretNames(c.tls)) secrets.add(s);
    if (c.filter.kind === 'http') routes.add(c.filter.routeConfigName);
  }
  return { secrets: [...secrets].sort(), routeConfigurations: [...routes].sort() };
}

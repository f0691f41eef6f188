// App Mesh's semantic rules: what a spec must satisfy beyond its shape (which validate.ts has already
// checked). Rules tied to one shape wherever it appears are a table keyed by shape name, applied by a walk
// over the model; rules that need the whole spec or other resources (routers, target nodes, sibling routes)
// are per kind. Pure: other resources come in through RuleContext. Paths start with `spec.`.
import type { Violation } from '../errors/index.ts';
import { isIP } from 'node:net';
import { isJsonObject, type JsonObject, type JsonValue } from './json.ts';
import { KINDS, type KindName } from './kinds.ts';
import { shape } from './model.ts';
import { quote } from './validate.ts';

export interface RuleContext {
  /** Spec of another resource of this mesh, or undefined if absent. parent is '' unless the kind has one. */
  spec(kind: KindName, name: string, parent?: string): JsonObject | undefined;
  /** Names and specs of the children of a parent: routes of a router, gateway routes of a gateway. */
  children(kind: 'route' | 'gatewayRoute', parent: string): { name: string; spec: JsonObject }[];
}

type Out = Violation[];

// JSON null counts as "not set" (validate.ts accepts it for optional members), so every accessor maps it away.
const obj = (v: JsonValue | undefined): JsonObject | undefined => (isJsonObject(v) ? v : undefined);
const list = (v: JsonValue | undefined): JsonValue[] => (Array.isArray(v) ? v : []);
const str = (v: JsonValue | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const int = (v: JsonValue | undefined): number | undefined => (typeof v === 'number' ? v : undefined);
const has = (o: JsonObject | undefined, k: string): boolean => o !== undefined && o[k] !== undefined && o[k] !== null;
/** "an http listener", "a grpc listener". */
const withArticle = (word: string) => `${/^http/.test(word) ? 'an' : 'a'} ${word}`;

/** Route kinds and the listener protocol each one needs. */
const ROUTE_PROTOCOL: Record<string, string> = { httpRoute: 'http', http2Route: 'http2', grpcRoute: 'grpc', tcpRoute: 'tcp' };
const ROUTE_TYPES = ['httpRoute', 'http2Route', 'grpcRoute', 'tcpRoute'];
const GATEWAY_ROUTE_TYPES = ['httpRoute', 'http2Route', 'grpcRoute'];

const ACM_CERTIFICATE_ARN = /^arn:aws(-[a-z]+)*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/;
const ACM_PCA_ARN = /^arn:aws(-[a-z]+)*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority\/[A-Za-z0-9-]+$/;
const HOSTNAME_LABEL = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
/** The values the model documents for HttpRetryPolicyEvent (a free string in the model). */
const HTTP_RETRY_EVENTS = ['server-error', 'gateway-error', 'client-error', 'stream-error'];
const RESERVED_PREFIXES = ['/aws-appmesh', '/aws-app-mesh'];
const RESERVED_GRPC_SERVICES = ['aws.appmesh', 'aws.app-mesh'];

// ---------------------------------------------------------------------------------------------------------
// Shape rules: apply wherever the shape occurs in any spec.

type ShapeRule = (v: JsonObject, path: string, out: Out) => void;
type ValueRule = (v: JsonValue, path: string, out: Out) => void;

const SHAPE_RULES: Record<string, ShapeRule> = {
  Listener: listenerRules,
  VirtualGatewayListener: listenerRules,
  ListenerTlsAcmCertificate: acmCertificate,
  VirtualGatewayListenerTlsAcmCertificate: acmCertificate,
  TlsValidationContextAcmTrust: acmTrust,
  VirtualGatewayTlsValidationContextAcmTrust: acmTrust,
  SubjectAlternativeNameMatchers: (v, path, out) => {
    if (list(v.exact).length === 0) out.push({ path: `${path}.exact`, message: 'must list at least one subject alternative name' });
  },
  DnsServiceDiscovery: (v, path, out) => {
    const h = str(v.hostname);
    if (h !== undefined) hostname(h, `${path}.hostname`, out);
  },
  VirtualServiceBackend: (v, path, out) => {
    if (str(v.virtualServiceName) === '') out.push({ path: `${path}.virtualServiceName`, message: 'must not be empty' });
  },
  Duration: (v, path, out) => {
    if (has(v, 'value') && !has(v, 'unit')) out.push({ path: `${path}.unit`, message: 'is required when value is set; use "s" or "ms"' });
  },
  MatchRange: (v, path, out) => {
    const start = int(v.start);
    const end = int(v.end);
    if (start !== undefined && end !== undefined && start >= end) {
      out.push({ path, message: `end must be greater than start (start is inclusive, end exclusive); got start ${start}, end ${end}` });
    }
  },
  HttpQueryParameter: (v, path, out) => {
    if (!has(v, 'name') || str(v.name) === '') out.push({ path: `${path}.name`, message: 'must not be empty' });
    if (has(v, 'match') && !has(obj(v.match), 'exact')) {
      out.push({ path: `${path}.match`, message: 'must set exact; omit match to match on the presence of the parameter' });
    }
  },
  HttpRetryPolicy: (v, path, out) => retryEvents(v, path, ['httpRetryEvents', 'tcpRetryEvents'], out),
  GrpcRetryPolicy: (v, path, out) => retryEvents(v, path, ['grpcRetryEvents', 'httpRetryEvents', 'tcpRetryEvents'], out),
  HttpPathMatch: (v, path, out) => exactlyOne(v, path, ['exact', 'regex'], out),
  GatewayRouteHostnameMatch: (v, path, out) => exactlyOne(v, path, ['exact', 'suffix'], out),
};

/** Rules on plain values (strings, lists), keyed by shape name too. */
const VALUE_RULES: Record<string, ValueRule> = {
  // An SDS secret name is the only way to find the secret; the model leaves it unconstrained.
  SdsSecretName: nonEmpty,
  VirtualGatewaySdsSecretName: nonEmpty,
  PortSet: (v, path, out) => duplicates(list(v), path, 'port', out),
  HttpRetryPolicyEvent: (v, path, out) => {
    if (typeof v === 'string' && !HTTP_RETRY_EVENTS.includes(v)) out.push({ path, message: `must be one of ${HTTP_RETRY_EVENTS.join(', ')}; got ${quote(v)}` });
  },
};

function nonEmpty(v: JsonValue, path: string, out: Out): void {
  if (v === '') out.push({ path, message: 'must not be empty' });
}

/** Walks `value` along the model shape `shapeName`, applying the shape and value rules. */
function walk(shapeName: string, value: JsonValue | undefined, path: string, out: Out): void {
  if (value === undefined || value === null) return;
  const s = shape(shapeName);
  VALUE_RULES[shapeName]?.(value, path, out);
  if (s.type === 'structure' && isJsonObject(value)) {
    SHAPE_RULES[shapeName]?.(value, path, out);
    for (const [name, m] of Object.entries(s.members ?? {})) walk(m.shape, value[name], `${path}.${name}`, out);
  } else if (s.type === 'list' && Array.isArray(value)) {
    value.forEach((item, i) => walk(s.member!.shape, item, `${path}[${i}]`, out));
  }
}

function exactlyOne(v: JsonObject, path: string, keys: string[], out: Out): void {
  const set = keys.filter((k) => has(v, k));
  if (set.length !== 1) out.push({ path, message: `must set exactly one of ${keys.join(', ')}; found ${set.length === 0 ? 'none' : set.join(', ')}` });
}

function duplicates(items: JsonValue[], path: string, what: string, out: Out): void {
  const seen = new Map<JsonValue, number>();
  items.forEach((item, i) => {
    const first = seen.get(item);
    if (first !== undefined) out.push({ path: `${path}[${i}]`, message: `${what} ${String(item)} is listed twice (also at ${path}[${first}])` });
    else seen.set(item, i);
  });
}

/** Listener rules shared by virtual nodes and virtual gateways. */
function listenerRules(l: JsonObject, path: string, out: Out): void {
  const pm = obj(l.portMapping);
  const protocol = str(pm?.protocol);
  const port = int(pm?.port);
  if (protocol === undefined || port === undefined) return;
  // Connection pools and timeouts are unions keyed by protocol; the key must be the listener's protocol.
  for (const [member, what] of [['connectionPool', 'connection pool'], ['timeout', 'timeout']] as const) {
    const key = Object.keys(obj(l[member]) ?? {}).find((k) => has(obj(l[member]), k));
    if (key !== undefined && key !== protocol) {
      out.push({ path: `${path}.${member}`, message: `${withArticle(key)} ${what} does not fit this ${protocol} listener; use ${member}.${protocol} to match portMapping.protocol` });
    }
  }
  const hc = obj(l.healthCheck);
  if (hc) {
    const hcPort = int(hc.port);
    if (hcPort !== undefined && hcPort !== port) out.push({ path: `${path}.healthCheck.port`, message: `must equal the listener port ${port}; got ${hcPort}` });
    const hcProtocol = str(hc.protocol);
    if ((hcProtocol === 'http' || hcProtocol === 'http2') && !str(hc.path)) {
      out.push({ path: `${path}.healthCheck.path`, message: `is required for an ${hcProtocol} health check (the path to request, such as "/ping")` });
    }
    const timeout = int(hc.timeoutMillis);
    const interval = int(hc.intervalMillis);
    if (timeout !== undefined && interval !== undefined && timeout > interval) {
      out.push({ path: `${path}.healthCheck.timeoutMillis`, message: `must not exceed intervalMillis (${interval}); got ${timeout}` });
    }
  }
}

function acmCertificate(v: JsonObject, path: string, out: Out): void {
  const arn = str(v.certificateArn);
  if (arn !== undefined && !ACM_CERTIFICATE_ARN.test(arn)) {
    out.push({ path: `${path}.certificateArn`, message: `must be an ACM certificate ARN (arn:aws:acm:<region>:<12-digit account>:certificate/<id>); got ${quote(arn)}` });
  }
}

function acmTrust(v: JsonObject, path: string, out: Out): void {
  list(v.certificateAuthorityArns).forEach((arn, i) => {
    if (typeof arn === 'string' && !ACM_PCA_ARN.test(arn)) {
      out.push({
        path: `${path}.certificateAuthorityArns[${i}]`,
        message: `must be an ACM Private CA ARN (arn:aws:acm-pca:<region>:<12-digit account>:certificate-authority/<id>); got ${quote(arn)}`,
      });
    }
  });
}

function hostname(h: string, path: string, out: Out): void {
  if (h === '') return void out.push({ path, message: 'must not be empty' });
  if (isIP(h) !== 0) return;
  const name = h.endsWith('.') ? h.slice(0, -1) : h;
  if (name.length > 253 || !name.split('.').every((label) => HOSTNAME_LABEL.test(label))) {
    out.push({ path, message: `must be a DNS hostname (dot-separated labels of letters, digits, hyphens and underscores, at most 63 characters each); got ${quote(h)}` });
  }
}

function retryEvents(v: JsonObject, path: string, keys: string[], out: Out): void {
  if (!keys.some((k) => list(v[k]).length > 0)) out.push({ path, message: `must list at least one retry event in ${keys.join(' or ')}` });
}

// ---------------------------------------------------------------------------------------------------------
// Kind rules.

interface PortInfo { port: number; protocol: string }

function listenerPorts(spec: JsonObject | undefined): PortInfo[] {
  return list(spec?.listeners).flatMap((l) => {
    const pm = obj(obj(l)?.portMapping);
    const port = int(pm?.port);
    const protocol = str(pm?.protocol);
    return port !== undefined && protocol !== undefined ? [{ port, protocol }] : [];
  });
}

const describePorts = (ports: PortInfo[]) => ports.map((p) => `${p.port} (${p.protocol})`).join(', ');

/** Listener ports are unique within a node, router or gateway: each becomes its own Envoy listener. */
function uniqueListenerPorts(spec: JsonObject, what: string, out: Out): void {
  const seen = new Map<number, number>();
  list(spec.listeners).forEach((l, i) => {
    const port = int(obj(obj(l)?.portMapping)?.port);
    if (port === undefined) return;
    const first = seen.get(port);
    if (first !== undefined) {
      out.push({ path: `spec.listeners[${i}].portMapping.port`, message: `port ${port} is already used by spec.listeners[${first}]; each listener of a ${what} needs its own port` });
    } else {
      seen.set(port, i);
    }
  });
}

/** The route type members set in a route or gateway route spec. */
const routeTypesSet = (spec: JsonObject, types: string[]) => types.filter((t) => has(spec, t));

function routeMatchPort(spec: JsonObject, types: string[]): number | undefined {
  const type = routeTypesSet(spec, types)[0];
  return type === undefined ? undefined : int(obj(obj(spec[type])?.match)?.port);
}

function virtualNodeRules(spec: JsonObject, out: Out): void {
  if (list(spec.listeners).length > 0 && !has(spec, 'serviceDiscovery')) {
    out.push({ path: 'spec.serviceDiscovery', message: 'is required when the virtual node has listeners (if you specify a listener, you must specify service discovery)' });
  }
  uniqueListenerPorts(spec, 'virtual node', out);
  const seen = new Map<string, number>();
  list(spec.backends).forEach((b, i) => {
    const name = str(obj(obj(b)?.virtualService)?.virtualServiceName);
    if (name === undefined) return;
    const first = seen.get(name);
    if (first !== undefined) {
      out.push({ path: `spec.backends[${i}].virtualService.virtualServiceName`, message: `virtual service ${quote(name)} is already a backend (spec.backends[${first}]); list each backend once` });
    } else {
      seen.set(name, i);
    }
  });
}

/** How routers and gateways name themselves and their children in messages (modelled on App Mesh's). */
const PARENTS = {
  virtualRouter: { child: 'route', types: ROUTE_TYPES, title: 'Virtual Router', children: 'Routes', childTitle: 'Route' },
  virtualGateway: { child: 'gatewayRoute', types: GATEWAY_ROUTE_TYPES, title: 'Virtual Gateway', children: 'Gateway Routes', childTitle: 'Gateway Route' },
} as const;

/**
 * A router's or gateway's listeners must keep fitting its existing routes: with several listeners every route
 * needs a port match, and a protocol change or a removed port must not strand routes.
 */
function existingRoutesFit(kind: 'virtualRouter' | 'virtualGateway', spec: JsonObject, ctx: RuleContext, name: string, out: Out): void {
  const p = PARENTS[kind];
  const listeners = listenerPorts(spec);
  if (listeners.length === 0) return;
  const routes = [...ctx.children(p.child, name)].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
  const names = (rs: { name: string }[]) => `[${rs.slice(0, 5).map((r) => r.name).join(', ')}]`;
  if (listeners.length > 1) {
    const missing = routes.filter((r) => routeMatchPort(r.spec, p.types) === undefined);
    if (missing.length > 0) {
      out.push({
        path: 'spec.listeners',
        message: `All ${p.children} for this ${p.title} must define a port match before adding multiple listeners to this ${p.title}. ${missing.length} ${p.childTitle}(s) are missing port. Listing up to 5 route names: ${names(missing)}`,
      });
    }
  }
  for (const type of p.types) {
    const protocol = ROUTE_PROTOCOL[type]!;
    const stranded = routes.filter((r) => has(r.spec, type) && !listeners.some((l) => l.protocol === protocol));
    if (stranded.length > 0) {
      out.push({
        path: 'spec.listeners',
        message: `no listener has protocol ${protocol}, but ${stranded.length} ${type} route(s) need one: ${names(stranded)}; change or delete those routes first`,
      });
    }
  }
  const portless = routes.filter((r) => {
    const port = routeMatchPort(r.spec, p.types);
    return port !== undefined && !listeners.some((l) => l.port === port);
  });
  if (portless.length > 0) {
    out.push({ path: 'spec.listeners', message: `${portless.length} route(s) match a port that no listener has (listeners: ${describePorts(listeners)}): ${names(portless)}; change or delete those routes first` });
  }
}

/** The route type must fit the parent's listeners; with several listeners, match.port picks one. */
function parentListenerRules(type: string, match: JsonObject | undefined, listeners: PortInfo[], parentTitle: string, parent: string, path: string, out: Out): void {
  if (listeners.length === 0) return;
  const protocol = ROUTE_PROTOCOL[type]!;
  const port = int(match?.port);
  if (!listeners.some((l) => l.protocol === protocol)) {
    out.push({ path, message: `${withArticle(type)} needs a listener with protocol ${protocol}, but ${parentTitle} ${parent} has listeners ${describePorts(listeners)}` });
    return;
  }
  if (port === undefined) {
    if (listeners.length > 1) {
      const message = parentTitle === 'virtual router'
        ? 'Route must define a port match criteria if the Virtual Router has multiple listeners'
        : 'Gateway route must define a port match criteria if the Virtual Gateway has multiple listeners';
      out.push({ path: `${path}.match.port`, message });
    }
    return;
  }
  const listener = listeners.find((l) => l.port === port);
  if (!listener) {
    out.push({ path: `${path}.match.port`, message: `must be one of the listener ports of ${parentTitle} ${parent} (${describePorts(listeners)}); got ${port}` });
  } else if (listener.protocol !== protocol) {
    out.push({ path: `${path}.match.port`, message: `the listener on port ${port} has protocol ${listener.protocol}; ${withArticle(type)} needs ${withArticle(protocol)} listener` });
  }
}

function oneRouteType(spec: JsonObject, types: string[], out: Out): string | undefined {
  const set = routeTypesSet(spec, types);
  if (set.length === 1) return set[0];
  out.push({ path: 'spec', message: `Specify one route type: exactly one of ${types.join(', ')} must be set; found ${set.length === 0 ? 'none' : set.join(', ')}` });
  return undefined;
}

function prefixStartsWithSlash(prefix: string | undefined, path: string, out: Out): void {
  if (prefix !== undefined && !prefix.startsWith('/')) out.push({ path, message: `must start with '/'; got ${quote(prefix)}` });
}

function routeRules(spec: JsonObject, ctx: RuleContext, router: string, out: Out): void {
  const type = oneRouteType(spec, ROUTE_TYPES, out);
  if (type === undefined) return;
  const route = obj(spec[type])!;
  const path = `spec.${type}`;
  const match = obj(route.match);
  parentListenerRules(type, match, listenerPorts(ctx.spec('virtualRouter', router)), 'virtual router', router, path, out);
  if ((type === 'httpRoute' || type === 'http2Route') && match) {
    const set = ['prefix', 'path'].filter((k) => has(match, k));
    if (set.length !== 1) {
      out.push({ path: `${path}.match`, message: set.length === 0 ? 'must set prefix or path' : 'must set either prefix or path, not both' });
    }
    prefixStartsWithSlash(str(match.prefix), `${path}.match.prefix`, out);
    if (type === 'httpRoute' && has(match, 'scheme')) {
      out.push({ path: `${path}.match.scheme`, message: 'applies only to http2Route; remove it or use an http2Route' });
    }
  }
  if (type === 'grpcRoute' && match && has(match, 'methodName') && !has(match, 'serviceName')) {
    out.push({ path: `${path}.match.methodName`, message: 'requires match.serviceName' });
  }
  // Targets: with several listeners on the target node, the port picks one. (A missing node is the manager's NotFound.)
  list(obj(route.action)?.weightedTargets).forEach((t, i) => {
    const target = obj(t);
    const nodeName = str(target?.virtualNode);
    const node = nodeName === undefined ? undefined : ctx.spec('virtualNode', nodeName);
    if (!target || !node) return;
    const ports = listenerPorts(node);
    const port = int(target.port);
    const at = `${path}.action.weightedTargets[${i}].port`;
    if (port === undefined) {
      if (ports.length > 1) out.push({ path: at, message: `is required because virtual node ${nodeName} has multiple listeners (${describePorts(ports)})` });
    } else if (ports.length === 0) {
      out.push({ path: at, message: `virtual node ${nodeName} has no listeners, so no port ${port} to send traffic to` });
    } else if (!ports.some((p) => p.port === port)) {
      out.push({ path: at, message: `must be one of the listener ports of virtual node ${nodeName} (${describePorts(ports)}); got ${port}` });
    }
  });
}

function gatewayRouteRules(spec: JsonObject, ctx: RuleContext, gateway: string, out: Out): void {
  const type = oneRouteType(spec, GATEWAY_ROUTE_TYPES, out);
  if (type === undefined) return;
  const route = obj(spec[type])!;
  const path = `spec.${type}`;
  const match = obj(route.match);
  parentListenerRules(type, match, listenerPorts(ctx.spec('virtualGateway', gateway)), 'virtual gateway', gateway, path, out);
  if (type === 'grpcRoute') {
    if (match && !has(match, 'serviceName') && !has(match, 'hostname')) out.push({ path: `${path}.match`, message: 'must set serviceName or hostname' });
    const service = str(match?.serviceName);
    if (service !== undefined && RESERVED_GRPC_SERVICES.some((r) => service.toLowerCase().startsWith(r))) {
      out.push({ path: `${path}.match.serviceName`, message: `is reserved: gRPC service names starting with ${RESERVED_GRPC_SERVICES.join(' or ')} belong to App Mesh; got ${quote(service)}` });
    }
    return;
  }
  if (match) {
    if (!['prefix', 'path', 'hostname'].some((k) => has(match, k))) out.push({ path: `${path}.match`, message: 'must set at least one of prefix, path, hostname' });
    if (has(match, 'prefix') && has(match, 'path')) out.push({ path: `${path}.match`, message: 'must set either prefix or path, not both' });
    const prefix = str(match.prefix);
    prefixStartsWithSlash(prefix, `${path}.match.prefix`, out);
    if (prefix !== undefined && RESERVED_PREFIXES.some((r) => prefix.toLowerCase().startsWith(r))) {
      out.push({ path: `${path}.match.prefix`, message: `is reserved: prefixes starting with ${RESERVED_PREFIXES.join(' or ')} belong to App Mesh; got ${quote(prefix)}` });
    }
  }
  const rewrite = obj(obj(route.action)?.rewrite);
  const prefixRewrite = obj(rewrite?.prefix);
  if (prefixRewrite) {
    const at = `${path}.action.rewrite.prefix`;
    if (!has(match, 'prefix')) out.push({ path: at, message: 'can only be used with a prefix match (match.prefix)' });
    if (has(prefixRewrite, 'defaultPrefix') && has(prefixRewrite, 'value')) out.push({ path: at, message: 'must set either defaultPrefix or value, not both' });
    prefixStartsWithSlash(str(prefixRewrite.value), `${at}.value`, out);
  }
  if (has(rewrite, 'path') && !has(match, 'path')) {
    out.push({ path: `${path}.action.rewrite.path`, message: 'can only be used with a path match (match.path.exact or match.path.regex)' });
  }
}

/**
 * Checks App Mesh's semantic rules for a spec that already passed validateShape. `parent` is the router or
 * gateway name for routes and gateway routes ('' otherwise); `name` is the resource's own name.
 */
export function checkSpecRules(kind: KindName, spec: JsonObject, ctx: RuleContext, parent: string, name: string): Violation[] {
  const out: Out = [];
  walk(KINDS[kind].specShape, spec, 'spec', out);
  switch (kind) {
    case 'virtualNode': virtualNodeRules(spec, out); break;
    case 'virtualRouter':
      uniqueListenerPorts(spec, 'virtual router', out);
      existingRoutesFit('virtualRouter', spec, ctx, name, out);
      break;
    case 'route': routeRules(spec, ctx, parent, out); break;
    case 'virtualGateway':
      uniqueListenerPorts(spec, 'virtual gateway', out);
      existingRoutesFit('virtualGateway', spec, ctx, name, out);
      break;
    case 'gatewayRoute': gatewayRouteRules(spec, ctx, parent, out); break;
    case 'mesh':
    case 'virtualService':
      break; // nothing beyond the shape; provider existence is the manager's job
  }
  return out;
}

/**
 * The defaults App Mesh is observed to write into a stored spec: a listener health check without `port`
 * gets the listener's port. A missing spec becomes {}. Returns a new object; the input is not changed.
 */
export function applySpecDefaults(kind: KindName, spec: JsonObject | undefined): JsonObject {
  const out = structuredClone(spec ?? {});
  if (kind !== 'virtualNode' && kind !== 'virtualGateway') return out;
  for (const l of list(out.listeners)) {
    const listener = obj(l);
    const hc = obj(listener?.healthCheck);
    const port = int(obj(listener?.portMapping)?.port);
    if (hc && !has(hc, 'port') && port !== undefined) hc.port = port;
  }
  return out;
}

// Random VALID meshes for property tests of the translation: a small seeded PRNG (sfc32), a generator of the
// App Mesh resources of one mesh (nodes with listeners, TLS, health checks, pools, outlier detection and
// timeouts; services; routers and routes; gateways and gateway routes; backend client policies), random
// endpoint registrations and translate options, and a reshuffler of every order-insensitive list (for
// determinism checks). Every mesh is checked with the validators the API applies (src/model: the model's
// shapes, App Mesh's rules, the references the manager requires), so the translation only ever sees specs the
// API would have stored. The same seed always gives the same mesh.
import type { JsonObject, JsonValue } from '../model/json.ts';
import { KINDS, type KindName } from '../model/kinds.ts';
import type { ResourceRecord } from '../model/resource.ts';
import { applySpecDefaults, checkSpecRules, type RuleContext } from '../model/rules.ts';
import { validateShape } from '../model/validate.ts';
import type { Endpoint, MeshView, ProxyRef, TranslateOptions } from './api.ts';
import { record } from './test-fixtures.ts';

/** sfc32: a small, fast, seedable PRNG (32-bit state words); good enough to explore input spaces. */
export class Rng {
  #a = 0x9e3779b9;
  #b = 0x243f6a88;
  #c = 0xb7e15162;
  #d: number;

  constructor(seed: number) {
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0;
    this.#d = (this.#d + 1) | 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) | 0;
    this.#c = (this.#c << 21) | (this.#c >>> 11);
    this.#c = (this.#c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  /** Between min and max distinct items (fewer when the list is shorter), in random order. */
  some<T>(items: readonly T[], min: number, max: number): T[] {
    return this.shuffle(items).slice(0, Math.min(items.length, this.int(min, max)));
  }

  /** An independent generator derived from this one. */
  fork(): Rng {
    return new Rng(this.int(0, 0xffffffff));
  }
}

export const PROTOCOLS = ['http', 'http2', 'grpc', 'tcp'] as const;
export const GATEWAY_PROTOCOLS = ['http', 'http2', 'grpc'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

const PORTS = [80, 443, 3306, 5432, 6379, 8080, 8443, 9080, 9090, 50051];
const GATEWAY_PORTS = [80, 443, 8080, 8443, 9080, 10000];
/**
 * Values of App Mesh longs far beyond what Envoy's fields hold (DurationValue, MaxRetries and
 * OutlierDetectionMaxServerErrors are longs: the API takes anything up to 2^53 - 1): 2^32 - 1 and 2^32 around
 * Envoy's uint32 fields, Envoy's and protobuf's Duration bounds in seconds, and the largest exact JSON integer.
 */
const HUGE = [2 ** 32 - 1, 2 ** 32, 1e10, 9_223_372_035, 9_223_372_036, 315_576_000_001, Number.MAX_SAFE_INTEGER];
/** Resource names that are also Object.prototype members: lookups by name must not trip over them. */
const ODD_NAMES = ['constructor', 'toString', '__proto__', 'hasOwnProperty'];
const CA_ARNS = ['ca1', 'ca2', 'ca3', 'ca4'].map((id) => `arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/${id}`);
const SANS = ['spiffe://td/front', 'spiffe://td/back', 'svc0.local', '*.local', 'api.example.com'];
const TRUST_DOMAINS = ['spiffe://td', 'spiffe://other.td'];
const ADDRESSES = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.1.7', '192.168.5.5', 'fd00::1', 'fd00::2'];
const HEADER_NAMES = ['x-user', 'x-version', 'color', 'x-canary'];
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
const HTTP_RETRY_EVENTS = ['server-error', 'gateway-error', 'client-error', 'stream-error'];
const GRPC_RETRY_EVENTS = ['cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable'];
const IP_PREFERENCES = ['IPv6_PREFERRED', 'IPv4_PREFERRED', 'IPv4_ONLY', 'IPv6_ONLY'];
const LISTEN_ADDRESSES = ['0.0.0.0', '::', '127.0.0.1', '10.1.2.3', 'fd00::5'];
/** Port pairs for TranslateOptions (ingress, egress): always two distinct ports. */
const PROXY_PORTS: readonly [number | undefined, number | undefined][] = [[undefined, undefined], [15000, 15001], [16000, 16001], [15001, 15000], [undefined, 15101], [14000, undefined]];

export interface GeneratedMesh {
  /** The seed that reproduces this mesh (generateMesh(seed)). */
  readonly seed: number;
  readonly mesh: ResourceRecord;
  /** Every resource but the mesh, as the API stored them. */
  readonly records: readonly ResourceRecord[];
  readonly endpoints: Readonly<Record<string, readonly Endpoint[]>>;
  readonly acmIssuers: Readonly<Record<string, string>> | undefined;
  readonly options: TranslateOptions | undefined;
  /** Every virtual node and virtual gateway of the mesh. */
  readonly proxies: readonly ProxyRef[];
  /** Candidates the validators rejected before this one, and why (the first problem of each). */
  readonly rejected: readonly string[];
}

/** The MeshView of a generated mesh (records in the given order). */
export function meshView(mesh: ResourceRecord, records: readonly ResourceRecord[]): MeshView {
  const of = (k: KindName) => records.filter((r) => r.kind === k);
  return {
    mesh,
    virtualNodes: of('virtualNode'), virtualServices: of('virtualService'), virtualRouters: of('virtualRouter'),
    routes: of('route'), virtualGateways: of('virtualGateway'), gatewayRoutes: of('gatewayRoute'),
  };
}

interface PortInfo { port: number; protocol: Protocol }

/** State shared while one mesh is generated. */
class Gen {
  readonly rng: Rng;
  readonly meshName: string;
  readonly acmCertificates: string[] = [];
  readonly nodes: { name: string; listeners: PortInfo[] }[] = [];
  readonly services: { name: string; ports: number[] }[] = [];
  readonly records: ResourceRecord[] = [];

  constructor(rng: Rng, meshName: string) {
    this.rng = rng;
    this.meshName = meshName;
  }

  add(kind: KindName, name: string, spec: JsonObject, parent = ''): void {
    this.records.push(record(kind, this.meshName, name, applySpecDefaults(kind, spec), parent));
  }

  maybe<T>(p: number, make: () => T): T | undefined {
    return this.rng.chance(p) ? make() : undefined;
  }

  duration(min = 0): JsonObject {
    const { rng } = this;
    if (min === 0 && rng.chance(0.05)) return {};
    const unit = rng.pick(['s', 'ms']);
    const value = rng.chance(0.2) ? min : rng.chance(0.05) ? rng.pick(HUGE) : rng.int(min, unit === 's' ? 3600 : 120_000);
    return { unit, value };
  }

  /** A count of an App Mesh long: usually small, sometimes beyond 32 bits. */
  count(min: number, max: number): number {
    return this.rng.chance(0.1) ? this.rng.pick(HUGE) : this.rng.int(min, max);
  }

  /** A certificate a listener presents: names and paths are unique to the owner, so leaks are visible. */
  listenerCertificate(owner: string, place: string, acm: boolean): JsonObject {
    const kind = this.rng.pick(acm ? ['file', 'sds', 'acm'] : ['file', 'sds']);
    if (kind === 'file') return { file: { certificateChain: `/certs/${owner}/${place}.pem`, privateKey: `/keys/${owner}/${place}.key` } };
    if (kind === 'sds') return { sds: { secretName: `spiffe://td/${owner}/${place}` } };
    const arn = `arn:aws:acm:us-east-1:000000000000:certificate/cert-${this.acmCertificates.length}`;
    this.acmCertificates.push(arn);
    return { acm: { certificateArn: arn } };
  }

  sans(): JsonObject | undefined {
    return this.maybe(0.5, () => ({ match: { exact: this.rng.some(SANS, 1, 3) } }));
  }

  trust(acm: boolean): JsonObject {
    const { rng } = this;
    const kind = rng.pick(acm ? ['file', 'sds', 'acm'] : ['file', 'sds']);
    if (kind === 'file') return { file: { certificateChain: `/ca/${rng.pick(['root', 'intermediate', 'other'])}.pem` } };
    if (kind === 'sds') return { sds: { secretName: rng.pick(TRUST_DOMAINS) } };
    return { acm: { certificateAuthorityArns: rng.some(CA_ARNS, 1, 3) } };
  }

  listenerTls(owner: string, place: string): JsonObject {
    const tls: JsonObject = { mode: this.rng.pick(['STRICT', 'PERMISSIVE', 'DISABLED']), certificate: this.listenerCertificate(owner, place, true) };
    const validation = this.maybe(0.4, () => compact({ trust: this.trust(false), subjectAlternativeNames: this.sans() }));
    if (validation) tls.validation = validation;
    return tls;
  }

  clientPolicy(owner: string, place: string): JsonObject {
    const { rng } = this;
    const tls: JsonObject = { validation: compact({ trust: this.trust(true), subjectAlternativeNames: this.sans() }) };
    if (rng.chance(0.4)) tls.enforce = rng.chance(0.6);
    if (rng.chance(0.3)) tls.ports = rng.some(PORTS, 1, 3);
    if (rng.chance(0.5)) tls.certificate = this.listenerCertificate(owner, place, false);
    return { tls };
  }

  healthCheck(port: number, protocols: readonly Protocol[]): JsonObject {
    const { rng } = this;
    const protocol = rng.pick(protocols);
    const intervalMillis = rng.pick([5000, 10_000, 30_000, rng.int(5000, 300_000)]);
    const hc: JsonObject = {
      protocol, healthyThreshold: rng.int(2, 10), unhealthyThreshold: rng.int(2, 10),
      timeoutMillis: rng.int(2000, Math.min(60_000, intervalMillis)), intervalMillis,
    };
    if (protocol === 'http' || protocol === 'http2' || rng.chance(0.3)) hc.path = rng.pick(['/ping', '/health', '/']);
    if (rng.chance(0.5)) hc.port = port;
    return hc;
  }

  connectionPool(protocol: Protocol): JsonObject {
    const { rng } = this;
    const n = () => rng.pick([1, 10, 100, rng.int(1, 5000), 2147483647]);
    if (protocol === 'http') return { http: compact({ maxConnections: n(), maxPendingRequests: rng.chance(0.5) ? n() : undefined }) };
    if (protocol === 'tcp') return { tcp: { maxConnections: n() } };
    return { [protocol]: { maxRequests: n() } };
  }

  listenerTimeout(protocol: Protocol): JsonObject {
    const t: JsonObject = {};
    if (protocol !== 'tcp' && this.rng.chance(0.7)) t.perRequest = this.duration();
    if (this.rng.chance(0.6)) t.idle = this.duration();
    return { [protocol]: t };
  }

  logging(owner: string): JsonObject {
    const { rng } = this;
    const file: JsonObject = { path: rng.pick(['/dev/stdout', `/var/log/envoy/${owner}.log`]) };
    const format = rng.int(0, 2);
    if (format === 1) file.format = { text: '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%" %RESPONSE_CODE%\n' };
    if (format === 2) file.format = { json: rng.some([{ key: 'start', value: '%START_TIME%' }, { key: 'path', value: '%REQ(:PATH)%' }, { key: 'code', value: '%RESPONSE_CODE%' }], 1, 3) };
    return { accessLog: { file } };
  }

  headerMatch(): JsonObject {
    const { rng } = this;
    const h: JsonObject = { name: rng.pick(HEADER_NAMES) };
    if (rng.chance(0.3)) h.invert = rng.chance(0.5);
    const kind = rng.int(0, 5);
    if (kind === 1) h.match = { exact: rng.pick(['blue', 'v2', 'true']) };
    if (kind === 2) h.match = { prefix: rng.pick(['b', 'v']) };
    if (kind === 3) h.match = { suffix: rng.pick(['-beta', 'e']) };
    if (kind === 4) h.match = { regex: rng.pick(['^v[0-9]+$', 'b.*']) };
    if (kind === 5) {
      const start = rng.int(-5, 100);
      h.match = { range: { start, end: start + rng.int(1, 100) } };
    }
    return h;
  }

  /** An HttpRouteMatch (router routes) or HttpGatewayRouteMatch (gateway routes) without its port. */
  httpMatch(gateway: boolean, http2: boolean): JsonObject {
    const { rng } = this;
    const m: JsonObject = {};
    const kind = rng.int(0, gateway ? 3 : 2);
    if (kind === 0) m.prefix = rng.pick(['/', '/api', '/api/', '/v1/users', '/a']);
    if (kind === 1) m.path = { exact: rng.pick(['/exact', '/a/b']) };
    if (kind === 2) m.path = { regex: rng.pick(['^/re[a-z]+$', '/items/[0-9]+']) };
    if (gateway && (kind === 3 || rng.chance(0.3))) m.hostname = rng.chance(0.5) ? { exact: 'www.example.com' } : { suffix: '.example.com' };
    if (rng.chance(0.3)) m.headers = Array.from({ length: rng.int(1, 3) }, () => this.headerMatch());
    if (rng.chance(0.2)) m.method = rng.pick(HTTP_METHODS);
    if (rng.chance(0.2)) m.queryParameters = rng.some<JsonObject>([{ name: 'q' }, { name: 'debug', match: { exact: '1' } }, { name: 'lang', match: { exact: 'en' } }], 1, 2);
    if (!gateway && http2 && rng.chance(0.2)) m.scheme = rng.pick(['http', 'https']);
    return m;
  }

  grpcMatch(gateway: boolean): JsonObject {
    const { rng } = this;
    const m: JsonObject = {};
    if (!gateway || rng.chance(0.7)) {
      if (rng.chance(gateway ? 1 : 0.7)) m.serviceName = rng.pick(['helloworld.Greeter', 'pkg.v1.Store']);
      if (!gateway && m.serviceName !== undefined && rng.chance(0.5)) m.methodName = rng.pick(['SayHello', 'Get']);
    }
    if (gateway && (m.serviceName === undefined || rng.chance(0.3))) m.hostname = rng.chance(0.5) ? { exact: 'grpc.example.com' } : { suffix: '.example.com' };
    if (rng.chance(0.3)) m.metadata = Array.from({ length: rng.int(1, 2) }, () => this.headerMatch());
    return m;
  }

  retryPolicy(grpc: boolean): JsonObject {
    const { rng } = this;
    const p: JsonObject = { maxRetries: this.count(0, 10), perRetryTimeout: this.duration() };
    const lists: [string, () => JsonValue][] = [
      ['httpRetryEvents', () => rng.some(HTTP_RETRY_EVENTS, 1, 4)],
      ['tcpRetryEvents', () => ['connection-error']],
      ...(grpc ? [['grpcRetryEvents', () => rng.some(GRPC_RETRY_EVENTS, 1, 5)] as [string, () => JsonValue]] : []),
    ];
    for (const [key, make] of rng.some(lists, 1, lists.length)) p[key] = make();
    return p;
  }
}

/** The same name with the case of some letters flipped (and at least one, if it has letters). */
function caseVariant(rng: Rng, name: string): string {
  const flip = (c: string) => (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase());
  const letters = [...name].flatMap((c, i) => (c.toLowerCase() !== c.toUpperCase() ? [i] : []));
  if (letters.length === 0) return name;
  const chosen = new Set([rng.pick(letters), ...letters.filter(() => rng.chance(0.3))]);
  return [...name].map((c, i) => (chosen.has(i) ? flip(c) : c)).join('');
}

/** Drops undefined members (specs are JSON). */
function compact(o: Record<string, JsonValue | undefined>): JsonObject {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as JsonObject;
}

function routeType(protocol: Protocol): string {
  return protocol === 'http' ? 'httpRoute' : protocol === 'http2' ? 'http2Route' : protocol === 'grpc' ? 'grpcRoute' : 'tcpRoute';
}

function candidate(seed: number): GeneratedMesh {
  const rng = new Rng(seed);
  const meshName = rng.pick(['m', 'mesh-a', 'my_mesh', 'ColorApp-MutualTLS']);
  const g = new Gen(rng, meshName);
  const meshSpec: JsonObject = {};
  if (rng.chance(0.7)) meshSpec.egressFilter = { type: rng.pick(['ALLOW_ALL', 'DROP_ALL']) };
  if (rng.chance(0.2)) meshSpec.serviceDiscovery = { ipPreference: rng.pick(IP_PREFERENCES) };
  const options = proxyOptions(rng);
  const egressPort = options?.egressPort ?? 15001;

  // Virtual nodes: listeners first (services, routes and backends refer to them).
  const nodeCount = rng.int(1, 6);
  const nodeNames = Array.from({ length: nodeCount }, (_, i) => (rng.chance(0.08) ? rng.pick(ODD_NAMES) : `node-${i}`));
  const nodeSpecs = new Map<string, JsonObject>();
  for (const [i, name] of [...new Set(nodeNames)].entries()) {
    const ports = rng.some(PORTS, 0, rng.chance(0.15) ? 0 : 3);
    const listeners = ports.map((port) => {
      const protocol = rng.pick(PROTOCOLS);
      const l: JsonObject = { portMapping: { port, protocol } };
      if (rng.chance(0.5)) l.tls = g.listenerTls(name, `l${port}`);
      if (rng.chance(0.3)) l.healthCheck = g.healthCheck(port, PROTOCOLS);
      if (rng.chance(0.3)) l.timeout = g.listenerTimeout(protocol);
      if (rng.chance(0.3)) l.connectionPool = g.connectionPool(protocol);
      if (rng.chance(0.3)) {
        // App Mesh takes 0 durations here (Envoy wants > 0) and counts beyond 32 bits.
        l.outlierDetection = { maxServerErrors: g.count(1, 50), interval: g.duration(), baseEjectionDuration: g.duration(), maxEjectionPercent: rng.int(0, 100) };
      }
      return { l, info: { port, protocol } };
    });
    const spec: JsonObject = {};
    if (listeners.length > 0) spec.listeners = listeners.map((x) => x.l);
    if (listeners.length > 0 || rng.chance(0.5)) {
      spec.serviceDiscovery = rng.chance(0.7)
        ? { dns: compact({ hostname: rng.chance(0.5) ? `node${i}.local` : `svc${i}.local`, responseType: rng.chance(0.5) ? rng.pick(['LOADBALANCER', 'ENDPOINTS']) : undefined, ipPreference: rng.chance(0.2) ? rng.pick(IP_PREFERENCES) : undefined }) }
        : { awsCloudMap: compact({ namespaceName: 'ns.local', serviceName: `node${i}`, attributes: rng.chance(0.3) ? [{ key: 'stage', value: 'prod' }] : undefined }) };
    }
    if (rng.chance(0.3)) spec.backendDefaults = { clientPolicy: g.clientPolicy(name, 'defaults') };
    if (rng.chance(0.3)) spec.logging = g.logging(name);
    nodeSpecs.set(name, spec);
    g.nodes.push({ name, listeners: listeners.map((x) => x.info as PortInfo) });
  }

  // Virtual routers and their listeners.
  const routers = Array.from({ length: rng.int(0, 3) }, (_, i) => {
    const ports = rng.some(PORTS, rng.chance(0.15) ? 0 : 1, 2);
    return { name: `router-${i}`, listeners: ports.map((port): PortInfo => ({ port, protocol: rng.pick(PROTOCOLS) })) };
  });
  for (const r of routers) g.add('virtualRouter', r.name, r.listeners.length > 0 ? { listeners: r.listeners.map((l) => ({ portMapping: { ...l } })) } : {});

  // Virtual services: provided by a node, a router, or nothing. Names are case-sensitive in App Mesh but not
  // in DNS or Envoy's domains: some differ from another service's only in case.
  const serviceCount = rng.int(0, 6);
  for (let i = 0; i < serviceCount; i++) {
    let name = rng.chance(0.05) ? rng.pick(['*.amazonaws.com', '*.AmazonAWS.com']) : rng.chance(0.1) ? `svc${i}.ns.local` : `svc${i}.local`;
    if (g.services.length > 0 && rng.chance(0.15)) name = caseVariant(rng, rng.pick(g.services).name);
    if (g.services.some((s) => s.name === name)) continue;
    const kind = rng.int(0, 9);
    let spec: JsonObject = {};
    let ports: number[] = [];
    if (kind < 5) {
      const node = rng.pick(g.nodes);
      spec = { provider: { virtualNode: { virtualNodeName: node.name } } };
      ports = node.listeners.map((l) => l.port);
    } else if (kind < 8 && routers.length > 0) {
      const router = rng.pick(routers);
      spec = { provider: { virtualRouter: { virtualRouterName: router.name } } };
      ports = router.listeners.map((l) => l.port);
    }
    g.add('virtualService', name, spec);
    g.services.push({ name, ports });
  }

  // Node backends (a backend may name a service that does not exist yet, as App Mesh allows).
  for (const [name, spec] of nodeSpecs) {
    const names = rng.some([...g.services.map((s) => s.name), 'not-yet.local'], 0, 4);
    if (names.length > 0) {
      spec.backends = names.map((n, i) => ({ virtualService: compact({ virtualServiceName: n, clientPolicy: rng.chance(0.25) ? g.clientPolicy(name, `backend${i}`) : undefined }) }));
    }
    g.add('virtualNode', name, spec);
  }

  // Routes.
  for (const r of routers) {
    for (let i = rng.int(0, 4); i > 0; i--) g.add('route', `route-${i}`, routeSpec(g, r.listeners), r.name);
  }

  // Virtual gateways and gateway routes.
  for (let i = rng.int(0, 2); i > 0; i--) {
    const name = `gateway-${i}`;
    // Sometimes on the egress port itself, and the one after it (the gateway's egress listener must move).
    const ports = rng.some(GATEWAY_PORTS, 1, 2);
    if (rng.chance(0.2)) ports.unshift(...(rng.chance(0.5) ? [egressPort, egressPort + 1] : [egressPort]));
    const listeners = ports.map((port): PortInfo => ({ port, protocol: rng.pick(GATEWAY_PROTOCOLS) }));
    const spec: JsonObject = {
      listeners: listeners.map((l) => {
        const out: JsonObject = { portMapping: { ...l } };
        if (rng.chance(0.5)) out.tls = g.listenerTls(name, `l${l.port}`);
        if (rng.chance(0.3)) out.healthCheck = g.healthCheck(l.port, GATEWAY_PROTOCOLS);
        if (rng.chance(0.3)) out.connectionPool = g.connectionPool(l.protocol);
        return out;
      }),
    };
    if (rng.chance(0.4)) spec.backendDefaults = { clientPolicy: g.clientPolicy(name, 'defaults') };
    if (rng.chance(0.3)) spec.logging = g.logging(name);
    g.add('virtualGateway', name, spec);
    if (g.services.length === 0) continue;
    for (let j = rng.int(0, 4); j > 0; j--) g.add('gatewayRoute', `gateway-route-${j}`, gatewayRouteSpec(g, listeners), name);
  }

  const mesh = record('mesh', meshName, meshName, meshSpec);
  return {
    seed, mesh, records: g.records,
    endpoints: endpoints(rng, g.nodes),
    acmIssuers: acmIssuers(rng, g.acmCertificates),
    options,
    proxies: g.records.filter((r) => r.kind === 'virtualNode' || r.kind === 'virtualGateway').map((r) => ({ kind: r.kind as ProxyRef['kind'], name: r.name })),
    rejected: [],
  };
}

function routeSpec(g: Gen, listeners: readonly PortInfo[]): JsonObject {
  const { rng } = g;
  const listener = listeners.length > 0 ? rng.pick(listeners) : undefined;
  const protocol = listener?.protocol ?? rng.pick(PROTOCOLS);
  // A port match is required with several listeners, optional with one, and free without listeners.
  const port = listener ? (listeners.length > 1 || rng.chance(0.3) ? listener.port : undefined) : rng.chance(0.2) ? rng.pick(PORTS) : undefined;
  // Some routes get mostly weight 0 targets: all 0, or only unresolvable targets (a node without listeners)
  // weighing more than 0.
  const zeros = rng.chance(0.2);
  const targets = Array.from({ length: rng.int(1, 3) }, () => {
    // Mostly nodes with a listener of the route's protocol; any node is valid.
    const fitting = g.nodes.filter((n) => n.listeners.some((l) => l.protocol === protocol));
    const node = rng.pick(fitting.length > 0 && rng.chance(0.7) ? fitting : g.nodes);
    const fit = node.listeners.filter((l) => l.protocol === protocol);
    let targetPort: number | undefined;
    if (node.listeners.length > 1) targetPort = rng.pick(fit.length > 0 ? fit : node.listeners).port;
    else if (node.listeners.length === 1 && rng.chance(0.5)) targetPort = node.listeners[0]!.port;
    const zero = node.listeners.length === 0 ? rng.chance(0.2) : rng.chance(zeros ? 0.9 : 0.1);
    return compact({ virtualNode: node.name, weight: zero ? 0 : rng.int(1, 100), port: targetPort });
  });
  // App Mesh accepts a route whose weights are all 0 (it sends nothing): kept in `zeros` routes.
  if (targets.every((t) => t.weight === 0) && !zeros) targets[0]!.weight = rng.int(1, 100);
  const spec: JsonObject = {};
  if (rng.chance(0.4)) spec.priority = rng.chance(0.5) ? rng.int(0, 3) : rng.int(0, 1000);
  const action = { weightedTargets: targets };
  if (protocol === 'tcp') {
    const tcp: JsonObject = { action };
    if (port !== undefined) tcp.match = { port };
    if (rng.chance(0.3)) tcp.timeout = { idle: g.duration() };
    spec.tcpRoute = tcp;
    return spec;
  }
  const match = protocol === 'grpc' ? g.grpcMatch(false) : g.httpMatch(false, protocol === 'http2');
  if (port !== undefined) match.port = port;
  const route: JsonObject = { match, action };
  if (rng.chance(0.3)) route.retryPolicy = g.retryPolicy(protocol === 'grpc');
  if (rng.chance(0.3)) route.timeout = compact({ perRequest: rng.chance(0.7) ? g.duration() : undefined, idle: rng.chance(0.5) ? g.duration() : undefined });
  spec[routeType(protocol)] = route;
  return spec;
}

function gatewayRouteSpec(g: Gen, listeners: readonly PortInfo[]): JsonObject {
  const { rng } = g;
  const listener = rng.pick(listeners);
  const port = listeners.length > 1 || rng.chance(0.3) ? listener.port : undefined;
  const service = rng.pick(g.services);
  const target: JsonObject = { virtualService: { virtualServiceName: service.name } };
  if (rng.chance(0.3)) target.port = service.ports.length > 0 && rng.chance(0.8) ? rng.pick(service.ports) : rng.pick(PORTS);
  const spec: JsonObject = {};
  if (rng.chance(0.4)) spec.priority = rng.chance(0.5) ? rng.int(0, 3) : rng.int(0, 1000);
  if (listener.protocol === 'grpc') {
    const match = g.grpcMatch(true);
    if (port !== undefined) match.port = port;
    const action: JsonObject = { target };
    if (rng.chance(0.3)) action.rewrite = { hostname: { defaultTargetHostname: rng.pick(['ENABLED', 'DISABLED']) } };
    spec.grpcRoute = { match, action };
    return spec;
  }
  const match = g.httpMatch(true, listener.protocol === 'http2');
  if (port !== undefined) match.port = port;
  const action: JsonObject = { target };
  if (rng.chance(0.5)) {
    const rewrite: JsonObject = {};
    if (rng.chance(0.5)) rewrite.hostname = { defaultTargetHostname: rng.pick(['ENABLED', 'DISABLED']) };
    if (match.prefix !== undefined && rng.chance(0.7)) {
      rewrite.prefix = rng.chance(0.5) ? { defaultPrefix: rng.pick(['ENABLED', 'DISABLED']) } : { value: rng.pick(['/', '/new/', '/v2/']) };
    }
    if (match.path !== undefined && rng.chance(0.7)) rewrite.path = { exact: rng.pick(['/rewritten', '/']) };
    action.rewrite = rewrite;
  }
  spec[routeType(listener.protocol)] = { match, action };
  return spec;
}

/** Registered instances for some nodes: on listener ports, on other ports, with extra `ports`. */
function endpoints(rng: Rng, nodes: readonly { name: string; listeners: PortInfo[] }[]): Record<string, Endpoint[]> {
  const entries: [string, Endpoint[]][] = [];
  for (const node of nodes) {
    if (!rng.chance(0.6)) continue;
    const ports = node.listeners.map((l) => l.port);
    entries.push([node.name, Array.from({ length: rng.int(0, 4) }, (): Endpoint => {
      const port = ports.length > 0 && rng.chance(0.8) ? rng.pick(ports) : rng.pick([7000, 8081]);
      const extra = rng.chance(0.3) ? rng.some(ports, 0, 2) : undefined;
      return extra ? { address: rng.pick(ADDRESSES), port, ports: extra } : { address: rng.pick(ADDRESSES), port };
    })]);
  }
  if (rng.chance(0.1)) entries.push(['ghost-node', [{ address: '10.9.9.9', port: 80 }]]);
  // Object.fromEntries defines own properties, so a node named __proto__ gets a real entry.
  return Object.fromEntries(entries);
}

function acmIssuers(rng: Rng, certificates: readonly string[]): Record<string, string> | undefined {
  if (rng.chance(0.25)) return undefined;
  const entries = certificates.filter(() => rng.chance(0.6)).map((arn): [string, string] => [arn, rng.pick(CA_ARNS)]);
  if (rng.chance(0.2)) entries.push(['arn:aws:acm:us-east-1:000000000000:certificate/unrelated', CA_ARNS[0]!]);
  return Object.fromEntries(entries);
}

function proxyOptions(rng: Rng): TranslateOptions | undefined {
  if (rng.chance(0.3)) return undefined;
  const [ingressPort, egressPort] = rng.pick(PROXY_PORTS);
  return compactOptions({
    listenAddress: rng.chance(0.6) ? rng.pick(LISTEN_ADDRESSES) : undefined,
    ingressPort, egressPort,
    appAddress: rng.chance(0.3) ? rng.pick(['127.0.0.1', '::1', '10.0.0.5']) : undefined,
    accessLogPath: rng.chance(0.3) ? '/tmp/envoy-access.log' : undefined,
  });
}

function compactOptions(o: { [K in keyof TranslateOptions]: TranslateOptions[K] | undefined }): TranslateOptions {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as TranslateOptions;
}

const emptyContext: RuleContext = { spec: () => undefined, children: () => [] };

/**
 * Why the App Mesh API would not hold these resources: the model's shapes, App Mesh's rules (checked against
 * the other resources of the mesh), the references the manager requires, unique names. Empty when valid.
 */
export function meshViolations(mesh: ResourceRecord, records: readonly ResourceRecord[]): string[] {
  const out: string[] = [];
  const find = (kind: KindName, name: string, parent = '') => records.find((r) => r.kind === kind && r.name === name && r.parent === parent);
  const ctx: RuleContext = {
    spec: (kind, name, parent = '') => find(kind, name, parent)?.spec,
    children: (kind, parent) => records.filter((r) => r.kind === kind && r.parent === parent).map((r) => ({ name: r.name, spec: r.spec })),
  };
  const seen = new Set<string>();
  for (const r of [mesh, ...records]) {
    const id = `${r.kind} ${r.parent ? `${r.parent}/` : ''}${r.name}`;
    if (seen.has(id)) out.push(`${id}: appears twice`);
    seen.add(id);
    for (const v of validateShape(KINDS[r.kind].specShape, r.spec, 'spec')) out.push(`${id}: ${v.path} ${v.message}`);
    for (const v of checkSpecRules(r.kind, r.spec, r.kind === 'mesh' ? emptyContext : ctx, r.parent, r.name)) out.push(`${id}: ${v.path} ${v.message}`);
    for (const [kind, name, path] of references(r)) {
      if (!find(kind, name)) out.push(`${id}: ${path} names ${kind} ${name}, which does not exist`);
    }
    const parentKind = KINDS[r.kind].parent;
    if (parentKind && !find(parentKind, r.parent)) out.push(`${id}: parent ${parentKind} ${r.parent} does not exist`);
  }
  return out;
}

/** The references the manager requires to resolve (service providers, route targets, gateway route targets). */
function references(r: ResourceRecord): [KindName, string, string][] {
  const spec = r.spec as Record<string, any>;
  if (r.kind === 'virtualService') {
    const p = spec.provider;
    if (p?.virtualNode) return [['virtualNode', p.virtualNode.virtualNodeName, 'spec.provider.virtualNode']];
    if (p?.virtualRouter) return [['virtualRouter', p.virtualRouter.virtualRouterName, 'spec.provider.virtualRouter']];
  }
  if (r.kind === 'route') {
    return ['httpRoute', 'http2Route', 'grpcRoute', 'tcpRoute'].flatMap((t) =>
      ((spec[t]?.action?.weightedTargets ?? []) as { virtualNode: string }[]).map((w): [KindName, string, string] => ['virtualNode', w.virtualNode, `spec.${t}.action.weightedTargets`]));
  }
  if (r.kind === 'gatewayRoute') {
    return ['httpRoute', 'http2Route', 'grpcRoute'].filter((t) => spec[t]).map((t): [KindName, string, string] =>
      ['virtualService', spec[t].action.target.virtualService.virtualServiceName, `spec.${t}.action.target`]);
  }
  return [];
}

/**
 * A random mesh the App Mesh API accepts, reproducibly from `seed`: candidates the validators reject are
 * replaced by the next candidate of the same seed (`rejected` says how many and why).
 */
export function generateMesh(seed: number, maxAttempts = 20): GeneratedMesh {
  const rejected: string[] = [];
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    const m = candidate(attempt === 0 ? seed : (seed ^ Math.imul(attempt, 0x9e3779b1)) >>> 0);
    const problems = meshViolations(m.mesh, m.records);
    if (problems.length === 0) return { ...m, seed, rejected };
    rejected.push(problems[0]!);
  }
  throw new Error(`seed ${seed}: no valid mesh in ${maxAttempts} attempts; first problems: ${rejected.slice(0, 3).join('; ')}`);
}

/** Members whose arrays are sets (their order means nothing in App Mesh), shuffled by `reordered`. */
const SET_LIKE = new Set([
  'listeners', 'backends', 'weightedTargets', 'exact', 'certificateAuthorityArns', 'ports',
  'httpRetryEvents', 'tcpRetryEvents', 'grpcRetryEvents', 'attributes',
]);

function reorderedValue(value: JsonValue, rng: Rng, key?: string): JsonValue {
  if (Array.isArray(value)) {
    const items = value.map((v) => reorderedValue(v, rng));
    return key !== undefined && SET_LIKE.has(key) ? rng.shuffle(items) : items;
  }
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(rng.shuffle(Object.entries(value)).map(([k, v]) => [k, reorderedValue(v, rng, k)]));
  }
  return value;
}

/**
 * The same input in another order: every list of the view shuffled, every set-like list inside specs
 * (listeners, backends, weighted targets, SANs, CA ARNs, policy ports, retry events) shuffled, object members
 * in another order, endpoint lists and their `ports` shuffled, and the endpoint and issuer maps reordered.
 */
export function reordered(m: GeneratedMesh, rng: Rng): { view: MeshView; endpoints: Record<string, Endpoint[]>; acmIssuers: Record<string, string> | undefined } {
  const records = rng.shuffle(m.records).map((r) => ({ ...r, spec: reorderedValue(r.spec, rng) as JsonObject }));
  const mesh = { ...m.mesh, spec: reorderedValue(m.mesh.spec, rng) as JsonObject };
  const endpoints = Object.fromEntries(rng.shuffle(Object.entries(m.endpoints)).map(([node, list]) =>
    [node, rng.shuffle(list).map((e) => (e.ports ? { ...e, ports: rng.shuffle(e.ports) } : { ...e }))]));
  const acmIssuers = m.acmIssuers && Object.fromEntries(rng.shuffle(Object.entries(m.acmIssuers)));
  return { view: meshView(mesh, records), endpoints, acmIssuers };
}

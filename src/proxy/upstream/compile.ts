// Envoy v3 Clusters and ClusterLoadAssignments (protobufjs object form, as decoded from xDS) → validated,
// plain specs for keymesh's proxy. Defaults are Envoy's own (the proto comments in
// @grpc/grpc-js-xds/deps/envoy-api and Envoy's source): a field that is absent behaves as it would in a stock
// Envoy. A field that is set and would change behaviour in a way this proxy does not implement is refused with
// a ProxyConfigError naming the resource and the field, so the proxy NACKs instead of quietly behaving
// differently; fields without behaviour here (metadata, stats options) are accepted and ignored.
//
// Left opaque for the engineers who implement them: the transport socket (TLS; only its name and type are
// checked here), the HTTP/1 and HTTP/2 protocol option messages and upstream_http_protocol_options (SNI).
import { isIP } from 'node:net';
import { durationMs, list, num, obj, optObj, optStr, Path, str, typed, wrapped, wrappedBool, type Json } from '../resources/values.ts';

export type { Json } from '../resources/values.ts';

export type DiscoveryType = 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'EDS' | 'ORIGINAL_DST';
export type DnsLookupFamily = 'AUTO' | 'V4_ONLY' | 'V6_ONLY' | 'V4_PREFERRED' | 'ALL';
export type EndpointHealthStatus = 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING' | 'TIMEOUT' | 'DEGRADED';

/** One endpoint of a load assignment: an IP (STATIC, EDS) or a DNS name (STRICT_DNS, LOGICAL_DNS) and a port. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
  /** load_balancing_weight; 1 when absent. */
  readonly weight: number;
  /** health_status from EDS; UNKNOWN when absent (treated as healthy, as Envoy does). */
  readonly healthStatus: EndpointHealthStatus;
  /** endpoint.hostname (used by auto host rewrite). */
  readonly hostname?: string;
  /** endpoint.health_check_config: where and how active health checks reach this endpoint. */
  readonly healthCheck?: EndpointHealthCheck;
}

export interface EndpointHealthCheck {
  readonly port?: number;
  readonly address?: string;
  /** Host header / :authority of health checks to this endpoint (wins over the health check's `host`). */
  readonly hostname?: string;
  readonly disabled: boolean;
}

/** Circuit breaker thresholds of one routing priority (Envoy's defaults 1024/1024/1024/3 fill the gaps). */
export interface Thresholds {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  /** When set, replaces maxRetries: retries may be budgetPercent of active + pending requests, at least minRetryConcurrency. */
  readonly retryBudget?: { readonly budgetPercent: number; readonly minRetryConcurrency: number };
  /** Publish `circuit_breakers.<priority>.remaining_*` gauges. */
  readonly trackRemaining: boolean;
}

export interface OutlierDetectionSpec {
  readonly consecutive5xx: number;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionTimeJitterMs: number;
  readonly maxEjectionPercent: number;
  readonly alwaysEjectOneHost: boolean;
  readonly enforcingConsecutive5xx: number;
  readonly consecutiveGatewayFailure: number;
  readonly enforcingConsecutiveGatewayFailure: number;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly consecutiveLocalOriginFailure: number;
  readonly enforcingConsecutiveLocalOriginFailure: number;
  readonly enforcingSuccessRate: number;
  readonly enforcingLocalOriginSuccessRate: number;
  readonly successRateMinimumHosts: number;
  readonly successRateRequestVolume: number;
  readonly successRateStdevFactor: number;
  readonly failurePercentageThreshold: number;
  readonly enforcingFailurePercentage: number;
  readonly enforcingFailurePercentageLocalOrigin: number;
  readonly failurePercentageMinimumHosts: number;
  readonly failurePercentageRequestVolume: number;
  readonly successfulActiveHealthCheckUnejectHost: boolean;
}

export interface HeaderToAdd {
  readonly name: string;
  readonly value: string;
  readonly action: 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';
}

export interface HttpHealthCheckSpec {
  readonly type: 'http';
  readonly path: string;
  /** The Host header when neither the endpoint names one; the cluster name when absent (Envoy). */
  readonly host?: string;
  readonly method: string;
  readonly codec: 'HTTP1' | 'HTTP2';
  /** [start, end) ranges; [[200, 201)] by default: only 200 is healthy. */
  readonly expectedStatuses: readonly (readonly [number, number])[];
  readonly retriableStatuses: readonly (readonly [number, number])[];
  readonly requestHeadersToAdd: readonly HeaderToAdd[];
  readonly requestHeadersToRemove: readonly string[];
  readonly send?: Buffer;
  /** Blocks that must all appear in the body, in order (not necessarily adjacent). */
  readonly receive: readonly Buffer[];
  /** Bytes of the body kept for `receive` matching (Envoy default 1024; 0 = whole body). */
  readonly responseBufferSize: number;
}

export interface TcpHealthCheckSpec {
  readonly type: 'tcp';
  readonly send?: Buffer;
  readonly receive: readonly Buffer[];
}

export interface GrpcHealthCheckSpec {
  readonly type: 'grpc';
  readonly serviceName: string;
  readonly authority?: string;
  readonly initialMetadata: readonly HeaderToAdd[];
}

export interface HealthCheckSpec {
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly unhealthyIntervalMs: number;
  readonly unhealthyEdgeIntervalMs: number;
  readonly healthyEdgeIntervalMs: number;
  /** Interval while the cluster has never carried traffic (Envoy default 60 s). */
  readonly noTrafficIntervalMs: number;
  readonly noTrafficHealthyIntervalMs: number;
  readonly initialJitterMs: number;
  readonly intervalJitterMs: number;
  readonly intervalJitterPercent: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
  readonly reuseConnection: boolean;
  /** tls_options.alpn_protocols, for the TLS dialer of health-check connections. */
  readonly alpnProtocols?: readonly string[];
  readonly check: HttpHealthCheckSpec | TcpHealthCheckSpec | GrpcHealthCheckSpec;
}

export interface UpstreamHttpSpec {
  readonly protocol: 'http1' | 'http2';
  /** The Http1ProtocolOptions or Http2ProtocolOptions message as configured ({} when given empty or absent). */
  readonly protocolOptions: Json;
  /** Upstream idle timeout; Envoy's default is 1 hour; undefined = none (configured as 0). */
  readonly idleTimeoutMs: number | undefined;
  readonly maxConnectionDurationMs?: number;
  readonly maxStreamDurationMs?: number;
  readonly maxRequestsPerConnection?: number;
  readonly maxHeadersCount: number;
  readonly headersWithUnderscoresAction: 'ALLOW' | 'REJECT_REQUEST' | 'DROP_HEADER';
  /** core.v3.UpstreamHttpProtocolOptions (auto_sni, auto_san_validation), opaque. */
  readonly upstreamHttpProtocolOptions?: Json;
}

export interface ClusterSpec {
  readonly name: string;
  /** alt_stat_name when set, else the name: the stats scope is `cluster.<observabilityName>.`. */
  readonly observabilityName: string;
  readonly type: DiscoveryType;
  /** EDS: the ClusterLoadAssignment to subscribe to (eds_cluster_config.service_name, else the cluster name). */
  readonly eds?: { readonly serviceName: string };
  readonly connectTimeoutMs: number;
  readonly lbPolicy: 'ROUND_ROBIN' | 'CLUSTER_PROVIDED';
  /** The load assignment in the cluster itself (STATIC, STRICT_DNS, LOGICAL_DNS); [] for EDS and ORIGINAL_DST. */
  readonly endpoints: readonly Endpoint[];
  readonly dns: {
    readonly lookupFamily: DnsLookupFamily;
    readonly refreshRateMs: number;
    /** dns_failure_refresh_rate: backoff between these after a failed resolution (else refreshRateMs). */
    readonly failureRefresh?: { readonly baseMs: number; readonly maxMs: number };
  };
  readonly circuitBreakers: { readonly default: Thresholds; readonly high: Thresholds };
  readonly outlierDetection?: OutlierDetectionSpec;
  readonly healthCheck?: HealthCheckSpec;
  readonly lb: {
    /** Percent; 50 by default, 0 disables panic mode. */
    readonly healthyPanicThreshold: number;
    readonly ignoreNewHostsUntilFirstHc: boolean;
    readonly closeConnectionsOnHostSetChange: boolean;
  };
  readonly ignoreHealthOnHostRemoval: boolean;
  readonly closeConnectionsOnHostHealthFailure: boolean;
  readonly http: UpstreamHttpSpec;
  /** The TransportSocket message (name + typedConfig) when it is TLS; undefined for plaintext (none or raw_buffer). */
  readonly transportSocket?: Json;
  /** ORIGINAL_DST: hosts unused for this long are dropped (Envoy default 5 s). */
  readonly cleanupIntervalMs: number;
  readonly perConnectionBufferLimitBytes: number;
  /** wait_for_warm_on_init (default true): whether proxy start-up waits for this cluster's first hosts. */
  readonly waitForWarmOnInit: boolean;
  readonly tcpKeepalive?: { readonly probes?: number; readonly timeS?: number; readonly intervalS?: number };
}

// Envoy's defaults (proto comments and source, see the report in the module header).
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const DEFAULT_DNS_REFRESH_MS = 5000;
const DEFAULT_CLEANUP_INTERVAL_MS = 5000;
const DEFAULT_BUFFER_LIMIT = 1024 * 1024;
const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;
const DEFAULT_MAX_HEADERS = 100;

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';
const HTTP_PROTOCOL_OPTIONS_TYPE = `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`;
const UPSTREAM_TLS_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const RAW_BUFFER_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

const NOT_SUPPORTED = "is not supported by keymesh's proxy";

/** A value that leaves a proto3 field at its default: such a field changes nothing, whatever it is. */
function isUnset(v: unknown): boolean {
  return v === undefined || v === null || v === false || v === '' || v === 0 || v === '0' || (Array.isArray(v) && v.length === 0);
}

/** Refuses every field of `o` that is set and not in `handled` (handled fields are read, or harmless). */
function onlyFields(o: Json, at: (field: string) => Path, handled: readonly string[]): void {
  for (const [k, v] of Object.entries(o)) {
    if (!handled.includes(k) && !isUnset(v)) at(k).fail(NOT_SUPPORTED);
  }
}

function enumOf<T extends string>(v: unknown, path: Path, values: readonly T[], fallback: T): T {
  if (v === undefined || v === null) return fallback;
  // protobufjs gives enums as names; numbers are tolerated for objects built by hand.
  const name = typeof v === 'number' ? values[v] : v;
  if (typeof name !== 'string' || !values.includes(name as T)) path.fail(`must be one of ${values.join(', ')}`);
  return name as T;
}

function uint(v: unknown, path: Path, fallback: number, min = 0): number {
  const n = wrapped(v, path);
  if (n === undefined) return fallback;
  if (!Number.isInteger(n) || n < min) path.fail(min > 0 ? `must be an integer of at least ${min}` : 'must be a non-negative integer');
  return n;
}

function percent(v: unknown, path: Path, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  const o = obj(v, path);
  const value = o.value === undefined ? 0 : num(o.value, path.at('value'));
  if (value < 0 || value > 100) path.at('value').fail('must be between 0 and 100');
  return value;
}

function enforcing(v: unknown, path: Path, fallback: number): number {
  const n = uint(v, path, fallback);
  if (n > 100) path.fail('must be at most 100');
  return n;
}

function positiveMs(v: unknown, path: Path, fallback: number): number {
  const ms = durationMs(v, path);
  if (ms === undefined) return fallback;
  if (ms <= 0) path.fail('must be greater than zero');
  return ms;
}

function bool(v: unknown, path: Path): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') path.fail('must be true or false');
  return v as boolean;
}

function port(v: unknown, path: Path): number {
  const n = num(v ?? 0, path);
  if (!Number.isInteger(n) || n < 1 || n > 65535) path.fail('must be a port number (1-65535)');
  return n;
}

// --- Addresses and load assignments ---

/** A core.v3.Address holding a TCP socket address: { address, portValue }. */
function socketAddress(v: unknown, path: Path, needIp: boolean): { address: string; port: number } {
  const a = obj(v, path);
  onlyFields(a, (f) => path.at(f), ['socketAddress']);
  const sp = path.at('socketAddress');
  if (a.socketAddress === undefined || a.socketAddress === null) sp.fail('is required (pipes and internal addresses are not supported by keymesh\'s proxy)');
  const s = obj(a.socketAddress, sp);
  onlyFields(s, (f) => sp.at(f), ['address', 'portValue', 'protocol', 'ipv4Compat']);
  enumOf(s.protocol, sp.at('protocol'), ['TCP'], 'TCP');
  const address = str(s.address ?? '', sp.at('address'));
  if (address === '') sp.at('address').fail('must not be empty');
  if (needIp && isIP(address) === 0) sp.at('address').fail(`${address} is not an IP address (only STRICT_DNS and LOGICAL_DNS clusters resolve names)`);
  return { address, port: port(s.portValue, sp.at('portValue')) };
}

const HEALTH_STATUSES: readonly EndpointHealthStatus[] = ['UNKNOWN', 'HEALTHY', 'UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED'];

function lbEndpoint(v: unknown, path: Path, needIp: boolean): Endpoint {
  const e = obj(v, path);
  onlyFields(e, (f) => path.at(f), ['endpoint', 'healthStatus', 'metadata', 'loadBalancingWeight']);
  const ep = path.at('endpoint');
  if (e.endpoint === undefined || e.endpoint === null) ep.fail('is required (named endpoints are not supported by keymesh\'s proxy)');
  const endpoint = obj(e.endpoint, ep);
  onlyFields(endpoint, (f) => ep.at(f), ['address', 'healthCheckConfig', 'hostname']);
  const { address, port: p } = socketAddress(endpoint.address, ep.at('address'), needIp);
  const weight = uint(e.loadBalancingWeight, path.at('loadBalancingWeight'), 1, 1);
  const healthStatus = enumOf(e.healthStatus, path.at('healthStatus'), HEALTH_STATUSES, 'UNKNOWN');
  const hostname = optStr(endpoint.hostname, ep.at('hostname'));
  let healthCheck: EndpointHealthCheck | undefined;
  const hcp = ep.at('healthCheckConfig');
  const hc = optObj(endpoint.healthCheckConfig, hcp);
  if (hc) {
    onlyFields(hc, (f) => hcp.at(f), ['portValue', 'hostname', 'address', 'disableActiveHealthCheck']);
    const hcAddress = hc.address === undefined || hc.address === null ? undefined : socketAddress(hc.address, hcp.at('address'), true);
    const hcPort = isUnset(hc.portValue) ? hcAddress?.port : port(hc.portValue, hcp.at('portValue'));
    const hcHostname = optStr(hc.hostname, hcp.at('hostname'));
    healthCheck = {
      disabled: bool(hc.disableActiveHealthCheck, hcp.at('disableActiveHealthCheck')),
      ...(hcPort !== undefined ? { port: hcPort } : {}),
      ...(hcAddress ? { address: hcAddress.address } : {}),
      ...(hcHostname !== undefined ? { hostname: hcHostname } : {}),
    };
  }
  return { address, port: p, weight, healthStatus, ...(hostname !== undefined ? { hostname } : {}), ...(healthCheck ? { healthCheck } : {}) };
}

/** The lb endpoints of a ClusterLoadAssignment (or a cluster's load_assignment), flattened across localities. */
function assignmentEndpoints(a: Json, at: (field: string) => Path, needIp: boolean): Endpoint[] {
  onlyFields(a, at, ['clusterName', 'endpoints', 'policy']);
  const pp = at('policy');
  const policy = optObj(a.policy, pp);
  if (policy) {
    onlyFields(policy, (f) => pp.at(f), ['overprovisioningFactor']);
    // The overprovisioning factor is fixed at Envoy's default in the load balancer.
    const factor = wrapped(policy.overprovisioningFactor, pp.at('overprovisioningFactor'));
    if (factor !== undefined && factor !== 140) pp.at('overprovisioningFactor').fail(`${factor} ${NOT_SUPPORTED} (only Envoy's default 140)`);
  }
  const out: Endpoint[] = [];
  const seen = new Set<string>();
  list(a.endpoints, at('endpoints')).forEach((l, i) => {
    const lp = at('endpoints').at(i);
    const locality = obj(l, lp);
    // Locality weights only matter with locality_weighted_lb_config, which is refused; zone-aware routing needs
    // a local cluster, which keymesh's proxy has none of. Both are therefore inert here.
    if (!isUnset(locality.priority)) lp.at('priority').fail(`${String(locality.priority)} ${NOT_SUPPORTED} (only priority 0)`);
    onlyFields(locality, (f) => lp.at(f), ['locality', 'metadata', 'lbEndpoints', 'loadBalancerEndpoints', 'loadBalancingWeight', 'proximity']);
    const wrappedList = optObj(locality.loadBalancerEndpoints, lp.at('loadBalancerEndpoints'));
    const lbs = wrappedList ? list(wrappedList.lbEndpoints, lp.at('loadBalancerEndpoints').at('lbEndpoints')) : list(locality.lbEndpoints, lp.at('lbEndpoints'));
    const lbp = wrappedList ? lp.at('loadBalancerEndpoints').at('lbEndpoints') : lp.at('lbEndpoints');
    lbs.forEach((e, j) => {
      const endpoint = lbEndpoint(e, lbp.at(j), needIp);
      // Envoy keeps the first of duplicate addresses.
      const key = `${endpoint.address}\u0000${endpoint.port}`;
      if (seen.has(key)) return;
      seen.add(key);
      out.push(endpoint);
    });
  });
  return out;
}

/** A ClusterLoadAssignment (EDS) → its endpoints; every address must be an IP. */
export function compileLoadAssignment(resource: Json): Endpoint[] {
  const name = typeof resource.clusterName === 'string' && resource.clusterName ? resource.clusterName : '(unnamed)';
  const at = (field: string) => new Path(`cluster load assignment ${name}: ${field}`);
  if (name === '(unnamed)') at('clusterName').fail('must be a non-empty string');
  return assignmentEndpoints(resource, at, true);
}

// --- Circuit breakers, outlier detection ---

const ENVOY_THRESHOLDS: Thresholds = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3, trackRemaining: false };

function thresholds(v: unknown, path: Path): Thresholds {
  const t = obj(v, path);
  onlyFields(t, (f) => path.at(f), ['priority', 'maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries', 'retryBudget', 'trackRemaining']);
  let retryBudget: Thresholds['retryBudget'];
  const rbp = path.at('retryBudget');
  const rb = optObj(t.retryBudget, rbp);
  if (rb) {
    onlyFields(rb, (f) => rbp.at(f), ['budgetPercent', 'minRetryConcurrency']);
    retryBudget = { budgetPercent: percent(rb.budgetPercent, rbp.at('budgetPercent'), 20), minRetryConcurrency: uint(rb.minRetryConcurrency, rbp.at('minRetryConcurrency'), 3) };
  }
  return {
    maxConnections: uint(t.maxConnections, path.at('maxConnections'), ENVOY_THRESHOLDS.maxConnections),
    maxPendingRequests: uint(t.maxPendingRequests, path.at('maxPendingRequests'), ENVOY_THRESHOLDS.maxPendingRequests),
    maxRequests: uint(t.maxRequests, path.at('maxRequests'), ENVOY_THRESHOLDS.maxRequests),
    maxRetries: uint(t.maxRetries, path.at('maxRetries'), ENVOY_THRESHOLDS.maxRetries),
    trackRemaining: bool(t.trackRemaining, path.at('trackRemaining')),
    ...(retryBudget ? { retryBudget } : {}),
  };
}

function circuitBreakers(v: unknown, path: Path): ClusterSpec['circuitBreakers'] {
  const out = { default: ENVOY_THRESHOLDS, high: ENVOY_THRESHOLDS };
  const cb = optObj(v, path);
  if (!cb) return out;
  onlyFields(cb, (f) => path.at(f), ['thresholds']);
  const seen = new Set<string>();
  list(cb.thresholds, path.at('thresholds')).forEach((t, i) => {
    const tp = path.at('thresholds').at(i);
    const priority = enumOf(obj(t, tp).priority, tp.at('priority'), ['DEFAULT', 'HIGH'], 'DEFAULT');
    if (seen.has(priority)) tp.at('priority').fail(`${priority} is given twice`);
    seen.add(priority);
    out[priority === 'HIGH' ? 'high' : 'default'] = thresholds(t, tp);
  });
  return out;
}

function outlierDetection(v: unknown, path: Path): OutlierDetectionSpec | undefined {
  const o = optObj(v, path);
  if (!o) return undefined;
  const at = (f: string) => path.at(f);
  onlyFields(o, at, [
    'consecutive_5xx', 'consecutive5xx', 'interval', 'baseEjectionTime', 'maxEjectionPercent', 'enforcingConsecutive_5xx', 'enforcingConsecutive5xx',
    'enforcingSuccessRate', 'successRateMinimumHosts', 'successRateRequestVolume', 'successRateStdevFactor', 'consecutiveGatewayFailure',
    'enforcingConsecutiveGatewayFailure', 'splitExternalLocalOriginErrors', 'consecutiveLocalOriginFailure', 'enforcingConsecutiveLocalOriginFailure',
    'enforcingLocalOriginSuccessRate', 'failurePercentageThreshold', 'enforcingFailurePercentage', 'enforcingFailurePercentageLocalOrigin',
    'failurePercentageMinimumHosts', 'failurePercentageRequestVolume', 'maxEjectionTime', 'maxEjectionTimeJitter',
    'successfulActiveHealthCheckUnejectHost', 'alwaysEjectOneHost',
  ]);
  // protobufjs keeps `consecutive_5xx` as is (no letter follows the underscore); accept the camelCase spelling too.
  const c5 = o.consecutive_5xx !== undefined ? 'consecutive_5xx' : 'consecutive5xx';
  const e5 = o.enforcingConsecutive_5xx !== undefined ? 'enforcingConsecutive_5xx' : 'enforcingConsecutive5xx';
  const baseEjectionTimeMs = positiveMs(o.baseEjectionTime, at('baseEjectionTime'), 30_000);
  // Envoy: max_ejection_time defaults to 300 s or base_ejection_time, whichever is larger, and may not be smaller.
  const maxEjectionTimeMs = positiveMs(o.maxEjectionTime, at('maxEjectionTime'), Math.max(300_000, baseEjectionTimeMs));
  if (maxEjectionTimeMs < baseEjectionTimeMs) at('maxEjectionTime').fail('must not be smaller than baseEjectionTime');
  const maxEjectionPercent = uint(o.maxEjectionPercent, at('maxEjectionPercent'), 10);
  if (maxEjectionPercent > 100) at('maxEjectionPercent').fail('must be at most 100');
  return {
    consecutive5xx: uint(o[c5], at(c5), 5),
    intervalMs: positiveMs(o.interval, at('interval'), 10_000),
    baseEjectionTimeMs,
    maxEjectionTimeMs,
    maxEjectionTimeJitterMs: durationMs(o.maxEjectionTimeJitter, at('maxEjectionTimeJitter')) ?? 0,
    maxEjectionPercent,
    alwaysEjectOneHost: wrappedBool(o.alwaysEjectOneHost, at('alwaysEjectOneHost')) ?? false,
    enforcingConsecutive5xx: enforcing(o[e5], at(e5), 100),
    consecutiveGatewayFailure: uint(o.consecutiveGatewayFailure, at('consecutiveGatewayFailure'), 5),
    enforcingConsecutiveGatewayFailure: enforcing(o.enforcingConsecutiveGatewayFailure, at('enforcingConsecutiveGatewayFailure'), 0),
    splitExternalLocalOriginErrors: bool(o.splitExternalLocalOriginErrors, at('splitExternalLocalOriginErrors')),
    consecutiveLocalOriginFailure: uint(o.consecutiveLocalOriginFailure, at('consecutiveLocalOriginFailure'), 5),
    enforcingConsecutiveLocalOriginFailure: enforcing(o.enforcingConsecutiveLocalOriginFailure, at('enforcingConsecutiveLocalOriginFailure'), 100),
    enforcingSuccessRate: enforcing(o.enforcingSuccessRate, at('enforcingSuccessRate'), 100),
    enforcingLocalOriginSuccessRate: enforcing(o.enforcingLocalOriginSuccessRate, at('enforcingLocalOriginSuccessRate'), 100),
    successRateMinimumHosts: uint(o.successRateMinimumHosts, at('successRateMinimumHosts'), 5),
    successRateRequestVolume: uint(o.successRateRequestVolume, at('successRateRequestVolume'), 100),
    successRateStdevFactor: uint(o.successRateStdevFactor, at('successRateStdevFactor'), 1900),
    failurePercentageThreshold: enforcing(o.failurePercentageThreshold, at('failurePercentageThreshold'), 85),
    enforcingFailurePercentage: enforcing(o.enforcingFailurePercentage, at('enforcingFailurePercentage'), 0),
    enforcingFailurePercentageLocalOrigin: enforcing(o.enforcingFailurePercentageLocalOrigin, at('enforcingFailurePercentageLocalOrigin'), 0),
    failurePercentageMinimumHosts: uint(o.failurePercentageMinimumHosts, at('failurePercentageMinimumHosts'), 5),
    failurePercentageRequestVolume: uint(o.failurePercentageRequestVolume, at('failurePercentageRequestVolume'), 50),
    successfulActiveHealthCheckUnejectHost: wrappedBool(o.successfulActiveHealthCheckUnejectHost, at('successfulActiveHealthCheckUnejectHost')) ?? true,
  };
}

// --- Health checks ---

function payload(v: unknown, path: Path): Buffer {
  const p = obj(v, path);
  onlyFields(p, (f) => path.at(f), ['text', 'binary']);
  if (typeof p.text === 'string' && p.text !== '') {
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(p.text)) path.at('text').fail('must be hex-encoded bytes');
    return Buffer.from(p.text, 'hex');
  }
  if (typeof p.binary === 'string' && p.binary !== '') return Buffer.from(p.binary, 'base64');
  if (p.binary instanceof Uint8Array) return Buffer.from(p.binary);
  return path.fail('needs text (hex) or binary');
}

function headersToAdd(v: unknown, path: Path): HeaderToAdd[] {
  return list(v, path).map((h, i) => {
    const hp = path.at(i);
    const o = obj(h, hp);
    onlyFields(o, (f) => hp.at(f), ['header', 'append', 'appendAction', 'keepEmptyValue']);
    const header = obj(o.header, hp.at('header'));
    onlyFields(header, (f) => hp.at('header').at(f), ['key', 'value']);
    const name = str(header.key ?? '', hp.at('header').at('key')).toLowerCase();
    if (name === '') hp.at('header').at('key').fail('must not be empty');
    const value = str(header.value ?? '', hp.at('header').at('value'));
    if (value.includes('%')) hp.at('header').at('value').fail(`format strings (%…%) are ${NOT_SUPPORTED.slice(3)}`);
    const append = wrappedBool(o.append, hp.at('append'));
    let action = enumOf(o.appendAction, hp.at('appendAction'), ['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS'], 'APPEND_IF_EXISTS_OR_ADD');
    // The deprecated `append: false` means overwrite (and wins only when append_action is left at its default).
    if (append === false && action === 'APPEND_IF_EXISTS_OR_ADD') action = 'OVERWRITE_IF_EXISTS_OR_ADD';
    return { name, value, action };
  });
}

function statusRanges(v: unknown, path: Path): [number, number][] {
  return list(v, path).map((r, i) => {
    const rp = path.at(i);
    const o = obj(r, rp);
    onlyFields(o, (f) => rp.at(f), ['start', 'end']);
    const start = num(o.start ?? 0, rp.at('start'));
    const end = num(o.end ?? 0, rp.at('end'));
    if (start < 100) rp.at('start').fail('must be at least 100');
    if (end > 600) rp.at('end').fail('must be at most 600');
    if (start >= end) rp.fail('start must be below end (the range is [start, end))');
    return [start, end];
  });
}

const METHODS = ['METHOD_UNSPECIFIED', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

function httpHealthCheck(v: unknown, path: Path): HttpHealthCheckSpec {
  const h = obj(v, path);
  onlyFields(h, (f) => path.at(f), ['host', 'path', 'send', 'receive', 'responseBufferSize', 'requestHeadersToAdd', 'requestHeadersToRemove', 'expectedStatuses', 'retriableStatuses', 'codecClientType', 'method']);
  const p = str(h.path ?? '', path.at('path'));
  if (p === '') path.at('path').fail('must not be empty');
  const codec = enumOf(h.codecClientType, path.at('codecClientType'), ['HTTP1', 'HTTP2', 'HTTP3'], 'HTTP1');
  if (codec === 'HTTP3') path.at('codecClientType').fail(`HTTP3 ${NOT_SUPPORTED}`);
  let method: string = enumOf(h.method, path.at('method'), METHODS, 'METHOD_UNSPECIFIED');
  if (method === 'METHOD_UNSPECIFIED') method = 'GET';
  if (method === 'CONNECT') path.at('method').fail('CONNECT is not allowed for health checks');
  const send = h.send === undefined || h.send === null ? undefined : payload(h.send, path.at('send'));
  if (send && ['GET', 'HEAD', 'DELETE', 'TRACE'].includes(method)) path.at('send').fail(`a request payload needs a method with a body (POST, PUT, PATCH, OPTIONS), not ${method}`);
  const receive = list(h.receive, path.at('receive')).map((r, i) => payload(r, path.at('receive').at(i)));
  const responseBufferSize = uint(h.responseBufferSize, path.at('responseBufferSize'), 1024);
  const total = receive.reduce((n, b) => n + b.length, 0);
  if (responseBufferSize !== 0 && total > responseBufferSize) path.at('receive').fail(`expects ${total} bytes, more than responseBufferSize ${responseBufferSize}`);
  const expected = statusRanges(h.expectedStatuses, path.at('expectedStatuses'));
  const host = optStr(h.host, path.at('host'));
  return {
    type: 'http',
    path: p,
    ...(host !== undefined ? { host } : {}),
    method,
    codec: codec as HttpHealthCheckSpec['codec'],
    expectedStatuses: expected.length > 0 ? expected : [[200, 201]],
    retriableStatuses: statusRanges(h.retriableStatuses, path.at('retriableStatuses')),
    requestHeadersToAdd: headersToAdd(h.requestHeadersToAdd, path.at('requestHeadersToAdd')),
    requestHeadersToRemove: list(h.requestHeadersToRemove, path.at('requestHeadersToRemove')).map((n, i) => str(n, path.at('requestHeadersToRemove').at(i)).toLowerCase()),
    ...(send ? { send } : {}),
    receive,
    responseBufferSize,
  };
}

function healthChecks(v: unknown, path: Path): HealthCheckSpec | undefined {
  const checks = list(v, path);
  if (checks.length === 0) return undefined;
  // Envoy refuses more than one health check per cluster ("Multiple health checks not supported").
  if (checks.length > 1) path.fail('Envoy supports one health check per cluster');
  const hp = path.at(0);
  const h = obj(checks[0], hp);
  const at = (f: string) => hp.at(f);
  onlyFields(h, at, [
    'timeout', 'interval', 'initialJitter', 'intervalJitter', 'intervalJitterPercent', 'unhealthyThreshold', 'healthyThreshold', 'reuseConnection',
    'httpHealthCheck', 'tcpHealthCheck', 'grpcHealthCheck', 'noTrafficInterval', 'noTrafficHealthyInterval', 'unhealthyInterval',
    'unhealthyEdgeInterval', 'healthyEdgeInterval', 'alwaysLogHealthCheckFailures', 'alwaysLogHealthCheckSuccess', 'tlsOptions',
  ]);
  const timeoutMs = durationMs(h.timeout, at('timeout'));
  if (timeoutMs === undefined || timeoutMs <= 0) at('timeout').fail('is required and must be greater than zero');
  const intervalMs = durationMs(h.interval, at('interval'));
  if (intervalMs === undefined || intervalMs <= 0) at('interval').fail('is required and must be greater than zero');
  const threshold = (f: string) => {
    const n = wrapped(h[f], at(f));
    if (n === undefined) at(f).fail('is required');
    if (!Number.isInteger(n) || (n as number) < 1) at(f).fail('must be a positive integer');
    return n as number;
  };
  const which = ['httpHealthCheck', 'tcpHealthCheck', 'grpcHealthCheck'].filter((k) => h[k] !== undefined && h[k] !== null);
  if (which.length !== 1) hp.fail('needs exactly one of httpHealthCheck, tcpHealthCheck, grpcHealthCheck (custom health checkers are not supported by keymesh\'s proxy)');
  let check: HealthCheckSpec['check'];
  if (which[0] === 'httpHealthCheck') {
    check = httpHealthCheck(h.httpHealthCheck, at('httpHealthCheck'));
  } else if (which[0] === 'tcpHealthCheck') {
    const tp = at('tcpHealthCheck');
    const t = obj(h.tcpHealthCheck, tp);
    onlyFields(t, (f) => tp.at(f), ['send', 'receive']);
    const send = t.send === undefined || t.send === null ? undefined : payload(t.send, tp.at('send'));
    check = { type: 'tcp', ...(send ? { send } : {}), receive: list(t.receive, tp.at('receive')).map((r, i) => payload(r, tp.at('receive').at(i))) };
  } else {
    const gp = at('grpcHealthCheck');
    const g = obj(h.grpcHealthCheck, gp);
    onlyFields(g, (f) => gp.at(f), ['serviceName', 'authority', 'initialMetadata']);
    const authority = optStr(g.authority, gp.at('authority'));
    check = { type: 'grpc', serviceName: optStr(g.serviceName, gp.at('serviceName')) ?? '', ...(authority !== undefined ? { authority } : {}), initialMetadata: headersToAdd(g.initialMetadata, gp.at('initialMetadata')) };
  }
  const jitterPercent = h.intervalJitterPercent === undefined ? 0 : num(h.intervalJitterPercent, at('intervalJitterPercent'));
  const unhealthyIntervalMs = positiveMs(h.unhealthyInterval, at('unhealthyInterval'), intervalMs as number);
  const noTrafficIntervalMs = positiveMs(h.noTrafficInterval, at('noTrafficInterval'), 60_000);
  let alpnProtocols: string[] | undefined;
  const tls = optObj(h.tlsOptions, at('tlsOptions'));
  if (tls) {
    onlyFields(tls, (f) => at('tlsOptions').at(f), ['alpnProtocols']);
    alpnProtocols = list(tls.alpnProtocols, at('tlsOptions').at('alpnProtocols')).map((p, i) => str(p, at('tlsOptions').at('alpnProtocols').at(i)));
  }
  return {
    timeoutMs: timeoutMs as number,
    intervalMs: intervalMs as number,
    unhealthyIntervalMs,
    unhealthyEdgeIntervalMs: positiveMs(h.unhealthyEdgeInterval, at('unhealthyEdgeInterval'), unhealthyIntervalMs),
    healthyEdgeIntervalMs: positiveMs(h.healthyEdgeInterval, at('healthyEdgeInterval'), intervalMs as number),
    noTrafficIntervalMs,
    noTrafficHealthyIntervalMs: positiveMs(h.noTrafficHealthyInterval, at('noTrafficHealthyInterval'), noTrafficIntervalMs),
    initialJitterMs: durationMs(h.initialJitter, at('initialJitter')) ?? 0,
    intervalJitterMs: durationMs(h.intervalJitter, at('intervalJitter')) ?? 0,
    intervalJitterPercent: jitterPercent,
    healthyThreshold: threshold('healthyThreshold'),
    unhealthyThreshold: threshold('unhealthyThreshold'),
    reuseConnection: wrappedBool(h.reuseConnection, at('reuseConnection')) ?? true,
    ...(alpnProtocols ? { alpnProtocols } : {}),
    check,
  };
}

// --- HTTP protocol options, transport socket ---

function commonHttpOptions(v: unknown, path: Path): Omit<UpstreamHttpSpec, 'protocol' | 'protocolOptions' | 'upstreamHttpProtocolOptions'> {
  const c = optObj(v, path) ?? {};
  onlyFields(c, (f) => path.at(f), ['idleTimeout', 'maxConnectionDuration', 'maxHeadersCount', 'maxStreamDuration', 'headersWithUnderscoresAction', 'maxRequestsPerConnection']);
  const idle = durationMs(c.idleTimeout, path.at('idleTimeout'));
  const maxConnectionDurationMs = durationMs(c.maxConnectionDuration, path.at('maxConnectionDuration'));
  const maxStreamDurationMs = durationMs(c.maxStreamDuration, path.at('maxStreamDuration'));
  const maxRequestsPerConnection = wrapped(c.maxRequestsPerConnection, path.at('maxRequestsPerConnection'));
  return {
    idleTimeoutMs: idle === undefined ? DEFAULT_IDLE_TIMEOUT_MS : idle === 0 ? undefined : idle,
    ...(maxConnectionDurationMs ? { maxConnectionDurationMs } : {}),
    ...(maxStreamDurationMs ? { maxStreamDurationMs } : {}),
    ...(maxRequestsPerConnection ? { maxRequestsPerConnection } : {}),
    maxHeadersCount: uint(c.maxHeadersCount, path.at('maxHeadersCount'), DEFAULT_MAX_HEADERS, 1),
    headersWithUnderscoresAction: enumOf(c.headersWithUnderscoresAction, path.at('headersWithUnderscoresAction'), ['ALLOW', 'REJECT_REQUEST', 'DROP_HEADER'], 'ALLOW'),
  };
}

function httpSpec(c: Json, at: (field: string) => Path): UpstreamHttpSpec {
  let protocol: UpstreamHttpSpec['protocol'] = 'http1';
  let protocolOptions: Json = {};
  let common: unknown = c.commonHttpProtocolOptions;
  let commonPath = at('commonHttpProtocolOptions');
  let upstream = optObj(c.upstreamHttpProtocolOptions, at('upstreamHttpProtocolOptions'));
  // The deprecated cluster-level fields (still accepted by Envoy).
  if (c.http2ProtocolOptions !== undefined && c.http2ProtocolOptions !== null) {
    protocol = 'http2';
    protocolOptions = obj(c.http2ProtocolOptions, at('http2ProtocolOptions'));
  } else if (c.httpProtocolOptions !== undefined && c.httpProtocolOptions !== null) {
    protocolOptions = obj(c.httpProtocolOptions, at('httpProtocolOptions'));
  }
  const tp = at('typedExtensionProtocolOptions');
  const typedOptions = optObj(c.typedExtensionProtocolOptions, tp);
  for (const [key, value] of Object.entries(typedOptions ?? {})) {
    const kp = tp.at(key);
    if (key !== HTTP_PROTOCOL_OPTIONS) kp.fail(NOT_SUPPORTED);
    const o = typed(value, kp, [HTTP_PROTOCOL_OPTIONS_TYPE]);
    onlyFields(o, (f) => kp.at(f), ['@type', 'commonHttpProtocolOptions', 'upstreamHttpProtocolOptions', 'explicitHttpConfig']);
    // Envoy refuses the deprecated cluster-level protocol options next to HttpProtocolOptions.
    for (const legacy of ['http2ProtocolOptions', 'httpProtocolOptions', 'commonHttpProtocolOptions', 'upstreamHttpProtocolOptions']) {
      if (c[legacy] !== undefined && c[legacy] !== null) at(legacy).fail(`cannot be combined with typedExtensionProtocolOptions.${HTTP_PROTOCOL_OPTIONS}`);
    }
    if (o.commonHttpProtocolOptions !== undefined) {
      common = o.commonHttpProtocolOptions;
      commonPath = kp.at('commonHttpProtocolOptions');
    }
    if (o.upstreamHttpProtocolOptions !== undefined) upstream = obj(o.upstreamHttpProtocolOptions, kp.at('upstreamHttpProtocolOptions'));
    const ep = kp.at('explicitHttpConfig');
    // Without explicit_http_config Envoy refuses HttpProtocolOptions ("must configure one of …"); keymesh
    // implements only the explicit choice.
    if (o.explicitHttpConfig === undefined || o.explicitHttpConfig === null) ep.fail('is required (useDownstreamProtocolConfig and autoConfig are not supported by keymesh\'s proxy)');
    const explicit = obj(o.explicitHttpConfig, ep);
    onlyFields(explicit, (f) => ep.at(f), ['httpProtocolOptions', 'http2ProtocolOptions']);
    if (explicit.http2ProtocolOptions !== undefined && explicit.http2ProtocolOptions !== null) {
      protocol = 'http2';
      protocolOptions = obj(explicit.http2ProtocolOptions, ep.at('http2ProtocolOptions'));
    } else if (explicit.httpProtocolOptions !== undefined && explicit.httpProtocolOptions !== null) {
      protocol = 'http1';
      protocolOptions = obj(explicit.httpProtocolOptions, ep.at('httpProtocolOptions'));
    } else {
      ep.fail('needs httpProtocolOptions or http2ProtocolOptions');
    }
  }
  return { protocol, protocolOptions, ...commonHttpOptions(common, commonPath), ...(upstream ? { upstreamHttpProtocolOptions: upstream } : {}) };
}

function transportSocket(v: unknown, path: Path): Json | undefined {
  const t = optObj(v, path);
  if (!t) return undefined;
  onlyFields(t, (f) => path.at(f), ['name', 'typedConfig']);
  const name = str(t.name ?? '', path.at('name'));
  if (name === 'envoy.transport_sockets.raw_buffer') {
    if (t.typedConfig !== undefined && t.typedConfig !== null) typed(t.typedConfig, path.at('typedConfig'), [RAW_BUFFER_TYPE]);
    return undefined;
  }
  if (name !== 'envoy.transport_sockets.tls') {
    path.at('name').fail(`${name === '' ? '(empty)' : name} is not a transport socket keymesh's proxy supports (envoy.transport_sockets.tls, envoy.transport_sockets.raw_buffer)`);
  }
  typed(t.typedConfig, path.at('typedConfig'), [UPSTREAM_TLS_TYPE]);
  return t;
}

// --- The cluster ---

const CLUSTER_FIELDS = [
  'name', 'altStatName', 'type', 'edsClusterConfig', 'connectTimeout', 'perConnectionBufferLimitBytes', 'lbPolicy', 'loadAssignment', 'healthChecks',
  'maxRequestsPerConnection', 'circuitBreakers', 'upstreamHttpProtocolOptions', 'commonHttpProtocolOptions', 'httpProtocolOptions', 'http2ProtocolOptions',
  'typedExtensionProtocolOptions', 'dnsRefreshRate', 'dnsFailureRefreshRate', 'dnsLookupFamily', 'waitForWarmOnInit', 'outlierDetection', 'cleanupInterval',
  'commonLbConfig', 'roundRobinLbConfig', 'originalDstLbConfig', 'transportSocket', 'metadata', 'protocolSelection', 'upstreamConnectionOptions',
  'closeConnectionsOnHostHealthFailure', 'ignoreHealthOnHostRemoval', 'trackTimeoutBudgets', 'trackClusterStats',
];

function edsServiceName(c: Json, name: string, at: (field: string) => Path): string {
  const ep = at('edsClusterConfig');
  const eds = optObj(c.edsClusterConfig, ep);
  if (!eds) return ep.fail('is required for an EDS cluster');
  onlyFields(eds, (f) => ep.at(f), ['edsConfig', 'serviceName']);
  const sp = ep.at('edsConfig');
  const source = optObj(eds.edsConfig, sp);
  if (!source) sp.fail('is required (keymesh\'s proxy takes endpoints over ADS: { ads: {} })');
  const src = source as Json;
  onlyFields(src, (f) => sp.at(f), ['ads', 'resourceApiVersion', 'initialFetchTimeout']);
  if (src.ads === undefined || src.ads === null) sp.fail('must be { ads: {} }: keymesh\'s proxy takes endpoints over its ADS stream only');
  enumOf(src.resourceApiVersion, sp.at('resourceApiVersion'), ['AUTO', 'V2', 'V3'], 'AUTO');
  if (src.resourceApiVersion === 'V2') sp.at('resourceApiVersion').fail('V2 is not supported (xDS v3 only)');
  return optStr(eds.serviceName, ep.at('serviceName')) ?? name;
}

function dnsSettings(c: Json, at: (field: string) => Path): ClusterSpec['dns'] {
  const lookupFamily = enumOf(c.dnsLookupFamily, at('dnsLookupFamily'), ['AUTO', 'V4_ONLY', 'V6_ONLY', 'V4_PREFERRED', 'ALL'], 'AUTO');
  const refreshRateMs = positiveMs(c.dnsRefreshRate, at('dnsRefreshRate'), DEFAULT_DNS_REFRESH_MS);
  const fp = at('dnsFailureRefreshRate');
  const f = optObj(c.dnsFailureRefreshRate, fp);
  if (!f) return { lookupFamily, refreshRateMs };
  onlyFields(f, (k) => fp.at(k), ['baseInterval', 'maxInterval']);
  const baseMs = durationMs(f.baseInterval, fp.at('baseInterval'));
  if (baseMs === undefined || baseMs <= 0) fp.at('baseInterval').fail('is required and must be greater than zero');
  // Envoy: max_interval defaults to 10 × base_interval and must not be smaller.
  const maxMs = positiveMs(f.maxInterval, fp.at('maxInterval'), 10 * (baseMs as number));
  if (maxMs < (baseMs as number)) fp.at('maxInterval').fail('must not be smaller than baseInterval');
  return { lookupFamily, refreshRateMs, failureRefresh: { baseMs: baseMs as number, maxMs } };
}

function lbSettings(c: Json, at: (field: string) => Path, lbPolicy: string): ClusterSpec['lb'] {
  const rp = at('roundRobinLbConfig');
  const rr = optObj(c.roundRobinLbConfig, rp);
  if (rr) {
    if (lbPolicy !== 'ROUND_ROBIN') rp.fail(`does not apply to lbPolicy ${lbPolicy}`);
    onlyFields(rr, (f) => rp.at(f), []);
  }
  const op = at('originalDstLbConfig');
  const od = optObj(c.originalDstLbConfig, op);
  if (od) onlyFields(od, (f) => op.at(f), []);
  const cp = at('commonLbConfig');
  const common = optObj(c.commonLbConfig, cp) ?? {};
  // update_merge_window only batches host updates; consistent hashing options only apply to hash policies (refused);
  // zone-aware routing needs a local cluster, which keymesh's proxy has none of.
  onlyFields(common, (f) => cp.at(f), ['healthyPanicThreshold', 'updateMergeWindow', 'ignoreNewHostsUntilFirstHc', 'closeConnectionsOnHostSetChange', 'consistentHashingLbConfig', 'zoneAwareLbConfig']);
  return {
    healthyPanicThreshold: percent(common.healthyPanicThreshold, cp.at('healthyPanicThreshold'), 50),
    ignoreNewHostsUntilFirstHc: bool(common.ignoreNewHostsUntilFirstHc, cp.at('ignoreNewHostsUntilFirstHc')),
    closeConnectionsOnHostSetChange: bool(common.closeConnectionsOnHostSetChange, cp.at('closeConnectionsOnHostSetChange')),
  };
}

/** An Envoy v3 Cluster (protobufjs object form) → the validated spec keymesh's proxy runs. */
export function compileCluster(resource: Json): ClusterSpec {
  const name = typeof resource.name === 'string' ? resource.name : '';
  const label = name === '' ? '(unnamed)' : name;
  const at = (field: string) => new Path(`cluster ${label}: ${field}`);
  if (name === '') at('name').fail('must be a non-empty string');
  const c = resource;
  onlyFields(c, at, CLUSTER_FIELDS);

  const type = enumOf(c.type, at('type'), ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'EDS', 'ORIGINAL_DST'], 'STATIC');
  const lbPolicy = enumOf(c.lbPolicy, at('lbPolicy'), ['ROUND_ROBIN', 'LEAST_REQUEST', 'RING_HASH', 'RANDOM', 'MAGLEV', 'CLUSTER_PROVIDED', 'LOAD_BALANCING_POLICY_CONFIG'], 'ROUND_ROBIN');
  // Envoy: ORIGINAL_DST needs CLUSTER_PROVIDED, and CLUSTER_PROVIDED is only for cluster types that bring their own LB.
  if (type === 'ORIGINAL_DST' && lbPolicy !== 'CLUSTER_PROVIDED') at('lbPolicy').fail(`${lbPolicy} is not valid for an ORIGINAL_DST cluster (Envoy requires CLUSTER_PROVIDED)`);
  if (type !== 'ORIGINAL_DST' && lbPolicy === 'CLUSTER_PROVIDED') at('lbPolicy').fail(`CLUSTER_PROVIDED is not valid for a ${type} cluster`);
  if (lbPolicy !== 'ROUND_ROBIN' && lbPolicy !== 'CLUSTER_PROVIDED') at('lbPolicy').fail(`${lbPolicy} ${NOT_SUPPORTED} (ROUND_ROBIN, or CLUSTER_PROVIDED for ORIGINAL_DST)`);

  let endpoints: Endpoint[] = [];
  const la = optObj(c.loadAssignment, at('loadAssignment'));
  if (type === 'STATIC' || type === 'STRICT_DNS' || type === 'LOGICAL_DNS') {
    endpoints = la ? assignmentEndpoints(la, (f) => at('loadAssignment').at(f), type === 'STATIC') : [];
    if (type === 'LOGICAL_DNS' && endpoints.length !== 1) at('loadAssignment').fail(`a LOGICAL_DNS cluster needs exactly one endpoint, found ${endpoints.length}`);
  } else if (type === 'ORIGINAL_DST' && la && assignmentEndpoints(la, (f) => at('loadAssignment').at(f), true).length > 0) {
    at('loadAssignment').fail('an ORIGINAL_DST cluster takes its hosts from connections, not a load assignment');
  }
  const eds = type === 'EDS' ? edsServiceName(c, name, at) : undefined;
  if (type !== 'EDS' && c.edsClusterConfig !== undefined && c.edsClusterConfig !== null) at('edsClusterConfig').fail(`only applies to EDS clusters, not ${type}`);

  enumOf(c.protocolSelection, at('protocolSelection'), ['USE_CONFIGURED_PROTOCOL', 'USE_DOWNSTREAM_PROTOCOL'], 'USE_CONFIGURED_PROTOCOL');
  if (c.protocolSelection === 'USE_DOWNSTREAM_PROTOCOL') at('protocolSelection').fail(`USE_DOWNSTREAM_PROTOCOL ${NOT_SUPPORTED}`);

  const http = httpSpec(c, at);
  // The deprecated cluster-level max_requests_per_connection (common_http_protocol_options wins).
  const legacyMaxRequests = wrapped(c.maxRequestsPerConnection, at('maxRequestsPerConnection'));
  const httpWithLegacy = legacyMaxRequests && http.maxRequestsPerConnection === undefined ? { ...http, maxRequestsPerConnection: legacyMaxRequests } : http;

  let tcpKeepalive: ClusterSpec['tcpKeepalive'];
  const up = at('upstreamConnectionOptions');
  const uco = optObj(c.upstreamConnectionOptions, up);
  if (uco) {
    onlyFields(uco, (f) => up.at(f), ['tcpKeepalive']);
    const kp = up.at('tcpKeepalive');
    const k = optObj(uco.tcpKeepalive, kp);
    if (k) {
      onlyFields(k, (f) => kp.at(f), ['keepaliveProbes', 'keepaliveTime', 'keepaliveInterval']);
      const probes = wrapped(k.keepaliveProbes, kp.at('keepaliveProbes'));
      const timeS = wrapped(k.keepaliveTime, kp.at('keepaliveTime'));
      const intervalS = wrapped(k.keepaliveInterval, kp.at('keepaliveInterval'));
      tcpKeepalive = { ...(probes !== undefined ? { probes } : {}), ...(timeS !== undefined ? { timeS } : {}), ...(intervalS !== undefined ? { intervalS } : {}) };
    }
  }

  const healthCheck = healthChecks(c.healthChecks, at('healthChecks'));
  const outlier = outlierDetection(c.outlierDetection, at('outlierDetection'));
  const transport = transportSocket(c.transportSocket, at('transportSocket'));
  const altStatName = optStr(c.altStatName, at('altStatName'));
  return {
    name,
    observabilityName: altStatName ?? name,
    type,
    ...(eds !== undefined ? { eds: { serviceName: eds } } : {}),
    connectTimeoutMs: positiveMs(c.connectTimeout, at('connectTimeout'), DEFAULT_CONNECT_TIMEOUT_MS),
    lbPolicy: lbPolicy as ClusterSpec['lbPolicy'],
    endpoints,
    dns: dnsSettings(c, at),
    circuitBreakers: circuitBreakers(c.circuitBreakers, at('circuitBreakers')),
    ...(outlier ? { outlierDetection: outlier } : {}),
    ...(healthCheck ? { healthCheck } : {}),
    lb: lbSettings(c, at, lbPolicy),
    ignoreHealthOnHostRemoval: bool(c.ignoreHealthOnHostRemoval, at('ignoreHealthOnHostRemoval')),
    closeConnectionsOnHostHealthFailure: bool(c.closeConnectionsOnHostHealthFailure, at('closeConnectionsOnHostHealthFailure')),
    http: httpWithLegacy,
    ...(transport ? { transportSocket: transport } : {}),
    cleanupIntervalMs: positiveMs(c.cleanupInterval, at('cleanupInterval'), DEFAULT_CLEANUP_INTERVAL_MS),
    perConnectionBufferLimitBytes: uint(c.perConnectionBufferLimitBytes, at('perConnectionBufferLimitBytes'), DEFAULT_BUFFER_LIMIT),
    waitForWarmOnInit: wrappedBool(c.waitForWarmOnInit, at('waitForWarmOnInit')) ?? true,
    ...(tcpKeepalive ? { tcpKeepalive } : {}),
  };
}

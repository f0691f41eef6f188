// Small builders for Envoy v3 objects in protobufjs object form, shared by the listener, route and cluster
// modules: type URLs of the Any-typed extensions, ADS config sources, durations, filters, access logs.
import type { JsonObject } from '../model/json.ts';
import type { Duration, Protocol } from './spec.ts';

export const T = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  tcpProxy: 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  tlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  originalDst: 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  httpInspector: 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  downstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  upstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  fileAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
  httpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
} as const;

/**
 * Listener filters: original_dst restores the address iptables redirected from (for port matches and
 * ORIGINAL_DST clusters); tls_inspector detects TLS with its SNI and ALPN; http_inspector plaintext HTTP.
 *
 * Builders, not shared constants: every object in a translate output is its own, so a consumer that changes
 * one output (the proxy, a test) cannot change another proxy's output or the next translation.
 */
export function originalDstFilter(): JsonObject {
  return { name: 'envoy.filters.listener.original_dst', typedConfig: { '@type': T.originalDst } };
}
export function tlsInspectorFilter(): JsonObject {
  return { name: 'envoy.filters.listener.tls_inspector', typedConfig: { '@type': T.tlsInspector } };
}
export function httpInspectorFilter(): JsonObject {
  return { name: 'envoy.filters.listener.http_inspector', typedConfig: { '@type': T.httpInspector } };
}

/** Resources and secrets come over the proxy's one ADS stream. */
export function adsSource(): JsonObject {
  return { ads: {}, resourceApiVersion: 'V3' };
}

/**
 * The longest Duration keymesh emits: 9223372035 s (about 292 years). Protobuf allows 315576000000 s, but Envoy
 * converts most durations to int64 nanoseconds or milliseconds and refuses any whose seconds exceed
 * INT64_MAX / 1e9 = 9223372036 ("Duration out-of-range", validateDurationAsMilliseconds); one second less
 * leaves room for the nanos. App Mesh durations are unbounded longs, so a longer one (in practice "never") is
 * clamped to this, which is still "never".
 */
export const MAX_DURATION_SECONDS = 9_223_372_035;

/**
 * Every Duration in an output is made here: whole seconds and nanos, clamped to [0, MAX_DURATION_SECONDS]
 * (negative or NaN → 0; App Mesh's validators already refuse negative values).
 */
function durationOf(wholeSeconds: number, nanos: number): JsonObject {
  if (!(wholeSeconds >= 0) || !(nanos >= 0)) return { seconds: '0', nanos: 0 };
  let s = Math.floor(wholeSeconds);
  let n = Math.round(nanos);
  if (n >= 1e9) {
    s += Math.floor(n / 1e9);
    n %= 1e9;
  }
  if (s >= MAX_DURATION_SECONDS) return { seconds: String(MAX_DURATION_SECONDS), nanos: 0 };
  return { seconds: String(s), nanos: n };
}

export function seconds(s: number): JsonObject {
  const whole = Math.floor(s);
  return durationOf(whole, (s - whole) * 1e9);
}
export function millis(ms: number): JsonObject {
  const whole = Math.floor(ms / 1000);
  return durationOf(whole, (ms - whole * 1000) * 1e6);
}
/** An App Mesh Duration ({unit: s|ms, value}); unit defaults to seconds. */
export function duration(d: Duration): JsonObject {
  const v = d.value ?? 0;
  return d.unit === 'ms' ? millis(v) : seconds(v);
}

/** The largest value of Envoy's 32-bit unsigned fields (UInt32Value wrappers, plain uint32). */
export const MAX_UINT32 = 4_294_967_295;

/**
 * A count for a 32-bit unsigned Envoy field, clamped to [0, MAX_UINT32]. App Mesh's longs (retryPolicy.
 * maxRetries, outlierDetection.maxServerErrors) go up to 2^53 - 1, and protobuf would silently truncate a larger
 * value, or the encoder refuse it, breaking the proxy's whole configuration: a limit that large means "no
 * limit", and so does MAX_UINT32. Non-integers are truncated; NaN is 0.
 */
export function clampUint32(n: number): number {
  if (!(n > 0)) return 0;
  return n >= MAX_UINT32 ? MAX_UINT32 : Math.trunc(n);
}
/** A google.protobuf.UInt32Value: every wrapped count in an output (retries, thresholds, weights, limits) is made here. */
export function uint32(n: number): JsonObject {
  return { value: clampUint32(n) };
}

export function isHttpLike(p: Protocol): boolean {
  return p !== 'tcp';
}

export function tcpAddress(address: string, port: number): JsonObject {
  return { socketAddress: { address, portValue: port } };
}

/**
 * A listener's bind address. `::` gets ipv4_compat: like 0.0.0.0 it means "every address", and without it
 * Envoy binds IPv6 only, so the IPv4 connections iptables redirects to the listener would find nobody.
 */
export function listenerAddress(address: string, port: number): JsonObject {
  const a = tcpAddress(address, port);
  if (address === '::') (a.socketAddress as JsonObject).ipv4Compat = true;
  return a;
}

/** Where this host reaches a listener bound to `address`: loopback for the unspecified addresses, else itself. */
export function localDialAddress(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1';
  if (address === '::') return '::1';
  return address;
}

export interface AccessLogConfig { path: string; format?: { text?: string; json?: { key: string; value: string }[] } }

export function accessLogs(log: AccessLogConfig | undefined): JsonObject[] {
  if (!log) return [];
  const typedConfig: JsonObject = { '@type': T.fileAccessLog, path: log.path };
  if (log.format?.text !== undefined) {
    typedConfig.logFormat = { textFormatSource: { inlineString: log.format.text } };
  } else if (log.format?.json) {
    const fields: JsonObject = {};
    for (const { key, value } of log.format.json) fields[key] = { stringValue: value };
    typedConfig.logFormat = { jsonFormat: { fields } };
  }
  return [{ name: 'envoy.access_loggers.file', typedConfig }];
}

/** An HTTP connection manager that takes its routes over RDS. */
export function httpConnectionManager(stat: string, routeConfigName: string, log: AccessLogConfig | undefined): JsonObject {
  const hcm: JsonObject = {
    '@type': T.hcm,
    statPrefix: stat,
    codecType: 'AUTO',
    rds: { routeConfigName, configSource: adsSource() },
    httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': T.router } }],
    // App Mesh's Envoys pass WebSocket upgrades through (released in 2020: aws-app-mesh-roadmap#119, #253).
    upgradeConfigs: [{ upgradeType: 'websocket' }],
  };
  const logs = accessLogs(log);
  if (logs.length > 0) hcm.accessLog = logs;
  return { name: 'envoy.filters.network.http_connection_manager', typedConfig: hcm };
}

export function tcpProxy(stat: string, cluster: string | JsonObject[], log: AccessLogConfig | undefined, idle?: JsonObject): JsonObject {
  const cfg: JsonObject = { '@type': T.tcpProxy, statPrefix: stat };
  if (typeof cluster === 'string') cfg.cluster = cluster;
  else cfg.weightedClusters = { clusters: cluster };
  if (idle) cfg.idleTimeout = idle;
  const logs = accessLogs(log);
  if (logs.length > 0) cfg.accessLog = logs;
  return { name: 'envoy.filters.network.tcp_proxy', typedConfig: cfg };
}

export function byName<T extends { readonly name: string }>(a: T, b: T): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

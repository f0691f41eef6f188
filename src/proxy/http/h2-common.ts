// What the HTTP/2 forwarding paths share: Envoy's HTTP/2 settings, header conversions (RFC 9113 §8.2.2
// connection-specific fields), the gRPC local-reply mapping, the retry conditions, and the connection manager's
// HTTP/2 counters.
//
// Envoy behaviour kept:
// - Connection-specific fields (connection, keep-alive, proxy-connection, transfer-encoding, upgrade, and te other
//   than `trailers`) never cross into HTTP/2; `te: trailers` is kept (gRPC needs it).
// - A local reply to a gRPC request (content-type application/grpc or application/grpc+...) is a trailers-only
//   response: HTTP 200, content-type application/grpc, grpc-status from the HTTP status by
//   Grpc::Utility::httpToGrpcStatus (400 → INTERNAL, 401 → UNAUTHENTICATED, 403 → PERMISSION_DENIED,
//   404 → UNIMPLEMENTED, 429/502/503/504 → UNAVAILABLE, else UNKNOWN), grpc-message the percent-encoded body.
// - Retry conditions as RetryStateImpl: 5xx, gateway-error, retriable-4xx (409), retriable-status-codes on the
//   status; cancelled, deadline-exceeded, internal, resource-exhausted, unavailable on a grpc-status in the
//   response headers (trailers-only responses); connect-failure, reset, refused-stream on failures.
import { constants, type Http2Stream } from 'node:http2';
import type { Counter } from '../admin/stats.ts';
import type { RetryPolicy } from '../routing/compile.ts';
import type { HttpManagerStats } from './http1-session.ts';

/** Request bytes kept to replay on a retry (same as the HTTP/1 forwarder); a longer body disables retries. */
export const H2_RETRY_BUFFER_LIMIT = 64 * 1024;

/**
 * Flow-control windows. Envoy's defaults are 256 MiB (stream and connection), which lets one peer park a quarter
 * gigabyte in the proxy before back-pressure bites; keymesh bounds a stream to Envoy's per-connection buffer
 * limit (1 MiB, the point where Envoy itself stops reading) and a connection to 16 of those.
 */
export const STREAM_WINDOW = 1024 * 1024;
export const CONNECTION_WINDOW = 16 * 1024 * 1024;
/** Envoy's http2_protocol_options.max_concurrent_streams default. */
export const MAX_CONCURRENT_STREAMS = 2147483647;
/** Envoy's max_request_headers_kb (60) and max_headers_count (100). */
export const MAX_HEADER_LIST_SIZE = 60 * 1024;
export const MAX_HEADER_PAIRS = 100;
/** Envoy's stream_idle_timeout default (5 minutes), used when the route sets no idle_timeout. */
export const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000;
/** Envoy's common_http_protocol_options.idle_timeout default: a connection without streams for 1 hour is closed. */
export const CONNECTION_IDLE_TIMEOUT_MS = 3_600_000;

export const { NGHTTP2_NO_ERROR, NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR } = constants;

const RESET = new Error('stream reset by the proxy');

/**
 * RST_STREAM. With our sending side done, the frame carries `code`. With it still open node can only send
 * INTERNAL_ERROR: its close(code) would first end the stream (END_STREAM), making a truncated message look
 * complete, and a NO_ERROR reset reads as a clean end to node peers. (Envoy resets with NO_ERROR; the peer must
 * see that the message was cut, so the open case is INTERNAL_ERROR here.)
 */
export function resetStream(stream: Http2Stream, code: number): void {
  if (stream.closed || stream.destroyed) return;
  if (stream.writableEnded) stream.close(code);
  else stream.destroy(RESET);
}

/** `http.<stat_prefix>.` counters of HTTP/2 traffic; present when the stats came from httpStatsWithHttp2. */
export interface Http2ManagerStats extends HttpManagerStats {
  readonly rqHttp2Total: Counter;
  readonly cxHttp2Total: Counter;
  readonly rqIdleTimeout: Counter;
}

export function http2Counters(stats: HttpManagerStats): Partial<Pick<Http2ManagerStats, 'rqHttp2Total' | 'cxHttp2Total' | 'rqIdleTimeout'>> {
  return stats as Partial<Http2ManagerStats>;
}

// --- headers -------------------------------------------------------------------------------------------

const DROP = 1;
const TE = 2;

/** DROP for the connection-specific fields of RFC 9113 §8.2.2 (lower-case names), TE for `te`, else 0. */
export function connectionSpecific(name: string): number {
  switch (name.length) {
    case 2:
      return name === 'te' ? TE : 0;
    case 7:
      return name === 'upgrade' ? DROP : 0;
    case 10:
      return name === 'connection' || name === 'keep-alive' ? DROP : 0;
    case 16:
      return name === 'proxy-connection' ? DROP : 0;
    case 17:
      return name === 'transfer-encoding' ? DROP : 0;
    default:
      return 0;
  }
}

export function isConnectionSpecific(name: string, value: string): boolean {
  const k = connectionSpecific(name);
  return k === DROP || (k === TE && !teTrailers(value));
}

/** node refused a header list (names, values, duplicates of single-value fields, connection-specific fields). */
export function isHeaderError(e: unknown): boolean {
  const code = (e as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return false;
  return code.startsWith('ERR_HTTP2_HEADER') || code.startsWith('ERR_HTTP2_INVALID_') || code === 'ERR_INVALID_HTTP_TOKEN' || code === 'ERR_INVALID_CHAR';
}

/** `te` offering `trailers` (the only value allowed in HTTP/2). */
export function teTrailers(value: string): boolean {
  if (value === 'trailers') return true;
  for (const part of value.split(',')) {
    const semi = part.indexOf(';');
    if ((semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase() === 'trailers') return true;
  }
  return false;
}

/** The value of `name` (lower-case) in a flat [name, value, ...] list, the first one. */
export function rawGet(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i] === name) return raw[i + 1];
  return undefined;
}

/** A response header list without connection-specific fields; the same array when it has none (the usual case). */
export function cleanResponseHeaders(raw: string[]): string[] {
  let out: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const drop = isConnectionSpecific(raw[i]!, raw[i + 1]!) || raw[i] === 'te';
    if (drop && !out) out = raw.slice(0, i);
    else if (!drop && out) out.push(raw[i]!, raw[i + 1]!);
  }
  return out ?? raw;
}

/** Envoy's Grpc::Common::hasGrpcContentType. */
export function isGrpcContentType(ct: string | undefined): boolean {
  return ct !== undefined && ct.startsWith('application/grpc') && (ct.length === 16 || ct.charCodeAt(16) === 43);
}

// --- gRPC ------------------------------------------------------------------------------------------------

export const GRPC_CANCELLED = 1;
export const GRPC_UNKNOWN = 2;
export const GRPC_DEADLINE_EXCEEDED = 4;
export const GRPC_RESOURCE_EXHAUSTED = 8;
export const GRPC_UNIMPLEMENTED = 12;
export const GRPC_INTERNAL = 13;
export const GRPC_UNAVAILABLE = 14;

/** Envoy's Grpc::Utility::httpToGrpcStatus. */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400: return GRPC_INTERNAL;
    case 401: return 16;
    case 403: return 7;
    case 404: return GRPC_UNIMPLEMENTED;
    case 429: case 502: case 503: case 504: return GRPC_UNAVAILABLE;
    default: return GRPC_UNKNOWN;
  }
}

/** Envoy's Grpc::Utility::grpcToHttpStatus (for outlier detection of gRPC responses). */
export function httpStatusForGrpc(code: number): number {
  switch (code) {
    case 0: return 200;
    case 1: return 499;
    case 3: case 9: case 11: return 400;
    case 4: return 504;
    case 5: return 404;
    case 6: case 10: return 409;
    case 7: return 403;
    case 8: return 429;
    case 12: return 501;
    case 14: return 503;
    case 16: return 401;
    default: return 500;
  }
}

/** grpc-message is percent-encoded (gRPC PROTOCOL-HTTP2: anything outside 0x20-0x7E, and '%'). */
export function grpcMessage(text: string): string {
  let plain = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return text;
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

// --- retries ---------------------------------------------------------------------------------------------

export function retriableStatus(policy: RetryPolicy, status: number): boolean {
  for (const on of policy.retryOn) {
    if (on === '5xx' && status >= 500) return true;
    if (on === 'gateway-error' && (status === 502 || status === 503 || status === 504)) return true;
    if (on === 'retriable-4xx' && status === 409) return true;
    if (on === 'retriable-status-codes' && policy.retriableStatusCodes.includes(status)) return true;
  }
  return false;
}

/** gRPC retry_on conditions, on a grpc-status found in the response headers. */
export function retriableGrpc(policy: RetryPolicy, code: number): boolean {
  for (const on of policy.retryOn) {
    if ((on === 'cancelled' && code === GRPC_CANCELLED) || (on === 'deadline-exceeded' && code === GRPC_DEADLINE_EXCEEDED)
      || (on === 'internal' && code === GRPC_INTERNAL) || (on === 'resource-exhausted' && code === GRPC_RESOURCE_EXHAUSTED)
      || (on === 'unavailable' && code === GRPC_UNAVAILABLE)) return true;
  }
  return false;
}

export type UpstreamFailureKind = 'connect-failure' | 'reset' | 'refused-stream' | 'timeout';

export function retriableFailure(policy: RetryPolicy, what: UpstreamFailureKind): boolean {
  for (const on of policy.retryOn) {
    switch (what) {
      case 'connect-failure':
        if (on === 'connect-failure' || on === '5xx' || on === 'gateway-error') return true;
        break;
      case 'reset':
        if (on === 'reset' || on === '5xx' || on === 'gateway-error' || on === 'reset-before-request') return true;
        break;
      case 'refused-stream':
        if (on === 'refused-stream' || on === 'reset' || on === '5xx' || on === 'gateway-error' || on === 'reset-before-request') return true;
        break;
      case 'timeout':
        // A per-try timeout counts as a 504 from that try.
        if (on === '5xx' || on === 'gateway-error') return true;
        break;
    }
  }
  return false;
}

/** Exponential back-off with full jitter (Envoy's JitteredExponentialBackOffStrategy). */
export function retryBackOffMs(policy: RetryPolicy, attempts: number, random: () => number): number {
  const cap = Math.min(policy.backOff.maxMs, policy.backOff.baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.floor(random() * cap);
}

/** Envoy's reset reason text in `upstream connect error or disconnect/reset before headers. reset reason: ...`. */
export function resetReasonText(kind: 'reset' | 'refused' | 'termination' | 'protocol'): string {
  switch (kind) {
    case 'reset': return 'remote reset';
    case 'refused': return 'remote refused stream reset';
    case 'termination': return 'connection termination';
    case 'protocol': return 'protocol error';
  }
}

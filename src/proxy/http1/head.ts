// The parsed forms of an HTTP/1.1 message head, the body framing derived from it, and the limits the parser
// enforces. Heads are plain frozen-shape objects: the raw header list as received (case and order kept),
// plus the few fields the proxy needs derived once (host, framing, keep-alive, upgrade, expect).

export type HttpVersion = '1.0' | '1.1';

/** The four request-target forms of RFC 9112 §3.2. */
export type TargetForm = 'origin' | 'absolute' | 'authority' | 'asterisk';

/**
 * How the message body is delimited (RFC 9112 §6.3): no body; exactly `n` bytes; chunked (the proxy forwards
 * the chunked framing itself, verbatim); or everything until the connection closes (responses only).
 */
export type BodyFraming =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly n: number }
  | { readonly kind: 'chunked' }
  | { readonly kind: 'close' };

export const NO_BODY: BodyFraming = Object.freeze({ kind: 'none' });
export const CHUNKED: BodyFraming = Object.freeze({ kind: 'chunked' });
export const UNTIL_CLOSE: BodyFraming = Object.freeze({ kind: 'close' });

interface HeadCommon {
  /** Protocol version of the message as received. */
  readonly version: HttpVersion;
  /** Raw header fields, flat: [name, value, name, value, ...]; names keep their case, values are OWS-trimmed latin1. */
  readonly headers: readonly string[];
  /** Content-Length when present (and it decides the framing unless the message cannot have a body). */
  readonly contentLength: number | undefined;
  /** Transfer-Encoding: chunked is present. */
  readonly chunked: boolean;
  /** How the body that follows the head is delimited. */
  readonly framing: BodyFraming;
  /** The connection may carry another message after this one (version default, Connection: close / keep-alive). */
  readonly keepAlive: boolean;
  /** The Connection options, lowercased, when a Connection header is present: the hop-by-hop headers it nominates. */
  readonly connectionTokens: readonly string[] | undefined;
  /** Upgrade header value when the message asks for (or, in a 101, performs) a protocol upgrade. */
  readonly upgrade: string | undefined;
  /**
   * A hop-by-hop field is present (Connection, Keep-Alive, Proxy-Connection, Upgrade, TE): forwarding must
   * rewrite the head. Without one (and without other edits) an HTTP/1.1 head can go out as the bytes received.
   */
  readonly hopByHop: boolean;
}

export interface RequestHead extends HeadCommon {
  /** Method as received (case-sensitive token). */
  readonly method: string;
  /** request-target as received. */
  readonly target: string;
  readonly form: TargetForm;
  /** absolute-form only: the scheme, lowercased. */
  readonly scheme: string | undefined;
  /** absolute-form: the URI's authority; authority-form (CONNECT): the target itself. */
  readonly authority: string | undefined;
  /** The origin-form of the target: path and query ('/' when absolute-form has none), '*' for asterisk-form, '' for CONNECT. */
  readonly path: string;
  /** The target host per RFC 9112 §3.3: the authority of an absolute/authority-form target, else the Host header. */
  readonly host: string | undefined;
  /** Expect: 100-continue on an HTTP/1.1 request. */
  readonly expectContinue: boolean;
  /** An X-Forwarded-Proto field is present (the proxy replaces it with its own). */
  readonly forwardedProto: boolean;
}

export interface ResponseHead extends HeadCommon {
  readonly status: number;
  /** Reason phrase as received (may be empty). */
  readonly reason: string;
  /** The bytes after this head are no longer HTTP: a 101 Switching Protocols, or a 2xx answer to CONNECT. */
  readonly tunnel: boolean;
}

export interface ParsedRequest {
  readonly head: RequestHead;
  /** Index in the buffer of the head's first byte (after any empty lines skipped before a request-line). */
  readonly start: number;
  /** Index in the buffer just past the blank line that ends the head. */
  readonly end: number;
}

export interface ParsedResponse {
  readonly head: ResponseHead;
  readonly start: number;
  readonly end: number;
}

export interface HeadLimits {
  /** Most bytes a head may take, from its first byte (leading blank lines included) through the blank line. */
  readonly maxHeadBytes: number;
  /** Most header fields a head may carry. */
  readonly maxHeaderCount: number;
}

/** Envoy's defaults: max_request_headers_kb = 60, max_headers_count = 100. */
export const DEFAULT_HEAD_LIMITS: HeadLimits = Object.freeze({ maxHeadBytes: 60 * 1024, maxHeaderCount: 100 });

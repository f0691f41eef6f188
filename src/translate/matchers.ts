// App Mesh route matches (router routes and gateway routes) as Envoy RouteMatch objects.
import type { JsonObject } from '../model/json.ts';
import type { GrpcMatch, HeaderMatcherSpec, HttpMatch } from './spec.ts';

export function headerMatcher(h: HeaderMatcherSpec): JsonObject {
  const out: JsonObject = { name: h.name };
  const m = h.match;
  if (!m) out.presentMatch = true;
  else if (m.exact !== undefined) out.stringMatch = { exact: m.exact };
  else if (m.prefix !== undefined) out.stringMatch = { prefix: m.prefix };
  else if (m.suffix !== undefined) out.stringMatch = { suffix: m.suffix };
  else if (m.regex !== undefined) out.stringMatch = { safeRegex: { regex: m.regex } };
  else if (m.range) out.rangeMatch = { start: String(m.range.start), end: String(m.range.end) };
  else out.presentMatch = true;
  if (h.invert) out.invertMatch = true;
  return out;
}

function hostnameMatcher(hostname: { exact?: string; suffix?: string } | undefined): JsonObject[] {
  if (hostname?.exact !== undefined) return [{ name: ':authority', stringMatch: { exact: hostname.exact } }];
  if (hostname?.suffix !== undefined) return [{ name: ':authority', stringMatch: { suffix: hostname.suffix } }];
  return [];
}

export function httpRouteMatch(m: HttpMatch): JsonObject {
  const out: JsonObject = {};
  if (m.path?.exact !== undefined) out.path = m.path.exact;
  else if (m.path?.regex !== undefined) out.safeRegex = { regex: m.path.regex };
  else out.prefix = m.prefix ?? '/';
  const headers: JsonObject[] = [...hostnameMatcher(m.hostname)];
  if (m.method) headers.push({ name: ':method', stringMatch: { exact: m.method } });
  if (m.scheme) headers.push({ name: ':scheme', stringMatch: { exact: m.scheme } });
  headers.push(...(m.headers ?? []).map(headerMatcher));
  if (headers.length > 0) out.headers = headers;
  if (m.queryParameters && m.queryParameters.length > 0) {
    out.queryParameters = m.queryParameters.map((q): JsonObject =>
      q.match?.exact !== undefined ? { name: q.name, stringMatch: { exact: q.match.exact } } : { name: q.name, presentMatch: true });
  }
  return out;
}

/** gRPC: service and method become the HTTP/2 path `/<service>/<method>`; metadata becomes headers. */
export function grpcRouteMatch(m: GrpcMatch): JsonObject {
  const out: JsonObject = {};
  if (m.serviceName !== undefined && m.methodName !== undefined) out.path = `/${m.serviceName}/${m.methodName}`;
  else if (m.serviceName !== undefined) out.prefix = `/${m.serviceName}/`;
  else out.prefix = '/';
  const headers: JsonObject[] = [...hostnameMatcher(m.hostname), ...(m.metadata ?? []).map(headerMatcher)];
  if (headers.length > 0) out.headers = headers;
  out.grpc = {};
  return out;
}

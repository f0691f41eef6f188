// Builders for the routing tests: route configurations in protobufjs object form, and request views.
import type { Json } from '../resources/values.ts';
import type { RequestView } from './select.ts';

export function rc(virtualHosts: Json[], name = 'r', extra: Json = {}): Json {
  return { name, virtualHosts, ...extra };
}

export function vhost(name: string, domains: string[], routes: Json[]): Json {
  return { name, domains, routes };
}

/** A route to `cluster` matching `match`. */
export function to(cluster: string, match: Json = { prefix: '/' }, action: Json = {}): Json {
  return { name: cluster, match, route: { cluster, ...action } };
}

/** A request view; header names are looked up case-insensitively, as the HTTP layers will. */
export function request(authority: string | undefined, path = '/', headers: Record<string, string | string[]> = {}, method = 'GET', scheme?: string): RequestView {
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { authority, path, method, scheme, header: (name) => lower.get(name) };
}

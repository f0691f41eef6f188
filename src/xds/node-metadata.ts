// Where a proxy runs, from the `keymesh` entry of its Envoy `node.metadata`: the addresses and ports its
// listeners use, and the instance it registers for its virtual node. On one machine (no iptables) every
// sidecar needs its own ingress and egress ports, and its clients reach it at its ingress port; App Mesh's
// defaults (0.0.0.0, 15000, 15001, application on 127.0.0.1) apply to what is not given.
//
//   node:
//     metadata:
//       keymesh:
//         listen_address: 127.0.0.1   # the address its listeners bind
//         ingress_port: 15010
//         egress_port: 15011
//         app_address: 127.0.0.1      # where its application listens (at the listener's port)
//         tcp_egress_address: 127.0.1.1  # opt-in: a listener here at each tcp backend's port (no iptables)
//         upstream_max_requests_per_connection: 1  # opt-in: its egress clusters' max_requests_per_connection
//         upstream_tls_max_session_keys: 0         # opt-in: their UpstreamTlsContext max_session_keys (0: no resumption)
//         endpoint:                   # its registration (virtual nodes only); `endpoint: false`: none
//           address: 127.0.0.1        # default: listen_address, or the address it connects from
//           port: 15010               # default: ingress_port
//           ports: [9090]             # further listener ports it serves
//           instance: web-1           # default: <address>:<port>
//
// Pure; a bad value is a BadRequestError naming the field.
import { isIP } from 'node:net';
import { BadRequestError } from '../errors/index.ts';

export interface PlacementOptions {
  readonly listenAddress?: string;
  readonly ingressPort?: number;
  readonly egressPort?: number;
  readonly appAddress?: string;
  /** TranslateOptions.tcpEgressAddress. */
  readonly tcpEgressAddress?: string;
  /** TranslateOptions.upstreamMaxRequestsPerConnection. */
  readonly upstreamMaxRequestsPerConnection?: number;
  /** TranslateOptions.upstreamTlsMaxSessionKeys. */
  readonly upstreamTlsMaxSessionKeys?: number;
}

export interface EndpointClaim {
  readonly address?: string;
  readonly port?: number;
  readonly ports?: readonly number[];
  readonly instance?: string;
}

export interface ProxyPlacement {
  /** Translation options for this proxy. */
  readonly options: PlacementOptions;
  /** What it registers; null: nothing. */
  readonly endpoint: EndpointClaim | null;
}

export const DEFAULT_PLACEMENT: ProxyPlacement = { options: {}, endpoint: {} };
const DEFAULT_INGRESS_PORT = 15000;

const fail = (field: string, problem: string): never => {
  throw new BadRequestError(`node.metadata.keymesh${field ? `.${field}` : ''} ${problem}`);
};

function objectAt(value: unknown, field: string, allowed: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail(field, 'must be a struct');
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(`${field ? `${field}.` : ''}${k}`, `is not a keymesh setting (known: ${allowed.join(', ')})`);
  return o;
}

function address(o: Record<string, unknown>, key: string, field: string): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || isIP(v) === 0) return fail(field, `must be an IP address, not ${JSON.stringify(v)}`);
  return v;
}

function port(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) return fail(field, `must be a port (1-65535), not ${JSON.stringify(v)}`);
  return v;
}

const optionalPort = (o: Record<string, unknown>, key: string, field: string): number | undefined => (o[key] === undefined ? undefined : port(o[key], field));

const UINT32_MAX = 4294967295;

/** An Envoy uint32 setting of at least `min`. */
function count(o: Record<string, unknown>, key: string, min: number): number | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > UINT32_MAX) return fail(key, `must be an integer from ${min} to ${UINT32_MAX}, not ${JSON.stringify(v)}`);
  return v;
}

const TOP = ['listen_address', 'ingress_port', 'egress_port', 'app_address', 'tcp_egress_address', 'upstream_max_requests_per_connection', 'upstream_tls_max_session_keys', 'endpoint'];
const ENDPOINT = ['address', 'port', 'ports', 'instance'];

/** The placement a proxy's node.metadata describes (plain JSON, see structToJson); defaults when it has none. */
export function placementOf(metadata: Record<string, unknown> | undefined): ProxyPlacement {
  const raw = metadata?.keymesh;
  if (raw === undefined) return DEFAULT_PLACEMENT;
  const k = objectAt(raw, '', TOP);
  const options: { -readonly [K in keyof PlacementOptions]: PlacementOptions[K] } = {};
  const listenAddress = address(k, 'listen_address', 'listen_address');
  if (listenAddress !== undefined) options.listenAddress = listenAddress;
  const ingressPort = optionalPort(k, 'ingress_port', 'ingress_port');
  if (ingressPort !== undefined) options.ingressPort = ingressPort;
  const egressPort = optionalPort(k, 'egress_port', 'egress_port');
  if (egressPort !== undefined) options.egressPort = egressPort;
  if ((ingressPort ?? DEFAULT_INGRESS_PORT) === (egressPort ?? DEFAULT_INGRESS_PORT + 1)) fail('egress_port', 'must differ from ingress_port');
  const appAddress = address(k, 'app_address', 'app_address');
  if (appAddress !== undefined) options.appAddress = appAddress;
  const tcpEgressAddress = address(k, 'tcp_egress_address', 'tcp_egress_address');
  if (tcpEgressAddress !== undefined) options.tcpEgressAddress = tcpEgressAddress;
  const maxRequests = count(k, 'upstream_max_requests_per_connection', 1);
  if (maxRequests !== undefined) options.upstreamMaxRequestsPerConnection = maxRequests;
  const maxSessionKeys = count(k, 'upstream_tls_max_session_keys', 0);
  if (maxSessionKeys !== undefined) options.upstreamTlsMaxSessionKeys = maxSessionKeys;
  return { options, endpoint: endpointOf(k.endpoint) };
}

function endpointOf(raw: unknown): EndpointClaim | null {
  if (raw === undefined || raw === true) return {};
  if (raw === false) return null;
  const e = objectAt(raw, 'endpoint', ENDPOINT);
  const claim: { -readonly [K in keyof EndpointClaim]: EndpointClaim[K] } = {};
  const a = address(e, 'address', 'endpoint.address');
  if (a !== undefined) claim.address = a;
  const p = optionalPort(e, 'port', 'endpoint.port');
  if (p !== undefined) claim.port = p;
  if (e.ports !== undefined) {
    if (!Array.isArray(e.ports)) fail('endpoint.ports', 'must be a list of ports');
    claim.ports = (e.ports as unknown[]).map((v, i) => port(v, `endpoint.ports[${i}]`));
  }
  if (e.instance !== undefined) {
    if (typeof e.instance !== 'string') fail('endpoint.instance', 'must be a string');
    claim.instance = e.instance as string;
  }
  return claim;
}

const WILDCARDS = new Set(['0.0.0.0', '::']);

/** The IP address of a gRPC peer string (`1.2.3.4:5`, `[::1]:5`, `ipv4:1.2.3.4:5`), or undefined. */
export function peerIp(peer: string): string | undefined {
  const m = /^(?:ipv[46]:)?\[?([^\]]*?)\]?:\d+$/.exec(peer);
  const ip = m?.[1];
  return ip && isIP(ip) ? ip : undefined;
}

/**
 * The instance a virtual node's proxy registers: its claim, else its listen address (unless a wildcard), else
 * the address it connects from, at its ingress port. Undefined when it registers nothing or no address is known.
 */
export function registrationOf(placement: ProxyPlacement, peerAddress: string | undefined): { address: string; port: number; ports?: readonly number[]; instance?: string } | undefined {
  const claim = placement.endpoint;
  if (!claim) return undefined;
  const listen = placement.options.listenAddress;
  const address = claim.address ?? (listen && !WILDCARDS.has(listen) ? listen : peerAddress);
  if (!address) return undefined;
  return {
    address,
    port: claim.port ?? placement.options.ingressPort ?? DEFAULT_INGRESS_PORT,
    ...(claim.ports ? { ports: claim.ports } : {}),
    ...(claim.instance !== undefined ? { instance: claim.instance } : {}),
  };
}

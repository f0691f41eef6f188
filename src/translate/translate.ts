// translate(input): one proxy's Envoy v3 resources from the App Mesh resources of its mesh. Pure and
// deterministic: every list is sorted by resource name, nothing reads a clock or the environment.
import { NotFoundError } from '../errors/index.ts';
import type { JsonObject } from '../model/json.ts';
import type { EnvoyConfig, TranslateInput } from './api.ts';
import { type Backend, ClusterSet, egress, type EgressContext } from './egress.ts';
import type { AccessLogConfig } from './envoy.ts';
import { gateway, gatewayEgressPort } from './gateway.ts';
import { ingress } from './ingress.ts';
import { SecretCollector } from './secrets.ts';
import type { AccessLogging } from './spec.ts';
import { tcpEgressListeners } from './tcp-egress.ts';
import { mergeClientPolicy } from './tls-context.ts';
import { viewOf } from './view.ts';

export const DEFAULT_APP_ADDRESS = '127.0.0.1';
export const DEFAULT_INGRESS_PORT = 15000;
export const DEFAULT_EGRESS_PORT = 15001;
export const DEFAULT_LISTEN_ADDRESS = '0.0.0.0';

function sorted(list: Iterable<JsonObject>): JsonObject[] {
  return [...list].sort((a, b) => (String(a.name ?? a.clusterName) < String(b.name ?? b.clusterName) ? -1 : 1));
}

function accessLog(logging: AccessLogging | undefined, override: string | undefined): AccessLogConfig | undefined {
  const file = logging?.accessLog?.file;
  if (override !== undefined) return file?.format ? { path: override, format: file.format } : { path: override };
  return file;
}

export function translate(input: TranslateInput): EnvoyConfig {
  const view = viewOf(input.view);
  const opts = input.options ?? {};
  const egressPort = opts.egressPort ?? DEFAULT_EGRESS_PORT;
  const address = opts.listenAddress ?? DEFAULT_LISTEN_ADDRESS;
  const secrets = new SecretCollector();
  const upstream = opts.upstreamMaxRequestsPerConnection !== undefined || opts.upstreamTlsMaxSessionKeys !== undefined
    ? { maxRequestsPerConnection: opts.upstreamMaxRequestsPerConnection, maxSessionKeys: opts.upstreamTlsMaxSessionKeys }
    : undefined;
  const ctx: EgressContext = { view, endpoints: input.endpoints, secrets, clusters: new ClusterSet(), acmIssuers: input.acmIssuers, upstream };
  const listeners: JsonObject[] = [];
  const routeConfigurations: JsonObject[] = [];

  if (input.proxy.kind === 'virtualNode') {
    const node = view.nodes.get(input.proxy.name);
    if (!node) throw new NotFoundError(`virtual node ${input.proxy.name} is not in mesh ${view.mesh}`);
    const log = accessLog(node.spec.logging, opts.accessLogPath);
    const ing = ingress({
      mesh: view.mesh, node: node.name, listeners: node.spec.listeners ?? [],
      port: opts.ingressPort ?? DEFAULT_INGRESS_PORT, address, appAddress: opts.appAddress ?? DEFAULT_APP_ADDRESS, log,
    }, secrets);
    if (ing.listener) listeners.push(ing.listener);
    routeConfigurations.push(...ing.routeConfigurations);
    for (const c of ing.clusters) ctx.clusters.add(c);
    const defaults = node.spec.backendDefaults?.clientPolicy?.tls;
    const backends = new Map<string, Backend>();
    for (const b of node.spec.backends ?? []) {
      const vs = b.virtualService;
      if (vs && !backends.has(vs.virtualServiceName)) {
        backends.set(vs.virtualServiceName, { service: vs.virtualServiceName, policy: mergeClientPolicy(defaults, vs.clientPolicy?.tls) });
      }
    }
    // DROP_ALL (the default) still lets a virtual node reach AWS APIs, as App Mesh does.
    const outside = view.meshSpec.egressFilter?.type === 'ALLOW_ALL' ? 'all' : 'aws';
    const eg = egress(ctx, [...backends.values()], { port: egressPort, address, log, outside });
    listeners.push(eg.listener);
    routeConfigurations.push(eg.routeConfiguration);
    if (opts.tcpEgressAddress !== undefined) {
      const taken = [{ address, port: egressPort }, ...(ing.listener ? [{ address, port: opts.ingressPort ?? DEFAULT_INGRESS_PORT }] : [])];
      listeners.push(...tcpEgressListeners(opts.tcpEgressAddress, eg.tcp, taken));
    }
  } else {
    const gw = view.gateways.get(input.proxy.name);
    if (!gw) throw new NotFoundError(`virtual gateway ${input.proxy.name} is not in mesh ${view.mesh}`);
    const log = accessLog(gw.spec.logging, opts.accessLogPath);
    // A gateway listener may use the egress port itself; the egress listener then moves to a free port.
    const port = gatewayEgressPort(egressPort, gw.spec.listeners);
    const out = gateway({ ctx, gateway: gw, egressPort: port, listenAddress: address, log });
    listeners.push(...out.listeners);
    routeConfigurations.push(...out.routeConfigurations);
    if (out.redirected.length > 0) {
      // Only the self redirect reaches a gateway's egress listener, so nothing outside the mesh is opened.
      const eg = egress(ctx, out.redirected, { port, address, log, outside: 'none' });
      listeners.push(eg.listener);
      routeConfigurations.push(eg.routeConfiguration);
    }
  }

  // Secrets of the clusters kept (not of candidates another backend's stricter TLS replaced).
  for (const ref of ctx.clusters.secrets()) secrets.add(ref);
  return {
    listeners: sorted(listeners),
    routeConfigurations: sorted(routeConfigurations),
    clusters: sorted(ctx.clusters.clusters()),
    clusterLoadAssignments: sorted(ctx.clusters.assignments()),
    secrets: secrets.list(),
  };
}

// Lookups over a MeshView by name, with typed specs. Lists in a view come in any order; everything here
// returns them sorted by name so the translation is deterministic.
import type { ResourceRecord } from '../model/resource.ts';
import type { MeshView } from './api.ts';
import { byName } from './envoy.ts';
import { specAs, type GatewayRouteSpec, type MeshSpec, type NodeListener, type RouteSpec, type VirtualGatewaySpec, type VirtualNodeSpec, type VirtualRouterSpec, type VirtualServiceSpec } from './spec.ts';

export interface Named<S> { readonly name: string; readonly spec: S }

function index<S>(records: readonly ResourceRecord[]): Map<string, Named<S>> {
  return new Map([...records].sort(byName).map((r) => [r.name, { name: r.name, spec: specAs<S>(r.spec) }]));
}

export class View {
  readonly mesh: string;
  readonly meshSpec: MeshSpec;
  readonly nodes: Map<string, Named<VirtualNodeSpec>>;
  readonly services: Map<string, Named<VirtualServiceSpec>>;
  readonly routers: Map<string, Named<VirtualRouterSpec>>;
  readonly gateways: Map<string, Named<VirtualGatewaySpec>>;
  readonly #routes: readonly ResourceRecord[];
  readonly #gatewayRoutes: readonly ResourceRecord[];

  constructor(view: MeshView) {
    this.mesh = view.mesh.name;
    this.meshSpec = specAs<MeshSpec>(view.mesh.spec);
    this.nodes = index(view.virtualNodes);
    this.services = index(view.virtualServices);
    this.routers = index(view.virtualRouters);
    this.gateways = index(view.virtualGateways);
    this.#routes = view.routes;
    this.#gatewayRoutes = view.gatewayRoutes;
  }

  /** A router's routes, sorted by name. */
  routesOf(router: string): Named<RouteSpec>[] {
    return this.#routes.filter((r) => r.parent === router).sort(byName).map((r) => ({ name: r.name, spec: specAs<RouteSpec>(r.spec) }));
  }

  gatewayRoutesOf(gateway: string): Named<GatewayRouteSpec>[] {
    return this.#gatewayRoutes.filter((r) => r.parent === gateway).sort(byName).map((r) => ({ name: r.name, spec: specAs<GatewayRouteSpec>(r.spec) }));
  }

  /** The listener of a node a target with an optional port means (the only one when no port is given). */
  nodeListener(node: string, port: number | undefined): NodeListener | undefined {
    const listeners = this.nodes.get(node)?.spec.listeners ?? [];
    if (port === undefined) return listeners.length === 1 ? listeners[0] : undefined;
    return listeners.find((l) => l.portMapping.port === port);
  }
}

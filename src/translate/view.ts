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

const views = new WeakMap<MeshView, View>();

/**
 * The indexed View of a MeshView, built once per MeshView object: the xDS server translates every proxy of a
 * mesh over the same (cached, unchanging) MeshView, and indexing it is O(n log n) in the mesh's size. A View is
 * only read, never changed, so sharing it keeps translate pure; a MeshView must not be mutated after its first
 * translation (the store config source builds a new one per change).
 */
export function viewOf(view: MeshView): View {
  let v = views.get(view);
  if (!v) {
    v = new View(view);
    views.set(view, v);
  }
  return v;
}

/** Child records by parent name, each list sorted by name. */
function byParent<S>(records: readonly ResourceRecord[]): Map<string, Named<S>[]> {
  const out = new Map<string, Named<S>[]>();
  for (const r of [...records].sort(byName)) {
    let list = out.get(r.parent);
    if (!list) out.set(r.parent, (list = []));
    list.push({ name: r.name, spec: specAs<S>(r.spec) });
  }
  return out;
}

export class View {
  readonly mesh: string;
  readonly meshSpec: MeshSpec;
  readonly nodes: Map<string, Named<VirtualNodeSpec>>;
  readonly services: Map<string, Named<VirtualServiceSpec>>;
  readonly routers: Map<string, Named<VirtualRouterSpec>>;
  readonly gateways: Map<string, Named<VirtualGatewaySpec>>;
  readonly #routes: ReadonlyMap<string, readonly Named<RouteSpec>[]>;
  readonly #gatewayRoutes: ReadonlyMap<string, readonly Named<GatewayRouteSpec>[]>;

  constructor(view: MeshView) {
    this.mesh = view.mesh.name;
    this.meshSpec = specAs<MeshSpec>(view.mesh.spec);
    this.nodes = index(view.virtualNodes);
    this.services = index(view.virtualServices);
    this.routers = index(view.virtualRouters);
    this.gateways = index(view.virtualGateways);
    this.#routes = byParent<RouteSpec>(view.routes);
    this.#gatewayRoutes = byParent<GatewayRouteSpec>(view.gatewayRoutes);
  }

  /** A router's routes, sorted by name. */
  routesOf(router: string): Named<RouteSpec>[] {
    return [...(this.#routes.get(router) ?? [])];
  }

  gatewayRoutesOf(gateway: string): Named<GatewayRouteSpec>[] {
    return [...(this.#gatewayRoutes.get(gateway) ?? [])];
  }

  /** The listener of a node a target with an optional port means (the only one when no port is given). */
  nodeListener(node: string, port: number | undefined): NodeListener | undefined {
    const listeners = this.nodes.get(node)?.spec.listeners ?? [];
    if (port === undefined) return listeners.length === 1 ? listeners[0] : undefined;
    return listeners.find((l) => l.portMapping.port === port);
  }
}

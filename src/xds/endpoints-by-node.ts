// Which registered instances serve each virtual node of a mesh (translate's `endpoints` input). Pure.
//
// An instance is registered under the virtual node its proxy proves to be (or an operator named). Like Cloud
// Map and DNS, a node's service discovery name is shared: node X gets the instances of every node Y of the
// mesh whose discovery name equals X's (the same DNS hostname, or the same Cloud Map namespace and service)
// and, for Cloud Map, whose attributes include all of X's (App Mesh filters a service's instances by the
// node's attributes; an instance carries its own node's attributes here). X always gets its own instances.
import type { EndpointRecord } from '../store/endpoint-store.ts';
import type { Endpoint, MeshView } from '../translate/api.ts';

interface Discovery {
  readonly key: string | undefined;
  readonly attributes: ReadonlyMap<string, string>;
}

function discoveryOf(spec: unknown): Discovery {
  const sd = (spec as { serviceDiscovery?: { dns?: { hostname?: string }; awsCloudMap?: { namespaceName?: string; serviceName?: string; attributes?: { key: string; value: string }[] } } })?.serviceDiscovery;
  if (sd?.dns?.hostname) return { key: `dns:${sd.dns.hostname.toLowerCase()}`, attributes: new Map() };
  const cm = sd?.awsCloudMap;
  if (cm?.namespaceName && cm.serviceName) {
    return { key: `cloudmap:${cm.serviceName}.${cm.namespaceName}`, attributes: new Map((cm.attributes ?? []).map((a) => [a.key, a.value])) };
  }
  return { key: undefined, attributes: new Map() };
}

const includes = (have: ReadonlyMap<string, string>, want: ReadonlyMap<string, string>): boolean =>
  [...want].every(([k, v]) => have.get(k) === v);

/** Instances by virtual node name, for the nodes of `view` that have any. */
export function endpointsByNode(view: MeshView, records: readonly EndpointRecord[]): Record<string, Endpoint[]> {
  const byNode = new Map<string, Endpoint[]>();
  for (const r of records) {
    if (r.mesh !== view.mesh.name) continue;
    const list = byNode.get(r.virtualNode) ?? [];
    list.push(r.ports.length > 0 ? { address: r.address, port: r.port, ports: r.ports } : { address: r.address, port: r.port });
    byNode.set(r.virtualNode, list);
  }
  if (byNode.size === 0) return {};
  const discovery = new Map(view.virtualNodes.map((n) => [n.name, discoveryOf(n.spec)]));
  const out: Record<string, Endpoint[]> = {};
  for (const node of view.virtualNodes) {
    const mine = discovery.get(node.name)!;
    const found: Endpoint[] = [];
    for (const [owner, endpoints] of byNode) {
      const theirs = discovery.get(owner);
      const shared = owner === node.name || (mine.key !== undefined && theirs?.key === mine.key && includes(theirs.attributes, mine.attributes));
      if (shared) found.push(...endpoints);
    }
    if (found.length > 0) out[node.name] = found;
  }
  return out;
}

// The seven App Mesh resource types, described once. The REST routes, ARNs, store keys, error messages and
// list outputs are all derived from this table.

export type KindName =
  | 'mesh'
  | 'virtualService'
  | 'virtualNode'
  | 'virtualRouter'
  | 'route'
  | 'virtualGateway'
  | 'gatewayRoute';

export interface ResourceKind {
  readonly name: KindName;
  /** The model's type name: `VirtualNode` (shapes `VirtualNodeSpec`, `VirtualNodeData`, `VirtualNodeRef`). */
  readonly title: string;
  /** The kind this one lives under, besides its mesh: routes under routers, gateway routes under gateways. */
  readonly parent: KindName | null;
  /** Member that carries the resource name in requests and responses: `virtualNodeName`. */
  readonly nameMember: string;
  /** Member of the List output: `virtualNodes`. */
  readonly listMember: string;
  readonly specShape: string;
}

function kind(name: KindName, parent: KindName | null, listMember: string): ResourceKind {
  const title = name[0]!.toUpperCase() + name.slice(1);
  return { name, title, parent, nameMember: `${name}Name`, listMember, specShape: `${title}Spec` };
}

export const KINDS: Readonly<Record<KindName, ResourceKind>> = Object.freeze({
  mesh: kind('mesh', null, 'meshes'),
  virtualService: kind('virtualService', null, 'virtualServices'),
  virtualNode: kind('virtualNode', null, 'virtualNodes'),
  virtualRouter: kind('virtualRouter', null, 'virtualRouters'),
  route: kind('route', 'virtualRouter', 'routes'),
  virtualGateway: kind('virtualGateway', null, 'virtualGateways'),
  gatewayRoute: kind('gatewayRoute', 'virtualGateway', 'gatewayRoutes'),
});

export const KIND_NAMES = Object.keys(KINDS) as KindName[];

/** Identifies one resource. `mesh` is the mesh name (for a mesh: its own name); `parent` is '' unless the kind has one. */
export interface ResourceKey {
  readonly kind: KindName;
  readonly mesh: string;
  readonly parent: string;
  readonly name: string;
}

/** The ARN resource part: `mesh/m/virtualRouter/r/route/x`. */
export function arnResourcePart(key: ResourceKey): string {
  if (key.kind === 'mesh') return `mesh/${key.mesh}`;
  const k = KINDS[key.kind];
  const parent = k.parent ? `${k.parent}/${key.parent}/` : '';
  return `mesh/${key.mesh}/${parent}${key.kind}/${key.name}`;
}

export function arnFor(key: ResourceKey, region: string, account: string): string {
  return `arn:aws:appmesh:${region}:${account}:${arnResourcePart(key)}`;
}

/** Parses an App Mesh ARN back into a key; undefined when it is not one. */
export function parseArn(arn: string): { region: string; account: string; key: ResourceKey } | undefined {
  const m = /^arn:aws:appmesh:([^:]*):(\d{12}):mesh\/([^/]+)(?:\/(.*))?$/.exec(arn);
  if (!m) return undefined;
  const [, region, account, mesh, rest] = m as unknown as [string, string, string, string, string | undefined];
  if (rest === undefined) return { region, account, key: { kind: 'mesh', mesh, parent: '', name: mesh } };
  const parts = rest.split('/');
  if (parts.length === 2) {
    const k = parts[0] as KindName;
    if (!(k in KINDS) || KINDS[k].parent !== null || k === 'mesh') return undefined;
    return { region, account, key: { kind: k, mesh, parent: '', name: parts[1]! } };
  }
  if (parts.length === 4) {
    const k = parts[2] as KindName;
    if (!(k in KINDS) || KINDS[k].parent !== parts[0]) return undefined;
    return { region, account, key: { kind: k, mesh, parent: parts[1]!, name: parts[3]! } };
  }
  return undefined;
}

export function describeKey(key: ResourceKey): string {
  const k = KINDS[key.kind];
  if (key.kind === 'mesh') return `Mesh ${key.name}`;
  const parent = k.parent ? ` under ${KINDS[k.parent].title} ${key.parent}` : '';
  return `${k.title} ${key.name}${parent} in mesh ${key.mesh}`;
}

// The `node.id` an Envoy sends must name the mesh endpoint its certificate proves. App Mesh's Envoy image sets
// it from APPMESH_RESOURCE_ARN: either the short form `mesh/<mesh>/virtualNode/<name>` (or virtualGateway) or
// the full ARN `arn:aws:appmesh:<region>:<account>:mesh/<mesh>/virtualNode/<name>`.
import type { ProxyIdentity, ProxyKind } from './sources.ts';

export interface ClaimedNode {
  readonly mesh: string;
  readonly kind: ProxyKind;
  readonly name: string;
}

const SHORT = /^mesh\/([^/]+)\/(virtualNode|virtualGateway)\/([^/]+)$/;
const ARN_PREFIX = /^arn:aws[a-z-]*:appmesh:[^:]*:[^:]*:/;

/** The endpoint a node id names, or undefined when it is not in one of the accepted forms. */
export function parseNodeId(id: string): ClaimedNode | undefined {
  const rest = id.startsWith('arn:') ? id.replace(ARN_PREFIX, '') : id;
  if (rest === id && id.startsWith('arn:')) return undefined;
  const m = SHORT.exec(rest);
  if (!m) return undefined;
  return { mesh: m[1]!, kind: m[2] as ProxyKind, name: m[3]! };
}

/** The short form, as keymesh names a proxy in messages and status. */
export function nodeIdOf(p: Pick<ProxyIdentity, 'mesh' | 'kind' | 'name'>): string {
  return `mesh/${p.mesh}/${p.kind}/${p.name}`;
}

/** Null when `nodeId` names `identity`; otherwise why not (safe to send to the proxy). */
export function nodeIdProblem(nodeId: string, identity: ProxyIdentity): string | null {
  const claimed = parseNodeId(nodeId);
  const proven = `${nodeIdOf(identity)} (${identity.spiffeId})`;
  if (!claimed) {
    return `node.id "${nodeId}" is not mesh/<mesh>/virtualNode/<name>, mesh/<mesh>/virtualGateway/<name> or an App Mesh ARN of one; the certificate proves ${proven}`;
  }
  if (claimed.mesh !== identity.mesh || claimed.kind !== identity.kind || claimed.name !== identity.name) {
    return `node.id "${nodeId}" names ${nodeIdOf(claimed)}, but the certificate proves ${proven}`;
  }
  return null;
}

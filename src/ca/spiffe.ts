// keymesh's SPIFFE naming (docs/identity.md): one trust domain per mesh, and one SPIFFE ID per virtual node
// or virtual gateway. Pure functions; the ID is the identity, so every rule here is a security rule.
import { BadRequestError } from '../errors/index.ts';
import type { IdentityKind } from '../store/ca-store.ts';

export type { IdentityKind };

/** A mesh endpoint that can hold an SVID. */
export interface Identity {
  readonly mesh: string;
  readonly kind: IdentityKind;
  readonly name: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;
/** Path prefix that keeps gateway IDs apart from node IDs (a node ID has one segment). */
const GATEWAY_SEGMENT = 'virtualGateway';

/** The trust domain a mesh gets unless configured: its name in lower case, other characters replaced by '-'. */
export function defaultTrustDomain(mesh: string): string {
  return mesh.toLowerCase().replace(/[^a-z0-9._-]/g, '-').slice(0, 255);
}

export function trustDomainProblem(td: string): string | null {
  if (td.length === 0) return 'a trust domain cannot be empty';
  if (td.length > 255) return 'a trust domain is at most 255 characters';
  if (!TRUST_DOMAIN.test(td)) return `trust domain "${td}" may hold only lower-case letters, digits, '.', '-' and '_'`;
  return null;
}

export function checkTrustDomain(td: string): string {
  const problem = trustDomainProblem(td);
  if (problem) throw new BadRequestError(`Invalid trust domain: ${problem}.`, 'KM_ERR_TRUST_DOMAIN');
  return td;
}

/** `spiffe://<td>/<node>` or `spiffe://<td>/virtualGateway/<gateway>`; refuses names that cannot be a path segment. */
export function spiffeIdFor(trustDomain: string, identity: Pick<Identity, 'kind' | 'name'>): string {
  const { kind, name } = identity;
  if (kind !== 'virtualNode' && kind !== 'virtualGateway') throw new BadRequestError(`Unknown identity kind "${String(kind)}": expected virtualNode or virtualGateway.`);
  if (!PATH_SEGMENT.test(name) || name === '.' || name === '..') {
    throw new BadRequestError(
      `${kindTitle(kind)} name "${name}" cannot be part of a SPIFFE ID: a path segment may hold only letters, digits, '.', '-' and '_' (and may not be "." or ".."). Give the ${kindTitle(kind).toLowerCase()} such a name to issue it an identity.`,
      'KM_ERR_SPIFFE_NAME',
    );
  }
  return kind === 'virtualNode' ? `spiffe://${trustDomain}/${name}` : `spiffe://${trustDomain}/${GATEWAY_SEGMENT}/${name}`;
}

/** The inverse of spiffeIdFor; undefined for anything that is not a keymesh SPIFFE ID. */
export function parseSpiffeId(uri: string): { trustDomain: string; kind: IdentityKind; name: string } | undefined {
  const m = /^spiffe:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m || trustDomainProblem(m[1]!)) return undefined;
  const segments = m[2]!.split('/');
  const valid = (s: string) => PATH_SEGMENT.test(s) && s !== '.' && s !== '..';
  if (segments.length === 1 && valid(segments[0]!)) return { trustDomain: m[1]!, kind: 'virtualNode', name: segments[0]! };
  if (segments.length === 2 && segments[0] === GATEWAY_SEGMENT && valid(segments[1]!)) return { trustDomain: m[1]!, kind: 'virtualGateway', name: segments[1]! };
  return undefined;
}

export function describeIdentity(identity: Identity): string {
  return `${kindTitle(identity.kind)} ${identity.name} in mesh ${identity.mesh}`;
}

function kindTitle(kind: IdentityKind): string {
  return kind === 'virtualNode' ? 'Virtual node' : 'Virtual gateway';
}

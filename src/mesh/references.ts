// Which resources a spec points at, and which resources point at a given one. Pure functions over the
// records of one mesh; the manager turns their answers into NotFound / ResourceInUse errors.
import type { JsonObject, JsonValue } from '../model/json.ts';
import { isJsonObject } from '../model/json.ts';
import type { KindName, ResourceKey } from '../model/kinds.ts';
import { KINDS } from '../model/kinds.ts';
import type { ResourceRecord } from '../model/resource.ts';

/** A reference from a spec to another resource of the same mesh, with the field that holds it. */
export interface Reference {
  kind: KindName;
  name: string;
  path: string;
}

function obj(v: JsonValue | undefined): JsonObject | undefined {
  return isJsonObject(v) ? v : undefined;
}

function routeTargets(spec: JsonObject): Reference[] {
  const refs: Reference[] = [];
  for (const type of ['httpRoute', 'http2Route', 'grpcRoute', 'tcpRoute']) {
    const targets = obj(obj(spec[type])?.action)?.weightedTargets;
    if (!Array.isArray(targets)) continue;
    targets.forEach((t, i) => {
      const node = obj(t)?.virtualNode;
      if (typeof node === 'string') refs.push({ kind: 'virtualNode', name: node, path: `spec.${type}.action.weightedTargets[${i}].virtualNode` });
    });
  }
  return refs;
}

function gatewayRouteTargets(spec: JsonObject): Reference[] {
  const refs: Reference[] = [];
  for (const type of ['httpRoute', 'http2Route', 'grpcRoute']) {
    const name = obj(obj(obj(obj(spec[type])?.action)?.target)?.virtualService)?.virtualServiceName;
    if (typeof name === 'string') {
      refs.push({ kind: 'virtualService', name, path: `spec.${type}.action.target.virtualService.virtualServiceName` });
    }
  }
  return refs;
}

function serviceProvider(spec: JsonObject): Reference[] {
  const provider = obj(spec.provider);
  const node = obj(provider?.virtualNode)?.virtualNodeName;
  if (typeof node === 'string') return [{ kind: 'virtualNode', name: node, path: 'spec.provider.virtualNode.virtualNodeName' }];
  const router = obj(provider?.virtualRouter)?.virtualRouterName;
  if (typeof router === 'string') return [{ kind: 'virtualRouter', name: router, path: 'spec.provider.virtualRouter.virtualRouterName' }];
  return [];
}

/**
 * References that must resolve when a spec is written. Virtual node backends are deliberately absent:
 * App Mesh lets a node name a virtual service that does not exist yet (node <-> service cycles need it).
 */
export function requiredReferences(kind: KindName, spec: JsonObject): Reference[] {
  switch (kind) {
    case 'virtualService': return serviceProvider(spec);
    case 'route': return routeTargets(spec);
    case 'gatewayRoute': return gatewayRouteTargets(spec);
    default: return [];
  }
}

function same(ref: Reference, key: ResourceKey): boolean {
  return ref.kind === key.kind && ref.name === key.name;
}

/** Human-readable reasons why `key` cannot be deleted now; empty when nothing holds on to it. */
export function deleteBlockers(key: ResourceKey, meshRecords: readonly ResourceRecord[]): string[] {
  const title = KINDS[key.kind].title;
  if (key.kind === 'mesh') {
    const counts = new Map<string, number>();
    for (const r of meshRecords) {
      if (r.kind !== 'mesh') counts.set(KINDS[r.kind].title, (counts.get(KINDS[r.kind].title) ?? 0) + 1);
    }
    if (counts.size === 0) return [];
    const what = [...counts].map(([t, n]) => `${n} ${t}(s)`).join(', ');
    return [`Mesh ${key.name} cannot be deleted because it still contains ${what}; delete them first`];
  }
  const reasons: string[] = [];
  const children = meshRecords.filter((r) => KINDS[r.kind].parent === key.kind && r.parent === key.name);
  if (children.length > 0) {
    const childTitle = KINDS[children[0]!.kind].title;
    reasons.push(`${title} with name ${key.name} cannot be deleted because it has ${children.length} ${childTitle}(s): [${children.slice(0, 5).map((c) => c.name).join(', ')}]`);
  }
  const providerOf = meshRecords.filter((r) => r.kind === 'virtualService' && serviceProvider(r.spec).some((ref) => same(ref, key)));
  if (providerOf.length > 0) {
    reasons.push(`${title} with name ${key.name} cannot be deleted because it is a VirtualService provider: [${providerOf.map((r) => r.name).join(', ')}]`);
  }
  const targetOf = meshRecords.filter((r) => r.kind === 'route' && routeTargets(r.spec).some((ref) => same(ref, key)));
  if (targetOf.length > 0) {
    reasons.push(`${title} with name ${key.name} cannot be deleted because it is the target of one or more routes: [${targetOf.map((r) => `${r.parent}/${r.name}`).join(', ')}]`);
  }
  const gatewayTargetOf = meshRecords.filter((r) => r.kind === 'gatewayRoute' && gatewayRouteTargets(r.spec).some((ref) => same(ref, key)));
  if (gatewayTargetOf.length > 0) {
    reasons.push(`${title} ${key.name} is being referenced in the following: GATEWAY_ROUTE: [${gatewayTargetOf.map((r) => `${r.parent}/${r.name}`).join(', ')}]`);
  }
  return reasons;
}

/** ACM certificate and private-CA ARNs a spec names (listener certificates, client-policy trust). */
export function acmReferences(spec: JsonValue, path = 'spec'): { arn: string; kind: 'certificate' | 'certificateAuthority'; path: string }[] {
  const found: { arn: string; kind: 'certificate' | 'certificateAuthority'; path: string }[] = [];
  if (Array.isArray(spec)) {
    spec.forEach((v, i) => found.push(...acmReferences(v, `${path}[${i}]`)));
  } else if (isJsonObject(spec)) {
    for (const [k, v] of Object.entries(spec)) {
      const at = `${path}.${k}`;
      if (k === 'acm' && isJsonObject(v)) {
        if (typeof v.certificateArn === 'string') found.push({ arn: v.certificateArn, kind: 'certificate', path: `${at}.certificateArn` });
        if (Array.isArray(v.certificateAuthorityArns)) {
          v.certificateAuthorityArns.forEach((a, i) => {
            if (typeof a === 'string') found.push({ arn: a, kind: 'certificateAuthority', path: `${at}.certificateAuthorityArns[${i}]` });
          });
        }
      } else {
        found.push(...acmReferences(v, at));
      }
    }
  }
  return found;
}

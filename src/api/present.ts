// Pure projections of stored records onto the App Mesh wire shapes (XxxData for single resources, XxxRef
// for list items). Timestamps leave as epoch seconds with a millisecond fraction, as the SDKs require.
import type { JsonObject } from '../model/json.ts';
import { KINDS } from '../model/kinds.ts';
import type { ResourceRecord } from '../model/resource.ts';

export type ResourceStatus = 'ACTIVE' | 'INACTIVE' | 'DELETED';

function seconds(ms: number): number {
  return ms / 1000;
}

function names(r: ResourceRecord): JsonObject {
  const k = KINDS[r.kind];
  const out: JsonObject = { meshName: r.mesh };
  if (k.parent) out[KINDS[k.parent].nameMember] = r.parent;
  if (r.kind !== 'mesh') out[k.nameMember] = r.name;
  return out;
}

/** The `XxxData` object: the bare body of Create/Describe/Update/Delete responses. */
export function resourceData(r: ResourceRecord, status: ResourceStatus = 'ACTIVE'): JsonObject {
  const m = r.metadata;
  return {
    ...names(r),
    spec: r.spec,
    metadata: {
      arn: m.arn,
      uid: m.uid,
      version: m.version,
      createdAt: seconds(m.createdAt),
      lastUpdatedAt: seconds(m.lastUpdatedAt),
      meshOwner: m.meshOwner,
      resourceOwner: m.resourceOwner,
    },
    status: { status },
  };
}

/** The `XxxRef` object of List responses: names and metadata, no uid, spec or status. */
export function resourceRef(r: ResourceRecord): JsonObject {
  const m = r.metadata;
  return {
    ...names(r),
    arn: m.arn,
    createdAt: seconds(m.createdAt),
    lastUpdatedAt: seconds(m.lastUpdatedAt),
    meshOwner: m.meshOwner,
    resourceOwner: m.resourceOwner,
    version: m.version,
  };
}

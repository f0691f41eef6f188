import type { JsonObject } from './json.ts';
import type { KindName, ResourceKey } from './kinds.ts';

export interface Tag {
  key: string;
  value: string;
}

export interface ResourceMetadata {
  arn: string;
  uid: string;
  /** App Mesh's version: 1 on create, +1 on each update that changes the spec. */
  version: number;
  /** Milliseconds since the epoch (the API shows seconds with a millisecond fraction). */
  createdAt: number;
  lastUpdatedAt: number;
  meshOwner: string;
  resourceOwner: string;
}

/** A resource as stored: what the API returned at its last write, plus its tags. */
export interface ResourceRecord extends ResourceKey {
  readonly kind: KindName;
  spec: JsonObject;
  tags: Tag[];
  metadata: ResourceMetadata;
  /** Store revision of this record, bumped by every write (spec, tags); the store's compare-and-swap token. */
  rev: number;
}

export function keyOf(r: ResourceKey): ResourceKey {
  return { kind: r.kind, mesh: r.mesh, parent: r.parent, name: r.name };
}

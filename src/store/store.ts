// The persistence contract. Backends only persist: defaults, validation and referential integrity belong to
// the manager above (src/mesh). Every method is async so that a server-backed store (PostgreSQL, for several
// control-plane replicas) fits behind the same interface as the embedded SQLite one.
import type { JsonValue } from '../model/json.ts';
import type { KindName, ResourceKey } from '../model/kinds.ts';
import type { ResourceRecord } from '../model/resource.ts';

export interface ListQuery {
  kind: KindName;
  /** Restrict to one mesh (required for every kind but `mesh`). */
  mesh?: string;
  /** Restrict to one parent (routes of a router, gateway routes of a gateway). */
  parent?: string;
  /** Return only names strictly after this one (pagination cursor). */
  after?: string;
  /** At most this many items. */
  limit: number;
}

export interface ListPage {
  /** Ordered by name (byte order). */
  items: ResourceRecord[];
  /** True when more items follow the last one returned. */
  more: boolean;
}

export type ChangeOp = 'create' | 'update' | 'delete';

/** One committed write, in commit order. `record` is the state after the write (for a delete: the last state). */
export interface Change {
  seq: number;
  op: ChangeOp;
  record: ResourceRecord;
}

/** A remembered idempotent request (App Mesh `clientToken`). */
export interface TokenEntry {
  token: string;
  /** Hash of the operation and its request; a retry must match it. */
  fingerprint: string;
  /** The response the first call returned, replayed to retries. */
  response: JsonValue;
  /** Milliseconds since the epoch after which the token may be forgotten. */
  expiresAt: number;
}

export interface WriteOptions {
  /** Stored in the same transaction as the write, so a retry sees either both or neither. */
  token?: TokenEntry;
}

export interface ResourceStore {
  get(key: ResourceKey): Promise<ResourceRecord | undefined>;
  list(query: ListQuery): Promise<ListPage>;
  count(query: Omit<ListQuery, 'after' | 'limit'>): Promise<number>;
  /** All resources of one mesh (every kind); used for reference checks and, later, translation. */
  listMesh(mesh: string): Promise<ResourceRecord[]>;

  /** Inserts a new record; `ConflictError` if the key exists. Returns the stored record (rev assigned). */
  create(record: ResourceRecord, options?: WriteOptions): Promise<ResourceRecord>;
  /** Replaces a record if its stored `rev` equals `expectedRev`; `ConflictError` otherwise, `NotFoundError` if absent. */
  update(record: ResourceRecord, expectedRev: number, options?: WriteOptions): Promise<ResourceRecord>;
  /** Deletes a record if its stored `rev` equals `expectedRev`; returns the deleted record. */
  delete(key: ResourceKey, expectedRev: number): Promise<ResourceRecord>;

  getToken(token: string, now: number): Promise<TokenEntry | undefined>;
  /** Records a token without a resource write (for idempotent operations that change nothing). */
  putToken(entry: TokenEntry): Promise<void>;

  /** Changes with `seq > afterSeq`, oldest first, at most `limit`. Another process can follow the feed with this. */
  changesSince(afterSeq: number, limit: number): Promise<Change[]>;
  /** The highest committed seq (0 when empty). */
  lastSeq(): Promise<number>;
  /** Calls `listener` after each commit made through this store instance. Returns an unsubscribe function. */
  watch(listener: (change: Change) => void): () => void;

  close(): Promise<void>;
}

// The resource manager: everything between a validated request and the store. It applies App Mesh's
// defaults and semantic rules, checks references and quotas, keeps versions and idempotency tokens, and
// refuses deletes of resources still in use. The API layer talks only to it.
import { createHash, randomUUID } from 'node:crypto';
import type { Clock } from '../base/clock.ts';
import {
  BadRequestError,
  ConflictError,
  ForbiddenError,
  LimitExceededError,
  NotFoundError,
  ResourceInUseError,
  TooManyTagsError,
  ValidationError,
} from '../errors/index.ts';
import { type JsonObject, type JsonValue, withoutNulls } from '../model/json.ts';
import type { KindName, ResourceKey } from '../model/kinds.ts';
import { arnFor, describeKey, KINDS, parseArn } from '../model/kinds.ts';
import type { ResourceRecord, Tag } from '../model/resource.ts';
import { keyOf } from '../model/resource.ts';
import { applySpecDefaults, checkSpecRules, type RuleContext } from '../model/rules.ts';
import type { ResourceStore, TokenEntry } from '../store/store.ts';
import type { Limits } from './limits.ts';
import { decodePageToken, encodePageToken } from './page-token.ts';
import { acmReferences, deleteBlockers, requiredReferences } from './references.ts';

/** How long a clientToken is remembered for retries (App Mesh does not document its window). */
const TOKEN_TTL_MS = 24 * 60 * 60 * 1000;
const DEFAULT_PAGE = 100;

/** Objects outside the App Mesh resources that specs may name: keymesh's ACM-style certificates and CAs. */
export interface ExternalReferences {
  exists(kind: 'certificate' | 'certificateAuthority', arn: string): Promise<boolean>;
}

export interface ManagerOptions {
  store: ResourceStore;
  /** When set, ACM ARNs in specs must name existing keymesh certificates / CAs (NotFoundException otherwise). */
  externalReferences?: ExternalReferences;
  clock: Clock;
  account: string;
  region: string;
  limits: Limits;
  newUid?: () => string;
}

export interface Page<T> {
  items: T[];
  nextToken?: string;
}

export class ResourceManager {
  readonly account: string;
  readonly region: string;
  readonly #store: ResourceStore;
  readonly #clock: Clock;
  readonly #limits: Limits;
  readonly #newUid: () => string;
  readonly #external: ExternalReferences | undefined;
  /** Writes are serialized so that reference and quota checks see the state they commit against. */
  #writes: Promise<unknown> = Promise.resolve();

  constructor(options: ManagerOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.account = options.account;
    this.region = options.region;
    this.#limits = options.limits;
    this.#newUid = options.newUid ?? randomUUID;
    this.#external = options.externalReferences;
  }

  /** Mesh-scoped operations take `meshOwner`; keymesh serves one account, and shares meshes with no other. */
  checkMeshOwner(meshOwner: string | undefined): void {
    if (meshOwner !== undefined && meshOwner !== this.account) {
      throw new ForbiddenError(`This keymesh control plane serves account ${this.account}; no mesh of account ${meshOwner} is shared with it.`);
    }
  }

  async describe(key: ResourceKey): Promise<ResourceRecord> {
    return this.#mustGet(key);
  }

  async create(key: ResourceKey, spec: JsonObject, tags: Tag[], clientToken?: string): Promise<ResourceRecord> {
    return this.#idempotent('create', key, { spec, tags: tags as unknown as JsonValue }, clientToken, async (token) => {
      await this.#checkParents(key);
      if (await this.#store.get(key)) {
        throw new ConflictError(`${KINDS[key.kind].title} with name ${key.name} already exists${key.kind === 'mesh' ? '' : ` in mesh ${key.mesh}`}.`);
      }
      this.#checkTags(tags, 'tags');
      await this.#checkQuota(key, spec);
      const full = applySpecDefaults(key.kind, withoutNulls(spec));
      await this.#checkSpec(key, full);
      const now = this.#clock.now();
      const record: ResourceRecord = {
        ...keyOf(key),
        spec: full,
        tags: dedupeTags(tags),
        metadata: {
          arn: arnFor(key, this.region, this.account),
          uid: this.#newUid(),
          version: 1,
          createdAt: now,
          lastUpdatedAt: now,
          meshOwner: this.account,
          resourceOwner: this.account,
        },
        rev: 0,
      };
      return this.#store.create(record, token ? { token: token(record) } : {});
    });
  }

  async update(key: ResourceKey, spec: JsonObject, clientToken?: string): Promise<ResourceRecord> {
    return this.#idempotent('update', key, { spec }, clientToken, async (token) => {
      const current = await this.#mustGet(key);
      await this.#checkQuota(key, spec);
      const full = applySpecDefaults(key.kind, withoutNulls(spec));
      await this.#checkSpec(key, full);
      // An update that changes nothing keeps its version, so proxies are not sent identical config again.
      if (canonicalJson(full) === canonicalJson(current.spec)) {
        if (token) await this.#store.putToken(token(current));
        return current;
      }
      const next: ResourceRecord = {
        ...current,
        spec: full,
        metadata: { ...current.metadata, version: current.metadata.version + 1, lastUpdatedAt: this.#clock.now() },
      };
      return this.#store.update(next, current.rev, token ? { token: token(next) } : {});
    });
  }

  async delete(key: ResourceKey): Promise<ResourceRecord> {
    return this.#serialized(async () => {
      const current = await this.#mustGet(key);
      const blockers = deleteBlockers(key, await this.#store.listMesh(key.mesh));
      if (blockers.length > 0) throw new ResourceInUseError(blockers.join('; '));
      return this.#store.delete(key, current.rev);
    });
  }

  async list(kind: KindName, mesh: string, parent: string, limit: number | undefined, nextToken: string | undefined): Promise<Page<ResourceRecord>> {
    const scope = { kind, ...(kind === 'mesh' ? {} : { mesh }), ...(KINDS[kind].parent ? { parent } : {}) };
    if (kind !== 'mesh') await this.#mustGet({ kind: 'mesh', mesh, parent: '', name: mesh });
    const parentKind = KINDS[kind].parent;
    if (parentKind) await this.#mustGet({ kind: parentKind, mesh, parent: '', name: parent });
    const after = nextToken === undefined ? undefined : decodePageToken(nextToken, scopeId(scope));
    const page = await this.#store.list({ ...scope, ...(after === undefined ? {} : { after }), limit: limit ?? DEFAULT_PAGE });
    const last = page.items.at(-1);
    return { items: page.items, ...(page.more && last ? { nextToken: encodePageToken(last.name, scopeId(scope)) } : {}) };
  }

  async listTags(arn: string, limit: number | undefined, nextToken: string | undefined): Promise<Page<Tag>> {
    const record = await this.#byArn(arn);
    const start = nextToken === undefined ? 0 : Number(decodePageToken(nextToken, `tags:${arn}`));
    if (!Number.isSafeInteger(start) || start < 0) throw new BadRequestError('nextToken: not a token this API returned.');
    const size = limit ?? this.#limits.tagsPerResource;
    const items = record.tags.slice(start, start + size);
    const more = start + size < record.tags.length;
    return { items, ...(more ? { nextToken: encodePageToken(String(start + size), `tags:${arn}`) } : {}) };
  }

  async tag(arn: string, tags: Tag[]): Promise<void> {
    await this.#serialized(async () => {
      const record = await this.#byArn(arn);
      this.#checkTags(tags, 'tags');
      const merged = dedupeTags([...record.tags, ...tags]);
      if (merged.length > this.#limits.tagsPerResource) {
        throw new TooManyTagsError(`${describeKey(record)} would have ${merged.length} tags; at most ${this.#limits.tagsPerResource} are allowed. No tags were applied.`);
      }
      await this.#store.update({ ...record, tags: merged }, record.rev);
    });
  }

  async untag(arn: string, keys: string[]): Promise<void> {
    await this.#serialized(async () => {
      const record = await this.#byArn(arn);
      const drop = new Set(keys);
      const kept = record.tags.filter((t) => !drop.has(t.key));
      if (kept.length !== record.tags.length) await this.#store.update({ ...record, tags: kept }, record.rev);
    });
  }

  async #byArn(arn: string): Promise<ResourceRecord> {
    const parsed = parseArn(arn);
    if (!parsed) throw new BadRequestError(`resourceArn: "${arn}" is not an App Mesh resource ARN (arn:aws:appmesh:<region>:<account>:mesh/<name>/...)`);
    if (parsed.account !== this.account) {
      throw new NotFoundError(`${arn} belongs to account ${parsed.account}; this control plane serves account ${this.account}.`);
    }
    const record = await this.#store.get(parsed.key);
    if (!record || record.metadata.arn !== arn) throw new NotFoundError(`No resource with ARN ${arn} exists.`);
    return record;
  }

  async #mustGet(key: ResourceKey): Promise<ResourceRecord> {
    const record = await this.#store.get(key);
    if (!record) throw new NotFoundError(notPresent(key, this.account));
    return record;
  }

  async #checkParents(key: ResourceKey): Promise<void> {
    if (key.kind === 'mesh') return;
    await this.#mustGet({ kind: 'mesh', mesh: key.mesh, parent: '', name: key.mesh });
    const parentKind = KINDS[key.kind].parent;
    if (parentKind) await this.#mustGet({ kind: parentKind, mesh: key.mesh, parent: '', name: key.parent });
  }

  async #checkSpec(key: ResourceKey, spec: JsonObject): Promise<void> {
    if (this.#external) {
      for (const ref of acmReferences(spec)) {
        if (!(await this.#external.exists(ref.kind, ref.arn))) {
          const what = ref.kind === 'certificate' ? 'certificate' : 'certificate authority';
          throw new NotFoundError(`${ref.path}: no keymesh-managed ${what} has the ARN ${ref.arn}.`);
        }
      }
    }
    if (key.kind === 'mesh') {
      const violations = checkSpecRules('mesh', spec, emptyContext, '', key.name);
      if (violations.length > 0) throw new ValidationError(violations);
      return;
    }
    for (const ref of requiredReferences(key.kind, spec)) {
      if (!(await this.#store.get({ kind: ref.kind, mesh: key.mesh, parent: '', name: ref.name }))) {
        throw new NotFoundError(`${ref.path}: ${notPresent({ kind: ref.kind, mesh: key.mesh, parent: '', name: ref.name }, this.account)}`);
      }
    }
    // Only routers, gateways and their routes have rules that read other resources of the mesh: the others are
    // checked without reading (and parsing) the whole mesh.
    if (!RULES_READ_MESH.has(key.kind)) {
      const violations = checkSpecRules(key.kind, spec, emptyContext, key.parent, key.name);
      if (violations.length > 0) throw new ValidationError(violations);
      return;
    }
    const records = await this.#store.listMesh(key.mesh);
    const find = (kind: KindName, name: string, parent = '') =>
      records.find((r) => r.kind === kind && r.name === name && r.parent === parent);
    const ctx: RuleContext = {
      spec: (kind, name, parent = '') => find(kind, name, parent)?.spec,
      children: (kind, parent) => records.filter((r) => r.kind === kind && r.parent === parent && !(r.kind === key.kind && r.name === key.name))
        .map((r) => ({ name: r.name, spec: r.spec })),
    };
    const violations = checkSpecRules(key.kind, spec, ctx, key.parent, key.name);
    if (violations.length > 0) throw new ValidationError(violations);
  }

  async #checkQuota(key: ResourceKey, spec: JsonObject): Promise<void> {
    if (key.kind === 'virtualNode' && Array.isArray(spec.backends) && spec.backends.length > this.#limits.backendsPerVirtualNode) {
      throw new LimitExceededError(`spec.backends: a virtual node may have at most ${this.#limits.backendsPerVirtualNode} backends; got ${spec.backends.length}.`);
    }
    if (await this.#store.get(key)) return; // updates do not add resources
    const quota = quotaFor(key.kind, this.#limits);
    const scope = { kind: key.kind, ...(key.kind === 'mesh' ? {} : { mesh: key.mesh }), ...(KINDS[key.kind].parent ? { parent: key.parent } : {}) };
    const count = await this.#store.count(scope);
    if (count >= quota.value) {
      throw new LimitExceededError(`Cannot create ${KINDS[key.kind].title} ${key.name}: the limit of ${quota.value} ${quota.what} is reached.`);
    }
  }

  #checkTags(tags: Tag[], path: string): void {
    if (dedupeTags(tags).length > this.#limits.tagsPerResource) {
      throw new TooManyTagsError(`${path}: at most ${this.#limits.tagsPerResource} tags are allowed per resource; got ${tags.length}.`);
    }
  }

  /**
   * Runs a write once per clientToken: a retry with the same token and the same request gets the first
   * response again; the same token with a different request is a ConflictException, as in App Mesh.
   */
  async #idempotent(
    op: string,
    key: ResourceKey,
    request: JsonObject,
    clientToken: string | undefined,
    write: (token: ((response: ResourceRecord) => TokenEntry) | undefined) => Promise<ResourceRecord>,
  ): Promise<ResourceRecord> {
    return this.#serialized(async () => {
      if (clientToken === undefined) return write(undefined);
      const fingerprint = createHash('sha256').update(canonicalJson({ op, key: { ...keyOf(key) }, request })).digest('hex');
      const seen = await this.#store.getToken(clientToken, this.#clock.now());
      if (seen) {
        if (seen.fingerprint !== fingerprint) {
          throw new ConflictError(`clientToken ${clientToken} was already used for a different request.`);
        }
        return seen.response as unknown as ResourceRecord;
      }
      return write((response) => ({
        token: clientToken,
        fingerprint,
        response: response as unknown as JsonValue,
        expiresAt: this.#clock.now() + TOKEN_TTL_MS,
      }));
    });
  }

  #serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#writes.then(fn, fn);
    this.#writes = run.catch(() => undefined);
    return run;
  }
}

const emptyContext: RuleContext = { spec: () => undefined, children: () => [] };
/** The kinds whose checkSpecRules read other resources through the RuleContext. */
const RULES_READ_MESH: ReadonlySet<KindName> = new Set(['virtualRouter', 'route', 'virtualGateway', 'gatewayRoute']);

function quotaFor(kind: KindName, l: Limits): { value: number; what: string } {
  switch (kind) {
    case 'mesh': return { value: l.meshes, what: 'meshes per account' };
    case 'virtualService': return { value: l.virtualServicesPerMesh, what: 'virtual services per mesh' };
    case 'virtualNode': return { value: l.virtualNodesPerMesh, what: 'virtual nodes per mesh' };
    case 'virtualRouter': return { value: l.virtualRoutersPerMesh, what: 'virtual routers per mesh' };
    case 'virtualGateway': return { value: l.virtualGatewaysPerMesh, what: 'virtual gateways per mesh' };
    case 'route': return { value: l.routesPerVirtualRouter, what: 'routes per virtual router' };
    case 'gatewayRoute': return { value: l.gatewayRoutesPerVirtualGateway, what: 'gateway routes per virtual gateway' };
  }
}

function notPresent(key: ResourceKey, account: string): string {
  const title = KINDS[key.kind].title;
  if (key.kind === 'mesh') return `Mesh with name ${key.name} is not present for account ${account}.`;
  const parent = KINDS[key.kind].parent;
  const under = parent ? `${KINDS[parent].title} ${key.parent} in mesh ${key.mesh}` : `mesh ${key.mesh}`;
  return `${title} with name ${key.name} is not present under ${under} for account ${account}.`;
}

/** Later tags with the same key replace earlier ones. */
function dedupeTags(tags: Tag[]): Tag[] {
  const byKey = new Map<string, Tag>();
  for (const t of tags) byKey.set(t.key, { key: t.key, value: t.value ?? '' });
  return [...byKey.values()];
}

function scopeId(scope: { kind: string; mesh?: string; parent?: string }): string {
  return `${scope.kind}:${scope.mesh ?? ''}:${scope.parent ?? ''}`;
}

/** JSON with object keys sorted, so that equal values hash equally whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v);
}

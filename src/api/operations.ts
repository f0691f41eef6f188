// The 38 App Mesh operations, derived from the service model and the kinds table: five per resource kind
// (Create, Describe, Update, Delete, List) plus the three tagging operations. Each handler takes a request
// already split into path labels, query values and a JSON body, validates it against the operation's input
// shape, and calls the resource manager.
import { ValidationError, type Violation } from '../errors/index.ts';
import type { JsonObject, JsonValue } from '../model/json.ts';
import { KIND_NAMES, KINDS, type ResourceKey, type ResourceKind } from '../model/kinds.ts';
import { MODEL, type ModelOperation } from '../model/model.ts';
import type { Tag } from '../model/resource.ts';
import { validateBody, validateLocationValue } from '../model/validate.ts';
import type { ResourceManager } from '../mesh/manager.ts';
import { resourceData, resourceRef } from './present.ts';

export interface OperationRequest {
  /** Path labels, already percent-decoded. */
  params: Record<string, string>;
  /** Query values; a repeated key arrives as an array and is refused. */
  query: Record<string, string | string[] | undefined>;
  /** The parsed JSON body, or {} when there was none. */
  body: JsonValue;
}

export interface Operation extends ModelOperation {
  name: string;
  handle(manager: ResourceManager, req: OperationRequest): Promise<JsonObject>;
}

function capitalize(s: string): string {
  return s[0]!.toUpperCase() + s.slice(1);
}

/** Checks path labels, query values and body against the input shape; returns the body as an object. */
function validateInput(op: ModelOperation, req: OperationRequest): { body: JsonObject; query: Record<string, string> } {
  const input = MODEL.shapes[op.input]!;
  const violations: Violation[] = [];
  const query: Record<string, string> = {};
  for (const [member, m] of Object.entries(input.members ?? {})) {
    if (m.location === 'uri') {
      const v = req.params[m.locationName ?? member];
      if (v !== undefined) violations.push(...validateLocationValue(op.input, member, v));
    } else if (m.location === 'querystring') {
      const v = req.query[m.locationName ?? member];
      if (Array.isArray(v)) {
        violations.push({ path: member, message: 'must be given at most once in the query string' });
      } else if (v !== undefined) {
        query[member] = v;
        violations.push(...validateLocationValue(op.input, member, v));
      } else if (input.required?.includes(member)) {
        violations.push({ path: member, message: 'is required (query string parameter)' });
      }
    }
  }
  violations.push(...validateBody(op.input, req.body));
  if (violations.length > 0) throw new ValidationError(violations);
  return { body: req.body as JsonObject, query };
}

function resourceKey(kind: ResourceKind, params: Record<string, string>, body: JsonObject): ResourceKey {
  const mesh = kind.name === 'mesh' ? (params.meshName ?? (body.meshName as string)) : params.meshName!;
  const parent = kind.parent ? params[KINDS[kind.parent].nameMember]! : '';
  const name = kind.name === 'mesh' ? mesh : (params[kind.nameMember] ?? (body[kind.nameMember] as string));
  return { kind: kind.name, mesh, parent, name };
}

function optionalInt(v: string | undefined): number | undefined {
  return v === undefined ? undefined : Number(v);
}

function kindOperations(kind: ResourceKind): Record<string, Operation['handle']> {
  const withKey = (req: OperationRequest, op: ModelOperation, manager: ResourceManager) => {
    const { body, query } = validateInput(op, req);
    if (kind.name !== 'mesh' || query.meshOwner !== undefined) manager.checkMeshOwner(query.meshOwner);
    return { body, query, key: resourceKey(kind, req.params, body) };
  };
  const token = (body: JsonObject) => body.clientToken as string | undefined;
  const spec = (body: JsonObject) => (body.spec as JsonObject | undefined) ?? {};
  const listName = `List${capitalize(kind.listMember)}`;
  return {
    [`Create${kind.title}`]: async (manager, req) => {
      const op = MODEL.operations[`Create${kind.title}`]!;
      const { body, key } = withKey(req, op, manager);
      return resourceData(await manager.create(key, spec(body), (body.tags as Tag[] | undefined) ?? [], token(body)));
    },
    [`Describe${kind.title}`]: async (manager, req) => {
      const { key } = withKey(req, MODEL.operations[`Describe${kind.title}`]!, manager);
      return resourceData(await manager.describe(key));
    },
    [`Update${kind.title}`]: async (manager, req) => {
      const { body, key } = withKey(req, MODEL.operations[`Update${kind.title}`]!, manager);
      return resourceData(await manager.update(key, spec(body), token(body)));
    },
    [`Delete${kind.title}`]: async (manager, req) => {
      const { key } = withKey(req, MODEL.operations[`Delete${kind.title}`]!, manager);
      return resourceData(await manager.delete(key), 'DELETED');
    },
    [listName]: async (manager, req) => {
      const { query } = withKey(req, MODEL.operations[listName]!, manager);
      const parent = kind.parent ? req.params[KINDS[kind.parent].nameMember]! : '';
      const page = await manager.list(kind.name, req.params.meshName ?? '', parent, optionalInt(query.limit), query.nextToken);
      return { [kind.listMember]: page.items.map(resourceRef), ...(page.nextToken ? { nextToken: page.nextToken } : {}) };
    },
  };
}

const tagOperations: Record<string, Operation['handle']> = {
  TagResource: async (manager, req) => {
    const { body, query } = validateInput(MODEL.operations.TagResource!, req);
    await manager.tag(query.resourceArn!, body.tags as unknown as Tag[]);
    return {};
  },
  UntagResource: async (manager, req) => {
    const { body, query } = validateInput(MODEL.operations.UntagResource!, req);
    await manager.untag(query.resourceArn!, body.tagKeys as string[]);
    return {};
  },
  ListTagsForResource: async (manager, req) => {
    const { query } = validateInput(MODEL.operations.ListTagsForResource!, req);
    const page = await manager.listTags(query.resourceArn!, optionalInt(query.limit), query.nextToken);
    return { tags: page.items as unknown as JsonValue[], ...(page.nextToken ? { nextToken: page.nextToken } : {}) };
  },
};

/** Every operation of the model, each with its handler; fails loudly if the model and the table disagree. */
export function buildOperations(): Operation[] {
  const handlers: Record<string, Operation['handle']> = { ...tagOperations };
  for (const k of KIND_NAMES) Object.assign(handlers, kindOperations(KINDS[k]));
  const ops = Object.entries(MODEL.operations).map(([name, op]) => {
    const handle = handlers[name];
    if (!handle) throw new Error(`keymesh has no handler for App Mesh operation ${name}`);
    return { name, ...op, handle };
  });
  if (ops.length !== Object.keys(handlers).length) throw new Error('operation table and model disagree');
  return ops;
}

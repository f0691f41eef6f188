// JSON in and out of keymesh's own endpoints: parse errors and wrong member types become BadRequestErrors
// naming the member; answers are never cached (they may hold certificates and tokens).
import type { FastifyReply } from 'fastify';
import { BadRequestError } from '../errors/index.ts';
import type { JsonValue } from '../model/json.ts';

export function parseJsonBody(raw: Buffer | undefined): JsonValue {
  if (!raw || raw.length === 0) return {};
  try {
    return JSON.parse(raw.toString('utf8')) as JsonValue;
  } catch (e) {
    throw new BadRequestError(`Request body is not valid JSON: ${(e as Error).message}`);
  }
}

/** Typed access to the members of a JSON object body; every getter refuses a wrong type by name. */
export class BodyFields {
  readonly #body: Record<string, unknown>;

  constructor(body: unknown, allowed: readonly string[]) {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequestError('The request body must be a JSON object.');
    this.#body = body as Record<string, unknown>;
    const unknown = Object.keys(this.#body).filter((k) => !allowed.includes(k));
    if (unknown.length) throw new BadRequestError(`Unknown member${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; expected ${allowed.join(', ') || 'none'}.`);
  }

  string(name: string): string | undefined {
    const v = this.#body[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.length === 0) throw new BadRequestError(`"${name}" must be a non-empty string.`);
    return v;
  }

  requiredString(name: string): string {
    const v = this.string(name);
    if (v === undefined) throw new BadRequestError(`"${name}" is required.`);
    return v;
  }

  /** A positive whole number. */
  count(name: string): number | undefined {
    const v = this.#body[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new BadRequestError(`"${name}" must be a positive whole number.`);
    return v;
  }

  /** A list of positive whole numbers. */
  counts(name: string): number[] | undefined {
    const v = this.#body[name];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((n) => typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0)) throw new BadRequestError(`"${name}" must be a list of positive whole numbers.`);
    return v as number[];
  }

  boolean(name: string): boolean | undefined {
    const v = this.#body[name];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw new BadRequestError(`"${name}" must be true or false.`);
    return v;
  }

  strings(name: string): string[] | undefined {
    const v = this.#body[name];
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new BadRequestError(`"${name}" must be a list of strings.`);
    return v as string[];
  }
}

/** A 200 answer with a JSON body, marked not to be stored by caches. */
export function sendJson(reply: FastifyReply, value: unknown): FastifyReply {
  return reply.code(200).type('application/json').header('cache-control', 'no-store').send(JSON.stringify(value));
}

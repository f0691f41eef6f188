// Reading Envoy resources in protobufjs object form (src/envoy/protos.ts: camelCase fields, wrappers as
// `{ value }`, Durations as `{ seconds: '5', nanos: 0 }`, Any as `{ '@type', ...fields }`) into plain values,
// with errors that name where in the resource the problem is. A ProxyConfigError's message is what the proxy
// NACKs with, so it must say which resource and field is wrong.
import { KeymeshError } from '../../errors/index.ts';

export type Json = Record<string, unknown>;

/** A resource keymesh's proxy cannot apply: the message names the resource, the field and the problem. */
export class ProxyConfigError extends KeymeshError {
  constructor(message: string) {
    super('bad-request', 'KM_ERR_PROXY_CONFIG', message);
  }
}

/** Where in a resource we are, for messages: `cluster cds_x: transportSocket.typedConfig`. */
export class Path {
  readonly #text: string;
  constructor(text: string) {
    this.#text = text;
  }
  at(field: string | number): Path {
    return new Path(typeof field === 'number' ? `${this.#text}[${field}]` : `${this.#text}.${field}`);
  }
  fail(problem: string): never {
    throw new ProxyConfigError(`${this.#text}: ${problem}`);
  }
  toString(): string {
    return this.#text;
  }
}

export function obj(v: unknown, path: Path): Json {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) path.fail('must be an object');
  return v as Json;
}

export function optObj(v: unknown, path: Path): Json | undefined {
  return v === undefined || v === null ? undefined : obj(v, path);
}

export function list(v: unknown, path: Path): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) path.fail('must be a list');
  return v as unknown[];
}

export function str(v: unknown, path: Path): string {
  if (typeof v !== 'string') path.fail('must be a string');
  return v as string;
}

export function optStr(v: unknown, path: Path): string | undefined {
  return v === undefined || v === null || v === '' ? undefined : str(v, path);
}

/** A number field (int32/uint32; 64-bit integers arrive as strings). */
export function num(v: unknown, path: Path): number {
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) path.fail('must be a number');
  return n as number;
}

/** A wrapper type (`{ value }`); undefined when absent. */
export function wrapped(v: unknown, path: Path): number | undefined {
  if (v === undefined || v === null) return undefined;
  const o = obj(v, path);
  return o.value === undefined ? 0 : num(o.value, path.at('value'));
}

export function wrappedBool(v: unknown, path: Path): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  const value = obj(v, path).value;
  if (value !== undefined && typeof value !== 'boolean') path.fail('must be true or false');
  return value === true;
}

/** A google.protobuf.Duration in milliseconds; undefined when absent. */
export function durationMs(v: unknown, path: Path): number | undefined {
  if (v === undefined || v === null) return undefined;
  const o = obj(v, path);
  const ms = num(o.seconds ?? 0, path.at('seconds')) * 1000 + num(o.nanos ?? 0, path.at('nanos')) / 1e6;
  if (ms < 0) path.fail('must not be negative');
  return ms;
}

/** The `@type` of an Any-typed config, checked against the ones keymesh's proxy implements. */
export function typed(v: unknown, path: Path, accepted: readonly string[]): Json {
  const o = obj(v, path);
  const type = o['@type'];
  if (typeof type !== 'string' || !accepted.includes(type)) {
    path.fail(`type ${String(type)} is not supported by keymesh's proxy (supported: ${accepted.map((t) => t.slice(t.lastIndexOf('.') + 1)).join(', ')})`);
  }
  return o;
}

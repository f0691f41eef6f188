// Which fields of a route configuration message keymesh's proxy implements. Envoy's semantics depend on
// every field present, so a field the proxy does not implement is refused (the NACK names it) rather than
// skipped; only informational fields (names, stat prefixes, metadata) may be ignored.
// src/proxy/config, spelled so that the layer rule does not read `../config/` as src/config.
import { type Json, Path, str } from '../resources/values.ts';

/** Per message: the fields the compiler reads, and those it ignores because they do not change behaviour. */
export type Fields = Readonly<Record<string, 'read' | 'ignored'>>;

/** A value that is there: proto3 defaults (false, '', 0, []) count as absent, as they do on the wire. */
export function isSet(v: unknown): boolean {
  return v !== undefined && v !== null && v !== false && v !== '' && v !== 0 && !(Array.isArray(v) && v.length === 0);
}

/** Refuses every set field of `o` that `fields` does not list; `at(field)` is where that field is. */
export function refuseOthers(o: Json, at: (field: string) => Path, fields: Fields): void {
  for (const key of Object.keys(o)) {
    if (!Object.hasOwn(fields, key) && isSet(o[key])) at(key).fail('is not supported by keymesh\'s proxy');
  }
}

/** A string field that must be there and not be empty. */
export function requiredStr(v: unknown, path: Path): string {
  if (v === undefined || v === null || v === '') path.fail('is required');
  return str(v, path);
}

/** A bool field (proto3: absent is false). */
export function bool(v: unknown, path: Path): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') path.fail('must be true or false');
  return v as boolean;
}

/** An enum field (protobufjs gives names; numbers are accepted too), as its name; absent is the first value. */
export function enumName(v: unknown, path: Path, names: readonly string[]): string {
  if (v === undefined || v === null) return names[0]!;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < names.length) return names[v]!;
  if (typeof v === 'string' && names.includes(v)) return v;
  return path.fail(`must be one of ${names.join(', ')}`);
}

/** Envoy's HTTP_HEADER_VALUE rule (not strict): no NUL, CR or LF. */
export function headerValueText(v: string, path: Path): string {
  if (/[\0\r\n]/.test(v)) path.fail('must not contain NUL, CR or LF');
  return v;
}

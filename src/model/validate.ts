// The model-driven validator: checks a JSON value against a shape of the App Mesh model (types, required
// and unknown members, enums, lengths, ranges, patterns, unions) and reports every problem with its path.
// Unknown members are rejected on purpose: a misspelled TLS field must never be silently ignored.
import type { Violation } from '../errors/index.ts';
import { isJsonObject } from './json.ts';
import { type ModelShape, shape } from './model.ts';

// Limits the model leaves implicit: Smithy integers are 32-bit; longs are kept to what a JSON number holds exactly.
const INT_RANGE = { integer: [-(2 ** 31), 2 ** 31 - 1], long: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER] } as const;

/** App Mesh's rule for idempotency tokens (the model only says String). */
const CLIENT_TOKEN = /^[A-Za-z0-9_-]*$/;
const CLIENT_TOKEN_MAX = 36;

const patternCache = new Map<string, RegExp>();

function compiled(pattern: string): RegExp {
  let re = patternCache.get(pattern);
  if (!re) {
    re = new RegExp(pattern, 'u');
    patternCache.set(pattern, re);
  }
  return re;
}

export function joinPath(path: string, member: string): string {
  return path === '' ? member : `${path}.${member}`;
}

/** How a found value is shown in a message: `string "8080"`, `number 1.5`, `an array`. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `string ${quote(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  if (typeof v === 'object') return 'an object';
  return typeof v;
}

export function quote(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}...` : s);
}

/** Lengths count Unicode code points, as the model's length constraints do. */
function length(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** Validates `value` against the model shape `shapeName`; `path` names the value in messages. */
export function validateShape(shapeName: string, value: unknown, path: string): Violation[] {
  const out: Violation[] = [];
  check(shapeName, value, path, out);
  return out;
}

function check(shapeName: string, value: unknown, path: string, out: Violation[]): void {
  const s = shape(shapeName);
  const bad = (message: string) => out.push({ path, message });
  switch (s.type) {
    case 'structure':
      if (!isJsonObject(value)) return void bad(`must be an object; got ${describeValue(value)}`);
      return checkMembers(s, value, path, Object.keys(s.members ?? {}), out);
    case 'list':
      if (!Array.isArray(value)) return void bad(`must be an array; got ${describeValue(value)}`);
      if (!checkBounds(s, value.length, 'list', bad)) return;
      value.forEach((item, i) => check(s.member!.shape, item, `${path}[${i}]`, out));
      return;
    case 'string':
      if (typeof value !== 'string') return void bad(`must be a string; got ${describeValue(value)}`);
      if (s.enum && !s.enum.includes(value)) return void bad(`must be one of ${s.enum.join(', ')}; got ${quote(value)}`);
      if (!checkBounds(s, length(value), 'string', bad)) return;
      if (s.pattern && !compiled(s.pattern).test(value)) bad(`must match the pattern ${s.pattern}; got ${quote(value)}`);
      return;
    case 'integer':
    case 'long': {
      // A quoted number is an error: Go and JS SDKs never send one, and accepting it would hide client bugs.
      if (typeof value !== 'number' || !Number.isInteger(value)) return void bad(`must be an integer; got ${describeValue(value)}`);
      const [lo, hi] = INT_RANGE[s.type];
      checkBounds({ min: Math.max(s.min ?? lo, lo), max: Math.min(s.max ?? hi, hi) }, value, 'number', bad);
      return;
    }
    case 'boolean':
      if (typeof value !== 'boolean') bad(`must be a boolean (true or false); got ${describeValue(value)}`);
      return;
    case 'timestamp':
      if (typeof value !== 'number' || !Number.isFinite(value)) bad(`must be a timestamp in epoch seconds (a number); got ${describeValue(value)}`);
      return;
  }
}

/** min/max as lengths (strings, lists) or values (numbers); returns false after reporting a violation. */
function checkBounds(s: { min?: number; max?: number }, n: number, what: 'list' | 'string' | 'number', bad: (m: string) => void): boolean {
  const say = (bound: string, k: number) =>
    what === 'number' ? `must be ${bound} ${k}; got ${n}`
      : what === 'list' ? `must have ${bound} ${plural(k, 'item')}; got ${n}`
        : `must be ${bound} ${plural(k, 'character')}; got ${n}`;
  let message: string | undefined;
  if (what !== 'number' && s.min !== undefined && s.min === s.max && n !== s.min) message = say('exactly', s.min);
  else if (s.min !== undefined && n < s.min) message = what === 'string' && s.min === 1 ? 'must not be empty' : say('at least', s.min);
  else if (s.max !== undefined && n > s.max) message = say('at most', s.max);
  if (message !== undefined) bad(message);
  return message === undefined;
}

/**
 * Checks the members of `obj` that are listed in `allowed`. JSON null counts as "not set", as in AWS's own
 * services (and so does undefined, for callers passing JS objects); a required member that is missing or null is reported.
 */
function checkMembers(s: ModelShape, obj: Record<string, unknown>, path: string, allowed: string[], out: Violation[]): void {
  const members = s.members ?? {};
  let unknown = false;
  for (const [key, value] of Object.entries(obj)) {
    if (!allowed.includes(key) || !Object.hasOwn(members, key)) {
      unknown = true;
      out.push({ path: joinPath(path, key), message: `unknown member ${quote(key)}; allowed members are ${allowed.join(', ') || '(none)'}` });
    } else if (value !== null && value !== undefined) {
      check(members[key]!.shape, value, joinPath(path, key), out);
    }
  }
  for (const name of s.required ?? []) {
    if (allowed.includes(name) && (obj[name] === undefined || obj[name] === null)) out.push({ path: joinPath(path, name), message: 'is required' });
  }
  if (s.union) {
    const set = allowed.filter((k) => obj[k] !== undefined && obj[k] !== null && Object.hasOwn(obj, k));
    // With an unknown member present, "found none" would only repeat that error.
    if (set.length > 1 || (set.length === 0 && !unknown)) {
      out.push({ path, message: `exactly one of ${allowed.join(', ')} must be set; found ${set.length === 0 ? 'none' : set.join(', ')}` });
    }
  }
}

/** Members of an operation's input shape that travel in the JSON body (those without a `location`). */
export function bodyMembers(inputShape: string): string[] {
  return Object.entries(shape(inputShape).members ?? {})
    .filter(([, m]) => m.location === undefined)
    .map(([name]) => name);
}

/** Validates a request body against the body members of an input shape; paths start at the member (`spec.listeners[0]`). */
export function validateBody(inputShape: string, body: unknown): Violation[] {
  if (!isJsonObject(body)) return [{ path: '', message: `the request body must be a JSON object; got ${describeValue(body)}` }];
  const s = shape(inputShape);
  const out: Violation[] = [];
  checkMembers(s, body, '', bodyMembers(inputShape), out);
  for (const [name, m] of Object.entries(s.members ?? {})) {
    const v = body[name];
    if (m.location !== undefined || typeof v !== 'string') continue;
    if (m.idempotencyToken) out.push(...checkClientToken(name, v));
    out.push(...checkServiceName(m.shape, name, v));
  }
  return out;
}

function checkClientToken(path: string, v: string): Violation[] {
  if (v.length === 0) return [{ path, message: 'must not be empty; omit it to make the request without a token' }];
  if (v.length > CLIENT_TOKEN_MAX) return [{ path, message: `must be at most ${CLIENT_TOKEN_MAX} characters; got ${v.length}` }];
  if (!CLIENT_TOKEN.test(v)) return [{ path, message: `may contain only letters, numbers, hyphens and underscores; got ${quote(v)}` }];
  return [];
}

/** Virtual service names (shape ServiceName) have no model constraint, but an empty name identifies nothing. */
function checkServiceName(shapeName: string, path: string, v: string): Violation[] {
  return shapeName === 'ServiceName' && v === '' ? [{ path, message: 'must not be empty' }] : [];
}

/**
 * Validates one path label or query string value (always a string on the wire) against its member's shape:
 * integers are parsed as decimal, booleans as true/false. Path is the member name.
 */
export function validateLocationValue(inputShape: string, member: string, value: string): Violation[] {
  const members = shape(inputShape).members ?? {};
  const m = Object.hasOwn(members, member) ? members[member] : undefined;
  if (!m) throw new Error(`${inputShape} has no member ${member}`);
  const type = shape(m.shape).type;
  if (type === 'integer' || type === 'long') {
    if (!/^-?\d{1,16}$/.test(value)) return [{ path: member, message: `must be an integer; got ${quote(value)}` }];
    return validateShape(m.shape, Number(value), member);
  }
  if (type === 'boolean') {
    if (value !== 'true' && value !== 'false') return [{ path: member, message: `must be true or false; got ${quote(value)}` }];
    return [];
  }
  return [...validateShape(m.shape, value, member), ...checkServiceName(m.shape, member, value)];
}

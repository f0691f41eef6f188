// Opaque pagination tokens. A token carries the last name returned and the list it came from, so a token
// from one list cannot be replayed against another.
import { BadRequestError } from '../errors/index.ts';

export function encodePageToken(after: string, scope: string): string {
  return Buffer.from(JSON.stringify({ v: 1, s: scope, a: after }), 'utf8').toString('base64url');
}

export function decodePageToken(token: string, scope: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new BadRequestError('nextToken: not a token this API returned; pass the nextToken from the previous page unchanged.');
  }
  const p = parsed as { v?: unknown; s?: unknown; a?: unknown };
  if (p?.v !== 1 || typeof p.a !== 'string' || typeof p.s !== 'string') {
    throw new BadRequestError('nextToken: not a token this API returned; pass the nextToken from the previous page unchanged.');
  }
  if (p.s !== scope) throw new BadRequestError('nextToken: this token belongs to a different list request.');
  return p.a;
}

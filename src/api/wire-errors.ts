// The one table from keymesh error kinds to App Mesh's exception types and HTTP statuses (botocore model).
// Clients read the type from the `x-amzn-ErrorType` header and the text from the body's `message`.
import { type ErrorKind, isKeymeshError, UnauthenticatedError } from '../errors/index.ts';

const BY_KIND: Record<Exclude<ErrorKind, 'unauthenticated'>, { type: string; status: number }> = {
  'bad-request': { type: 'BadRequestException', status: 400 },
  'not-found': { type: 'NotFoundException', status: 404 },
  conflict: { type: 'ConflictException', status: 409 },
  'in-use': { type: 'ResourceInUseException', status: 409 },
  forbidden: { type: 'ForbiddenException', status: 403 },
  'limit-exceeded': { type: 'LimitExceededException', status: 400 },
  'too-many-tags': { type: 'TooManyTagsException', status: 400 },
  throttled: { type: 'TooManyRequestsException', status: 429 },
  unavailable: { type: 'ServiceUnavailableException', status: 503 },
  internal: { type: 'InternalServerErrorException', status: 500 },
};

export interface WireError {
  status: number;
  type: string;
  message: string;
}

export function toWireError(e: unknown): WireError {
  if (e instanceof UnauthenticatedError) return { status: 403, type: e.awsType, message: e.message };
  if (isKeymeshError(e) && e.kind !== 'unauthenticated') {
    const w = BY_KIND[e.kind];
    // Internal causes are logged by the caller; the client only learns that something failed.
    const message = e.kind === 'internal' ? 'An internal error occurred; see the keymesh server log.' : e.message;
    return { status: w.status, type: w.type, message };
  }
  return { status: 500, type: 'InternalServerErrorException', message: 'An internal error occurred; see the keymesh server log.' };
}

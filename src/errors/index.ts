// One error hierarchy for all of keymesh. Each error has a stable `code` (never reused) and a `kind`;
// wire formats (App Mesh REST, later gRPC and CLI exit codes) are derived from `kind` in one table each.
// `message` is safe to show to a caller; `cause` is for logs only. Neither ever carries a secret.

export type ErrorKind =
  | 'bad-request'
  | 'not-found'
  | 'conflict'
  | 'in-use'
  | 'forbidden'
  | 'unauthenticated'
  | 'limit-exceeded'
  | 'too-many-tags'
  | 'throttled'
  | 'unavailable'
  | 'internal';

export interface Violation {
  /** Where the problem is, as a path into the request: `spec.listeners[0].tls.mode`. */
  path: string;
  message: string;
}

export class KeymeshError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.kind = kind;
    this.code = code;
  }
}

/** A request (or config, or file) that is malformed or breaks a rule; lists every problem found. */
export class ValidationError extends KeymeshError {
  readonly violations: readonly Violation[];

  constructor(violations: readonly Violation[], code = 'KM_ERR_VALIDATION') {
    super('bad-request', code, formatViolations(violations));
    this.violations = violations;
  }
}

export class BadRequestError extends KeymeshError {
  constructor(message: string, code = 'KM_ERR_BAD_REQUEST') {
    super('bad-request', code, message);
  }
}

export class NotFoundError extends KeymeshError {
  constructor(message: string, code = 'KM_ERR_NOT_FOUND') {
    super('not-found', code, message);
  }
}

export class ConflictError extends KeymeshError {
  constructor(message: string, code = 'KM_ERR_CONFLICT') {
    super('conflict', code, message);
  }
}

export class ResourceInUseError extends KeymeshError {
  constructor(message: string, code = 'KM_ERR_IN_USE') {
    super('in-use', code, message);
  }
}

export class ForbiddenError extends KeymeshError {
  constructor(message: string, code = 'KM_ERR_FORBIDDEN') {
    super('forbidden', code, message);
  }
}

/** Authentication failed; `awsType` is the exception name AWS clients expect for this case. */
export class UnauthenticatedError extends KeymeshError {
  readonly awsType: 'MissingAuthenticationTokenException' | 'UnrecognizedClientException' | 'InvalidSignatureException' | 'IncompleteSignatureException';

  constructor(awsType: UnauthenticatedError['awsType'], message: string) {
    super('unauthenticated', `KM_ERR_AUTH_${awsType.replace(/Exception$/, '').toUpperCase()}`, message);
    this.awsType = awsType;
  }
}

export class LimitExceededError extends KeymeshError {
  constructor(message: string, code = 'KM_ERR_LIMIT_EXCEEDED') {
    super('limit-exceeded', code, message);
  }
}

export class TooManyTagsError extends KeymeshError {
  constructor(message: string) {
    super('too-many-tags', 'KM_ERR_TOO_MANY_TAGS', message);
  }
}

export class ThrottledError extends KeymeshError {
  constructor(message: string) {
    super('throttled', 'KM_ERR_THROTTLED', message);
  }
}

export class UnavailableError extends KeymeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('unavailable', 'KM_ERR_UNAVAILABLE', message, options);
  }
}

export class InternalError extends KeymeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('internal', 'KM_ERR_INTERNAL', message, options);
  }
}

/** Configuration given to a keymesh command (flags, environment, files) is wrong. */
export class ConfigError extends KeymeshError {
  constructor(message: string) {
    super('bad-request', 'KM_ERR_CONFIG', message);
  }
}

/** The on-disk store is unreadable or from an unknown schema version. */
export class StoreError extends KeymeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('internal', 'KM_ERR_STORE', message, options);
  }
}

export function isKeymeshError(e: unknown): e is KeymeshError {
  return e instanceof Error && typeof (e as KeymeshError).code === 'string' && (e as KeymeshError).code.startsWith('KM_ERR_');
}

export function formatViolations(violations: readonly Violation[]): string {
  if (violations.length === 0) return 'Invalid request.';
  const shown = violations.slice(0, 10).map((v) => (v.path ? `${v.path}: ${v.message}` : v.message));
  const more = violations.length > 10 ? ` (and ${violations.length - 10} more)` : '';
  return shown.join('; ') + more;
}

/** A PEM file or string could not be read (wrong type, damaged, wrong passphrase). */
export class PemError extends KeymeshError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('bad-request', 'KM_ERR_PEM', message, options);
  }
}

/** A certificate signing request is malformed, badly signed, or asks for something it may not have. */
export class CsrError extends KeymeshError {
  constructor(message: string, code = 'KM_ERR_CSR') {
    super('bad-request', code, message);
  }
}

/** A certificate chain does not verify: expired, wrong issuer, not a CA, revoked. */
export class TrustError extends KeymeshError {
  constructor(message: string) {
    super('bad-request', 'KM_ERR_TRUST', message);
  }
}

/**
 * The closed set of Steward errors. Every failure a user can cause maps to one
 * code here; the HTTP layer maps codes to statuses in one place (`httpStatusOf`).
 *
 * Messages follow one rule: lowercase, no final period, user input in backticks,
 * one line, no internal type names.
 */
export const ERROR_CODES = {
  STEWARD_E_VALIDATION: 400,
  STEWARD_E_PARSE: 400,
  STEWARD_E_UNKNOWN_TAG: 400,
  STEWARD_E_UNKNOWN_TAG_VALUE: 400,
  STEWARD_E_DUPLICATE_TAG: 409,
  STEWARD_E_TOO_MANY_VALUES: 400,
  STEWARD_E_INVALID_PREDICATE: 400,
  STEWARD_E_UNKNOWN_COLUMN: 400,
  STEWARD_E_GROUP_CYCLE: 409,
  STEWARD_E_NOT_FOUND: 404,
  STEWARD_E_ALREADY_EXISTS: 409,
  STEWARD_E_CONFLICT: 409,
  STEWARD_E_IN_USE: 409,
  STEWARD_E_UNAUTHENTICATED: 401,
  STEWARD_E_FORBIDDEN: 403,
  STEWARD_E_GRANT_OPTION: 403,
  // a residency guardrail refuses where the data would land (docs/residency.md)
  STEWARD_E_RESIDENCY: 403,
  STEWARD_E_WORKSPACE_LOCKED: 423,
  STEWARD_E_PAYLOAD_TOO_LARGE: 413,
  STEWARD_E_UNSUPPORTED_MEDIA_TYPE: 415,
  STEWARD_E_BUSY: 429,
  STEWARD_E_RATE_LIMITED: 429,
  STEWARD_E_TIMEOUT: 408,
  STEWARD_E_SOURCE: 422,
  STEWARD_E_CONFIG: 500,
  STEWARD_E_INTERNAL: 500,
  STEWARD_E_UNAVAILABLE: 503,
} as const;

/**
 * Seconds a client should wait before retrying, sent as `Retry-After`, for the
 * codes that mean "not now" rather than "not this": the request itself was fine.
 */
export const RETRY_AFTER_SECONDS: Partial<Record<keyof typeof ERROR_CODES, number>> = {
  STEWARD_E_UNAVAILABLE: 1,
};

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorDetail {
  /** Where the problem is: a field path (`grants[2].resource`), or `file:line:column`. */
  readonly path?: string;
  readonly message: string;
}

export class StewardError extends Error {
  override readonly name = 'StewardError';
  readonly code: ErrorCode;
  readonly details: readonly ErrorDetail[];

  constructor(code: ErrorCode, message: string, options: { details?: readonly ErrorDetail[]; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? [];
  }

  get status(): number {
    return ERROR_CODES[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; details: readonly ErrorDetail[] } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

export function isStewardError(e: unknown): e is StewardError {
  return e instanceof StewardError;
}

export function httpStatusOf(e: unknown): number {
  return isStewardError(e) ? e.status : 500;
}

/** Shorthands keep call sites to one line. */
export const notFound = (what: string, name: string): StewardError =>
  new StewardError('STEWARD_E_NOT_FOUND', `${what} \`${name}\` not found`);

export const invalid = (path: string, message: string): StewardError =>
  new StewardError('STEWARD_E_VALIDATION', `${path}: ${message}`, { details: [{ path, message }] });

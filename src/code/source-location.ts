/**
 * Where an entity or a problem sits in the policy files. Every error a policy
 * author can cause points at `file:line:column`, so the loader records the
 * position of every entity it reads and later stages look it up by entity.
 */
import type { EntityKind } from '../policy/changes.js';
import type { ErrorCode, ErrorDetail } from '../errors.js';
import { StewardError } from '../errors.js';

export interface SourceLocation {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
}

/** Entity locations, keyed by `locationKey(kind, entityKey)`. */
export type SourceLocations = ReadonlyMap<string, SourceLocation>;

/** What a policy file declares: the policy's entities, and dashboards and clean rooms (stored beside the policy world). */
export type DeclaredKind = EntityKind | 'dashboard' | 'cleanroom';

/** `grant:analysts-read-claims`, `tagAssignment:lake.claims#domain`, `dashboard:revenue`. */
export function locationKey(kind: DeclaredKind, key: string): string {
  return `${kind}:${key}`;
}

export function formatLocation(loc: SourceLocation): string {
  return `${loc.file}:${loc.line}:${loc.column}`;
}

/**
 * One error carrying every problem found, so authors fix a file in one pass.
 * The message repeats the first problem because many callers print only it.
 */
export function policyError(code: ErrorCode, details: readonly ErrorDetail[]): StewardError {
  const first = details[0];
  const where = first === undefined ? '' : `${first.path === undefined ? '' : `${first.path}: `}${first.message}`;
  const more = details.length > 1 ? ` (and ${details.length - 1} more)` : '';
  const what = code === 'STEWARD_E_PARSE' ? 'policy files could not be parsed' : 'policy is invalid';
  return new StewardError(code, `${what}: ${where}${more}`, { details });
}

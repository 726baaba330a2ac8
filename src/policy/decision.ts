/**
 * What a decision says, and the interface every evaluator implements (the
 * naive reference evaluator and the indexed engine answer to the same tests).
 */
import type { Permission, PrincipalRef, ResourceRef } from './model.js';
import type { Predicate } from './predicate.js';

export type Effect = 'allow' | 'deny';

/**
 * Why a decision came out as it did. `code` is stable for scripts; `message`
 * is for people.
 */
export type Reason =
  | { readonly code: 'GRANT'; readonly grantId: string; readonly via: PrincipalRef; readonly message: string }
  | { readonly code: 'GUARDRAIL'; readonly guardrail: string; readonly message: string }
  /** A liftable guardrail denied the action, and a live time-bound grant that lifts it gave it anyway. */
  | { readonly code: 'GUARDRAIL_LIFTED'; readonly guardrail: string; readonly grantId: string; readonly message: string }
  | { readonly code: 'NO_GRANT'; readonly message: string }
  | { readonly code: 'GRANT_EXPIRED'; readonly grantId: string; readonly message: string }
  | { readonly code: 'NOT_APPLICABLE'; readonly message: string }
  | { readonly code: 'UNKNOWN_PRINCIPAL'; readonly message: string }
  | { readonly code: 'UNKNOWN_RESOURCE'; readonly message: string };

/** One visible column of a table, and the rows on which its cells are visible. */
export interface ColumnAccess {
  readonly name: string;
  /** null: visible on every row the table predicate admits. Otherwise cells outside it read as NULL. */
  readonly rowFilter: Predicate | null;
}

export interface Decision {
  readonly decision: Effect;
  readonly principal: PrincipalRef;
  readonly action: Permission;
  readonly resource: string;
  /** Never empty. For allow: the grants that matched. For deny: the guardrails that denied, or why nothing matched. */
  readonly reasons: readonly Reason[];
  readonly matchedGrants: readonly string[];
  readonly deniedBy: readonly string[];
  /** Names of the data filters in effect (SELECT on a table or column). */
  readonly filters: readonly string[];
  /** SELECT on a table or column: the visible columns in ordinal order. */
  readonly columns?: readonly ColumnAccess[];
  /** SELECT on a table or column: rows visible; null means all rows. */
  readonly rowFilter?: Predicate | null;
}

export interface AuthorizeRequest {
  readonly principal: PrincipalRef;
  readonly action: Permission;
  readonly resource: ResourceRef;
  /** Epoch milliseconds; time-bound grants past their `notAfter` do not count. Defaults to Date.now(). */
  readonly now?: number;
}

/** One entry of a principal's effective permissions. */
export interface EffectivePermission {
  readonly resource: string;
  readonly level: ResourceRef['level'];
  readonly permissions: readonly Permission[];
  readonly grantable: readonly Permission[];
  /** Tables only, when SELECT is held: the visible columns and rows. */
  readonly columns?: readonly ColumnAccess[];
  readonly rowFilter?: Predicate | null;
  readonly grants: readonly string[];
}

/** One principal that can perform an action on a resource, and why. */
export interface AccessHolder {
  readonly principal: PrincipalRef;
  readonly decision: Decision;
}

export interface Evaluator {
  authorize(req: AuthorizeRequest): Decision;
  /** Every database and table (and catalog) the principal holds any permission on. Sorted by resource. */
  effectivePermissions(principal: PrincipalRef, now?: number): EffectivePermission[];
  /** Every user (directly or through groups) allowed `action` on the resource. Sorted by principal. */
  whoCanAccess(resource: ResourceRef, action: Permission, now?: number): AccessHolder[];
}

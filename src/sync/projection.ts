/**
 * What a warehouse can enforce of one Steward decision: a set of columns
 * readable on the rows a row predicate admits, plus table-level INSERT and
 * DELETE. PostgreSQL, Redshift and Trino all have exactly this shape.
 *
 * Steward's cell-level union (a column visible on only some of the rows,
 * docs/policy.md) has no GRANT equivalent, so such columns are left out: the
 * warehouse may show less than Steward allows, never more.
 */
import type { Decision } from '../policy/decision.js';
import type { Table } from '../policy/model.js';
import type { Predicate } from '../policy/predicate.js';
import { anyOf, samePredicate } from '../policy/predicate.js';

export interface Projection {
  /** Readable columns in ordinal order; empty when SELECT is not held. */
  readonly columns: readonly string[];
  /** Every column of the table is readable (a table-level SELECT). */
  readonly allColumns: boolean;
  /** Rows the columns are readable on; null means all rows. */
  readonly rowFilter: Predicate | null;
  readonly insert: boolean;
  readonly delete: boolean;
  /** Columns Steward shows on only some rows, left out here. */
  readonly narrowed: readonly string[];
}

export const NO_ACCESS: Projection = Object.freeze({ columns: [], allColumns: false, rowFilter: null, insert: false, delete: false, narrowed: [] });

/** Builds the projection from the SELECT decision (or null when not asked) and the INSERT/DELETE outcomes. */
export function project(table: Table, select: Decision | null, insert: boolean, del: boolean): Projection {
  let columns: string[] = [];
  let narrowed: string[] = [];
  let rowFilter: Predicate | null = null;
  if (select !== null && select.decision === 'allow') {
    const cols = select.columns ?? [];
    columns = cols.filter((c) => c.rowFilter === null).map((c) => c.name);
    narrowed = cols.filter((c) => c.rowFilter !== null).map((c) => c.name);
    rowFilter = columns.length === 0 ? null : normalizePredicate(select.rowFilter ?? null);
  }
  return {
    columns,
    allColumns: columns.length > 0 && columns.length === table.columns.length,
    rowFilter,
    insert,
    delete: del,
    narrowed,
  };
}

export const hasAccess = (p: Projection): boolean => p.columns.length > 0 || p.insert || p.delete;

/** The disjuncts of a row predicate (a top-level OR is split), for one policy each. */
export function disjuncts(p: Predicate): readonly Predicate[] {
  return p.k === 'or' ? p.args.flatMap((a) => disjuncts(a)) : [p];
}

/** OR-canonical form: flattened, de-duplicated and sorted disjuncts, so equal unions compare equal. */
export function normalizePredicate(p: Predicate | null): Predicate | null {
  return p === null ? null : anyOf(disjuncts(p));
}

/** What a member of several roles gets in PostgreSQL: the union of privileges, the OR of row policies. */
export function unionOf(table: Table, list: readonly Projection[]): Projection {
  const withSelect = list.filter((p) => p.columns.length > 0);
  const cols = new Set(withSelect.flatMap((p) => p.columns));
  const columns = table.columns.map((c) => c.name).filter((n) => cols.has(n));
  return {
    columns,
    allColumns: columns.length > 0 && columns.length === table.columns.length,
    rowFilter: withSelect.length === 0 ? null : normalizePredicate(anyOf(withSelect.map((p) => p.rowFilter))),
    insert: list.some((p) => p.insert),
    delete: list.some((p) => p.delete),
    narrowed: [],
  };
}

export function sameProjection(a: Projection, b: Projection): boolean {
  return (
    a.insert === b.insert &&
    a.delete === b.delete &&
    a.columns.length === b.columns.length &&
    a.columns.every((c, i) => c === b.columns[i]) &&
    samePredicate(a.rowFilter, b.rowFilter)
  );
}

/**
 * Trino's questions answered by the Steward engine. Pure: the caller passes
 * the snapshot (world + engine) and the instant.
 *
 * The Trino user `NAME` is the Steward principal `user:NAME` (exact, case
 * included); its groups are Steward's, never the ones Trino sends. Trino
 * catalog, schema and table are Steward catalog, database and table of the
 * same names (as in the static `rules.json` export). Visibility follows the
 * catalog API: a table is visible when the user may DESCRIBE it, a schema or
 * catalog when it holds a visible table. Anything not mapped in OPERATIONS
 * is denied.
 *
 * Each catalog's `information_schema` is Trino's own metadata, whose rows
 * Trino filters with FilterSchemas/FilterTables/FilterColumns: it is readable
 * in every catalog the user can see, like Trino's file-based access control.
 */
import type { Evaluator } from '../policy/decision.js';
import type { Decision } from '../policy/decision.js';
import { PRINCIPAL_PATTERN, type Permission, type PolicyWorld, type PrincipalRef, type ResourceRef } from '../policy/model.js';
import { cellMaskSql, toSql } from '../policy/predicate.js';
import type { OpaInput, OpaResource } from './opa-input.js';

export interface TrinoWorld {
  readonly world: PolicyWorld;
  readonly engine: Pick<Evaluator, 'authorize'>;
  readonly now: number;
}

/** What each mapped Trino operation asks of Steward, and of which resource kind. */
type Check =
  | { readonly kind: 'known-user' }
  | { readonly kind: 'own-query' }
  | { readonly kind: 'catalog-visible' }
  | { readonly kind: 'schema-visible' }
  | { readonly kind: 'table'; readonly action: Permission }
  | { readonly kind: 'select' }
  | { readonly kind: 'database'; readonly action: Permission; readonly from: 'schema' | 'table' };

/** Trino operation → Steward question. Kept in step with the table in docs/trino.md. */
export const OPERATIONS: Readonly<Record<string, Check>> = Object.freeze({
  ExecuteQuery: { kind: 'known-user' },
  ViewQueryOwnedBy: { kind: 'own-query' },
  KillQueryOwnedBy: { kind: 'own-query' },
  FilterViewQueryOwnedBy: { kind: 'own-query' },
  AccessCatalog: { kind: 'catalog-visible' },
  FilterCatalogs: { kind: 'catalog-visible' },
  ShowSchemas: { kind: 'catalog-visible' },
  FilterSchemas: { kind: 'schema-visible' },
  ShowTables: { kind: 'schema-visible' },
  FilterTables: { kind: 'table', action: 'DESCRIBE' },
  ShowColumns: { kind: 'table', action: 'DESCRIBE' },
  ShowCreateTable: { kind: 'table', action: 'DESCRIBE' },
  SelectFromColumns: { kind: 'select' },
  FilterColumns: { kind: 'select' },
  InsertIntoTable: { kind: 'table', action: 'INSERT' },
  DeleteFromTable: { kind: 'table', action: 'DELETE' },
  TruncateTable: { kind: 'table', action: 'DELETE' },
  DropTable: { kind: 'table', action: 'DROP' },
  AddColumn: { kind: 'table', action: 'ALTER' },
  DropColumn: { kind: 'table', action: 'ALTER' },
  RenameColumn: { kind: 'table', action: 'ALTER' },
  AlterColumn: { kind: 'table', action: 'ALTER' },
  SetTableComment: { kind: 'table', action: 'ALTER' },
  SetColumnComment: { kind: 'table', action: 'ALTER' },
  CreateTable: { kind: 'database', action: 'CREATE_TABLE', from: 'table' },
  DropSchema: { kind: 'database', action: 'DROP', from: 'schema' },
});

const INFORMATION_SCHEMA = 'information_schema';

/** `user:NAME` for a Trino user whose name is a Steward user name, else null (every check then denies). */
export function principalOf(input: OpaInput): PrincipalRef | null {
  const ref = `user:${input.context.identity.user}`;
  return PRINCIPAL_PATTERN.test(ref) ? (ref as PrincipalRef) : null;
}

/** One request's view: the principal and memoised visibility, so a batch costs one scan per catalog or schema. */
export class TrinoDecider {
  readonly principal: PrincipalRef | null;
  private readonly visible = new Map<string, boolean>();

  constructor(
    private readonly w: TrinoWorld,
    private readonly input: OpaInput,
  ) {
    this.principal = principalOf(input);
  }

  authorize(action: Permission, resource: ResourceRef): Decision | null {
    if (this.principal === null) return null;
    return this.w.engine.authorize({ principal: this.principal, action, resource, now: this.w.now });
  }

  private allowed(action: Permission, resource: ResourceRef): boolean {
    return this.authorize(action, resource)?.decision === 'allow';
  }

  /** A catalog holding a table the user may DESCRIBE. */
  catalogVisible(catalog: string): boolean {
    return this.memo(`c\u0000${catalog}`, () => this.w.world.tables.some((t) => t.catalog === catalog && this.tableDescribable(t.catalog, t.database, t.name)));
  }

  /** A database holding a table the user may DESCRIBE; `information_schema` in a visible catalog. */
  schemaVisible(catalog: string, schema: string): boolean {
    if (schema === INFORMATION_SCHEMA) return this.catalogVisible(catalog);
    return this.memo(`s\u0000${catalog}\u0000${schema}`, () =>
      this.w.world.tables.some((t) => t.catalog === catalog && t.database === schema && this.tableDescribable(t.catalog, t.database, t.name)),
    );
  }

  private tableDescribable(catalog: string, database: string, table: string): boolean {
    return this.allowed('DESCRIBE', { level: 'table', catalog, database, table });
  }

  private memo(key: string, f: () => boolean): boolean {
    const hit = this.visible.get(key);
    if (hit !== undefined) return hit;
    const v = f();
    this.visible.set(key, v);
    return v;
  }

  /** SELECT on a table: the engine's decision, or null when the Trino user is no Steward user name. */
  selectDecision(t: { catalogName: string; schemaName: string; tableName: string }): Decision | null {
    return this.authorize('SELECT', { level: 'table', catalog: t.catalogName, database: t.schemaName, table: t.tableName });
  }

  /** The columns of `t` the user may read (any row): the SELECT decision's columns. */
  readableColumns(t: { catalogName: string; schemaName: string; tableName: string }): ReadonlySet<string> | 'all' | null {
    if (this.principal === null) return null;
    if (t.schemaName === INFORMATION_SCHEMA) return this.catalogVisible(t.catalogName) ? 'all' : null;
    const d = this.selectDecision(t);
    if (d === null || d.decision !== 'allow') return null;
    return new Set((d.columns ?? []).map((c) => c.name));
  }

  /** Whether the operation is allowed on one resource. Unknown operations and missing resources deny. */
  allows(operation: string, r: OpaResource | undefined): boolean {
    const check = Object.hasOwn(OPERATIONS, operation) ? OPERATIONS[operation] : undefined;
    if (check === undefined || this.principal === null) return false;
    const name = this.principal.slice('user:'.length);
    switch (check.kind) {
      case 'known-user':
        return this.w.world.users.some((u) => u.name === name);
      case 'own-query':
        return r?.user !== undefined && r.user.user === name && this.w.world.users.some((u) => u.name === name);
      case 'catalog-visible':
        return r?.catalog !== undefined && this.catalogVisible(r.catalog.name);
      case 'schema-visible':
        return r?.schema !== undefined && this.schemaVisible(r.schema.catalogName, r.schema.schemaName);
      case 'table': {
        const t = r?.table;
        if (t === undefined) return false;
        if (t.schemaName === INFORMATION_SCHEMA) return check.action === 'DESCRIBE' && this.catalogVisible(t.catalogName);
        return this.allowed(check.action, { level: 'table', catalog: t.catalogName, database: t.schemaName, table: t.tableName });
      }
      case 'select': {
        const t = r?.table;
        if (t === undefined) return false;
        const readable = this.readableColumns(t);
        if (readable === null) return false;
        return readable === 'all' || (t.columns ?? []).every((c) => readable.has(c));
      }
      case 'database': {
        const at = check.from === 'schema' ? r?.schema : r?.table;
        if (at === undefined || at.schemaName === INFORMATION_SCHEMA) return false;
        return this.allowed(check.action, { level: 'database', catalog: at.catalogName, database: at.schemaName });
      }
      default: {
        const never: never = check;
        return never;
      }
    }
  }
}

/** `opa.policy.uri`: one yes or no. */
export function decideAllow(w: TrinoWorld, input: OpaInput): boolean {
  return new TrinoDecider(w, input).allows(input.action.operation, input.action.resource);
}

/**
 * `opa.policy.batched-uri`: the indexes allowed. FilterColumns sends one
 * table and answers indexes into its `columns`; every other operation
 * answers indexes into `filterResources`.
 */
export function decideBatch(w: TrinoWorld, input: OpaInput): number[] {
  const d = new TrinoDecider(w, input);
  const items = input.action.filterResources ?? [];
  const op = input.action.operation;
  if (op === 'FilterColumns') {
    const t = items.length === 1 ? items[0]?.table : undefined;
    if (t === undefined) return [];
    const readable = d.readableColumns(t);
    if (readable === null) return [];
    return (t.columns ?? []).flatMap((c, i) => (readable === 'all' || readable.has(c) ? [i] : []));
  }
  return items.flatMap((r, i) => (d.allows(op, r) ? [i] : []));
}

/** What Trino applies to one table or column: an expression, evaluated as the querying user. */
export interface ViewExpression {
  readonly expression: string;
}

/** A predicate that admits no row: what a table the user may not SELECT gets, should Trino ask anyway. */
const NO_ROWS: ViewExpression = Object.freeze({ expression: 'FALSE' });
/** The mask of a column the user may not read at all. */
const ALL_NULL: ViewExpression = Object.freeze({ expression: 'NULL' });

/** `opa.policy.row-filters-uri`: the table's row predicate in Trino SQL, none when every row is visible. */
export function decideRowFilters(w: TrinoWorld, input: OpaInput): ViewExpression[] {
  const t = input.action.resource?.table;
  if (input.action.operation !== 'GetRowFilters' || t === undefined) return [NO_ROWS];
  const d = new TrinoDecider(w, input);
  if (t.schemaName === INFORMATION_SCHEMA) return d.catalogVisible(t.catalogName) ? [] : [NO_ROWS];
  const decision = d.selectDecision(t);
  if (decision === null || decision.decision !== 'allow') return [NO_ROWS];
  const rowFilter = decision.rowFilter ?? null;
  return rowFilter === null ? [] : [{ expression: toSql(rowFilter, 'trino') }];
}

type ColumnRef = NonNullable<OpaResource['column']>;

/**
 * One column's mask: none when its cells are visible on every row the row
 * filter admits; the gateway's cell mask (`CASE WHEN … THEN col END`) when
 * only on some; all NULL when not readable.
 */
function maskOf(d: TrinoDecider, c: ColumnRef, decisions: Map<string, Decision | null>): ViewExpression | null {
  if (d.principal === null) return ALL_NULL;
  if (c.schemaName === INFORMATION_SCHEMA) return d.catalogVisible(c.catalogName) ? null : ALL_NULL;
  const key = `${c.catalogName}\u0000${c.schemaName}\u0000${c.tableName}`;
  if (!decisions.has(key)) decisions.set(key, d.selectDecision(c));
  const decision = decisions.get(key) ?? null;
  if (decision === null || decision.decision !== 'allow') return ALL_NULL;
  const access = (decision.columns ?? []).find((a) => a.name === c.columnName);
  if (access === undefined) return ALL_NULL;
  return access.rowFilter === null ? null : { expression: cellMaskSql(c.columnName, access.rowFilter, 'trino') };
}

/** `opa.policy.column-masking-uri`: the mask of one column, or null for none. */
export function decideColumnMask(w: TrinoWorld, input: OpaInput): ViewExpression | null {
  const c = input.action.resource?.column;
  if (input.action.operation !== 'GetColumnMask' || c === undefined) return ALL_NULL;
  return maskOf(new TrinoDecider(w, input), c, new Map());
}

/** `opa.policy.batch-column-masking-uri`: masks by index into `filterResources`, masked columns only. */
export function decideColumnMasks(w: TrinoWorld, input: OpaInput): { index: number; viewExpression: ViewExpression }[] {
  const d = new TrinoDecider(w, input);
  const decisions = new Map<string, Decision | null>();
  const wrongOperation = input.action.operation !== 'GetColumnMask';
  return (input.action.filterResources ?? []).flatMap((r, index) => {
    const mask = wrongOperation || r.column === undefined ? ALL_NULL : maskOf(d, r.column, decisions);
    return mask === null ? [] : [{ index, viewExpression: mask }];
  });
}

/**
 * What a request would add to the requester's current access, computed by the
 * policy engine: build the world with the would-be grant (and guardrail lifts),
 * compare `effectivePermissions` before and after. Pure.
 */
import type { Evaluator, EffectivePermission, ColumnAccess } from '../policy/decision.js';
import type { Grant, Permission, PolicyWorld, PrincipalRef } from '../policy/model.js';
import { createEngine } from '../policy/engine.js';
import { toSql, type Predicate } from '../policy/predicate.js';
import { applyChanges, type Change } from '../policy/changes.js';

export interface DryRunEntry {
  readonly resource: string;
  readonly level: string;
  /** Permissions held after but not before. */
  readonly addedPermissions: readonly Permission[];
  /** SELECT: columns visible after but not before. */
  readonly addedColumns: readonly string[];
  /** SELECT: the row predicate before and after (SQL; null means all rows; absent means no SELECT). */
  readonly rowFilterBefore?: string | null;
  readonly rowFilterAfter?: string | null;
  /** Columns whose cell predicate widens (`name: before → after`). */
  readonly widenedColumns: readonly string[];
}

export interface DryRunResult {
  readonly principal: PrincipalRef;
  /** True when the request would change nothing the requester can do. */
  readonly addsNothing: boolean;
  readonly entries: readonly DryRunEntry[];
  /** Guardrails that still deny part of the scope after the grant (they win over every grant). */
  readonly stillDeniedBy: readonly string[];
}

const sql = (p: Predicate | null | undefined): string | null => (p === null || p === undefined ? null : toSql(p));

function columnMap(cols: readonly ColumnAccess[] | undefined): Map<string, string | null> {
  return new Map((cols ?? []).map((c) => [c.name, sql(c.rowFilter)]));
}

/** Differences between two effective-permission lists of one principal. */
export function diffEffective(before: readonly EffectivePermission[], after: readonly EffectivePermission[]): DryRunEntry[] {
  const prior = new Map(before.map((e) => [e.resource, e]));
  const out: DryRunEntry[] = [];
  for (const a of after) {
    const b = prior.get(a.resource);
    const addedPermissions = a.permissions.filter((p) => !(b?.permissions ?? []).includes(p));
    const colsBefore = columnMap(b?.columns);
    const colsAfter = columnMap(a.columns);
    const addedColumns = [...colsAfter.keys()].filter((c) => !colsBefore.has(c));
    const rowBefore = b?.permissions.includes('SELECT') ? sql(b.rowFilter) : undefined;
    const rowAfter = a.permissions.includes('SELECT') ? sql(a.rowFilter) : undefined;
    const widenedColumns = [...colsAfter.entries()]
      .filter(([c, p]) => colsBefore.has(c) && colsBefore.get(c) !== p)
      .map(([c, p]) => `${c}: ${colsBefore.get(c) ?? 'all rows'} → ${p ?? 'all rows'}`);
    if (addedPermissions.length === 0 && addedColumns.length === 0 && rowBefore === rowAfter && widenedColumns.length === 0) continue;
    out.push({
      resource: a.resource,
      level: a.level,
      addedPermissions,
      addedColumns,
      ...(rowAfter === undefined ? {} : { rowFilterBefore: rowBefore ?? null, rowFilterAfter: rowAfter }),
      widenedColumns,
    });
  }
  return out;
}

/**
 * The access `changes` (a grant put, guardrail edits) would add for `principal` at `now`.
 * `before` may be passed when an engine for `world` already exists.
 *
 * @example dryRun(world, 'user:alice', [{ op: 'put', kind: 'grant', entity: grant }], Date.now())
 */
export function dryRun(world: PolicyWorld, principal: PrincipalRef, changes: readonly Change[], now: number, before?: Evaluator): DryRunResult {
  const engineBefore = before ?? createEngine(world);
  const after = createEngine(applyChanges(world, changes));
  const entries = diffEffective(engineBefore.effectivePermissions(principal, now), after.effectivePermissions(principal, now));
  const grants = changes.flatMap((c) => (c.op === 'put' && c.kind === 'grant' ? [c.entity as Grant] : []));
  const stillDeniedBy = new Set<string>();
  for (const g of grants) {
    const r = g.resource;
    if (r.kind !== 'table' && r.kind !== 'columns' && r.kind !== 'filter') continue;
    const d = after.authorize({ principal, action: 'SELECT', resource: { level: 'table', catalog: r.catalog, database: r.database, table: r.table }, now });
    for (const name of d.deniedBy) stillDeniedBy.add(name);
  }
  for (const e of after.effectivePermissions(principal, now)) {
    if (e.level !== 'table' || !grants.some((g) => coversTable(g, e.resource))) continue;
    const [catalog, database, table] = e.resource.split('.') as [string, string, string];
    const d = after.authorize({ principal, action: 'SELECT', resource: { level: 'table', catalog, database, table }, now });
    for (const name of d.deniedBy) stillDeniedBy.add(name);
  }
  return { principal, addsNothing: entries.length === 0, entries, stillDeniedBy: [...stillDeniedBy].sort() };
}

function coversTable(g: Grant, table: string): boolean {
  const r = g.resource;
  switch (r.kind) {
    case 'catalog':
      return table.startsWith(`${r.catalog}.`);
    case 'database':
      return table.startsWith(`${r.catalog}.${r.database}.`);
    case 'table':
    case 'columns':
    case 'filter':
      return table === `${r.catalog}.${r.database}.${r.table}`;
    case 'tag':
      return table.startsWith(`${r.catalog}.`);
    default: {
      const never: never = r;
      return never;
    }
  }
}

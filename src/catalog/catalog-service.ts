/**
 * Catalog changes: catalogs, databases, and tables registered from the lake
 * or a PostgreSQL schema. Dropping a container refuses while policy still
 * points into it, unless the caller asks to cascade, which removes the
 * dependent tags, filters and grants in the same transaction.
 */
import { changeKey, entityKey, type Change } from '../policy/changes.js';
import type { Catalog, Column, Database, PolicyWorld, Table, TableSource, TagAssignment } from '../policy/model.js';
import { findTable } from '../policy/model.js';
import { StewardError, notFound } from '../errors.js';
import { diffColumns, type ColumnDiff } from './refresh.js';

// Re-exported: callers that look tables up by path import it from the catalog.
export { findTable };

export interface TablePath {
  readonly catalog: string;
  readonly database: string;
  readonly table: string;
}

export function requireTable(world: PolicyWorld, p: TablePath): Table {
  const t = findTable(world, p);
  if (t === undefined) throw notFound('table', `${p.catalog}.${p.database}.${p.table}`);
  return t;
}

/** Puts for a catalog and database that do not exist yet, so registering a table can create its parents. */
export function ensureParents(world: PolicyWorld, catalog: string, database: string): Change[] {
  const out: Change[] = [];
  if (!world.catalogs.some((c) => c.name === catalog)) out.push({ op: 'put', kind: 'catalog', entity: { name: catalog } });
  if (!world.databases.some((d) => d.catalog === catalog && d.name === database)) {
    out.push({ op: 'put', kind: 'database', entity: { catalog, name: database } });
  }
  return out;
}

export function createCatalog(world: PolicyWorld, c: Catalog): Change[] {
  if (world.catalogs.some((x) => x.name === c.name)) throw new StewardError('STEWARD_E_ALREADY_EXISTS', `catalog \`${c.name}\` already exists`);
  return [{ op: 'put', kind: 'catalog', entity: c }];
}

export function createDatabase(world: PolicyWorld, d: Database): Change[] {
  if (!world.catalogs.some((x) => x.name === d.catalog)) throw notFound('catalog', d.catalog);
  if (world.databases.some((x) => x.catalog === d.catalog && x.name === d.name)) {
    throw new StewardError('STEWARD_E_ALREADY_EXISTS', `database \`${d.catalog}.${d.name}\` already exists`);
  }
  return [{ op: 'put', kind: 'database', entity: d }];
}

/** Puts for tables (and their missing parents). Refuses to overwrite an existing table unless `replace`. */
export function putTables(world: PolicyWorld, tables: readonly Table[], replace: boolean): Change[] {
  const parents = new Map<string, Change>();
  const puts: Change[] = [];
  for (const t of tables) {
    if (findTable(world, { catalog: t.catalog, database: t.database, table: t.name }) !== undefined && !replace) {
      throw new StewardError('STEWARD_E_ALREADY_EXISTS', `table \`${t.catalog}.${t.database}.${t.name}\` already exists; refresh it instead`);
    }
    for (const c of ensureParents(world, t.catalog, t.database)) parents.set(changeKey(c) + c.kind, c);
    puts.push({ op: 'put', kind: 'table', entity: t });
  }
  return [...parents.values(), ...puts];
}

export function makeTable(p: TablePath, columns: readonly Column[], source: TableSource): Table {
  return { catalog: p.catalog, database: p.database, name: p.table, columns, source };
}

export interface RefreshOutcome {
  readonly changes: Change[];
  readonly diff: ColumnDiff;
}

/**
 * New columns for an existing table. Tag assignments on removed columns go
 * with them; grants and filters naming removed columns make the change fail
 * validation, which names them, so nobody loses access silently.
 */
export function refreshTable(world: PolicyWorld, table: Table, columns: readonly Column[]): RefreshOutcome {
  const diff = diffColumns([...table.columns], [...columns]);
  if (diff.added.length === 0 && diff.removed.length === 0 && diff.retyped.length === 0) return { changes: [], diff };
  const removed = new Set(diff.removed.map((c) => c.name));
  const dropTags = world.tagAssignments.filter(
    (a) =>
      a.resource.level === 'column' &&
      a.resource.catalog === table.catalog &&
      a.resource.database === table.database &&
      a.resource.table === table.name &&
      removed.has(a.resource.column),
  );
  return {
    diff,
    changes: [...dropTags.map(deleteTag), { op: 'put', kind: 'table', entity: { ...table, columns } }],
  };
}

const deleteTag = (a: TagAssignment): Change => ({ op: 'delete', kind: 'tagAssignment', key: entityKey('tagAssignment', a) });

/** What still points into a catalog, database or table. */
export function dependentsOf(world: PolicyWorld, scope: { catalog: string; database?: string; table?: string }): Change[] {
  const inScope = (c: string, d?: string, t?: string): boolean =>
    c === scope.catalog && (scope.database === undefined || d === scope.database) && (scope.table === undefined || t === scope.table);
  const out: Change[] = [];
  for (const a of world.tagAssignments) {
    const r = a.resource;
    if (inScope(r.catalog, r.database, r.level === 'database' ? undefined : r.table) && (scope.table === undefined || r.level !== 'database')) {
      out.push(deleteTag(a));
    }
  }
  for (const f of world.filters) if (inScope(f.catalog, f.database, f.table)) out.push({ op: 'delete', kind: 'filter', key: entityKey('filter', f) });
  for (const g of world.grants) {
    const r = g.resource;
    const hit =
      r.kind === 'catalog' || r.kind === 'tag'
        ? scope.database === undefined && r.catalog === scope.catalog
        : r.kind === 'database'
          ? scope.table === undefined && inScope(r.catalog, r.database)
          : inScope(r.catalog, r.database, r.table);
    if (hit) out.push({ op: 'delete', kind: 'grant', key: g.id });
  }
  return out;
}

export function dropResource(
  world: PolicyWorld,
  scope: { catalog: string; database?: string; table?: string },
  cascade: boolean,
): Change[] {
  const name = [scope.catalog, scope.database, scope.table].filter((x) => x !== undefined).join('.');
  const exists =
    scope.table !== undefined
      ? findTable(world, { catalog: scope.catalog, database: scope.database ?? '', table: scope.table }) !== undefined
      : scope.database !== undefined
        ? world.databases.some((d) => d.catalog === scope.catalog && d.name === scope.database)
        : world.catalogs.some((c) => c.name === scope.catalog);
  if (!exists) throw notFound(scope.table !== undefined ? 'table' : scope.database !== undefined ? 'database' : 'catalog', name);
  const dependents = dependentsOf(world, scope);
  if (dependents.length > 0 && !cascade) {
    throw new StewardError('STEWARD_E_IN_USE', `\`${name}\` is still used by ${dependents.length} tag(s), filter(s) or grant(s); drop them first or cascade`, {
      details: dependents.map((d) => ({ path: `${d.kind}`, message: d.op === 'delete' ? d.key : '' })),
    });
  }
  const contained: Change[] = [];
  for (const t of world.tables) {
    if (t.catalog === scope.catalog && (scope.database === undefined || t.database === scope.database) && (scope.table === undefined || t.name === scope.table)) {
      contained.push({ op: 'delete', kind: 'table', key: entityKey('table', t) });
    }
  }
  if (scope.table === undefined) {
    for (const d of world.databases) {
      if (d.catalog === scope.catalog && (scope.database === undefined || d.name === scope.database)) {
        contained.push({ op: 'delete', kind: 'database', key: entityKey('database', d) });
      }
    }
    if (scope.database === undefined) contained.push({ op: 'delete', kind: 'catalog', key: scope.catalog });
  }
  return [...dependents, ...contained];
}

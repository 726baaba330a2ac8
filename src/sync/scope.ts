/**
 * Which warehouse objects a policy change can affect. Pure: two worlds in, the
 * catalog tables (`database.table`) whose decisions may differ out — or `full`
 * when the change reaches roles and memberships (principals, guardrails),
 * where a table-by-table answer would not be cheaper than a full sync.
 */
import { diffWorlds, entityKey, ENTITY_KINDS, WORLD_FIELD, type Change } from '../policy/changes.js';
import type { Grant, PolicyWorld, TagExpression } from '../policy/model.js';
import { matchesTagExpression } from '../policy/tag-expression.js';
import { effectiveTags, tagValues } from '../policy/tags.js';

export type Scope = { readonly kind: 'full'; readonly reason: string } | { readonly kind: 'tables'; readonly tables: ReadonlySet<string> };

function tablesMatching(world: PolicyWorld, catalog: string, expr: TagExpression): string[] {
  const out: string[] = [];
  for (const t of world.tables) {
    if (t.catalog !== catalog) continue;
    const ref = { level: 'table', catalog, database: t.database, table: t.name } as const;
    const hit =
      matchesTagExpression(expr, tagValues(effectiveTags(world, ref))) ||
      t.columns.some((c) => matchesTagExpression(expr, tagValues(effectiveTags(world, { ...ref, level: 'column', column: c.name }))));
    if (hit) out.push(`${t.database}.${t.name}`);
  }
  return out;
}

function grantTables(world: PolicyWorld, catalog: string, g: Grant): string[] | 'all' {
  const r = g.resource;
  if (r.catalog !== catalog) return [];
  switch (r.kind) {
    case 'catalog':
      return 'all';
    case 'database':
      return world.tables.filter((t) => t.catalog === catalog && t.database === r.database).map((t) => `${t.database}.${t.name}`);
    case 'table':
    case 'columns':
    case 'filter':
      return [`${r.database}.${r.table}`];
    case 'tag':
      return tablesMatching(world, catalog, r.expression);
    default: {
      const never: never = r;
      return never;
    }
  }
}

/** The scope of the change from `before` to `after` for a target mirroring `catalog`. */
export function affectedScope(before: PolicyWorld, after: PolicyWorld, catalog: string): Scope {
  // Worlds built by applyChanges share the arrays of kinds a change did not touch: skip those.
  const kinds = ENTITY_KINDS.filter((k) => before[WORLD_FIELD[k]] !== after[WORLD_FIELD[k]]);
  const changes: Change[] = diffWorlds(before, after, kinds);
  const tables = new Set<string>();
  const allOf = (w: PolicyWorld, database?: string): void => {
    for (const t of w.tables) if (t.catalog === catalog && (database === undefined || t.database === database)) tables.add(`${t.database}.${t.name}`);
  };
  const grantsByKey = (w: PolicyWorld): Map<string, Grant> => new Map(w.grants.map((g) => [g.id, g]));
  const oldGrants = grantsByKey(before);
  for (const c of changes) {
    switch (c.kind) {
      case 'user':
      case 'group':
      case 'membership':
        return { kind: 'full', reason: 'principals changed' };
      case 'guardrail':
        return { kind: 'full', reason: 'guardrails changed' };
      case 'idpMapping':
      case 'tagKey':
        break;
      case 'catalog':
        return { kind: 'full', reason: 'catalogs changed' };
      case 'database': {
        const name = c.op === 'put' ? c.entity.name : c.key.split('.').slice(1).join('.');
        if (c.op === 'put' ? c.entity.catalog === catalog : c.key.startsWith(`${catalog}.`)) {
          allOf(before, name);
          allOf(after, name);
        }
        break;
      }
      case 'table': {
        if (c.op === 'put') {
          if (c.entity.catalog === catalog) tables.add(`${c.entity.database}.${c.entity.name}`);
        } else if (c.key.startsWith(`${catalog}.`)) tables.add(c.key.slice(catalog.length + 1));
        break;
      }
      case 'tagAssignment': {
        const a = c.op === 'put' ? c.entity : (before.tagAssignments.find((x) => entityKey('tagAssignment', x) === c.key) ?? null);
        if (a === null) return { kind: 'full', reason: 'a tag assignment changed' };
        const r = a.resource;
        if (r.catalog !== catalog) break;
        if (r.level === 'database') {
          allOf(before, r.database);
          allOf(after, r.database);
        } else tables.add(`${r.database}.${r.table}`);
        break;
      }
      case 'filter': {
        const f = c.op === 'put' ? c.entity : before.filters.find((x) => entityKey('filter', x) === c.key);
        if (f === undefined) return { kind: 'full', reason: 'a data filter changed' };
        if (f.catalog === catalog) tables.add(`${f.database}.${f.table}`);
        break;
      }
      case 'grant': {
        const list = [c.op === 'put' ? c.entity : undefined, oldGrants.get(c.op === 'put' ? c.entity.id : c.key)];
        for (const g of list) {
          if (g === undefined) continue;
          for (const w of [before, after]) {
            const ts = grantTables(w, catalog, g);
            if (ts === 'all') allOf(w);
            else for (const t of ts) tables.add(t);
          }
        }
        break;
      }
      default: {
        const never: never = c;
        return never;
      }
    }
  }
  return { kind: 'tables', tables };
}

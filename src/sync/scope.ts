/**
 * Which warehouse objects a policy change can affect. Pure: two worlds in, the
 * catalog tables (`database.table`) whose decisions may differ out — or `full`
 * when the change reaches roles and memberships (principals, guardrails),
 * where a table-by-table answer would not be cheaper than a full sync.
 */
import { diffWorlds, entityKey, ENTITY_KINDS, WORLD_FIELD, type Change, type EntityKind } from '../policy/changes.js';
import { EMPTY_WORLD, type Grant, type PolicyWorld } from '../policy/model.js';
import { tablesMatchingTags } from './desired-state.js';

export type Scope = { readonly kind: 'full'; readonly reason: string } | { readonly kind: 'tables'; readonly tables: ReadonlySet<string> };

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
      return tablesMatchingTags(world, catalog, r.expression);
    default: {
      const never: never = r;
      return never;
    }
  }
}

/**
 * The same changes as `diffWorlds(before, after, kinds)`, compared only where the entity objects
 * differ. Worlds built by applyChanges share every entity a change did not touch, so one tag change
 * in 100k compares one entity, not 100k (a world loaded afresh falls back to comparing everything).
 * Sound because keys are unique within a kind: an entity present in both worlds by identity is
 * unchanged, and any entity it could be confused with would share its key.
 */
function changedEntities(before: PolicyWorld, after: PolicyWorld, kinds: readonly EntityKind[]): Change[] {
  const puts: Change[] = [];
  const deletes: Change[] = [];
  for (const kind of kinds) {
    const field = WORLD_FIELD[kind];
    const was = before[field] as readonly object[];
    const now = after[field] as readonly object[];
    const inAfter = new Set<object>(now);
    const inBefore = new Set<object>(was);
    const mini = (list: readonly object[]): PolicyWorld => ({ ...EMPTY_WORLD, [field]: list }) as PolicyWorld;
    const changes = diffWorlds(mini(was.filter((e) => !inAfter.has(e))), mini(now.filter((e) => !inBefore.has(e))), [kind]);
    for (const c of changes) (c.op === 'put' ? puts : deletes).push(c);
  }
  return [...puts, ...deletes];
}

/** The scope of the change from `before` to `after` for a target mirroring `catalog`. */
export function affectedScope(before: PolicyWorld, after: PolicyWorld, catalog: string): Scope {
  // Worlds built by applyChanges share the arrays of kinds a change did not touch: skip those.
  const kinds = ENTITY_KINDS.filter((k) => before[WORLD_FIELD[k]] !== after[WORLD_FIELD[k]]);
  const changes: Change[] = changedEntities(before, after, kinds);
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

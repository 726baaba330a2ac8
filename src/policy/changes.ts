/**
 * Every mutation of the policy world is a list of changes to entities with a
 * natural key. The API, the CLI and `steward apply` all build such a list, the
 * core validates the world it would produce, and the store persists the list
 * in one transaction. One path for every writer keeps "nothing half-written"
 * true by construction.
 */
import type {
  Catalog,
  Database,
  DataFilter,
  Grant,
  Group,
  Guardrail,
  IdpGroupMapping,
  Membership,
  PolicyWorld,
  Table,
  TagAssignment,
  TagKey,
  User,
} from './model.js';
import { resourceToString } from './model.js';

export interface EntityTypes {
  catalog: Catalog;
  database: Database;
  table: Table;
  user: User;
  group: Group;
  membership: Membership;
  idpMapping: IdpGroupMapping;
  tagKey: TagKey;
  tagAssignment: TagAssignment;
  filter: DataFilter;
  grant: Grant;
  guardrail: Guardrail;
}

export type EntityKind = keyof EntityTypes;

/** Where each kind lives in the world. */
export const WORLD_FIELD: Readonly<Record<EntityKind, keyof PolicyWorld>> = {
  catalog: 'catalogs',
  database: 'databases',
  table: 'tables',
  user: 'users',
  group: 'groups',
  membership: 'memberships',
  idpMapping: 'idpMappings',
  tagKey: 'tagKeys',
  tagAssignment: 'tagAssignments',
  filter: 'filters',
  grant: 'grants',
  guardrail: 'guardrails',
};

// INVARIANT: kinds are listed parents first, so applying puts in this order and deletes in reverse never orphans a row
export const ENTITY_KINDS: readonly EntityKind[] = [
  'catalog',
  'database',
  'table',
  'user',
  'group',
  'membership',
  'idpMapping',
  'tagKey',
  'tagAssignment',
  'filter',
  'grant',
  'guardrail',
];

export type Change = {
  [K in EntityKind]:
    | { readonly op: 'put'; readonly kind: K; readonly entity: EntityTypes[K] }
    | { readonly op: 'delete'; readonly kind: K; readonly key: string };
}[EntityKind];

/** The natural key of an entity: unique within its kind, stable across renames of nothing. */
export function entityKey<K extends EntityKind>(kind: K, e: EntityTypes[K]): string {
  switch (kind) {
    case 'catalog':
    case 'user':
    case 'group':
    case 'guardrail':
      return (e as Catalog | User | Group | Guardrail).name;
    case 'database': {
      const d = e as Database;
      return `${d.catalog}.${d.name}`;
    }
    case 'table': {
      const t = e as Table;
      return `${t.catalog}.${t.database}.${t.name}`;
    }
    case 'membership': {
      const m = e as Membership;
      return `${m.group}<${m.member}`;
    }
    case 'idpMapping': {
      const m = e as IdpGroupMapping;
      return `${m.provider}/${m.externalGroup}`;
    }
    case 'tagKey':
      return (e as TagKey).key;
    case 'tagAssignment': {
      const a = e as TagAssignment;
      return `${resourceToString(a.resource)}#${a.key}`;
    }
    case 'filter': {
      const f = e as DataFilter;
      return `${f.catalog}.${f.database}.${f.table}/${f.name}`;
    }
    case 'grant':
      return (e as Grant).id;
    default: {
      const never: never = kind;
      return never;
    }
  }
}

export function changeKey(c: Change): string {
  return c.op === 'put' ? entityKey(c.kind, c.entity) : c.key;
}

/**
 * The world after the changes. Pure; the input is not modified. A put replaces
 * the entity with the same key or adds it; a delete of a missing key is a no-op
 * here (callers that care check existence first).
 */
export function applyChanges(world: PolicyWorld, changes: readonly Change[]): PolicyWorld {
  if (changes.length === 0) return world;
  const next: Record<string, unknown[]> = {};
  for (const kind of ENTITY_KINDS) {
    const relevant = changes.filter((c) => c.kind === kind);
    const field = WORLD_FIELD[kind];
    if (relevant.length === 0) {
      next[field] = world[field] as unknown[];
      continue;
    }
    const byKey = new Map<string, unknown>();
    for (const e of world[field] as readonly EntityTypes[typeof kind][]) byKey.set(entityKey(kind, e), e);
    for (const c of relevant) {
      if (c.op === 'put') byKey.set(entityKey(kind, c.entity as EntityTypes[typeof kind]), c.entity);
      else byKey.delete(c.key);
    }
    next[field] = [...byKey.values()];
  }
  return next as unknown as PolicyWorld;
}

/**
 * Changes that turn `from` into `to`: every put first (parents before
 * children), then every delete (children before parents). Puts go first
 * because an update may move a reference away from an entity that is being
 * deleted (an IdP mapping re-pointed from group `a` to `sales` while `a` goes):
 * deleting first would trip the store's foreign keys. All unique constraints
 * are entity keys, so a put never collides with a row that is about to go.
 */
export function diffWorlds(from: PolicyWorld, to: PolicyWorld, kinds: readonly EntityKind[] = ENTITY_KINDS): Change[] {
  const puts: Change[] = [];
  const deletes: Change[] = [];
  for (const kind of kinds) {
    const field = WORLD_FIELD[kind];
    const before = new Map<string, string>();
    for (const e of from[field] as readonly EntityTypes[typeof kind][]) before.set(entityKey(kind, e), stableJson(e));
    const seen = new Set<string>();
    for (const e of to[field] as readonly EntityTypes[typeof kind][]) {
      const key = entityKey(kind, e);
      seen.add(key);
      if (before.get(key) !== stableJson(e)) puts.push({ op: 'put', kind, entity: e } as Change);
    }
    for (const key of before.keys()) if (!seen.has(key)) deletes.unshift({ op: 'delete', kind, key } as Change);
  }
  return [...puts, ...deletes];
}

/** JSON with sorted object keys and undefined fields dropped, for comparing entities. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v as Record<string, unknown>).sort()) {
      const field = (v as Record<string, unknown>)[k];
      if (field !== undefined) sorted[k] = field;
    }
    return sorted;
  });
}

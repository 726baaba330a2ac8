/**
 * Effective tags: a database's own tags, inherited by its tables and then by
 * their columns, each level overriding its parent key by key. Every effective
 * value remembers the resource it came from, so an explanation can say "pii=true
 * (from lake.claims.members)".
 *
 * This is the straightforward version the reference evaluator uses and the API
 * shows to people; the indexed engine interns the same result.
 */
import type { PolicyWorld, ResourceRef, TagAssignment, TaggableRef } from './model.js';
import { resourceToString } from './model.js';

export interface EffectiveTag {
  readonly key: string;
  readonly value: string;
  /** The resource whose own assignment supplied the value. */
  readonly source: TaggableRef;
}

/** Effective tags by key. */
export type EffectiveTags = ReadonlyMap<string, EffectiveTag>;

/**
 * A resource's own assignments by key. When an (invalid) world assigns a key
 * twice to one resource, the first assignment wins, so every evaluator reads
 * the same value; `validateWorld` refuses such worlds.
 */
export function ownTags(world: Pick<PolicyWorld, 'tagAssignments'>, ref: TaggableRef): Map<string, TagAssignment> {
  const target = resourceToString(ref);
  const out = new Map<string, TagAssignment>();
  for (const a of world.tagAssignments) {
    if (a.resource.level !== ref.level || resourceToString(a.resource) !== target) continue;
    if (!out.has(a.key)) out.set(a.key, a);
  }
  return out;
}

/**
 * The chain of taggable resources from the database down to `ref` (inclusive).
 * A catalog carries no tags, so its chain is empty.
 */
export function taggableChain(ref: ResourceRef): TaggableRef[] {
  switch (ref.level) {
    case 'catalog':
      return [];
    case 'database':
      return [{ level: 'database', catalog: ref.catalog, database: ref.database }];
    case 'table':
      return [...taggableChain({ level: 'database', catalog: ref.catalog, database: ref.database }), ref];
    case 'column':
      return [...taggableChain({ level: 'table', catalog: ref.catalog, database: ref.database, table: ref.table }), ref];
    default: {
      const never: never = ref;
      return never;
    }
  }
}

/**
 * Effective tags of any resource (a catalog has none). Does not check that the
 * resource exists: tags assigned to it are simply found or not.
 *
 * @example effectiveTags(world, { level: 'column', catalog: 'lake', database: 'claims', table: 't', column: 'ssn' }).get('pii')?.value
 */
export function effectiveTags(world: Pick<PolicyWorld, 'tagAssignments'>, ref: ResourceRef): EffectiveTags {
  const out = new Map<string, EffectiveTag>();
  for (const level of taggableChain(ref)) {
    for (const [key, a] of ownTags(world, level)) out.set(key, { key, value: a.value, source: level });
  }
  return out;
}

/** Just the values, for matching a tag expression. */
export function tagValues(tags: EffectiveTags): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, t] of tags) out.set(key, t.value);
  return out;
}

/**
 * Resources strictly above `ref`, nearest first (a column's table, database and
 * catalog). Guardrails match a resource when they match it or any of these.
 */
export function ancestorsOf(ref: ResourceRef): ResourceRef[] {
  switch (ref.level) {
    case 'catalog':
      return [];
    case 'database':
      return [{ level: 'catalog', catalog: ref.catalog }];
    case 'table': {
      const db: ResourceRef = { level: 'database', catalog: ref.catalog, database: ref.database };
      return [db, ...ancestorsOf(db)];
    }
    case 'column': {
      const t: ResourceRef = { level: 'table', catalog: ref.catalog, database: ref.database, table: ref.table };
      return [t, ...ancestorsOf(t)];
    }
    default: {
      const never: never = ref;
      return never;
    }
  }
}

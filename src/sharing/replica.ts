/**
 * The consumer's half of replication, pure: the changes that bring the local
 * catalog of one subscription in line with a verified feed. Shared tables are
 * `virtual` tables of the subscription's own catalog, their tags the
 * producer's; a table the producer drops goes with every tag, filter and
 * grant that pointed at it here, and a column it drops takes the column
 * grants and filters that named it (access only ever narrows). What cannot be
 * applied (a tag value the local tag key cannot take) is reported as a
 * conflict for that entry and blocks nothing else.
 */
import { entityKey, stableJson, type Change } from '../policy/changes.js';
import { MAX_TAG_VALUES, type PolicyWorld, type Table, type TagAssignment, type TaggableRef } from '../policy/model.js';
import { resourceToString } from '../policy/model.js';
import { dependentsOf } from '../catalog/catalog-service.js';
import { tableKey, type FeedEntry, type SharedEntity } from './projection.js';

export interface Conflict {
  readonly key: string;
  readonly message: string;
}

export interface ReplicaPlan {
  readonly changes: Change[];
  readonly conflicts: Conflict[];
}

type SharedTable = Extract<SharedEntity, { kind: 'table' }>;

/**
 * Changes for `entries` (in feed order) into `catalog`. With `full`, the
 * entries are the producer's whole state and local tables they do not name
 * are removed.
 */
export function replicaChanges(world: PolicyWorld, target: { readonly catalog: string; readonly description: string }, entries: readonly FeedEntry[], full: boolean): ReplicaPlan {
  const out = new ChangeList();
  const conflicts: Conflict[] = [];
  const catalog = target.catalog;
  if (!world.catalogs.some((c) => c.name === catalog)) out.put({ op: 'put', kind: 'catalog', entity: { name: catalog, description: target.description } });
  const tagKeys = new Map(world.tagKeys.map((k) => [k.key, new Set(k.values)]));
  const databases = new Set(world.databases.filter((d) => d.catalog === catalog).map((d) => d.name));
  const seen = new Set<string>();
  const local = indexCatalog(world, catalog);

  for (const e of entries) {
    if (e.entity?.kind !== 'tagKey' || e.op !== 'put') continue;
    const { key, values } = e.entity;
    const local = tagKeys.get(key) ?? new Set<string>();
    const merged = new Set([...local, ...values]);
    if (merged.size > MAX_TAG_VALUES) {
      conflicts.push({ key: e.key, message: `tag key \`${key}\` would hold more than ${MAX_TAG_VALUES} values here` });
      continue;
    }
    if (merged.size !== local.size || !tagKeys.has(key)) {
      const existing = world.tagKeys.find((k) => k.key === key);
      out.put({ op: 'put', kind: 'tagKey', entity: { ...existing, key, values: [...merged].sort() } });
    }
    tagKeys.set(key, merged);
  }

  for (const e of entries) {
    if (e.op === 'put' && e.entity?.kind === 'table') {
      seen.add(e.key);
      if (!databases.has(e.entity.database)) {
        out.put({ op: 'put', kind: 'database', entity: { catalog, name: e.entity.database } });
        databases.add(e.entity.database);
      }
      putTable(world, local, catalog, e.entity, tagKeys, out, (message) => conflicts.push({ key: e.key, message }));
    } else if (e.op === 'delete' && e.key.startsWith('table:')) {
      const [database = '', table = ''] = e.key.slice('table:'.length).split('.');
      dropTable(world, catalog, database, table, out);
    }
  }
  if (full) {
    for (const t of world.tables) if (t.catalog === catalog && !seen.has(tableKey(t.database, t.name))) dropTable(world, catalog, t.database, t.name, out);
  }
  return { changes: out.list(), conflicts };
}

/** Removes everything replicated into `catalog`, with what points into it here (a revoked share). */
export function dropReplica(world: PolicyWorld, catalog: string): Change[] {
  if (!world.catalogs.some((c) => c.name === catalog)) return [];
  const out = new ChangeList();
  for (const c of dependentsOf(world, { catalog })) out.put(c);
  for (const t of world.tables) if (t.catalog === catalog) out.put({ op: 'delete', kind: 'table', key: entityKey('table', t) });
  for (const d of world.databases) if (d.catalog === catalog) out.put({ op: 'delete', kind: 'database', key: entityKey('database', d) });
  out.put({ op: 'delete', kind: 'catalog', key: catalog });
  return out.list();
}

/** The replica catalog's tables and tag assignments by `database.table`, built once: per-table scans would be quadratic in a large share. */
interface CatalogIndex {
  readonly tables: ReadonlyMap<string, Table>;
  readonly tags: ReadonlyMap<string, readonly TagAssignment[]>;
}

function indexCatalog(world: PolicyWorld, catalog: string): CatalogIndex {
  const tables = new Map<string, Table>();
  for (const t of world.tables) if (t.catalog === catalog) tables.set(`${t.database}.${t.name}`, t);
  const tags = new Map<string, TagAssignment[]>();
  for (const a of world.tagAssignments) {
    if (a.resource.catalog !== catalog || a.resource.level === 'database') continue;
    const at = `${a.resource.database}.${a.resource.table}`;
    const list = tags.get(at) ?? [];
    list.push(a);
    tags.set(at, list);
  }
  return { tables, tags };
}

function putTable(world: PolicyWorld, local: CatalogIndex, catalog: string, s: SharedTable, tagKeys: ReadonlyMap<string, ReadonlySet<string>>, out: ChangeList, conflict: (message: string) => void): void {
  const table: Table = {
    catalog,
    database: s.database,
    name: s.name,
    columns: s.columns.map((c, ordinal) => ({ name: c.name, type: c.type, ordinal })),
    // A direct-files table is a lake table here: the consumer's own lake roots and residency rules admit its location
    // (the state service refuses it otherwise, and the entry is reported); every other shared table reads through the producer.
    source: directFiles(s.files),
  };
  const before = local.tables.get(`${s.database}.${s.name}`);
  // Unchanged tables write nothing: a full reconciliation re-sends every table.
  if (before === undefined || stableJson(before) !== stableJson(table)) out.put({ op: 'put', kind: 'table', entity: table });
  const kept = new Set(table.columns.map((c) => c.name));
  if (before !== undefined && before.columns.some((c) => !kept.has(c.name))) for (const c of dependentsOfColumns(world, before, kept)) out.put(c);

  const ref = { level: 'table', catalog, database: s.database, table: s.name } as const;
  const wanted = new Map<string, TagAssignment>();
  const want = (resource: TaggableRef, tags: Readonly<Record<string, string>>): void => {
    for (const [key, value] of Object.entries(tags)) {
      if (!tagKeys.get(key)?.has(value)) {
        conflict(`tag \`${key}=${value}\` on \`${resourceToString(resource)}\` is not a value of the local tag key`);
        continue;
      }
      const a: TagAssignment = { resource, key, value };
      wanted.set(entityKey('tagAssignment', a), a);
    }
  };
  want(ref, s.tags);
  for (const [column, tags] of Object.entries(s.columnTags)) if (kept.has(column)) want({ ...ref, level: 'column', column }, tags);
  for (const a of local.tags.get(`${s.database}.${s.name}`) ?? []) {
    const key = entityKey('tagAssignment', a);
    const w = wanted.get(key);
    if (w === undefined) out.put({ op: 'delete', kind: 'tagAssignment', key });
    else if (w.value === a.value) wanted.delete(key);
  }
  for (const a of wanted.values()) out.put({ op: 'put', kind: 'tagAssignment', entity: a });
}

/** The lake source of a direct-files entry, in shape; anything else (or nothing) reads through the producer. */
function directFiles(f: SharedTable['files']): Table['source'] {
  const formats: readonly unknown[] = ['parquet', 'csv', 'json'];
  if (f === undefined || typeof f.location !== 'string' || !formats.includes(f.format) || typeof f.hivePartitioning !== 'boolean') return { kind: 'virtual' };
  return { kind: 'lake', format: f.format, location: f.location, hivePartitioning: f.hivePartitioning };
}

function dropTable(world: PolicyWorld, catalog: string, database: string, table: string, out: ChangeList): void {
  if (!world.tables.some((t) => t.catalog === catalog && t.database === database && t.name === table)) return;
  for (const c of dependentsOf(world, { catalog, database, table })) out.put(c);
  out.put({ op: 'delete', kind: 'table', key: `${catalog}.${database}.${table}` });
}

/** Column grants, filters and column tags that name a column the producer no longer shares. */
function dependentsOfColumns(world: PolicyWorld, t: Table, kept: ReadonlySet<string>): Change[] {
  const gone = (cols: readonly string[] | undefined): boolean => (cols ?? []).some((c) => !kept.has(c));
  const same = (x: { catalog: string; database: string; table: string }): boolean => x.catalog === t.catalog && x.database === t.database && x.table === t.name;
  const out: Change[] = [];
  for (const g of world.grants) {
    const r = g.resource;
    if (r.kind === 'columns' && same(r) && (gone(r.columns) || gone(r.excludedColumns))) out.push({ op: 'delete', kind: 'grant', key: g.id });
  }
  for (const f of world.filters) {
    if (!same(f) || !(gone(f.columns) || gone(f.excludedColumns))) continue;
    out.push({ op: 'delete', kind: 'filter', key: entityKey('filter', f) });
    for (const g of world.grants) if (g.resource.kind === 'filter' && same(g.resource) && g.resource.filter === f.name) out.push({ op: 'delete', kind: 'grant', key: g.id });
  }
  for (const a of world.tagAssignments) {
    if (a.resource.level === 'column' && same(a.resource) && !kept.has(a.resource.column)) out.push({ op: 'delete', kind: 'tagAssignment', key: entityKey('tagAssignment', a) });
  }
  return out;
}

/** Changes by kind and key, last one wins (as the store collapses them), so overlapping removals are written once. */
class ChangeList {
  private readonly byKey = new Map<string, Change>();
  put(c: Change): void {
    const key = `${c.kind}/${c.op === 'put' ? entityKey(c.kind, c.entity) : c.key}`;
    this.byKey.delete(key);
    this.byKey.set(key, c);
  }
  list(): Change[] {
    return [...this.byKey.values()];
  }
}

/**
 * What a share publishes, as a pure function of the producer's world: one
 * entry per shared table (its visible columns, its effective tags, its
 * columns' own tags) and one per tag key those tags use. "Visible" is what
 * the share's principal may SELECT, decided by the engine, so the share's
 * column limits, the producer's guardrails and everything else in its policy
 * bound what leaves: a column the share hides is never even named.
 */
import type { Evaluator } from '../policy/decision.js';
import type { Decision } from '../policy/decision.js';
import type { PolicyWorld, PrincipalRef, Table, TagAssignment } from '../policy/model.js';
import { resourceToString } from '../policy/model.js';

export interface SharedColumn {
  readonly name: string;
  readonly type: string;
}

export type SharedEntity =
  | {
      readonly kind: 'table';
      readonly database: string;
      readonly name: string;
      readonly columns: readonly SharedColumn[];
      /** The table's effective tags at the producer (its database's and its own). */
      readonly tags: Readonly<Record<string, string>>;
      /** Each visible column's own tags. */
      readonly columnTags: Readonly<Record<string, Readonly<Record<string, string>>>>;
      /** Set only for a direct-files share, and only when the share's principal sees every column and row: where the files are. */
      readonly files?: SharedFiles;
    }
  | { readonly kind: 'tagKey'; readonly key: string; readonly values: readonly string[] };

export type SharedFiles = Omit<Extract<Table['source'], { kind: 'lake' }>, 'kind'>;

export interface FeedEntry {
  readonly seq: number;
  readonly key: string;
  readonly op: 'put' | 'delete';
  readonly entity?: SharedEntity;
}

/** What a share names: tables (`database.table`) and whole databases of one catalog. */
export interface ShareScope {
  readonly catalog: string;
  readonly databases: readonly string[];
  readonly tables: readonly string[];
  readonly principal: PrincipalRef;
  /** Publish the files of tables the share's principal reads whole (a direct-files share). */
  readonly directFiles?: boolean;
}

export const tableKey = (database: string, table: string): string => `table:${database}.${table}`;
export const tagKeyKey = (key: string): string => `tagkey:${key}`;

/** Every entry the share publishes now, by key. */
export function projectShare(world: PolicyWorld, engine: Evaluator, scope: ShareScope, now = Date.now()): Map<string, SharedEntity> {
  const own = tagIndex(world.tagAssignments);
  const tablesNamed = new Set(scope.tables);
  const databasesNamed = new Set(scope.databases);
  const out = new Map<string, SharedEntity>();
  const usedValues = new Map<string, Set<string>>();
  const use = (tags: Readonly<Record<string, string>>): void => {
    for (const [k, v] of Object.entries(tags)) {
      const set = usedValues.get(k) ?? new Set<string>();
      set.add(v);
      usedValues.set(k, set);
    }
  };
  for (const t of world.tables) {
    if (t.catalog !== scope.catalog || !(databasesNamed.has(t.database) || tablesNamed.has(`${t.database}.${t.name}`))) continue;
    const ref = { level: 'table', catalog: t.catalog, database: t.database, table: t.name } as const;
    const d = engine.authorize({ principal: scope.principal, action: 'SELECT', resource: ref, now });
    if (d.decision !== 'allow' || d.columns === undefined || d.columns.length === 0) continue;
    const types = new Map(t.columns.map((c) => [c.name, c.type]));
    const columns = d.columns.map((c) => ({ name: c.name, type: types.get(c.name) ?? '' }));
    const tags = { ...(own.get(`${t.catalog}.${t.database}`) ?? {}), ...(own.get(resourceToString(ref)) ?? {}) };
    use(tags);
    const columnTags: Record<string, Record<string, string>> = {};
    for (const c of columns) {
      const ct = own.get(`${resourceToString(ref)}.${c.name}`);
      if (ct === undefined) continue;
      columnTags[c.name] = ct;
      use(ct);
    }
    const files = scope.directFiles === true ? filesOf(t, d) : undefined;
    out.set(tableKey(t.database, t.name), { kind: 'table', database: t.database, name: t.name, columns, tags, columnTags, ...(files === undefined ? {} : { files }) });
  }
  for (const [key, values] of usedValues) out.set(tagKeyKey(key), { kind: 'tagKey', key, values: [...values].sort() });
  return out;
}

/**
 * Where a table's files are, when the share's principal reads it whole: every
 * column, every row, no cell mask. Anything less (a guardrail of this
 * workspace hiding a column, say) keeps the table out of direct reads: its
 * limits hold only through this workspace's gateway.
 */
function filesOf(t: Table, d: Decision): SharedFiles | undefined {
  if (t.source.kind !== 'lake') return undefined;
  const whole = (d.rowFilter ?? null) === null && d.columns?.length === t.columns.length && d.columns.every((c) => c.rowFilter === null);
  if (!whole) return undefined;
  return { format: t.source.format, location: t.source.location, hivePartitioning: t.source.hivePartitioning };
}

/** Own tags by resource text, built once: a per-table scan of every assignment would be quadratic in a large catalog. */
function tagIndex(assignments: readonly TagAssignment[]): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  for (const a of assignments) {
    const at = resourceToString(a.resource);
    const tags = out.get(at) ?? {};
    // First assignment wins, as in policy/tags.ts `ownTags`.
    if (!Object.hasOwn(tags, a.key)) tags[a.key] = a.value;
    out.set(at, tags);
  }
  return out;
}

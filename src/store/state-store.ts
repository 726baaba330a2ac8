/**
 * The policy world in SQL: load it as one snapshot, write a change list as one
 * transaction. The core decides *what* to write (it validates the world the
 * changes would produce); this file only makes the write atomic, ordered and
 * guarded by optimistic concurrency on a single version counter.
 *
 * Each entity kind maps to one table keyed by `entity_key` (the natural key as
 * `entityKey()` prints it). Writes are batched: one statement per kind for the
 * puts and one for the deletes, whatever the number of entities, with the rows
 * passed as a single JSON parameter.
 */
import type { Db } from './db.js';
import { sqlState } from './db.js';
import { insertDecisions } from './decision-log.js';
import { notifyChange } from './change-feed.js';
import type { DecisionLogEntry } from './decision-log.js';
import { ENTITY_KINDS, WORLD_FIELD, entityKey } from '../policy/changes.js';
import type { Change, EntityKind, EntityTypes } from '../policy/changes.js';
import type {
  Column,
  DataFilter,
  Grant,
  GrantResource,
  Guardrail,
  Permission,
  PolicyWorld,
  PrincipalRef,
  ResidencyRule,
  Table,
  TableSource,
  TagExpression,
  TaggableRef,
} from '../policy/model.js';
import type { Predicate } from '../policy/predicate.js';
import { StewardError, invalid } from '../errors.js';

export interface StateStore {
  /** The whole world as one consistent snapshot, each kind sorted by natural key, with the version it was read at. */
  loadWorld(): Promise<{ world: PolicyWorld; version: number }>;
  version(): Promise<number>;
  /**
   * Writes the changes in one transaction and returns the new version.
   * With `expectedVersion`, fails with STEWARD_E_CONFLICT when another writer
   * got there first (read, validate, then write with the version you read).
   * `log` entries are appended in the same transaction, so the audit trail
   * and the change commit or vanish together. An empty change list does not
   * bump the version.
   */
  applyChanges(changes: readonly Change[], opts?: ApplyOptions): Promise<number>;
}

export interface ApplyOptions {
  readonly expectedVersion?: number;
  readonly log?: readonly DecisionLogEntry[];
  /**
   * Writes that belong to the same change but live outside the policy world
   * (a policy apply's dashboards and collaborations): run in the same
   * transaction after the world's rows, so both commit or neither does.
   * Returns decision-log entries for what they wrote.
   */
  readonly also?: (tx: Db) => Promise<readonly DecisionLogEntry[]>;
}

// --------------------------------------------------------------- row mapping

type SqlType = 'text' | 'jsonb' | 'timestamptz' | 'boolean';
type Row = Readonly<Record<string, unknown>>;

interface Mapping<K extends EntityKind> {
  readonly table: string;
  /** Columns besides entity_key, with their types for jsonb_to_recordset. */
  readonly columns: Readonly<Record<string, SqlType>>;
  toRow(e: EntityTypes[K]): Record<string, unknown>;
  fromRow(r: Row): EntityTypes[K];
}

// Row values come from columns whose types the schema fixes, so these
// narrowing helpers only restate what the migration guarantees.
const str = (r: Row, c: string): string => r[c] as string;
const json = <T>(r: Row, c: string): T => r[c] as T;
/** `{ field: value }` when the column is not null, `{}` otherwise: optional fields stay absent. */
function optJson<T, F extends string = string>(field: F, value: unknown): { [P in F]?: T } {
  return (value === null || value === undefined ? {} : { [field]: value }) as { [P in F]?: T };
}
const optText = <F extends string>(field: F, value: unknown): { [P in F]?: string } => optJson<string, F>(field, value);

const MAPPINGS: { readonly [K in EntityKind]: Mapping<K> } = {
  catalog: {
    table: 'steward.catalogs',
    columns: { name: 'text', description: 'text' },
    toRow: (e) => ({ name: e.name, description: e.description }),
    fromRow: (r) => ({ name: str(r, 'name'), ...optText('description', r.description) }),
  },
  database: {
    table: 'steward.databases',
    columns: { catalog: 'text', name: 'text', description: 'text' },
    toRow: (e) => ({ catalog: e.catalog, name: e.name, description: e.description }),
    fromRow: (r) => ({ catalog: str(r, 'catalog'), name: str(r, 'name'), ...optText('description', r.description) }),
  },
  table: {
    table: 'steward.tables',
    columns: { catalog: 'text', database: 'text', name: 'text', columns: 'jsonb', source: 'jsonb' },
    toRow: (e) => ({ catalog: e.catalog, database: e.database, name: e.name, columns: e.columns, source: e.source }),
    fromRow: (r): Table => ({
      catalog: str(r, 'catalog'),
      database: str(r, 'database'),
      name: str(r, 'name'),
      columns: json<Column[]>(r, 'columns'),
      source: json<TableSource>(r, 'source'),
    }),
  },
  user: {
    table: 'steward.users',
    columns: { name: 'text', display_name: 'text' },
    toRow: (e) => ({ name: e.name, display_name: e.displayName }),
    fromRow: (r) => ({ name: str(r, 'name'), ...optText('displayName', r.display_name) }),
  },
  group: {
    table: 'steward.groups',
    columns: { name: 'text', description: 'text' },
    toRow: (e) => ({ name: e.name, description: e.description }),
    fromRow: (r) => ({ name: str(r, 'name'), ...optText('description', r.description) }),
  },
  membership: {
    table: 'steward.memberships',
    columns: { group_name: 'text', member: 'text' },
    toRow: (e) => ({ group_name: e.group, member: e.member }),
    fromRow: (r) => ({ group: str(r, 'group_name'), member: str(r, 'member') as PrincipalRef }),
  },
  idpMapping: {
    table: 'steward.idp_mappings',
    columns: { provider: 'text', external_group: 'text', group_name: 'text' },
    toRow: (e) => ({ provider: e.provider, external_group: e.externalGroup, group_name: e.group }),
    fromRow: (r) => ({ provider: str(r, 'provider'), externalGroup: str(r, 'external_group'), group: str(r, 'group_name') }),
  },
  tagKey: {
    table: 'steward.tag_keys',
    columns: { key: 'text', allowed_values: 'jsonb', description: 'text' },
    toRow: (e) => ({ key: e.key, allowed_values: e.values, description: e.description }),
    fromRow: (r) => ({ key: str(r, 'key'), values: json<string[]>(r, 'allowed_values'), ...optText('description', r.description) }),
  },
  tagAssignment: {
    table: 'steward.tag_assignments',
    columns: { level: 'text', catalog: 'text', database: 'text', table_name: 'text', column_name: 'text', key: 'text', value: 'text' },
    toRow: (e) => ({
      level: e.resource.level,
      catalog: e.resource.catalog,
      database: e.resource.database,
      table_name: e.resource.level === 'database' ? undefined : e.resource.table,
      column_name: e.resource.level === 'column' ? e.resource.column : undefined,
      key: e.key,
      value: e.value,
    }),
    fromRow: (r) => ({ resource: taggableFromRow(r), key: str(r, 'key'), value: str(r, 'value') }),
  },
  filter: {
    table: 'steward.data_filters',
    columns: {
      name: 'text',
      catalog: 'text',
      database: 'text',
      table_name: 'text',
      row_filter: 'text',
      predicate: 'jsonb',
      columns: 'jsonb',
      excluded_columns: 'jsonb',
    },
    toRow: (e) => ({
      name: e.name,
      catalog: e.catalog,
      database: e.database,
      table_name: e.table,
      row_filter: e.rowFilter,
      predicate: e.predicate,
      columns: e.columns,
      excluded_columns: e.excludedColumns,
    }),
    fromRow: (r): DataFilter => ({
      name: str(r, 'name'),
      catalog: str(r, 'catalog'),
      database: str(r, 'database'),
      table: str(r, 'table_name'),
      rowFilter: r.row_filter === null ? null : str(r, 'row_filter'),
      predicate: r.predicate === null ? null : json<Predicate>(r, 'predicate'),
      ...optJson<string[], 'columns'>('columns', r.columns),
      ...optJson<string[], 'excludedColumns'>('excludedColumns', r.excluded_columns),
    }),
  },
  grant: {
    table: 'steward.grants',
    columns: {
      id: 'text',
      principal: 'text',
      resource: 'jsonb',
      permissions: 'jsonb',
      grantable: 'jsonb',
      not_after: 'timestamptz',
      not_after_text: 'text',
      lifts_guardrails: 'jsonb',
      description: 'text',
    },
    toRow: (e) => ({
      id: e.id,
      principal: e.principal,
      resource: e.resource,
      permissions: e.permissions,
      grantable: e.grantable,
      not_after: e.notAfter === undefined ? undefined : instant(e.notAfter, `grants[${e.id}].notAfter`),
      not_after_text: e.notAfter,
      lifts_guardrails: e.liftsGuardrails,
      description: e.description,
    }),
    fromRow: (r): Grant => ({
      id: str(r, 'id'),
      principal: str(r, 'principal') as PrincipalRef,
      resource: json<GrantResource>(r, 'resource'),
      permissions: json<Permission[]>(r, 'permissions'),
      grantable: json<Permission[]>(r, 'grantable'),
      ...optText('notAfter', r.not_after_text),
      ...optJson<string[], 'liftsGuardrails'>('liftsGuardrails', r.lifts_guardrails),
      ...optText('description', r.description),
    }),
  },
  guardrail: {
    table: 'steward.guardrails',
    columns: {
      name: 'text',
      description: 'text',
      principals: 'jsonb',
      except_principals: 'jsonb',
      actions: 'jsonb',
      catalog: 'text',
      resources: 'jsonb',
      liftable: 'boolean',
      residency: 'jsonb',
    },
    toRow: (e) => ({
      name: e.name,
      description: e.description,
      principals: e.principals,
      except_principals: e.except,
      actions: e.actions,
      catalog: e.catalog,
      resources: e.resources,
      liftable: e.liftable === true,
      residency: e.residency,
    }),
    fromRow: (r): Guardrail => ({
      name: str(r, 'name'),
      ...optText('description', r.description),
      ...optJson<PrincipalRef[], 'principals'>('principals', r.principals),
      ...optJson<PrincipalRef[], 'except'>('except', r.except_principals),
      actions: json<Permission[]>(r, 'actions'),
      ...optText('catalog', r.catalog),
      resources: json<TagExpression>(r, 'resources'),
      ...(r.liftable === true ? { liftable: true } : {}),
      ...optJson<ResidencyRule, 'residency'>('residency', r.residency),
    }),
  },
};

function taggableFromRow(r: Row): TaggableRef {
  const catalog = str(r, 'catalog');
  const database = str(r, 'database');
  switch (r.level) {
    case 'database':
      return { level: 'database', catalog, database };
    case 'table':
      return { level: 'table', catalog, database, table: str(r, 'table_name') };
    case 'column':
      return { level: 'column', catalog, database, table: str(r, 'table_name'), column: str(r, 'column_name') };
    default:
      throw new StewardError('STEWARD_E_INTERNAL', `unknown tag assignment level \`${String(r.level)}\` in the store`);
  }
}

/** The instant an ISO-8601 text names, as PostgreSQL should store it; never lets PostgreSQL read `now` or `tomorrow`. */
function instant(text: string, path: string): string {
  const ms = Date.parse(text);
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(ms)) throw invalid(path, `\`${text}\` is not an ISO-8601 instant`);
  return new Date(ms).toISOString();
}

// ------------------------------------------------------------------- sorting

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Sorts every kind of a world by natural key (UTF-16 code-unit order, like `Array.prototype.sort`). */
export function sortWorld(world: PolicyWorld): PolicyWorld {
  const sorted: Record<string, unknown[]> = {};
  for (const kind of ENTITY_KINDS) {
    const field = WORLD_FIELD[kind];
    sorted[field] = (world[field] as readonly EntityTypes[typeof kind][])
      .map((e) => [entityKey(kind, e), e] as const)
      .sort((a, b) => byCodeUnits(a[0], b[0]))
      .map(([, e]) => e);
  }
  return sorted as unknown as PolicyWorld;
}

// --------------------------------------------------------------- statements

function recordsetSpec(m: Mapping<EntityKind>): { names: string; spec: string } {
  const cols = ['entity_key', ...Object.keys(m.columns)];
  const types: Record<string, SqlType> = { entity_key: 'text', ...m.columns };
  return { names: cols.join(', '), spec: cols.map((c) => `${c} ${types[c]}`).join(', ') };
}

async function upsert<K extends EntityKind>(kind: K, entities: readonly EntityTypes[K][], tx: Db): Promise<void> {
  if (entities.length === 0) return;
  const m = MAPPINGS[kind] as Mapping<K>;
  const { names, spec } = recordsetSpec(m as unknown as Mapping<EntityKind>);
  const updates = Object.keys(m.columns)
    .map((c) => `${c} = EXCLUDED.${c}`)
    .join(', ');
  const rows = entities.map((e) => ({ entity_key: entityKey(kind, e), ...m.toRow(e) }));
  await tx.query(
    `INSERT INTO ${m.table} (${names})
     SELECT ${names} FROM jsonb_to_recordset($1::jsonb) AS x(${spec})
     ON CONFLICT (entity_key) DO UPDATE SET ${updates}`,
    [JSON.stringify(rows)],
  );
}

async function remove(kind: EntityKind, keys: readonly string[], tx: Db): Promise<void> {
  if (keys.length === 0) return;
  await tx.query(`DELETE FROM ${MAPPINGS[kind].table} WHERE entity_key IN (SELECT jsonb_array_elements_text($1::jsonb))`, [JSON.stringify(keys)]);
}

/**
 * The final operation per key within each kind, in list order (last wins), the
 * same semantics as the pure `applyChanges` in src/policy/changes.ts.
 */
function collapse(changes: readonly Change[]): Map<EntityKind, Map<string, Change>> {
  const byKind = new Map<EntityKind, Map<string, Change>>();
  for (const c of changes) {
    const key = c.op === 'put' ? entityKey(c.kind, c.entity) : c.key;
    let m = byKind.get(c.kind);
    if (m === undefined) byKind.set(c.kind, (m = new Map()));
    m.delete(key); // re-insert so Map order follows the last operation
    m.set(key, c);
  }
  return byKind;
}

/** Turns a constraint violation into the error a user can act on; anything else stays as it is. */
function storeError(e: unknown): unknown {
  if (e instanceof StewardError) return e;
  const detail = typeof e === 'object' && e !== null && 'detail' in e && typeof e.detail === 'string' ? `: ${e.detail}` : '';
  switch (sqlState(e)) {
    case '23503': // foreign_key_violation
    case '23001': // restrict_violation (PostgreSQL 17, hence PGlite, reports RESTRICT with this one)
      return new StewardError('STEWARD_E_IN_USE', `the change would leave a dangling reference${detail}`, { cause: e });
    case '23505':
      return new StewardError('STEWARD_E_ALREADY_EXISTS', `the change would create a duplicate${detail}`, { cause: e });
    case '23502':
    case '23514':
    case '22P02':
    case '22007':
    case '22008':
      return new StewardError('STEWARD_E_VALIDATION', `the store refused a value${detail}`, { cause: e });
    case '22P05':
    case '22021':
      return new StewardError('STEWARD_E_VALIDATION', 'text contains a character the store cannot hold (NUL or an unpaired surrogate)', { cause: e });
    default:
      return e;
  }
}

// ---------------------------------------------------------------- the store

/** Every kind's rows as a JSON array (`k0`, `k1`, … in ENTITY_KINDS order) and the version, read in one statement. */
const LOAD_WORLD_SQL = `SELECT (SELECT version FROM steward.state_version) AS version, ${ENTITY_KINDS.map(
  (kind, i) => `(SELECT coalesce(json_agg(t), '[]'::json) FROM ${MAPPINGS[kind].table} t) AS k${i}`,
).join(', ')}`;

export function createStateStore(db: Db): StateStore {
  async function readVersion(tx: Db, forUpdate: boolean): Promise<number> {
    const { rows } = await tx.query<{ version: number }>(`SELECT version FROM steward.state_version${forUpdate ? ' FOR UPDATE' : ''}`);
    const row = rows[0];
    if (row === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'the store has no version row; was it migrated?');
    return row.version;
  }

  return {
    version: () => readVersion(db, false),

    loadWorld: async () => {
      // One statement, so one snapshot and one round trip: per-kind SELECTs cost a round trip and a plan each, which on a
      // just-opened embedded store was most of a CLI command's wait. Rows come back as JSON objects with the same keys.
      const { rows } = await db.query<Row>(LOAD_WORLD_SQL);
      const row = rows[0];
      if (row === undefined || typeof row.version !== 'number') throw new StewardError('STEWARD_E_INTERNAL', 'the store has no version row; was it migrated?');
      const world: Record<string, unknown[]> = {};
      for (const [i, kind] of ENTITY_KINDS.entries()) {
        const m = MAPPINGS[kind] as Mapping<EntityKind>;
        world[WORLD_FIELD[kind]] = (row[`k${i}`] as Row[]).map((r) => m.fromRow(r));
      }
      return { world: sortWorld(world as unknown as PolicyWorld), version: row.version };
    },

    applyChanges: (changes, opts = {}) =>
      db
        .transaction(async (tx) => {
          const current = await readVersion(tx, true);
          if (opts.expectedVersion !== undefined && opts.expectedVersion !== current) {
            throw new StewardError('STEWARD_E_CONFLICT', 'the policy changed while this change was prepared; retry', {
              details: [{ message: `expected version ${opts.expectedVersion}, found ${current}` }],
            });
          }
          const byKind = collapse(changes);
          // INVARIANT: ENTITY_KINDS lists parents first, so parents are written before
          // their children and children are deleted before their parents. Writes come
          // before deletes: an update may move a reference off an entity that goes in
          // the same change (see diffWorlds), and entity keys are the only unique
          // constraints, so a write never collides with a row about to be deleted.
          for (const kind of ENTITY_KINDS) {
            const puts = [...(byKind.get(kind)?.values() ?? [])].flatMap((c) => (c.op === 'put' ? [c.entity] : []));
            await upsert(kind, puts as EntityTypes[typeof kind][], tx);
          }
          for (const kind of [...ENTITY_KINDS].reverse()) {
            const keys = [...(byKind.get(kind)?.entries() ?? [])].filter(([, c]) => c.op === 'delete').map(([k]) => k);
            await remove(kind, keys, tx);
          }
          const alongside = opts.also === undefined ? [] : await opts.also(tx);
          const log = [...(opts.log ?? []), ...alongside];
          if (log.length > 0) await insertDecisions(log, tx);
          if (changes.length === 0) return current;
          const { rows } = await tx.query<{ version: number }>('UPDATE steward.state_version SET version = version + 1 RETURNING version');
          // Every writer of the policy (state service, access, experiments) comes through here: each other server hears of it at commit.
          await notifyChange(tx, 'state');
          return rows[0]?.version ?? current + 1;
        })
        .catch((e: unknown) => {
          throw storeError(e);
        }),
  };
}

/**
 * Workbench state in the Steward store: query history, saved queries, and the
 * groups a saved query is shared with (tables from migration 2).
 *
 * Repository form: every function takes the Db (or transaction) last.
 */
import { randomBytes } from 'node:crypto';
import type { Db } from '../store/db.js';
import { StewardError } from '../errors.js';
import type { HistoryEntry } from './types.js';

export interface StoredHistory extends HistoryEntry {
  readonly id: number;
  readonly at: string;
}

export interface SavedQuery {
  readonly id: string;
  readonly owner: string;
  readonly name: string;
  readonly description?: string;
  readonly sql: string;
  /** Placeholder names (`${name}`) in order of first use. */
  readonly parameters: readonly string[];
  readonly sharedWith: readonly string[];
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface SavedQueryInput {
  readonly owner: string;
  readonly name: string;
  readonly description?: string;
  readonly sql: string;
  readonly parameters: readonly string[];
}

const MESSAGE_MAX = 4096;
const SQL_MAX = 100_000;

export async function insertHistory(e: HistoryEntry, db: Db): Promise<void> {
  await db.query(
    `INSERT INTO steward.query_history (principal, actor, sql, tables, duration_ms, row_count, outcome, message, saved_query)
     VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9)`,
    [
      e.principal,
      e.actor,
      e.sql.slice(0, SQL_MAX).replaceAll('\u0000', '\uFFFD'),
      JSON.stringify(e.tables),
      Math.max(0, Math.round(e.durationMs)),
      e.rowCount,
      e.outcome,
      e.message === undefined ? null : e.message.slice(0, MESSAGE_MAX),
      e.savedQuery ?? null,
    ],
  );
}

interface HistoryRow {
  id: number;
  at: Date;
  principal: string;
  actor: string;
  sql: string;
  tables: string[];
  duration_ms: number;
  row_count: number;
  outcome: HistoryEntry['outcome'];
  message: string | null;
  saved_query: string | null;
}

/** Newest first; `principal` limits to one principal's runs. */
export async function selectHistory(q: { principal?: string; limit: number; before?: number }, db: Db): Promise<StoredHistory[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.principal !== undefined) {
    params.push(q.principal);
    where.push(`principal = $${params.length}`);
  }
  if (q.before !== undefined) {
    params.push(q.before);
    where.push(`id < $${params.length}`);
  }
  params.push(q.limit);
  const { rows } = await db.query<HistoryRow>(
    `SELECT id, at, principal, actor, sql, tables, duration_ms, row_count, outcome, message, saved_query
     FROM steward.query_history ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY id DESC LIMIT $${params.length}`,
    params,
  );
  return rows.map((r) => ({
    id: Number(r.id),
    at: new Date(r.at).toISOString(),
    principal: r.principal,
    actor: r.actor,
    sql: r.sql,
    tables: r.tables,
    durationMs: r.duration_ms,
    rowCount: Number(r.row_count),
    outcome: r.outcome,
    ...(r.message === null ? {} : { message: r.message }),
    ...(r.saved_query === null ? {} : { savedQuery: r.saved_query }),
  }));
}

interface SavedRow {
  id: string;
  owner: string;
  name: string;
  description: string | null;
  sql: string;
  parameters: string[];
  created_at: Date;
  updated_at: Date;
  shared: string[] | null;
}

const SAVED_SELECT = `SELECT q.id, q.owner, q.name, q.description, q.sql, q.parameters, q.created_at, q.updated_at,
  (SELECT coalesce(jsonb_agg(s.group_name ORDER BY s.group_name), '[]'::jsonb) FROM steward.saved_query_shares s WHERE s.query_id = q.id) AS shared
  FROM steward.saved_queries q`;

function toSaved(r: SavedRow): SavedQuery {
  return {
    id: r.id,
    owner: r.owner,
    name: r.name,
    ...(r.description === null ? {} : { description: r.description }),
    sql: r.sql,
    parameters: r.parameters,
    sharedWith: r.shared ?? [],
    createdAt: new Date(r.created_at).toISOString(),
    updatedAt: new Date(r.updated_at).toISOString(),
  };
}

export async function insertSavedQuery(input: SavedQueryInput, db: Db): Promise<SavedQuery> {
  const id = `q_${randomBytes(9).toString('base64url')}`;
  try {
    await db.query(
      `INSERT INTO steward.saved_queries (id, owner, name, description, sql, parameters) VALUES ($1, $2, $3, $4, $5, $6::jsonb)`,
      [id, input.owner, input.name, input.description ?? null, input.sql, JSON.stringify(input.parameters)],
    );
  } catch (e) {
    if (/unique|duplicate/i.test((e as Error).message)) {
      throw new StewardError('STEWARD_E_ALREADY_EXISTS', `\`${input.owner}\` already has a saved query named \`${input.name}\``);
    }
    throw e;
  }
  const saved = await selectSavedQuery(id, db);
  if (saved === null) throw new StewardError('STEWARD_E_INTERNAL', 'saved query vanished');
  return saved;
}

export async function updateSavedQuery(id: string, input: Omit<SavedQueryInput, 'owner'>, db: Db): Promise<void> {
  await db.query(`UPDATE steward.saved_queries SET name = $2, description = $3, sql = $4, parameters = $5::jsonb, updated_at = now() WHERE id = $1`, [
    id,
    input.name,
    input.description ?? null,
    input.sql,
    JSON.stringify(input.parameters),
  ]);
}

export async function selectSavedQuery(id: string, db: Db): Promise<SavedQuery | null> {
  const { rows } = await db.query<SavedRow>(`${SAVED_SELECT} WHERE q.id = $1`, [id]);
  const r = rows[0];
  return r === undefined ? null : toSaved(r);
}

/** Queries owned by `owner` or shared with one of `groups`; all of them when `all`. */
export async function selectSavedQueries(q: { owner: string; groups: readonly string[]; all: boolean }, db: Db): Promise<SavedQuery[]> {
  const { rows } = q.all
    ? await db.query<SavedRow>(`${SAVED_SELECT} ORDER BY q.owner, q.name`)
    : await db.query<SavedRow>(
        `${SAVED_SELECT} WHERE q.owner = $1 OR EXISTS (
           SELECT 1 FROM steward.saved_query_shares s WHERE s.query_id = q.id AND s.group_name = ANY($2::text[]))
         ORDER BY q.owner, q.name`,
        [q.owner, [...q.groups]],
      );
  return rows.map(toSaved);
}

export async function deleteSavedQuery(id: string, db: Db): Promise<void> {
  await db.query('DELETE FROM steward.saved_queries WHERE id = $1', [id]);
}

export async function insertShare(id: string, group: string, db: Db): Promise<void> {
  await db.query('INSERT INTO steward.saved_query_shares (query_id, group_name) VALUES ($1, $2) ON CONFLICT DO NOTHING', [id, group]);
}

export async function deleteShare(id: string, group: string, db: Db): Promise<void> {
  await db.query('DELETE FROM steward.saved_query_shares WHERE query_id = $1 AND group_name = $2', [id, group]);
}

export interface WorkbenchStore {
  recordHistory(e: HistoryEntry): Promise<void>;
  listHistory(q: { principal?: string; limit: number; before?: number }): Promise<StoredHistory[]>;
  createSaved(input: SavedQueryInput): Promise<SavedQuery>;
  updateSaved(id: string, input: Omit<SavedQueryInput, 'owner'>): Promise<void>;
  getSaved(id: string): Promise<SavedQuery | null>;
  listSaved(q: { owner: string; groups: readonly string[]; all: boolean }): Promise<SavedQuery[]>;
  deleteSaved(id: string): Promise<void>;
  share(id: string, group: string): Promise<void>;
  unshare(id: string, group: string): Promise<void>;
}

export function createWorkbenchStore(db: Db): WorkbenchStore {
  return {
    recordHistory: (e) => insertHistory(e, db),
    listHistory: (q) => selectHistory(q, db),
    createSaved: (input) => insertSavedQuery(input, db),
    updateSaved: (id, input) => updateSavedQuery(id, input, db),
    getSaved: (id) => selectSavedQuery(id, db),
    listSaved: (q) => selectSavedQueries(q, db),
    deleteSaved: (id) => deleteSavedQuery(id, db),
    share: (id, group) => insertShare(id, group, db),
    unshare: (id, group) => deleteShare(id, group, db),
  };
}

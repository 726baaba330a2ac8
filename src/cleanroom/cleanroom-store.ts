/**
 * Collaborations and their query logs in `steward.cleanroom*` (migration 12).
 * A change reads the document and its version and writes it back only if the
 * version is unchanged (`save` answers false otherwise and the caller retries),
 * so two members changing one collaboration at once lose nothing.
 */
import type { Db } from '../store/db.js';
import type { Collaboration, RoomQueryLogEntry } from './cleanroom-types.js';

export interface Versioned {
  readonly doc: Collaboration;
  readonly version: number;
}

export async function loadRoom(db: Db, name: string): Promise<Versioned | null> {
  const { rows } = await db.query<{ document: Collaboration; version: number }>('SELECT document, version FROM steward.cleanrooms WHERE name = $1', [name]);
  const r = rows[0];
  return r === undefined ? null : { doc: r.document, version: r.version };
}

export async function listRooms(db: Db): Promise<Collaboration[]> {
  return (await loadRooms(db)).map((r) => r.doc);
}

/** Every collaboration with its version, by name. */
export async function loadRooms(db: Db): Promise<Versioned[]> {
  const { rows } = await db.query<{ document: Collaboration; version: number }>('SELECT document, version FROM steward.cleanrooms ORDER BY name');
  return rows.map((r) => ({ doc: r.document, version: r.version }));
}

/** Inserts a new collaboration; false when the name is taken. */
export async function insertRoom(db: Db, doc: Collaboration): Promise<boolean> {
  const { rows } = await db.query<{ name: string }>(
    `INSERT INTO steward.cleanrooms (name, document, version, updated_at) VALUES ($1, $2::jsonb, 1, now()) ON CONFLICT (name) DO NOTHING RETURNING name`,
    [doc.name, JSON.stringify(doc)],
  );
  return rows.length === 1;
}

/** Writes `doc` if the stored version is still `version`; false when someone else wrote first. */
export async function saveRoom(db: Db, doc: Collaboration, version: number): Promise<boolean> {
  const { rows } = await db.query<{ name: string }>(
    `UPDATE steward.cleanrooms SET document = $2::jsonb, version = version + 1, updated_at = now() WHERE name = $1 AND version = $3 RETURNING name`,
    [doc.name, JSON.stringify(doc), version],
  );
  return rows.length === 1;
}

export async function appendQueryLog(db: Db, room: string, e: Omit<RoomQueryLogEntry, 'id' | 'at'>): Promise<void> {
  await db.query(
    `INSERT INTO steward.cleanroom_queries (cleanroom, at, member, runner, sql, template, outcome, rules, rows, removed, message)
     VALUES ($1, now(), $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10)`,
    [room, e.member, e.runner, e.sql, e.template ?? null, e.outcome, JSON.stringify(e.rules), e.rows, e.removed, e.message],
  );
}

interface LogRow {
  id: string | number;
  at: Date;
  member: string;
  runner: string;
  sql: string;
  template: string | null;
  outcome: RoomQueryLogEntry['outcome'];
  rules: string[];
  rows: number;
  removed: number;
  message: string;
}

export async function readQueryLog(db: Db, room: string, limit: number): Promise<RoomQueryLogEntry[]> {
  const { rows } = await db.query<LogRow>(
    `SELECT id, at, member, runner, sql, template, outcome, rules, rows, removed, message FROM steward.cleanroom_queries WHERE cleanroom = $1 ORDER BY id DESC LIMIT $2`,
    [room, limit],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    at: r.at.toISOString(),
    member: r.member,
    runner: r.runner,
    sql: r.sql,
    ...(r.template === null ? {} : { template: r.template }),
    outcome: r.outcome,
    rules: r.rules,
    rows: r.rows,
    removed: r.removed,
    message: r.message,
  }));
}

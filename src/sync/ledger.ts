/**
 * `steward_config`: what Steward records inside the warehouse, as the mapper
 * service in the Morningstar design did — which resource carries which tags,
 * and which grants Steward performed. The grants ledger is written in the same
 * transaction as the statements it describes, so it never claims a grant that
 * was rolled back.
 */
import type pg from 'pg';
import type { Item } from './sync-types.js';
import { ledgerKeys } from './diff.js';

export const CONFIG_SCHEMA = 'steward_config';

const DDL = `
CREATE SCHEMA IF NOT EXISTS ${CONFIG_SCHEMA};
REVOKE ALL ON SCHEMA ${CONFIG_SCHEMA} FROM PUBLIC;
CREATE TABLE IF NOT EXISTS ${CONFIG_SCHEMA}.grants (
  target text NOT NULL,
  item_key text NOT NULL,
  kind text NOT NULL,
  role_name text,
  schema_name text,
  table_name text,
  performed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (target, item_key)
);
CREATE INDEX IF NOT EXISTS grants_table ON ${CONFIG_SCHEMA}.grants (target, schema_name, table_name);
CREATE TABLE IF NOT EXISTS ${CONFIG_SCHEMA}.resource_tags (
  target text NOT NULL,
  schema_name text NOT NULL,
  table_name text NOT NULL,
  column_name text NOT NULL DEFAULT '',
  tag_key text NOT NULL,
  tag_value text NOT NULL,
  PRIMARY KEY (target, schema_name, table_name, column_name, tag_key)
);
CREATE TABLE IF NOT EXISTS ${CONFIG_SCHEMA}.runs (
  id bigserial PRIMARY KEY,
  target text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  statements integer NOT NULL DEFAULT 0,
  applied integer NOT NULL DEFAULT 0,
  status text NOT NULL DEFAULT 'running',
  error text
);
`;

/** Any constant works; the same in every Steward process. */
const DDL_LOCK = 7_311_592_005;

export async function ensureConfigSchema(client: pg.Client): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [DDL_LOCK]);
    await client.query(DDL);
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/** Records grant steps and forgets revoke steps; call inside the transaction that ran them. */
export async function recordSteps(client: pg.Client, target: string, steps: readonly { op: 'grant' | 'revoke'; item: Item }[]): Promise<void> {
  const ins = { key: [] as string[], kind: [] as string[], role: [] as (string | null)[], schema: [] as (string | null)[], table: [] as (string | null)[] };
  const del: string[] = [];
  for (const s of steps) {
    for (const key of ledgerKeys(s.item)) {
      if (s.op === 'revoke') {
        del.push(key);
        continue;
      }
      const it = s.item;
      ins.key.push(key);
      ins.kind.push(it.k);
      ins.role.push(it.k === 'rls' ? null : it.role);
      ins.schema.push(it.k === 'role' || it.k === 'member' ? null : it.schema);
      ins.table.push(it.k === 'table' || it.k === 'columns' || it.k === 'rls' || it.k === 'policy' ? it.table : null);
    }
  }
  if (del.length > 0) await client.query(`DELETE FROM ${CONFIG_SCHEMA}.grants WHERE target = $1 AND item_key = ANY($2::text[])`, [target, del]);
  // a dropped role takes every privilege it held with it (DROP OWNED), recorded or not
  const dropped = steps.filter((s) => s.op === 'revoke' && s.item.k === 'role').map((s) => (s.item as { role: string }).role);
  if (dropped.length > 0) await client.query(`DELETE FROM ${CONFIG_SCHEMA}.grants WHERE target = $1 AND role_name = ANY($2::text[])`, [target, dropped]);
  if (ins.key.length > 0) {
    await client.query(
      `INSERT INTO ${CONFIG_SCHEMA}.grants (target, item_key, kind, role_name, schema_name, table_name)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
       ON CONFLICT (target, item_key) DO UPDATE SET performed_at = now()`,
      [target, ins.key, ins.kind, ins.role, ins.schema, ins.table],
    );
  }
}

export interface TagRow {
  readonly schema: string;
  readonly table: string;
  /** '' for the table itself. */
  readonly column: string;
  readonly key: string;
  readonly value: string;
}

/** Replaces the recorded tags of the given tables; returns whether anything changed. */
export async function recordTags(client: pg.Client, target: string, tables: readonly { schema: string; name: string }[], rows: readonly TagRow[]): Promise<boolean> {
  const schemas = tables.map((t) => t.schema);
  const names = tables.map((t) => t.name);
  const { rows: have } = await client.query<{ s: string; t: string; c: string; k: string; v: string }>(
    `SELECT r.schema_name AS s, r.table_name AS t, r.column_name AS c, r.tag_key AS k, r.tag_value AS v
       FROM ${CONFIG_SCHEMA}.resource_tags r
       JOIN unnest($2::text[], $3::text[]) AS w(schema_name, table_name) ON w.schema_name = r.schema_name AND w.table_name = r.table_name
      WHERE r.target = $1`,
    [target, schemas, names],
  );
  const text = (r: { s: string; t: string; c: string; k: string; v: string }): string => `${r.s}|${r.t}|${r.c}|${r.k}|${r.v}`;
  const a = new Set(have.map(text));
  const b = new Set(rows.map((r) => text({ s: r.schema, t: r.table, c: r.column, k: r.key, v: r.value })));
  if (a.size === b.size && [...a].every((x) => b.has(x))) return false;
  await client.query('BEGIN');
  try {
    await client.query(
      `DELETE FROM ${CONFIG_SCHEMA}.resource_tags r USING unnest($2::text[], $3::text[]) AS w(schema_name, table_name)
        WHERE r.target = $1 AND w.schema_name = r.schema_name AND w.table_name = r.table_name`,
      [target, schemas, names],
    );
    if (rows.length > 0) {
      await client.query(
        `INSERT INTO ${CONFIG_SCHEMA}.resource_tags (target, schema_name, table_name, column_name, tag_key, tag_value)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])`,
        [target, rows.map((r) => r.schema), rows.map((r) => r.table), rows.map((r) => r.column), rows.map((r) => r.key), rows.map((r) => r.value)],
      );
    }
    await client.query('COMMIT');
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  }
  return true;
}

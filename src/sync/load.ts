/**
 * `steward warehouse load`: copies lake tables into the warehouse. DuckDB reads
 * the lake files one chunk at a time (every value cast to text, so formatting
 * is DuckDB's and PostgreSQL parses it back into the declared type); the chunk
 * goes to PostgreSQL as CSV through COPY FROM STDIN (copy-from.ts).
 *
 * Chunks are addressed by offset so a client can show progress across several
 * calls; offset 0 (re)creates the table: it keeps an existing table with the
 * same columns (and its grants) and empties it, and replaces one whose columns
 * differ.
 */
import type pg from 'pg';
import type { DuckDb } from '../lake/duckdb.js';
import type { Table } from '../policy/model.js';
import { StewardError } from '../errors.js';
import { copyFrom, csvField } from './copy-from.js';
import { qi, qname } from './names.js';
import type { MappedTable } from './sync-types.js';

const READERS = { parquet: 'read_parquet', csv: 'read_csv', json: 'read_json' } as const;

/** The PostgreSQL type for a DuckDB column type; text when there is no faithful equivalent. */
export function postgresType(duckType: string): string {
  const t = duckType.trim().toUpperCase();
  const dec = /^(?:DECIMAL|NUMERIC)\((\d{1,2}),\s*(\d{1,2})\)$/.exec(t);
  if (dec) return `numeric(${dec[1]}, ${dec[2]})`;
  const map: Record<string, string> = {
    VARCHAR: 'text',
    TEXT: 'text',
    BIGINT: 'bigint',
    INTEGER: 'integer',
    INT: 'integer',
    SMALLINT: 'smallint',
    TINYINT: 'smallint',
    UTINYINT: 'smallint',
    USMALLINT: 'integer',
    UINTEGER: 'bigint',
    UBIGINT: 'numeric',
    HUGEINT: 'numeric',
    DOUBLE: 'double precision',
    FLOAT: 'real',
    REAL: 'real',
    BOOLEAN: 'boolean',
    DATE: 'date',
    TIMESTAMP: 'timestamp',
    'TIMESTAMP WITH TIME ZONE': 'timestamptz',
    TIMESTAMPTZ: 'timestamptz',
    TIME: 'time',
    UUID: 'uuid',
    BLOB: 'bytea',
  };
  return map[t] ?? 'text';
}

function lakeSource(table: Table): { reader: string; location: string; hive: boolean } {
  const s = table.source;
  if (s.kind !== 'lake') {
    throw new StewardError('STEWARD_E_SOURCE', `table \`${table.catalog}.${table.database}.${table.name}\` is not a lake table; only lake tables can be loaded`);
  }
  return { reader: READERS[s.format], location: s.location, hive: s.hivePartitioning };
}

export async function countRows(duck: DuckDb, table: Table): Promise<number> {
  const src = lakeSource(table);
  const rows = await duck.all<{ n: number }>(`SELECT count(*)::DOUBLE AS n FROM ${src.reader}($1, hive_partitioning = $2)`, [src.location, src.hive]);
  return Number(rows[0]?.n ?? 0);
}

/** Creates the schema and table (or empties a matching one). */
export async function prepareTable(client: pg.Client, table: Table, m: MappedTable): Promise<void> {
  await client.query(`CREATE SCHEMA IF NOT EXISTS ${qi(m.schema)}`);
  const { rows } = await client.query<{ name: string }>(
    `SELECT a.attname AS name FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
    [m.schema, m.name],
  );
  const want = table.columns.map((c) => c.name);
  const same = rows.length === want.length && rows.every((r, i) => r.name === want[i]);
  if (rows.length > 0 && same) {
    await client.query(`TRUNCATE ${qname(m.schema, m.name)}`);
    return;
  }
  if (rows.length > 0) await client.query(`DROP TABLE ${qname(m.schema, m.name)}`);
  const cols = table.columns.map((c) => `${qi(c.name)} ${postgresType(c.type)}`).join(', ');
  await client.query(`CREATE TABLE ${qname(m.schema, m.name)} (${cols})`);
}

/** Copies rows [offset, offset + limit) of a lake table; returns how many were copied. */
export async function copyChunk(duck: DuckDb, client: pg.Client, table: Table, m: MappedTable, offset: number, limit: number): Promise<number> {
  const src = lakeSource(table);
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(limit) || offset < 0 || limit <= 0) throw new StewardError('STEWARD_E_VALIDATION', 'offset and limit must be non-negative integers');
  const select = table.columns.map((c) => `CAST(${qi(c.name)} AS VARCHAR) AS ${qi(c.name)}`).join(', ');
  // INVARIANT: DuckDB keeps file order for a plain scan (preserve_insertion_order), so offsets address the same rows on every call
  const rows = await duck.all(`SELECT ${select} FROM ${src.reader}($1, hive_partitioning = $2) LIMIT ${limit} OFFSET ${offset}`, [src.location, src.hive]);
  if (rows.length === 0) return 0;
  const names = table.columns.map((c) => c.name);
  const lines: string[] = [];
  for (const r of rows) lines.push(names.map((n) => csvField(r[n])).join(','));
  const data = Buffer.from(`${lines.join('\n')}\n`, 'utf8');
  return copyFrom(client, `COPY ${qname(m.schema, m.name)} (${names.map(qi).join(', ')}) FROM STDIN WITH (FORMAT csv)`, data);
}

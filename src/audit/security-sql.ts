/**
 * SQL over the security lake for monitors: a private, sandboxed DuckDB whose
 * only tables are the security tables (`steward.security.<source>` or
 * `security.<source>`), and a check that refuses, before anything runs, SQL
 * that does not parse, is not one SELECT, calls a table function (`read_csv`,
 * `query`, ...), names any other table, or uses a function outside the SQL
 * gateway's allow-list (the gateway's own analyzer, src/gateway/analyze.ts).
 *
 * Defense in depth: the sandbox may read only the security folder
 * (`allowed_directories`), external access is off for everything else, and
 * the configuration is locked before user SQL runs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseLossless } from 'lossless-json';
import { openDuckDb, type DuckDb, type Row } from '../lake/duckdb.js';
import { StewardError } from '../errors.js';
import { TABLE_COLUMNS } from './lake-schema.js';
import { sourceDir } from './parquet-writer.js';
import { analyzeStatement, refusal, type Json as TreeJson } from '../gateway/analyze.js';

export const SECURITY_CATALOG = 'steward';
export const SECURITY_DATABASE = 'security';
const SOURCE_NAME = /^[a-z][a-z0-9_]{0,62}$/;

/** A SQL string literal (only for DDL, which cannot take bound parameters; the values are paths Steward builds). */
const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`;

type Node = { [key: string]: unknown };

function walk(node: unknown, visit: (n: Node) => void): void {
  if (Array.isArray(node)) {
    for (const x of node) walk(x, visit);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  visit(node as Node);
  for (const v of Object.values(node as Node)) walk(v, visit);
}

export interface SqlCheck {
  /** Security tables the SQL reads. */
  readonly tables: readonly string[];
}

/**
 * Refuses SQL a monitor may not run. `sources` are the known source names.
 * Uses DuckDB's own parser (`json_serialize_sql`), so what is checked is what would run.
 */
export async function checkSecuritySql(duckdb: DuckDb, sql: string, sources: readonly string[]): Promise<SqlCheck> {
  if (sql.trim().length === 0) throw new StewardError('STEWARD_E_PARSE', 'the monitor query is empty');
  const rows = await duckdb.all<{ j: string }>('SELECT json_serialize_sql($1::VARCHAR) AS j', [sql]);
  // lossless-json: the tree carries 64-bit values (query_location) that JSON.parse would round.
  const tree = parseLossless(rows[0]?.j ?? '{}') as Node;
  if (tree['error'] === true) {
    const msg = String(tree['error_message'] ?? 'cannot parse');
    throw new StewardError('STEWARD_E_PARSE', `the monitor query does not parse as one SELECT: ${msg.split('\n')[0] ?? msg}`);
  }
  const statements = tree['statements'];
  if (!Array.isArray(statements) || statements.length !== 1) throw new StewardError('STEWARD_E_PARSE', 'the monitor query must be exactly one SELECT statement');
  const ctes = new Set<string>();
  walk(statements, (n) => {
    const map = (n['cte_map'] as { map?: unknown } | undefined)?.map;
    if (Array.isArray(map)) for (const e of map) if (e !== null && typeof e === 'object' && typeof (e as Node)['key'] === 'string') ctes.add(((e as Node)['key'] as string).toLowerCase());
  });
  const known = new Set(sources);
  const tables = new Set<string>();
  const refused: string[] = [];
  walk(statements, (n) => {
    if (n['type'] === 'TABLE_FUNCTION') {
      const fn = (n['function'] as Node | undefined)?.['function_name'];
      refused.push(`table function \`${String(fn)}\``);
    }
    if (n['type'] !== 'BASE_TABLE') return;
    const catalog = String(n['catalog_name'] ?? '').toLowerCase();
    const schema = String(n['schema_name'] ?? '').toLowerCase();
    const table = String(n['table_name'] ?? '').toLowerCase();
    const full = [catalog, schema, table].filter((x) => x !== '').join('.');
    if (catalog === '' && schema === '' && ctes.has(table)) return;
    const inSecurity = (catalog === '' || catalog === SECURITY_CATALOG) && (schema === '' || schema === SECURITY_DATABASE) && !(catalog !== '' && schema === '');
    if (inSecurity && known.has(table)) tables.add(table);
    else refused.push(`table \`${full}\``);
  });
  if (refused.length > 0) {
    throw new StewardError('STEWARD_E_FORBIDDEN', `monitor queries may read only the security tables (${SECURITY_CATALOG}.${SECURITY_DATABASE}.*); refused ${refused.slice(0, 5).join(', ')}`);
  }
  // Second, independent pass: the gateway's fail-closed analyzer (node kinds, function allow-list).
  // It resolves `security.x` with its default catalog, so only the database and table are checked here.
  try {
    analyzeStatement(statements[0] as TreeJson, (name) => {
      if (name.database !== SECURITY_DATABASE || !known.has(name.table)) throw refusal(`table \`${name.catalog}.${name.database}.${name.table}\` is not a security table`);
    });
  } catch (e) {
    if (e instanceof StewardError) throw new StewardError('STEWARD_E_FORBIDDEN', `monitor query refused: ${e.message}`, { details: e.details });
    throw e;
  }
  return { tables: [...tables].sort() };
}

export interface SecuritySql {
  readonly duckdb: DuckDb;
  /** Checks the SQL, then runs it in the sandbox; at most `limit` rows. */
  query(sql: string, limit?: number): Promise<Row[]>;
  close(): void;
}

const PARTITION_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['region', 'VARCHAR'],
  ['accountId', 'VARCHAR'],
  ['eventDay', 'VARCHAR'],
];

/** Opens a sandbox with one view per source (an empty, typed view while a source has no files yet). */
export async function openSecuritySql(lakeDir: string, sources: readonly string[]): Promise<SecuritySql> {
  const root = path.join(lakeDir, 'security');
  const duckdb = await openDuckDb({ config: { threads: '1' } });
  try {
    await duckdb.run(`ATTACH ':memory:' AS ${SECURITY_CATALOG}`);
    await duckdb.run(`CREATE SCHEMA ${SECURITY_CATALOG}.${SECURITY_DATABASE}`);
    for (const s of sources) {
      if (!SOURCE_NAME.test(s)) continue;
      const dir = sourceDir(lakeDir, s);
      const hasFiles = fs.existsSync(dir) && (await duckdb.all('SELECT 1 FROM glob($1) LIMIT 1', [`${dir}/**/*.parquet`])).length > 0;
      const body = hasFiles
        ? `SELECT * FROM read_parquet(${literal(`${dir}/**/*.parquet`)}, hive_partitioning = true, union_by_name = true)`
        : `SELECT ${[...TABLE_COLUMNS, ...PARTITION_COLUMNS].map(([c, t]) => `CAST(NULL AS ${t}) AS "${c}"`).join(', ')} WHERE false`;
      await duckdb.run(`CREATE VIEW ${SECURITY_CATALOG}.${SECURITY_DATABASE}.${s} AS ${body}`);
    }
    await duckdb.run(`USE ${SECURITY_CATALOG}.${SECURITY_DATABASE}`);
    await duckdb.run('SET allowed_directories = [$1]'.replace('$1', literal(`${root}/`)));
    await duckdb.run('SET enable_external_access = false');
    await duckdb.run('SET lock_configuration = true');
  } catch (e) {
    duckdb.close();
    throw e;
  }
  return {
    duckdb,
    async query(sql, limit = 1000) {
      await checkSecuritySql(duckdb, sql, sources);
      try {
        const rows = await duckdb.all(sql);
        return rows.slice(0, limit);
      } catch (e) {
        const msg = e instanceof Error ? (e.message.split('\n')[0] ?? e.message) : String(e);
        throw new StewardError('STEWARD_E_VALIDATION', `the monitor query failed: ${msg}`, { cause: e });
      }
    },
    close: () => duckdb.close(),
  };
}

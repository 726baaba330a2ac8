/**
 * Reads the tables and columns of one PostgreSQL schema from
 * information_schema, so they can be registered as Steward tables.
 *
 * The connection URL carries a password; it never appears in errors (see
 * `redactUrl`), and errors do not carry the driver's error as `cause`, because
 * driver errors may echo connection parameters.
 *
 * Names: PostgreSQL folds unquoted names to lowercase, so a name with
 * uppercase letters or other characters was created quoted and must be quoted
 * the same way to be read. Steward names are plain lowercase identifiers, so
 * such tables are refused (listed in the error) unless `skipUnsupported` is set.
 */
import type pg from 'pg';
import { StewardError } from '../errors.js';
import type { ErrorDetail } from '../errors.js';
import { NAME_PATTERN } from '../policy/model.js';
import type { Column } from '../policy/model.js';

export interface PostgresTable {
  readonly table: string;
  /** Sorted by ordinal; ordinals are 0..n-1 (information_schema counts from 1 and may have gaps after DROP COLUMN). */
  readonly columns: Column[];
}

export interface PostgresInspectOptions {
  /** Leave out tables whose table or column names are not plain lowercase identifiers, instead of failing. */
  readonly skipUnsupported?: boolean;
  /** Include views (default true). */
  readonly views?: boolean;
  readonly connectTimeoutMs?: number;
}

/** Information-schema row, as the query below returns it. */
export interface InformationSchemaColumn {
  readonly table_name: string;
  readonly column_name: string;
  readonly ordinal_position: number;
  readonly data_type: string;
  readonly udt_name: string;
  readonly character_maximum_length: number | null;
  readonly numeric_precision: number | null;
  readonly numeric_scale: number | null;
}

const COLUMNS_SQL = `
  SELECT c.table_name, c.column_name, c.ordinal_position::int AS ordinal_position, c.data_type, c.udt_name,
         c.character_maximum_length::int AS character_maximum_length,
         c.numeric_precision::int AS numeric_precision, c.numeric_scale::int AS numeric_scale
    FROM information_schema.columns c
    JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
   WHERE c.table_schema = $1
     AND (t.table_type IN ('BASE TABLE', 'FOREIGN') OR (t.table_type = 'VIEW' AND $2::boolean))
   ORDER BY c.table_name, c.ordinal_position`;

/**
 * @example
 *   await inspectPostgresSchema('postgres://steward:secret@db:5432/warehouse', 'public');
 *   // [{ table: 'orders', columns: [{ name: 'id', type: 'bigint', ordinal: 0 }, ...] }]
 */
export async function inspectPostgresSchema(url: string, schema: string, options: PostgresInspectOptions = {}): Promise<PostgresTable[]> {
  const schemaName = schema.trim();
  if (schemaName.length === 0 || schemaName.length > 128) {
    throw new StewardError('STEWARD_E_VALIDATION', 'schema name must be 1 to 128 characters');
  }
  const safeUrl = redactUrl(url);
  const { default: driver } = await import('pg');
  const client = new driver.Client({ connectionString: url, connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000 });
  let rows: InformationSchemaColumn[];
  try {
    await client.connect();
    const result = await client.query<InformationSchemaColumn>(COLUMNS_SQL, [schemaName, options.views ?? true]);
    rows = result.rows;
  } catch (e) {
    throw new StewardError('STEWARD_E_SOURCE', `cannot read schema \`${schemaName}\` from \`${safeUrl}\`: ${redactText(errorText(e), url)}`);
  } finally {
    await client.end().catch(() => undefined);
  }
  return tablesFromColumns(rows, schemaName, options.skipUnsupported ?? false);
}

/**
 * The current columns of a table registered from PostgreSQL, for a refresh.
 * The stored connection has no password, so the caller passes the URL again
 * (`steward catalog refresh T --source-url URL`).
 */
export async function postgresTableColumns(
  inspect: (url: string, schema: string) => Promise<PostgresTable[]>,
  source: { readonly schema: string; readonly table: string; readonly connection: string },
  url: string | undefined,
): Promise<Column[]> {
  if (url === undefined) {
    throw new StewardError('STEWARD_E_VALIDATION', `body.sourceUrl: the table comes from PostgreSQL (\`${source.connection}\`), whose password Steward does not store; give its connection url again (\`--source-url\`)`, {
      details: [{ path: 'body.sourceUrl', message: 'required for a table registered from PostgreSQL' }],
    });
  }
  const found = (await inspect(url, source.schema)).find((t) => t.table === source.table);
  if (found === undefined) throw new StewardError('STEWARD_E_SOURCE', `table \`${source.schema}.${source.table}\` no longer exists at \`${redactUrl(url)}\``);
  return found.columns;
}

/** Groups information-schema rows into tables; pure, exported for tests. */
export function tablesFromColumns(rows: readonly InformationSchemaColumn[], schema: string, skipUnsupported: boolean): PostgresTable[] {
  const byTable = new Map<string, InformationSchemaColumn[]>();
  for (const r of rows) byTable.set(r.table_name, [...(byTable.get(r.table_name) ?? []), r]);
  const tables: PostgresTable[] = [];
  const problems: ErrorDetail[] = [];
  for (const [table, cols] of [...byTable.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const bad: ErrorDetail[] = [];
    if (!NAME_PATTERN.test(table)) bad.push({ path: `${schema}.${table}`, message: `table name \`${table}\` is not a plain lowercase identifier` });
    const sorted = [...cols].sort((a, b) => a.ordinal_position - b.ordinal_position);
    for (const c of sorted) {
      if (!NAME_PATTERN.test(c.column_name)) {
        bad.push({ path: `${schema}.${table}.${c.column_name}`, message: `column name \`${c.column_name}\` is not a plain lowercase identifier` });
      }
    }
    if (bad.length > 0) {
      problems.push(...bad);
      continue;
    }
    tables.push({ table, columns: sorted.map((c, ordinal) => ({ name: c.column_name, type: columnType(c), ordinal })) });
  }
  if (problems.length > 0 && !skipUnsupported) {
    throw new StewardError(
      'STEWARD_E_SOURCE',
      `schema \`${schema}\` has ${problems.length} name${problems.length === 1 ? '' : 's'} Steward cannot register (first: ${problems[0]?.message ?? ''}); rename them or skip unsupported tables`,
      { details: problems },
    );
  }
  return tables;
}

/** The type as PostgreSQL spells it, with its modifiers: `numeric(12,2)`, `character varying(64)`, `integer[]`, `my_enum`. */
export function columnType(c: InformationSchemaColumn): string {
  switch (c.data_type) {
    case 'USER-DEFINED':
      return c.udt_name;
    case 'ARRAY':
      return `${c.udt_name.replace(/^_/, '')}[]`;
    case 'numeric':
      return c.numeric_precision !== null ? `numeric(${c.numeric_precision},${c.numeric_scale ?? 0})` : 'numeric';
    case 'character varying':
    case 'character':
      return c.character_maximum_length !== null ? `${c.data_type}(${c.character_maximum_length})` : c.data_type;
    default:
      return c.data_type;
  }
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as Error & { code?: unknown }).code;
    return typeof code === 'string' && code.length > 0 ? `${e.message} (${code})` : e.message;
  }
  return String(e);
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`; an unparsable URL is not echoed at all. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    // Passwords can also ride in the query string (`?password=...`).
    for (const key of [...u.searchParams.keys()]) if (/pass|secret|token|key/i.test(key)) u.searchParams.set(key, '***');
    return u.toString();
  } catch {
    return '(unparsable connection url)';
  }
}

/** Removes every spelling of the URL's secrets (raw and percent-decoded) from a message. */
export function redactText(text: string, url: string): string {
  const secrets = new Set<string>();
  try {
    const u = new URL(url);
    if (u.password !== '') {
      secrets.add(u.password);
      secrets.add(decodeURIComponent(u.password));
    }
    for (const [key, value] of u.searchParams) if (/pass|secret|token|key/i.test(key) && value !== '') secrets.add(value);
  } catch {
    // Not a URL: the whole string may be a secret-bearing DSN; never echo it.
    if (url.length > 0) secrets.add(url);
  }
  let out = text.split(url).join(redactUrl(url));
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) out = out.split(s).join('***');
  return out;
}

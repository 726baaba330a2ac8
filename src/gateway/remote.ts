/**
 * Remote tables: catalog tables whose rows live in another workspace (the
 * replicas of shares, src/sharing/). The gateway plans them like lake tables
 * (the consumer's own grants, filters and masks decide first, in the same
 * rewrite), but instead of reading lake files the governed subquery reads a
 * temporary table of the query's own DuckDB connection. Before the query runs,
 * `loadRemote` asks the owner for the columns the plan needs and loads them
 * there; the owner applies its own limits before anything leaves it. The
 * temporary table lives as long as the connection, which is the query's.
 *
 * Bounded: an owner sends at most `MAX_REMOTE_ROWS` rows of a table per query;
 * a table with more is refused (413) rather than read in part, since an
 * aggregate over a cut table would be silently wrong.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { StewardError } from '../errors.js';
import type { Decision } from '../policy/decision.js';
import type { Table } from '../policy/model.js';
import { columnsOf, quoteIdent } from '../policy/predicate.js';
import type { RemoteRead, RemoteRows, RemoteTables, ResultColumn } from './types.js';

/** Rows of one remote table a query may load (the owner's cap; more is refused, not cut). */
export const MAX_REMOTE_ROWS = 100_000;

/** The columns of `table` the governed subquery reads: the visible ones and those its row and cell predicates name. */
export function columnsToFetch(table: Table, decision: Decision): string[] {
  const needed = new Set<string>();
  for (const c of decision.columns ?? []) {
    needed.add(c.name);
    if (c.rowFilter) for (const n of columnsOf(c.rowFilter)) needed.add(n);
  }
  if (decision.rowFilter) for (const n of columnsOf(decision.rowFilter)) needed.add(n);
  // In the table's order; a predicate naming a column the replica does not have fails to bind, as it would on a lake table.
  return table.columns.map((c) => c.name).filter((n) => needed.has(n));
}

/** The reference the governed subquery reads instead of lake files. */
export function remoteFromSql(read: Pick<RemoteRead, 'temp'>): string {
  return `temp.main.${quoteIdent(read.temp)}`;
}

/** Catalogs read remotely, asked once per policy world and only when it has virtual tables at all. */
export function remoteCatalogsCache(source: RemoteTables | undefined): (world: { readonly tables: readonly Pick<Table, 'source'>[] }) => Promise<ReadonlySet<string>> {
  const none: ReadonlySet<string> = new Set();
  const known = new WeakMap<object, Promise<ReadonlySet<string>>>();
  return (world) => {
    if (source === undefined) return Promise.resolve(none);
    let found = known.get(world);
    if (found === undefined) {
      found = world.tables.some((t) => t.source.kind === 'virtual') ? source.catalogs() : Promise.resolve(none);
      // A failed lookup is not remembered.
      found.catch(() => known.delete(world));
      known.set(world, found);
    }
    return found;
  };
}

/** Fetches every remote table of a plan and loads it into a temporary table of `con`. */
export async function loadRemote(con: DuckDBConnection, reads: readonly RemoteRead[], source: RemoteTables | undefined, signal: AbortSignal): Promise<void> {
  if (source === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'a plan reads remote tables but the gateway has no remote source');
  const answers = await Promise.all(reads.map((r) => source.fetch(r, signal)));
  for (const [i, read] of reads.entries()) await loadOne(con, read, checkedRows(read, answers[i] as RemoteRows));
}

/** The owner's answer, checked: exactly the columns asked for, in order, rows of that width, within the bound. */
function checkedRows(read: RemoteRead, answer: RemoteRows): RemoteRows {
  const full = `${read.catalog}.${read.database}.${read.table}`;
  const names = answer.columns.map((c) => c.name);
  if (names.length !== read.columns.length || names.some((n, i) => n !== read.columns[i]) || answer.rows.some((r) => r.length !== names.length)) {
    throw new StewardError('STEWARD_E_SOURCE', `the owner of \`${full}\` answered with other columns than asked for`);
  }
  if (answer.truncated || answer.rows.length > MAX_REMOTE_ROWS) {
    throw new StewardError('STEWARD_E_PAYLOAD_TOO_LARGE', `shared table \`${full}\` has more than ${MAX_REMOTE_ROWS} rows for this query; a query over a shared table reads at most ${MAX_REMOTE_ROWS} of its rows`);
  }
  return answer;
}

/**
 * `CREATE TEMP TABLE` from the rows, sent as one bound JSON value and cast
 * column by column to the owner's types. A type that is not a plain type name
 * stays text: the owner's words never reach the SQL unquoted.
 */
async function loadOne(con: DuckDBConnection, read: RemoteRead, rows: RemoteRows): Promise<void> {
  const select = rows.columns.map((c, i) => `CAST(json_extract_string(r, '$[${i}]') AS ${safeType(c)}) AS ${quoteIdent(c.name)}`).join(', ');
  const sql = `CREATE TEMP TABLE ${quoteIdent(read.temp)} AS SELECT ${select} FROM (SELECT unnest(json_extract($1::VARCHAR, '$[*]')) AS r)`;
  await con.run(sql, [JSON.stringify(rows.rows)]);
}

const PLAIN_TYPE = /^[A-Z][A-Z0-9_ ]{0,40}(\(\d{1,3}(, ?\d{1,3})?\))?(\[\])?$/;

function safeType(c: ResultColumn): string {
  const t = c.type.trim().toUpperCase();
  return PLAIN_TYPE.test(t) ? t : 'VARCHAR';
}

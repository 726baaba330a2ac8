/**
 * Step 3 of the gateway pipeline: the authorized tree back to SQL text, with
 * every catalog table reference replaced by its governed subquery over the
 * table's lake files:
 *   - the row predicate in WHERE (so Parquet statistics still prune row
 *     groups), and
 *   - each visible column as `CASE WHEN <cell predicate> THEN col END`,
 * so whatever DuckDB's optimizer reorders, the user's expressions only ever
 * see NULL for rows and cells the principal may not see. Hidden columns are
 * simply not there.
 *
 * The printing goes through DuckDB's own `json_deserialize_sql`, in the parser
 * instance: no SQL is assembled from the user's text.
 */
import { randomUUID } from 'node:crypto';
import { stringify as stringifyLossless } from 'lossless-json';
import { StewardError } from '../errors.js';
import type { Decision } from '../policy/decision.js';
import type { Table } from '../policy/model.js';
import { cellMaskSql, quoteIdent, quoteLiteral, samePredicate, toSql, type Predicate } from '../policy/predicate.js';
import type { Json } from './analyze.js';
import type { AuthorizedQuery } from './authorize.js';
import { bindValues, fileParameters, withFiles } from './binds.js';
import { pinnedType } from './leakproof.js';
import { firstStatement, parseTree } from './parse.js';
import { columnsToFetch, remoteFromSql } from './remote.js';
import type { Parser } from './sandbox.js';
import type { FileParam, ParamValue, QueryPlan, RemoteRead } from './types.js';

/** The SQL the sandbox runs and what it binds. */
export interface RewrittenQuery {
  readonly sql: string;
  readonly binds: QueryPlan['binds'];
  readonly fileParams: readonly FileParam[];
  /** Remote tables to load before the query runs (remote.ts). */
  readonly remote: readonly RemoteRead[];
}

export interface Rewriter {
  /** Binds the parameters (refusing unknown or missing ones) and prints the governed SQL. */
  rewrite(query: AuthorizedQuery, params: Readonly<Record<string, ParamValue>>): Promise<RewrittenQuery>;
}

const TABLE_CACHE_MAX = 1000;

/** Prints a tree whose table references in `pending` become the given subqueries (see `createPrinter`). */
export type SubqueryPrinter = (statement: Json, pending: readonly { node: Json; sql: string }[]) => Promise<string>;

/**
 * SQL text for a rewritten tree. Each table reference in `pending` is first
 * printed as a placeholder table (`__steward_<nonce>.s<i>e`, under the user's
 * alias, sample and column aliases) and the placeholder is then replaced by
 * the subquery's text: DuckDB prints a much smaller tree, and the subqueries
 * are never parsed per query. A placeholder that does not occur exactly once in
 * the printed text (user text can never produce one that matches, but if it
 * did) falls back to printing the whole tree with the subqueries parsed into
 * it. Shared by the gateway and clean rooms (src/cleanroom/).
 */
export function createPrinter(parser: Parser): SubqueryPrinter {
  // Parsed governed subqueries by their SQL text (the text already encodes the table, decision and source).
  const subqueries = new Map<string, Json>();
  // Names no user text can guess.
  const placeholderSchema = `__steward_${randomUUID().replaceAll('-', '')}`;

  const subqueryRef = async (sql: string): Promise<Json> => {
    const cached = subqueries.get(sql);
    if (cached !== undefined) return cached;
    const parsed = parseTree(await parser.serialize(`SELECT * FROM (${sql}) AS t`));
    const st = firstStatement(parsed);
    const node = st['node'] as Json;
    const ref = node['from_table'] as Json;
    if (subqueries.size >= TABLE_CACHE_MAX) subqueries.clear();
    subqueries.set(sql, ref);
    return ref;
  };

  return async (statement, pending) => {
    const saved = pending.map((p) => ({ ...p.node }));
    pending.forEach((p, i) => {
      Object.assign(p.node, { type: 'BASE_TABLE', catalog_name: '', schema_name: placeholderSchema, table_name: `s${i}e`, at_clause: null });
    });
    const printed = await parser.deserialize(stringifyLossless({ error: false, statements: [statement] }) ?? '');
    const out = splicePlaceholders(printed, placeholderSchema, pending.map((p) => p.sql));
    if (out !== null) return out;
    // Fallback: the governed subqueries parsed into the tree, the whole tree printed.
    for (const [i, p] of pending.entries()) {
      for (const k of Object.keys(p.node)) delete p.node[k];
      Object.assign(p.node, saved[i]);
      p.node['subquery'] = (await subqueryRef(p.sql))['subquery'];
    }
    return parser.deserialize(stringifyLossless({ error: false, statements: [statement] }) ?? '');
  };
}

export function createRewriter(parser: Parser): Rewriter {
  const print = createPrinter(parser);
  const fileParamPrefix = `__steward_${randomUUID().replaceAll('-', '')}_f`;

  return {
    async rewrite(query, params) {
      const { analysis } = query;
      const fileParams = fileParameters(analysis.parameters, query.files, fileParamPrefix);
      const binds = withFiles(bindValues(analysis.parameters, params), fileParams);
      const paramOf = new Map(fileParams.map((f) => [f.location, f.name]));
      const remote: RemoteRead[] = [];
      const pending = query.tables.map((t) => {
        if (!t.remote) return { node: t.node, sql: governedSql(t.table, t.decision, query.leakproof, `$${paramOf.get(t.location) ?? ''}`) };
        const read: RemoteRead = { catalog: t.table.catalog, database: t.table.database, table: t.table.name, columns: columnsToFetch(t.table, t.decision), temp: `${fileParamPrefix}r${remote.length}` };
        remote.push(read);
        return { node: t.node, sql: governedSelect(t.table, t.decision, query.leakproof, remoteFromSql(read)) };
      });
      const sql = await print(analysis.statement, pending);
      return { sql, binds, fileParams, remote };
    },
  };
}

/**
 * Replaces each placeholder table `<schema>.s<i>e` of the printed SQL with
 * `(<subqueries[i]>)`. Null unless every placeholder occurs exactly once and
 * the schema name nowhere else (the caller then prints the tree the slow way).
 */
export function splicePlaceholders(printed: string, schema: string, subqueries: readonly string[]): string | null {
  const at: { index: number; marker: string; sql: string }[] = [];
  for (const [i, sql] of subqueries.entries()) {
    const marker = `${schema}.s${i}e`;
    const index = printed.indexOf(marker);
    if (index < 0 || printed.indexOf(marker, index + 1) >= 0) return null;
    at.push({ index, marker, sql });
  }
  let count = 0;
  for (let i = printed.indexOf(schema); i >= 0; i = printed.indexOf(schema, i + 1)) count++;
  if (count !== subqueries.length) return null;
  at.sort((a, b) => a.index - b.index);
  let out = '';
  let from = 0;
  for (const { index, marker, sql } of at) {
    out += `${printed.slice(from, index)}(${sql})`;
    from = index + marker.length;
  }
  return out + printed.slice(from);
}

/**
 * The subquery that stands for a catalog table: the visible columns, each cell
 * masked by its predicate, over the rows the row predicate admits.
 *
 * With `leakproof` (the query passed `isLeakproof`), a column whose mask is
 * always true under the row predicate (no cell predicate, or the row predicate
 * itself) is exposed unmasked, pinned to its catalog type: DuckDB can then push
 * the user's filters into the Parquet scan. Other cell predicates keep their mask.
 *
 * @example
 *   SELECT CASE WHEN ("hospital" = 'North Hospital') THEN "amount" END AS "amount", …
 *   FROM read_parquet('/lake/claims.parquet', hive_partitioning = false)
 *   WHERE ("hospital" = 'North Hospital')
 *   -- leakproof: SELECT TRY_CAST("amount" AS DOUBLE) AS "amount", … (same FROM and WHERE)
 */
export function governedSql(table: Table, decision: Decision, leakproof = false, locationSql?: string): string {
  const source = table.source;
  if (source.kind !== 'lake') throw new StewardError('STEWARD_E_INTERNAL', 'not a lake table');
  return governedSelect(table, decision, leakproof, lakeReaderSql(source, locationSql ?? quoteLiteral(source.location)));
}

/** `governedSql` over any relation `reader` (lake files, or the temporary table of a remote table). */
function governedSelect(table: Table, decision: Decision, leakproof: boolean, reader: string): string {
  const rowFilter: Predicate | null = decision.rowFilter ?? null;
  const types = new Map(table.columns.map((c) => [c.name, c.type]));
  const columns = (decision.columns ?? []).map((c) => {
    const cell = c.rowFilter ?? rowFilter;
    const id = quoteIdent(c.name);
    // `cell === rowFilter` (a column with no cell predicate of its own) spares printing both predicates to compare them.
    if (leakproof && (cell === null || cell === rowFilter || samePredicate(cell, rowFilter))) {
      // Without a row predicate every row is visible: nothing to pin against.
      const pinned = rowFilter === null ? null : pinnedType(types.get(c.name) ?? '');
      return pinned === null ? id : `TRY_CAST(${id} AS ${pinned}) AS ${id}`;
    }
    return cell === null ? id : `${cellMaskSql(c.name, cell)} AS ${id}`;
  });
  if (columns.length === 0) throw new StewardError('STEWARD_E_INTERNAL', 'an allowed SELECT without visible columns');
  return `SELECT ${columns.join(', ')} FROM ${reader}${rowFilter === null ? '' : ` WHERE ${toSql(rowFilter)}`}`;
}

/** The table function that reads a lake table's files at `locationSql` (a bound parameter, or a literal). */
export function lakeReaderSql(source: Extract<Table['source'], { kind: 'lake' }>, locationSql: string): string {
  const hive = `hive_partitioning = ${source.hivePartitioning ? 'true' : 'false'}`;
  switch (source.format) {
    case 'parquet':
      return `read_parquet(${locationSql}, ${hive})`;
    case 'csv':
      return `read_csv(${locationSql}, ${hive})`;
    case 'json':
      return `read_json(${locationSql}, ${hive})`;
    default: {
      const never: never = source.format;
      return never;
    }
  }
}

/**
 * A checked clean-room query, ready for the gateway's sandbox: every
 * configured-table reference becomes a subquery over its catalog table's lake
 * files with only the configured columns (the others do not exist inside the
 * collaboration), and each output constraint becomes one more, hidden, output
 * column (`count(DISTINCT alias.column)`, or `max > min` for "at least 2"),
 * which the runner compares with the minimum before a row leaves
 * (`cleanroom-run.ts`).
 *
 * Before the rewrite, the tree also goes through the gateway's own analyzer
 * (`analyzeStatement`), so everything a governed query may not do (table
 * functions, file paths, functions outside the allow-list, environment
 * functions) is refused here too, whatever the rule allowed.
 */
import { randomUUID } from 'node:crypto';
import { StewardError } from '../errors.js';
import { analyzeStatement, asciiLower, refusal, type Json } from '../gateway/analyze.js';
import { bindValues, fileParameters, withFiles } from '../gateway/binds.js';
import { parseTree, firstStatement } from '../gateway/parse.js';
import { lakeReaderSql, type SubqueryPrinter } from '../gateway/rewrite.js';
import type { Parser } from '../gateway/sandbox.js';
import type { ParamValue, QueryPlan } from '../gateway/types.js';
import { findTable, type PrincipalRef, type Table } from '../policy/model.js';
import { quoteIdent } from '../policy/predicate.js';
import type { Snapshot } from '../workspace/state-service.js';
import type { CheckedQuery, TableRef } from './cleanroom-checker.js';

/** The schema name configured-table references carry into the gateway's analyzer (user text cannot write it: the checker refuses qualified names). */
const ROOM_SCHEMA = '__cleanroom';
const HIDDEN_PREFIX = `__steward_${randomUUID().replaceAll('-', '')}_k`;
const FILE_PREFIX = `__steward_${randomUUID().replaceAll('-', '')}_f`;

export interface RoomPlan {
  readonly plan: QueryPlan;
  /** How many hidden constraint columns end each output row, with their minimums, in order. */
  readonly minimums: readonly number[];
}

export interface PlanInput {
  readonly parser: Parser;
  readonly print: SubqueryPrinter;
  readonly snapshot: Snapshot;
  readonly principal: PrincipalRef;
  readonly statement: Json;
  readonly checked: CheckedQuery;
  /** Catalog table (`catalog.database.table`) of each configured table, by its name in the collaboration. */
  readonly catalogTables: ReadonlyMap<string, string>;
  readonly params: Readonly<Record<string, ParamValue>>;
}

export async function planRoomQuery(input: PlanInput): Promise<RoomPlan> {
  const { checked, statement, snapshot } = input;
  const byNode = new Map<Json, TableRef>();
  for (const r of checked.refs) {
    byNode.set(r.node, r);
    r.node['schema_name'] = ROOM_SCHEMA;
    if (typeof r.node['alias'] !== 'string' || r.node['alias'] === '') r.node['alias'] = r.alias;
  }
  const pending: { node: Json; table: Table; columns: readonly string[] }[] = [];
  const analysis = analyzeStatement(statement, (name, written, node) => {
    const ref = byNode.get(node);
    if (name.database !== ROOM_SCHEMA || ref === undefined) throw refusal(`table \`${written}\`: a clean room reads only its configured tables`);
    const full = input.catalogTables.get(ref.table.name) ?? '';
    const [catalog = '', database = '', table = ''] = full.split('.');
    const t = findTable(snapshot.world, { catalog, database, table });
    if (t === undefined || t.source.kind !== 'lake') throw new StewardError('STEWARD_E_CONFLICT', `configured table \`${ref.table.name}\`: its catalog table \`${full}\` is gone or not in the lake`);
    for (const c of ref.table.columns) {
      if (!t.columns.some((x) => x.name === c)) throw new StewardError('STEWARD_E_CONFLICT', `configured table \`${ref.table.name}\`: column \`${c}\` is no longer in \`${full}\``);
    }
    pending.push({ node, table: t, columns: ref.table.columns });
  });
  const configuredNames = new Set(checked.refs.flatMap((r) => r.table.columns.map(asciiLower)));
  for (const f of analysis.valueFunctions) if (!configuredNames.has(f)) throw refusal(`\`${f}\` reveals the environment and is not allowed`);
  const minimums = await addConstraintColumns(input.parser, statement, checked);
  const files = [...new Set(pending.map((p) => (p.table.source.kind === 'lake' ? p.table.source.location : '')))];
  const fileParams = fileParameters(analysis.parameters, files, FILE_PREFIX);
  const paramOf = new Map(fileParams.map((f) => [f.location, f.name]));
  const subqueries = pending.map((p) => {
    const source = p.table.source as Extract<Table['source'], { kind: 'lake' }>;
    return { node: p.node, sql: `SELECT ${p.columns.map(quoteIdent).join(', ')} FROM ${lakeReaderSql(source, `$${paramOf.get(source.location) ?? ''}`)}` };
  });
  const sql = await input.print(statement, subqueries);
  const plan: QueryPlan = {
    principal: input.principal,
    sql,
    tables: analysis.tables.map((t) => t.slice(`lake.${ROOM_SCHEMA}.`.length)),
    parameters: analysis.parameters,
    binds: withFiles(bindValues(analysis.parameters, input.params), fileParams),
    grants: [],
    snapshot,
    leakproof: false,
    files,
    fileParams,
  };
  return { plan, minimums };
}

/**
 * The hidden column of one constraint, over the placeholder column `a.b`: a
 * value that reaches `minimum` exactly when the group has at least `minimum`
 * distinct non-null values of the column.
 *
 * "At least 2" (the usual minimum) is `max > min`: two distinct values exist
 * exactly when the largest differs from the smallest, and min/max keep no hash
 * set per group, where `count(DISTINCT)` does (most of a constrained query's
 * cost: bench/cleanroom.bench.ts). Equality and order agree for every DuckDB
 * type; where they could not (a value equal to another yet ordered apart), the
 * form answers "fewer", so it can only remove a row `count(DISTINCT)` would keep.
 */
export function constraintExpression(minimum: number): string {
  return minimum === 2 ? 'CASE WHEN max(a.b) > min(a.b) THEN 2 ELSE 0 END' : 'count(DISTINCT a.b)';
}

/** Appends one hidden column per output constraint (`constraintExpression`) to the select list; returns their minimums. */
async function addConstraintColumns(parser: Parser, statement: Json, checked: CheckedQuery): Promise<number[]> {
  if (checked.constraints.length === 0) return [];
  const node = statement['node'] as Json;
  const list = node['select_list'] as Json[];
  // DuckDB's own nodes for the expressions (parsed fresh: the tree holds lossless numbers), so the printer gets the shape it writes.
  const text = `SELECT ${checked.constraints.map((c) => constraintExpression(c.minimum)).join(', ')}`;
  const fresh = (firstStatement(parseTree(await parser.serialize(text)))['node'] as Json)['select_list'] as Json[];
  for (const [i, c] of checked.constraints.entries()) {
    const e = fresh[i] as Json;
    e['alias'] = `${HIDDEN_PREFIX}${i}`;
    pointPlaceholder(e, [c.alias, c.column]);
    list.push(e);
  }
  return checked.constraints.map((c) => c.minimum);
}

/** Points every reference to the placeholder column `a.b` in `e` at `names`. */
function pointPlaceholder(e: unknown, names: readonly string[]): void {
  if (Array.isArray(e)) {
    for (const x of e) pointPlaceholder(x, names);
    return;
  }
  if (e === null || typeof e !== 'object') return;
  const o = e as Json;
  if (o['class'] === 'COLUMN_REF' && JSON.stringify(o['column_names']) === '["a","b"]') o['column_names'] = [...names];
  for (const v of Object.values(o)) pointPlaceholder(v, names);
}

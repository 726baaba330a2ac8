/**
 * A checked clean-room query, ready for the gateway's sandbox: every
 * configured-table reference becomes a subquery over its catalog table's lake
 * files with only the configured columns (the others do not exist inside the
 * collaboration), and the output constraints become one more, hidden,
 * output column: whether the row's group meets every one of them
 * (`count(DISTINCT alias.column) >= N`, or `max > min` for "at least 2"),
 * which the runner reads before a row leaves (`cleanroom-run.ts`).
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
import type { CheckedQuery, ConstraintCheck, TableRef } from './cleanroom-checker.js';

/** The schema name configured-table references carry into the gateway's analyzer (user text cannot write it: the checker refuses qualified names). */
const ROOM_SCHEMA = '__cleanroom';
const HIDDEN_COLUMN = `__steward_${randomUUID().replaceAll('-', '')}_keep`;
const FILE_PREFIX = `__steward_${randomUUID().replaceAll('-', '')}_f`;

export interface RoomPlan {
  readonly plan: QueryPlan;
  /** Whether each output row ends with the hidden column that says if the row meets every output constraint. */
  readonly gated: boolean;
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
  const tableOf = new Map(pending.map((p) => [byNode.get(p.node)?.alias ?? '', p.table]));
  const typeOf = (aliasColumn: string): string | undefined => {
    const dot = aliasColumn.indexOf('.');
    return tableOf.get(aliasColumn.slice(0, dot))?.columns.find((c) => c.name === aliasColumn.slice(dot + 1))?.type;
  };
  const gated = await addConstraintColumn(input.parser, statement, mergeConstraints(checked.constraints, checked.equalColumns, typeOf));
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
  return { plan, gated };
}

/**
 * The condition of one output constraint over the placeholder column `a.b`:
 * true exactly when the group has at least `minimum` distinct non-null values
 * of the column (NULL, which the runner treats as false, when it has none).
 *
 * "At least 2" (the usual minimum) is `max > min`: two distinct values exist
 * exactly when the largest differs from the smallest, and min/max keep no hash
 * set per group, where `count(DISTINCT)` does (bench/cleanroom.bench.ts).
 * Equality and order agree for every DuckDB type; where they could not (a
 * value equal to another yet ordered apart), the form answers "fewer", so it
 * can only remove a row `count(DISTINCT)` would keep.
 */
export function constraintExpression(minimum: number): string {
  return minimum === 2 ? 'max(a.b) > min(a.b)' : `count(DISTINCT a.b) >= ${minimum}`;
}

/** Types whose `=` is identity: values equal by `=` are the same value, so they count once as distinct values. */
const IDENTITY_EQUALITY = /^(VARCHAR|TEXT|STRING|BOOLEAN|DATE|UUID|U?(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT))$/i;

/**
 * One constraint per set of columns that hold the same value on every joined
 * row (`CheckedQuery.equalColumns`), with the largest minimum of the set.
 * Such columns have the same distinct values in every group, so one condition
 * decides for all of them, and each condition dropped is two aggregates fewer
 * per group (the Scope 3 query's three "at least 2 items" become one). Only
 * columns of one type whose `=` is identity are merged: across types, or for
 * floating point (`-0.0 = 0.0`), equal values may still be distinct.
 */
export function mergeConstraints(constraints: readonly ConstraintCheck[], equalColumns: readonly (readonly [string, string])[], typeOf: (aliasColumn: string) => string | undefined): ConstraintCheck[] {
  const parent = new Map<string, string>();
  const root = (k: string): string => {
    let r = k;
    for (let up = parent.get(r); up !== undefined && up !== r; up = parent.get(r)) r = up;
    return r;
  };
  for (const [a, b] of equalColumns) {
    const ta = typeOf(a);
    if (ta === undefined || !IDENTITY_EQUALITY.test(ta) || ta.toUpperCase() !== typeOf(b)?.toUpperCase()) continue;
    const [ra, rb] = [root(a), root(b)];
    if (ra !== rb) parent.set(rb, ra);
  }
  const kept = new Map<string, ConstraintCheck>();
  for (const c of constraints) {
    const key = root(`${c.alias}.${c.column}`);
    const held = kept.get(key);
    if (held === undefined || c.minimum > held.minimum) kept.set(key, c);
  }
  return [...kept.values()];
}

/**
 * Appends one hidden column to the select list, the AND of every output
 * constraint's condition (`constraintExpression`), so each output row carries
 * one boolean rather than a count per constraint (the rows are streamed and
 * converted one value at a time). False when there are none to check.
 */
async function addConstraintColumn(parser: Parser, statement: Json, constraints: readonly ConstraintCheck[]): Promise<boolean> {
  if (constraints.length === 0) return false;
  const list = (statement['node'] as Json)['select_list'] as Json[];
  // DuckDB's own nodes for the expression (parsed fresh: the tree holds lossless numbers), so the printer gets the shape it writes.
  const text = `SELECT ${constraints.map((c, i) => `(${constraintExpression(c.minimum).replaceAll('a.b', `a${i}.b`)})`).join(' AND ')}`;
  const e = ((firstStatement(parseTree(await parser.serialize(text)))['node'] as Json)['select_list'] as Json[])[0] as Json;
  e['alias'] = HIDDEN_COLUMN;
  pointPlaceholders(e, constraints.map((c) => [c.alias, c.column]));
  list.push(e);
  return true;
}

/** Points every reference to a placeholder column `a<i>.b` in `e` at `names[i]`. */
function pointPlaceholders(e: unknown, names: readonly (readonly [string, string])[]): void {
  if (Array.isArray(e)) {
    for (const x of e) pointPlaceholders(x, names);
    return;
  }
  if (e === null || typeof e !== 'object') return;
  const o = e as Json;
  const cols = o['column_names'];
  if (o['class'] === 'COLUMN_REF' && Array.isArray(cols) && cols.length === 2 && cols[1] === 'b' && typeof cols[0] === 'string' && /^a\d+$/.test(cols[0])) {
    const target = names[Number(cols[0].slice(1))];
    if (target !== undefined) o['column_names'] = [...target];
  }
  for (const v of Object.values(o)) pointPlaceholders(v, names);
}

/**
 * The gateway's analyzer: walks the statement tree DuckDB's own parser produced
 * (`json_serialize_sql`), refuses everything that is not a plain read-only
 * query over catalog tables, and rewrites every catalog table reference into
 * the governed subquery the caller supplies.
 *
 * Fail closed, in three ways:
 * 1. Every node kind has a handler (query nodes, table references, modifiers,
 *    expressions); a kind without one is refused, and so is a known node that
 *    carries a field the handler does not know (a later DuckDB adding a clause
 *    cannot slip it through).
 * 2. Functions come from an allow-list (`functions.ts`); table functions,
 *    `DESCRIBE`/`SHOW`/`SUMMARIZE`, `PIVOT`, time travel and file paths in
 *    `FROM` are refused.
 * 3. After the rewrite, the only base-table references left are CTE references,
 *    each renamed to a name Steward generated (`__steward_cte_N`), so a
 *    reference this analyzer resolved wrongly fails to bind instead of reaching
 *    anything else. Catalog tables become subqueries over the lake files, which
 *    exist nowhere else in the sandbox.
 *
 * Pure: no I/O. The tree is the `lossless-json` parse of DuckDB's output (it
 * carries 64-bit values), and is rewritten in place on a private copy.
 */
import { StewardError, type ErrorDetail } from '../errors.js';
import { ALLOWED_AGGREGATES, ALLOWED_WINDOW_FUNCTIONS, isAllowedFunction } from './functions.js';

/** A JSON object of DuckDB's tree. */
export type Json = { [key: string]: unknown };

/** A table as written in the query, resolved to catalog names. */
export interface TableName {
  readonly catalog: string;
  readonly database: string;
  readonly table: string;
}

/**
 * Called for each catalog table reference. It authorizes (throwing the refusal)
 * and later fills `node`, already turned into a SUBQUERY table reference with
 * the user's alias, sample and column aliases, with the governed `subquery`.
 */
export type TableResolver = (name: TableName, written: string, node: Json) => void;

export interface Analysis {
  /** The rewritten statement (the `statements[0]` object). */
  readonly statement: Json;
  /** Catalog tables the query reads, `catalog.database.table`, sorted and unique. */
  readonly tables: readonly string[];
  /** Parameter names the query uses (`$name` or `$1`), sorted and unique. */
  readonly parameters: readonly string[];
  /**
   * Bare names DuckDB binds to a function when no column has that name
   * (`current_user`, `user`, …). The caller refuses them unless a table of the
   * query has such a column.
   */
  readonly valueFunctions: readonly string[];
}

/** SQL value functions written without parentheses; they bind as functions when no column matches. */
export const VALUE_FUNCTIONS: ReadonlySet<string> = new Set([
  'current_user',
  'session_user',
  'user',
  'current_role',
  'current_catalog',
  'current_schema',
  'current_database',
  'current_query',
  'current_setting',
]);

export const DEFAULT_CATALOG = 'lake';
export const MAX_TREE_DEPTH = 200;

/** Why a query was refused: the construct, and where it is (offset in the SQL text, when known). */
export function refusal(message: string, details: readonly ErrorDetail[] = []): StewardError {
  return new StewardError('STEWARD_E_FORBIDDEN', message, { details });
}

// DuckDB folds identifiers case-insensitively (ASCII only); so do we, and no
// other Unicode case mapping (the Kelvin sign is not a `k`).
export function asciiLower(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 65 && c <= 90 ? String.fromCharCode(c + 32) : s[i];
  }
  return out;
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

function arr(node: Json, key: string): unknown[] {
  const v = node[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw refusal(`unsupported query shape: \`${key}\` is not a list`);
  return v;
}

function only(node: Json, what: string, allowed: readonly string[]): void {
  for (const [k, v] of Object.entries(node)) {
    if (k === 'query_location' || allowed.includes(k)) continue;
    const empty = v === null || v === false || v === '' || (Array.isArray(v) && v.length === 0);
    if (!empty) throw refusal(`unsupported construct in ${what} (\`${k}\`)`);
  }
}

interface Scope {
  readonly ctes: ReadonlyMap<string, string>;
  readonly parent: Scope | null;
}

function lookupCte(scope: Scope | null, name: string): string | undefined {
  for (let s = scope; s !== null; s = s.parent) {
    const found = s.ctes.get(name);
    if (found !== undefined) return found;
  }
  return undefined;
}

const EXPR_KEYS = ['class', 'type', 'alias'];

const OPERATOR_TYPES = new Set([
  'OPERATOR_NOT',
  'OPERATOR_IS_NULL',
  'OPERATOR_IS_NOT_NULL',
  'COMPARE_IN',
  'COMPARE_NOT_IN',
  'OPERATOR_COALESCE',
  'OPERATOR_NULLIF',
  'ARRAY_EXTRACT',
  'ARRAY_SLICE',
  'STRUCT_EXTRACT',
  'ARRAY_CONSTRUCTOR',
  'OPERATOR_TRY',
]);

/** DuckDB's comparison expression types (all of them can appear in governed queries). */
export const COMPARISON_TYPES: ReadonlySet<string> = new Set([
  'COMPARE_EQUAL',
  'COMPARE_NOTEQUAL',
  'COMPARE_LESSTHAN',
  'COMPARE_GREATERTHAN',
  'COMPARE_LESSTHANOREQUALTO',
  'COMPARE_GREATERTHANOREQUALTO',
  'COMPARE_DISTINCT_FROM',
  'COMPARE_NOT_DISTINCT_FROM',
]);

const JOIN_REF_TYPES = new Set(['REGULAR', 'NATURAL', 'CROSS', 'POSITIONAL', 'ASOF', 'DEPENDENT']);

/**
 * Analyzes one parsed statement (`statements[0]` of `json_serialize_sql`),
 * rewriting catalog tables through `resolve`.
 *
 * @example
 *   const a = analyzeStatement(parsed.statements[0], (name) => subqueryFor(name));
 *   a.tables; // ['lake.claims.patient_claims']
 */
export function analyzeStatement(statement: Json, resolve: TableResolver): Analysis {
  // Long on purpose: one closure of node handlers that recurse into each other and share the walk's state (tables,
  // parameters, CTE counter, column references); split apart, they would thread that state through every call.
  const tables = new Set<string>();
  const parameters = new Set<string>();
  const valueFunctions = new Set<string>();
  let cteCounter = 0;
  // Catalog tables referenced without an alias are reachable as `db.t.col` / `cat.db.t.col`; those refs are re-qualified at the end.
  const qualified = new Map<string, string>();
  const columnRefs: Json[] = [];

  const depthGuard = (depth: number): void => {
    if (depth > MAX_TREE_DEPTH) throw refusal(`query is nested too deeply (more than ${MAX_TREE_DEPTH} levels)`);
  };

  const selectStatement = (st: unknown, scope: Scope | null, depth: number): void => {
    if (!isObj(st)) throw refusal('unsupported query shape');
    only(st, 'a query', ['node', 'named_param_map']);
    queryNode(st['node'], scope, depth + 1);
  };

  const cteMap = (node: Json, scope: Scope | null, depth: number): Scope | null => {
    const map = node['cte_map'];
    if (map === undefined || map === null) return scope;
    if (!isObj(map)) throw refusal('unsupported WITH clause');
    only(map, 'a WITH clause', ['map']);
    const entries = arr(map, 'map');
    if (entries.length === 0) return scope;
    const names = new Map<string, string>();
    let current: Scope | null = scope;
    for (const entry of entries) {
      if (!isObj(entry)) throw refusal('unsupported WITH clause');
      only(entry, 'a WITH clause', ['key', 'value']);
      const key = asciiLower(str(entry['key']));
      const value = entry['value'];
      if (!isObj(value) || key === '') throw refusal('unsupported WITH clause');
      only(value, `the CTE \`${key}\``, ['aliases', 'query', 'materialized', 'key_targets']);
      const generated = `__steward_cte_${++cteCounter}`;
      names.set(key, generated);
      // A CTE sees the ones before it and, when recursive, itself; later ones and its own name otherwise stay out.
      const query = value['query'];
      const inner = isObj(query) && isObj(query['node']) && query['node']['type'] === 'RECURSIVE_CTE_NODE';
      const own: Scope = { ctes: new Map(inner ? [...names] : [...names].filter(([k]) => k !== key)), parent: scope };
      for (const t of arr(value, 'key_targets')) expr(t, own, depth + 1);
      selectStatement(query, own, depth + 1);
      if (isObj(query) && isObj(query['node']) && query['node']['type'] === 'RECURSIVE_CTE_NODE') query['node']['cte_name'] = generated;
      current = { ctes: new Map(names), parent: scope };
    }
    map['map'] = entries.map((e) => {
      const entry = e as Json;
      return { ...entry, key: names.get(asciiLower(str(entry['key']))) };
    });
    return current;
  };

  const modifiers = (node: Json, scope: Scope | null, depth: number): void => {
    for (const m of arr(node, 'modifiers')) {
      if (!isObj(m)) throw refusal('unsupported query modifier');
      switch (m['type']) {
        case 'ORDER_MODIFIER':
          only(m, 'ORDER BY', ['type', 'orders']);
          orders(arr(m, 'orders'), scope, depth);
          break;
        case 'LIMIT_MODIFIER':
        case 'LIMIT_PERCENT_MODIFIER':
          only(m, 'LIMIT', ['type', 'limit', 'offset']);
          optExpr(m['limit'], scope, depth);
          optExpr(m['offset'], scope, depth);
          break;
        case 'DISTINCT_MODIFIER':
          only(m, 'DISTINCT', ['type', 'distinct_on_targets']);
          for (const e of arr(m, 'distinct_on_targets')) expr(e, scope, depth);
          break;
        default:
          throw refusal(`unsupported query modifier \`${str(m['type'])}\``);
      }
    }
  };

  const orders = (list: unknown[], scope: Scope | null, depth: number): void => {
    for (const o of list) {
      if (!isObj(o)) throw refusal('unsupported ORDER BY');
      only(o, 'ORDER BY', ['type', 'null_order', 'expression']);
      expr(o['expression'], scope, depth + 1);
    }
  };

  const queryNode = (node: unknown, outer: Scope | null, depth: number): void => {
    depthGuard(depth);
    if (!isObj(node)) throw refusal('unsupported query shape');
    const scope = cteMap(node, outer, depth);
    switch (node['type']) {
      case 'SELECT_NODE': {
        only(node, 'SELECT', [
          'type',
          'modifiers',
          'cte_map',
          'select_list',
          'from_table',
          'where_clause',
          'group_expressions',
          'group_sets',
          'aggregate_handling',
          'having',
          'sample',
          'qualify',
        ]);
        const handling = str(node['aggregate_handling']);
        if (handling !== 'STANDARD_HANDLING' && handling !== 'FORCE_AGGREGATES' && handling !== 'NO_AGGREGATES_ALLOWED') {
          throw refusal(`unsupported aggregate handling \`${handling}\``);
        }
        tableRef(node['from_table'], scope, depth + 1);
        for (const e of arr(node, 'select_list')) expr(e, scope, depth + 1);
        optExpr(node['where_clause'], scope, depth + 1);
        for (const e of arr(node, 'group_expressions')) expr(e, scope, depth + 1);
        optExpr(node['having'], scope, depth + 1);
        optExpr(node['qualify'], scope, depth + 1);
        sample(node['sample']);
        break;
      }
      case 'SET_OPERATION_NODE': {
        only(node, 'a set operation', ['type', 'modifiers', 'cte_map', 'setop_type', 'setop_all', 'left', 'right', 'children']);
        const op = str(node['setop_type']);
        if (!['UNION', 'EXCEPT', 'INTERSECT', 'UNION_BY_NAME'].includes(op)) throw refusal(`unsupported set operation \`${op}\``);
        if (node['left'] !== undefined && node['left'] !== null) queryNode(node['left'], scope, depth + 1);
        if (node['right'] !== undefined && node['right'] !== null) queryNode(node['right'], scope, depth + 1);
        for (const c of arr(node, 'children')) queryNode(c, scope, depth + 1);
        break;
      }
      case 'RECURSIVE_CTE_NODE': {
        only(node, 'a recursive CTE', ['type', 'modifiers', 'cte_map', 'cte_name', 'union_all', 'left', 'right', 'aliases', 'key_targets']);
        queryNode(node['left'], scope, depth + 1);
        queryNode(node['right'], scope, depth + 1);
        for (const t of arr(node, 'key_targets')) expr(t, scope, depth + 1);
        break;
      }
      default:
        throw refusal(`unsupported query construct \`${str(node['type'])}\``);
    }
    modifiers(node, scope, depth + 1);
  };

  const sample = (s: unknown): void => {
    if (s === null || s === undefined) return;
    if (!isObj(s)) throw refusal('unsupported SAMPLE clause');
    only(s, 'SAMPLE', ['sample_size', 'is_percentage', 'method', 'seed', 'repeatable']);
  };

  const tableRef = (ref: unknown, scope: Scope | null, depth: number): void => {
    depthGuard(depth);
    if (!isObj(ref)) throw refusal('unsupported FROM clause');
    sample(ref['sample']);
    switch (ref['type']) {
      case 'EMPTY':
        only(ref, 'FROM', ['type', 'alias', 'sample']);
        return;
      case 'BASE_TABLE':
        baseTable(ref, scope);
        return;
      case 'SUBQUERY':
        only(ref, 'a subquery in FROM', ['type', 'alias', 'sample', 'subquery', 'column_name_alias']);
        selectStatement(ref['subquery'], scope, depth + 1);
        return;
      case 'JOIN': {
        only(ref, 'a join', [
          'type',
          'alias',
          'sample',
          'left',
          'right',
          'condition',
          'join_type',
          'ref_type',
          'using_columns',
          'delim_flipped',
          'duplicate_eliminated_columns',
        ]);
        const refType = str(ref['ref_type']);
        if (!JOIN_REF_TYPES.has(refType)) throw refusal(`unsupported join \`${refType}\``);
        tableRef(ref['left'], scope, depth + 1);
        tableRef(ref['right'], scope, depth + 1);
        optExpr(ref['condition'], scope, depth + 1);
        return;
      }
      case 'EXPRESSION_LIST':
        only(ref, 'VALUES', ['type', 'alias', 'sample', 'expected_names', 'expected_types', 'values']);
        for (const row of arr(ref, 'values')) {
          if (!Array.isArray(row)) throw refusal('unsupported VALUES list');
          for (const e of row) expr(e, scope, depth + 1);
        }
        return;
      case 'TABLE_FUNCTION': {
        const fn = isObj(ref['function']) ? str(ref['function']['function_name']) : '';
        throw refusal(
          `table function \`${fn}\` is not allowed: governed queries read catalog tables only (write \`database.table\`), never files, settings or system catalogs`,
        );
      }
      case 'SHOW_REF':
        throw refusal('DESCRIBE, SHOW and SUMMARIZE are not available in governed queries: use `steward catalog show <table>` to see the columns you may read');
      case 'PIVOT':
        throw refusal('PIVOT and UNPIVOT are not supported in governed queries');
      default:
        throw refusal(`unsupported FROM clause \`${str(ref['type'])}\``);
    }
  };

  const baseTable = (ref: Json, scope: Scope | null): void => {
    only(ref, 'a table reference', ['type', 'alias', 'sample', 'schema_name', 'table_name', 'column_name_alias', 'catalog_name', 'at_clause']);
    if (ref['at_clause'] !== null && ref['at_clause'] !== undefined) throw refusal('time travel (`AT (...)`) is not supported in governed queries');
    const catalog = asciiLower(str(ref['catalog_name']));
    const schema = asciiLower(str(ref['schema_name']));
    const name = asciiLower(str(ref['table_name']));
    const written = [str(ref['catalog_name']), str(ref['schema_name']), str(ref['table_name'])].filter((p) => p !== '').join('.');
    if (catalog === '' && schema === '') {
      const cte = lookupCte(scope, name);
      if (cte === undefined) {
        throw new StewardError(
          'STEWARD_E_NOT_FOUND',
          `table \`${written}\` not found or not permitted: write catalog tables as \`database.table\` or \`catalog.database.table\``,
          { details: [{ path: 'table', message: written }] },
        );
      }
      const alias = str(ref['alias']);
      ref['table_name'] = cte;
      if (alias === '') ref['alias'] = name;
      return;
    }
    const resolved: TableName = { catalog: catalog === '' ? DEFAULT_CATALOG : catalog, database: schema, table: name };
    const full = `${resolved.catalog}.${resolved.database}.${resolved.table}`;
    const alias = str(ref['alias']);
    const keep = { sample: ref['sample'] ?? null, column_name_alias: ref['column_name_alias'] ?? [] };
    if (alias === '') {
      qualified.set(`${resolved.database}.${resolved.table}`, name);
      qualified.set(full, name);
    }
    for (const k of Object.keys(ref)) if (k !== 'query_location') delete ref[k];
    Object.assign(ref, { type: 'SUBQUERY', alias: alias === '' ? name : alias, ...keep });
    resolve(resolved, written, ref);
    tables.add(full);
  };

  const optExpr = (e: unknown, scope: Scope | null, depth: number): void => {
    if (e === null || e === undefined) return;
    expr(e, scope, depth);
  };

  const fnName = (e: Json): string => {
    const catalog = str(e['catalog']);
    const schema = asciiLower(str(e['schema']));
    const name = asciiLower(str(e['function_name']));
    if (catalog !== '' || (schema !== '' && schema !== 'main')) {
      throw refusal(`function \`${[catalog, str(e['schema']), str(e['function_name'])].filter((p) => p !== '').join('.')}\` is not allowed in governed queries`);
    }
    return name;
  };

  const expr = (e: unknown, scope: Scope | null, depth: number): void => {
    depthGuard(depth);
    if (!isObj(e)) throw refusal('unsupported expression');
    const d = depth + 1;
    switch (e['class']) {
      case 'COLUMN_REF': {
        only(e, 'a column reference', [...EXPR_KEYS, 'column_names']);
        columnRefs.push(e);
        const names = arr(e, 'column_names');
        const bare = names.length === 1 ? asciiLower(str(names[0])) : '';
        if (VALUE_FUNCTIONS.has(bare)) valueFunctions.add(bare);
        return;
      }
      case 'CONSTANT':
        only(e, 'a constant', [...EXPR_KEYS, 'value']);
        return;
      case 'PARAMETER':
        only(e, 'a parameter', [...EXPR_KEYS, 'identifier']);
        parameters.add(str(e['identifier']));
        return;
      case 'POSITIONAL_REFERENCE':
        only(e, 'a positional reference', [...EXPR_KEYS, 'index']);
        return;
      case 'FUNCTION': {
        only(e, 'a function call', [
          ...EXPR_KEYS,
          'function_name',
          'schema',
          'children',
          'filter',
          'order_bys',
          'distinct',
          'is_operator',
          'export_state',
          'catalog',
        ]);
        const name = fnName(e);
        if (!isAllowedFunction(name)) {
          throw refusal(
            `function \`${str(e['function_name'])}\` is not allowed in governed queries (functions that read files, settings, the environment or the catalog are refused)`,
          );
        }
        for (const c of arr(e, 'children')) expr(c, scope, d);
        optExpr(e['filter'], scope, d);
        const ob = e['order_bys'];
        if (isObj(ob)) {
          only(ob, 'ORDER BY', ['type', 'orders']);
          orders(arr(ob, 'orders'), scope, d);
        }
        return;
      }
      case 'WINDOW': {
        only(e, 'a window function', [
          ...EXPR_KEYS,
          'function_name',
          'schema',
          'catalog',
          'children',
          'partitions',
          'orders',
          'start',
          'end',
          'start_expr',
          'end_expr',
          'offset_expr',
          'default_expr',
          'ignore_nulls',
          'distinct',
          'filter_expr',
          'exclude_clause',
          'arg_orders',
        ]);
        const name = fnName(e);
        if (!ALLOWED_WINDOW_FUNCTIONS.has(name) && !ALLOWED_AGGREGATES.has(name)) {
          throw refusal(`window function \`${str(e['function_name'])}\` is not allowed in governed queries`);
        }
        for (const c of arr(e, 'children')) expr(c, scope, d);
        for (const c of arr(e, 'partitions')) expr(c, scope, d);
        orders(arr(e, 'orders'), scope, d);
        orders(arr(e, 'arg_orders'), scope, d);
        for (const k of ['start_expr', 'end_expr', 'offset_expr', 'default_expr', 'filter_expr']) optExpr(e[k], scope, d);
        return;
      }
      case 'OPERATOR':
        only(e, 'an operator', [...EXPR_KEYS, 'children']);
        if (!OPERATOR_TYPES.has(str(e['type']))) throw refusal(`unsupported operator \`${str(e['type'])}\``);
        for (const c of arr(e, 'children')) expr(c, scope, d);
        return;
      case 'COMPARISON':
        only(e, 'a comparison', [...EXPR_KEYS, 'left', 'right']);
        if (!COMPARISON_TYPES.has(str(e['type']))) throw refusal(`unsupported comparison \`${str(e['type'])}\``);
        expr(e['left'], scope, d);
        expr(e['right'], scope, d);
        return;
      case 'CONJUNCTION':
        only(e, 'AND/OR', [...EXPR_KEYS, 'children']);
        for (const c of arr(e, 'children')) expr(c, scope, d);
        return;
      case 'CASE':
        only(e, 'CASE', [...EXPR_KEYS, 'case_checks', 'else_expr']);
        for (const c of arr(e, 'case_checks')) {
          if (!isObj(c)) throw refusal('unsupported CASE');
          only(c, 'CASE', ['when_expr', 'then_expr']);
          expr(c['when_expr'], scope, d);
          expr(c['then_expr'], scope, d);
        }
        optExpr(e['else_expr'], scope, d);
        return;
      case 'CAST':
        only(e, 'CAST', [...EXPR_KEYS, 'child', 'cast_type', 'try_cast']);
        expr(e['child'], scope, d);
        return;
      case 'BETWEEN':
        only(e, 'BETWEEN', [...EXPR_KEYS, 'input', 'lower', 'upper']);
        expr(e['input'], scope, d);
        expr(e['lower'], scope, d);
        expr(e['upper'], scope, d);
        return;
      case 'COLLATE':
        only(e, 'COLLATE', [...EXPR_KEYS, 'child', 'collation']);
        expr(e['child'], scope, d);
        return;
      case 'SUBQUERY':
        only(e, 'a subquery', [...EXPR_KEYS, 'subquery', 'subquery_type', 'child', 'comparison_type']);
        selectStatement(e['subquery'], scope, d);
        optExpr(e['child'], scope, d);
        return;
      case 'LAMBDA':
        only(e, 'a lambda', [...EXPR_KEYS, 'lhs', 'expr', 'syntax_type']);
        optExpr(e['lhs'], scope, d);
        expr(e['expr'], scope, d);
        return;
      case 'STAR':
        only(e, '`*`', [
          ...EXPR_KEYS,
          'relation_name',
          'exclude_list',
          'replace_list',
          'columns',
          'expr',
          'qualified_exclude_list',
          'rename_list',
          'unpacked',
        ]);
        for (const r of arr(e, 'replace_list')) {
          if (!isObj(r)) throw refusal('unsupported `* REPLACE`');
          expr(r['value'], scope, d);
        }
        optExpr(e['expr'], scope, d);
        return;
      default:
        throw refusal(`unsupported expression \`${str(e['class'])}\``);
    }
  };

  selectStatement(statement, null, 0);

  // Qualified column references to unaliased catalog tables: `claims.patient_claims.amount` → `patient_claims.amount`.
  for (const ref of columnRefs) {
    const names = arr(ref, 'column_names').map(str);
    for (const parts of [3, 2]) {
      if (names.length <= parts) continue;
      const key = names.slice(0, parts).map(asciiLower).join('.');
      const alias = qualified.get(key);
      if (alias !== undefined) {
        ref['column_names'] = [alias, ...names.slice(parts)];
        break;
      }
    }
  }

  return { statement, tables: [...tables].sort(), parameters: [...parameters].sort(), valueFunctions: [...valueFunctions].sort() };
}

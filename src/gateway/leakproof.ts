/**
 * The fast path of the rewrite: when may a catalog table's columns be exposed
 * plainly, instead of masked with `CASE WHEN <row predicate> THEN col END`?
 *
 * The masks exist for one reason beyond cell-level visibility: DuckDB's
 * optimizer pushes the user's filters down next to the row predicate (into
 * the Parquet scan) and evaluates them in any order, so a user expression may
 * run on a row the principal may not see. An expression that can fail, or
 * take longer, because of a hidden row's value would leak it
 * (`WHERE CASE WHEN ssn = 'x' THEN 1/0 END`, `WHERE claim_id = 'abc'`, which
 * casts and fails only when some row exists).
 *
 * Like PostgreSQL's security-barrier views, which push down only LEAKPROOF
 * operators, the masks are dropped only when every expression of the query is
 * made of nodes that can neither fail nor vary in cost with the data:
 *
 * - column references that resolve to one table column of known type family,
 *   literals and bound parameters;
 * - comparisons, `IN` lists and `BETWEEN` whose operands are all in the same
 *   type family (numbers of at most 64 bits and floats; VARCHAR; BOOLEAN) or
 *   NULL, so DuckDB inserts no cast that could fail (a string literal compared
 *   with a number casts and fails, even `'x'`; HUGEINT and DECIMAL widen into
 *   types that can overflow: both are left out);
 * - `AND`, `OR`, `NOT`, `IS [NOT] NULL`;
 * - `strftime(<DATE column>, '<format>')` with a literal format made only of
 *   specifiers that format every DATE, the extremes and ±infinity included
 *   (`STRFTIME_FORMAT`): a dashboard's month or year. `%U`, `%W`, `%G` and
 *   `%V` fail on the earliest dates, and a format outside DuckDB's list fails
 *   on every row, so those keep the masks;
 * - the aggregates count, sum, avg, min and max (evaluated above every filter,
 *   over visible rows only).
 *
 * and only for one plain SELECT over catalog tables (no subqueries, CTEs, set
 * operations, windows, lateral or natural joins, samples or column renames),
 * with no select alias that names a table column, so every column reference
 * resolves exactly as DuckDB's binder resolves it. Anything else keeps the
 * masks: the fast path never decides whether a query is allowed, only how
 * its tables are rewritten.
 *
 * A column is only unmasked when its cell predicate is absent or is the row
 * predicate itself (the row predicate stays in WHERE, so the mask was always
 * true); other cell predicates keep their mask on every path. Under a row
 * predicate, unmasked columns are pinned to their catalog type with
 * `TRY_CAST` (a no-op when the file agrees; a file whose type drifted yields
 * NULLs, never errors), so the type families this check relies on are the
 * ones DuckDB binds.
 *
 * Pure: no I/O.
 */
import type { ParamValue } from './types.js';
import { COMPARISON_TYPES, DEFAULT_CATALOG, asciiLower, type Json, type TableName } from './analyze.js';

/** Families of types whose comparisons DuckDB evaluates without a cast that can fail. */
export type Family = 'num' | 'str' | 'bool' | 'date';

const FAMILIES: ReadonlyMap<string, Family> = new Map([
  ['TINYINT', 'num'],
  ['SMALLINT', 'num'],
  ['INTEGER', 'num'],
  ['BIGINT', 'num'],
  ['UTINYINT', 'num'],
  ['USMALLINT', 'num'],
  ['UINTEGER', 'num'],
  ['UBIGINT', 'num'],
  ['FLOAT', 'num'],
  ['DOUBLE', 'num'],
  ['VARCHAR', 'str'],
  ['BOOLEAN', 'bool'],
  ['DATE', 'date'],
] as const);

/** The canonical DuckDB type name of a catalog column when its family is known (safe to splice: it comes from a fixed list). */
export function pinnedType(catalogType: string): string | null {
  const t = catalogType.trim().toUpperCase();
  return FAMILIES.has(t) ? t : null;
}

export function typeFamily(catalogType: string): Family | null {
  return FAMILIES.get(catalogType.trim().toUpperCase()) ?? null;
}

/**
 * Literal kinds of DuckDB's constants, by the type id `json_serialize_sql`
 * gives them. HUGEINT literals (beyond 64 bits) are left out: next to a
 * DECIMAL they widen to a DECIMAL(38) they do not fit, which fails once per
 * row. DECIMAL literals count only up to 18 digits (see `literalFamily`).
 */
const LITERAL_FAMILIES: ReadonlyMap<string, Family> = new Map([
  ['TINYINT', 'num'],
  ['SMALLINT', 'num'],
  ['INTEGER', 'num'],
  ['BIGINT', 'num'],
  ['DECIMAL', 'num'],
  ['FLOAT', 'num'],
  ['DOUBLE', 'num'],
  ['VARCHAR', 'str'],
] as const);

/** Widest DECIMAL literal admitted: with a 64-bit integer column (20 digits) it still fits DECIMAL(38). */
const MAX_DECIMAL_LITERAL_WIDTH = 18;

const AGGREGATES: ReadonlySet<string> = new Set(['count', 'count_star', 'sum', 'avg', 'mean', 'min', 'max']);

/**
 * A strftime format that formats every DATE DuckDB holds without an error:
 * year, month, day, names of months and weekdays, day of the year and of the
 * week, each checked on the first and last finite dates and on ±infinity
 * (test/gateway/fastpath.test.ts). Text other than `%` is copied as it is.
 */
const STRFTIME_FORMAT = /^(?:[^%]|%[YmdybBaAjwu%]|%-[mdy])*$/;

/** Column names of a catalog table, each with its type family (null: unknown, never compared on the fast path). */
export type ColumnFamilies = ReadonlyMap<string, Family | null>;

/**
 * What a leakproof expression yields: its family (`null` for a NULL literal,
 * comparable with anything; `agg` for an aggregate's result; undefined when
 * unknown), and whether it reads a column (comparisons need one: two literals
 * whose cast fails would fail per row, when some row exists).
 */
interface Operand {
  readonly family: Family | 'null' | 'agg' | undefined;
  readonly column: boolean;
}
const lit = (family: Operand['family']): Operand => ({ family, column: false });
const BOOL: Operand = { family: 'bool', column: true };
const UNKNOWN: Operand = { family: undefined, column: true };

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const empty = (v: unknown): boolean => v === undefined || v === null || v === false || v === '' || (Array.isArray(v) && v.length === 0);

/** The family a parameter's bound value takes (see `bindValues`). */
function paramFamily(v: ParamValue | undefined): Operand['family'] {
  if (v === null) return 'null';
  if (typeof v === 'number') return 'num';
  if (typeof v === 'string') return 'str';
  if (typeof v === 'boolean') return 'bool';
  return undefined;
}

/** A signature of the parameters' families, for plan caches: the fast path depends on them. */
export function paramSignature(params: Readonly<Record<string, ParamValue>>): string {
  return Object.keys(params)
    .sort()
    .map((k) => `${k}:${String(paramFamily(params[k]))}`)
    .join(',');
}

interface Scoped {
  readonly alias: string;
  readonly names: readonly string[];
  readonly columns: ColumnFamilies;
}

/**
 * True when the parsed statement (`statements[0]` of `json_serialize_sql`,
 * before the rewrite) may run over unmasked columns. Never throws: an
 * unexpected shape answers false.
 */
export function isLeakproof(statement: unknown, columnsOf: (name: TableName) => ColumnFamilies | undefined, params: Readonly<Record<string, ParamValue>>): boolean {
  try {
    return check(statement, columnsOf, params);
  } catch {
    return false;
  }
}

/** A call of DuckDB's own function (no catalog, no schema but `main`), written as a call, with no ORDER BY or exported state. */
function plainCall(e: Json): boolean {
  if (str(e['catalog']) !== '' || !['', 'main'].includes(asciiLower(str(e['schema'])))) return false;
  if (e['export_state'] === true || e['is_operator'] === true) return false;
  const ob = e['order_bys'];
  return !(isObj(ob) && list(ob['orders']).length > 0);
}

/** `strftime(<DATE column>, '<format>')` as a string operand, or false (see `STRFTIME_FORMAT`). */
function strftimeOf(e: Json, operand: (child: unknown) => Operand | false): Operand | false {
  if (!plainCall(e) || e['distinct'] === true || !empty(e['filter'])) return false;
  const [input, format, ...rest] = list(e['children']);
  if (rest.length > 0 || !isObj(format) || format['class'] !== 'CONSTANT') return false;
  const value = isObj(format['value']) ? format['value'] : {};
  const type = isObj(value['type']) ? value['type'] : {};
  if (str(type['id']) !== 'VARCHAR' || value['is_null'] === true || !STRFTIME_FORMAT.test(str(value['value']))) return false;
  const date = operand(input);
  return date !== false && date.column && date.family === 'date' ? { family: 'str', column: true } : false;
}

// Long on purpose: the expression check and the clause checks share the query's scope (its tables and columns);
// it reads top to bottom as the list in the module comment.
function check(statement: unknown, columnsOf: (name: TableName) => ColumnFamilies | undefined, params: Readonly<Record<string, ParamValue>>): boolean {
  if (!isObj(statement)) return false;
  const node = statement['node'];
  if (!isObj(node) || node['type'] !== 'SELECT_NODE') return false;
  const cte = node['cte_map'];
  if (isObj(cte) && list(cte['map']).length > 0) return false;
  if (!empty(node['sample']) || !empty(node['qualify'])) return false;

  const scope: Scoped[] = [];
  const from = (ref: unknown): boolean => {
    if (!isObj(ref)) return false;
    if (!empty(ref['sample'])) return false;
    if (ref['type'] === 'JOIN') {
      const kind = str(ref['ref_type']);
      if (kind !== 'REGULAR' && kind !== 'CROSS') return false;
      if (!empty(ref['using_columns'])) return false;
      return from(ref['left']) && from(ref['right']);
    }
    if (ref['type'] !== 'BASE_TABLE') return false;
    if (!empty(ref['column_name_alias']) || !empty(ref['at_clause'])) return false;
    const schema = asciiLower(str(ref['schema_name']));
    if (schema === '') return false;
    const catalog = asciiLower(str(ref['catalog_name'])) || DEFAULT_CATALOG;
    const table = asciiLower(str(ref['table_name']));
    const columns = columnsOf({ catalog, database: schema, table });
    if (columns === undefined) return false;
    const alias = asciiLower(str(ref['alias']));
    scope.push({ alias: alias === '' ? table : alias, names: alias === '' ? [`${schema}.${table}`, `${catalog}.${schema}.${table}`] : [], columns });
    return true;
  };
  if (!from(node['from_table']) || scope.length === 0) return false;

  const allColumns = new Set<string>();
  for (const s of scope) for (const c of s.columns.keys()) allColumns.add(c);

  // A select alias that names a table column could bind in its place (ORDER BY, GROUP BY, HAVING): resolution would be ambiguous.
  for (const e of list(node['select_list'])) {
    if (!isObj(e)) return false;
    const alias = asciiLower(str(e['alias']));
    if (alias === '' || !allColumns.has(alias)) continue;
    const names = e['class'] === 'COLUMN_REF' ? list(e['column_names']).map(str) : [];
    if (names.length === 0 || asciiLower(names[names.length - 1] as string) !== alias) return false;
  }

  const resolve = (names: readonly string[]): Operand['family'] => {
    const lower = names.map(asciiLower);
    const col = lower[lower.length - 1] as string;
    let candidates: Scoped[];
    if (lower.length === 1) candidates = scope.filter((s) => s.columns.has(col));
    else {
      const qualifier = lower.slice(0, -1).join('.');
      candidates = scope.filter((s) => s.alias === qualifier || s.names.includes(qualifier));
    }
    if (candidates.length !== 1) return undefined;
    const family = (candidates[0] as Scoped).columns.get(col);
    return family === null ? undefined : family;
  };

  const compatible = (ops: readonly (Operand | false)[]): boolean => {
    if (ops.some((o) => o === false)) return false;
    const known = ops as readonly Operand[];
    if (known.some((o) => o.family === 'agg')) return true; // evaluated after aggregation, over visible rows only
    if (!known.some((o) => o.column)) return false;
    let family: Family | null = null;
    for (const { family: f } of known) {
      if (f === undefined) return false;
      if (f === 'null') continue;
      if (family === null) family = f as Family;
      else if (family !== f) return false;
    }
    return true;
  };

  // Returns the operand kind of a leakproof expression, or false when it is not leakproof.
  const expr = (e: unknown, inAggregate: boolean): Operand | false => {
    if (!isObj(e)) return false;
    switch (e['class']) {
      case 'COLUMN_REF': {
        const names = list(e['column_names']).map(str);
        if (names.length === 0 || names.length > 4) return false;
        return { family: resolve(names), column: true };
      }
      case 'CONSTANT': {
        const value = e['value'];
        if (!isObj(value)) return false;
        if (value['is_null'] === true) return lit('null');
        const type = isObj(value['type']) ? value['type'] : {};
        const family = LITERAL_FAMILIES.get(str(type['id']));
        if (family === undefined) return false;
        if (type['id'] === 'DECIMAL') {
          const info = type['type_info'];
          const width = isObj(info) ? Number(String(info['width'])) : Number.NaN;
          if (!(width <= MAX_DECIMAL_LITERAL_WIDTH)) return false;
        }
        return lit(family);
      }
      case 'PARAMETER': {
        const id = str(e['identifier']);
        const family = Object.prototype.hasOwnProperty.call(params, id) ? paramFamily(params[id]) : undefined;
        return family === undefined ? false : lit(family);
      }
      case 'CAST': {
        // Only DuckDB's spelling of `true` / `false`: CAST('t' AS BOOLEAN).
        const child = e['child'];
        const target = isObj(e['cast_type']) ? str(e['cast_type']['id']) : '';
        if (target !== 'BOOLEAN' || e['try_cast'] === true || !isObj(child) || child['class'] !== 'CONSTANT') return false;
        const v = isObj(child['value']) ? child['value'] : null;
        return v !== null && (v['value'] === 't' || v['value'] === 'f') ? lit('bool') : false;
      }
      case 'COMPARISON': {
        if (!COMPARISON_TYPES.has(str(e['type']))) return false;
        return compatible([expr(e['left'], inAggregate), expr(e['right'], inAggregate)]) ? BOOL : false;
      }
      case 'BETWEEN': {
        return compatible([expr(e['input'], inAggregate), expr(e['lower'], inAggregate), expr(e['upper'], inAggregate)]) ? BOOL : false;
      }
      case 'CONJUNCTION': {
        const t = str(e['type']);
        if (t !== 'CONJUNCTION_AND' && t !== 'CONJUNCTION_OR') return false;
        for (const c of list(e['children'])) if (expr(c, inAggregate) === false) return false;
        return BOOL;
      }
      case 'OPERATOR': {
        const t = str(e['type']);
        const children = list(e['children']);
        const ops = children.map((c) => expr(c, inAggregate));
        if (ops.includes(false)) return false;
        if (t === 'OPERATOR_NOT' || t === 'OPERATOR_IS_NULL' || t === 'OPERATOR_IS_NOT_NULL') return children.length === 1 ? BOOL : false;
        if (t === 'COMPARE_IN' || t === 'COMPARE_NOT_IN') return children.length >= 2 && compatible(ops) ? BOOL : false;
        return false;
      }
      case 'FUNCTION': {
        const name = asciiLower(str(e['function_name']));
        if (name === 'strftime') return strftimeOf(e, (c) => expr(c, inAggregate));
        if (inAggregate) return false;
        if (!AGGREGATES.has(name) || !plainCall(e)) return false;
        const children = list(e['children']);
        if (children.length > 1) return false;
        for (const c of children) if (expr(c, true) === false) return false;
        if (!empty(e['filter']) && expr(e['filter'], true) === false) return false;
        return { family: 'agg', column: true };
      }
      case 'STAR': {
        if (inAggregate) return false;
        for (const k of ['replace_list', 'expr', 'rename_list', 'columns', 'unpacked']) if (!empty(e[k])) return false;
        return UNKNOWN; // a bare `*`: never comparable
      }
      case 'POSITIONAL_REFERENCE':
        return UNKNOWN; // `#2` is a column whose type is not resolved here: never comparable
      default:
        return false;
    }
  };

  const all = (items: readonly unknown[]): boolean => items.every((x) => expr(x, false) !== false);
  if (!all(list(node['select_list']))) return false;
  if (!empty(node['where_clause']) && expr(node['where_clause'], false) === false) return false;
  if (!all(list(node['group_expressions']))) return false;
  if (!empty(node['having']) && expr(node['having'], false) === false) return false;
  const join = (ref: unknown): boolean => {
    if (!isObj(ref) || ref['type'] !== 'JOIN') return true;
    if (!empty(ref['condition']) && expr(ref['condition'], false) === false) return false;
    return join(ref['left']) && join(ref['right']);
  };
  if (!join(node['from_table'])) return false;
  for (const m of list(node['modifiers'])) {
    if (!isObj(m)) return false;
    switch (m['type']) {
      case 'ORDER_MODIFIER':
        for (const o of list(m['orders'])) if (!isObj(o) || expr(o['expression'], false) === false) return false;
        break;
      case 'LIMIT_MODIFIER':
        for (const k of ['limit', 'offset']) if (!empty(m[k]) && !['CONSTANT', 'PARAMETER'].includes(str((m[k] as Json)['class']))) return false;
        break;
      case 'DISTINCT_MODIFIER':
        if (!all(list(m['distinct_on_targets']))) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

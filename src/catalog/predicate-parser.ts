/**
 * Parses a data-filter predicate (SQL text) into the portable `Predicate` tree
 * with DuckDB's own parser, and refuses everything outside the portable subset.
 *
 * How smuggling is made impossible:
 * 1. The text is never executed. It is appended to the constant
 *    `SELECT 1 FROM t WHERE ` and handed to `json_serialize_sql` as a bound
 *    parameter, which only parses.
 * 2. The result must be exactly one statement whose tree, with the WHERE clause
 *    removed, equals the tree of the constant skeleton (serialized in the same
 *    call). A smuggled `UNION`, `ORDER BY`, `LIMIT`, `GROUP BY`, `QUALIFY`,
 *    sample, CTE or second statement changes that tree and is refused.
 * 3. The WHERE tree is converted node by node through an allow list; anything
 *    not listed (subqueries, table functions, other functions, `*`, parameters,
 *    CASE, lambdas, window functions, collations, casts other than literal
 *    casts) is refused, naming the construct and its position.
 * 4. Callers print the result with `toSql`, which quotes every identifier and
 *    literal itself; comments and the user's spelling never survive.
 *
 * @example
 *   const p = await parsePredicate("region IN ('East', 'West') AND amount > 100");
 *   toSql(p); // ((("region" IN ('East', 'West')) AND ("amount" > 100)))
 */
import { StewardError } from '../errors.js';
import type { ErrorDetail } from '../errors.js';
import { NAME_PATTERN } from '../policy/model.js';
import { columnsOf, PORTABLE_FUNCTIONS } from '../policy/predicate.js';
import type { ComparisonOp, Literal, PortableFunction, Predicate } from '../policy/predicate.js';
import { openDuckDb } from '../lake/duckdb.js';
import type { DuckDb } from '../lake/duckdb.js';

export const MAX_PREDICATE_LENGTH = 4096;
export const MAX_PREDICATE_DEPTH = 64;
export const MAX_IN_LIST = 1000;

const PREFIX = 'SELECT 1 FROM t WHERE ';
// The skeleton differs from a parsed predicate only in its WHERE clause.
const SKELETON = `${PREFIX}x`;
// INVARIANT: PREFIX is ASCII, so its length in characters equals its length in bytes
const PREFIX_BYTES = PREFIX.length;

/** The column names a predicate reads, sorted and unique. */
export const predicateColumns = columnsOf;

/**
 * Parses `sql` into a portable predicate. Uses `db` when given (one parse is one
 * query), otherwise opens and closes a private in-memory DuckDB.
 */
export async function parsePredicate(sql: string, db?: DuckDb): Promise<Predicate> {
  checkText(sql);
  if (db !== undefined) return parseWith(db, sql);
  const own = await openDuckDb({ config: { threads: '1' } });
  try {
    return await parseWith(own, sql);
  } finally {
    own.close();
  }
}

async function parseWith(db: DuckDb, sql: string): Promise<Predicate> {
  const rows = await db.all<{ j: string; skeleton: string }>(
    'SELECT json_serialize_sql($1::VARCHAR) AS j, json_serialize_sql($2::VARCHAR) AS skeleton',
    [PREFIX + sql, SKELETON],
  );
  const row = rows[0];
  if (row === undefined || typeof row.j !== 'string' || typeof row.skeleton !== 'string') {
    throw new StewardError('STEWARD_E_INTERNAL', 'the predicate parser returned no result');
  }
  return convertSerialized(sql, JSON.parse(row.j) as unknown, JSON.parse(row.skeleton) as unknown);
}

function checkText(sql: string): void {
  if (typeof sql !== 'string') throw refuse(null, 'predicate must be a string');
  if (sql.length > MAX_PREDICATE_LENGTH) {
    throw refuse(null, `predicate is ${sql.length} characters long, the maximum is ${MAX_PREDICATE_LENGTH}`);
  }
  if (sql.trim().length === 0) throw refuse(null, 'predicate is empty');
  // C strings end at NUL; refuse rather than let the parser see a shorter text than we do.
  const nul = sql.indexOf('\u0000');
  if (nul >= 0) throw refuse({ text: sql, offset: nul }, 'predicate contains a NUL character');
}

// ------------------------------------------------------------------ positions

interface Where {
  readonly text: string;
  /** Offset in the user's text, in code points (what a user counts as characters), 0-based. */
  readonly offset: number;
}

function refuse(where: Where | null, message: string): StewardError {
  if (where === null) return new StewardError('STEWARD_E_INVALID_PREDICATE', message, { details: [{ message }] });
  const before = Array.from(where.text).slice(0, where.offset).join('');
  const line = before.split('\n').length;
  const column = Array.from(before.slice(before.lastIndexOf('\n') + 1)).length + 1;
  const full = `${message} at position ${where.offset + 1}`;
  const detail: ErrorDetail = { path: `${line}:${column}`, message };
  return new StewardError('STEWARD_E_INVALID_PREDICATE', full, { details: [detail] });
}

/** Expression locations (`query_location`) are byte offsets into the whole statement. */
function whereOf(text: string, statementByteOffset: number | null): Where | null {
  if (statementByteOffset === null) return null;
  const bytes = statementByteOffset - PREFIX_BYTES;
  if (bytes < 0) return null;
  const encoded = Buffer.from(text, 'utf8');
  const clamped = Math.min(bytes, encoded.length);
  return { text, offset: Array.from(encoded.subarray(0, clamped).toString('utf8')).length };
}

/** Parser error positions, unlike expression locations, are code-point offsets into the whole statement. */
function whereOfError(text: string, statementCodePointOffset: number): Where | null {
  const offset = statementCodePointOffset - PREFIX.length;
  if (offset < 0) return null;
  return { text, offset: Math.min(offset, Array.from(text).length) };
}

/** `query_location` is a uint64 whose "unknown" value is 2^64-1; JSON.parse makes that a huge double. */
function locationOf(node: Json): number | null {
  const loc = node['query_location'];
  return typeof loc === 'number' && Number.isSafeInteger(loc) && loc >= 0 ? loc : null;
}

// ----------------------------------------------------------------- JSON access

type Json = { readonly [key: string]: unknown };

function isObject(x: unknown): x is Json {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && deepEqual(a[k], b[k]));
  }
  return false;
}

/** Smallest known location inside a subtree, to point at a smuggled clause. */
function firstLocation(x: unknown): number | null {
  let best: number | null = null;
  const walk = (y: unknown): void => {
    if (Array.isArray(y)) return y.forEach(walk);
    if (!isObject(y)) return;
    const loc = locationOf(y);
    if (loc !== null && loc >= PREFIX_BYTES && (best === null || loc < best)) best = loc;
    Object.values(y).forEach(walk);
  };
  walk(x);
  return best;
}

// ------------------------------------------------------------- statement shape

const CLAUSE_NAMES: Readonly<Record<string, string>> = {
  modifiers: 'ORDER BY, LIMIT or DISTINCT',
  cte_map: 'WITH',
  group_expressions: 'GROUP BY',
  group_sets: 'GROUP BY',
  aggregate_handling: 'GROUP BY',
  having: 'HAVING',
  sample: 'USING SAMPLE',
  qualify: 'QUALIFY',
  select_list: 'select list',
  from_table: 'FROM',
};

/** Exported for the tests and the gateway; `parsePredicate` is the entry point. */
export function convertSerialized(text: string, parsed: unknown, skeleton: unknown): Predicate {
  if (!isObject(parsed)) throw new StewardError('STEWARD_E_INTERNAL', 'unexpected parser output');
  if (parsed['error'] === true) {
    const message = typeof parsed['error_message'] === 'string' ? parsed['error_message'] : 'unknown parser error';
    if (parsed['error_type'] === 'not implemented') {
      // json_serialize_sql refuses non-SELECT statements: a `; DROP ...` after the predicate.
      throw refuse(null, 'predicate must be one expression, not a sequence of statements');
    }
    const pos = typeof parsed['position'] === 'string' || typeof parsed['position'] === 'number' ? Number(parsed['position']) : NaN;
    throw refuse(Number.isSafeInteger(pos) ? whereOfError(text, pos) : null, `syntax error: ${message}`);
  }
  const statements = parsed['statements'];
  if (!Array.isArray(statements) || statements.length !== 1) {
    throw refuse(null, 'predicate must be one expression, not a sequence of statements');
  }
  const statement: unknown = statements[0];
  if (!isObject(skeleton) || !Array.isArray(skeleton['statements'])) {
    throw new StewardError('STEWARD_E_INTERNAL', 'unexpected parser output for the skeleton');
  }
  const base: unknown = skeleton['statements'][0];
  if (!isObject(statement) || !isObject(base) || !isObject(statement['node']) || !isObject(base['node'])) {
    throw new StewardError('STEWARD_E_INTERNAL', 'unexpected parser output');
  }
  const node = statement['node'];
  const baseNode = base['node'];
  if (node['type'] !== 'SELECT_NODE') {
    const op = typeof node['setop_type'] === 'string' ? node['setop_type'] : String(node['type']);
    throw refuse(whereOf(text, firstLocation(node['right'])), `predicate must be one expression; \`${op}\` is not allowed`);
  }
  for (const key of new Set([...Object.keys(statement), ...Object.keys(base)])) {
    if (key !== 'node' && !deepEqual(statement[key], base[key])) {
      if (key === 'named_param_map') throw refuse(null, 'parameter is not allowed in a predicate');
      throw refuse(null, 'predicate must be one expression; it changes the statement around it');
    }
  }
  for (const key of new Set([...Object.keys(node), ...Object.keys(baseNode)])) {
    if (key === 'where_clause') continue;
    if (!deepEqual(node[key], baseNode[key])) {
      const clause = CLAUSE_NAMES[key] ?? key;
      throw refuse(whereOf(text, firstLocation(node[key])), `predicate must be one expression; \`${clause}\` is not allowed`);
    }
  }
  const where = node['where_clause'];
  if (!isObject(where)) throw refuse(null, 'predicate is empty');
  return new Converter(text).convert(where, 1, null);
}

// ------------------------------------------------------------------ conversion

const COMPARISONS: Readonly<Record<string, ComparisonOp>> = {
  COMPARE_EQUAL: '=',
  COMPARE_NOTEQUAL: '<>',
  COMPARE_LESSTHAN: '<',
  COMPARE_LESSTHANOREQUALTO: '<=',
  COMPARE_GREATERTHAN: '>',
  COMPARE_GREATERTHANOREQUALTO: '>=',
};

/** Names users recognise for the constructs DuckDB's tree spells differently. */
const CONSTRUCT_NAMES: Readonly<Record<string, string>> = {
  SUBQUERY: 'subquery',
  STAR: '`*` or COLUMNS(...)',
  PARAMETER: 'parameter',
  WINDOW: 'window function',
  LAMBDA: 'lambda',
  CASE: 'CASE expression',
  COLLATE: 'COLLATE',
  POSITIONAL_REFERENCE: 'positional reference',
  COMPARE_DISTINCT_FROM: 'IS DISTINCT FROM',
  COMPARE_NOT_DISTINCT_FROM: 'IS NOT DISTINCT FROM or IS TRUE',
  '~~*': 'ILIKE',
  '!~~*': 'NOT ILIKE',
  '~~~': 'GLOB',
  like_escape: 'LIKE ... ESCAPE',
  not_like_escape: 'NOT LIKE ... ESCAPE',
  regexp_full_match: 'SIMILAR TO or regexp_full_match',
};

const FUNCTION_ARITY: Readonly<Record<PortableFunction, { min: number; max: number }>> = {
  lower: { min: 1, max: 1 },
  upper: { min: 1, max: 1 },
  trim: { min: 1, max: 1 },
  length: { min: 1, max: 1 },
  abs: { min: 1, max: 1 },
  coalesce: { min: 1, max: 64 },
};

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?$/;
/** Raw identifiers must be ASCII before lowercasing: JS folds `K` (Kelvin sign) to `k`, DuckDB does not. */
const RAW_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isPortableFunction(name: string): name is PortableFunction {
  return (PORTABLE_FUNCTIONS as readonly string[]).includes(name);
}

class Converter {
  constructor(private readonly text: string) {}

  private at(loc: number | null): Where | null {
    return whereOf(this.text, loc);
  }

  private notAllowed(what: string, loc: number | null): StewardError {
    return refuse(this.at(loc), `${what} is not allowed in a predicate`);
  }

  private child(node: Json, key: string, loc: number | null): Json {
    const c = node[key];
    if (!isObject(c)) throw refuse(this.at(loc), `incomplete expression (missing \`${key}\`)`);
    return c;
  }

  private children(node: Json, loc: number | null): Json[] {
    const c = node['children'];
    if (!Array.isArray(c) || !c.every(isObject)) throw refuse(this.at(loc), 'incomplete expression');
    return c;
  }

  convert(node: Json, depth: number, parentLoc: number | null): Predicate {
    const loc = locationOf(node) ?? parentLoc;
    if (depth > MAX_PREDICATE_DEPTH) {
      throw refuse(this.at(loc), `predicate nests deeper than ${MAX_PREDICATE_DEPTH} levels`);
    }
    const rec = (n: Json): Predicate => this.convert(n, depth + 1, loc);
    const cls = String(node['class']);
    const type = String(node['type']);
    if (typeof node['alias'] === 'string' && node['alias'] !== '') throw this.notAllowed('alias', loc);
    switch (cls) {
      case 'COLUMN_REF':
        return this.column(node, loc);
      case 'CONSTANT':
        return { k: 'lit', value: this.constant(node, loc) };
      case 'CAST':
        return { k: 'lit', value: this.cast(node, loc) };
      case 'COMPARISON': {
        const op = COMPARISONS[type];
        if (op === undefined) throw this.notAllowed(CONSTRUCT_NAMES[type] ?? `comparison \`${type}\``, loc);
        return { k: 'cmp', op, left: rec(this.child(node, 'left', loc)), right: rec(this.child(node, 'right', loc)) };
      }
      case 'CONJUNCTION': {
        const args = this.children(node, loc).map(rec);
        if (args.length < 2) throw refuse(this.at(loc), 'incomplete AND/OR');
        if (type === 'CONJUNCTION_AND') return { k: 'and', args };
        if (type === 'CONJUNCTION_OR') return { k: 'or', args };
        throw this.notAllowed(`conjunction \`${type}\``, loc);
      }
      case 'OPERATOR':
        return this.operator(node, type, loc, rec);
      case 'BETWEEN':
        return {
          k: 'between',
          arg: rec(this.child(node, 'input', loc)),
          low: rec(this.child(node, 'lower', loc)),
          high: rec(this.child(node, 'upper', loc)),
          negated: false,
        };
      case 'FUNCTION':
        return this.function(node, loc, rec);
      default:
        throw this.notAllowed(CONSTRUCT_NAMES[cls] ?? `expression \`${cls.toLowerCase()}\``, loc);
    }
  }

  private column(node: Json, loc: number | null): Predicate {
    const names = node['column_names'];
    if (!Array.isArray(names) || !names.every((n): n is string => typeof n === 'string') || names.length === 0) {
      throw refuse(this.at(loc), 'malformed column reference');
    }
    if (names.length !== 1) throw this.notAllowed(`qualified column reference \`${names.join('.')}\``, loc);
    const raw = names[0] as string;
    const name = raw.toLowerCase();
    if (!RAW_NAME.test(raw) || !NAME_PATTERN.test(name)) {
      throw refuse(this.at(loc), `column name \`${raw}\` is not a plain identifier (letters, digits, underscore)`);
    }
    return { k: 'col', name };
  }

  private constant(node: Json, loc: number | null): Literal {
    const v = node['value'];
    if (!isObject(v)) throw refuse(this.at(loc), 'malformed constant');
    if (v['is_null'] === true) return null;
    const typeInfo = v['type'];
    const id = isObject(typeInfo) ? String(typeInfo['id']) : '';
    const value = v['value'];
    switch (id) {
      case 'VARCHAR':
        if (typeof value !== 'string') throw refuse(this.at(loc), 'malformed string constant');
        return value;
      case 'BOOLEAN':
        if (typeof value !== 'boolean') throw refuse(this.at(loc), 'malformed boolean constant');
        return value;
      case 'TINYINT':
      case 'SMALLINT':
      case 'INTEGER':
      case 'BIGINT':
      case 'UTINYINT':
      case 'USMALLINT':
      case 'UINTEGER':
      case 'UBIGINT':
        if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw this.outOfRange(loc);
        return value;
      case 'HUGEINT':
      case 'UHUGEINT':
        throw this.outOfRange(loc);
      case 'FLOAT':
      case 'DOUBLE':
        if (typeof value !== 'number' || !Number.isFinite(value)) throw this.outOfRange(loc);
        return value;
      case 'DECIMAL': {
        const info = isObject(typeInfo) ? typeInfo['type_info'] : null;
        const scale = isObject(info) ? info['scale'] : null;
        if (typeof value !== 'number' || !Number.isSafeInteger(value) || typeof scale !== 'number') throw this.outOfRange(loc);
        return decimalToNumber(value, scale);
      }
      default:
        throw this.notAllowed(`constant of type \`${id}\``, loc);
    }
  }

  private outOfRange(loc: number | null): StewardError {
    return refuse(this.at(loc), 'number is out of the exactly representable range (±9007199254740991 or 15 significant digits)');
  }

  /** Only casts of literals that every dialect reads the same: `TRUE`, `DATE '…'`, `TIMESTAMP '…'`, `'…'::VARCHAR`. */
  private cast(node: Json, loc: number | null): Literal {
    const target = node['cast_type'];
    const id = isObject(target) ? String(target['id']) : '';
    const child = node['child'];
    const trivial = node['try_cast'] === false && isObject(target) && target['type_info'] === null && isObject(child) && child['class'] === 'CONSTANT';
    if (!trivial) throw this.notAllowed(`cast to \`${id}\` (only literals may be cast: DATE '…', TIMESTAMP '…')`, loc);
    const value = this.constant(child, locationOf(child) ?? loc);
    if (value === null) return null;
    if (typeof value !== 'string') throw this.notAllowed(`cast of a non-string literal to \`${id}\``, loc);
    switch (id) {
      case 'VARCHAR':
        return value;
      case 'BOOLEAN': {
        // The parser spells TRUE and FALSE as CAST('t' AS BOOLEAN).
        const v = value.toLowerCase();
        if (v === 't' || v === 'true') return true;
        if (v === 'f' || v === 'false') return false;
        throw refuse(this.at(loc), `\`${value}\` is not a boolean`);
      }
      case 'DATE':
        if (!ISO_DATE.test(value) || Number.isNaN(Date.parse(value))) throw refuse(this.at(loc), `\`${value}\` is not a date (YYYY-MM-DD)`);
        return value;
      case 'TIMESTAMP':
        if (!ISO_TIMESTAMP.test(value) || Number.isNaN(Date.parse(value.replace(' ', 'T')))) {
          throw refuse(this.at(loc), `\`${value}\` is not a timestamp (YYYY-MM-DD HH:MM:SS)`);
        }
        return value;
      default:
        throw this.notAllowed(`cast to \`${id}\``, loc);
    }
  }

  private operator(node: Json, type: string, loc: number | null, rec: (n: Json) => Predicate): Predicate {
    const kids = this.children(node, loc);
    const only = (): Json => {
      const [k] = kids;
      if (k === undefined || kids.length !== 1) throw refuse(this.at(loc), 'malformed operator');
      return k;
    };
    switch (type) {
      case 'OPERATOR_NOT': {
        const inner = rec(only());
        // NOT BETWEEN arrives as NOT(BETWEEN ...); keep the portable tree's own negation.
        if (inner.k === 'between' && !inner.negated) return { ...inner, negated: true };
        return { k: 'not', arg: inner };
      }
      case 'OPERATOR_IS_NULL':
        return { k: 'isnull', arg: rec(only()), negated: false };
      case 'OPERATOR_IS_NOT_NULL':
        return { k: 'isnull', arg: rec(only()), negated: true };
      case 'COMPARE_IN':
      case 'COMPARE_NOT_IN': {
        const [arg, ...list] = kids;
        if (arg === undefined || list.length === 0) throw refuse(this.at(loc), 'IN needs a list');
        if (list.length > MAX_IN_LIST) throw refuse(this.at(loc), `IN list has ${list.length} items, the maximum is ${MAX_IN_LIST}`);
        return { k: 'in', arg: rec(arg), list: list.map(rec), negated: type === 'COMPARE_NOT_IN' };
      }
      case 'OPERATOR_COALESCE':
        return this.portable('coalesce', kids, loc, rec);
      default:
        throw this.notAllowed(CONSTRUCT_NAMES[type] ?? `operator \`${type.replace(/^OPERATOR_|^COMPARE_/, '').toLowerCase()}\``, loc);
    }
  }

  private function(node: Json, loc: number | null, rec: (n: Json) => Predicate): Predicate {
    const name = String(node['function_name']);
    const friendly = CONSTRUCT_NAMES[name] ?? (node['is_operator'] === true ? `operator \`${name}\`` : `function \`${name}\``);
    // The parser itself qualifies some calls with `main` (TRIM(...) syntax); other schemas are refused.
    const plain =
      (node['schema'] === '' || node['schema'] === 'main') &&
      node['catalog'] === '' &&
      node['distinct'] === false &&
      node['filter'] === null &&
      node['export_state'] === false &&
      isObject(node['order_bys']) &&
      Array.isArray(node['order_bys']['orders']) &&
      node['order_bys']['orders'].length === 0;
    if (!plain) throw this.notAllowed(`${friendly} with a schema, DISTINCT, FILTER or ORDER BY`, loc);
    const kids = this.children(node, loc);
    if (name === '~~' || name === '!~~') {
      const [arg, pattern] = kids;
      if (arg === undefined || pattern === undefined || kids.length !== 2) throw refuse(this.at(loc), 'malformed LIKE');
      return { k: 'like', arg: rec(arg), pattern: rec(pattern), negated: name === '!~~' };
    }
    if (isPortableFunction(name)) return this.portable(name, kids, loc, rec);
    throw this.notAllowed(friendly, loc);
  }

  private portable(name: PortableFunction, kids: readonly Json[], loc: number | null, rec: (n: Json) => Predicate): Predicate {
    const { min, max } = FUNCTION_ARITY[name];
    if (kids.length < min || kids.length > max) {
      throw refuse(this.at(loc), `function \`${name}\` takes ${min === max ? min : `${min} to ${max}`} argument${max === 1 ? '' : 's'}, got ${kids.length}`);
    }
    return { k: 'fn', name, args: kids.map(rec) };
  }
}

/** `value / 10^scale` as the nearest double, going through the decimal text so that `0.1` stays `0.1`. */
function decimalToNumber(value: number, scale: number): number {
  if (scale === 0) return value;
  const digits = String(Math.abs(value)).padStart(scale + 1, '0');
  const text = `${value < 0 ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return Number(text);
}

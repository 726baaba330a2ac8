/**
 * Row predicates as a small, portable expression tree.
 *
 * Data filter predicates are written in SQL, parsed by DuckDB's own parser in
 * the shell (`catalog/predicate-parser.ts`) and converted to this tree, which
 * admits only constructs every enforcement point can evaluate identically
 * (DuckDB, PostgreSQL, Redshift, Trino). The core combines trees and prints
 * them back to SQL with one identifier-quoting and one literal-quoting function,
 * never by splicing user text.
 */

export type Literal = string | number | boolean | null;

export type ComparisonOp = '=' | '<>' | '<' | '<=' | '>' | '>=';

/** Functions that behave the same in every dialect we emit. */
export const PORTABLE_FUNCTIONS = ['lower', 'upper', 'trim', 'length', 'abs', 'coalesce'] as const;
export type PortableFunction = (typeof PORTABLE_FUNCTIONS)[number];

export type Predicate =
  | { readonly k: 'col'; readonly name: string }
  | { readonly k: 'lit'; readonly value: Literal }
  | { readonly k: 'cmp'; readonly op: ComparisonOp; readonly left: Predicate; readonly right: Predicate }
  | { readonly k: 'and'; readonly args: readonly Predicate[] }
  | { readonly k: 'or'; readonly args: readonly Predicate[] }
  | { readonly k: 'not'; readonly arg: Predicate }
  | { readonly k: 'in'; readonly arg: Predicate; readonly list: readonly Predicate[]; readonly negated: boolean }
  | { readonly k: 'between'; readonly arg: Predicate; readonly low: Predicate; readonly high: Predicate; readonly negated: boolean }
  | { readonly k: 'isnull'; readonly arg: Predicate; readonly negated: boolean }
  | { readonly k: 'like'; readonly arg: Predicate; readonly pattern: Predicate; readonly negated: boolean }
  | { readonly k: 'fn'; readonly name: PortableFunction; readonly args: readonly Predicate[] };

export type Dialect = 'duckdb' | 'postgres' | 'redshift' | 'trino';

export const TRUE: Predicate = Object.freeze({ k: 'lit', value: true });
export const FALSE: Predicate = Object.freeze({ k: 'lit', value: false });

/** Quotes an identifier for any of our dialects (all use ANSI double quotes). */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * Quotes a literal for `dialect`. Strings double `'`; where a backslash can be
 * an escape character it is escaped too, so the literal means the same whatever
 * the server's settings:
 * - postgres: a string holding `\` is written `E'…'` with `\` doubled. An
 *   escape string reads backslashes the same with `standard_conforming_strings`
 *   on or off; a plain `'…'` does not (off, `\'` would not end it and the
 *   rest of the text would become SQL). Strings without a backslash read the
 *   same either way and stay plain.
 * - redshift: backslash is always an escape character there (no
 *   `standard_conforming_strings`), so it is doubled inside a plain `'…'`.
 * - duckdb, trino: standard SQL, backslash is an ordinary character.
 */
export function quoteLiteral(value: Literal, dialect: Dialect = 'duckdb'): string {
  if (value === null) return 'NULL';
  if (typeof value === 'boolean') return value ? 'TRUE' : 'FALSE';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`non-finite number \`${value}\` in predicate`);
    return String(value);
  }
  const quoted = value.replaceAll("'", "''");
  if (!value.includes('\\') || dialect === 'duckdb' || dialect === 'trino') return `'${quoted}'`;
  const escaped = quoted.replaceAll('\\', '\\\\');
  return dialect === 'postgres' ? `E'${escaped}'` : `'${escaped}'`;
}

/** Prints a predicate as SQL. Every sub-expression is parenthesised, so precedence never depends on the dialect. */
export function toSql(p: Predicate, dialect: Dialect = 'duckdb', qualifier?: string): string {
  const rec = (q: Predicate): string => toSql(q, dialect, qualifier);
  switch (p.k) {
    case 'col':
      return qualifier === undefined ? quoteIdent(p.name) : `${quoteIdent(qualifier)}.${quoteIdent(p.name)}`;
    case 'lit':
      return quoteLiteral(p.value, dialect);
    case 'cmp':
      return `(${rec(p.left)} ${p.op} ${rec(p.right)})`;
    case 'and':
      return p.args.length === 0 ? 'TRUE' : `(${p.args.map(rec).join(' AND ')})`;
    case 'or':
      return p.args.length === 0 ? 'FALSE' : `(${p.args.map(rec).join(' OR ')})`;
    case 'not':
      return `(NOT ${rec(p.arg)})`;
    case 'in':
      return `(${rec(p.arg)} ${p.negated ? 'NOT IN' : 'IN'} (${p.list.map(rec).join(', ')}))`;
    case 'between':
      return `(${rec(p.arg)} ${p.negated ? 'NOT BETWEEN' : 'BETWEEN'} ${rec(p.low)} AND ${rec(p.high)})`;
    case 'isnull':
      return `(${rec(p.arg)} ${p.negated ? 'IS NOT NULL' : 'IS NULL'})`;
    case 'like':
      return `(${rec(p.arg)} ${p.negated ? 'NOT LIKE' : 'LIKE'} ${rec(p.pattern)})`;
    case 'fn':
      return `${p.name}(${p.args.map(rec).join(', ')})`;
    default: {
      const never: never = p;
      return never;
    }
  }
}

/**
 * A column whose cells are visible only where `cell` holds: NULL elsewhere.
 * The gateway's rewrite and Trino's column masks print it the same way.
 */
export function cellMaskSql(column: string, cell: Predicate, dialect: Dialect = 'duckdb'): string {
  return `CASE WHEN ${toSql(cell, dialect)} THEN ${quoteIdent(column)} END`;
}

/** The column names a predicate reads, sorted and unique. */
export function columnsOf(p: Predicate): string[] {
  const out = new Set<string>();
  const walk = (q: Predicate): void => {
    switch (q.k) {
      case 'col':
        out.add(q.name);
        return;
      case 'lit':
        return;
      case 'cmp':
        walk(q.left);
        walk(q.right);
        return;
      case 'and':
      case 'or':
      case 'fn':
        q.args.forEach(walk);
        return;
      case 'not':
        walk(q.arg);
        return;
      case 'in':
        walk(q.arg);
        q.list.forEach(walk);
        return;
      case 'between':
        walk(q.arg);
        walk(q.low);
        walk(q.high);
        return;
      case 'isnull':
        walk(q.arg);
        return;
      case 'like':
        walk(q.arg);
        walk(q.pattern);
        return;
      default: {
        const never: never = q;
        return never;
      }
    }
  };
  walk(p);
  return [...out].sort();
}

/**
 * OR of row predicates where `null` means "all rows". The result is null when
 * any input admits all rows, and duplicates (by printed form) are dropped so
 * that the same filter reached through two grants is applied once.
 */
export function anyOf(preds: readonly (Predicate | null)[]): Predicate | null {
  if (preds.length === 0) return FALSE;
  const seen = new Map<string, Predicate>();
  for (const p of preds) {
    if (p === null) return null;
    const key = toSql(p);
    if (!seen.has(key)) seen.set(key, p);
  }
  const unique = [...seen.values()].sort((a, b) => (toSql(a) < toSql(b) ? -1 : 1));
  return unique.length === 1 ? (unique[0] as Predicate) : { k: 'or', args: unique };
}

/** True when two predicates print the same (structural equality). */
export function samePredicate(a: Predicate | null, b: Predicate | null): boolean {
  if (a === null || b === null) return a === b;
  return toSql(a) === toSql(b);
}

/**
 * The values bound to a governed query: the user's parameters, checked
 * against the ones the query uses and converted to DuckDB values, plus the
 * lake locations the rewrite reads (bound too, never written as literals).
 */
import type { DuckDBValue } from '@duckdb/node-api';
import { StewardError } from '../errors.js';
import { refusal } from './analyze.js';
import type { FileParam, ParamValue, QueryPlan } from './types.js';

/** DuckDB binds for the parameters the query uses; refuses unknown, missing and mixed-style parameters. */
export function bindValues(used: readonly string[], params: Readonly<Record<string, ParamValue>>): QueryPlan['binds'] {
  const given = Object.keys(params);
  for (const name of given) {
    if (!used.includes(name)) throw new StewardError('STEWARD_E_VALIDATION', `unknown parameter \`${name}\`: the query has no \`$${name}\``, { details: [{ path: `params.${name}`, message: 'unknown parameter' }] });
  }
  for (const name of used) {
    if (!Object.hasOwn(params, name)) throw new StewardError('STEWARD_E_VALIDATION', `missing value for parameter \`$${name}\``, { details: [{ path: `params.${name}`, message: 'missing value' }] });
  }
  if (used.length === 0) return undefined;
  const convert = (v: ParamValue): DuckDBValue => {
    if (typeof v === 'number') return Number.isSafeInteger(v) ? BigInt(v) : v;
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
    throw new StewardError('STEWARD_E_VALIDATION', 'parameter values must be strings, numbers, booleans or null');
  };
  if (used.every((n) => /^[0-9]+$/.test(n))) {
    const max = Math.max(...used.map(Number));
    const out: DuckDBValue[] = [];
    for (let i = 1; i <= max; i++) {
      const key = String(i);
      if (!Object.hasOwn(params, key)) throw new StewardError('STEWARD_E_VALIDATION', `missing value for parameter \`$${key}\``);
      out.push(convert(params[key] as ParamValue));
    }
    return out;
  }
  if (used.some((n) => /^[0-9]+$/.test(n))) throw new StewardError('STEWARD_E_VALIDATION', 'a query cannot mix named and numbered parameters');
  // own properties only, so a parameter named `constructor` or `__proto__` is a parameter
  return Object.fromEntries(used.map((name) => [name, convert(params[name] as ParamValue)]));
}

/**
 * The parameters that carry lake locations into the rewritten SQL. The
 * locations are bound, not written as literals, so that preparing the
 * statement cannot bind the readers (DuckDB defers a statement whose table
 * function arguments are unknown to its execution): a prepared `read_parquet`
 * with a literal path is bound at prepare and bound again at execution,
 * reading the footers twice. Numbered after the user's own `$1…$n` when the
 * query uses numbered parameters, otherwise named with an unguessable prefix
 * (DuckDB cannot mix the two styles).
 */
export function fileParameters(userParams: readonly string[], locations: readonly string[], prefix: string): FileParam[] {
  if (userParams.some((n) => n.startsWith(prefix))) throw refusal('parameter names starting with `__steward_` are reserved');
  const numbered = userParams.every((n) => /^[0-9]+$/.test(n));
  const base = userParams.length === 0 ? 0 : Math.max(...userParams.map(Number));
  return locations.map((location, i) => ({ name: numbered ? String(base + i + 1) : `${prefix}${i}`, location }));
}

/** The user's binds plus the lake locations (see `fileParameters`). */
export function withFiles(binds: QueryPlan['binds'], files: readonly FileParam[]): QueryPlan['binds'] {
  if (files.length === 0) return binds;
  if (binds === undefined || Array.isArray(binds)) {
    const out: DuckDBValue[] = binds === undefined ? [] : [...binds];
    for (const f of files) out[Number(f.name) - 1] = f.location;
    for (let i = 0; i < out.length; i++) if (!(i in out)) throw new StewardError('STEWARD_E_INTERNAL', 'file parameters out of order');
    return out;
  }
  return { ...binds, ...Object.fromEntries(files.map((f) => [f.name, f.location])) };
}

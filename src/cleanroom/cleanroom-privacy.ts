/**
 * The privacy budget: differential privacy for aggregation queries.
 *
 * - Every SUM argument is clamped per row to its configured bounds
 *   (`least(greatest(x, min), max)`), so one row moves a SUM by at most
 *   max(|min|, |max|); a COUNT moves by at most 1. A SUM over a column without
 *   bounds, and AVG (a ratio with no such bound), are refused.
 * - Each noised aggregate of the output gets Laplace noise of scale
 *   sensitivity / (ε / k), k the number of noised aggregates in the query, so
 *   one query spends ε in total.
 * - ε is spent from the running member's budget before the query runs (a
 *   failed query still spends it: a failure can reveal as much as a result);
 *   a query that would pass the budget is refused, and the remaining budget is
 *   part of every answer.
 *
 * The sensitivity assumes each row of a member's table reaches at most one
 * joined row per output row; a join that fans a row out weakens the guarantee
 * (docs/cleanrooms.md, "Privacy budget").
 */
import { randomBytes } from 'node:crypto';
import { StewardError, invalid } from '../errors.js';
import { asciiLower, type Json } from '../gateway/analyze.js';
import { firstStatement, parseTree } from '../gateway/parse.js';
import type { Parser } from '../gateway/sandbox.js';
import type { PlainValue } from '../lake/duckdb.js';
import type { CheckedQuery } from './cleanroom-checker.js';
import type { Collaboration, PrivacySettings } from './cleanroom-types.js';

/** One noised output column: its index in the select list and the noise scale. */
export interface NoisedColumn {
  readonly index: number;
  readonly scale: number;
  /** COUNTs stay whole numbers (rounding after the noise is post-processing: it spends nothing). */
  readonly integer: boolean;
}

export function checkPrivacy(c: Collaboration, p: Omit<PrivacySettings, 'spent'>): PrivacySettings {
  if (!(p.epsilonPerQuery > 0 && p.epsilonPerQuery <= p.budget)) throw invalid('epsilonPerQuery', 'must be above 0 and at most the budget');
  p.clamps.forEach((k, i) => {
    const t = c.tables.find((x) => x.name === k.table);
    if (t === undefined || !t.columns.includes(k.column)) throw invalid(`clamps[${i}]`, `\`${k.table}.${k.column}\` is not a configured column`);
    if (!(Number.isFinite(k.min) && Number.isFinite(k.max) && k.min <= k.max)) throw invalid(`clamps[${i}]`, 'needs finite bounds with min <= max');
  });
  return { ...p, spent: c.privacy?.spent ?? {} };
}

export function remaining(p: PrivacySettings, member: string): number {
  return Math.max(0, p.budget - (p.spent[member] ?? 0));
}

/** The settings with ε spent for `member`, or the refusal when its budget cannot cover it. */
export function spend(c: Collaboration, member: string): Collaboration {
  const p = c.privacy;
  if (p === undefined) return c;
  const left = remaining(p, member);
  // A tolerance for float sums (0.1 + 0.2): never enough to run one more query.
  if (p.epsilonPerQuery > left + 1e-9) {
    throw new StewardError('STEWARD_E_FORBIDDEN', `privacy budget of member \`${member}\` is exhausted: ${round(left)} of ${p.budget} left, a query spends ${p.epsilonPerQuery}`);
  }
  return { ...c, privacy: { ...p, spent: { ...p.spent, [member]: round((p.spent[member] ?? 0) + p.epsilonPerQuery) } } };
}

const round = (x: number): number => Math.round(x * 1e9) / 1e9;

/**
 * Clamps every SUM argument in the select list (in place) and answers the
 * columns to noise. Runs after the checker: the query is a plain aggregation.
 */
export async function applyPrivacy(parser: Parser, statement: Json, checked: CheckedQuery, p: PrivacySettings): Promise<NoisedColumn[]> {
  if (checked.kind !== 'aggregation') throw new StewardError('STEWARD_E_FORBIDDEN', 'privacy budget: only aggregation queries run in a collaboration with differential privacy');
  const list = (statement['node'] as Json)['select_list'] as Json[];
  const found: { index: number; sensitivity: number; integer: boolean }[] = [];
  for (const [index, item] of list.entries()) {
    if (item['class'] !== 'FUNCTION') continue;
    const fn = asciiLower(String(item['function_name']));
    if (fn === 'count') found.push({ index, sensitivity: 1, integer: true });
    else if (fn === 'avg') throw new StewardError('STEWARD_E_FORBIDDEN', 'privacy budget: AVG is not allowed with differential privacy: ask for SUM and COUNT');
    else if (fn === 'sum') {
      const child = (item['children'] as Json[])[0] as Json;
      const clamp = clampOf(child, checked, p);
      item['children'] = [await clamped(parser, child, clamp.min, clamp.max)];
      found.push({ index, sensitivity: Math.max(Math.abs(clamp.min), Math.abs(clamp.max)), integer: false });
    }
  }
  const share = p.epsilonPerQuery / Math.max(1, found.length);
  return found.map((f) => ({ index: f.index, scale: f.sensitivity / share, integer: f.integer }));
}

function clampOf(child: Json, checked: CheckedQuery, p: PrivacySettings): { min: number; max: number } {
  const names = Array.isArray(child['column_names']) ? (child['column_names'] as unknown[]).map((n) => asciiLower(String(n))) : [];
  const ref = names.length === 2 ? checked.refs.find((r) => r.alias === names[0]) : names.length === 1 ? checked.refs.find((r) => r.table.columns.some((c) => asciiLower(c) === names[0])) : undefined;
  const column = names[names.length - 1] ?? '';
  const clamp = ref === undefined || child['class'] !== 'COLUMN_REF' ? undefined : p.clamps.find((k) => k.table === ref.table.name && asciiLower(k.column) === column);
  if (clamp === undefined) throw new StewardError('STEWARD_E_FORBIDDEN', 'privacy budget: a SUM must take one column with clamping bounds (set them with the privacy settings)');
  return clamp;
}

/** `least(greatest(<child>, min), max)` as DuckDB's own nodes, the child grafted in. */
async function clamped(parser: Parser, child: Json, min: number, max: number): Promise<Json> {
  const tree = firstStatement(parseTree(await parser.serialize(`SELECT least(greatest(x, ${String(min)}), ${String(max)})`)));
  const least = ((tree['node'] as Json)['select_list'] as Json[])[0] as Json;
  const greatest = (least['children'] as Json[])[0] as Json;
  (greatest['children'] as Json[])[0] = child;
  return least;
}

/** One draw of Laplace(0, scale) from the operating system's random source. */
export function laplace(scale: number): number {
  // 53 random bits → u uniform in (0, 1), never 0 or 1.
  const b = randomBytes(8);
  const hi = b.readUInt32BE(0) >>> 5;
  const lo = b.readUInt32BE(4) >>> 6;
  const u = (hi * 67108864 + lo + 0.5) / 9007199254740992;
  return u < 0.5 ? scale * Math.log(2 * u) : -scale * Math.log(2 * (1 - u));
}

/** The row with noise added to the noised columns (none: the row as it is). */
export function noised(row: PlainValue[], columns: readonly NoisedColumn[]): PlainValue[] {
  if (columns.length === 0) return row;
  const out = [...row];
  for (const c of columns) {
    const v = Number(out[c.index] ?? 0) + laplace(c.scale);
    out[c.index] = c.integer ? Math.round(v) : v;
  }
  return out;
}

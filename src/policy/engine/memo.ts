/**
 * The decision memo: table and column decisions remembered per principal set,
 * valid while `now` stays between two consecutive expiries of the set's
 * grants (nothing else a decision reads changes within one engine). Memoized
 * decisions are deep-frozen because every later caller gets the same object.
 */
import type { Decision } from '../decision.js';
import type { Table } from '../model.js';
import { LEVEL_TABLE, N_ACTIONS } from './constants.js';
import type { Index, PSet, Res, TableLevelRef } from './types.js';
import { columnIndex } from './catalog-index.js';


/** Per principal set; past this many entries its memo starts over (bounds memory on wide scans). */
const MEMO_LIMIT = 200_000;


export function forget(ps: PSet, now: number): void {
  const { lo, hi } = windowOf(ps.expiries, now);
  ps.memo.clear();
  ps.memoSize = 0;
  ps.memoLo = lo;
  ps.memoHi = hi;
}

export function remembered(ix: Index, ps: PSet, ref: TableLevelRef, a: number): Decision | undefined {
  let m = ps.memo.get(ref.table);
  while (m !== undefined && (m.database !== ref.database || m.catalog !== ref.catalog)) m = m.next;
  if (m === undefined) return undefined;
  if (ref.level === 'table') return m.slots[a];
  const col = columnIndex(ix, m.table, ref.column);
  return col < 0 ? undefined : m.slots[N_ACTIONS * (1 + col) + a];
}

export function remember(ix: Index, ps: PSet, r: Res, a: number, decision: Decision): void {
  if (ps.memoSize >= MEMO_LIMIT) forget(ps, ps.memoLo);
  const name = (ix.tables[r.table] as Table).name;
  const head = ps.memo.get(name);
  let m = head;
  while (m !== undefined && m.table !== r.table) m = m.next;
  if (m === undefined) {
    m = { catalog: ix.catNames[r.cat] as string, database: ix.dbNames[r.db] as string, table: r.table, slots: [], next: head };
    ps.memo.set(name, m);
  }
  m.slots[r.level === LEVEL_TABLE ? a : N_ACTIONS * (1 + r.col) + a] = decision;
  ps.memoSize++;
}

export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  Object.freeze(value);
  // Indexed and for-in walks: Object.values would allocate an array per object, and decisions are made by the million.
  if (Array.isArray(value)) for (let i = 0; i < value.length; i++) deepFreeze(value[i]);
  else for (const k in value) deepFreeze((value as Record<string, unknown>)[k]);
  return value;
}

/**
 * Freezes a decision and everything it reaches, as `deepFreeze` would, but
 * field by field: decisions are made by the million, most of what they hold
 * is shared and already frozen, and a generic walk (for-in over every key)
 * was a measurable share of a cold decision.
 */
export function freezeDecision(d: Decision): Decision {
  Object.freeze(d);
  const reasons = d.reasons;
  if (!Object.isFrozen(reasons)) {
    Object.freeze(reasons);
    // a reason holds only strings
    for (let i = 0; i < reasons.length; i++) Object.freeze(reasons[i]);
  }
  Object.freeze(d.matchedGrants);
  Object.freeze(d.deniedBy);
  Object.freeze(d.filters);
  const columns = d.columns;
  if (columns !== undefined && !Object.isFrozen(columns)) {
    Object.freeze(columns);
    for (let i = 0; i < columns.length; i++) deepFreeze(columns[i]);
  }
  if (d.rowFilter !== undefined && d.rowFilter !== null) deepFreeze(d.rowFilter);
  return d;
}

/** The instants around `now` between which no held grant expires: [largest expiry <= now, smallest expiry > now). */
function windowOf(expiries: Float64Array, now: number): { lo: number; hi: number } {
  let l = 0;
  let h = expiries.length;
  while (l < h) {
    const m = (l + h) >>> 1;
    if ((expiries[m] as number) <= now) l = m + 1;
    else h = m;
  }
  return { lo: l === 0 ? Number.NEGATIVE_INFINITY : (expiries[l - 1] as number), hi: l === expiries.length ? Number.POSITIVE_INFINITY : (expiries[l] as number) };
}

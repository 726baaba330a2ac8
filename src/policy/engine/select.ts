/**
 * Deciding SELECT: cell-level union of every source (catalog, database,
 * table, tag, column and filter grants) per column, columns removed by their
 * own guardrails, and the row filter and visible columns of an allow.
 */
import type { ColumnAccess } from '../decision.js';
import type { Predicate } from '../predicate.js';
import { compareText } from '../principals.js';
import type { Status } from './constants.js';
import { ALLOW, DENY_GUARDRAIL, DENY_NO_GRANT, HAS_COLUMNS_GRANTS, HAS_FILTER_GRANTS, HAS_TABLE_GRANTS, I_SELECT, KIND_FILTER, LEVEL_COLUMN, LEVEL_TABLE, NONE, TABLE_STRIDE, TI_COL_BASE, TI_FLAGS, TI_N_COLS, TI_SIG } from './constants.js';
import { collectHeld, denyingGuards, liftsAllOf, mark, mayLift, recordLifts } from './coverage.js';
import type { Index, PSet, Res } from './types.js';
import { programIsEmpty, tagProgram, tagsFor } from './tag-programs.js';

export interface SelectDetails {
  columns: readonly ColumnAccess[];
  rowFilter: Predicate | null;
  filters: readonly string[];
}

/**
 * SELECT on a table or one column. Marks the grants behind visible columns;
 * leaves in `s.denied` the guardrails that denied, and in `s.removed` those
 * that removed columns. With `details`, fills columns, row filter and filters.
 *
 * Kept as one function of about 100 lines on purpose: it is the hot path of
 * every SELECT, and its dozen counters and buffers stay in registers; split
 * up, they would be passed around or boxed in an object per call.
 */
export function selectOn(ix: Index, ps: PSet, r: Res, now: number, details: SelectDetails | null): Status {
  const s = ix.scratch;
  const W = ix.W;
  const removed = s.removed;
  for (let w = 0; w < W; w++) removed[w] = 0;
  if (mayLift(ps, now)) return selectLifting(ix, ps, r, now, details);
  if (denyingGuards(ix, ps, I_SELECT, r)) return DENY_GUARDRAIL;
  const t = r.table;
  const bits = ps.bits;
  const SEL = 1 << I_SELECT;
  // sources covering every column, all rows
  let nWide = collectHeld(ix, bits, ix.byCatalog[r.cat], SEL, now, s.wide, 0);
  nWide = collectHeld(ix, bits, ix.byDb[r.db], SEL, now, s.wide, nWide);
  const ti = t * TABLE_STRIDE;
  const flags = ix.tableInfo[ti + TI_FLAGS] as number;
  if ((flags & HAS_TABLE_GRANTS) !== 0) nWide = collectHeld(ix, bits, ix.byTable[t], SEL, now, s.wide, nWide);
  const nCol = (flags & HAS_COLUMNS_GRANTS) === 0 ? 0 : collectHeld(ix, bits, ix.colGrantsByTable[t], SEL, now, s.colGrants, 0);
  const nFil = (flags & HAS_FILTER_GRANTS) === 0 ? 0 : collectHeld(ix, bits, ix.filterGrantsByTable[t], SEL, now, s.filterGrants, 0);
  s.nFilterGrants = nFil;
  const prog = tagProgram(ix, ps, I_SELECT, r.cat);
  const noTags = programIsEmpty(prog);
  const tSig = ix.tableInfo[ti + TI_SIG] as number;
  const nTagTable = noTags ? 0 : tagsFor(ix, prog, tSig, now, s.tagAtTable);
  const base = ix.tableInfo[ti + TI_COL_BASE] as number;
  const nCols = ix.tableInfo[ti + TI_N_COLS] as number;
  const single = r.level === LEVEL_COLUMN;
  const from = single ? r.col : 0;
  const to = single ? r.col + 1 : nCols;
  const pmBase = I_SELECT * W;
  const scopeBase = r.cat * W;
  const sg = ix.sigGuard;
  const visible = s.visible;
  const allRows = s.allRows;
  let nVisible = 0;
  let anyAllRows = false;
  let hadSource = false;
  let anyRemoved = false;
  let usedTableTags = false;
  for (let c = from; c < to; c++) {
    visible[c] = 0;
    const sig = ix.colSig[base + c] as number;
    let tagList = s.tagAtTable;
    let nTags = nTagTable;
    if (sig !== tSig) {
      tagList = s.tagAtCol;
      nTags = noTags ? 0 : tagsFor(ix, prog, sig, now, tagList);
    }
    let all = nWide > 0 || nTags > 0;
    let some = all;
    for (let i = 0; i < nCol && !all; i++) if ((ix.gColMask[s.colGrants[i] as number] as Uint8Array)[c] === 1) all = some = true;
    for (let i = 0; i < nFil; i++) {
      const f = ix.gFilter[s.filterGrants[i] as number] as number;
      if ((ix.fColMask[f] as Uint8Array)[c] !== 1) continue;
      some = true;
      if (ix.fPred[f] === null) all = true;
    }
    if (!some) continue;
    hadSource = true;
    // the table and its ancestors matched no guardrail, so only a column's own (different) tags can
    if (sig !== tSig && !single) {
      let m = 0;
      for (let w = 0; w < W; w++) {
        const x = (ps.guardMask[pmBase + w] as number) & (ix.scopeGuard[scopeBase + w] as number) & (sg[sig * W + w] as number);
        removed[w] = (removed[w] as number) | x;
        m |= x;
      }
      if (m !== 0) {
        anyRemoved = true;
        continue;
      }
    }
    visible[c] = 1;
    allRows[c] = all ? 1 : 0;
    if (all) anyAllRows = true;
    nVisible++;
    if (sig === tSig) usedTableTags = true;
    else for (let i = 0; i < nTags; i++) mark(s, tagList[i] as number);
    for (let i = 0; i < nCol; i++) {
      const g = s.colGrants[i] as number;
      if ((ix.gColMask[g] as Uint8Array)[c] === 1) mark(s, g);
    }
    for (let i = 0; i < nFil; i++) {
      const g = s.filterGrants[i] as number;
      if ((ix.fColMask[ix.gFilter[g] as number] as Uint8Array)[c] === 1) mark(s, g);
    }
  }
  if (nVisible === 0) {
    if (hadSource && anyRemoved) {
      s.denied.set(removed);
      return DENY_GUARDRAIL;
    }
    return DENY_NO_GRANT;
  }
  for (let i = 0; i < nWide; i++) mark(s, s.wide[i] as number);
  if (usedTableTags) for (let i = 0; i < nTagTable; i++) mark(s, s.tagAtTable[i] as number);
  if (details !== null) fillSelectDetails(ix, t, from, to, anyAllRows, single, details);
  return ALLOW;
}

/**
 * SELECT for a principal set that holds a live grant able to lift a
 * guardrail: the per-source rule of docs/policy.md, source by source. A
 * source survives a column's denying guardrails when its grant lifts them
 * all. Slower than the aggregated path in `selectOn`, and taken only while
 * such a grant is live.
 *
 * About 95 lines: the per-source rule reads best in one piece (collect each
 * column's sources, check the table-level guardrails, then keep per column
 * the sources lifting all of its guardrails); the details are filled apart.
 */
function selectLifting(ix: Index, ps: PSet, r: Res, now: number, details: SelectDetails | null): Status {
  const s = ix.scratch;
  const W = ix.W;
  const t = r.table;
  const single = r.level === LEVEL_COLUMN;
  const ti = t * TABLE_STRIDE;
  const base = ix.tableInfo[ti + TI_COL_BASE] as number;
  const nCols = ix.tableInfo[ti + TI_N_COLS] as number;
  const from = single ? r.col : 0;
  const to = single ? r.col + 1 : nCols;
  const SEL = 1 << I_SELECT;
  const held = (list: readonly number[] | undefined, out: number[]): void => {
    if (list === undefined) return;
    for (const g of list) if (ps.bits[ix.gPid[g] as number] === 1 && ((ix.gPerm[g] as number) & SEL) !== 0 && now < (ix.gExpiry[g] as number)) out.push(g);
  };
  const wide: number[] = [];
  held(ix.byCatalog[r.cat], wide);
  held(ix.byDb[r.db], wide);
  held(ix.byTable[t], wide);
  const cols: number[] = [];
  held(ix.colGrantsByTable[t], cols);
  const fils: number[] = [];
  held(ix.filterGrantsByTable[t], fils);
  const prog = tagProgram(ix, ps, I_SELECT, r.cat);
  // for a table: the guardrails on the table or an ancestor; for a column: those on the column too
  denyingGuards(ix, ps, I_SELECT, single ? r : { level: LEVEL_TABLE, cat: r.cat, db: r.db, table: t, col: -1 });
  const top = s.denied.slice(0, W);
  let topLifted = top.every((w) => w === 0);
  const sources: number[][] = [];
  for (let c = from; c < to; c++) {
    const list = [...wide];
    const n = tagsFor(ix, prog, ix.colSig[base + c] as number, now, s.tagAtTable);
    for (let i = 0; i < n; i++) list.push(s.tagAtTable[i] as number);
    for (const g of cols) if ((ix.gColMask[g] as Uint8Array)[c] === 1) list.push(g);
    for (const g of fils) if ((ix.fColMask[ix.gFilter[g] as number] as Uint8Array)[c] === 1) list.push(g);
    sources.push(list);
    if (!topLifted) for (const g of list) if (liftsAllOf(ix, g, top)) topLifted = true;
  }
  if (!topLifted) {
    s.denied.set(top);
    return DENY_GUARDRAIL;
  }
  const removed = s.removed;
  const visible = s.visible;
  const allRows = s.allRows;
  const dc = new Int32Array(W);
  const cells: number[][] = [];
  let nVisible = 0;
  let anyAllRows = false;
  let anyRemoved = false;
  for (let c = from; c < to; c++) {
    const list = sources[c - from] as number[];
    const cell: number[] = [];
    cells.push(cell);
    visible[c] = 0;
    allRows[c] = 0;
    if (list.length === 0) continue;
    const sig = ix.colSig[base + c] as number;
    for (let w = 0; w < W; w++) {
      dc[w] = single
        ? (top[w] as number)
        : (top[w] as number) | ((ps.guardMask[I_SELECT * W + w] as number) & (ix.scopeGuard[r.cat * W + w] as number) & (ix.sigGuard[sig * W + w] as number));
    }
    let survived = 0;
    let all = false;
    for (const g of list) {
      if (!liftsAllOf(ix, g, dc)) continue;
      survived++;
      mark(s, g);
      recordLifts(ix, g, dc);
      const f = ix.gKind[g] === KIND_FILTER ? (ix.gFilter[g] as number) : -1;
      if (f < 0 || ix.fPred[f] === null) all = true;
      else cell.push(f);
    }
    if (survived === 0) {
      for (const g of list) {
        const lift = ix.gLift[g];
        for (let w = 0; w < W; w++) removed[w] = (removed[w] as number) | ((dc[w] as number) & ~(lift === undefined ? 0 : (lift[w] as number)));
      }
      anyRemoved = true;
      continue;
    }
    visible[c] = 1;
    allRows[c] = all ? 1 : 0;
    if (all) anyAllRows = true;
    nVisible++;
  }
  if (nVisible === 0) {
    if (anyRemoved) {
      s.denied.set(removed);
      return DENY_GUARDRAIL;
    }
    return DENY_NO_GRANT;
  }
  if (details !== null) fillLiftedDetails(ix, t, from, to, single, anyAllRows, fils, cells, details);
  return ALLOW;
}

/** The columns, row filter and filters of a SELECT allowed on the per-source path; `cells[c - from]` are column c's filters. */
function fillLiftedDetails(ix: Index, t: number, from: number, to: number, single: boolean, anyAllRows: boolean, fils: readonly number[], cells: readonly number[][], details: SelectDetails): void {
  const s = ix.scratch;
  const visible = s.visible;
  const allRows = s.allRows;
  const used = new Set<string>();
  for (const g of fils) if (s.grantMark[g] === s.grantEpoch) used.add(ix.fName[ix.gFilter[g] as number] as string);
  details.filters = used.size === 0 ? NONE : [...used].sort(compareText);
  const names = ix.colNames[t] as string[];
  if (single) {
    details.columns = [{ name: names[from] as string, rowFilter: null }];
    details.rowFilter = anyAllRows ? null : orOfFilters(ix, cells[0] as number[]).pred;
    return;
  }
  let rowSql: string | null = null;
  if (anyAllRows) details.rowFilter = null;
  else {
    const every: number[] = [];
    for (let c = from; c < to; c++) if (visible[c] === 1) every.push(...(cells[c - from] as number[]));
    const row = orOfFilters(ix, every);
    details.rowFilter = row.pred;
    rowSql = row.sql;
  }
  const columns: ColumnAccess[] = [];
  for (let c = from; c < to; c++) {
    if (visible[c] !== 1) continue;
    if (allRows[c] === 1) {
      columns.push({ name: names[c] as string, rowFilter: null });
      continue;
    }
    const cell = orOfFilters(ix, cells[c - from] as number[]);
    columns.push({ name: names[c] as string, rowFilter: cell.sql === rowSql ? null : cell.pred });
  }
  details.columns = columns;
}

/** OR of filter predicates (by filter index), built exactly as `anyOf` in predicate.ts would. */
function orOfFilters(ix: Index, filters: readonly number[]): { pred: Predicate; sql: string } {
  const bySql = new Map<string, Predicate>();
  for (const f of filters) {
    const sql = ix.fSql[f] as string;
    if (!bySql.has(sql)) bySql.set(sql, ix.fPred[f] as Predicate);
  }
  const sqls = [...bySql.keys()].sort(compareText);
  if (sqls.length === 1) return { pred: bySql.get(sqls[0] as string) as Predicate, sql: sqls[0] as string };
  return { pred: { k: 'or', args: sqls.map((q) => bySql.get(q) as Predicate) }, sql: `(${sqls.join(' OR ')})` };
}

/** Filters (with a predicate) of the held filter grants that show column `c`. */
function cellFilters(ix: Index, c: number): number[] {
  const s = ix.scratch;
  const out: number[] = [];
  for (let i = 0; i < s.nFilterGrants; i++) {
    const f = ix.gFilter[s.filterGrants[i] as number] as number;
    if ((ix.fColMask[f] as Uint8Array)[c] === 1 && ix.fPred[f] !== null) out.push(f);
  }
  return out;
}

function fillSelectDetails(ix: Index, t: number, from: number, to: number, anyAllRows: boolean, single: boolean, out: SelectDetails): void {
  const s = ix.scratch;
  const names = ix.colNames[t] as string[];
  let filters: readonly string[] = NONE;
  if (s.nFilterGrants > 0) {
    const used = new Set<string>();
    for (let i = 0; i < s.nFilterGrants; i++) {
      const g = s.filterGrants[i] as number;
      if (s.grantMark[g] === s.grantEpoch) used.add(ix.fName[ix.gFilter[g] as number] as string);
    }
    if (used.size > 0) filters = [...used].sort(compareText);
  }
  out.filters = filters;
  if (single) {
    out.columns = cachedColumns(ix, t, 1 << from, from, to) ?? [{ name: names[from] as string, rowFilter: null }];
    out.rowFilter = anyAllRows ? null : orOfFilters(ix, cellFilters(ix, from)).pred;
    return;
  }
  // the common answer, every visible column on all rows, is shared per table and visible set
  let everyAllRows = true;
  let key = 0;
  for (let c = from; c < to; c++) {
    if (s.visible[c] !== 1) continue;
    if (s.allRows[c] !== 1) everyAllRows = false;
    key |= 1 << c;
  }
  if (everyAllRows) {
    out.rowFilter = null;
    out.columns = cachedColumns(ix, t, key, from, to) ?? buildColumns(ix, t, from, to, null);
    return;
  }
  let rowSql: string | null = null;
  if (anyAllRows) out.rowFilter = null;
  else {
    const every: number[] = [];
    for (let c = from; c < to; c++) if (s.visible[c] === 1) every.push(...cellFilters(ix, c));
    const row = orOfFilters(ix, every);
    out.rowFilter = row.pred;
    rowSql = row.sql;
  }
  out.columns = buildColumns(ix, t, from, to, rowSql);
}

function buildColumns(ix: Index, t: number, from: number, to: number, rowSql: string | null): ColumnAccess[] {
  const s = ix.scratch;
  const names = ix.colNames[t] as string[];
  const columns: ColumnAccess[] = [];
  for (let c = from; c < to; c++) {
    if (s.visible[c] !== 1) continue;
    if (s.allRows[c] === 1) {
      columns.push({ name: names[c] as string, rowFilter: null });
      continue;
    }
    const cell = orOfFilters(ix, cellFilters(ix, c));
    columns.push({ name: names[c] as string, rowFilter: cell.sql === rowSql ? null : cell.pred });
  }
  return columns;
}

/**
 * Frozen all-rows column lists, per column-name list and visible-column
 * bitmask (tables of up to 30 columns). Keyed by the name list, which tables
 * with the same columns share, so a table seen for the first time usually
 * finds its answer already built.
 */
function cachedColumns(ix: Index, t: number, key: number, from: number, to: number): readonly ColumnAccess[] | null {
  const names = ix.colNames[t] as string[];
  if (names.length > 30) return null;
  let byKey = ix.fullColumns.get(names);
  if (byKey === undefined) {
    byKey = new Map();
    ix.fullColumns.set(names, byKey);
  }
  let cols = byKey.get(key);
  if (cols === undefined) {
    const list: ColumnAccess[] = [];
    for (let c = from; c < to; c++) if ((key & (1 << c)) !== 0) list.push(Object.freeze({ name: names[c] as string, rowFilter: null }));
    cols = Object.freeze(list);
    byKey.set(key, cols);
  }
  return cols;
}

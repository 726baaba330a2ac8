/**
 * Explaining a NO_GRANT: which expired grants would have covered the
 * request, reported as GRANT_EXPIRED reasons in grant-id order.
 */
import type { Reason } from '../decision.js';
import type { Grant, ResourceRef } from '../model.js';
import { ACTIONS_AT } from '../model.js';
import { reasonText } from '../reference-evaluator.js';
import { ACTION_INDEX, I_DESCRIBE, I_SELECT, KIND_CATALOG, KIND_COLUMNS, KIND_DATABASE, KIND_FILTER, KIND_TABLE, KIND_TAG, LEVEL_COLUMN, LEVEL_DATABASE, LEVEL_TABLE } from './constants.js';
import { carriesA, live } from './coverage.js';
import type { Index, PSet, Res } from './types.js';
import { sigOf } from './resolve.js';
import type { CompiledExpr } from './tag-signatures.js';
import { matchSig } from './tag-signatures.js';

export function expiredReasons(ix: Index, ps: PSet, a: number, r: Res, now: number): Reason[] {
  const out: number[] = [];
  for (const g of ps.timed) {
    if (!live(ix, g, now) && wouldCover(ix, g, a, r)) out.push(g);
  }
  out.sort((x, y) => (ix.gRank[x] as number) - (ix.gRank[y] as number));
  return out.map((g): Reason => {
    const grant = ix.grants[g] as Grant;
    return { code: 'GRANT_EXPIRED', grantId: grant.id, message: reasonText.expired(grant) };
  });
}

const LEVEL_NAMES = ['catalog', 'database', 'table', 'column'] as const;

/** Whether grant `g`, ignoring expiry and guardrails, would give action `a` on `r`. */
function wouldCover(ix: Index, g: number, a: number, r: Res): boolean {
  if (a === I_DESCRIBE) {
    return ACTIONS_AT[LEVEL_NAMES[r.level] as ResourceRef['level']].some((p) => {
      const i = ACTION_INDEX[p];
      return i === I_DESCRIBE ? coversContainer(ix, g, I_DESCRIBE, r) : wouldCover(ix, g, i, r);
    });
  }
  if (a === I_SELECT && r.level >= LEVEL_TABLE) {
    const from = r.level === LEVEL_COLUMN ? r.col : 0;
    const to = r.level === LEVEL_COLUMN ? r.col + 1 : (ix.colNames[r.table] as string[]).length;
    for (let c = from; c < to; c++) if (sourceOf(ix, g, r, c)) return true;
    return false;
  }
  return coversContainer(ix, g, a, r);
}

function coversContainer(ix: Index, g: number, a: number, r: Res): boolean {
  if (!carriesA(ix, g, a)) return false;
  switch (ix.gKind[g]) {
    case KIND_CATALOG:
      return ix.gCat[g] === r.cat;
    case KIND_DATABASE:
      return r.level >= LEVEL_DATABASE && ix.gDb[g] === r.db;
    case KIND_TABLE:
      return r.level >= LEVEL_TABLE && ix.gTable[g] === r.table;
    case KIND_TAG:
      return r.level >= LEVEL_DATABASE && ix.gCat[g] === r.cat && matchSig(ix.gExpr[g] as CompiledExpr, ix.sigVals, ix.nKeys, sigOf(ix, r));
    default:
      return false;
  }
}

function sourceOf(ix: Index, g: number, r: Res, c: number): boolean {
  if (!carriesA(ix, g, I_SELECT)) return false;
  switch (ix.gKind[g]) {
    case KIND_COLUMNS:
      return ix.gTable[g] === r.table && (ix.gColMask[g] as Uint8Array)[c] === 1;
    case KIND_FILTER: {
      const f = ix.gFilter[g] as number;
      return f >= 0 && ix.gTable[g] === r.table && (ix.fColMask[f] as Uint8Array)[c] === 1;
    }
    default:
      return coversContainer(ix, g, I_SELECT, { level: LEVEL_COLUMN, cat: r.cat, db: r.db, table: r.table, col: c });
  }
}

/**
 * Grant coverage at decision time: which live grants of a principal set
 * cover a resource for an action, which guardrails deny it, and which
 * time-bound grants lift them. Matched grants are collected by marking into
 * the index's scratch buffers, not into fresh arrays.
 */
import type { Reason } from '../decision.js';
import type { Grant } from '../model.js';
import { compareText } from '../principals.js';
import { liftedReason } from '../reference-evaluator.js';
import { HAS_TABLE_GRANTS, LEVEL_CATALOG, LEVEL_COLUMN, LEVEL_DATABASE, LEVEL_TABLE, TABLE_STRIDE, TI_COL_BASE, TI_FLAGS } from './constants.js';
import type { GuardAnswer, Index, PSet, Res, Scratch } from './types.js';
import { sigOf } from './resolve.js';
import { tagProgram, tagsFor } from './tag-programs.js';

/**
 * Computes into `s.denied` the guardrails of the set that deny action `a` on
 * `r`: in scope for its catalog and matching it or an ancestor. Returns
 * whether there is any. A catalog's signature is 0, which only the empty
 * expression matches.
 */
export function denyingGuards(ix: Index, ps: PSet, a: number, r: Res): boolean {
  if (r.level >= LEVEL_TABLE) return denyingGuardsOnTable(ix, ps, a, r);
  const W = ix.W;
  const out = ix.scratch.denied;
  const sg = ix.sigGuard;
  const pm = ps.guardMask;
  const scope = ix.scopeGuard;
  const s1 = r.level >= LEVEL_DATABASE ? (ix.dbSig[r.db] as number) * W : 0;
  let any = 0;
  for (let w = 0; w < W; w++) {
    const m = (pm[a * W + w] as number) & (scope[r.cat * W + w] as number) & ((sg[w] as number) | (sg[s1 + w] as number));
    out[w] = m;
    any |= m;
  }
  return any !== 0;
}

/** `denyingGuards` for a table or column: the table's precomputed guardrails, and for a column its own signature's. */
function denyingGuardsOnTable(ix: Index, ps: PSet, a: number, r: Res): boolean {
  const W = ix.W;
  const out = ix.scratch.denied;
  const pm = ps.guardMask;
  const scope = ix.scopeGuard;
  const tg = ix.tableGuard;
  const t0 = r.table * W;
  const sg = ix.sigGuard;
  const s3 = r.level === LEVEL_COLUMN ? (ix.colSig[(ix.tableInfo[r.table * TABLE_STRIDE + TI_COL_BASE] as number) + r.col] as number) * W : 0;
  let any = 0;
  for (let w = 0; w < W; w++) {
    const m = (pm[a * W + w] as number) & (scope[r.cat * W + w] as number) & ((tg[t0 + w] as number) | (sg[s3 + w] as number));
    out[w] = m;
    any |= m;
  }
  return any !== 0;
}

/** The shared, frozen reasons and names for the guardrails set in `words`. */
export function guardAnswer(ix: Index, words: Int32Array): GuardAnswer {
  const W = ix.W;
  let h = 0;
  for (let w = 0; w < W; w++) h = (Math.imul(h, 31) + (words[w] as number)) | 0;
  let list = ix.guardAnswers.get(h);
  if (list !== undefined) {
    for (const e of list) {
      let same = true;
      for (let w = 0; w < W && same; w++) same = e.words[w] === words[w];
      if (same) return e;
    }
  } else ix.guardAnswers.set(h, (list = []));
  const guards = guardsIn(ix, words);
  const answer: GuardAnswer = {
    words: words.slice(0, W),
    reasons: Object.freeze(guards.map((g) => ix.grReason[g] as Reason)),
    deniedBy: Object.freeze(guards.map((g) => ix.grName[g] as string)),
  };
  list.push(answer);
  return answer;
}

/** Guardrail indices set in a bitmask, in name order. */
export function guardsIn(ix: Index, words: Int32Array): number[] {
  const out: number[] = [];
  const order = ix.grByRank;
  for (let i = 0; i < order.length; i++) {
    const g = order[i] as number;
    if (((words[g >>> 5] as number) & (1 << (g & 31))) !== 0) out.push(g);
  }
  return out;
}

/** Whether grant `g` lifts every guardrail set in `words` (true when none is). */
export function liftsAllOf(ix: Index, g: number, words: Int32Array): boolean {
  const m = ix.gLift[g];
  for (let w = 0; w < ix.W; w++) {
    const need = words[w] as number;
    if (need !== 0 && (m === undefined || (need & ~(m[w] as number)) !== 0)) return false;
  }
  return true;
}

/** Records that grant `g` was used through every guardrail set in `words`. */
export function recordLifts(ix: Index, g: number, words: Int32Array): void {
  const l = ix.scratch.lifted;
  for (let gr = 0; gr < ix.grName.length; gr++) if (((words[gr >>> 5] as number) & (1 << (gr & 31))) !== 0) l.push(gr, g);
}

/** GUARDRAIL_LIFTED reasons of the last decision, by guardrail name then grant id. */
export function liftReasons(ix: Index): Reason[] {
  const l = ix.scratch.lifted;
  const byKey = new Map<string, Reason>();
  for (let i = 0; i < l.length; i += 2) {
    const name = ix.grName[l[i] as number] as string;
    const grant = ix.grants[l[i + 1] as number] as Grant;
    const key = `${name}\u0000${grant.id}`;
    if (!byKey.has(key)) byKey.set(key, liftedReason(name, grant));
  }
  return [...byKey.entries()].sort(([a], [b]) => compareText(a, b)).map(([, r]) => r);
}

/** Whether some held grant that lifts a guardrail may still be live. */
export function mayLift(ps: PSet, now: number): boolean {
  return now < ps.liftUntil;
}

export function live(ix: Index, g: number, now: number): boolean {
  return now < (ix.gExpiry[g] as number);
}

export function carriesA(ix: Index, g: number, a: number): boolean {
  return ((ix.gPerm[g] as number) & (1 << a)) !== 0;
}

export function mark(s: Scratch, g: number): void {
  if (s.grantMark[g] !== s.grantEpoch) {
    s.grantMark[g] = s.grantEpoch;
    s.matched.push(g);
  }
}

/** Starts a new matched-grants collection (one per top-level request). */
export function resetMatched(s: Scratch): void {
  s.grantEpoch++;
  s.matched.length = 0;
}

function markHeld(ix: Index, bits: Uint8Array, list: readonly number[] | undefined, bit: number, now: number): number {
  if (list === undefined) return 0;
  const s = ix.scratch;
  let n = 0;
  for (let i = 0; i < list.length; i++) {
    const g = list[i] as number;
    if (bits[ix.gPid[g] as number] === 1 && ((ix.gPerm[g] as number) & bit) !== 0 && now < (ix.gExpiry[g] as number)) {
      mark(s, g);
      n++;
    }
  }
  return n;
}

/** Marks the live catalog, database, table and tag grants of the set that cover `r` and carry `a`; returns how many. */
export function markContainerGrants(ix: Index, ps: PSet, a: number, r: Res, now: number): number {
  return markContainerGrantsOf(ix, ps, a, 1 << a, r, now);
}

/** `markContainerGrants` for the actions of `bit` (a mask), whose tag program is `program`. */
export function markContainerGrantsOf(ix: Index, ps: PSet, program: number, bit: number, r: Res, now: number): number {
  let n = markHeld(ix, ps.bits, ix.byCatalog[r.cat], bit, now);
  if (r.level === LEVEL_CATALOG) return n;
  n += markHeld(ix, ps.bits, ix.byDb[r.db], bit, now);
  if (r.level >= LEVEL_TABLE && ((ix.tableInfo[r.table * TABLE_STRIDE + TI_FLAGS] as number) & HAS_TABLE_GRANTS) !== 0) {
    n += markHeld(ix, ps.bits, ix.byTable[r.table], bit, now);
  }
  const s = ix.scratch;
  const found = tagsFor(ix, tagProgram(ix, ps, program, r.cat), sigOf(ix, r), now, s.tagAtCol);
  for (let i = 0; i < found; i++) mark(s, s.tagAtCol[i] as number);
  return n + found;
}

/** Copies the held, live grants of `list` carrying `bit` into `out` from `n`; returns the new count. */
export function collectHeld(ix: Index, bits: Uint8Array, list: readonly number[] | undefined, bit: number, now: number, out: Int32Array, n: number): number {
  if (list === undefined) return n;
  for (let i = 0; i < list.length; i++) {
    const g = list[i] as number;
    if (bits[ix.gPid[g] as number] === 1 && ((ix.gPerm[g] as number) & bit) !== 0 && now < (ix.gExpiry[g] as number)) out[n++] = g;
  }
  return n;
}

/** The live catalog, database, table and tag grants of the set that cover `r` and carry `a`, unmarked. */
export function containerGrants(ix: Index, ps: PSet, a: number, r: Res, now: number): number[] {
  const bit = 1 << a;
  const out: number[] = [];
  const add = (list: readonly number[] | undefined): void => {
    if (list === undefined) return;
    for (const g of list) if (ps.bits[ix.gPid[g] as number] === 1 && ((ix.gPerm[g] as number) & bit) !== 0 && now < (ix.gExpiry[g] as number)) out.push(g);
  };
  add(ix.byCatalog[r.cat]);
  if (r.level === LEVEL_CATALOG) return out;
  add(ix.byDb[r.db]);
  if (r.level >= LEVEL_TABLE) add(ix.byTable[r.table]);
  const buf = new Int32Array(ix.grants.length + 1);
  const found = tagsFor(ix, tagProgram(ix, ps, a, r.cat), sigOf(ix, r), now, buf);
  for (let i = 0; i < found; i++) out.push(buf[i] as number);
  return out;
}

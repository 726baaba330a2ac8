/**
 * Reach: per principal set, what any grant it holds could touch, whatever
 * the action and whether or not the grant has expired. A table or column
 * outside it (and under no guardrail of the set for the action) can only be
 * NO_GRANT, with no GRANT_EXPIRED reason: no held grant, live or expired,
 * would cover it. On a large catalog most requests are such denies, and
 * recognising one takes a handful of byte reads instead of the tag matching
 * of every column.
 *
 * Built lazily, on a set's first table-level request, from the grants the
 * set holds: the databases its catalog and database grants cover, and per
 * catalog the tag signatures its tag grants there match (a bit per
 * database, then a bit per signature and catalog: one Int32Array, about
 * 16 KB per set on the bench world, read with no object in between; each tag
 * grant's matching signatures are a bitmap built once per engine, since
 * group grants are held by many sets). Tables named by a grant of anyone are
 * always decided in full.
 */
import { HAS_COLUMNS_GRANTS, HAS_FILTER_GRANTS, HAS_TABLE_GRANTS, KIND_CATALOG, KIND_DATABASE, KIND_TAG, TABLE_STRIDE, TI_CAT, TI_COL_BASE, TI_COL_SIG, TI_DB, TI_FLAGS, TI_N_COL_SIGS, TI_N_COLS, TI_SIG } from './constants.js';
import type { Index, PSet, Reach } from './types.js';
import type { CompiledExpr } from './tag-signatures.js';


const NAMED = HAS_TABLE_GRANTS | HAS_COLUMNS_GRANTS | HAS_FILTER_GRANTS;

export function reachOf(ix: Index, ps: PSet): Reach {
  if (ps.reach !== undefined) return ps.reach;
  const words = sigWords(ix);
  const reach = new Int32Array(dbWords(ix) + words * ix.catNames.length);
  const sigsAt = dbWords(ix);
  for (let i = 0; i < ps.held.length; i++) {
    const g = ps.held[i] as number;
    if (ix.gPerm[g] === 0) continue;
    switch (ix.gKind[g]) {
      case KIND_CATALOG: {
        const c = ix.gCat[g] as number;
        if (c >= 0) for (const d of ix.dbsOfCat[c] as number[]) setDb(reach, d);
        break;
      }
      case KIND_DATABASE:
        if ((ix.gDb[g] as number) >= 0) setDb(reach, ix.gDb[g] as number);
        break;
      case KIND_TAG: {
        const c = ix.gCat[g] as number;
        if (c < 0) break;
        const bits = matchingSigs(ix, g, words);
        const at = sigsAt + c * words;
        for (let w = 0; w < words; w++) reach[at + w] = (reach[at + w] as number) | (bits[w] as number);
        break;
      }
      default:
        // table, column and filter grants: their tables carry a NAMED flag and are decided in full
        break;
    }
  }
  ps.reach = reach;
  return reach;
}

/** Words of the database part of a reach: one bit per database. */
function dbWords(ix: Index): number {
  return (ix.dbNames.length + 31) >>> 5;
}

/** Words per catalog of the signature part of a reach: one bit per signature. */
function sigWords(ix: Index): number {
  return (ix.nSigs + 31) >>> 5;
}

function setDb(reach: Int32Array, d: number): void {
  reach[d >>> 5] = (reach[d >>> 5] as number) | (1 << (d & 31));
}

/**
 * The signatures tag grant `g` matches, one bit each, computed once per
 * engine: group grants are held by many sets, and OR-ing whole words into a
 * set's reach is cheaper than setting a bit per signature.
 */
function matchingSigs(ix: Index, g: number, words: number): Int32Array {
  let bits = ix.tagGrantSigs[g];
  if (bits === undefined) {
    bits = sigBitsOf(ix, ix.gExpr[g] as CompiledExpr, words);
    ix.tagGrantSigs[g] = bits;
  }
  return bits;
}

/**
 * The signatures an expression matches, as `matchSig` decides them, built
 * from the per key=value bitmaps: per key the union of its values' sets,
 * then the intersection over keys. A few thousand word operations, where
 * matching each candidate signature took tens of thousands of reads.
 */
function sigBitsOf(ix: Index, ce: CompiledExpr, words: number): Int32Array {
  const out = new Int32Array(words);
  if (ce.never) return out;
  if (ce.keys.length === 0) {
    for (let sg = 0; sg < ix.nSigs; sg++) out[sg >>> 5] = (out[sg >>> 5] as number) | (1 << (sg & 31));
    return out;
  }
  const kv = ix.kvSigBits;
  const any = new Int32Array(words);
  for (let k = 0; k < ce.keys.length; k++) {
    any.fill(0);
    for (let j = ce.starts[k] as number; j < (ce.starts[k + 1] as number); j++) {
      const at = (ce.vals[j] as number) * words;
      for (let w = 0; w < words; w++) any[w] = (any[w] as number) | (kv[at + w] as number);
    }
    if (k === 0) out.set(any);
    else for (let w = 0; w < words; w++) out[w] = (out[w] as number) & (any[w] as number);
  }
  return out;
}

/** Whether no grant of the set, in any state, could cover table `t` or any of its columns. */
export function outOfReach(ix: Index, ps: PSet, t: number): boolean {
  const info = ix.tableInfo;
  const at = t * TABLE_STRIDE;
  if (((info[at + TI_FLAGS] as number) & NAMED) !== 0) return false;
  const reach = ps.reach ?? reachOf(ix, ps);
  const db = info[at + TI_DB] as number;
  if (((reach[db >>> 5] as number) & (1 << (db & 31))) !== 0) return false;
  const w0 = dbWords(ix) + (info[at + TI_CAT] as number) * sigWords(ix);
  const tSig = info[at + TI_SIG] as number;
  if (((reach[w0 + (tSig >>> 5)] as number) & (1 << (tSig & 31))) !== 0) return false;
  const nColSigs = info[at + TI_N_COL_SIGS] as number;
  if (nColSigs === 0) return true;
  const cSig = info[at + TI_COL_SIG] as number;
  if (((reach[w0 + (cSig >>> 5)] as number) & (1 << (cSig & 31))) !== 0) return false;
  if (nColSigs === 1) return true;
  // several column signatures: walk the columns (rare)
  const base = info[at + TI_COL_BASE] as number;
  const end = base + (info[at + TI_N_COLS] as number);
  const colSig = ix.colSig;
  for (let i = base; i < end; i++) {
    const sg = colSig[i] as number;
    if (((reach[w0 + (sg >>> 5)] as number) & (1 << (sg & 31))) !== 0) return false;
  }
  return true;
}

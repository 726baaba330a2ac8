/**
 * Tag programs: per principal set, action and catalog, the tag grants that
 * set holds, indexed by the value of each expression's first key, so a
 * signature is only matched against grants it could satisfy. Built lazily on
 * first use.
 */
import type { PSet } from './principal-sets.js';
import type { CompiledExpr } from './tag-signatures.js';
import { matchSig } from './tag-signatures.js';
import type { Index } from './world-index.js';

/**
 * The tag grants of one principal set for one action in one catalog, indexed by
 * the value of each expression's first key: a signature only needs to be
 * matched against grants whose first key it carries with an allowed value.
 */
export interface TagProgram {
  /** Grants with the empty expression: they match every signature. */
  readonly always: Int32Array;
  /** The distinct first keys. */
  readonly pivotKeys: Int32Array;
  /** key=value id -> grants whose first key allows that value. */
  readonly byValue: Map<number, Int32Array>;
}

export function tagProgram(ix: Index, ps: PSet, a: number, cat: number): TagProgram {
  const at = a * ix.catNames.length + cat;
  const cached = ps.tagPrograms[at];
  if (cached !== undefined) return cached;
  const always: number[] = [];
  const pivots = new Set<number>();
  const byValue = new Map<number, number[]>();
  for (const g of ps.tagBy[a] as Int32Array) {
    const ce = ix.gExpr[g] as CompiledExpr;
    if (ix.gCat[g] !== cat || ce.never) continue;
    if (ce.keys.length === 0) {
      always.push(g);
      continue;
    }
    pivots.add(ce.keys[0] as number);
    for (let j = ce.starts[0] as number; j < (ce.starts[1] as number); j++) {
      const v = ce.vals[j] as number;
      const list = byValue.get(v);
      if (list === undefined) byValue.set(v, [g]);
      else if (list[list.length - 1] !== g) list.push(g);
    }
  }
  const program: TagProgram = {
    always: Int32Array.from(always),
    pivotKeys: Int32Array.from(pivots),
    byValue: new Map([...byValue].map(([v, list]) => [v, Int32Array.from(list)])),
  };
  ps.tagPrograms[at] = program;
  return program;
}

/** Writes to `out` the live grants of the program matching signature `sig`; returns how many. */
export function tagsFor(ix: Index, prog: TagProgram, sig: number, now: number, out: Int32Array): number {
  let n = 0;
  const always = prog.always;
  for (let i = 0; i < always.length; i++) {
    const g = always[i] as number;
    if (now < (ix.gExpiry[g] as number)) out[n++] = g;
  }
  const pivots = prog.pivotKeys;
  const base = sig * ix.nKeys;
  for (let k = 0; k < pivots.length; k++) {
    const v = ix.sigVals[base + (pivots[k] as number)] as number;
    if (v < 0) continue;
    const list = prog.byValue.get(v);
    if (list === undefined) continue;
    for (let i = 0; i < list.length; i++) {
      const g = list[i] as number;
      if (now < (ix.gExpiry[g] as number) && matchSig(ix.gExpr[g] as CompiledExpr, ix.sigVals, ix.nKeys, sig)) out[n++] = g;
    }
  }
  return n;
}

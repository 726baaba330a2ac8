/**
 * Tag programs: per principal set, action and catalog, the tag grants that
 * set holds, indexed by the value of each expression's first key, so a
 * signature is only matched against grants it could satisfy. Built lazily on
 * first use.
 */
import type { Index, PSet, TagProgram } from './types.js';
import type { CompiledExpr } from './tag-signatures.js';


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
  const program: TagProgram = { always: Int32Array.from(always), pivotKeys: Int32Array.from(pivots), ...layOut(ix, byValue) };
  ps.tagPrograms[at] = program;
  return program;
}

/** The flat layout of `byValue` (key=value id -> grants, in grant order). */
function layOut(ix: Index, byValue: Map<number, number[]>): Pick<TagProgram, 'start' | 'code' | 'expiry'> {
  const nKv = ix.kvSigs.length;
  const start = new Int32Array(nKv + 1);
  const code: number[] = [];
  const expiry: number[] = [];
  for (let v = 0; v < nKv; v++) {
    start[v] = code.length;
    const grants = byValue.get(v);
    if (grants === undefined) continue;
    for (const g of grants) {
      const ce = ix.gExpr[g] as CompiledExpr;
      code.push(g, expiry.length, ce.keys.length);
      expiry.push(ix.gExpiry[g] as number);
      for (let k = 0; k < ce.keys.length; k++) {
        const from = ce.starts[k] as number;
        const to = ce.starts[k + 1] as number;
        code.push(ce.keys[k] as number, to - from);
        for (let j = from; j < to; j++) code.push(ce.vals[j] as number);
      }
    }
  }
  start[nKv] = code.length;
  return { start, code: Int32Array.from(code), expiry: Float64Array.from(expiry) };
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
  const sigVals = ix.sigVals;
  const base = sig * ix.nKeys;
  const code = prog.code;
  for (let k = 0; k < pivots.length; k++) {
    const v = sigVals[base + (pivots[k] as number)] as number;
    if (v < 0) continue;
    const end = prog.start[v + 1] as number;
    for (let i = prog.start[v] as number; i < end; ) {
      const g = code[i] as number;
      let ok = now < (prog.expiry[code[i + 1] as number] as number);
      const nk = code[i + 2] as number;
      i += 3;
      // every key of the expression must be on the signature with one of its values
      for (let q = 0; q < nk; q++) {
        const nv = code[i + 1] as number;
        if (ok) {
          const have = sigVals[base + (code[i] as number)] as number;
          ok = false;
          if (have >= 0) for (let x = i + 2; x < i + 2 + nv; x++) if (code[x] === have) ok = true;
        }
        i += 2 + nv;
      }
      if (ok) out[n++] = g;
    }
  }
  return n;
}

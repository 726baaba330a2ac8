/**
 * Tag programs: per principal set, action and catalog, the tag grants that
 * set holds, indexed by the value of each expression's first key, so a
 * signature is only matched against grants it could satisfy. Built lazily on
 * first use.
 *
 * A program depends only on its list of grants, and principal sets in the
 * same groups hold the same lists (on the bench world the 51k (set,
 * action, catalog) triples need about 8k programs), so programs are shared through
 * `ix.tagProgramsByGrants`: a set's first request in a catalog usually finds
 * its program built, and the programs deciding requests stay in cache.
 *
 * A program is one Int32Array (see `TagProgram` in types.ts): a decision
 * reads one object and adjacent words, where a program of five typed arrays
 * took five dependent loads before its first word.
 */
import type { Index, PSet, TagProgram } from './types.js';
import type { CompiledExpr } from './tag-signatures.js';

/** The program of no grant: nothing always matches, no pivot key. */
const EMPTY_PROGRAM: TagProgram = new Int32Array(2);
// layout offsets (see TagProgram)
const N_ALWAYS = 0;

export function tagProgram(ix: Index, ps: PSet, a: number, cat: number): TagProgram {
  const at = a * ix.catNames.length + cat;
  const cached = ps.tagPrograms[at];
  if (cached !== undefined) return cached;
  const grants: number[] = [];
  for (const g of ps.tagBy[a] as Int32Array) {
    if (ix.gCat[g] !== cat || (ix.gExpr[g] as CompiledExpr).never) continue;
    grants.push(g);
  }
  let program = EMPTY_PROGRAM;
  if (grants.length > 0) {
    const key = grants.join(',');
    const shared = ix.tagProgramsByGrants.get(key);
    if (shared !== undefined) program = shared;
    else {
      program = compile(ix, grants);
      ix.tagProgramsByGrants.set(key, program);
    }
  }
  ps.tagPrograms[at] = program;
  return program;
}

/** The program of `grants` (tag grants of one catalog, none `never`, in grant order). */
function compile(ix: Index, grants: readonly number[]): TagProgram {
  const always: number[] = [];
  const pivots = new Set<number>();
  const byValue = new Map<number, number[]>();
  for (const g of grants) {
    const ce = ix.gExpr[g] as CompiledExpr;
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
  const out: number[] = [always.length, ...always, pivots.size, ...pivots];
  if (pivots.size > 0) layOut(ix, byValue, out);
  return Int32Array.from(out);
}

/** Appends the start table and the entries of `byValue` (key=value id -> grants, in grant order). */
function layOut(ix: Index, byValue: Map<number, number[]>, out: number[]): void {
  const nKv = ix.kvSigs.length;
  const startAt = out.length;
  for (let v = 0; v <= nKv; v++) out.push(0);
  for (let v = 0; v < nKv; v++) {
    out[startAt + v] = out.length;
    const grants = byValue.get(v);
    if (grants === undefined) continue;
    for (const g of grants) {
      const ce = ix.gExpr[g] as CompiledExpr;
      out.push(g, ce.keys.length);
      for (let k = 0; k < ce.keys.length; k++) {
        const from = ce.starts[k] as number;
        const to = ce.starts[k + 1] as number;
        out.push(ce.keys[k] as number, to - from);
        for (let j = from; j < to; j++) out.push(ce.vals[j] as number);
      }
    }
  }
  out[startAt + nKv] = out.length;
}

/** Whether the program holds no grant at all (then no signature matches). */
export function programIsEmpty(prog: TagProgram): boolean {
  return prog[N_ALWAYS] === 0 && prog[(prog[N_ALWAYS] as number) + 1] === 0;
}

/** Writes to `out` the live grants of the program matching signature `sig`; returns how many. */
export function tagsFor(ix: Index, prog: TagProgram, sig: number, now: number, out: Int32Array): number {
  let n = 0;
  const expiry = ix.gExpiry;
  const nAlways = prog[N_ALWAYS] as number;
  for (let i = 1; i <= nAlways; i++) {
    const g = prog[i] as number;
    if (now < (expiry[g] as number)) out[n++] = g;
  }
  const pivotsAt = nAlways + 1;
  const nPivots = prog[pivotsAt] as number;
  if (nPivots === 0) return n;
  const startAt = pivotsAt + 1 + nPivots;
  const sigVals = ix.sigVals;
  const base = sig * ix.nKeys;
  for (let k = 1; k <= nPivots; k++) {
    const v = sigVals[base + (prog[pivotsAt + k] as number)] as number;
    if (v < 0) continue;
    const end = prog[startAt + v + 1] as number;
    for (let i = prog[startAt + v] as number; i < end; ) {
      const g = prog[i] as number;
      let ok = now < (expiry[g] as number);
      const nk = prog[i + 1] as number;
      i += 2;
      // every key of the expression must be on the signature with one of its values
      for (let q = 0; q < nk; q++) {
        const nv = prog[i + 1] as number;
        if (ok) {
          const have = sigVals[base + (prog[i] as number)] as number;
          ok = false;
          if (have >= 0) for (let x = i + 2; x < i + 2 + nv; x++) if (prog[x] === have) ok = true;
        }
        i += 2 + nv;
      }
      if (ok) out[n++] = g;
    }
  }
  return n;
}

/**
 * Principals: ids for every principal ref in the world, and per requesting
 * principal its principal set (itself and every group it reaches) as a
 * bitmap, with the guardrails that apply to it and the grants it holds.
 * Sets are built on first use and kept for the engine's life.
 */
import { N_ACTIONS, N_PROGRAM_ACTIONS, TABLE_DESCRIBE_SET_MASK } from './constants.js';
import type { TableMemo } from './memo.js';
import type { Reach } from './reach.js';
import type { TagProgram } from './tag-programs.js';
import type { Index } from './world-index.js';
import { emptyLists, pushAt } from './catalog-index.js';
import { setBit } from './guardrail-index.js';
import type { PolicyWorld, PrincipalRef } from '../model.js';

/** Every principal ref mentioned anywhere in the world, interned; ids exist whether or not the principal does. */
export interface PrincipalIndex {
  readonly pidByRef: Map<string, number>;
  readonly pRef: PrincipalRef[];
  readonly pExists: Uint8Array;
  readonly pParents: number[][];
  readonly pChildren: number[][];
  readonly pIsUser: Uint8Array;
}

export function buildPrincipalIndex(world: PolicyWorld): PrincipalIndex {
  const pidByRef = new Map<string, number>();
  const pRef: PrincipalRef[] = [];
  const pExistsL: number[] = [];
  const pIsUserL: number[] = [];
  const pid = (ref: PrincipalRef): number => {
    let id = pidByRef.get(ref);
    if (id === undefined) {
      id = pRef.length;
      pidByRef.set(ref, id);
      pRef.push(ref);
      pExistsL.push(0);
      pIsUserL.push(ref.startsWith('user:') ? 1 : 0);
    }
    return id;
  };
  for (const u of world.users) pExistsL[pid(`user:${u.name}`)] = 1;
  for (const g of world.groups) pExistsL[pid(`group:${g.name}`)] = 1;
  const edges: [number, number][] = world.memberships.map((m) => [pid(m.member), pid(`group:${m.group}`)]);
  for (const g of world.grants) pid(g.principal);
  for (const gr of world.guardrails) {
    for (const p of gr.principals ?? []) pid(p);
    for (const p of gr.except ?? []) pid(p);
  }
  const nP = pRef.length;
  const pParents = emptyLists(nP);
  const pChildren = emptyLists(nP);
  for (const [member, group] of edges) {
    pushAt(pParents, member, group);
    pushAt(pChildren, group, member);
  }
  return { pidByRef, pRef, pExists: Uint8Array.from(pExistsL), pParents, pChildren, pIsUser: Uint8Array.from(pIsUserL) };
}

export interface PSet {
  readonly bits: Uint8Array;
  readonly members: Int32Array;
  /** By action index: the guardrails that apply to this set and deny that action, as a bitmask of W words per action. */
  readonly guardMask: Int32Array;
  /** By action index (and the pseudo-action I_TABLE_DESCRIBE_SET): tag grants held through the set that carry the action. */
  readonly tagBy: readonly Int32Array[];
  /** Every grant held through the set. */
  readonly held: Int32Array;
  /** Held grants with a `notAfter`: the only ones that can explain a deny as GRANT_EXPIRED. */
  readonly timed: Int32Array;
  /** Lazily built, by `action * catalogs + catalog`. */
  readonly tagPrograms: (TagProgram | undefined)[];
  /**
   * The latest expiry among held grants that lift a guardrail. While `now` is
   * before it, decisions take the per-source path; otherwise no lift can
   * apply and the fast path is exact.
   */
  readonly liftUntil: number;
  /** The distinct finite expiries of held grants, sorted: decisions only change when `now` crosses one. */
  readonly expiries: Float64Array;
  /**
   * Table and column decisions already made, by bare table name. Keyed by the
   * name the caller passes, so a remembered decision costs one lookup: no
   * catalog, database or table resolution.
   */
  readonly memo: Map<string, TableMemo>;
  /** The window of `now` (between two consecutive expiries of held grants) in which every remembered decision holds. */
  memoLo: number;
  memoHi: number;
  memoSize: number;
  /** What any held grant could touch (see reach.ts); built on the set's first table-level request. */
  reach: Reach | undefined;
}

export function psetOf(ix: Index, pid: number): PSet {
  const cached = ix.psets[pid];
  if (cached !== undefined) return cached;
  const bits = new Uint8Array(ix.pRef.length);
  const members: number[] = [pid];
  bits[pid] = 1;
  for (let i = 0; i < members.length; i++) {
    for (const parent of ix.pParents[members[i] as number] as number[]) {
      if (bits[parent] === 1) continue;
      bits[parent] = 1;
      members.push(parent);
    }
  }
  const W = ix.W;
  const guardMask = new Int32Array(N_ACTIONS * W);
  for (let g = 0; g < ix.grName.length; g++) {
    const inc = ix.grPrincipals[g];
    const included = inc === null || inc === undefined || inc.some((p) => bits[p] === 1);
    const excepted = (ix.grExcept[g] as Int32Array).some((p) => bits[p] === 1);
    if (!included || excepted) continue;
    for (let a = 0; a < N_ACTIONS; a++) if (((ix.grActions[g] as number) & (1 << a)) !== 0) setBit(guardMask, a * W, g);
  }
  const tagBy: number[][] = emptyLists(N_PROGRAM_ACTIONS);
  for (const g of ix.tagGrants) {
    if (bits[ix.gPid[g] as number] !== 1) continue;
    for (let a = 0; a < N_ACTIONS; a++) if (((ix.gPerm[g] as number) & (1 << a)) !== 0) (tagBy[a] as number[]).push(g);
    if (((ix.gPerm[g] as number) & TABLE_DESCRIBE_SET_MASK) !== 0) (tagBy[N_ACTIONS] as number[]).push(g);
  }
  const held: number[] = [];
  let liftUntil = Number.NEGATIVE_INFINITY;
  for (let g = 0; g < ix.grants.length; g++) {
    if (bits[ix.gPid[g] as number] !== 1) continue;
    held.push(g);
    if (ix.gLift[g] !== undefined) liftUntil = Math.max(liftUntil, ix.gExpiry[g] as number);
  }
  const ps: PSet = {
    bits,
    members: Int32Array.from(members),
    guardMask,
    tagBy: tagBy.map((l) => Int32Array.from(l)),
    held: Int32Array.from(held),
    timed: Int32Array.from(held.filter((g) => (ix.gExpiry[g] as number) !== Number.POSITIVE_INFINITY)),
    tagPrograms: new Array<TagProgram | undefined>(N_PROGRAM_ACTIONS * ix.catNames.length),
    liftUntil,
    expiries: Float64Array.from(new Set(held.map((g) => ix.gExpiry[g] as number).filter((e) => Number.isFinite(e)))).sort(),
    memo: new Map(),
    memoLo: 0,
    memoHi: -1,
    memoSize: 0,
    reach: undefined,
  };
  ix.psets[pid] = ps;
  return ps;
}

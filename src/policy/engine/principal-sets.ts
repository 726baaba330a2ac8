/**
 * Principals: ids for every principal ref in the world, and per requesting
 * principal its principal set (itself and every group it reaches) as a
 * bitmap, with the guardrails that apply to it and the grants it holds.
 * Sets are built on first use and kept for the engine's life.
 */
import { N_ACTIONS, N_PROGRAM_ACTIONS, TABLE_DESCRIBE_SET_MASK } from './constants.js';
import type { Index, PrincipalIndex, PSet, TagProgram } from './types.js';
import { emptyLists, pushAt } from './catalog-index.js';
import { setBit } from './guardrail-index.js';
import type { PolicyWorld, PrincipalRef } from '../model.js';


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

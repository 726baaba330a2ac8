/**
 * Listings built on decisions: a principal's effective permissions (walked
 * bottom-up so a container's DESCRIBE reuses its children's answers) and who
 * can access a resource (the users under a principal holding a live grant in
 * its catalog, each decided).
 */
import type { AccessHolder, AuthorizeRequest, Decision, EffectivePermission, Reason } from '../decision.js';
import type { Grant, Permission, PrincipalRef, ResourceRef, Table } from '../model.js';
import { ACTIONS_AT, resourceToString } from '../model.js';
import { compareText } from '../principals.js';
import { effectiveEntry, reasonText } from '../reference-evaluator.js';
import { allowDecision, authorizeWith, denyDecision } from './authorize.js';
import { I_DESCRIBE, LEVEL_CATALOG, LEVEL_DATABASE, LEVEL_TABLE, NONE } from './constants.js';
import { containerGrants, denyingGuards, guardsIn, liftsAllOf, live, mark, markContainerGrants, mayLift, recordLifts, resetMatched } from './coverage.js';
import { candidateDbs, candidateTablesByDb } from './describe.js';
import { expiredReasons } from './explain.js';
import type { Index, PSet, Res } from './types.js';
import { psetOf } from './principal-sets.js';

/**
 * DESCRIBE on `r` when the grants behind the other allowed actions there and
 * behind DESCRIBE inside it are already known (`implied`): the same decision
 * `authorize` makes, without walking the subtree again.
 */
function describeFrom(ix: Index, ps: PSet, req: AuthorizeRequest, r: Res, now: number, implied: readonly number[]): Decision {
  const s = ix.scratch;
  const resource = resourceToString(req.resource);
  resetMatched(s);
  s.lifted.length = 0;
  if (denyingGuards(ix, ps, I_DESCRIBE, r)) {
    if (mayLift(ps, now)) {
      const denied = s.denied.slice(0, ix.W);
      for (const g of [...containerGrants(ix, ps, I_DESCRIBE, r, now), ...implied]) {
        if (!liftsAllOf(ix, g, denied)) continue;
        mark(s, g);
        recordLifts(ix, g, denied);
      }
      s.denied.set(denied);
      if (s.matched.length > 0) return allowDecision(ix, req, resource, null);
    }
    const guards = guardsIn(ix, s.denied);
    return denyDecision(req, guards.map((g) => ix.grReason[g] as Reason), guards.map((g) => ix.grName[g] as string), resource);
  }
  markContainerGrants(ix, ps, I_DESCRIBE, r, now);
  for (const g of implied) mark(s, g);
  if (s.matched.length > 0) return allowDecision(ix, req, resource, null);
  const noGrant: Reason = { code: 'NO_GRANT', message: reasonText.noGrant(req.principal, 'DESCRIBE', resource) };
  return denyDecision(req, [noGrant, ...expiredReasons(ix, ps, I_DESCRIBE, r, now)], NONE, resource);
}

/**
 * Effective permissions, bottom-up: tables first, then their database, then
 * the catalog, so DESCRIBE of a container reuses what its children answered.
 * Only containers some live grant of the set can reach are visited; all
 * others would answer NO_GRANT to everything.
 */
export function effectivePermissionsWith(ix: Index, principal: PrincipalRef, now: number): EffectivePermission[] {
  const pid = ix.pidByRef.get(principal);
  if (pid === undefined || ix.pExists[pid] !== 1) return [];
  const ps = psetOf(ix, pid);
  const out: EffectivePermission[] = [];
  // matched grants are always held, so the held ones are all a lookup needs
  const byId = new Map<string, number>();
  for (const g of ps.held) byId.set((ix.grants[g] as Grant).id, g);
  const lookup = (id: string): Grant | undefined => {
    const g = byId.get(id);
    return g === undefined ? undefined : (ix.grants[g] as Grant);
  };
  const allowedGrants = (decisions: readonly Decision[], into: number[]): void => {
    for (const d of decisions) if (d.decision === 'allow') for (const id of d.matchedGrants) into.push(byId.get(id) as number);
  };
  const entry = (ref: ResourceRef, others: readonly Permission[], res: Res, inside: readonly number[]): number[] => {
    const decisions = others.map((action) => authorizeWith(ix, { principal, action, resource: ref, now }));
    const implied = [...inside];
    allowedGrants(decisions, implied);
    const describe = describeFrom(ix, ps, { principal, action: 'DESCRIBE', resource: ref, now }, res, now, implied);
    const e = effectiveEntry(ref, [describe, ...decisions], lookup);
    if (e !== null) out.push(e);
    const matched: number[] = [];
    allowedGrants([describe], matched);
    return matched;
  };
  const cats = new Set<number>();
  for (const g of ps.held) if (live(ix, g, now) && (ix.gCat[g] as number) >= 0) cats.add(ix.gCat[g] as number);
  for (const cat of cats) {
    const catalog = ix.catNames[cat] as string;
    const catRes: Res = { level: LEVEL_CATALOG, cat, db: -1, table: -1, col: -1 };
    const inCatalog: number[] = [];
    const tablesOf = candidateTablesByDb(ix, ps, cat, now);
    for (const d of candidateDbs(ix, ps, catRes, now)) {
      const database = ix.dbNames[d] as string;
      const dbRes: Res = { level: LEVEL_DATABASE, cat, db: d, table: -1, col: -1 };
      const inDb: number[] = [];
      for (const t of tablesOf(d)) {
        const table = (ix.tables[t] as Table).name;
        const tRes: Res = { level: LEVEL_TABLE, cat, db: d, table: t, col: -1 };
        inDb.push(...entry({ level: 'table', catalog, database, table }, TABLE_ACTIONS, tRes, NONE));
      }
      inCatalog.push(...entry({ level: 'database', catalog, database }, DATABASE_ACTIONS, dbRes, inDb));
    }
    entry({ level: 'catalog', catalog }, NONE, catRes, inCatalog);
  }
  return out.sort((x, y) => compareText(x.resource, y.resource));
}

const TABLE_ACTIONS: readonly Permission[] = ACTIONS_AT.table.filter((a) => a !== 'DESCRIBE');
const DATABASE_ACTIONS: readonly Permission[] = ACTIONS_AT.database.filter((a) => a !== 'DESCRIBE');

/** Users in the reverse closure of a principal. */
function usersUnder(ix: Index, pid: number, out: Set<number>): void {
  const seen = new Set<number>([pid]);
  const queue = [pid];
  for (let i = 0; i < queue.length; i++) {
    const p = queue[i] as number;
    if (ix.pIsUser[p] === 1 && ix.pExists[p] === 1) out.add(p);
    for (const c of ix.pChildren[p] as number[]) {
      if (seen.has(c)) continue;
      seen.add(c);
      queue.push(c);
    }
  }
}

export function whoCanAccessWith(ix: Index, resource: ResourceRef, action: Permission, now: number): AccessHolder[] {
  const cat = ix.catByName.get(resource.catalog);
  if (cat === undefined) return [];
  const users = new Set<number>();
  const principals = new Set<number>();
  ix.grants.forEach((_, g) => {
    if (ix.gCat[g] === cat && live(ix, g, now)) principals.add(ix.gPid[g] as number);
  });
  for (const p of principals) usersUnder(ix, p, users);
  const out: AccessHolder[] = [];
  const text = resourceToString(resource);
  for (const u of users) {
    const principal = ix.pRef[u] as PrincipalRef;
    const decision = authorizeWith(ix, { principal, action, resource, now }, text);
    if (decision.decision === 'allow') out.push({ principal, decision });
  }
  return out.sort((x, y) => compareText(x.principal, y.principal));
}

/**
 * Deciding DESCRIBE and the other non-SELECT actions. DESCRIBE is implied
 * by any allowed action on the resource or DESCRIBE anywhere inside it, so
 * it walks down only into the databases and tables some live grant of the
 * set can reach.
 */
import type { Status } from './constants.js';
import { ALLOW, DENY_GUARDRAIL, DENY_NO_GRANT, I_DESCRIBE, I_TABLE_DESCRIBE_SET, TABLE_DESCRIBE_SET_MASK, KIND_CATALOG, KIND_DATABASE, KIND_TAG, LEVEL_CATALOG, LEVEL_DATABASE, LEVEL_TABLE } from './constants.js';
import { containerGrants, denyingGuards, liftsAllOf, live, mark, markContainerGrants, markContainerGrantsOf, mayLift, recordLifts, resetMatched } from './coverage.js';
import type { Index, PSet, Res, Scratch } from './types.js';
import { selectOn } from './select.js';
import type { CompiledExpr } from './tag-signatures.js';
import { sigsMatching, tablesMatching } from './tag-signatures.js';

/**
 * INSERT, DELETE, ALTER, DROP, CREATE_TABLE: marks the covering grants on
 * allow. Under a denying guardrail, only grants lifting all of them count.
 */
export function plainOn(ix: Index, ps: PSet, a: number, r: Res, now: number): Status {
  if (denyingGuards(ix, ps, a, r)) {
    if (!mayLift(ps, now)) return DENY_GUARDRAIL;
    const denied = ix.scratch.denied.slice(0, ix.W);
    return liftWith(ix, containerGrants(ix, ps, a, r, now), denied);
  }
  return markContainerGrants(ix, ps, a, r, now) > 0 ? ALLOW : DENY_NO_GRANT;
}

const TABLE_OTHER_ACTIONS = [2, 3, 4, 5] as const;

/** True when no guardrail of the set denies any of `actions` on `r`. */
function noGuardrailOn(ix: Index, ps: PSet, actions: readonly number[], r: Res): boolean {
  for (const a of actions) if (denyingGuards(ix, ps, a, r)) return false;
  return true;
}
const DATABASE_OTHER_ACTIONS = [4, 5, 6] as const;

/**
 * DESCRIBE: the union of direct DESCRIBE grants, grants behind any other
 * allowed action, and grants behind DESCRIBE on children, all marked into
 * `s.matched`. Only the outermost call's status is meaningful: nested calls
 * just add marks.
 */
export function describeOn(ix: Index, ps: PSet, r: Res, now: number): Status {
  const s = ix.scratch;
  if (denyingGuards(ix, ps, I_DESCRIBE, r)) {
    if (!mayLift(ps, now)) return DENY_GUARDRAIL;
    // collect the candidates on their own, then keep those lifting every denying guardrail
    const denied = s.denied.slice(0, ix.W);
    const outer = [...s.matched];
    resetMatched(s);
    describeCandidates(ix, ps, r, now);
    const candidates = [...s.matched];
    resetMatched(s);
    for (const g of outer) mark(s, g);
    s.lifted.length = 0;
    return liftWith(ix, candidates, denied);
  }
  describeCandidates(ix, ps, r, now);
  // lifts recorded by the implied decisions are theirs; DESCRIBE reports only its own
  s.lifted.length = 0;
  return s.matched.length > 0 ? ALLOW : DENY_NO_GRANT;
}

/** Marks every DESCRIBE candidate of `r`: direct grants, grants behind other allowed actions, and DESCRIBE inside. */
function describeCandidates(ix: Index, ps: PSet, r: Res, now: number): void {
  const s = ix.scratch;
  if (r.level === LEVEL_TABLE && !mayLift(ps, now) && noGuardrailOn(ix, ps, TABLE_OTHER_ACTIONS, r)) {
    // the common case: nothing denies the other actions, so their grants and DESCRIBE's are
    // one union, collected in one pass over the covering lists instead of five
    markContainerGrantsOf(ix, ps, I_TABLE_DESCRIBE_SET, TABLE_DESCRIBE_SET_MASK, r, now);
    selectOn(ix, ps, r, now, null);
    return;
  }
  markContainerGrants(ix, ps, I_DESCRIBE, r, now);
  switch (r.level) {
    case LEVEL_TABLE:
      selectOn(ix, ps, r, now, null);
      for (const a of TABLE_OTHER_ACTIONS) plainOn(ix, ps, a, r, now);
      break;
    case LEVEL_DATABASE: {
      for (const a of DATABASE_OTHER_ACTIONS) plainOn(ix, ps, a, r, now);
      const cap = reachable(ix, ps, r, now);
      for (const t of candidateTables(ix, ps, r, now)) {
        if (allMarked(s, cap)) break;
        describeOn(ix, ps, { level: LEVEL_TABLE, cat: r.cat, db: r.db, table: t, col: -1 }, now);
      }
      break;
    }
    case LEVEL_CATALOG: {
      const cap = reachable(ix, ps, r, now);
      for (const d of candidateDbs(ix, ps, r, now)) {
        if (allMarked(s, cap)) break;
        describeOn(ix, ps, { level: LEVEL_DATABASE, cat: r.cat, db: d, table: -1, col: -1 }, now);
      }
      break;
    }
    default:
      break;
  }
}

/** True when every grant of `cap` is already matched: nothing further down can add one. */
function allMarked(s: Scratch, cap: readonly number[]): boolean {
  for (const g of cap) if (s.grantMark[g] !== s.grantEpoch) return false;
  return true;
}

/** Live grants of the set that could touch anything in the subtree of `r`: every grant DESCRIBE can match there is one of these. */
function reachable(ix: Index, ps: PSet, r: Res, now: number): number[] {
  const out: number[] = [];
  for (const g of ps.held) {
    if (!live(ix, g, now) || ix.gCat[g] !== r.cat || ix.gPerm[g] === 0) continue;
    switch (ix.gKind[g]) {
      case KIND_CATALOG:
      case KIND_TAG:
        out.push(g);
        break;
      case KIND_DATABASE:
        if (r.level === LEVEL_CATALOG || ix.gDb[g] === r.db) out.push(g);
        break;
      default: {
        const t = ix.gTable[g] as number;
        if (t >= 0 && (r.level === LEVEL_CATALOG || ix.tableDb[t] === r.db)) out.push(g);
      }
    }
  }
  return out;
}

/**
 * Tables of database `r.db` that some live grant of the set could reach, in
 * id order. Every other table has no grant anywhere inside it, so all its
 * decisions are NO_GRANT.
 */
function candidateTables(ix: Index, ps: PSet, r: Res, now: number): number[] {
  return candidateTablesByDb(ix, ps, r.cat, now)(r.db);
}

/**
 * `candidateTables` for every database of a catalog from one pass over the
 * set's grants. Effective permissions walk every database; asking per
 * database matched every tag grant against the whole catalog again each time.
 */
export function candidateTablesByDb(ix: Index, ps: PSet, cat: number, now: number): (db: number) => number[] {
  let everywhere = false;
  const whole = new Set<number>();
  const hits = new Map<number, Set<number>>();
  const hit = (t: number): void => {
    const d = ix.tableDb[t] as number;
    let set = hits.get(d);
    if (set === undefined) hits.set(d, (set = new Set()));
    set.add(t);
  };
  for (const g of ps.held) {
    if (!live(ix, g, now) || ix.gCat[g] !== cat) continue;
    switch (ix.gKind[g]) {
      case KIND_CATALOG:
        everywhere = true;
        break;
      case KIND_DATABASE:
        if ((ix.gDb[g] as number) >= 0) whole.add(ix.gDb[g] as number);
        break;
      case KIND_TAG:
        for (const t of tablesMatching(ix, ix.gExpr[g] as CompiledExpr)) if (ix.tableCat[t] === cat) hit(t);
        break;
      default: {
        const t = ix.gTable[g] as number;
        if (t >= 0) hit(t);
      }
    }
  }
  return (db) => (everywhere || whole.has(db) ? (ix.tablesOfDb[db] as number[]) : [...(hits.get(db) ?? [])].sort((x, y) => x - y));
}

export function candidateDbs(ix: Index, ps: PSet, r: Res, now: number): number[] {
  const all = ix.dbsOfCat[r.cat] as number[];
  const hit = new Set<number>();
  for (const g of ps.held) {
    if (!live(ix, g, now) || ix.gCat[g] !== r.cat) continue;
    switch (ix.gKind[g]) {
      case KIND_CATALOG:
        return all;
      case KIND_DATABASE:
        if ((ix.gDb[g] as number) >= 0) hit.add(ix.gDb[g] as number);
        break;
      case KIND_TAG: {
        const ce = ix.gExpr[g] as CompiledExpr;
        // the signature index spans catalogs; a tag grant only reaches its own
        for (const sg of sigsMatching(ix, ce)) for (const d of ix.sigDbs[sg] as number[]) if (ix.dbCat[d] === r.cat) hit.add(d);
        for (const t of tablesMatching(ix, ce)) if (ix.tableCat[t] === r.cat) hit.add(ix.tableDb[t] as number);
        break;
      }
      default: {
        const t = ix.gTable[g] as number;
        if (t >= 0) hit.add(ix.tableDb[t] as number);
      }
    }
  }
  return [...hit].sort((a, b) => a - b);
}

/**
 * The grants among `grants` that lift every guardrail in `denied` allow the
 * request: each is marked as used and its lifts recorded; without one, the
 * guardrails deny. `denied` is a copy, since marking reuses the scratch words.
 */
function liftWith(ix: Index, grants: Iterable<number>, denied: Int32Array): Status {
  const s = ix.scratch;
  let n = 0;
  for (const g of grants) {
    if (!liftsAllOf(ix, g, denied)) continue;
    mark(s, g);
    recordLifts(ix, g, denied);
    n++;
  }
  s.denied.set(denied);
  return n > 0 ? ALLOW : DENY_GUARDRAIL;
}

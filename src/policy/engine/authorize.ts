/**
 * Authorize: the per-request path. Looks up the principal set, checks the
 * action applies to the level, consults the memo, then decides and turns the
 * internal outcome into a Decision with its reasons.
 */
import type { AuthorizeRequest, Decision, Reason } from '../decision.js';
import type { Grant } from '../model.js';
import { resourceToString } from '../model.js';
import { FALSE } from '../predicate.js';
import { reasonText } from '../reference-evaluator.js';
import type { Status } from './constants.js';
import { ALLOW, DENY_GUARDRAIL, DENY_NO_GRANT, I_DESCRIBE, I_SELECT, LEVEL_TABLE, N_ACTIONS, NONE } from './constants.js';
import { denyingGuards, guardAnswer, guardsIn, liftReasons, mayLift, resetMatched } from './coverage.js';
import { describeOn, plainOn } from './describe.js';
import { expiredReasons } from './explain.js';
import type { Index, PSet, Res, TableLevelRef } from './types.js';
import { forget, freezeDecision, remember, remembered } from './memo.js';
import { psetOf } from './principal-sets.js';
import { outOfReach } from './reach.js';
import { actionIndex, APPLICABLE, levelIndex, resolve } from './resolve.js';
import type { SelectDetails } from './select.js';
import { selectOn } from './select.js';

export function denyDecision(req: AuthorizeRequest, reasons: readonly Reason[], deniedBy: readonly string[], resource: string): Decision {
  const { principal, action } = req;
  return action === 'SELECT'
    ? { decision: 'deny', principal, action, resource, reasons, matchedGrants: NONE, deniedBy, filters: NONE, columns: NONE, rowFilter: FALSE }
    : { decision: 'deny', principal, action, resource, reasons, matchedGrants: NONE, deniedBy, filters: NONE };
}

export function authorizeWith(ix: Index, req: AuthorizeRequest, resourceText?: string): Decision {
  const { principal, action } = req;
  let ps = ix.psetByRef.get(principal);
  if (ps === undefined) {
    const pid = ix.pidByRef.get(principal);
    if (pid === undefined || ix.pExists[pid] !== 1) {
      return denyDecision(req, [{ code: 'UNKNOWN_PRINCIPAL', message: reasonText.unknownPrincipal(principal) }], NONE, resourceText ?? resourceToString(req.resource));
    }
    ps = psetOf(ix, pid);
    ix.psetByRef.set(principal, ps);
  }
  const a = actionIndex(action);
  const level = levelIndex(req.resource.level);
  if (a < 0 || level < 0 || APPLICABLE[level * N_ACTIONS + a] !== 1) {
    return denyDecision(req, [{ code: 'NOT_APPLICABLE', message: reasonText.notApplicable(action, req.resource.level) }], NONE, resourceText ?? resourceToString(req.resource));
  }
  const now = req.now ?? Date.now();
  // Table and column decisions are memoized per principal set: everything they read is fixed for
  // this engine (one world) except which grants are live, and that only changes at an expiry.
  if (level >= LEVEL_TABLE && ix.useMemo) {
    if (now < ps.memoLo || now >= ps.memoHi) forget(ps, now);
    const hit = remembered(ix, ps, req.resource as TableLevelRef, a);
    if (hit !== undefined) return hit;
  }
  const r = resolve(ix, req.resource);
  if (r === null) {
    const text = resourceText ?? resourceToString(req.resource);
    return denyDecision(req, [{ code: 'UNKNOWN_RESOURCE', message: reasonText.unknownResource(text) }], NONE, text);
  }
  if (r.level < LEVEL_TABLE) return decideAt(ix, req, r, a, ps, now, resourceText);
  const quick = shortcut(ix, req, r, a, ps, now, resourceText);
  if (quick !== null) {
    // frozen only when remembered: without the memo no other caller gets this object (what it shares is frozen already)
    if (ix.useMemo) remember(ix, ps, r, a, freezeDecision(quick));
    return quick;
  }
  // Frozen because later callers get this very object: one caller mutating it must not change another's answer.
  const decision = freezeDecision(decideAt(ix, req, r, a, ps, now, resourceText));
  if (ix.useMemo) remember(ix, ps, r, a, decision);
  return decision;
}

/**
 * The two table-level answers most requests on a large catalog get, without
 * the full decision: a guardrail of the set denies the action (and no held
 * grant can lift one), which every action checks first; or nothing the set
 * holds could cover the table (see reach.ts). Null when neither applies.
 */
function shortcut(ix: Index, req: AuthorizeRequest, r: Res, a: number, ps: PSet, now: number, resourceText: string | undefined): Decision | null {
  const guarded = denyingGuards(ix, ps, a, r);
  if (guarded ? mayLift(ps, now) : !outOfReach(ix, ps, r.table)) return null;
  const resource = resourceText ?? textOf(ix, req, r);
  if (guarded) {
    const shared = guardAnswer(ix, ix.scratch.denied);
    return denyDecision(req, shared.reasons, shared.deniedBy, resource);
  }
  return denyDecision(req, [{ code: 'NO_GRANT', message: reasonText.noGrant(req.principal, req.action, resource) }], NONE, resource);
}

/**
 * The resource as text, for a resolved request: a table's key is built once
 * per table, and a column's text is that key and the column name, two parts
 * where `resourceToString` joins seven.
 */
function textOf(ix: Index, req: AuthorizeRequest, r: Res): string {
  const res = req.resource;
  if (r.level === LEVEL_TABLE) return ix.tableKey[r.table] as string;
  if (res.level === 'column') return `${ix.tableKey[r.table] as string}.${res.column}`;
  return resourceToString(res);
}

/** The decision proper, for a known principal, an applicable action and an existing resource. */
function decideAt(ix: Index, req: AuthorizeRequest, r: Res, a: number, ps: PSet, now: number, resourceText: string | undefined): Decision {
  const { principal, action } = req;
  const resource = resourceText ?? textOf(ix, req, r);
  const s = ix.scratch;
  resetMatched(s);
  s.lifted.length = 0;
  let details: SelectDetails | null = null;
  let status: Status;
  if (a === I_SELECT) {
    details = { columns: NONE, rowFilter: null, filters: NONE };
    status = selectOn(ix, ps, r, now, details);
  } else if (a === I_DESCRIBE) {
    status = describeOn(ix, ps, r, now);
  } else {
    status = plainOn(ix, ps, a, r, now);
  }
  switch (status) {
    case DENY_GUARDRAIL: {
      if (r.level >= LEVEL_TABLE) {
        // table-level decisions are frozen anyway, so they can share one frozen answer
        const shared = guardAnswer(ix, s.denied);
        return denyDecision(req, shared.reasons, shared.deniedBy, resource);
      }
      const guards = guardsIn(ix, s.denied);
      return denyDecision(
        req,
        guards.map((g) => ix.grReason[g] as Reason),
        guards.map((g) => ix.grName[g] as string),
        resource,
      );
    }
    case DENY_NO_GRANT: {
      const noGrant: Reason = { code: 'NO_GRANT', message: reasonText.noGrant(principal, action, resource) };
      const expired = ps.timed.length === 0 ? NONE : expiredReasons(ix, ps, a, r, now);
      return denyDecision(req, expired.length === 0 ? [noGrant] : [noGrant, ...expired], NONE, resource);
    }
    case ALLOW:
      return allowDecision(ix, req, resource, details);
    default: {
      const never: never = status;
      return never;
    }
  }
}

export function allowDecision(ix: Index, req: AuthorizeRequest, resource: string, details: SelectDetails | null): Decision {
  const { principal, action } = req;
  const s = ix.scratch;
  const matched = s.matched;
  let removed = false;
  if (details !== null) for (let w = 0; w < ix.W; w++) if (s.removed[w] !== 0) removed = true;
  let ids: readonly string[];
  let reasons: readonly Reason[];
  if (matched.length === 1) {
    ids = ix.gIdList[matched[0] as number] as readonly string[];
    reasons = ix.gReasonList[matched[0] as number] as readonly Reason[];
  } else {
    const order = [...matched].sort((x, y) => (ix.gRank[x] as number) - (ix.gRank[y] as number));
    ids = order.map((g) => (ix.grants[g] as Grant).id);
    reasons = order.map((g) => ix.gReason[g] as Reason);
  }
  let deniedBy: readonly string[] = NONE;
  if (removed) {
    const guards = guardsIn(ix, s.removed);
    deniedBy = guards.map((g) => ix.grName[g] as string);
    reasons = [...reasons, ...guards.map((g) => ix.grReason[g] as Reason)];
  }
  if (s.lifted.length > 0) reasons = [...reasons, ...liftReasons(ix)];
  if (details === null) return { decision: 'allow', principal, action, resource, reasons, matchedGrants: ids, deniedBy, filters: NONE };
  return {
    decision: 'allow',
    principal,
    action,
    resource,
    reasons,
    matchedGrants: ids,
    deniedBy,
    filters: details.filters,
    columns: details.columns,
    rowFilter: details.rowFilter,
  };
}

/**
 * Plans by policy version, principal, parameter types and text: the same
 * text, principal and policy version get the same rewrite (parsing is a
 * function of the text, and only texts that planned successfully are cached),
 * so parameterized queries (saved queries, apps) and repeated texts skip
 * parsing. The fast path (unmasked columns) depends on the parameters' types,
 * so they are part of the key, and so are an embed session's row predicates
 * (two sessions with different tags must never share a plan).
 */
import type { PrincipalRef } from '../policy/model.js';
import { toSql } from '../policy/predicate.js';
import { paramSignature } from './leakproof.js';
import type { ParamValue, QueryPlan, SessionScope } from './types.js';

const PLAN_CACHE_MAX = 2000;

export interface PlanCache {
  /** The plan cached under `key`, unless a grant it may rely on has expired since. */
  get(key: string, now: number): QueryPlan | undefined;
  /** Caches a plan until `validUntil` (see `nextExpiry`). */
  set(key: string, plan: QueryPlan, validUntil: number): void;
}

export function planCacheKey(version: number | string, principal: PrincipalRef, params: Readonly<Record<string, ParamValue>>, sql: string, session?: Pick<SessionScope, 'rows'>): string {
  const rows = session === undefined ? '-' : JSON.stringify([...session.rows].map(([t, p]) => [t, toSql(p)]).sort());
  return `${version}\u0000${principal}\u0000${paramSignature(params)}\u0000${rows}\u0000${sql}`;
}

export function createPlanCache(): PlanCache {
  const plans = new Map<string, { readonly plan: QueryPlan; readonly validUntil: number }>();
  /** The policy version of every cached plan. */
  let version = Number.NEGATIVE_INFINITY;
  return {
    get(key, now) {
      const cached = plans.get(key);
      // A time-bound grant can expire without the policy version changing: a plan is only reused before the next expiry.
      return cached !== undefined && now < cached.validUntil ? cached.plan : undefined;
    },
    set(key, plan, validUntil) {
      // The key holds the version, so a plan of an older one is never hit again, yet it pins its whole snapshot
      // (world, engine, memo): under a steady stream of policy changes that was megabytes a minute until the size cap.
      // Only the newest version's plans are kept; a late plan of an older snapshot is not cached at all.
      const v = plan.snapshot.version;
      if (v < version) return;
      if (v > version) {
        plans.clear();
        version = v;
      }
      if (plans.size >= PLAN_CACHE_MAX) plans.clear();
      plans.set(key, { plan, validUntil });
    },
  };
}

/** The first instant after `now` at which some grant stops counting (Infinity when none will). */
export function nextExpiry(grants: readonly { readonly notAfter?: string }[], now: number): number {
  let next = Number.POSITIVE_INFINITY;
  for (const g of grants) {
    if (g.notAfter === undefined) continue;
    const t = Date.parse(g.notAfter);
    // An unparseable notAfter already counts as expired in the engine; never cache across it.
    if (Number.isNaN(t)) return now;
    if (t > now && t < next) next = t;
  }
  return next;
}

/**
 * Decisions under running experiments. The engine sees an experiment as an
 * ordinary guardrail; this wrapper, which the state service puts around every
 * snapshot's engine (so decisions, the gateway and the warehouse sync all use
 * it), adds what a guardrail does not have:
 *
 * - an end: past its end time a run's guardrail no longer counts, even if no
 *   scheduler has removed it yet (a killed server, a slow tick);
 * - the explanation: "denied by experiment `t` (ex-…, ends at T)".
 *
 * (A partial run needs nothing here: it marks only its share of the tables,
 * see experiment-share.ts.) A request denied only by runs past their end is
 * decided again by an engine built without them (built once per set of such
 * runs and kept with the snapshot), so the answer is exactly what it would
 * be without them.
 * With no experiment guardrail in the world the engine is returned as is.
 */
import type { AuthorizeRequest, Decision, Evaluator, Reason } from '../policy/decision.js';
import type { PolicyWorld } from '../policy/model.js';
import { createEngine } from '../policy/engine.js';
import { experimentMeta, refusalMessage, type ExperimentMeta } from './experiment-guardrail.js';

/** The evaluator every enforcement point decides with: the world's engine, under its running experiments. */
export function evaluatorFor(world: PolicyWorld): Evaluator {
  return withExperiments(createEngine(world), world, createEngine);
}

export function withExperiments(engine: Evaluator, world: PolicyWorld, build: (world: PolicyWorld) => Evaluator): Evaluator {
  const runs = new Map<string, ExperimentMeta>();
  for (const g of world.guardrails) {
    const meta = experimentMeta(g);
    if (meta !== null) runs.set(g.name, meta);
  }
  if (runs.size === 0) return engine;
  const without = new Map<string, Evaluator>();
  const engineWithout = (names: readonly string[]): Evaluator => {
    const key = [...names].sort().join('\n');
    let e = without.get(key);
    if (e === undefined) {
      const drop = new Set(names);
      e = build({ ...world, guardrails: world.guardrails.filter((g) => !drop.has(g.name)) });
      without.set(key, e);
    }
    return e;
  };

  const authorize = (req: AuthorizeRequest): Decision => {
    const first = engine.authorize(req);
    const named = first.reasons.filter((r): r is Extract<Reason, { code: 'GUARDRAIL' }> => r.code === 'GUARDRAIL' && runs.has(r.guardrail));
    if (named.length === 0) return first;
    const now = req.now ?? Date.now();
    const spared = named.map((r) => r.guardrail).filter((n) => now >= (runs.get(n) as ExperimentMeta).endsAt);
    const d = spared.length === 0 ? first : engineWithout(spared).authorize(req);
    return explained(d, runs);
  };

  return {
    authorize,
    effectivePermissions: (principal, now) => engine.effectivePermissions(principal, now),
    // Listings show a run until it is removed, also in the moments after its end.
    whoCanAccess: (resource, action, now) => engine.whoCanAccess(resource, action, now),
  };
}

function explained(d: Decision, runs: ReadonlyMap<string, ExperimentMeta>): Decision {
  if (!d.reasons.some((r) => r.code === 'GUARDRAIL' && runs.has(r.guardrail))) return d;
  const reasons = d.reasons.map((r): Reason => {
    const meta = r.code === 'GUARDRAIL' ? runs.get(r.guardrail) : undefined;
    return meta === undefined ? r : { ...r, message: refusalMessage(meta) };
  });
  return Object.freeze({ ...d, reasons: Object.freeze(reasons) });
}

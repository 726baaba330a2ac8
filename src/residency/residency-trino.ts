/**
 * Residency guardrails for Trino's live decisions (docs/residency.md): a table
 * covered by an enforced residency guardrail that does not allow the region of
 * the Trino catalog it is reached through is denied for every action, DESCRIBE
 * included, with the guardrail as the reason; as if it did not exist there.
 */
import type { Decision, Evaluator } from '../policy/decision.js';
import type { PolicyWorld } from '../policy/model.js';
import { findTable, resourceToString } from '../policy/model.js';
import { enforced, residencyViolations, type ResidencyViolation } from '../policy/residency.js';

type Authorizer = Pick<Evaluator, 'authorize'>;

/** Per world (a snapshot's is immutable) and catalog region: the enforced violation of each table, computed once. */
const memo = new WeakMap<PolicyWorld, Map<string, ResidencyViolation | null>>();

export function withResidency(engine: Authorizer, world: PolicyWorld, regionOf: (catalog: string) => string | null): Authorizer {
  let byTable = memo.get(world);
  if (byTable === undefined) memo.set(world, (byTable = new Map()));
  const cache = byTable;
  const violation = (catalog: string, database: string, table: string): ResidencyViolation | null => {
    const region = regionOf(catalog);
    const key = `${catalog}.${database}.${table}@${region ?? ''}`;
    let v = cache.get(key);
    if (v === undefined) {
      v = findTable(world, { catalog, database, table }) === undefined ? null : (enforced(residencyViolations(world, [{ catalog, database, table }], region, `trino catalog region \`${region ?? 'unset'}\``))[0] ?? null);
      cache.set(key, v);
    }
    return v;
  };
  return {
    authorize(req): Decision {
      const r = req.resource;
      if (r.level !== 'table' && r.level !== 'column') return engine.authorize(req);
      const v = violation(r.catalog, r.database, r.table);
      if (v === null) return engine.authorize(req);
      return {
        decision: 'deny',
        principal: req.principal,
        action: req.action,
        resource: resourceToString(r),
        reasons: [{ code: 'GUARDRAIL', guardrail: v.guardrail, message: `residency guardrail \`${v.guardrail}\` keeps \`${v.table}\` out of region ${v.regions.map((x) => (x === null ? 'unset' : `\`${x}\``)).join(', ')}` }],
        matchedGrants: [],
        deniedBy: [v.guardrail],
        filters: [],
      };
    },
  };
}

/**
 * Guardrail lifts (docs/policy.md, "Lifting a guardrail"): a guardrail says
 * whether time-bound grants may lift it, and a grant names the guardrails it
 * lifts. `steward.access_lifts` (003) is no longer written: just-in-time
 * requests lift through their grant; rows left by older versions are still
 * unwound by the access service.
 */
export const GUARDRAIL_LIFTS = `
ALTER TABLE steward.grants ADD COLUMN lifts_guardrails jsonb CHECK (lifts_guardrails IS NULL OR jsonb_typeof(lifts_guardrails) = 'array');
ALTER TABLE steward.guardrails ADD COLUMN liftable boolean NOT NULL DEFAULT false;
`;

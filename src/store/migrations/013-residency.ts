/**
 * Residency guardrails (docs/residency.md): a guardrail may carry a residency
 * rule, `{ regions: [...], mode: 'enforce' | 'report-only' }`. Such a
 * guardrail denies no action, so its `actions` list is empty.
 */
export const RESIDENCY = `
ALTER TABLE steward.guardrails ADD COLUMN residency jsonb CHECK (residency IS NULL OR jsonb_typeof(residency) = 'object');
`;

/**
 * The AnyHealth example of embedded analytics (docs/embedding.md), after the
 * QuickSight "RLS with OR tags" article: a row rule over the demo's
 * `lake.claims.patient_claims` and the session tags of its five users.
 *
 * Two changes from the article: the payor rule's delimiter and match-all value
 * are the right way round (the article swaps them; validation refuses that),
 * and states are the demo's two-letter codes (`NY`, not `New York`).
 */
import type { RowRule, SessionTags } from '../embed/tag-rules.js';

export const ANYHEALTH_TABLE = 'lake.claims.patient_claims';

export const ANYHEALTH_RULE: RowRule = Object.freeze({
  tagRules: [
    { tagKey: 'region', column: 'region', multiValueDelimiter: ',', matchAllValue: '*' },
    { tagKey: 'hospital', column: 'hospital', multiValueDelimiter: ',', matchAllValue: '*' },
    { tagKey: 'payor', column: 'payor_segment', multiValueDelimiter: ',', matchAllValue: '*' },
    { tagKey: 'state', column: 'state', multiValueDelimiter: ',', matchAllValue: '*' },
  ],
  configurations: [
    ['region', 'hospital'],
    ['payor', 'state'],
  ],
});

/** The article's five application users, as session tags. */
export const ANYHEALTH_USERS: Readonly<Record<string, SessionTags>> = Object.freeze({
  NorthMedicaidUser: { hospital: 'North Hospital', region: 'Central,East', payor: 'Medicaid', state: 'NY' },
  SouthMedicareUser: { hospital: 'South Hospital', region: 'South', payor: 'Medicare', state: '*' },
  NorthAdmin: { hospital: 'North Hospital', region: '*' },
  SouthAdmin: { hospital: 'South Hospital', region: '*' },
  PowerUser: { hospital: '*', region: '*' },
});

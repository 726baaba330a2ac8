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

/**
 * The demo dashboard "Revenue by hospital". It reads as `user:alice` (the
 * demo's analyst): alice's grants and the PII guardrail bound every embed
 * session, and each session's tags narrow the rows further.
 */
export const REVENUE_DASHBOARD = Object.freeze({
  title: 'Revenue by hospital',
  description: 'AnyHealth claims revenue; each viewer sees only the rows their session tags allow',
  runAs: 'user:alice',
  datasets: {
    claims: {
      table: ANYHEALTH_TABLE,
      sql: "SELECT hospital, region, payor_segment, state, strftime(service_date, '%Y-%m') AS month, sum(amount) AS revenue, count(*) AS claims FROM lake.claims.patient_claims GROUP BY hospital, region, payor_segment, state, month ORDER BY hospital, region, payor_segment, state, month",
      rowRule: ANYHEALTH_RULE,
    },
  },
  visuals: [
    { id: 'total', title: 'Revenue (USD)', type: 'kpi', dataset: 'claims', y: 'revenue' },
    { id: 'by-hospital', title: 'Revenue by hospital', type: 'bar', dataset: 'claims', x: 'hospital', y: 'revenue' },
    { id: 'by-month', title: 'Revenue by month', type: 'line', dataset: 'claims', x: 'month', y: 'revenue' },
    { id: 'by-payor', title: 'Claims by payor segment', type: 'bar', dataset: 'claims', x: 'payor_segment', y: 'claims' },
  ],
  filters: [{ id: 'months', title: 'Months', type: 'range', column: 'month' }],
});

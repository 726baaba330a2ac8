/**
 * The AnyHealth users' rows as hand-written WHERE clauses over the demo
 * claims, written from the article's table (not from the rule), for the
 * equality tests: dashboard dataset = gateway = PostgreSQL RLS = this.
 */
export const HAND_WRITTEN: Readonly<Record<string, string>> = {
  NorthMedicaidUser: "(hospital = 'North Hospital' AND region IN ('Central', 'East')) OR (payor_segment = 'Medicaid' AND state = 'NY')",
  SouthMedicareUser: "(hospital = 'South Hospital' AND region = 'South') OR payor_segment = 'Medicare'",
  NorthAdmin: "hospital = 'North Hospital'",
  SouthAdmin: "hospital = 'South Hospital'",
  PowerUser: 'TRUE',
};

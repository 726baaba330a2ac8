/**
 * The demo catalog and a tiny row-filter parser for the policy-as-code tests.
 * The real parser is DuckDB's (`catalog/predicate-parser.ts`); these tests
 * exercise the file format, not SQL, so `column = 'literal'` is enough.
 */
import type { Column, PolicyWorld, Table } from '../policy/model.js';
import { EMPTY_WORLD } from '../policy/model.js';
import type { Predicate } from '../policy/predicate.js';

const columns = (names: readonly string[]): Column[] => names.map((name, ordinal) => ({ name, type: 'VARCHAR', ordinal }));

const table = (database: string, name: string, cols: readonly string[]): Table => ({
  catalog: 'lake',
  database,
  name,
  columns: columns(cols),
  source: { kind: 'virtual' },
});

export const CLAIMS_COLUMNS = ['claim_id', 'patient_id', 'patient_name', 'ssn', 'hospital', 'region', 'payor_segment', 'state', 'amount', 'service_date'] as const;
export const REVENUE_COLUMNS = ['month', 'hospital', 'region', 'revenue', 'cost'] as const;

/** Only the catalog: what a workspace has before any policy is applied. */
export const DEMO_CATALOG: PolicyWorld = {
  ...EMPTY_WORLD,
  // `steward.security` is the security lake's database (docs/security-lake.md), created before the demo policy is applied.
  catalogs: [{ name: 'lake' }, { name: 'steward' }],
  databases: [
    { catalog: 'lake', name: 'claims' },
    { catalog: 'lake', name: 'finance' },
    { catalog: 'steward', name: 'security' },
  ],
  tables: [table('claims', 'patient_claims', CLAIMS_COLUMNS), table('finance', 'revenue', REVENUE_COLUMNS)],
};

/** Parses `column = 'literal'` (and `column = number`); anything else is refused, like an unsupported construct would be. */
export function stubParsePredicate(sql: string): Predicate {
  const m = /^\s*([a-z_][a-z0-9_]*)\s*=\s*(?:'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?))\s*$/.exec(sql);
  if (m === null) throw new Error(`unsupported predicate \`${sql}\``);
  const value = m[2] !== undefined ? m[2].replaceAll("''", "'") : Number(m[3]);
  return { k: 'cmp', op: '=', left: { k: 'col', name: m[1] as string }, right: { k: 'lit', value } };
}

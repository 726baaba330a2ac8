/**
 * Dashboards as code: the document a vendor writes (YAML or JSON), checked
 * by one zod schema (exported as JSON Schema by `write-json-schema`).
 *
 * A dashboard runs as one Steward principal (`runAs`: its grants, data
 * filters and guardrails bound every query) and has datasets: governed SQL
 * over one catalog table, whose row rule (`rowRule`, tag rules and AND
 * groups) is added for each embed session. Visuals draw a dataset's rows;
 * filters are what the viewer may narrow (a date range) in the page.
 */
import { z } from 'zod';
import { StewardError } from '../errors.js';
import { validateRowRule, type RowRule } from './tag-rules.js';

export const DashboardIdSchema = z.string().trim().max(63).regex(/^[a-z0-9][a-z0-9_-]*$/, { message: 'lowercase letters, digits, `_` and `-`, starting with a letter or digit' });
const Id = DashboardIdSchema;
const Column = z.string().min(1).max(128);

export const TagRuleSchema = z.strictObject({
  tagKey: z.string().max(63),
  column: Column,
  multiValueDelimiter: z.string().max(8).default(','),
  matchAllValue: z.string().max(64).default('*'),
});

export const RowRuleSchema = z.strictObject({
  tagRules: z.array(TagRuleSchema).min(1).max(32),
  /** AND groups of tag keys, ORed together. */
  configurations: z.array(z.array(z.string().max(63)).max(32)).min(1).max(32),
});

export const DatasetSchema = z.strictObject({
  /** The catalog table the row rule governs (`catalog.database.table`); the SQL may read only this table. */
  table: z.string().max(400).regex(/^[^.\s]+\.[^.\s]+\.[^.\s]+$/, { message: 'a table as `catalog.database.table`' }),
  sql: z.string().min(1).max(20_000),
  rowRule: RowRuleSchema,
});

export const VisualSchema = z.strictObject({
  id: Id,
  title: z.string().max(200).optional(),
  type: z.enum(['kpi', 'bar', 'line', 'table']),
  dataset: Id,
  /** Category column (bar, line); absent for kpi and table. */
  x: Column.optional(),
  /** Value column, summed per category (kpi: over every row). */
  y: Column.optional(),
  /** Table visuals: the columns shown, in order. */
  columns: z.array(Column).max(50).optional(),
});

export const FilterSchema = z.strictObject({
  id: Id,
  title: z.string().max(200).optional(),
  type: z.enum(['range', 'select']),
  /** The column of every dataset it narrows (datasets without it are left alone). */
  column: Column,
});

export const DashboardSchema = z.strictObject({
  title: z.string().min(1).max(200),
  description: z.string().max(2000).optional(),
  runAs: z.string().max(200).regex(/^user:[a-z0-9_.-]+$/, { message: 'a Steward user as `user:<name>`' }),
  datasets: z.record(Id, DatasetSchema).refine((d) => Object.keys(d).length > 0 && Object.keys(d).length <= 20, { message: 'between 1 and 20 datasets' }),
  visuals: z.array(VisualSchema).min(1).max(24),
  filters: z.array(FilterSchema).max(10).default([]),
});

export const DashboardsDocumentSchema = z.strictObject({
  apiVersion: z.literal('steward/v1'),
  dashboards: z.record(Id, DashboardSchema),
});

export type Dashboard = z.infer<typeof DashboardSchema>;
export type Dataset = z.infer<typeof DatasetSchema>;
export type Visual = z.infer<typeof VisualSchema>;

/**
 * What zod cannot check: each dataset's row rule (`validateRowRule`), and that
 * visuals name datasets that exist and the columns they draw are set.
 * Throws STEWARD_E_VALIDATION naming the path (`dashboards.revenue.visuals[1].dataset`).
 */
export function checkDashboard(d: Dashboard, at: string): Dashboard & { readonly rules: Readonly<Record<string, RowRule>> } {
  const rules: Record<string, RowRule> = {};
  for (const [id, ds] of Object.entries(d.datasets)) rules[id] = validateRowRule(ds.rowRule, undefined, `${at}.datasets.${id}.rowRule`);
  d.visuals.forEach((v, i) => {
    const path = `${at}.visuals[${i}]`;
    if (!Object.hasOwn(d.datasets, v.dataset)) throw invalidAt(`${path}.dataset`, `\`${v.dataset}\` is not a dataset of the dashboard`);
    if ((v.type === 'bar' || v.type === 'line') && (v.x === undefined || v.y === undefined)) throw invalidAt(path, `a ${v.type} visual needs \`x\` and \`y\``);
    if (v.type === 'kpi' && v.y === undefined) throw invalidAt(path, 'a kpi visual needs `y`');
  });
  const ids = new Set<string>();
  for (const [i, v] of d.visuals.entries()) {
    if (ids.has(v.id)) throw invalidAt(`${at}.visuals[${i}].id`, `\`${v.id}\` is used twice`);
    ids.add(v.id);
  }
  return { ...d, rules };
}

function invalidAt(path: string, message: string): StewardError {
  return new StewardError('STEWARD_E_VALIDATION', `${path}: ${message}`, { details: [{ path, message }] });
}

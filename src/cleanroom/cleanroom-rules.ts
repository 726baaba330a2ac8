/**
 * Analysis rules as members write them: the input schema (zod), and the checks
 * against the configured table (every column named must be one the member
 * allowed in the collaboration, an aggregate column is never also a join or
 * dimension column, a constraint asks for at least two distinct values).
 */
import { z } from 'zod';
import { invalid } from '../errors.js';
import { AGGREGATE_FUNCTIONS, JOIN_OPERATORS, type AnalysisRule, type ConfiguredTable } from './cleanroom-types.js';

/**
 * The scalar functions a rule may allow (`cast` stands for CAST and TRY_CAST).
 * Small on purpose: each one is a way to reshape a value before it is grouped
 * or returned, so a new one is added after someone has read what it does.
 */
export const SCALAR_FUNCTIONS: ReadonlySet<string> = new Set([
  'abs', 'ceil', 'ceiling', 'floor', 'round', 'trunc', 'ln', 'log', 'sqrt', 'cast', 'coalesce',
  'lower', 'upper', 'trim', 'ltrim', 'rtrim', 'concat', 'substring', 'length', 'date_trunc', 'year', 'month',
]);

const Column = z.string().trim().min(1).max(128);
const Columns = z.array(Column).max(1000);
const Functions = z.array(z.string().trim().toLowerCase().max(64)).max(64).default([]);
const JoinOps = z.array(z.enum(JOIN_OPERATORS)).max(2).default(['AND']);

export const RuleInputSchema = z.discriminatedUnion('type', [
  z
    .object({
      type: z.literal('aggregation'),
      aggregateColumns: z.array(z.object({ column: Column, functions: z.array(z.enum(AGGREGATE_FUNCTIONS)).min(1).max(5) }).strict()).max(1000).default([]),
      joinColumns: Columns.default([]),
      joinRequired: z.boolean().default(false),
      allowedJoinOperators: JoinOps,
      dimensionColumns: Columns.default([]),
      scalarFunctions: Functions,
      outputConstraints: z.array(z.object({ column: Column, minimum: z.number().int().min(2).max(1_000_000) }).strict()).min(1).max(100),
    })
    .strict(),
  z
    .object({
      type: z.literal('list'),
      joinColumns: Columns.min(1),
      allowedJoinOperators: JoinOps,
      listColumns: Columns.min(1),
      scalarFunctions: Functions,
    })
    .strict(),
  z.object({ type: z.literal('custom'), templates: z.array(z.string().trim().toLowerCase().min(1).max(128)).max(100) }).strict(),
]);
export type RuleInput = z.output<typeof RuleInputSchema>;

/** The rule, checked against the configured table's columns; throws naming the field. */
export function checkRule(table: Pick<ConfiguredTable, 'name' | 'columns'>, rule: RuleInput): AnalysisRule {
  const configured = new Set(table.columns);
  const known = (path: string, columns: readonly string[]): void => {
    for (const [i, c] of columns.entries()) {
      if (!configured.has(c)) throw invalid(`${path}[${i}]`, `column \`${c}\` is not a configured column of \`${table.name}\``);
    }
    const dup = columns.find((c, i) => columns.indexOf(c) !== i);
    if (dup !== undefined) throw invalid(path, `column \`${dup}\` is listed twice`);
  };
  const scalars = (fns: readonly string[]): void => {
    for (const [i, f] of fns.entries()) {
      if (!SCALAR_FUNCTIONS.has(f)) throw invalid(`scalarFunctions[${i}]`, `\`${f}\` is not a scalar function a rule may allow (one of ${[...SCALAR_FUNCTIONS].join(', ')})`);
    }
  };
  switch (rule.type) {
    case 'aggregation': {
      const aggregates = rule.aggregateColumns.map((a) => a.column);
      known('aggregateColumns', aggregates);
      known('joinColumns', rule.joinColumns);
      known('dimensionColumns', rule.dimensionColumns);
      known('outputConstraints', rule.outputConstraints.map((o) => o.column));
      scalars(rule.scalarFunctions);
      // An aggregate column returned as a dimension or matched in a join would reveal row values.
      for (const [i, c] of aggregates.entries()) {
        if (rule.joinColumns.includes(c) || rule.dimensionColumns.includes(c)) {
          throw invalid(`aggregateColumns[${i}]`, `column \`${c}\` cannot be an aggregate column and also a join or dimension column`);
        }
      }
      if (rule.joinRequired && rule.joinColumns.length === 0) throw invalid('joinColumns', 'a rule that requires a join needs at least one join column');
      return rule;
    }
    case 'list':
      known('joinColumns', rule.joinColumns);
      known('listColumns', rule.listColumns);
      scalars(rule.scalarFunctions);
      return rule;
    case 'custom':
      return { type: 'custom', templates: [...new Set(rule.templates)] };
    default: {
      const never: never = rule;
      return never;
    }
  }
}

/** How the query log and refusals name a rule: `aggregation rule of \`purchase\``. */
export function ruleLabel(table: Pick<ConfiguredTable, 'name' | 'rule'>): string {
  return `${table.rule?.type ?? 'no'} rule of \`${table.name}\``;
}

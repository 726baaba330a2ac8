/**
 * A collaboration as a policy file writes it (the `cleanrooms` section of
 * policy as code, docs/policy-as-code.md): its members, configured tables with
 * their rules, templates and privacy settings. Only what an author decides is
 * here; the life cycle (who accepted, who left, closed), the query log and the
 * budget spent are state the store keeps and an apply never resets.
 */
import { z } from 'zod';
import { DescriptionSchema, LabelSchema, PrincipalSchema } from '../server/schemas.js';
import type { PrincipalRef } from '../policy/model.js';
import { RuleInputSchema } from './cleanroom-rules.js';
import { MEMBER_ABILITIES, type AnalysisRule, type Collaboration } from './cleanroom-types.js';

export const AbilitiesSchema = z.array(z.enum(MEMBER_ABILITIES)).max(2).default([]);
export const ColumnNameSchema = z.string().trim().min(1).max(128);
export const CatalogTableSchema = z.string().trim().min(1).max(400);
export const TEMPLATE_SQL_MAX = 100_000;
export const ParamNameSchema = z.string().max(64).regex(/^[a-z_][a-z0-9_]{0,63}$/, 'must be a lowercase identifier');
export const TemplateParametersSchema = z
  .array(z.object({ name: ParamNameSchema, type: z.enum(['string', 'number']) }).strict())
  .max(50)
  .default([]);
export const PrivacyInputSchema = z
  .object({
    budget: z.number().positive().max(1000),
    epsilonPerQuery: z.number().positive().max(1000),
    clamps: z.array(z.object({ table: LabelSchema, column: ColumnNameSchema, min: z.number(), max: z.number() }).strict()).max(1000).default([]),
  })
  .strict();

const MemberSpec = z
  .object({ principal: PrincipalSchema.transform((p) => p as PrincipalRef).describe('`group:NAME` or `user:NAME` acting for the organisation'), abilities: AbilitiesSchema.describe('`query` (run queries) and `receive` (get results)') })
  .strict();

const TableSpec = z
  .object({
    member: LabelSchema.describe('The member that shares it (its owner)'),
    table: CatalogTableSchema.describe('The catalog lake table, `catalog.database.table`'),
    columns: z.array(ColumnNameSchema).min(1).max(1000).describe('The columns allowed in the collaboration; the others do not exist inside it'),
    rule: RuleInputSchema.optional().describe('The analysis rule (docs/cleanrooms.md); a table without one cannot be queried'),
  })
  .strict();

const TemplateSpec = z
  .object({
    author: LabelSchema.describe('The member that wrote it'),
    sql: z.string().min(1).max(TEMPLATE_SQL_MAX),
    parameters: TemplateParametersSchema,
  })
  .strict();

export const CleanroomSpecSchema = z
  .object({
    description: DescriptionSchema.default(''),
    creator: LabelSchema.describe('The member that created the collaboration (one of `members`); it cannot change'),
    members: z.record(LabelSchema, MemberSpec).describe('Member name -> who acts for it; a member not listed any more leaves'),
    tables: z.record(LabelSchema, TableSpec).default({}).describe('Configured table name -> the shared table, its columns and its analysis rule'),
    templates: z.record(LabelSchema, TemplateSpec).default({}).describe('Template name -> query template; a template never changes once added'),
    privacy: PrivacyInputSchema.optional().describe('Differential privacy; once on, it stays on (the budget spent is kept)'),
  })
  .strict();

export type CleanroomSpec = z.output<typeof CleanroomSpecSchema>;
type TableSpecOut = z.output<typeof TableSpec>;
/** The same as exported: rules as stored (the schema's output, read-only). */
export type StoredCleanroomSpec = Omit<CleanroomSpec, 'tables'> & { tables: Record<string, Omit<TableSpecOut, 'rule'> & { rule?: AnalysisRule }> };

/**
 * The collaboration as a policy file writes it; left members are history, not
 * policy, so they are not written. `CleanroomSpecSchema.parse(specOf(c))`
 * reconciles back to `c` unchanged.
 */
export function specOf(c: Collaboration): StoredCleanroomSpec {
  return {
    description: c.description,
    creator: c.creator,
    members: Object.fromEntries(c.members.filter((m) => m.status !== 'left').map((m) => [m.name, { principal: m.principal, abilities: [...m.abilities] }])),
    tables: Object.fromEntries(c.tables.map((t) => [t.name, { member: t.member, table: t.table, columns: [...t.columns], ...(t.rule === undefined ? {} : { rule: t.rule }) }])),
    templates: Object.fromEntries(c.templates.map((t) => [t.name, { author: t.author, sql: t.sql, parameters: t.parameters.map((p) => ({ ...p })) }])),
    ...(c.privacy === undefined ? {} : { privacy: { budget: c.privacy.budget, epsilonPerQuery: c.privacy.epsilonPerQuery, clamps: c.privacy.clamps.map((k) => ({ ...k })) } }),
  };
}

/**
 * Templates and the workspace's experiment policy as documents (JSON over
 * the API, YAML or JSON files for the CLI), and the checks a template must
 * pass against the world and the policy, at creation and again at each start
 * (the policy or the world may have changed in between).
 *
 * ```yaml
 * name: orders-etl-loses-orders
 * targets: [user:etl-orders]
 * actions: [SELECT]
 * scope: lake.sales                 # catalog, catalog.database or catalog.database.table
 * columns: [amount]                 # optional, a table scope only
 * tags: "pii=true"                  # optional, a catalog scope only
 * share: 30                         # percent of the scope's tables denied, default 100 (catalog or database scope)
 * duration: 10m
 * stopConditions: [orders-pipeline-failing]
 * excluded: [group:privacy-officers]
 * selfService: false
 * approverGroups: [sre]
 * ```
 */
import { z } from 'zod';
import type { PolicyWorld, PrincipalRef } from '../policy/model.js';
import { parseResource, resourceExists, resourceToString, findTable } from '../policy/model.js';
import { membershipGraph, principalExists, principalSet, usersInGroup } from '../policy/principals.js';
import { formatTagExpression, parseTagExpression } from '../policy/tag-expression.js';
import { StewardError, invalid } from '../errors.js';
import { DescriptionSchema, DurationSchema, LabelSchema, PermissionSchema, PrincipalSchema } from '../server/schemas.js';
import { formatDuration } from '../time.js';
import type { ExperimentPolicy, ExperimentScope, ExperimentTemplate } from './experiment-types.js';

export const TemplateInputSchema = z
  .object({
    name: LabelSchema,
    description: DescriptionSchema.optional(),
    targets: z.array(PrincipalSchema).min(1).max(100),
    actions: z.array(PermissionSchema).min(1).max(7),
    scope: z.string().min(1).max(400),
    columns: z.array(z.string().trim().toLowerCase().min(1).max(128)).min(1).max(1000).optional(),
    tags: z.string().min(1).max(4096).optional(),
    share: z.number().int().min(1).max(100).default(100),
    duration: DurationSchema,
    stopConditions: z.array(z.string().trim().min(1).max(128)).max(20).default([]),
    excluded: z.array(PrincipalSchema).max(100).default([]),
    selfService: z.boolean().default(false),
    approverGroups: z.array(LabelSchema).max(20).default([]),
    minApprovals: z.number().int().min(1).max(20).default(1),
  })
  .strict();
export type TemplateInput = z.infer<typeof TemplateInputSchema>;

export const PolicyInputSchema = z
  .object({
    maxDuration: DurationSchema,
    excluded: z.array(PrincipalSchema).max(1000).default([]),
    production: z.boolean().default(true),
  })
  .strict();
export type PolicyInput = z.infer<typeof PolicyInputSchema>;

export function toPolicy(input: PolicyInput): ExperimentPolicy {
  return { maxDurationSeconds: input.maxDuration, excluded: [...new Set(input.excluded)], production: input.production };
}

export function policyDocument(p: ExperimentPolicy): { maxDuration: string; excluded: readonly string[]; production: boolean } {
  return { maxDuration: formatDuration(p.maxDurationSeconds), excluded: p.excluded, production: p.production };
}

function toScope(input: TemplateInput): ExperimentScope {
  const r = parseResource(input.scope);
  if (r === null || r.level === 'column') throw invalid('scope', `\`${input.scope}\` is not \`catalog\`, \`catalog.database\` or \`catalog.database.table\``);
  if (input.tags !== undefined) {
    if (r.level !== 'catalog') throw invalid('tags', 'a tag expression applies within a catalog, so the scope must be a catalog');
    let expression;
    try {
      expression = parseTagExpression(input.tags);
    } catch (e) {
      throw invalid('tags', (e as Error).message);
    }
    return { kind: 'tags', catalog: r.catalog, expression };
  }
  if (input.columns !== undefined) {
    if (r.level !== 'table') throw invalid('columns', 'columns need a table scope (`catalog.database.table`)');
    return { kind: 'columns', catalog: r.catalog, database: r.database, table: r.table, columns: [...new Set(input.columns)] };
  }
  switch (r.level) {
    case 'catalog':
      return { kind: 'catalog', catalog: r.catalog };
    case 'database':
      return { kind: 'database', catalog: r.catalog, database: r.database };
    case 'table':
      return { kind: 'table', catalog: r.catalog, database: r.database, table: r.table };
  }
}

export function toTemplate(input: TemplateInput): ExperimentTemplate {
  const scope = toScope(input);
  const actions = [...new Set(input.actions)];
  if (scope.kind === 'columns' && actions.some((a) => a !== 'SELECT')) throw invalid('actions', 'only SELECT can be denied on columns');
  if (input.share < 100 && scope.kind !== 'catalog' && scope.kind !== 'database') throw invalid('share', 'a share picks tables, so it needs a catalog or database scope');
  if (!input.selfService && input.approverGroups.length === 0) throw invalid('approverGroups', 'a template that is not self-service needs approver groups');
  return {
    name: input.name,
    ...(input.description === undefined ? {} : { description: input.description }),
    targets: [...new Set(input.targets)],
    actions,
    scope,
    share: input.share,
    durationSeconds: input.duration,
    stopConditions: [...new Set(input.stopConditions)],
    excluded: [...new Set(input.excluded)],
    selfService: input.selfService,
    approverGroups: [...new Set(input.approverGroups)],
    minApprovals: input.minApprovals,
  };
}

/** The document form of a template (what the API returns and `TemplateInputSchema` reads back). */
export function templateDocument(t: ExperimentTemplate): Record<string, unknown> {
  const s = t.scope;
  return {
    name: t.name,
    ...(t.description === undefined ? {} : { description: t.description }),
    targets: t.targets,
    actions: t.actions,
    scope: s.kind === 'catalog' || s.kind === 'tags' ? s.catalog : s.kind === 'database' ? `${s.catalog}.${s.database}` : `${s.catalog}.${s.database}.${s.table}`,
    ...(s.kind === 'columns' ? { columns: s.columns } : {}),
    ...(s.kind === 'tags' ? { tags: formatTagExpression(s.expression) } : {}),
    share: t.share,
    duration: formatDuration(t.durationSeconds),
    stopConditions: t.stopConditions,
    excluded: t.excluded,
    selfService: t.selfService,
    approverGroups: t.approverGroups,
    minApprovals: t.minApprovals,
  };
}

/** Every principal the run may never deny: the template's and the workspace's. */
export function excludedOf(t: ExperimentTemplate, p: ExperimentPolicy): PrincipalRef[] {
  return [...new Set([...t.excluded, ...p.excluded])].sort();
}

/**
 * Refuses a template (or a run of it lasting `durationSeconds`) that the
 * world and the policy do not allow, naming the field: an excluded or
 * unknown target, a duration over the workspace maximum, a scope or column
 * that does not exist, an unknown monitor or approver group.
 */
export function checkTemplate(world: PolicyWorld, policy: ExperimentPolicy, t: ExperimentTemplate, durationSeconds: number, monitorExists: (name: string) => boolean): void {
  if (durationSeconds > policy.maxDurationSeconds) {
    throw invalid('duration', `${formatDuration(durationSeconds)} exceeds the maximum of ${formatDuration(policy.maxDurationSeconds)} set by the workspace experiment policy`);
  }
  const excluded = new Set(excludedOf(t, policy));
  const graph = membershipGraph(world);
  t.targets.forEach((target, i) => {
    if (!principalExists(world, target)) throw invalid(`targets[${i}]`, `principal \`${target}\` not found`);
    const hit = [...principalSet(graph, target)].find((p) => excluded.has(p));
    if (hit !== undefined) {
      throw new StewardError('STEWARD_E_FORBIDDEN', `targets[${i}]: \`${target}\` ${hit === target ? 'is' : `is a member of \`${hit}\`, which is`} excluded from experiments`, {
        details: [{ path: `targets[${i}]`, message: 'excluded from experiments' }],
      });
    }
  });
  const s = t.scope;
  const ref = s.kind === 'catalog' || s.kind === 'tags' ? ({ level: 'catalog', catalog: s.catalog } as const) : s.kind === 'database' ? ({ level: 'database', catalog: s.catalog, database: s.database } as const) : ({ level: 'table', catalog: s.catalog, database: s.database, table: s.table } as const);
  if (!resourceExists(world, ref)) throw invalid('scope', `\`${resourceToString(ref)}\` not found in the catalog`);
  if (s.kind === 'columns') {
    const table = findTable(world, s);
    s.columns.forEach((c, i) => {
      if (!table?.columns.some((col) => col.name === c)) throw invalid(`columns[${i}]`, `column \`${c}\` not found in \`${resourceToString(ref)}\``);
    });
  }
  if (s.kind === 'tags') {
    for (const [key, values] of Object.entries(s.expression)) {
      const k = world.tagKeys.find((tk) => tk.key === key);
      if (k === undefined) throw invalid('tags', `tag key \`${key}\` not found`);
      for (const v of values) if (!k.values.includes(v)) throw invalid('tags', `tag \`${key}\` has no value \`${v}\``);
    }
  }
  t.stopConditions.forEach((m, i) => {
    if (!monitorExists(m)) throw invalid(`stopConditions[${i}]`, `monitor \`${m}\` not found`);
  });
  t.approverGroups.forEach((g, i) => {
    if (!world.groups.some((x) => x.name === g)) throw invalid(`approverGroups[${i}]`, `group \`${g}\` not found`);
  });
}

/** Users who could approve a run started by `starter`: members of an approver group, never the starter. */
export function approversOf(world: PolicyWorld, t: ExperimentTemplate, starter: PrincipalRef): string[] {
  const graph = membershipGraph(world);
  const self = starter.startsWith('user:') ? starter.slice(5) : '';
  return [...new Set(t.approverGroups.flatMap((g) => usersInGroup(graph, g)))].filter((u) => u !== self).sort();
}

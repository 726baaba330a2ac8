/**
 * An experiment in the policy world: a guardrail (`experiment-<id>`) that
 * denies the template's actions to its targets, and, for a database, table or
 * column scope, a tag key of its own (`exp_<id>`) that marks that scope, since
 * guardrails match resources by tags. Each run has its own names, so ending
 * one never touches another run on the same target.
 *
 * The guardrail's description carries what every decision needs to know
 * about the run without a database read: its template, its end and its
 * share. `experimentMeta` reads it back; both live here so the format has one
 * owner.
 */
import type { Change } from '../policy/changes.js';
import type { Guardrail, PolicyWorld, Table, TagAssignment } from '../policy/model.js';
import { resourceToString } from '../policy/model.js';
import { principalExists } from '../policy/principals.js';
import type { Experiment } from './experiment-types.js';
import { guardrailNameOf, tagKeyOf } from './experiment-types.js';
import { pickShare } from './experiment-share.js';

export interface ExperimentMeta {
  readonly id: string;
  readonly template: string;
  readonly endsAt: number;
  readonly share: number;
}

const META = /^experiment `([^`]+)` \(([^)]+)\) ends at (\S+); denies (\d{1,3})% of its scope$/;

export function describeRun(template: string, id: string, endsAt: string, share: number): string {
  return `experiment \`${template}\` (${id}) ends at ${endsAt}; denies ${share}% of its scope`;
}

/** The run a guardrail stands for, or null for any other guardrail. */
export function experimentMeta(g: Guardrail): ExperimentMeta | null {
  const m = META.exec(g.description ?? '');
  if (m === null || g.name !== guardrailNameOf(m[2] as string)) return null;
  const endsAt = Date.parse(m[3] as string);
  if (!Number.isFinite(endsAt)) return null;
  return { template: m[1] as string, id: m[2] as string, endsAt, share: Number(m[4]) };
}

/** How a decision explains a refusal by a run. */
export function refusalMessage(meta: ExperimentMeta): string {
  return `denied by experiment \`${meta.template}\` (${meta.id}, ends at ${new Date(meta.endsAt).toISOString()})`;
}

function marks(world: PolicyWorld, x: Experiment, key: string): TagAssignment[] {
  const s = x.spec.scope;
  const mark = (t: Table): TagAssignment => ({ resource: { level: 'table', catalog: t.catalog, database: t.database, table: t.name }, key, value: 'on' });
  if (x.spec.share < 100 && (s.kind === 'catalog' || s.kind === 'database')) {
    const inScope = world.tables.filter((t) => t.catalog === s.catalog && (s.kind === 'catalog' || t.database === s.database));
    return pickShare(x.id, inScope, (t) => `${t.database}.${t.name}`, x.spec.share).map(mark);
  }
  switch (s.kind) {
    case 'catalog':
    case 'tags':
      return [];
    case 'database':
      return [{ resource: { level: 'database', catalog: s.catalog, database: s.database }, key, value: 'on' }];
    case 'table':
      return [{ resource: { level: 'table', catalog: s.catalog, database: s.database, table: s.table }, key, value: 'on' }];
    case 'columns':
      return s.columns.map((column) => ({ resource: { level: 'column', catalog: s.catalog, database: s.database, table: s.table, column }, key, value: 'on' }));
  }
}

/** The changes that start a run: its tag key and marks (when the scope needs them), then its guardrail. */
export function startChanges(world: PolicyWorld, x: Experiment & { endsAt: string }): Change[] {
  const key = tagKeyOf(x.id);
  const tagged = marks(world, x, key);
  const s = x.spec.scope;
  const marked = tagged.length > 0 || s.kind === 'database' || (s.kind === 'catalog' && x.spec.share < 100);
  const except = x.excluded.filter((p) => principalExists(world, p));
  const guardrail: Guardrail = {
    name: guardrailNameOf(x.id),
    description: describeRun(x.template, x.id, x.endsAt, x.spec.share),
    principals: x.spec.targets,
    ...(except.length === 0 ? {} : { except }),
    actions: x.spec.actions,
    catalog: s.catalog,
    resources: s.kind === 'tags' ? s.expression : marked ? { [key]: ['on'] } : {},
  };
  return [
    ...(!marked ? [] : [{ op: 'put', kind: 'tagKey', entity: { key, values: ['on'], description: `marks the scope of experiment ${x.id}` } } as const]),
    ...tagged.map((entity): Change => ({ op: 'put', kind: 'tagAssignment', entity })),
    { op: 'put', kind: 'guardrail', entity: guardrail },
  ];
}

/** The changes that end run `id`: everything `startChanges` added, found by name in `world` (so a partial leftover is cleaned too). */
export function endChanges(world: PolicyWorld, id: string): Change[] {
  const key = tagKeyOf(id);
  const name = guardrailNameOf(id);
  return [
    ...world.guardrails.filter((g) => g.name === name).map((): Change => ({ op: 'delete', kind: 'guardrail', key: name })),
    ...world.tagAssignments.filter((a) => a.key === key).map((a): Change => ({ op: 'delete', kind: 'tagAssignment', key: `${resourceToString(a.resource)}#${key}` })),
    ...world.tagKeys.filter((k) => k.key === key).map((): Change => ({ op: 'delete', kind: 'tagKey', key })),
  ];
}


/**
 * `steward experiment policy | template create | template list | dry-run | start | approve | reject | stop | status | report`:
 * access experiments (docs/experiments.md). Human tables by default, one
 * JSON document with `--json`.
 *
 *     steward experiment template create --name orders-outage --target user:etl --action SELECT --scope lake.sales.orders --duration 10m --self-service
 *     steward experiment start orders-outage
 *     steward experiment report ex-0a1b2c3d4e5f
 */
import type { Command } from 'commander';
import { emit, table } from './output.js';
import { enc, list, readInput, withClient } from './run.js';
import { callAs } from './access-commands.js';

interface ExperimentJson {
  id: string;
  template: string;
  status: string;
  duration: string;
  startedBy: string;
  createdAt: string;
  startedAt?: string;
  endsAt?: string;
  endedAt?: string;
  endReason?: string;
  approvals: { approver: string; decision: string; at: string }[];
  approvalsRequired: number;
  spec: { targets: string[]; actions: string[]; scope: string; share: number };
}

interface ReportJson {
  id: string;
  template: string;
  status: string;
  startedAt: string | null;
  endedAt: string | null;
  endReason: string | null;
  refusals: { principal: string; resource: string; refused: number; first: string; recoveredAt?: string }[];
  totalRefused: number;
  monitorsFired: { monitor: string; at: string; stopCondition: boolean }[];
  timeToFirstRefusalMs: number | null;
  timeToRecoveryMs: number | null;
  notRecovered: { principal: string; resource: string }[];
}

const ms = (v: number | null): string => (v === null ? '-' : `${(v / 1000).toFixed(1)}s`);

function describeRun(x: ExperimentJson): string {
  const lines = [
    `experiment ${x.id}: ${x.status}`,
    `  template:   ${x.template}`,
    `  denies:     ${x.spec.actions.join(', ')} on ${x.spec.scope} to ${x.spec.targets.join(', ')}${x.spec.share < 100 ? ` (${x.spec.share}% of its tables)` : ''}`,
    `  duration:   ${x.duration}`,
  ];
  if (x.startedAt !== undefined) lines.push(`  window:     ${x.startedAt} → ${x.endsAt ?? ''}`);
  if (x.approvalsRequired > 0) lines.push(`  approvals:  ${x.approvals.filter((a) => a.decision === 'approve').length} of ${x.approvalsRequired}`);
  if (x.endedAt !== undefined) lines.push(`  ended:      ${x.endedAt} (${x.endReason ?? ''})`);
  return lines.join('\n');
}

function describeReport(r: ReportJson): string {
  return [
    `experiment ${r.id} (${r.template}): ${r.status}${r.endReason === null ? '' : ` — ${r.endReason}`}`,
    `  window:               ${r.startedAt ?? '-'} → ${r.endedAt ?? 'running'}`,
    `  refused decisions:    ${r.totalRefused}`,
    `  time to 1st refusal:  ${ms(r.timeToFirstRefusalMs)}`,
    `  time to recovery:     ${ms(r.timeToRecoveryMs)}${r.notRecovered.length > 0 ? ` (${r.notRecovered.length} not recovered yet)` : ''}`,
    '',
    table(r.refusals.map((x) => ({ principal: x.principal, resource: x.resource, refused: x.refused, first: x.first, recovered: x.recoveredAt ?? '-' })), ['principal', 'resource', 'refused', 'first', 'recovered']),
    '',
    table(r.monitorsFired.map((m) => ({ monitor: m.monitor, at: m.at, stop_condition: m.stopCondition ? 'yes' : 'no' })), ['monitor', 'at', 'stop_condition']),
  ].join('\n');
}

const runRow = (x: ExperimentJson) => ({ id: x.id, template: x.template, status: x.status, started: x.startedAt ?? '-', ends: x.endedAt ?? x.endsAt ?? '-', reason: x.endReason ?? '' });

interface TemplateFlags {
  name?: string;
  target?: string[];
  action?: string[];
  scope?: string;
  columns?: string[];
  tags?: string;
  share?: string;
  duration?: string;
  stopOn?: string[];
  exclude?: string[];
  selfService?: boolean;
  approverGroup?: string[];
  minApprovals?: string;
  description?: string;
}

/** The template document from flags; numbers stay text when they are not numbers, so the API names the field. */
function templateFromFlags(o: TemplateFlags): Record<string, unknown> {
  const num = (v: string | undefined): unknown => (v === undefined ? undefined : /^\d+$/.test(v) ? Number(v) : v);
  const doc: Record<string, unknown> = {
    name: o.name,
    description: o.description,
    targets: o.target,
    actions: o.action,
    scope: o.scope,
    columns: o.columns,
    tags: o.tags,
    share: num(o.share),
    duration: o.duration,
    stopConditions: o.stopOn,
    excluded: o.exclude,
    selfService: o.selfService,
    approverGroups: o.approverGroup,
    minApprovals: num(o.minApprovals),
  };
  return Object.fromEntries(Object.entries(doc).filter(([, v]) => v !== undefined));
}

const asOption = (c: Command): Command => c.option('--as <principal>', 'act as this user (admins and the embedded workspace only; audited)');

export function registerExperimentCommands(program: Command): void {
  const exp = program.command('experiment').description('access experiments: take access away on purpose, for a bounded time, and see what breaks');

  const policy = exp.command('policy').description("the workspace's experiment policy");
  policy
    .command('show')
    .description('show the maximum duration, the excluded principals and whether the workspace is production')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const p = await ctx.client.call<{ maxDuration: string; excluded: string[]; production: boolean }>('GET', '/v1/experiments/policy');
        emit(ctx.out, p, () => `max duration: ${p.maxDuration}\nexcluded:     ${p.excluded.join(', ') || '(none)'}\nproduction:   ${p.production ? 'yes' : 'no'}`);
      }),
    );
  policy
    .command('set')
    .description('replace the experiment policy')
    .requiredOption('--max-duration <duration>', 'the longest an experiment may run, e.g. 1h')
    .option('--exclude <principals>', 'principals no experiment may target (comma-separated, repeatable)', list)
    .option('--non-production', 'let self-service templates start without approval')
    .action(async (o: { maxDuration: string; exclude?: string[]; nonProduction?: boolean }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const p = await ctx.client.call<{ maxDuration: string; excluded: string[]; production: boolean }>('PUT', '/v1/experiments/policy', {
          maxDuration: o.maxDuration,
          excluded: o.exclude ?? [],
          production: o.nonProduction !== true,
        });
        emit(ctx.out, p, () => `experiment policy set: max ${p.maxDuration}, ${p.excluded.length} excluded, ${p.production ? 'production' : 'non-production'}`);
      }),
    );

  const template = exp.command('template').description('experiment templates');
  template
    .command('create [file]')
    .description('create a template from flags, or from a YAML/JSON file (`-` for stdin)')
    .option('--name <name>', 'template name')
    .option('--description <text>', 'what it tests')
    .option('--target <principals>', 'users or groups to deny (comma-separated, repeatable)', list)
    .option('--action <actions>', 'actions to deny, e.g. SELECT (comma-separated, repeatable)', list)
    .option('--scope <scope>', 'catalog, catalog.database or catalog.database.table')
    .option('--columns <columns>', 'only these columns of the table (comma-separated)', list)
    .option('--tags <expression>', 'a tag expression within the catalog scope, e.g. pii=true')
    .option('--share <percent>', 'percent of the tables of a catalog or database scope denied (default 100)')
    .option('--duration <duration>', 'e.g. 10m')
    .option('--stop-on <monitors>', 'monitors whose firing ends the experiment early (comma-separated, repeatable)', list)
    .option('--exclude <principals>', 'principals this template may never deny (comma-separated, repeatable)', list)
    .option('--self-service', 'start without approval on a non-production workspace')
    .option('--approver-group <groups>', 'groups whose members approve a start (comma-separated, repeatable)', list)
    .option('--min-approvals <n>', 'distinct approvals needed (default 1)')
    .action(async (file: string | undefined, o: TemplateFlags, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const fromFile = file === undefined ? {} : ((await import('../code/load.js')).parseYamlText({ file: file === '-' ? 'stdin' : file, text: await readInput(file) }) as Record<string, unknown>);
        const t = await ctx.client.call<{ name: string; duration: string }>('POST', '/v1/experiments/templates', { ...fromFile, ...templateFromFlags(o) });
        emit(ctx.out, t, () => `template ${t.name} created (${t.duration})`);
      }),
    );
  template
    .command('list')
    .description('list templates')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const r = await ctx.client.call<{ templates: { name: string; targets: string[]; actions: string[]; scope: string; share: number; duration: string; selfService: boolean }[] }>('GET', '/v1/experiments/templates');
        emit(ctx.out, r, () =>
          table(
            r.templates.map((t) => ({ name: t.name, targets: t.targets.join(','), actions: t.actions.join(','), scope: t.scope, share: `${t.share}%`, duration: t.duration, self_service: t.selfService ? 'yes' : 'no' })),
            ['name', 'targets', 'actions', 'scope', 'share', 'duration', 'self_service'],
          ),
        );
      }),
    );

  exp
    .command('dry-run <template>')
    .description('every decision that would change if the template ran now; changes nothing')
    .option('--duration <duration>', 'instead of the template duration')
    .action(async (name: string, o: { duration?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const r = await ctx.client.call<{ entries: { principal: string; action: string; resource: string; before: string; after: string; columnsLost?: string[] }[]; excludedSpared: string[]; truncated: boolean }>(
          'POST',
          '/v1/experiments/dry-run',
          { template: name, ...(o.duration === undefined ? {} : { duration: o.duration }) },
        );
        emit(ctx.out, r, () =>
          [
            table(
              r.entries.map((e) => ({ principal: e.principal, action: e.action, resource: e.resource, before: e.before, after: e.after, columns_lost: (e.columnsLost ?? []).join(',') })),
              ['principal', 'action', 'resource', 'before', 'after', 'columns_lost'],
            ),
            ...(r.excludedSpared.length > 0 ? [`spared (excluded): ${r.excludedSpared.join(', ')}`] : []),
            ...(r.truncated ? ['(truncated)'] : []),
          ].join('\n'),
        );
      }),
    );

  asOption(exp.command('start <template>'))
    .description('start an experiment (pending until approved, unless self-service on a non-production workspace)')
    .option('--duration <duration>', 'instead of the template duration (at most the workspace maximum)')
    .action(async (name: string, o: { as?: string; duration?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const x = await callAs<ExperimentJson>(ctx, o.as, 'POST', '/v1/experiments', { template: name, ...(o.duration === undefined ? {} : { duration: o.duration }) });
        emit(ctx.out, x, () => describeRun(x));
      }),
    );

  for (const [verb, help] of [
    ['approve', 'approve a pending experiment'],
    ['reject', 'reject a pending experiment'],
  ] as const) {
    asOption(exp.command(`${verb} <id>`))
      .description(help)
      .action(async (id: string, o: { as?: string }, cmd: Command) =>
        withClient(cmd, async (ctx) => {
          const x = await callAs<ExperimentJson>(ctx, o.as, 'POST', `/v1/experiments/${enc(id)}/${verb}`);
          emit(ctx.out, x, () => describeRun(x));
        }),
      );
  }

  asOption(exp.command('stop <id>'))
    .description('stop an experiment now; its deny is removed at once')
    .option('--reason <text>', 'why')
    .action(async (id: string, o: { as?: string; reason?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const x = await callAs<ExperimentJson>(ctx, o.as, 'POST', `/v1/experiments/${enc(id)}/stop`, o.reason === undefined ? {} : { reason: o.reason });
        emit(ctx.out, x, () => describeRun(x));
      }),
    );

  exp
    .command('status [id]')
    .description('one experiment, or all of them')
    .action(async (id: string | undefined, _o: unknown, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        if (id !== undefined) {
          const x = await ctx.client.call<ExperimentJson>('GET', `/v1/experiments/${enc(id)}`);
          emit(ctx.out, x, () => describeRun(x));
          return;
        }
        const r = await ctx.client.call<{ experiments: ExperimentJson[] }>('GET', '/v1/experiments');
        emit(ctx.out, r, () => table(r.experiments.map(runRow), ['id', 'template', 'status', 'started', 'ends', 'reason']));
      }),
    );

  exp
    .command('report <id>')
    .description('refused decisions by principal and resource, monitors that fired, time to first refusal and to recovery (from the security lake)')
    .action(async (id: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const r = await ctx.client.call<ReportJson>('GET', `/v1/experiments/${enc(id)}/report`);
        emit(ctx.out, r, () => describeReport(r));
      }),
    );
}

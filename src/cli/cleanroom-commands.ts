/**
 * `steward cleanroom demo | create | invite | accept | leave | close | show | associate | rule set | privacy set | template create | query | log`:
 * clean rooms (docs/cleanrooms.md). Every command acts as the caller, or with
 * `--as` (admins and the embedded workspace) as the principal of a member.
 *
 *     steward cleanroom create scope3 --as rita --member reporting=group:reporting-team:query,receive --invite purchased-goods=group:purchase-team
 *     steward cleanroom query scope3 --as rita "SELECT r.product, SUM(p.s3_upstream_purchased_good) FROM reporting r JOIN purchase p ON r.ingredient = p.item GROUP BY r.product"
 */
import type { Command } from 'commander';
import { StewardError } from '../errors.js';
import { emit, table } from './output.js';
import { enc, list, readInput, withClient } from './run.js';
import { callAs } from './access-commands.js';

interface RoomJson {
  name: string;
  status: string;
  creator: string;
  members: { name: string; principal: string; abilities: string[]; status: string }[];
  tables: { name: string; member: string; table: string; columns: string[]; rule?: { type: string } }[];
  templates: { name: string; author: string }[];
}

interface ResultJson {
  columns: { name: string }[];
  rows: unknown[][];
  rowCount: number;
  removed: number;
  rules: string[];
  privacy?: { spent: number; remaining: number; budget: number };
}

/** `name=principal[:ability,ability]` → a member document. */
function memberOf(text: string): { name: string; principal: string; abilities: string[] } {
  const m = /^([^=]+)=((?:user|group):[^:]+)(?::(.*))?$/.exec(text.trim());
  if (m === null) throw new StewardError('STEWARD_E_VALIDATION', `--member \`${text}\`: write \`name=group:NAME[:query,receive]\``);
  return { name: m[1] as string, principal: m[2] as string, abilities: (m[3] ?? '').split(',').filter((a) => a !== '') };
}

interface RuleFlags {
  as?: string;
  type?: string;
  aggregate?: string[];
  join?: string[];
  joinRequired?: boolean;
  joinOperators?: string[];
  dimension?: string[];
  scalar?: string[];
  min?: string[];
  listColumns?: string[];
  templates?: string[];
}

/** `name=value` pairs of a repeatable flag; a malformed one is left whole so the API names the field. */
const pairs = (flag: string, items: readonly string[]): [string, string][] =>
  items.map((p) => {
    const i = p.indexOf('=');
    if (i < 1) throw new StewardError('STEWARD_E_VALIDATION', `${flag} \`${p}\`: write \`column=value\``);
    return [p.slice(0, i), p.slice(i + 1)];
  });

/** The rule document from flags (only the flags given). */
function ruleFromFlags(o: RuleFlags): Record<string, unknown> {
  const functions = new Map<string, string[]>();
  for (const [c, f] of pairs('--aggregate', o.aggregate ?? [])) functions.set(c, [...(functions.get(c) ?? []), f.toUpperCase()]);
  const doc: Record<string, unknown> = {
    type: o.type,
    aggregateColumns: o.aggregate === undefined ? undefined : [...functions].map(([column, fns]) => ({ column, functions: fns })),
    joinColumns: o.join,
    joinRequired: o.joinRequired,
    allowedJoinOperators: o.joinOperators?.map((x) => x.toUpperCase()),
    dimensionColumns: o.dimension,
    scalarFunctions: o.scalar,
    outputConstraints: o.min === undefined ? undefined : pairs('--min', o.min).map(([column, n]) => ({ column, minimum: /^\d+$/.test(n) ? Number(n) : n })),
    listColumns: o.listColumns,
    templates: o.templates,
  };
  return Object.fromEntries(Object.entries(doc).filter(([, v]) => v !== undefined));
}

const asOption = (c: Command): Command => c.option('--as <principal>', 'act as this user (admins and the embedded workspace only; audited)');

function describeRoom(c: RoomJson): string {
  return [
    `collaboration ${c.name}: ${c.status} (creator ${c.creator})`,
    table(c.members.map((m) => ({ member: m.name, principal: m.principal, abilities: m.abilities.join(',') || '-', status: m.status })), ['member', 'principal', 'abilities', 'status']),
    '',
    table(c.tables.map((t) => ({ table: t.name, member: t.member, catalog_table: t.table, columns: t.columns.join(','), rule: t.rule?.type ?? '-' })), ['table', 'member', 'catalog_table', 'columns', 'rule']),
  ].join('\n');
}

export function registerCleanroomCommands(program: Command): void {
  const cr = program.command('cleanroom').description('clean rooms: joint analysis across organisations, where no one sees another\'s rows');

  cr.command('demo')
    .description('add the Scope 3 demo: three CSV tables, three organisations as groups (rita, paul, tara), each reading its own table only')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const r = await ctx.client.call<{ lake: string; tables: string[]; changes: number }>('POST', '/v1/demo/scope3', {});
        emit(ctx.out, r, () => [`Scope 3 demo ready (${r.changes === 0 ? 'already up to date' : `${r.changes} change(s)`}); lake at ${r.lake}`, ...r.tables.map((t) => `  ${t}`)].join('\n'));
      }),
    );

  asOption(cr.command('create <name>'))
    .description('create a collaboration; --member is the creator (the caller\'s organisation), --invite the others')
    .requiredOption('--member <member>', 'the creator: name=principal[:query,receive]')
    .option('--invite <members>', 'members to invite: name=principal[:abilities] (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--description <text>', 'what it is for')
    .action(async (name: string, o: { as?: string; member: string; invite?: string[]; description?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const body = { name, creator: memberOf(o.member), members: (o.invite ?? []).map(memberOf), ...(o.description === undefined ? {} : { description: o.description }) };
        const c = await callAs<RoomJson>(ctx, o.as, 'POST', '/v1/cleanrooms', body);
        emit(ctx.out, c, () => describeRoom(c));
      }),
    );

  asOption(cr.command('invite <name> <member>'))
    .description('invite a member: name=principal[:abilities] (the creator only)')
    .action(async (name: string, member: string, o: { as?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const c = await callAs<RoomJson>(ctx, o.as, 'POST', `/v1/cleanrooms/${enc(name)}/members`, memberOf(member));
        emit(ctx.out, c, () => describeRoom(c));
      }),
    );

  for (const [verb, help] of [
    ['accept', 'accept the invitation of the member you act for'],
    ['leave', 'leave the collaboration; your tables and templates leave with you'],
    ['close', 'close the collaboration (the creator or an admin)'],
  ] as const) {
    asOption(cr.command(`${verb} <name>`))
      .description(help)
      .action(async (name: string, o: { as?: string }, cmd: Command) =>
        withClient(cmd, async (ctx) => {
          const c = await callAs<RoomJson>(ctx, o.as, 'POST', `/v1/cleanrooms/${enc(name)}/${verb}`, {});
          emit(ctx.out, c, () => describeRoom(c));
        }),
      );
  }

  asOption(cr.command('show [name]'))
    .description('one collaboration, or the ones you are a member of')
    .action(async (name: string | undefined, o: { as?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        if (name !== undefined) {
          const c = await callAs<RoomJson>(ctx, o.as, 'GET', `/v1/cleanrooms/${enc(name)}`);
          emit(ctx.out, c, () => describeRoom(c));
          return;
        }
        const r = await callAs<{ cleanrooms: RoomJson[] }>(ctx, o.as, 'GET', '/v1/cleanrooms');
        emit(ctx.out, r, () => table(r.cleanrooms.map((c) => ({ name: c.name, status: c.status, creator: c.creator, members: c.members.length, tables: c.tables.length })), ['name', 'status', 'creator', 'members', 'tables']));
      }),
    );

  asOption(cr.command('associate <name> <table-name> <catalog-table>'))
    .description('associate your own catalog table under a name, with the columns allowed in the collaboration')
    .requiredOption('--columns <columns>', 'the columns allowed (comma-separated)', list)
    .action(async (name: string, tableName: string, catalogTable: string, o: { as?: string; columns: string[] }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const c = await callAs<RoomJson>(ctx, o.as, 'POST', `/v1/cleanrooms/${enc(name)}/tables`, { name: tableName, table: catalogTable, columns: o.columns });
        emit(ctx.out, c, () => describeRoom(c));
      }),
    );

  const rule = cr.command('rule').description('analysis rules');
  asOption(rule.command('set <name> <table-name> [file]'))
    .description('set the analysis rule of your configured table, from flags or a YAML/JSON file (`-` for stdin)')
    .option('--type <type>', 'aggregation, list or custom')
    .option('--aggregate <column=FUNCTION>', 'an aggregate column and one allowed function: SUM, SUM_DISTINCT, COUNT, COUNT_DISTINCT, AVG (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--join <columns>', 'join columns (comma-separated)', list)
    .option('--join-required', 'a query must join this table with another member\'s')
    .option('--join-operators <ops>', 'AND, OR (default AND)', list)
    .option('--dimension <columns>', 'dimension columns (comma-separated)', list)
    .option('--scalar <functions>', 'allowed scalar functions (comma-separated)', list)
    .option('--min <column=N>', 'output constraint: at least N distinct values of the column per output row (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--list-columns <columns>', 'list rule: the columns returned for joined rows', list)
    .option('--templates <names>', 'custom rule: the templates that may read the table', list)
    .action(async (name: string, tableName: string, file: string | undefined, o: RuleFlags, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const fromFile = file === undefined ? {} : ((await import('../code/load.js')).parseYamlText({ file: file === '-' ? 'stdin' : file, text: await readInput(file) }) as Record<string, unknown>);
        const c = await callAs<RoomJson>(ctx, o.as, 'PUT', `/v1/cleanrooms/${enc(name)}/tables/${enc(tableName)}/rule`, { ...fromFile, ...ruleFromFlags(o) });
        emit(ctx.out, c, () => `rule of ${tableName} set (${c.tables.find((t) => t.name === tableName)?.rule?.type ?? '-'})`);
      }),
    );

  const privacy = cr.command('privacy').description('the privacy budget (differential privacy on SUM and COUNT)');
  asOption(privacy.command('set <name>'))
    .description('turn differential privacy on (the creator): epsilon per member, spent per query')
    .requiredOption('--budget <epsilon>', 'the budget of each member')
    .requiredOption('--epsilon <epsilon>', 'spent by each query')
    .option('--clamp <table.column=min:max>', 'clamping bounds of a SUM column (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (name: string, o: { as?: string; budget: string; epsilon: string; clamp?: string[] }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const num = (v: string): unknown => (/^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v);
        const clamps = (o.clamp ?? []).map((c) => {
          const m = /^([^.]+)\.([^=]+)=(-?[\d.]+):(-?[\d.]+)$/.exec(c);
          if (m === null) throw new StewardError('STEWARD_E_VALIDATION', `--clamp \`${c}\`: write \`table.column=min:max\``);
          return { table: m[1], column: m[2], min: num(m[3] as string), max: num(m[4] as string) };
        });
        const c = await callAs<RoomJson & { privacy?: { budget: number; epsilonPerQuery: number } }>(ctx, o.as, 'PUT', `/v1/cleanrooms/${enc(name)}/privacy`, { budget: num(o.budget), epsilonPerQuery: num(o.epsilon), clamps });
        emit(ctx.out, c, () => `differential privacy on for ${c.name}: budget ${c.privacy?.budget ?? '-'} per member, ${c.privacy?.epsilonPerQuery ?? '-'} per query`);
      }),
    );

  const template = cr.command('template').description('query templates (run only on tables whose custom rule lists them)');
  asOption(template.command('create <name> <template> <sql>'))
    .description('add a template; parameters are written $name in the SQL')
    .option('--param <name:type>', 'a parameter, type string or number (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (name: string, tname: string, sql: string, o: { as?: string; param?: string[] }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const parameters = (o.param ?? []).map((p) => {
          const [pn = '', type = 'string'] = p.split(':');
          return { name: pn, type };
        });
        const c = await callAs<RoomJson>(ctx, o.as, 'POST', `/v1/cleanrooms/${enc(name)}/templates`, { name: tname, sql, parameters });
        emit(ctx.out, c, () => `template ${tname} added to ${c.name}`);
      }),
    );

  asOption(cr.command('query <name> [sql]'))
    .description('run a query (or --template) checked against every rule of every table it reads')
    .option('--template <template>', 'run this template instead of SQL')
    .option('--param <name=value>', 'a template parameter (repeatable); numbers stay numbers', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (name: string, sql: string | undefined, o: { as?: string; template?: string; param?: string[] }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const params = Object.fromEntries(
          (o.param ?? []).map((p) => {
            const i = p.indexOf('=');
            if (i < 1) throw new StewardError('STEWARD_E_VALIDATION', `--param \`${p}\`: write \`name=value\``);
            const v = p.slice(i + 1);
            return [p.slice(0, i), /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v];
          }),
        );
        const body = o.template === undefined ? { sql } : { template: o.template, params };
        const r = await callAs<ResultJson>(ctx, o.as, 'POST', `/v1/cleanrooms/${enc(name)}/query`, body);
        emit(ctx.out, r, () =>
          [
            table(r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c.name, row[i] as string]))), r.columns.map((c) => c.name)),
            `${r.rowCount} row(s); ${r.removed} removed by output constraints; rules checked: ${r.rules.join(', ')}`,
            ...(r.privacy === undefined ? [] : [`privacy budget: spent ${r.privacy.spent}, ${r.privacy.remaining} of ${r.privacy.budget} left`]),
          ].join('\n'),
        );
      }),
    );

  asOption(cr.command('log <name>'))
    .description('the query log every member can read, newest first')
    .option('--limit <n>', 'entries (default 100)', '100')
    .action(async (name: string, o: { as?: string; limit: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const r = await callAs<{ entries: { id: number; at: string; member: string; runner: string; outcome: string; rows: number; removed: number; sql: string; template?: string }[] }>(ctx, o.as, 'GET', `/v1/cleanrooms/${enc(name)}/log?limit=${enc(o.limit)}`);
        emit(ctx.out, r, () =>
          table(
            r.entries.map((e) => ({ id: e.id, at: e.at, member: e.member, runner: e.runner, outcome: e.outcome, rows: e.rows, removed: e.removed, query: e.template ?? e.sql.replace(/\s+/g, ' ').slice(0, 60) })),
            ['id', 'at', 'member', 'runner', 'outcome', 'rows', 'removed', 'query'],
          ),
        );
      }),
    );
}

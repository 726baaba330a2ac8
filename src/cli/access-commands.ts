/**
 * `steward access request | approve | reject | cancel | revoke | extend | list | show | dry-run | activity | me | config`.
 *
 * `--as PRINCIPAL` sends `x-steward-as`, which the server honors only for
 * admins (the embedded CLI is one) and records in the decision log.
 *
 *     steward access request --as alice --scope lake.claims --permission-set read-with-pii --duration 1h --justification "case 42" --json
 *     steward access approve ID --as carol
 *     steward access revoke ID --as carol
 */
import type { Command } from 'commander';
import { StewardError } from '../errors.js';
import { LOCAL_ADMIN } from '../server/actor.js';
import { readServerInfo } from '../store/workspace.js';
import { emit, table } from './output.js';
import { enc, list, readInput, withClient, type CommandContext } from './run.js';
import { readResponse, type Method } from './client.js';

const AS_HEADER = 'x-steward-as';

interface RequestJson {
  id: string;
  status: string;
  requester: string;
  scope: string;
  permissionSet: string;
  startAt: string;
  endAt: string;
  durationSeconds: number;
  justification: string;
  ticket?: string;
  approvalsReceived: number;
  approvalsRequired: number;
  approvals?: { approver: string; decision: string; round: number; at: string; comment?: string }[];
  timers?: { kind: string; dueAt: string }[];
  rule?: { eligibility: string[]; approvalPolicies: string[]; approverGroups: string[] };
  extension?: { seconds: number; requestedBy: string };
  error?: string;
}

/** Calls the API, acting as `as` when given (the same transports as client.ts, plus one header). */
export async function callAs<T>(ctx: CommandContext, as: string | undefined, method: Method, path: string, body?: unknown): Promise<T> {
  if (as === undefined) return ctx.client.call<T>(method, path, body);
  const headers: Record<string, string> = { [AS_HEADER]: as.includes(':') ? as : `user:${as}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const init: RequestInit = { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) };
  const ws = ctx.client.workspace;
  if (ws !== undefined) return readResponse<T>(await ws.app.request(path, init, { stewardLocalActor: LOCAL_ADMIN }));
  let url = ctx.config.url;
  let token = ctx.config.token;
  if (url === undefined) {
    const info = await readServerInfo(ctx.config.home);
    if (info === null) throw new StewardError('STEWARD_E_CONFIG', 'no Steward server to talk to');
    url = info.url;
    token ??= info.token;
  }
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(`${url.replace(/\/+$/, '')}${path}`, init);
  } catch (e) {
    throw new StewardError('STEWARD_E_SOURCE', `cannot reach the Steward server at \`${url}\`: ${(e as Error).message}`, { cause: e });
  }
  return readResponse<T>(res);
}

function describe(r: RequestJson): string {
  const lines = [
    `request ${r.id}: ${r.status}`,
    `  requester:      ${r.requester}`,
    `  access:         ${r.permissionSet} on ${r.scope}`,
    `  window:         ${r.startAt} → ${r.endAt}`,
    `  justification:  ${r.justification}`,
  ];
  if (r.ticket !== undefined) lines.push(`  ticket:         ${r.ticket}`);
  if (r.approvalsRequired > 0) lines.push(`  approvals:      ${r.approvalsReceived} of ${r.approvalsRequired}${r.rule === undefined ? '' : ` (groups: ${r.rule.approverGroups.join(', ')})`}`);
  for (const a of r.approvals ?? []) lines.push(`    - ${a.decision} by ${a.approver} at ${a.at}${a.round > 0 ? ` (extension ${a.round})` : ''}${a.comment === undefined ? '' : `: ${a.comment}`}`);
  if (r.extension !== undefined) lines.push(`  extension:      +${r.extension.seconds}s requested by ${r.extension.requestedBy}, awaiting approval`);
  for (const t of r.timers ?? []) lines.push(`  timer:          ${t.kind} at ${t.dueAt}`);
  if (r.error !== undefined) lines.push(`  error:          ${r.error}`);
  return lines.join('\n');
}

const asOption = (c: Command): Command => c.option('--as <principal>', 'act as this user (admins and the embedded workspace only; audited)');

export function registerAccessCommands(program: Command): void {
  const access = program.command('access').description('just-in-time access: request, approve, time-bound grants that expire on their own');

  asOption(access.command('request'))
    .description('request time-bound access')
    .requiredOption('--scope <scope>', 'catalog, catalog.database or catalog.database.table')
    .requiredOption('--permission-set <name>', 'a permission set, e.g. read-with-pii')
    .requiredOption('--duration <duration>', 'e.g. 30m, 1h, 8h')
    .requiredOption('--justification <text>', 'why you need it')
    .option('--start <iso>', 'start time (default now)')
    .option('--ticket <id>', 'change or incident ticket id')
    .action(async (opts: { as?: string; scope: string; permissionSet: string; duration: string; justification: string; start?: string; ticket?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const body = {
          scope: opts.scope,
          permissionSet: opts.permissionSet,
          duration: opts.duration,
          justification: opts.justification,
          ...(opts.start === undefined ? {} : { start: opts.start }),
          ...(opts.ticket === undefined ? {} : { ticket: opts.ticket }),
        };
        const r = await callAs<RequestJson>(ctx, opts.as, 'POST', '/v1/access/requests', body);
        emit(ctx.out, r, () => describe(r));
      }),
    );

  for (const [name, field, help] of [
    ['approve', 'comment', 'approve a pending request or extension'],
    ['reject', 'comment', 'reject a pending request or extension'],
    ['cancel', 'reason', 'cancel your request before it is active'],
    ['revoke', 'reason', 'end access now'],
  ] as const) {
    asOption(access.command(`${name} <id>`))
      .description(help)
      .option(`--${field} <text>`, field)
      .action(async (id: string, opts: { as?: string; comment?: string; reason?: string }, cmd: Command) =>
        withClient(cmd, async (ctx) => {
          const value = opts[field];
          const r = await callAs<RequestJson>(ctx, opts.as, 'POST', `/v1/access/requests/${enc(id)}/${name}`, value === undefined ? {} : { [field]: value });
          emit(ctx.out, r, () => describe(r));
        }),
      );
  }

  asOption(access.command('extend <id>'))
    .description('extend an active or scheduled request (a new approval when the request needed one)')
    .requiredOption('--duration <duration>', 'how much longer, e.g. 1h')
    .option('--justification <text>')
    .action(async (id: string, opts: { as?: string; duration: string; justification?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const r = await callAs<RequestJson>(ctx, opts.as, 'POST', `/v1/access/requests/${enc(id)}/extend`, {
          duration: opts.duration,
          ...(opts.justification === undefined ? {} : { justification: opts.justification }),
        });
        emit(ctx.out, r, () => describe(r));
      }),
    );

  asOption(access.command('list'))
    .description('requests you may see')
    .option('--status <list>', 'only these statuses, comma-separated', list)
    .option('--mine', 'only your own requests')
    .action(async (opts: { as?: string; status?: string[]; mine?: boolean }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const q = new URLSearchParams();
        if (opts.status !== undefined) q.set('status', opts.status.join(','));
        if (opts.mine === true) q.set('mine', 'true');
        const r = await callAs<{ requests: RequestJson[] }>(ctx, opts.as, 'GET', `/v1/access/requests${q.size > 0 ? `?${q}` : ''}`);
        emit(ctx.out, r, () =>
          table(
            r.requests.map((x) => ({
              id: x.id,
              status: x.status,
              requester: x.requester,
              permissionSet: x.permissionSet,
              scope: x.scope,
              startAt: x.startAt,
              endAt: x.endAt,
              approvals: x.approvalsRequired > 0 ? `${x.approvalsReceived}/${x.approvalsRequired}` : '-',
            })),
            ['id', 'status', 'requester', 'permissionSet', 'scope', 'startAt', 'endAt', 'approvals'],
          ),
        );
      }),
    );

  asOption(access.command('show <id>'))
    .description('one request, its approvals and timers')
    .action(async (id: string, opts: { as?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const r = await callAs<RequestJson>(ctx, opts.as, 'GET', `/v1/access/requests/${enc(id)}`);
        emit(ctx.out, r, () => describe(r));
      }),
    );

  asOption(access.command('dry-run <id>'))
    .description("what the request would add to the requester's current access")
    .action(async (id: string, opts: { as?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const r = await callAs<{ principal: string; addsNothing: boolean; stillDeniedBy: string[]; entries: { resource: string; addedPermissions: string[]; addedColumns: string[]; rowFilterBefore?: string | null; rowFilterAfter?: string | null }[] }>(
          ctx,
          opts.as,
          'GET',
          `/v1/access/requests/${enc(id)}/dry-run`,
        );
        emit(ctx.out, r, () => {
          if (r.addsNothing) return `request ${id} adds nothing to what ${r.principal} can already do${r.stillDeniedBy.length > 0 ? ` (still denied by guardrail ${r.stillDeniedBy.join(', ')})` : ''}`;
          const rows = r.entries.map((e) => ({
            resource: e.resource,
            permissions: e.addedPermissions.join(','),
            columns: e.addedColumns.join(','),
            rows: e.rowFilterAfter === undefined ? '' : `${e.rowFilterBefore === undefined ? 'none' : (e.rowFilterBefore ?? 'all')} → ${e.rowFilterAfter ?? 'all'}`,
          }));
          return `${table(rows, ['resource', 'permissions', 'columns', 'rows'])}${r.stillDeniedBy.length > 0 ? `\nstill denied by guardrail ${r.stillDeniedBy.join(', ')}` : ''}`;
        });
      }),
    );

  asOption(access.command('activity <id>'))
    .description('what the requester did while the request was active (from the decision log)')
    .action(async (id: string, opts: { as?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const r = await callAs<{ activity: Record<string, string>[] }>(ctx, opts.as, 'GET', `/v1/access/requests/${enc(id)}/activity`);
        emit(ctx.out, r, () => table(r.activity, ['at', 'actor', 'action', 'resource', 'result']));
      }),
    );

  asOption(access.command('me'))
    .description('your personas: requester, approver, auditor, admin')
    .action(async (opts: { as?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const r = await callAs<Record<string, string | boolean>>(ctx, opts.as, 'GET', '/v1/access/me');
        emit(ctx.out, r, () => Object.entries(r).map(([k, v]) => `${k}: ${String(v)}`).join('\n'));
      }),
    );

  const config = access.command('config').description('permission sets, eligibility and approval policies');
  asOption(config.command('show'))
    .description('print the access configuration (YAML; --json for JSON)')
    .action(async (opts: { as?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const r = await callAs<Record<string, unknown>>(ctx, opts.as, 'GET', '/v1/access/config');
        const YAML = (await import('yaml')).default;
        emit(ctx.out, r, () => YAML.stringify(r).trimEnd());
      }),
    );
  asOption(config.command('apply <file>'))
    .description('replace the access configuration with a YAML or JSON file (- for stdin)')
    .action(async (file: string, opts: { as?: string }, cmd: Command) =>
      withClient(cmd, async (ctx) => {
        const text = await readInput(file);
        const { parseYamlText } = await import('../code/load.js');
        const doc = parseYamlText({ file: file === '-' ? 'stdin' : file, text });
        const r = await callAs<Record<string, unknown>>(ctx, opts.as, 'PUT', '/v1/access/config', doc);
        emit(ctx.out, r, () => `access configuration applied from ${file === '-' ? 'stdin' : file}`);
      }),
    );
}

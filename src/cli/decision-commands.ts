/**
 * `steward authorize`, `steward effective`, `steward who-can-access`, `steward log`.
 */
import type { Command } from 'commander';
import type { DecisionJson } from '../governance/authorize.js';
import { emit, table } from './output.js';
import { enc, withClient } from './run.js';

export function explainDecision(d: DecisionJson): string {
  const lines = [`${d.decision.toUpperCase()}: ${d.principal} ${d.action} ${d.resource}`];
  for (const r of d.reasons) lines.push(`  - ${r.message}`);
  if (d.decision === 'deny') return lines.join('\n');
  if (d.columns !== undefined) {
    lines.push(`  columns: ${d.columns.map((c) => (c.rowFilter === null ? c.name : `${c.name} (where ${c.rowFilter})`)).join(', ') || '(none)'}`);
  }
  if (d.rowFilter !== undefined) lines.push(`  rows: ${d.rowFilter === null ? 'all' : `where ${d.rowFilter}`}`);
  if (d.filters.length > 0) lines.push(`  data filters: ${d.filters.join(', ')}`);
  return lines.join('\n');
}

interface EffectiveJson {
  principal: string;
  permissions: { resource: string; level: string; permissions: string[]; grantable: string[]; rowFilter?: string | null; columns?: { name: string }[] }[];
}

interface HoldersJson {
  resource: string;
  action: string;
  holders: { principal: string; decision: DecisionJson }[];
}

interface LogJson {
  entries: { id: number; at: string; actor: string; action: string; resource: string; result: string; reason: string }[];
}

export function registerDecisionCommands(program: Command): void {
  program
    .command('authorize')
    .description('decide whether a principal may act on a resource, and explain why')
    .requiredOption('--principal <principal>', 'user:NAME, group:NAME, or a bare user name')
    .requiredOption('--action <action>', 'DESCRIBE, SELECT, INSERT, DELETE, ALTER, DROP or CREATE_TABLE')
    .requiredOption('--resource <resource>', 'catalog.database.table[.column]')
    .action(async (opts: { principal: string; action: string; resource: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const d = await client.call<DecisionJson>('POST', '/v1/authorize', opts);
        emit(out, d, () => explainDecision(d));
      }, { cachedAuthorize: true }),
    );

  program
    .command('effective <principal>')
    .description("list a principal's effective permissions, with filters")
    .action(async (principal: string, _opts: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<EffectiveJson>('GET', `/v1/principals/${enc(principal)}/effective-permissions`);
        emit(out, r, () =>
          table(
            r.permissions.map((p) => ({
              resource: p.resource,
              permissions: p.permissions.join(','),
              grantable: p.grantable.join(','),
              columns: p.columns?.map((c) => c.name).join(',') ?? '',
              rows: p.rowFilter === undefined ? '' : (p.rowFilter ?? 'all'),
            })),
            ['resource', 'permissions', 'grantable', 'columns', 'rows'],
          ),
        );
      }),
    );

  program
    .command('who-can-access <resource>')
    .description('list the users allowed an action on a resource, and why')
    .option('--action <action>', 'the action', 'SELECT')
    .action(async (resource: string, opts: { action: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<HoldersJson>('GET', `/v1/resources/${enc(resource)}/access?action=${enc(opts.action)}`);
        emit(out, r, () =>
          table(
            r.holders.map((h) => ({ principal: h.principal, grants: h.decision.matchedGrants.join(','), rows: h.decision.rowFilter ?? 'all' })),
            ['principal', 'grants', 'rows'],
          ),
        );
      }),
    );

  program
    .command('log')
    .description('show recent decision-log entries')
    .option('--actor <actor>', 'only this actor')
    .option('--limit <n>', 'how many', '50')
    .action(async (opts: { actor?: string; limit: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const q = new URLSearchParams({ limit: opts.limit, ...(opts.actor === undefined ? {} : { actor: opts.actor }) });
        const r = await client.call<LogJson>('GET', `/v1/decision-log?${q.toString()}`);
        emit(out, r, () => table(r.entries, ['id', 'at', 'actor', 'action', 'resource', 'result', 'reason']));
      }),
    );
}

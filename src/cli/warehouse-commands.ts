/**
 * `steward warehouse …` (targets and load), `steward sync plan|apply`, and
 * `steward export trino-rules` (registered as a form of `steward export` in
 * code-commands.ts).
 */
import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { StewardError } from '../errors.js';
import { emit, progress, table } from './output.js';
import { enc, list, withClient } from './run.js';
import type { Client } from './client.js';

interface PlanJson {
  target: string;
  dialect: string;
  scope: string;
  statements: { op: string; kind: string; sql: string }[];
  drift: { action: string; message: string }[];
  warnings: { code: string; message: string }[];
  summary: { statements: number; grants: number; revokes: number; drift: number; warnings: number; byKind: Record<string, { grant: number; revoke: number }> };
}

function planText(p: PlanJson): string {
  const lines: string[] = [];
  if (p.statements.length > 0) lines.push(...p.statements.map((s) => `${s.sql};`), '');
  for (const d of p.drift) lines.push(`-- drift (${d.action}): ${d.message}`);
  for (const w of p.warnings) lines.push(`-- warning ${w.code}: ${w.message}`);
  const kinds = Object.entries(p.summary.byKind)
    .map(([k, v]) => `${k} +${v.grant}/-${v.revoke}`)
    .join(', ');
  lines.push(
    p.statements.length === 0
      ? `-- ${p.target}: in sync (${p.dialect}); ${p.summary.drift} drift item(s) reported`
      : `-- ${p.target}: ${p.summary.statements} statement(s) (${p.summary.grants} grant, ${p.summary.revokes} revoke${kinds === '' ? '' : `; ${kinds}`}), ${p.summary.drift} drift item(s), ${p.summary.warnings} warning(s)`,
  );
  return lines.join('\n');
}

function keyValues(values: readonly string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) throw new StewardError('STEWARD_E_VALIDATION', `${what} \`${v}\` is not FROM=TO`);
    out[v.slice(0, i).trim()] = v.slice(i + 1).trim();
  }
  return out;
}

interface TargetOptions {
  catalog?: string;
  env?: string;
  secretFile?: string;
  rolePrefix?: string;
  userRole?: string;
  mapUser?: string[];
  mapSchema?: string[];
  mapTable?: string[];
  drift?: string;
  batchSize?: string;
  auto?: boolean;
  region?: string;
  embedRole?: string;
}

interface SavedJson {
  created: boolean;
  changes: { field: string; from: unknown; to: unknown }[];
  credentials: string;
}

/** The target fields the options set (only those given). */
function targetFields(o: TargetOptions): Record<string, unknown> {
  if (o.env !== undefined && o.secretFile !== undefined) throw new StewardError('STEWARD_E_VALIDATION', 'give only one of --env or --secret-file');
  return {
    ...(o.catalog === undefined ? {} : { catalog: o.catalog }),
    ...(o.env !== undefined ? { credentials: { kind: 'env', name: o.env } } : o.secretFile !== undefined ? { credentials: { kind: 'file', path: o.secretFile } } : {}),
    ...(o.rolePrefix === undefined ? {} : { rolePrefix: o.rolePrefix }),
    ...(o.userRole === undefined ? {} : { userRoleTemplate: o.userRole }),
    ...(o.mapUser === undefined ? {} : { userRoles: keyValues(o.mapUser, 'user mapping') }),
    ...(o.mapSchema === undefined ? {} : { schemaMap: keyValues(o.mapSchema, 'schema mapping') }),
    ...(o.mapTable === undefined ? {} : { tableMap: keyValues(o.mapTable, 'table mapping') }),
    ...(o.drift === undefined ? {} : { drift: o.drift }),
    ...(o.batchSize === undefined ? {} : { batchSize: Number(o.batchSize) }),
    ...(o.auto === undefined ? {} : { auto: o.auto }),
    ...(o.region === undefined ? {} : { region: o.region }),
    ...(o.embedRole === undefined ? {} : { embedRole: o.embedRole }),
  };
}

/** Steward's own security-lake catalog (SECURITY_CATALOG in src/audit/security-sql.ts, which loads DuckDB: not imported here). */
const SECURITY_CATALOG = 'steward';

/** `--catalog` when given; otherwise the only data catalog (Steward's security catalog aside), or an error naming the choices. */
export async function defaultCatalog(client: Client, given: string | undefined): Promise<string> {
  if (given !== undefined) return given;
  const catalogs = (await client.call<{ catalogs: { name: string }[] }>('GET', '/v1/catalogs')).catalogs.filter((c) => c.name !== SECURITY_CATALOG);
  if (catalogs.length === 1) return (catalogs[0] as { name: string }).name;
  if (catalogs.length === 0) throw new StewardError('STEWARD_E_VALIDATION', '--catalog: there is no catalog yet (create one with `steward catalog create-catalog NAME`)');
  throw new StewardError('STEWARD_E_VALIDATION', `--catalog: there are ${catalogs.length} catalogs, name one of ${catalogs.map((c) => `\`${c.name}\``).join(', ')}`);
}

/** What `warehouse add|update` prints: what changed, and who reads the credentials. */
function savedText(name: string, r: SavedJson, client: Client): string {
  const where = client.workspace === undefined ? `the server this CLI talks to (${client.target}), not this shell` : 'this process for `sync` commands run here; a server (`steward serve`) syncing automatically reads its own';
  const lines = [r.created ? `warehouse target ${name} created` : r.changes.length === 0 ? `warehouse target ${name} unchanged` : `warehouse target ${name} updated:`];
  for (const c of r.changes) lines.push(`  ${c.field}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`);
  lines.push(`credentials: ${r.credentials}; they are read by ${where}`);
  return lines.join('\n');
}

const targetOptions = (c: Command): Command =>
  c
    .option('--env <variable>', 'environment variable holding the connection URL, read by the process that runs the sync (the server)')
    .option('--secret-file <path>', 'file holding the connection URL, read by the process that runs the sync (the server)')
    .option('--role-prefix <prefix>', 'prefix of every role and policy Steward creates (default stw_)')
    .option('--user-role <template>', 'login role of a user; {user} is the user name (default {user})')
    .option('--map-user <user=role>', 'login role of one user', list)
    .option('--map-schema <database=schema>', 'warehouse schema of a catalog database', list)
    .option('--map-table <database.table=schema.table>', 'warehouse table of a catalog table', list)
    .option('--drift <policy>', 'revoke (default) or report hand-made grants')
    .option('--batch-size <n>', 'statements per transaction for large plans (default 5000)')
    .option('--region <region>', 'where the warehouse runs (eu-west-1), for residency guardrails')
    .option('--embed-role <role>', "the existing role an embedding application connects as: synced with the dashboards' datasets under session-tag row security");

export function registerWarehouseCommands(program: Command): void {
  const wh = program.command('warehouse').description('PostgreSQL warehouse targets that Steward keeps in sync');
  targetOptions(
    wh
      .command('add <name>')
      .description('create a target (refuses an existing one: use `warehouse update`); credentials come from an environment variable or a secret file holding a postgres:// URL, read by the server')
      .option('--catalog <catalog>', 'the Steward catalog to mirror (default: the only catalog)'),
  )
    .option('--auto', 'sync automatically after every policy change')
    .action(async (name: string, o: TargetOptions, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        if (o.env === undefined && o.secretFile === undefined) throw new StewardError('STEWARD_E_VALIDATION', 'give one of --env or --secret-file');
        const body = { ...targetFields(o), catalog: await defaultCatalog(client, o.catalog), auto: o.auto === true };
        const r = await client.call<SavedJson>('POST', `/v1/warehouse/targets/${enc(name)}`, body);
        emit(out, r, () => savedText(name, r, client));
      }),
    );
  targetOptions(
    wh
      .command('update <name>')
      .description('change some fields of a target (the others keep their values) and print what changed')
      .option('--catalog <catalog>', 'the Steward catalog to mirror'),
  )
    .option('--auto', 'sync automatically after every policy change')
    .option('--no-auto', 'stop syncing automatically')
    .action(async (name: string, o: TargetOptions, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const { targets } = await client.call<{ targets: Record<string, unknown>[] }>('GET', '/v1/warehouse/targets');
        const current = targets.find((t) => t['name'] === name.trim().toLowerCase());
        if (current === undefined) throw new StewardError('STEWARD_E_NOT_FOUND', `warehouse target \`${name}\` not found (create it with \`steward warehouse add\`)`);
        const { name: _n, status: _s, ...kept } = current;
        const r = await client.call<SavedJson>('PUT', `/v1/warehouse/targets/${enc(name)}`, { ...kept, ...targetFields(o) });
        emit(out, r, () => savedText(name, r, client));
      }),
    );
  wh.command('list').action(async (_o: unknown, cmd: Command) =>
    withClient(cmd, async ({ client, out }) => {
      const r = await client.call<{ targets: Record<string, unknown>[] }>('GET', '/v1/warehouse/targets');
      emit(out, r, () =>
        table(
          r.targets.map((t) => {
            const cred = t['credentials'] as { kind: string; name?: string; path?: string };
            const status = t['status'] as { lastStatus: string | null; lastSyncedAt: string | null };
            return {
              name: String(t['name']),
              catalog: String(t['catalog']),
              credentials: cred.kind === 'env' ? `env ${cred.name}` : `file ${cred.path}`,
              drift: String(t['drift']),
              auto: Boolean(t['auto']),
              region: t['region'] === undefined ? '' : String(t['region']),
              last: status.lastStatus === null ? '' : `${status.lastStatus} ${status.lastSyncedAt}`,
            };
          }),
          ['name', 'catalog', 'credentials', 'drift', 'auto', 'region', 'last'],
        ),
      );
    }),
  );
  wh.command('rm <name>').action(async (name: string, _o: unknown, cmd: Command) =>
    withClient(cmd, async ({ client, out }) => {
      const r = await client.call('DELETE', `/v1/warehouse/targets/${enc(name)}`);
      emit(out, r, () => `warehouse target ${name} removed (the warehouse is unchanged)`);
    }),
  );
  wh.command('load <target> [tables...]')
    .description('copy lake tables (all of the catalog, or `database.table`…) into the warehouse with COPY FROM STDIN')
    .option('--chunk <rows>', 'rows per COPY', '50000')
    .action(async (target: string, tables: string[], o: { chunk: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const chunk = Number(o.chunk);
        if (!Number.isSafeInteger(chunk) || chunk < 1 || chunk > 1_000_000) throw new StewardError('STEWARD_E_VALIDATION', '--chunk must be between 1 and 1000000');
        const plan = await client.call<{ tables: { table: string; schema: string; name: string; rows: number }[] }>('POST', `/v1/warehouse/targets/${enc(target)}/load-plan`, tables.length === 0 ? {} : { tables });
        const total = plan.tables.reduce((n, t) => n + t.rows, 0);
        const bar = progress(`load ${target}`, total);
        const loaded: { table: string; into: string; rows: number }[] = [];
        let done = 0;
        try {
          for (const t of plan.tables) {
            let rows = 0;
            let offset = 0;
            do {
              const r = await client.call<{ rows: number }>('POST', `/v1/warehouse/targets/${enc(target)}/load`, { table: t.table, offset, limit: chunk });
              rows += r.rows;
              offset += chunk;
              done += r.rows;
              bar.update(done);
              if (r.rows < chunk) break;
            } while (offset < t.rows);
            loaded.push({ table: t.table, into: `${t.schema}.${t.name}`, rows });
          }
        } finally {
          bar.stop();
        }
        emit(out, { tables: loaded }, () => table(loaded, ['table', 'into', 'rows']));
      }),
    );

  const sync = program.command('sync').description('compile the policy into warehouse grants and row security');
  sync
    .command('plan <target>')
    .description('print the exact SQL a sync would run, and a summary')
    .option('--dialect <dialect>', 'postgres (default: a diff against the warehouse) or redshift (a full script)')
    .action(async (target: string, o: { dialect?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<PlanJson>('POST', `/v1/sync/${enc(target)}/plan`, o.dialect === undefined ? {} : { dialect: o.dialect });
        emit(out, r, () => planText(r));
      }),
    );
  sync
    .command('apply <target>')
    .description('run the plan: one transaction, or bounded resumable batches for large plans')
    .action(async (target: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ applied: number; batches: number; version: number; failed: { sql: string; error: string }[]; plan: PlanJson }>('POST', `/v1/sync/${enc(target)}/apply`, {});
        const refused = r.failed.map((f) => `-- refused: ${f.sql}\n--   ${f.error}`).join('\n');
        emit(out, r, () =>
          r.applied === 0 && r.failed.length === 0
            ? `${planText(r.plan)}\nNo changes.`
            : `${planText(r.plan)}\n\n${refused === '' ? '' : `${refused}\n`}Applied ${r.applied} statement(s) in ${r.batches} transaction(s) for policy version ${r.version}.`,
        );
        // a partial sync must not look like success to a script: the refused statements are retried by the next sync
        if (r.failed.length > 0) throw new StewardError('STEWARD_E_SOURCE', `warehouse \`${target}\` refused ${r.failed.length} statement(s); they were skipped and the next sync tries them again`);
      }),
    );
}

/** `steward export trino-rules`: Trino file-based access control for one catalog. */
export async function exportTrinoRules(opts: { out?: string; catalog?: string; trinoCatalog?: string }, cmd: Command): Promise<void> {
  await withClient(cmd, async ({ client, out }) => {
    const catalog = await defaultCatalog(client, opts.catalog);
    const q = new URLSearchParams({ catalog, ...(opts.trinoCatalog === undefined ? {} : { trinoCatalog: opts.trinoCatalog }) });
    const rules = await client.call<{ tables: unknown[] }>('GET', `/v1/export/trino-rules?${q.toString()}`);
    const text = `${JSON.stringify(rules, null, 2)}\n`;
    if (opts.out !== undefined) {
      await fs.writeFile(opts.out, text);
      emit(out, { written: opts.out, rules: rules.tables.length }, () => `wrote ${opts.out} (${rules.tables.length} table rules)`);
    } else process.stdout.write(text);
  });
}

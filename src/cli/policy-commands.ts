/**
 * `steward tag-key|tag|filter|grant|guardrail …`: the policy, one entity at a
 * time. Bodies have the same shape as entries in policy files.
 */
import type { Command } from 'commander';
import { StewardError } from '../errors.js';
import { parseResource } from '../policy/model.js';
import { emit, table } from './output.js';
import { enc, list, withClient } from './run.js';

interface GrantJson {
  id: string;
  principal: string;
  resource: unknown;
  permissions: string[];
  grantable?: string[];
  notAfter?: string;
}

function describeGrantResource(r: unknown): string {
  if (typeof r === 'string') return r;
  const o = r as Record<string, unknown>;
  if (typeof o['tags'] === 'string' || (o['tags'] !== undefined && o['catalog'] !== undefined)) {
    return `${String(o['catalog'])} where ${typeof o['tags'] === 'string' ? o['tags'] : JSON.stringify(o['tags'])}`;
  }
  const t = String(o['table']);
  if (o['filter'] !== undefined) return `${t} through filter ${String(o['filter'])}`;
  if (Array.isArray(o['columns'])) return `${t} (${o['columns'].join(', ')})`;
  if (Array.isArray(o['excludedColumns'])) return `${t} (all but ${o['excludedColumns'].join(', ')})`;
  return JSON.stringify(r);
}

function splitAssignment(text: string): { key: string; value: string } {
  const i = text.indexOf('=');
  if (i <= 0 || i === text.length - 1) throw new StewardError('STEWARD_E_VALIDATION', `\`${text}\` is not KEY=VALUE`);
  return { key: text.slice(0, i).trim(), value: text.slice(i + 1).trim() };
}

function registerTagCommands(program: Command): void {
  const tagKey = program.command('tag-key').description('tag keys and their allowed values');
  tagKey
    .command('list')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ tagKeys: { key: string; values: string[]; description?: string }[] }>('GET', '/v1/tag-keys');
        emit(out, r, () => table(r.tagKeys.map((k) => ({ ...k, values: k.values.join(',') })), ['key', 'values', 'description']));
      }),
    );
  tagKey
    .command('put <key>')
    .description('create or update a tag key')
    .requiredOption('--values <list>', 'allowed values, comma-separated', list)
    .option('--description <text>')
    .action(async (key: string, opts: { values: string[]; description?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('PUT', `/v1/tag-keys/${enc(key)}`, opts);
        emit(out, r, () => `tag key ${key} saved`);
      }),
    );
  tagKey
    .command('rm <key>')
    .action(async (key: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/tag-keys/${enc(key)}`);
        emit(out, r, () => `tag key ${key} deleted`);
      }),
    );

  const tag = program.command('tag').description('tags on databases, tables and columns');
  tag
    .command('set <resource> <assignment>')
    .description('assign KEY=VALUE to a database, table or column')
    .action(async (resource: string, assignment: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const { key, value } = splitAssignment(assignment);
        const r = await client.call('PUT', `/v1/resources/${enc(resource)}/tags/${enc(key)}`, { value });
        emit(out, r, () => `${resource}: ${key}=${value}`);
      }),
    );
  tag
    .command('unset <resource> <key>')
    .action(async (resource: string, key: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/resources/${enc(resource)}/tags/${enc(key)}`);
        emit(out, r, () => `${resource}: ${key} removed`);
      }),
    );
  tag
    .command('show <resource>')
    .description('effective tags, with where each value came from')
    .action(async (resource: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ tags: { key: string; value: string; source: string; inherited: boolean }[] }>('GET', `/v1/resources/${enc(resource)}/tags`);
        emit(out, r, () => table(r.tags.map((t) => ({ ...t, inherited: t.inherited ? 'yes' : 'no' })), ['key', 'value', 'source', 'inherited']));
      }),
    );
}

function registerFilterCommands(program: Command): void {
  const filter = program.command('filter').description('data filters (row predicates and column lists)');
  filter
    .command('list')
    .option('--table <table>')
    .action(async (opts: { table?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ filters: { table: string; name: string; rowFilter: string | null; columns?: string[]; excludedColumns?: string[] }[] }>(
          'GET',
          `/v1/filters${opts.table === undefined ? '' : `?table=${enc(opts.table)}`}`,
        );
        emit(out, r, () =>
          table(
            r.filters.map((f) => ({ table: f.table, name: f.name, rowFilter: f.rowFilter ?? 'all rows', columns: f.columns?.join(',') ?? (f.excludedColumns === undefined ? 'all' : `all but ${f.excludedColumns.join(',')}`) })),
            ['table', 'name', 'rowFilter', 'columns'],
          ),
        );
      }),
    );
  filter
    .command('create <table> <name>')
    .option('--row-filter <sql>', 'SQL predicate over the table columns')
    .option('--columns <list>', 'only these columns', list)
    .option('--exclude <list>', 'all columns but these', list)
    .action(async (tableName: string, name: string, opts: { rowFilter?: string; columns?: string[]; exclude?: string[] }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('POST', '/v1/filters', {
          table: tableName,
          name,
          ...(opts.rowFilter === undefined ? {} : { rowFilter: opts.rowFilter }),
          ...(opts.columns === undefined ? {} : { columns: opts.columns }),
          ...(opts.exclude === undefined ? {} : { excludedColumns: opts.exclude }),
        });
        emit(out, r, () => `filter ${name} on ${tableName} saved`);
      }),
    );
  filter
    .command('rm <table> <name>')
    .action(async (tableName: string, name: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/filters/${enc(tableName)}/${enc(name)}`);
        emit(out, r, () => `filter ${name} on ${tableName} deleted`);
      }),
    );
}

interface GrantOptions {
  principal: string;
  resource?: string;
  table?: string;
  columns?: string[];
  exclude?: string[];
  filter?: string;
  catalog?: string;
  tags?: string;
  permissions: string[];
  grantable?: string[];
  notAfter?: string;
  id?: string;
  description?: string;
}

function grantResourceFrom(o: GrantOptions): unknown {
  if (o.tags !== undefined) {
    if (o.catalog === undefined) throw new StewardError('STEWARD_E_VALIDATION', '--tags needs --catalog');
    return { catalog: o.catalog, tags: o.tags };
  }
  if (o.table !== undefined) {
    return {
      table: o.table,
      ...(o.columns === undefined ? {} : { columns: o.columns }),
      ...(o.exclude === undefined ? {} : { excludedColumns: o.exclude }),
      ...(o.filter === undefined ? {} : { filter: o.filter }),
    };
  }
  if (o.resource !== undefined) {
    if (parseResource(o.resource) === null) throw new StewardError('STEWARD_E_VALIDATION', `\`${o.resource}\` is not a resource`);
    return o.resource;
  }
  throw new StewardError('STEWARD_E_VALIDATION', 'say what to grant on: --resource, --table (with --columns, --exclude or --filter), or --catalog with --tags');
}

function registerGrantCommands(program: Command): void {
  const grant = program.command('grant').description('grants');
  grant
    .command('list')
    .option('--principal <principal>')
    .action(async (opts: { principal?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ grants: GrantJson[] }>('GET', `/v1/grants${opts.principal === undefined ? '' : `?principal=${enc(opts.principal)}`}`);
        emit(out, r, () =>
          table(
            r.grants.map((g) => ({
              id: g.id,
              principal: g.principal,
              resource: describeGrantResource(g.resource),
              permissions: g.permissions.join(','),
              grantable: g.grantable?.join(',') ?? '',
              notAfter: g.notAfter ?? '',
            })),
            ['id', 'principal', 'resource', 'permissions', 'grantable', 'notAfter'],
          ),
        );
      }),
    );
  grant
    .command('create')
    .description('grant permissions on a catalog, database, table, columns, data filter, or tag expression')
    .requiredOption('--principal <principal>', 'user:NAME or group:NAME')
    .option('--resource <resource>', 'catalog[.database[.table]]')
    .option('--table <table>', 'catalog.database.table, with --columns, --exclude or --filter')
    .option('--columns <list>', 'these columns of --table', list)
    .option('--exclude <list>', 'all columns of --table but these', list)
    .option('--filter <name>', 'through this data filter of --table')
    .option('--catalog <catalog>', 'with --tags')
    .option('--tags <expression>', 'tag expression, e.g. "domain=claims AND pii=false"')
    .requiredOption('--permissions <list>', 'e.g. SELECT,DESCRIBE', list)
    .option('--grantable <list>', 'permissions the grantee may grant on', list)
    .option('--not-after <iso>', 'the grant stops counting at this instant')
    .option('--id <id>', 'a stable id (default: derived from principal and resource)')
    .option('--description <text>')
    .action(async (opts: GrantOptions, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const body = {
          principal: opts.principal,
          resource: grantResourceFrom(opts),
          permissions: opts.permissions.map((p) => p.toUpperCase()),
          ...(opts.grantable === undefined ? {} : { grantable: opts.grantable.map((p) => p.toUpperCase()) }),
          ...(opts.notAfter === undefined ? {} : { notAfter: opts.notAfter }),
          ...(opts.id === undefined ? {} : { id: opts.id }),
          ...(opts.description === undefined ? {} : { description: opts.description }),
        };
        const r = await client.call<{ id: string }>('POST', '/v1/grants', body);
        emit(out, r, () => `grant ${r.id} created`);
      }),
    );
  grant
    .command('revoke <id>')
    .action(async (id: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/grants/${enc(id)}`);
        emit(out, r, () => `grant ${id} revoked`);
      }),
    );
}

function registerGuardrailCommands(program: Command): void {
  const guardrail = program.command('guardrail').description('organization-wide deny rules');
  guardrail
    .command('list')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ guardrails: { name: string; actions?: string[]; resources: string; principals?: string[]; except?: string[]; catalog?: string; residency?: { regions: string[]; mode: string } }[] }>(
          'GET',
          '/v1/guardrails',
        );
        emit(out, r, () =>
          table(
            r.guardrails.map((g) => ({
              name: g.name,
              // a residency guardrail denies no action: it keeps data in its regions
              actions: g.residency === undefined ? (g.actions ?? []).join(',') : `residency: ${g.residency.regions.join(',')} (${g.residency.mode})`,
              resources: g.resources,
              principals: g.principals?.join(',') ?? 'everyone',
              except: g.except?.join(',') ?? '',
              catalog: g.catalog ?? 'all',
            })),
            ['name', 'actions', 'resources', 'principals', 'except', 'catalog'],
          ),
        );
      }),
    );
  guardrail
    .command('put <name>')
    .description('create or replace a guardrail: a deny rule (--actions), or a residency rule (--regions, docs/residency.md)')
    .option('--actions <list>', 'denied actions, e.g. SELECT', list)
    .requiredOption('--resources <expression>', 'tag expression, e.g. "pii=true"')
    .option('--regions <list>', 'residency guardrail: regions where matching tables may be, e.g. "eu-*"', list)
    .option('--mode <mode>', 'residency guardrail: enforce (default) or report-only')
    .option('--principals <list>', 'whom it applies to (default everyone)', list)
    .option('--except <list>', 'whom it never applies to', list)
    .option('--catalog <catalog>', 'only in this catalog')
    .option('--description <text>')
    .action(
      async (
        name: string,
        opts: { actions?: string[]; resources: string; principals?: string[]; except?: string[]; catalog?: string; description?: string; regions?: string[]; mode?: string },
        cmd: Command,
      ) =>
        withClient(cmd, async ({ client, out }) => {
          const { regions, mode, actions, ...rest } = opts;
          if (regions === undefined && mode !== undefined) throw new StewardError('STEWARD_E_VALIDATION', '--mode applies to a residency guardrail, give --regions too');
          const body = {
            ...rest,
            ...(actions === undefined ? {} : { actions: actions.map((a) => a.toUpperCase()) }),
            ...(regions === undefined ? {} : { residency: { regions, ...(mode === undefined ? {} : { mode }) } }),
          };
          const r = await client.call('PUT', `/v1/guardrails/${enc(name)}`, body);
          emit(out, r, () => `guardrail ${name} saved`);
        }),
    );
  guardrail
    .command('rm <name>')
    .action(async (name: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/guardrails/${enc(name)}`);
        emit(out, r, () => `guardrail ${name} deleted`);
      }),
    );
}

export function registerPolicyCommands(program: Command): void {
  registerTagCommands(program);
  registerFilterCommands(program);
  registerGrantCommands(program);
  registerGuardrailCommands(program);
}

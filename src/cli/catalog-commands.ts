/**
 * `steward catalog …`: catalogs, databases, and tables registered from the
 * lake or a PostgreSQL schema.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { StewardError } from '../errors.js';
import { parseResource } from '../policy/model.js';
import { emit, progress, table } from './output.js';
import { enc, withClient } from './run.js';

interface TableJson {
  catalog: string;
  database: string;
  name: string;
  columns: { name: string; type: string; ordinal: number }[];
  source: Record<string, unknown>;
}

function tablePath(text: string): string {
  const r = parseResource(text);
  if (r?.level !== 'table') throw new StewardError('STEWARD_E_VALIDATION', `\`${text}\` is not a table: use catalog.database.table`);
  return `${enc(r.catalog)}/${enc(r.database)}/${enc(r.table)}`;
}

function databaseOf(text: string): { catalog: string; database: string } {
  const r = parseResource(text);
  if (r?.level !== 'database') throw new StewardError('STEWARD_E_VALIDATION', `\`${text}\` is not a database: use catalog.database`);
  return { catalog: r.catalog, database: r.database };
}

const LAKE_EXTENSIONS = ['.parquet', '.csv', '.json', '.jsonl', '.ndjson'];

/** Each child of a folder becomes a table: a data file, or a folder of files (hive-partitioned when it has `key=value` subfolders). */
async function discoverTables(dir: string): Promise<{ table: string; location: string; hivePartitioning: boolean }[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch((e: unknown) => {
    throw new StewardError('STEWARD_E_SOURCE', `cannot read folder \`${dir}\`: ${(e as Error).message}`);
  });
  const out: { table: string; location: string; hivePartitioning: boolean }[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const full = path.join(dir, e.name);
    if (e.isFile() && LAKE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) {
      out.push({ table: path.basename(e.name, path.extname(e.name)).toLowerCase(), location: full, hivePartitioning: false });
    } else if (e.isDirectory()) {
      const children = await fs.readdir(full);
      out.push({ table: e.name.toLowerCase(), location: full, hivePartitioning: children.some((c) => c.includes('=')) });
    }
  }
  return out;
}

export function registerCatalogCommands(program: Command): void {
  const catalog = program.command('catalog').description('catalogs, databases and tables');

  catalog
    .command('list')
    .description('list tables')
    .option('--catalog <name>')
    .option('--database <name>')
    .action(async (opts: { catalog?: string; database?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const q = new URLSearchParams(Object.entries(opts).filter((e): e is [string, string] => e[1] !== undefined));
        const r = await client.call<{ tables: TableJson[] }>('GET', `/v1/tables${q.size > 0 ? `?${q.toString()}` : ''}`);
        emit(out, r, () =>
          table(
            r.tables.map((t) => ({ table: `${t.catalog}.${t.database}.${t.name}`, columns: t.columns.length, source: String(t.source['kind']), location: String(t.source['location'] ?? t.source['schema'] ?? '') })),
            ['table', 'columns', 'source', 'location'],
          ),
        );
      }),
    );

  catalog
    .command('show <table>')
    .description('show a table and its columns')
    .action(async (name: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const t = await client.call<TableJson>('GET', `/v1/tables/${tablePath(name)}`);
        emit(out, t, () => `${t.catalog}.${t.database}.${t.name} (${String(t.source['kind'])})\n${table(t.columns, ['ordinal', 'name', 'type'])}`);
      }),
    );

  catalog
    .command('create-catalog <name>')
    .option('--description <text>')
    .action(async (name: string, opts: { description?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('POST', '/v1/catalogs', { name, ...opts });
        emit(out, r, () => `catalog ${name} created`);
      }),
    );

  catalog
    .command('create-database <catalog.database>')
    .option('--description <text>')
    .action(async (name: string, opts: { description?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const d = databaseOf(name);
        const r = await client.call('POST', '/v1/databases', { catalog: d.catalog, name: d.database, ...opts });
        emit(out, r, () => `database ${name} created`);
      }),
    );

  catalog
    .command('register <table> <location>')
    .description('register a lake table from a file, a glob, or a (hive-partitioned) folder')
    .option('--format <format>', 'parquet, csv or json (default: from the file extension)')
    .option('--hive', 'read key=value folders as partition columns')
    .option('--replace', 'replace an existing registration')
    .action(async (name: string, location: string, opts: { format?: string; hive?: boolean; replace?: boolean }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = parseResource(name);
        if (r?.level !== 'table') throw new StewardError('STEWARD_E_VALIDATION', `\`${name}\` is not a table: use catalog.database.table`);
        const res = await client.call<{ table: TableJson; files: number }>('POST', '/v1/tables/lake', {
          catalog: r.catalog,
          database: r.database,
          table: r.table,
          location: path.resolve(location),
          ...(opts.format === undefined ? {} : { format: opts.format }),
          ...(opts.hive === undefined ? {} : { hivePartitioning: opts.hive }),
          ...(opts.replace === undefined ? {} : { replace: opts.replace }),
        });
        emit(out, res, () => `registered ${name}: ${res.table.columns.length} columns from ${res.files} file(s)`);
      }),
    );

  catalog
    .command('import <catalog.database> <folder>')
    .description('register every data file or sub-folder of a folder as a table')
    .option('--replace', 'replace existing registrations')
    .action(async (name: string, folder: string, opts: { replace?: boolean }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const d = databaseOf(name);
        const found = await discoverTables(path.resolve(folder));
        const bar = progress(`registering ${found.length} tables`, found.length);
        const done: { table: string; columns: number; files: number }[] = [];
        try {
          for (const [i, t] of found.entries()) {
            const res = await client.call<{ table: TableJson; files: number }>('POST', '/v1/tables/lake', {
              catalog: d.catalog,
              database: d.database,
              table: t.table,
              location: t.location,
              hivePartitioning: t.hivePartitioning,
              ...(opts.replace === undefined ? {} : { replace: opts.replace }),
            });
            done.push({ table: `${name}.${t.table}`, columns: res.table.columns.length, files: res.files });
            bar.update(i + 1);
          }
        } finally {
          bar.stop();
        }
        emit(out, { tables: done }, () => table(done, ['table', 'columns', 'files']));
      }),
    );

  catalog
    .command('register-postgres <catalog.database>')
    .description('register every table of a PostgreSQL schema (the global --url stays the Steward server)')
    .requiredOption('--source-url <url>', 'postgres:// connection string of the source database (the password is never stored)')
    .option('--schema <schema>', 'schema name', 'public')
    .option('--replace', 'replace existing registrations')
    .action(async (name: string, opts: { sourceUrl: string; schema: string; replace?: boolean }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const d = databaseOf(name);
        const r = await client.call<{ tables: string[] }>('POST', '/v1/tables/postgres', {
          catalog: d.catalog,
          database: d.database,
          url: opts.sourceUrl,
          schema: opts.schema,
          ...(opts.replace === undefined ? {} : { replace: opts.replace }),
        });
        emit(out, r, () => `registered ${r.tables.length} table(s): ${r.tables.join(', ')}`);
      }),
    );

  catalog
    .command('refresh <table>')
    .description('re-read a table schema and report added, removed and retyped columns')
    .option('--source-url <url>', 'a table registered from PostgreSQL: its connection string again (Steward never stores the password)')
    .action(async (name: string, o: { sourceUrl?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ added: { name: string }[]; removed: { name: string }[]; retyped: { name: string; from: string; to: string }[] }>(
          'POST',
          `/v1/tables/${tablePath(name)}/refresh`,
          o.sourceUrl === undefined ? {} : { sourceUrl: o.sourceUrl },
        );
        emit(out, r, () =>
          [
            `added: ${r.added.map((c) => c.name).join(', ') || '-'}`,
            `removed: ${r.removed.map((c) => c.name).join(', ') || '-'}`,
            `retyped: ${r.retyped.map((c) => `${c.name} ${c.from} -> ${c.to}`).join(', ') || '-'}`,
          ].join('\n'),
        );
      }),
    );

  catalog
    .command('drop <resource>')
    .description('drop a catalog, database or table registration')
    .option('--cascade', 'also remove tags, filters and grants that point into it')
    .action(async (name: string, opts: { cascade?: boolean }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = parseResource(name);
        if (r === null || r.level === 'column') throw new StewardError('STEWARD_E_VALIDATION', `\`${name}\` is not a catalog, database or table`);
        const q = opts.cascade === true ? '?cascade=true' : '';
        const p =
          r.level === 'catalog'
            ? `/v1/catalogs/${enc(r.catalog)}`
            : r.level === 'database'
              ? `/v1/databases/${enc(r.catalog)}/${enc(r.database)}`
              : `/v1/tables/${tablePath(name)}`;
        const res = await client.call('DELETE', `${p}${q}`);
        emit(out, res, () => `dropped ${name}`);
      }),
    );
}

/**
 * `steward query "SQL"`: governed SQL over catalog tables, plus the workbench
 * (`steward query-history`, `steward saved-query …`). Every command is an API
 * call; results come back as JSON and are printed as a table, a JSON array of
 * objects (`--format json`) or CSV.
 *
 * `--as PRINCIPAL` is for admins (the server refuses it for anyone else, and
 * logs it as impersonation).
 */
import type { Command } from 'commander';
import { StewardError, isStewardError } from '../errors.js';
import { LOCAL_ADMIN } from '../server/actor.js';
import type { Client } from './client.js';
import { emit, table, type Cell } from './output.js';
import { enc, withClient } from './run.js';

interface ResultJson {
  columns: { name: string; type: string }[];
  rows: Record<string, unknown>[];
  rowCount: number;
  truncated: boolean;
  durationMs: number;
  tables: string[];
  error?: { code: string; message: string };
}

interface SavedJson {
  id: string;
  owner: string;
  name: string;
  description?: string;
  sql: string;
  parameters: string[];
  sharedWith: string[];
}

const FORMATS = ['table', 'json', 'csv'] as const;
type Format = (typeof FORMATS)[number];

function parseFormat(text: string): Format {
  if (!(FORMATS as readonly string[]).includes(text)) throw new StewardError('STEWARD_E_VALIDATION', `unknown format \`${text}\`: use table, json or csv`);
  return text as Format;
}

/** `--param name=value`; numbers, true/false and null are typed, anything else is a string. */
function collectParam(text: string, previous: Record<string, string | number | boolean | null> = {}): Record<string, string | number | boolean | null> {
  const i = text.indexOf('=');
  if (i <= 0) throw new StewardError('STEWARD_E_VALIDATION', `\`${text}\` is not NAME=VALUE`);
  const name = text.slice(0, i).trim();
  const raw = text.slice(i + 1);
  let value: string | number | boolean | null = raw;
  if (raw === 'null') value = null;
  else if (raw === 'true' || raw === 'false') value = raw === 'true';
  else if (raw.trim() !== '' && /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(raw.trim())) value = Number(raw);
  return { ...previous, [name]: value };
}

function cellText(v: unknown): Cell {
  if (v === null || v === undefined) return null;
  if (typeof v === 'object') return JSON.stringify(v);
  return v as Cell;
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const text = typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replaceAll('"', '""')}"` : text;
}

function printResult(r: ResultJson, format: Format): void {
  if (r.error !== undefined) throw new StewardError('STEWARD_E_VALIDATION', r.error.message);
  const names = r.columns.map((c) => c.name);
  switch (format) {
    case 'json':
      process.stdout.write(`${JSON.stringify(r.rows, null, 2)}\n`);
      break;
    case 'csv':
      process.stdout.write(`${names.map(csvCell).join(',')}\n`);
      for (const row of r.rows) process.stdout.write(`${names.map((n) => csvCell(row[n])).join(',')}\n`);
      break;
    case 'table': {
      const rows = r.rows.map((row) => Object.fromEntries(names.map((n) => [n, cellText(row[n])])));
      process.stdout.write(`${rows.length === 0 ? '(no rows)' : table(rows, names)}\n`);
      process.stderr.write(`${r.rowCount} row(s)${r.truncated ? ' (truncated)' : ''} in ${r.durationMs} ms\n`);
      break;
    }
    default: {
      const never: never = format;
      return never;
    }
  }
}

/**
 * Runs a governed query. The local admin (the embedded CLI, or the local
 * server's token) governs but holds no data grants, so without `--as` the
 * server's not-found would read as a missing table: say what is going on.
 */
async function runQuery(client: Client, body: Record<string, unknown>): Promise<ResultJson> {
  let failure: StewardError;
  try {
    const r = await client.call<ResultJson>('POST', '/v1/query', body);
    if (r.error === undefined) return r;
    failure = new StewardError('STEWARD_E_VALIDATION', r.error.message);
  } catch (e) {
    if (!isStewardError(e)) throw e;
    failure = e;
  }
  const refused = ['STEWARD_E_NOT_FOUND', 'STEWARD_E_FORBIDDEN'].includes(failure.code) || /not found|not permitted/i.test(failure.message);
  if (!refused || body['as'] !== undefined || !(await isLocalAdmin(client))) throw failure;
  throw new StewardError(
    'STEWARD_E_FORBIDDEN',
    `the local admin (\`${LOCAL_ADMIN.principal}\`) manages policy but has no data access: run the query as a principal with \`--as\`, e.g. \`steward query --as alice "…"\`, or give it a grant: \`steward user add local-admin\`, then \`steward grant create --principal local-admin --resource <table> --permissions SELECT\``,
    { cause: failure },
  );
}

async function isLocalAdmin(client: Client): Promise<boolean> {
  const me = await client.call<{ principal: string }>('GET', '/v1/me').catch(() => null);
  return me?.principal === LOCAL_ADMIN.principal;
}

interface RunOpts {
  as?: string;
  format: string;
  param?: Record<string, string | number | boolean | null>;
  maxRows?: string;
  timeout?: string;
}

function runBody(opts: RunOpts): Record<string, unknown> {
  return {
    format: 'json',
    ...(opts.as === undefined ? {} : { as: opts.as }),
    ...(opts.param === undefined ? {} : { params: opts.param }),
    ...(opts.maxRows === undefined ? {} : { maxRows: Number(opts.maxRows) }),
    ...(opts.timeout === undefined ? {} : { timeoutMs: Number(opts.timeout) }),
  };
}

function addRunOptions(cmd: Command): Command {
  return cmd
    .option('--as <principal>', 'run with this principal\'s permissions (admins only; audited)')
    .option('--format <format>', 'table, json (an array of row objects) or csv', 'table')
    .option('--param <name=value>', 'a parameter value (repeatable), bound, never spliced', collectParam)
    .option('--max-rows <n>', 'return at most this many rows')
    .option('--timeout <ms>', 'stop the query after this many milliseconds');
}

export function registerQueryCommands(program: Command): void {
  addRunOptions(
    program
      .command('query <sql>')
      .description('run read-only SQL over catalog tables (`database.table`), with every table, column and row permission enforced'),
  ).action(async (sql: string, opts: RunOpts, cmd: Command) =>
    withClient(cmd, async ({ client, out }) => {
      const format = out.json ? 'json' : parseFormat(opts.format);
      const r = await runQuery(client, { sql, ...runBody(opts) });
      printResult(r, format);
    }),
  );

  program
    .command('query-history')
    .description('recent governed queries: who, SQL, tables, duration, rows, allowed or refused')
    .option('--principal <principal>', 'another principal (admins only)')
    .option('--limit <n>', 'entries to show', '20')
    .action(async (opts: { principal?: string; limit: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const qs = new URLSearchParams({ limit: opts.limit, ...(opts.principal === undefined ? {} : { principal: opts.principal }) });
        const r = await client.call<{ entries: Record<string, unknown>[] }>('GET', `/v1/query/history?${qs.toString()}`);
        emit(out, r, () =>
          table(
            r.entries.map((e) => ({
              id: e['id'] as number,
              at: e['at'] as string,
              principal: e['principal'] as string,
              outcome: e['outcome'] as string,
              rows: e['rowCount'] as number,
              ms: e['durationMs'] as number,
              tables: (e['tables'] as string[]).join(','),
              sql: String(e['sql']).replace(/\s+/g, ' ').slice(0, 60),
            })),
            ['id', 'at', 'principal', 'outcome', 'rows', 'ms', 'tables', 'sql'],
          ),
        );
      }),
    );

  const saved = program.command('saved-query').description('saved queries with ${param} parameters, shared with groups');
  saved
    .command('list')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ queries: SavedJson[] }>('GET', '/v1/saved-queries');
        emit(out, r, () =>
          table(
            r.queries.map((q) => ({ id: q.id, owner: q.owner, name: q.name, parameters: q.parameters.join(','), shared: q.sharedWith.join(',') })),
            ['id', 'owner', 'name', 'parameters', 'shared'],
          ),
        );
      }),
    );
  saved
    .command('save <name> <sql>')
    .description('save a query; write parameters as ${name}')
    .option('--description <text>')
    .action(async (name: string, sql: string, opts: { description?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<SavedJson>('POST', '/v1/saved-queries', { name, sql, ...opts });
        emit(out, r, () => `saved query ${r.id} (${r.name})${r.parameters.length > 0 ? ` with parameters ${r.parameters.join(', ')}` : ''}`);
      }),
    );
  saved
    .command('show <id>')
    .action(async (id: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<SavedJson>('GET', `/v1/saved-queries/${enc(id)}`);
        emit(out, r, () => `${r.id}  ${r.name}  (owner ${r.owner}; shared with ${r.sharedWith.join(', ') || 'nobody'})\n${r.sql}`);
      }),
    );
  saved
    .command('rm <id>')
    .action(async (id: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/saved-queries/${enc(id)}`);
        emit(out, r, () => `saved query ${id} deleted`);
      }),
    );
  saved
    .command('share <id> <group>')
    .action(async (id: string, group: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<SavedJson>('PUT', `/v1/saved-queries/${enc(id)}/shares/${enc(group)}`);
        emit(out, r, () => `saved query ${id} shared with ${r.sharedWith.join(', ')}`);
      }),
    );
  saved
    .command('unshare <id> <group>')
    .action(async (id: string, group: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<SavedJson>('DELETE', `/v1/saved-queries/${enc(id)}/shares/${enc(group)}`);
        emit(out, r, () => `saved query ${id} shared with ${r.sharedWith.join(', ') || 'nobody'}`);
      }),
    );
  addRunOptions(saved.command('run <id>').description('run a saved query with your own permissions')).action(async (id: string, opts: RunOpts, cmd: Command) =>
    withClient(cmd, async ({ client, out }) => {
      const format = out.json ? 'json' : parseFormat(opts.format);
      const r = await client.call<ResultJson>('POST', `/v1/saved-queries/${enc(id)}/run`, runBody(opts));
      printResult(r, format);
    }),
  );
}

/**
 * `steward share …`: sharing across workspaces (docs/sharing.md). `identity`
 * prints this workspace's public key; `trust` records another workspace's;
 * `create`, `list`, `revoke` manage the shares this workspace produces;
 * `pull` and `status` the ones it receives; `read` reads a received share
 * through its producer.
 */
import type { Command } from 'commander';
import { StewardError } from '../errors.js';
import { emit, table } from './output.js';
import { enc, withClient } from './run.js';

interface ShareJson {
  name: string;
  peer: string;
  catalog: string;
  status: string;
  cursor: number;
  spec: { databases: string[]; tables: string[] };
  lastServedAt: string | null;
  /** Tables kept from the consumer by a residency guardrail (absent from older servers). */
  withheld?: { table: string; guardrail: string }[];
}

interface SubscriptionJson {
  peer: string;
  share: string;
  catalog: string;
  status: string;
  cursor: number;
  tables: number;
  conflicts: { key: string; message: string }[];
  lastPullAt: string | null;
  lastError: string | null;
}

interface PullJson {
  peer: string;
  share: string;
  catalog: string;
  status: string;
  from: number;
  to: number;
  entries: number;
  full: boolean;
  conflicts: { key: string; message: string }[];
  error?: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** `table:rest` options (`lake.sales.orders:ssn,email`), keyed by the table. */
function byTable(option: string, values: readonly string[], split: (rest: string) => unknown): Record<string, never> {
  const out: Record<string, unknown> = {};
  for (const v of values) {
    const at = v.indexOf(':');
    if (at <= 0 || at === v.length - 1) throw new StewardError('STEWARD_E_VALIDATION', `${option}: \`${v}\` is not \`catalog.database.table:…\``, { details: [{ path: option, message: 'missing table' }] });
    out[v.slice(0, at).trim()] = split(v.slice(at + 1));
  }
  return out as Record<string, never>;
}

const shareRows = (shares: ShareJson[]): string =>
  table(
    shares.map((s) => ({ name: s.name, to: s.peer, objects: [...s.spec.databases.map((d) => `${s.catalog}.${d}`), ...s.spec.tables.map((t) => `${s.catalog}.${t}`)].join(','), status: s.status, cursor: s.cursor, served: s.lastServedAt ?? '', withheld: (s.withheld ?? []).map((w) => `${w.table} (${w.guardrail})`).join(',') })),
    ['name', 'to', 'objects', 'status', 'cursor', 'served', 'withheld'],
  );

const subscriptionRows = (subs: SubscriptionJson[]): string =>
  table(
    subs.map((s) => ({ from: s.peer, share: s.share, catalog: s.catalog, status: s.status, cursor: s.cursor, tables: s.tables, conflicts: s.conflicts.length, pulled: s.lastPullAt ?? '', error: s.lastError ?? '' })),
    ['from', 'share', 'catalog', 'status', 'cursor', 'tables', 'conflicts', 'pulled', 'error'],
  );

export function registerShareCommands(program: Command): void {
  const share = program.command('share').description('share tables with other Steward workspaces, and receive theirs');

  share
    .command('identity')
    .description("print this workspace's public key (give it to the workspaces you share with)")
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ publicKey: string }>('GET', '/v1/shares/identity');
        emit(out, r, () => r.publicKey);
      }),
    );

  share
    .command('trust <name> <public-key>')
    .description("trust another workspace by its public key; --url <producer's server URL> when you will pull its shares (here --url names the other workspace: reach a server with STEWARD_URL)")
    .option('--region <region>', 'where that workspace runs (e.g. eu-west-1); residency guardrails refuse sharing their tables outside their regions, or with a workspace without one')
    .action(async (name: string, publicKey: string, o: { region?: string }, cmd: Command) => {
      const url = cmd.optsWithGlobals<{ url?: string }>().url;
      await withClient(
        cmd,
        async ({ client, out }) => {
          const r = await client.call<{ name: string; url: string | null }>('POST', '/v1/shares/peers', { name, publicKey, ...(url === undefined ? {} : { url }), ...(o.region === undefined ? {} : { region: o.region }) });
          emit(out, r, () => `Trusted ${r.name}${r.url === null ? '' : ` at ${r.url}`}.`);
        },
        { urlIsArgument: true },
      );
    });

  share
    .command('create <name>')
    .description('share tables or whole databases of one catalog with a trusted workspace')
    .requiredOption('--to <workspace>', 'the trusted workspace that receives the share')
    .option('--table <catalog.database.table>', 'a table to share (repeat for several)', collect, [])
    .option('--database <catalog.database>', 'a whole database to share, tables added later included (repeat for several)', collect, [])
    .option('--exclude-columns <table:cols>', 'columns of a table the consumer never sees, e.g. `lake.sales.orders:ssn,email` (repeat per table)', collect, [])
    .option('--rows <table:predicate>', "rows of a table the consumer may read, e.g. `lake.sales.orders:region = 'eu'` (repeat per table)", collect, [])
    .option('--direct-files', 'let a consumer on the same storage read the files directly (only for a share without column or row limits)')
    .action(async (name: string, o: { to: string; table: string[]; database: string[]; excludeColumns: string[]; rows: string[]; directFiles?: boolean }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const body = {
          name,
          to: o.to,
          objects: [...o.database, ...o.table],
          ...(o.excludeColumns.length === 0 ? {} : { excludeColumns: byTable('--exclude-columns', o.excludeColumns, (rest) => rest.split(',').map((c) => c.trim()).filter((c) => c !== '')) }),
          ...(o.rows.length === 0 ? {} : { rows: byTable('--rows', o.rows, (rest) => rest) }),
          ...(o.directFiles === true ? { directFiles: true } : {}),
        };
        const r = await client.call<ShareJson>('POST', '/v1/shares', body);
        emit(out, r, () => `Shared ${body.objects.join(', ')} with ${r.peer} as \`${r.name}\`.`);
      }),
    );

  share
    .command('list')
    .description('shares this workspace produces and receives')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ shares: ShareJson[]; subscriptions: SubscriptionJson[] }>('GET', '/v1/shares');
        emit(out, r, () => `Shared by this workspace:\n${shareRows(r.shares)}\n\nReceived:\n${subscriptionRows(r.subscriptions)}`);
      }),
    );

  share
    .command('revoke <name>')
    .description('revoke a share: reads stop at once; the consumer drops its tables at its next pull')
    .action(async (name: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<ShareJson>('POST', `/v1/shares/${enc(name)}/revoke`, {});
        emit(out, r, () => `Share ${r.name} is ${r.status}.`);
      }),
    );

  share
    .command('pull')
    .description('pull the shares trusted producers offer now')
    .option('--from <workspace>', 'only this producer')
    .option('--full', 'full reconciliation: the whole shared state, removing what the producer no longer shares')
    .action(async (o: { from?: string; full?: boolean }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ pulls: PullJson[] }>('POST', '/v1/shares/pull', { ...(o.from === undefined ? {} : { peer: o.from }), ...(o.full === true ? { full: true } : {}) });
        emit(out, r, () =>
          table(
            r.pulls.map((p) => ({ from: p.peer, share: p.share, catalog: p.catalog, status: p.status, cursor: `${p.from}→${p.to}`, entries: p.entries, conflicts: p.conflicts.length, error: p.error ?? '' })),
            ['from', 'share', 'catalog', 'status', 'cursor', 'entries', 'conflicts', 'error'],
          ),
        );
        if (r.pulls.some((p) => p.error !== undefined)) process.exitCode = 1;
      }),
    );

  share
    .command('status')
    .description('identity, trusted workspaces, and the state of every share both ways')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ publicKey: string; peers: { name: string; url: string | null; lastPullAt: string | null; lastError: string | null }[]; shares: ShareJson[]; subscriptions: SubscriptionJson[] }>('GET', '/v1/shares/status');
        emit(out, r, () =>
          [
            `Public key: ${r.publicKey}`,
            '',
            'Trusted workspaces:',
            table(r.peers.map((p) => ({ name: p.name, url: p.url ?? '', pulled: p.lastPullAt ?? '', error: p.lastError ?? '' })), ['name', 'url', 'pulled', 'error']),
            '',
            'Shared by this workspace:',
            shareRows(r.shares),
            '',
            'Received:',
            subscriptionRows(r.subscriptions),
            ...r.subscriptions.flatMap((s) => s.conflicts.map((c) => `  conflict in ${s.catalog}: ${c.key}: ${c.message}`)),
          ].join('\n'),
        );
      }),
    );

  share
    .command('read <producer> <share> <sql>')
    .description("read a received share through its producer (SQL in the producer's catalog names)")
    .action(async (peer: string, name: string, sql: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ columns: string[]; rows: unknown[][]; truncated: boolean }>('POST', '/v1/shares/read', { peer, share: name, sql });
        emit(out, r, () => table(r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i] as string]))), r.columns));
      }),
    );
}

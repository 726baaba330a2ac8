/**
 * `steward audit ...` (security lake: sources, ingest, flush, verify,
 * retention, quarantine, ingest keys, queries) and `steward monitor ...`.
 */
import fs from 'node:fs/promises';
import type { Command } from 'commander';
import { StewardError } from '../errors.js';
import { emit, table } from './output.js';
import { enc, withClient } from './run.js';

const MAX_LINES = 10_000;
const MAX_BYTES = 4 * 1024 * 1024;

interface SourceJson {
  name: string;
  mapping: string;
  region: string;
  accountId: string;
  retentionDays?: number;
  events: number;
  backlog: number;
  table?: string;
}
interface IngestJson {
  accepted: number;
  quarantined: number;
  problems: { line: number; reason: string }[];
}
interface Problem {
  kind: string;
  seq: number;
  message: string;
  eventUid?: string;
  file?: string;
}
interface VerifyJson {
  source: string;
  ok: boolean;
  events: number;
  headSeq: number;
  expired: number;
  problems: Problem[];
}

function verifyText(r: VerifyJson): string {
  return r.ok
    ? `${r.source}: ${r.events} event(s), chain intact${r.expired > 0 ? ` (${r.expired} expired by retention)` : ''}`
    : [`${r.source}: ${r.problems.length} problem(s)`, ...r.problems.map((p) => `  ${p.kind} #${p.seq}: ${p.message}${p.eventUid === undefined ? '' : ` [${p.eventUid}]`}`)].join('\n');
}

interface ListedMonitor {
  name: string;
  severity: string;
  scheduleSeconds: number;
  action: { kind: string };
  lastRunAt?: string;
  lastFiredAt?: string;
  lastDelivery?: { status: string; attempts: number; nextAttemptAt?: string; lastError?: string };
}

async function readInput(file: string): Promise<string> {
  if (file !== '-') return fs.readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Lines in batches under the server's limits (line count and bytes). */
export function batches(lines: readonly string[]): string[][] {
  const out: string[][] = [];
  let cur: string[] = [];
  let bytes = 0;
  for (const l of lines) {
    if (cur.length > 0 && (cur.length >= MAX_LINES || bytes + l.length > MAX_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(l);
    bytes += l.length;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

function parseCondition(text: string): { column?: string; op: string; value: number } {
  const m = /^\s*(?:([A-Za-z_][A-Za-z0-9_]*)\s*)?(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$/.exec(text);
  if (m === null) throw new StewardError('STEWARD_E_VALIDATION', `invalid condition \`${text}\`: write \`>0\` (row count) or \`COLUMN > N\``);
  return { ...(m[1] === undefined ? {} : { column: m[1] }), op: m[2] as string, value: Number(m[3]) };
}

interface TimelineJson {
  readonly from: string;
  readonly to: string;
  readonly bucket: string;
  readonly source: string;
  readonly buckets: { time: string; source: string; allowed: number; denied: number }[];
}

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the security lake: OCSF events in partitioned Parquet');

  audit
    .command('sources')
    .description('list sources with their event count, backlog and retention')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ sources: SourceJson[] }>('GET', '/v1/audit/sources');
        emit(out, r, () =>
          table(
            r.sources.map((s) => ({ ...s, retention: s.retentionDays === undefined ? 'forever' : `${s.retentionDays}d`, table: s.table ?? '' })),
            ['name', 'mapping', 'events', 'backlog', 'retention', 'region', 'accountId', 'table'],
          ),
        );
      }),
    );

  const source = audit.command('source').description('custom sources');
  source
    .command('create <name>')
    .description('create a custom source')
    .requiredOption('--mapping <mapping>', 'cloudtrail, azure_activity or ocsf')
    .option('--region <region>', 'partition region when a record names none', 'global')
    .option('--account <account>', 'partition account when a record names none', 'external')
    .option('--retention-days <days>', 'keep this many days of day partitions')
    .option('--description <text>')
    .action(async (name: string, o: { mapping: string; region: string; account: string; retentionDays?: string; description?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<SourceJson>('POST', '/v1/audit/sources', {
          name,
          mapping: o.mapping,
          region: o.region,
          accountId: o.account,
          ...(o.retentionDays === undefined ? {} : { retentionDays: Number(o.retentionDays) }),
          ...(o.description === undefined ? {} : { description: o.description }),
        });
        emit(out, r, () => `created source ${r.name} (${r.mapping})`);
      }),
    );
  source
    .command('retention <name> <days>')
    .description('keep DAYS days of day partitions (`forever` to keep everything)')
    .action(async (name: string, days: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('PUT', `/v1/audit/sources/${enc(name)}/retention`, { days: days === 'forever' ? null : Number(days) });
        emit(out, r, () => `retention of ${name}: ${days === 'forever' ? 'forever' : `${days} day(s)`}`);
      }),
    );
  source
    .command('rm <name>')
    .description('delete a custom source (its Parquet files stay)')
    .action(async (name: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/audit/sources/${enc(name)}`);
        emit(out, r, () => `deleted source ${name}`);
      }),
    );

  audit
    .command('ingest <source> <file>')
    .description('ingest JSON lines (a file, or - for stdin) through the source mapping; unmappable lines go to quarantine')
    .action(async (name: string, file: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const lines = (await readInput(file)).split('\n');
        if (lines.at(-1) === '') lines.pop();
        const total = { source: name, accepted: 0, quarantined: 0, problems: [] as IngestJson['problems'] };
        let offset = 0;
        for (const b of batches(lines)) {
          const r = await client.call<IngestJson>('POST', `/v1/audit/sources/${enc(name)}/ingest`, { lines: b });
          total.accepted += r.accepted;
          total.quarantined += r.quarantined;
          for (const p of r.problems) if (total.problems.length < 20) total.problems.push({ line: p.line + offset, reason: p.reason });
          offset += b.length;
        }
        emit(out, total, () =>
          [`${total.accepted} event(s) accepted, ${total.quarantined} quarantined`, ...total.problems.map((p) => `  line ${p.line}: ${p.reason}`)].join('\n'),
        );
      }),
    );

  audit
    .command('timeline')
    .description('events per time bucket, allowed against denied, per part of Steward (a governed query as you)')
    .option('--from <instant>', 'start (ISO-8601; default 24 h before --to)')
    .option('--to <instant>', 'end (ISO-8601; default now)')
    .option('--bucket <size>', '1m, 5m, 15m, 1h, 6h or 1d (default 1h)')
    .option('--source <source>', 'security-lake source (default steward)')
    .action(async (o: { from?: string; to?: string; bucket?: string; source?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const q = new URLSearchParams(Object.entries(o).filter((e): e is [string, string] => e[1] !== undefined)).toString();
        const r = await client.call<TimelineJson>('GET', `/v1/audit/timeline${q === '' ? '' : `?${q}`}`);
        emit(out, r, () => `${r.source} from ${r.from} to ${r.to}, per ${r.bucket}\n${table(r.buckets, ['time', 'source', 'allowed', 'denied'])}`);
      }),
    );

  audit
    .command('flush')
    .description('write every waiting event to Parquet now')
    .option('--source <source>', 'only this source')
    .action(async (o: { source?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ results: { source: string; events: number; batches: number; headSeq: number }[] }>('POST', '/v1/audit/flush', o);
        emit(out, r, () => table(r.results, ['source', 'events', 'batches', 'headSeq']));
      }),
    );

  audit
    .command('verify [source]')
    .description("check a source's hash chain (every source when none is named); exits 1 and names each modified, deleted or reordered event")
    .action(async (name: string | undefined, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        if (name !== undefined) {
          const r = await client.call<VerifyJson>('GET', `/v1/audit/sources/${enc(name)}/verify`);
          emit(out, r, () => verifyText(r));
          if (!r.ok) process.exitCode = 1;
          return;
        }
        const all = await client.call<{ ok: boolean; reports: VerifyJson[] }>('GET', '/v1/audit/verify');
        emit(out, all, () => all.reports.map(verifyText).join('\n'));
        if (!all.ok) process.exitCode = 1;
      }),
    );

  audit
    .command('retention')
    .description('remove expired day partitions now')
    .option('--source <source>')
    .action(async (o: { source?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ results: { source: string; removed: string[]; events: number }[] }>('POST', '/v1/audit/retention', o);
        emit(out, r, () => table(r.results.map((x) => ({ source: x.source, partitions: x.removed.length, events: x.events })), ['source', 'partitions', 'events']));
      }),
    );

  audit
    .command('compact')
    .description('merge the small files of each closed day partition into one, recorded in the hash chain')
    .option('--source <source>')
    .action(async (o: { source?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ results: { source: string; partitions: string[]; filesBefore: number; events: number; refused: string[] }[] }>('POST', '/v1/audit/compact', o);
        emit(out, r, () => table(r.results.map((x) => ({ source: x.source, partitions: x.partitions.length, files: x.filesBefore, events: x.events, refused: x.refused.length })), ['source', 'partitions', 'files', 'events', 'refused']));
        if (r.results.some((x) => x.refused.length > 0)) process.exitCode = 1;
      }),
    );

  audit
    .command('quarantine')
    .description('records that could not be mapped, with the reason')
    .option('--source <source>')
    .option('--limit <n>', 'how many', '50')
    .action(async (o: { source?: string; limit: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const q = new URLSearchParams({ limit: o.limit, ...(o.source === undefined ? {} : { source: o.source }) });
        const r = await client.call<{ entries: { id: number; source: string; line?: number; reason: string; record: string }[] }>('GET', `/v1/audit/quarantine?${q}`);
        emit(out, r, () => table(r.entries.map((e) => ({ ...e, record: e.record.slice(0, 60) })), ['id', 'source', 'line', 'reason', 'record']));
      }),
    );

  audit
    .command('query <sql>')
    .description('run one SELECT over the security tables (steward.security.<source>)')
    .action(async (sql: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ rows: Record<string, unknown>[] }>('POST', '/v1/audit/query', { sql });
        const cols = Object.keys(r.rows[0] ?? {});
        emit(out, r, () =>
          table(
            r.rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, v !== null && typeof v === 'object' ? JSON.stringify(v) : (v as string)]))),
            cols,
          ),
        );
      }),
    );

  const key = audit.command('key').description('ingest keys: the only credential the HTTP ingest endpoint takes');
  key
    .command('create <source>')
    .requiredOption('--name <name>', 'what the key is for')
    .action(async (name: string, o: { name: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ id: string; key: string }>('POST', `/v1/audit/sources/${enc(name)}/keys`, { name: o.name });
        emit(out, r, () => `${r.key}\n(shown once: POST newline-delimited JSON to /v1/audit/ingest/${name} with Authorization: Bearer <key>)`);
      }),
    );
  key
    .command('list')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ keys: Record<string, string>[] }>('GET', '/v1/audit/keys');
        emit(out, r, () => table(r.keys, ['id', 'source', 'name', 'createdAt', 'lastUsedAt', 'revokedAt']));
      }),
    );
  key
    .command('revoke <id>')
    .action(async (id: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/audit/keys/${enc(id)}`);
        emit(out, r, () => `revoked ${id}`);
      }),
    );

  const monitor = program.command('monitor').description('scheduled SQL over the security lake that alerts (webhook, PagerDuty, email)');
  monitor
    .command('create <name>')
    .description('create a monitor (or pass the whole definition as JSON with --file)')
    .option('--file <file>', 'a JSON monitor definition (as POST /v1/monitors takes)')
    .option('--sql <sql>', 'one SELECT over steward.security.<source>')
    .option('--every <seconds>', 'schedule', '60')
    .option('--condition <condition>', '`>0` compares the row count, `COLUMN > N` a column of any row', '>0')
    .option('--severity <severity>', 'critical, error, warning or info', 'warning')
    .option('--throttle <seconds>', 'at most one notification per this many seconds', '300')
    .option('--webhook <url>', 'POST a JSON summary to this URL')
    .option('--pagerduty <url>', 'POST a PagerDuty Events API v2 body to this URL (https://events.pagerduty.com/v2/enqueue)')
    .option('--routing-key <key>', 'PagerDuty integration key')
    .option('--email <to>', 'send mail to these addresses (comma-separated)')
    .option('--from <from>', 'sender address')
    .option('--smtp <host:port>', 'SMTP server')
    .option('--description <text>')
    .action(async (name: string, o: Record<string, string | undefined>, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        let body: Record<string, unknown>;
        if (o['file'] !== undefined) {
          body = { ...(JSON.parse(await fs.readFile(o['file'], 'utf8')) as Record<string, unknown>), name };
        } else {
          if (o['sql'] === undefined) throw new StewardError('STEWARD_E_VALIDATION', 'pass --sql or --file');
          let action: Record<string, unknown>;
          if (o['webhook'] !== undefined) action = { kind: 'webhook', url: o['webhook'] };
          else if (o['pagerduty'] !== undefined || o['routingKey'] !== undefined)
            action = { kind: 'pagerduty', ...(o['pagerduty'] === undefined ? {} : { url: o['pagerduty'] }), routingKey: o['routingKey'] ?? '' };
          else if (o['email'] !== undefined) {
            const [host, port] = (o['smtp'] ?? 'localhost:25').split(':');
            action = { kind: 'email', to: o['email'].split(','), from: o['from'] ?? 'steward@localhost', smtp: { host, port: Number(port ?? 25) } };
          } else throw new StewardError('STEWARD_E_VALIDATION', 'pass an action: --webhook, --pagerduty/--routing-key or --email');
          body = {
            name,
            sql: o['sql'],
            scheduleSeconds: Number(o['every']),
            condition: parseCondition(o['condition'] ?? '>0'),
            severity: o['severity'],
            throttleSeconds: Number(o['throttle']),
            action,
            ...(o['description'] === undefined ? {} : { description: o['description'] }),
          };
        }
        const r = await client.call<{ name: string }>('POST', '/v1/monitors', body);
        emit(out, r, () => `created monitor ${r.name}`);
      }),
    );
  monitor
    .command('list')
    .description('monitors with their last run and the status of their last delivery (attempts, error)')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ monitors: ListedMonitor[] }>('GET', '/v1/monitors');
        emit(out, r, () =>
          table(
            r.monitors.map((m) => ({
              name: m.name,
              severity: m.severity,
              every: `${m.scheduleSeconds}s`,
              action: m.action.kind,
              lastRun: m.lastRunAt,
              lastFired: m.lastFiredAt,
              delivery: m.lastDelivery?.status,
              attempts: m.lastDelivery?.attempts,
              nextAttempt: m.lastDelivery?.nextAttemptAt,
              error: m.lastDelivery?.lastError?.split('\n')[0]?.slice(0, 80),
            })),
            ['name', 'severity', 'every', 'action', 'lastRun', 'lastFired', 'delivery', 'attempts', 'nextAttempt', 'error'],
          ),
        );
      }),
    );
  monitor
    .command('test <name>')
    .description('run a monitor now and send a test notification (--no-send: only evaluate)')
    .option('--no-send', 'do not send')
    .action(async (name: string, o: { send: boolean }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ rows: number; triggered: boolean; sent: boolean; error?: string; sample: unknown[] }>('POST', `/v1/monitors/${enc(name)}/test`, { send: o.send });
        emit(out, r, () =>
          [`${name}: ${r.rows} row(s), ${r.triggered ? 'TRIGGERED' : 'not triggered'}${r.sent ? ', test notification sent' : ''}`, ...(r.error === undefined ? [] : [`  error: ${r.error}`])].join('\n'),
        );
        if (r.error !== undefined) process.exitCode = 1;
      }),
    );
  monitor
    .command('delete <name>')
    .alias('rm')
    .action(async (name: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/monitors/${enc(name)}`);
        emit(out, r, () => `deleted monitor ${name}`);
      }),
    );
}

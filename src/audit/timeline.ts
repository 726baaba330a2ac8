/**
 * Decisions over time: the security lake's events counted per time bucket and
 * per source, allowed against denied (`GET /v1/audit/timeline`).
 *
 * The count is an ordinary governed query over `steward.security.<source>`
 * run as the caller through the gateway: the same table, column and row
 * checks as the audit search, and one `query.run` entry in the decision log.
 * Whoever may not read the lake table gets the gateway's refusal, not a
 * back door. The window and bucket are bound as parameters, never spliced.
 *
 * For Steward's own events the source is the part of Steward that decided
 * (the decision API, the query gateway, warehouse sync, just-in-time access,
 * sign-in, administration); an event of a custom source counts under the
 * source's name.
 */
import { z } from 'zod';
import type { DuckDBValue } from '@duckdb/node-api';
import { toPlainValue } from '../lake/duckdb.js';
import { StewardError } from '../errors.js';
import type { PrincipalRef } from '../policy/model.js';
import type { GatewayService } from '../gateway/gateway-service.js';
import { SECURITY_CATALOG, SECURITY_DATABASE } from './security-sql.js';

export const BUCKETS = { '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '6h': 21_600_000, '1d': 86_400_000 } as const;
export type BucketName = keyof typeof BUCKETS;

/** More buckets than this is a chart nobody can read and a result nobody needs: pick a wider bucket. */
export const MAX_BUCKETS = 2000;
const DEFAULT_WINDOW_MS = 86_400_000;

const Instant = z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time, e.g. 2026-01-31T12:00:00Z' });

export const TimelineQuerySchema = z
  .object({
    from: Instant.optional(),
    to: Instant.optional(),
    bucket: z.enum(Object.keys(BUCKETS) as [BucketName, ...BucketName[]]).optional(),
    source: z.string().trim().min(1).max(63).regex(/^[a-z][a-z0-9_]*$/, 'must be a lowercase identifier starting with a letter').optional(),
  })
  .strict();
export type TimelineQuery = z.infer<typeof TimelineQuerySchema>;

export const TimelineSchema = z.object({
  from: z.string(),
  to: z.string(),
  bucket: z.string(),
  source: z.string(),
  buckets: z.array(z.object({ time: z.string(), source: z.string(), allowed: z.number(), denied: z.number() })),
});
export type Timeline = z.infer<typeof TimelineSchema>;

export interface TimelineWindow {
  readonly fromMs: number;
  readonly toMs: number;
  readonly bucket: BucketName;
  readonly source: string;
}

/** The window asked for, checked: `from` before `to`, and at most MAX_BUCKETS buckets in between. */
export function timelineWindow(q: TimelineQuery, now: number = Date.now()): TimelineWindow {
  const bucket = q.bucket ?? '1h';
  const toMs = q.to === undefined ? now : Date.parse(q.to);
  const fromMs = q.from === undefined ? toMs - DEFAULT_WINDOW_MS : Date.parse(q.from);
  if (fromMs >= toMs) throw invalid('query.from', `must be before \`to\` (${new Date(toMs).toISOString()})`);
  const count = Math.ceil((toMs - fromMs) / BUCKETS[bucket]);
  if (count > MAX_BUCKETS) throw invalid('query.bucket', `\`${bucket}\` makes ${count} buckets between \`from\` and \`to\`; at most ${MAX_BUCKETS}: choose a wider bucket or a shorter window`);
  return { fromMs, toMs, bucket, source: q.source ?? 'steward' };
}

function invalid(path: string, message: string): StewardError {
  return new StewardError('STEWARD_E_VALIDATION', `${path}: ${message}`, { details: [{ path, message }] });
}

/** Which part of Steward decided, from the decision-log action an event of the `steward` source carries. */
const STEWARD_PART_SQL = `CASE
    WHEN metadata.event_code LIKE 'authorize.%' OR metadata.event_code LIKE 'who-can-access%' OR metadata.event_code = 'effective-permissions' THEN 'decision API'
    WHEN metadata.event_code LIKE 'query.%' OR metadata.event_code LIKE 'saved-query.%' THEN 'gateway'
    WHEN metadata.event_code LIKE 'sync.%' OR metadata.event_code LIKE 'warehouse.%' THEN 'sync'
    WHEN metadata.event_code LIKE 'access.%' THEN 'JIT access'
    WHEN metadata.event_code LIKE 'auth.%' OR metadata.event_code LIKE 'login%' OR metadata.event_code LIKE 'idp.%' THEN 'sign-in'
    ELSE 'administration'
  END`;

/** The governed SQL of a window: names are checked identifiers, every value is a parameter. */
export function timelineSql(source: string): string {
  const part = source === 'steward' ? STEWARD_PART_SQL : `'${source}'`;
  return `SELECT (time // $bucket) * $bucket AS bucket, ${part} AS source,
  count(*) FILTER (WHERE status_id = 1) AS allowed,
  count(*) FILTER (WHERE status_id <> 1) AS denied
FROM ${SECURITY_CATALOG}.${SECURITY_DATABASE}.${source}
WHERE time >= $from AND time < $to
GROUP BY 1, 2
ORDER BY 1, 2`;
}

export interface TimelineRun {
  readonly gateway: GatewayService;
  readonly principal: PrincipalRef;
  readonly actor: string;
  readonly signal?: AbortSignal;
}

export async function decisionTimeline(run: TimelineRun, w: TimelineWindow): Promise<Timeline> {
  const bucketMs = BUCKETS[w.bucket];
  const stream = await run.gateway.gateway.open({
    principal: run.principal,
    actor: run.actor,
    sql: timelineSql(w.source),
    // Buckets start at multiples of the bucket size (UTC), so a chart's columns line up from one request to the next.
    params: { bucket: bucketMs, from: w.fromMs, to: w.toMs },
    maxRows: MAX_BUCKETS * 16,
    ...(run.signal === undefined ? {} : { signal: run.signal }),
  });
  const buckets: Timeline['buckets'] = [];
  for await (const batch of stream.batches()) {
    for (const row of batch) buckets.push(bucketOf(row));
  }
  await stream.summary;
  return { from: new Date(w.fromMs).toISOString(), to: new Date(w.toMs).toISOString(), bucket: w.bucket, source: w.source, buckets };
}

function bucketOf(row: DuckDBValue[]): Timeline['buckets'][number] {
  const [time, source, allowed, denied] = row.map((v) => toPlainValue(v as DuckDBValue));
  return { time: new Date(Number(time)).toISOString(), source: String(source), allowed: Number(allowed), denied: Number(denied) };
}

/**
 * Moves events from the outbox to Parquet, one source and one batch at a time:
 *
 *   1. claim (one transaction): take up to `batchSize` unclaimed rows, stamp
 *      them with a batch number, and record the batch as `pending` on the
 *      source together with the chain position it starts from;
 *   2. write: map, conform and chain the rows in id order, and write one file
 *      per partition named after the batch (`b000000000042.parquet`);
 *   3. commit (one transaction): advance the chain head, clear `pending`,
 *      and drop ingested rows from the outbox.
 *
 * A crash after 1 or 2 leaves `pending` set; the next flush redoes that very
 * batch (same rows, same start of chain, so the same bytes under the same
 * names) before anything else, so a batch is never lost and never doubled.
 * An unwritable lake fails step 2 with a clear error and changes nothing.
 */
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { isPidAlive } from '../store/workspace.js';
import type { Db } from '../store/db.js';
import type { StoredDecision, DecisionResult } from '../store/decision-log.js';
import { StewardError } from '../errors.js';
import { eventDay, type OcsfEvent } from './ocsf.js';
import { chainHash, conform, conformedJson } from './lake-schema.js';
import { decisionToEvent } from './steward-events.js';
import { batchFileName, partitionDir, partitionValue, type ParquetWriter } from './parquet-writer.js';

export const STEWARD_SOURCE = 'steward';

export interface SourceRow {
  name: string;
  mapping: string;
  description: string | null;
  region: string;
  account_id: string;
  retention_days: number | null;
  head_seq: number;
  head_hash: string;
  next_batch: number;
  pending: PendingBatch | null;
  registered: boolean;
  created_at: Date;
}

export interface PendingBatch {
  readonly batch: number;
  readonly firstSeq: number;
  readonly prevHash: string;
  readonly owner: string;
  readonly claimedAt: string;
}

export interface FlushResult {
  readonly source: string;
  readonly batches: number;
  readonly events: number;
  readonly files: readonly string[];
  readonly headSeq: number;
}

export interface FlusherOptions {
  readonly db: Db;
  readonly lakeDir: string;
  readonly writer: ParquetWriter;
  readonly batchSize?: number;
  /** A pending batch claimed by another process is taken over after this long. */
  readonly staleMs?: number;
  /** Test hook: runs after the files of a batch are written and before the batch is marked written. */
  readonly afterWrite?: (batch: number) => Promise<void> | void;
  /** Called once a source has files, so it can become a catalog table. */
  readonly onFirstFiles?: (source: string) => Promise<void>;
}

export interface Flusher {
  /** Flushes every pending row of one source (or of all sources), batch after batch. */
  flush(source?: string): Promise<FlushResult[]>;
  /** Rows waiting per source. */
  backlog(): Promise<Record<string, number>>;
}

interface DecisionRow {
  id: number;
  at: Date;
  actor: string;
  action: string;
  resource: string;
  result: DecisionResult;
  reason: string;
  details: Record<string, unknown> | null;
}

interface Chained {
  readonly partition: string;
  readonly dir: string;
  readonly line: string;
}

/**
 * Conforms and chains events in order, returning the NDJSON line of each and
 * the new head. Pure apart from hashing; shared by the flusher and the benchmark.
 */
export function chainEvents(
  events: readonly OcsfEvent[],
  start: { seq: number; hash: string },
): { lines: string[]; conformed: OcsfEvent[]; headSeq: number; headHash: string } {
  let prev = start.hash;
  let seq = start.seq;
  const lines: string[] = [];
  const conformed: OcsfEvent[] = [];
  for (const e of events) {
    const c = conform(e).event;
    const canonical = conformedJson(c);
    const hash = chainHash(prev, canonical);
    seq += 1;
    // The chain columns lead the line; the event's own (sorted) keys follow unchanged.
    lines.push(`{"hash":"${hash}","prev_hash":"${prev}","seq":${seq}${canonical.length > 2 ? `,${canonical.slice(1)}` : '}'}`);
    conformed.push(c);
    prev = hash;
  }
  return { lines, conformed, headSeq: seq, headHash: prev };
}

export function createFlusher(options: FlusherOptions): Flusher {
  const { db, lakeDir, writer } = options;
  const batchSize = options.batchSize ?? 50_000;
  const staleMs = options.staleMs ?? 5 * 60_000;
  const owner = `${os.hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
  /** A batch claimed by a process that died on this host is taken over at once; elsewhere, after `staleMs`. */
  const ownerGone = (other: string): boolean => {
    const [host, pid] = other.split('/');
    return host === os.hostname() && Number(pid) !== process.pid && !isPidAlive(Number(pid));
  };
  const running = new Map<string, Promise<FlushResult>>();

  async function claim(source: string): Promise<{ src: SourceRow; pending: PendingBatch } | null> {
    return db.transaction(async (tx) => {
      const { rows } = await tx.query<SourceRow>('SELECT * FROM steward.audit_sources WHERE name = $1 FOR UPDATE', [source]);
      const src = rows[0];
      if (src === undefined) throw new StewardError('STEWARD_E_NOT_FOUND', `audit source \`${source}\` not found`);
      const now = new Date();
      if (src.pending !== null) {
        const age = now.getTime() - Date.parse(src.pending.claimedAt);
        if (src.pending.owner !== owner && age < staleMs && !ownerGone(src.pending.owner)) return null; // another process is writing it
        const pending = { ...src.pending, owner, claimedAt: now.toISOString() };
        await tx.query('UPDATE steward.audit_sources SET pending = $2::jsonb WHERE name = $1', [source, JSON.stringify(pending)]);
        return { src, pending };
      }
      const batch = Number(src.next_batch);
      const claimed =
        source === STEWARD_SOURCE
          ? await tx.query<{ id: number }>(
              `UPDATE steward.decision_log SET audit_batch = $1
               WHERE id IN (SELECT id FROM steward.decision_log WHERE audit_batch IS NULL ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
               RETURNING id`,
              [batch, batchSize],
            )
          : await tx.query<{ id: number }>(
              `UPDATE steward.audit_outbox SET batch = $1
               WHERE id IN (SELECT id FROM steward.audit_outbox WHERE source = $3 AND batch IS NULL ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
               RETURNING id`,
              [batch, batchSize, source],
            );
      if (claimed.rows.length === 0) return null;
      const pending: PendingBatch = { batch, firstSeq: Number(src.head_seq) + 1, prevHash: src.head_hash, owner, claimedAt: now.toISOString() };
      await tx.query('UPDATE steward.audit_sources SET pending = $2::jsonb, next_batch = next_batch + 1 WHERE name = $1', [source, JSON.stringify(pending)]);
      return { src, pending };
    });
  }

  async function loadEvents(source: string, batch: number): Promise<OcsfEvent[]> {
    if (source === STEWARD_SOURCE) {
      const { rows } = await db.query<DecisionRow>(
        'SELECT id, at, actor, action, resource, result, reason, details FROM steward.decision_log WHERE audit_batch = $1 ORDER BY id',
        [batch],
      );
      return rows.map((r) =>
        decisionToEvent({
          id: Number(r.id),
          at: r.at.toISOString(),
          actor: r.actor,
          action: r.action,
          resource: r.resource,
          result: r.result,
          reason: r.reason,
          ...(r.details === null ? {} : { details: r.details }),
        } satisfies StoredDecision),
      );
    }
    const { rows } = await db.query<{ event: OcsfEvent }>('SELECT event FROM steward.audit_outbox WHERE source = $1 AND batch = $2 ORDER BY id', [
      source,
      batch,
    ]);
    return rows.map((r) => r.event);
  }

  function partitionOf(src: SourceRow, e: OcsfEvent): { key: string; dir: string } {
    const cloud = (e['cloud'] ?? {}) as { region?: unknown; account?: { uid?: unknown } };
    const region = partitionValue(typeof cloud.region === 'string' ? cloud.region : undefined, src.region);
    const accountId = partitionValue(typeof cloud.account?.uid === 'string' ? cloud.account.uid : undefined, src.account_id);
    const time = typeof e['time'] === 'number' ? e['time'] : 0;
    const day = eventDay(time);
    return { key: `${region}/${accountId}/${day}`, dir: partitionDir(lakeDir, src.name, { region, accountId, eventDay: day }) };
  }

  async function flushBatch(source: string): Promise<{ events: number; files: string[]; headSeq: number } | null> {
    const claimed = await claim(source);
    if (claimed === null) return null;
    const { src, pending } = claimed;
    const events = await loadEvents(source, pending.batch);
    const chained = chainEvents(events, { seq: pending.firstSeq - 1, hash: pending.prevHash });
    const groups = new Map<string, { dir: string; lines: string[] }>();
    chained.conformed.forEach((e, i) => {
      const p = partitionOf(src, e);
      let g = groups.get(p.key);
      if (g === undefined) groups.set(p.key, (g = { dir: p.dir, lines: [] }));
      g.lines.push(chained.lines[i] as string);
    });
    const files: string[] = [];
    for (const g of groups.values()) files.push(await writer.write(g.dir, batchFileName(pending.batch), g.lines));
    await options.afterWrite?.(pending.batch);
    await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ pending: PendingBatch | null }>('SELECT pending FROM steward.audit_sources WHERE name = $1 FOR UPDATE', [source]);
      if (rows[0]?.pending?.batch !== pending.batch || rows[0].pending.owner !== owner) {
        throw new StewardError('STEWARD_E_CONFLICT', `batch ${pending.batch} of audit source \`${source}\` was taken over by another process`);
      }
      await tx.query('UPDATE steward.audit_sources SET head_seq = $2, head_hash = $3, pending = NULL WHERE name = $1', [
        source,
        chained.headSeq,
        chained.headHash,
      ]);
      if (source !== STEWARD_SOURCE) await tx.query('DELETE FROM steward.audit_outbox WHERE source = $1 AND batch = $2', [source, pending.batch]);
    });
    if (!src.registered) await options.onFirstFiles?.(source);
    return { events: events.length, files, headSeq: chained.headSeq };
  }

  async function flushSource(source: string): Promise<FlushResult> {
    let batches = 0;
    let count = 0;
    let headSeq = 0;
    const files: string[] = [];
    for (;;) {
      const r = await flushBatch(source);
      if (r === null) break;
      batches += 1;
      count += r.events;
      headSeq = r.headSeq;
      files.push(...r.files.map((f) => path.relative(lakeDir, f)));
    }
    if (batches === 0) {
      const { rows } = await db.query<{ head_seq: number }>('SELECT head_seq FROM steward.audit_sources WHERE name = $1', [source]);
      headSeq = Number(rows[0]?.head_seq ?? 0);
    }
    return { source, batches, events: count, files, headSeq };
  }

  /** One flush per source at a time in this process; a second caller joins the running one and then runs its own. */
  function serialized(source: string): Promise<FlushResult> {
    const before = running.get(source) ?? Promise.resolve(null);
    const next = before.catch(() => null).then(() => flushSource(source));
    running.set(source, next);
    void next.finally(() => {
      if (running.get(source) === next) running.delete(source);
    }).catch(() => {});
    return next;
  }

  return {
    async flush(source) {
      const names =
        source !== undefined ? [source] : (await db.query<{ name: string }>('SELECT name FROM steward.audit_sources ORDER BY name')).rows.map((r) => r.name);
      const out: FlushResult[] = [];
      for (const n of names) out.push(await serialized(n));
      return out;
    },
    async backlog() {
      const { rows } = await db.query<{ source: string; n: number }>(
        `SELECT 'steward' AS source, count(*)::int AS n FROM steward.decision_log WHERE audit_batch IS NULL
         UNION ALL SELECT source, count(*)::int FROM steward.audit_outbox WHERE batch IS NULL GROUP BY source`,
      );
      return Object.fromEntries(rows.map((r) => [r.source, Number(r.n)]));
    },
  };
}

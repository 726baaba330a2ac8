/**
 * Running a plan. One transaction when the plan fits in one batch; otherwise
 * bounded batches, each its own transaction together with its ledger rows.
 * Inside a batch, statements go to the server several per round trip.
 * A crash (or a kill) loses at most the open batch, which rolls back, and the
 * next plan — computed again from pg_catalog — contains exactly what is left:
 * resuming is re-running.
 *
 * A per-target advisory lock serialises applies on one warehouse: the plan is
 * computed after the lock is held, so two appliers never race on one state.
 */
import type pg from 'pg';
import { StewardError } from '../errors.js';
import type { Step } from './sync-types.js';
import { CONFIG_SCHEMA, recordSteps } from './ledger.js';

export const DEFAULT_BATCH_SIZE = 5000;

export interface ApplyOptions {
  readonly batchSize?: number;
  readonly onProgress?: (done: number, total: number) => void;
  /** Statements sent per round trip (default DEFAULT_STATEMENTS_PER_TRIP); 1 sends each on its own. */
  readonly statementsPerTrip?: number;
  /** Error text safe to show (password scrubbed). */
  readonly explain?: (e: unknown) => string;
}

export interface ApplyResult {
  readonly applied: number;
  readonly batches: number;
  readonly runId: number;
}

/** Holds the target's advisory lock (session level) while `fn` runs. */
export async function withSyncLock<T>(client: pg.Client, target: string, fn: () => Promise<T>): Promise<T> {
  await client.query(`SELECT pg_advisory_lock(hashtextextended('steward_sync:' || $1, 0))`, [target]);
  try {
    return await fn();
  } finally {
    await client.query(`SELECT pg_advisory_unlock(hashtextextended('steward_sync:' || $1, 0))`, [target]).catch(() => undefined);
  }
}

/**
 * Statements per round trip inside a batch transaction: sent together as one
 * multi-statement simple query, which PostgreSQL runs in order and aborts at
 * the first error (the transaction then rolls back as a whole).
 */
export const DEFAULT_STATEMENTS_PER_TRIP = 500;
/** A round trip also stops growing past this many bytes of SQL. */
const MAX_TRIP_BYTES = 1 << 20;

/** Splits a batch into round trips of at most `perTrip` statements and about MAX_TRIP_BYTES of text. */
export function roundTrips(batch: readonly Step[], perTrip: number): Step[][] {
  const trips: Step[][] = [];
  let current: Step[] = [];
  let bytes = 0;
  for (const s of batch) {
    if (current.length > 0 && (current.length >= perTrip || bytes + s.sql.length > MAX_TRIP_BYTES)) {
      trips.push(current);
      current = [];
      bytes = 0;
    }
    current.push(s);
    bytes += s.sql.length + 2;
  }
  if (current.length > 0) trips.push(current);
  return trips;
}

export async function applySteps(client: pg.Client, target: string, steps: readonly Step[], options: ApplyOptions = {}): Promise<ApplyResult> {
  const explain = options.explain ?? ((e: unknown) => (e instanceof Error ? e.message : String(e)));
  const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH_SIZE);
  const perTrip = Math.max(1, options.statementsPerTrip ?? DEFAULT_STATEMENTS_PER_TRIP);
  const run = await client.query<{ id: number }>(`INSERT INTO ${CONFIG_SCHEMA}.runs (target, statements) VALUES ($1, $2) RETURNING id::int8 AS id`, [target, steps.length]);
  const runId = Number(run.rows[0]?.id);
  let applied = 0;
  let batches = 0;
  /** One batch in one transaction, `trip` statements per round trip; the ledger rows go in the same transaction. */
  const runBatch = async (batch: readonly Step[], trip: number): Promise<void> => {
    await client.query('BEGIN');
    for (const t of roundTrips(batch, trip)) {
      current = t.length === 1 ? t[0] : undefined;
      await client.query(t.length === 1 ? (t[0] as Step).sql : t.map((x) => x.sql).join(';\n'));
    }
    current = undefined;
    await recordSteps(client, target, batch);
    await client.query(`UPDATE ${CONFIG_SCHEMA}.runs SET applied = applied + $2 WHERE id = $1`, [runId, batch.length]);
    await client.query('COMMIT');
  };
  let current: Step | undefined;
  for (let start = 0; start < steps.length; start += batchSize) {
    const batch = steps.slice(start, start + batchSize);
    try {
      try {
        await runBatch(batch, perTrip);
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        // a multi-statement round trip does not say which statement failed: run the batch again one
        // statement per trip (nothing of it was committed), which names the statement or, when the
        // failure was transient, applies the batch
        if (perTrip === 1 || current !== undefined || !isStatementError(e)) throw e;
        await runBatch(batch, 1);
      }
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      const message = current === undefined ? explain(e) : `\`${current.sql}\` failed: ${explain(e)}`;
      await client
        .query(`UPDATE ${CONFIG_SCHEMA}.runs SET status = 'failed', error = $2, finished_at = now() WHERE id = $1`, [runId, message.slice(0, 2000)])
        .catch(() => undefined);
      throw new StewardError('STEWARD_E_SOURCE', `warehouse \`${target}\`: ${message} (${applied} of ${steps.length} statement(s) applied in earlier batches; apply again to resume)`);
    }
    applied += batch.length;
    batches++;
    options.onProgress?.(applied, steps.length);
  }
  await client.query(`UPDATE ${CONFIG_SCHEMA}.runs SET status = 'ok', finished_at = now() WHERE id = $1`, [runId]);
  return { applied, batches, runId };
}

/** An error PostgreSQL reported for a statement (it has an SQLSTATE), as opposed to a lost connection. */
function isStatementError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' && /^[0-9A-Z]{5}$/.test((e as { code: string }).code);
}

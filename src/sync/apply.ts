/**
 * Running a plan. One transaction when the plan fits in one batch; otherwise
 * bounded batches, each its own transaction together with its ledger rows.
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

export async function applySteps(client: pg.Client, target: string, steps: readonly Step[], options: ApplyOptions = {}): Promise<ApplyResult> {
  const explain = options.explain ?? ((e: unknown) => (e instanceof Error ? e.message : String(e)));
  const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH_SIZE);
  const run = await client.query<{ id: number }>(`INSERT INTO ${CONFIG_SCHEMA}.runs (target, statements) VALUES ($1, $2) RETURNING id::int8 AS id`, [target, steps.length]);
  const runId = Number(run.rows[0]?.id);
  let applied = 0;
  let batches = 0;
  for (let start = 0; start < steps.length; start += batchSize) {
    const batch = steps.slice(start, start + batchSize);
    let current: Step | undefined;
    try {
      await client.query('BEGIN');
      for (const s of batch) {
        current = s;
        await client.query(s.sql);
      }
      current = undefined;
      await recordSteps(client, target, batch);
      await client.query(`UPDATE ${CONFIG_SCHEMA}.runs SET applied = applied + $2 WHERE id = $1`, [runId, batch.length]);
      await client.query('COMMIT');
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

/**
 * Running a plan, in two phases:
 *
 * 1. Everything but role drops, in bounded batches, each its own transaction
 *    together with its ledger rows. Revokes come first in a plan, so they
 *    commit here, before any drop is tried.
 * 2. Each role drop in a transaction of its own.
 *
 * A statement PostgreSQL refuses does not block the rest: the batch is run
 * again one statement at a time, each under a savepoint, and what fails is
 * rolled back to its savepoint, reported and left for the next sync (the next
 * plan, computed again from pg_catalog, holds it again). A lost connection
 * stops the apply; a crash (or a kill) loses at most the open transaction, so
 * resuming is re-running.
 *
 * Round trips. A statement whose text is Steward's own keywords plus quoted
 * identifiers (`identifierOnly`) may share a multi-statement round trip with
 * others: inside `"…"` only a lone `"` ends the identifier (the quoting
 * function doubles every `"`, and neither `\` nor `standard_conforming_strings`
 * matters there), so such a text cannot hold a second statement. Any other
 * statement — a row-security policy carrying a filter's literals — goes alone,
 * through the extended protocol, where the server refuses more than one
 * statement: a literal that escaped its quotes still could not run a second
 * statement.
 *
 * A per-target advisory lock serialises applies on one warehouse: the plan is
 * computed after the lock is held, so two appliers never race on one state.
 */
import type pg from 'pg';
import { StewardError } from '../errors.js';
import type { Step } from './sync-types.js';
import { CONFIG_SCHEMA, recordSteps } from './ledger.js';
import { dropRoleStatements } from './diff.js';

export const DEFAULT_BATCH_SIZE = 5000;

export interface ApplyOptions {
  readonly batchSize?: number;
  readonly onProgress?: (done: number, total: number) => void;
  /** Statements sent per round trip (default DEFAULT_STATEMENTS_PER_TRIP); 1 sends each on its own. */
  readonly statementsPerTrip?: number;
  /** Error text safe to show (password scrubbed). */
  readonly explain?: (e: unknown) => string;
}

/** A statement the warehouse refused (or that was held back because an earlier one failed); the next sync tries it again. */
export interface FailedStep {
  readonly sql: string;
  readonly error: string;
}

export interface ApplyResult {
  readonly applied: number;
  readonly batches: number;
  readonly runId: number;
  readonly failed: readonly FailedStep[];
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
 * Runs with the target's lock held: an earlier run still marked `running`
 * belongs to an applier that died (a kill -9, a lost connection), since a live
 * one would hold the lock. It is marked `interrupted`.
 */
export async function markInterruptedRuns(client: pg.Client, target: string): Promise<number> {
  const r = await client.query(
    `UPDATE ${CONFIG_SCHEMA}.runs SET status = 'interrupted', finished_at = now(), error = 'the applying process stopped before the run finished' WHERE target = $1 AND status = 'running'`,
    [target],
  );
  return r.rowCount ?? 0;
}

/**
 * Statements per round trip inside a batch transaction: sent together as one
 * multi-statement simple query, which PostgreSQL runs in order and aborts at
 * the first error (the transaction then rolls back as a whole).
 */
export const DEFAULT_STATEMENTS_PER_TRIP = 500;
/** A round trip also stops growing past this many bytes of SQL. */
const MAX_TRIP_BYTES = 1 << 20;

/**
 * True when, outside double-quoted identifiers, `sql` holds nothing that could
 * open a literal, a comment or a second statement (`'`, `$`, `\`, `;`, `--`,
 * `/*`), and every `"…"` is closed. Such a text is Steward's keywords and
 * identifiers quoted by `qi`, and is safe to join with others.
 */
export function identifierOnly(sql: string): boolean {
  let quoted = false;
  for (let i = 0; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (c === 34 /* " */) {
      quoted = !quoted; // a doubled "" inside an identifier toggles twice
      continue;
    }
    if (quoted) continue;
    if (c === 39 /* ' */ || c === 36 /* $ */ || c === 92 /* \ */ || c === 59 /* ; */) return false;
    if ((c === 45 /* - */ && sql.charCodeAt(i + 1) === 45) || (c === 47 /* / */ && sql.charCodeAt(i + 1) === 42)) return false;
  }
  return !quoted;
}

/**
 * Splits a batch into round trips of at most `perTrip` statements and about
 * MAX_TRIP_BYTES of text; a statement that is not `identifierOnly` is a trip of its own.
 */
export function roundTrips(batch: readonly Step[], perTrip: number): Step[][] {
  const trips: Step[][] = [];
  let current: Step[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (current.length > 0) trips.push(current);
    current = [];
    bytes = 0;
  };
  for (const s of batch) {
    if (!identifierOnly(s.sql)) {
      flush();
      trips.push([s]);
      continue;
    }
    if (current.length > 0 && (current.length >= perTrip || bytes + s.sql.length > MAX_TRIP_BYTES)) flush();
    current.push(s);
    bytes += s.sql.length + 2;
  }
  flush();
  return trips;
}

/** Sends one round trip: joined identifier-only statements, or one statement alone through the extended protocol. */
async function send(client: pg.Client, trip: readonly Step[]): Promise<void> {
  if (trip.length === 1 && !identifierOnly((trip[0] as Step).sql)) {
    // pg's typings lack `queryMode`; pg 8.23 honours it
    const query: pg.QueryConfig & { queryMode: 'extended' } = { text: (trip[0] as Step).sql, values: [], queryMode: 'extended' };
    await client.query(query);
    return;
  }
  await client.query(trip.map((x) => x.sql).join(';\n'));
}

const isRoleDrop = (s: Step): boolean => s.op === 'revoke' && s.item.k === 'role';

export async function applySteps(client: pg.Client, target: string, steps: readonly Step[], options: ApplyOptions = {}): Promise<ApplyResult> {
  const explain = options.explain ?? ((e: unknown) => (e instanceof Error ? e.message : String(e)));
  const batchSize = Math.max(1, options.batchSize ?? DEFAULT_BATCH_SIZE);
  const perTrip = Math.max(1, options.statementsPerTrip ?? DEFAULT_STATEMENTS_PER_TRIP);
  const run = await client.query<{ id: number }>(`INSERT INTO ${CONFIG_SCHEMA}.runs (target, statements) VALUES ($1, $2) RETURNING id::int8 AS id`, [target, steps.length]);
  const runId = Number(run.rows[0]?.id);
  const body = steps.filter((s) => !isRoleDrop(s));
  const drops = steps.filter(isRoleDrop);
  const failed: FailedStep[] = [];
  /** Roles a revoke of which failed: they still hold more than desired, so nobody is made a member of them in this run. */
  const overGranted = new Set<string>();
  let applied = 0;
  let batches = 0;

  const commit = async (done: readonly Step[]): Promise<void> => {
    await recordSteps(client, target, done);
    await client.query(`UPDATE ${CONFIG_SCHEMA}.runs SET applied = applied + $2 WHERE id = $1`, [runId, done.length]);
    await client.query('COMMIT');
    applied += done.length;
  };
  /** The fast path: the whole batch in one transaction, several statements per round trip. */
  const runBatch = async (batch: readonly Step[]): Promise<void> => {
    await client.query('BEGIN');
    for (const t of roundTrips(batch, perTrip)) await send(client, t);
    await commit(batch);
  };
  /** After a refused statement: one statement at a time, each under a savepoint; what fails is skipped. */
  const runBatchSkipping = async (batch: readonly Step[]): Promise<void> => {
    await client.query('BEGIN');
    const done: Step[] = [];
    for (const s of batch) {
      if (s.op === 'grant' && s.item.k === 'member' && overGranted.has(s.item.role)) {
        failed.push({ sql: s.sql, error: `held back: a revoke from \`${s.item.role}\` failed earlier in this run` });
        continue;
      }
      await client.query('SAVEPOINT steward_step');
      try {
        await send(client, [s]);
        await client.query('RELEASE SAVEPOINT steward_step');
        done.push(s);
      } catch (e) {
        if (!isStatementError(e)) throw e;
        await client.query('ROLLBACK TO SAVEPOINT steward_step');
        failed.push({ sql: s.sql, error: explain(e) });
        if (s.op === 'revoke' && s.item.k !== 'rls') overGranted.add(s.item.role);
      }
    }
    await commit(done);
  };
  /** One role drop in its own transaction, so a role the applying role may not drop blocks nothing else. */
  const runDrop = async (s: Step): Promise<void> => {
    const role = (s.item as { role: string }).role;
    await client.query('BEGIN');
    try {
      for (const sql of dropRoleStatements(role)) await client.query(sql);
    } catch (e) {
      await client.query('ROLLBACK');
      if (!isStatementError(e)) throw e;
      failed.push({ sql: s.sql, error: explain(e) });
      return;
    }
    await commit([s]);
  };

  try {
    for (let start = 0; start < body.length; start += batchSize) {
      const batch = body.slice(start, start + batchSize);
      try {
        await runBatch(batch);
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        if (!isStatementError(e)) throw e;
        await runBatchSkipping(batch);
      }
      batches++;
      options.onProgress?.(applied, steps.length);
    }
    for (const s of drops) {
      await runDrop(s);
      batches++;
      options.onProgress?.(applied, steps.length);
    }
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    const message = explain(e);
    await client
      .query(`UPDATE ${CONFIG_SCHEMA}.runs SET status = 'failed', error = $2, finished_at = now() WHERE id = $1`, [runId, message.slice(0, 2000)])
      .catch(() => undefined);
    throw new StewardError('STEWARD_E_SOURCE', `warehouse \`${target}\`: ${message} (${applied} of ${steps.length} statement(s) applied; apply again to resume)`);
  }
  const error = failed.length === 0 ? null : failedSummary(failed).slice(0, 2000);
  await client.query(`UPDATE ${CONFIG_SCHEMA}.runs SET status = $2, error = $3, finished_at = now() WHERE id = $1`, [runId, failed.length === 0 ? 'ok' : 'partial', error]);
  return { applied, batches, runId, failed };
}

/** One line per failed statement: `` `SQL` failed: reason ``. */
export function failedSummary(failed: readonly FailedStep[]): string {
  return failed.map((f) => `\`${f.sql}\` failed: ${f.error}`).join('; ');
}

/** An error PostgreSQL reported for a statement (it has an SQLSTATE), as opposed to a lost connection. */
function isStatementError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' && /^[0-9A-Z]{5}$/.test((e as { code: string }).code);
}

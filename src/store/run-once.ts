/**
 * Scheduled work that must not run on two servers at the same time (security
 * lake retention, a warehouse target's sync): a transaction-scoped advisory
 * lock, tried and never waited for. The server that gets it runs the job
 * while holding the lock (the transaction stays open, idle, for the job's
 * length; the job itself uses other connections); the others skip this turn.
 * A crash ends the session and so frees the lock: nothing to clean up.
 *
 * The lock says "not at the same time"; "not twice" is the job's business: it
 * must find, under the lock, that the work is already done (retention finds
 * no expired partitions left, a sync finds the version already synced).
 *
 * The embedded store has one process, but a timer and a route in that process
 * may still overlap: a per-process set covers both stores.
 */
import type { Db } from './db.js';

/** Any constant works; it only has to be the same in every Steward process (the first key of the two-key lock). */
const RUN_ONCE_LOCK_CLASS = 7_311_593;

/** Jobs running in this process, per store (tests open several stores in one process). */
const runningHere = new WeakMap<Db, Set<string>>();

/** `{ ran: false }` when another server (or another caller in this one) is running `job` now. */
export async function runOnce<T>(db: Db, job: string, fn: () => Promise<T>): Promise<{ ran: true; value: T } | { ran: false }> {
  const here = runningHere.get(db) ?? new Set<string>();
  runningHere.set(db, here);
  if (here.has(job)) return { ran: false };
  here.add(job);
  try {
    // PGlite is one connection whose transaction blocks every other query: the process set is the whole lock there.
    if (db.kind === 'pglite') return { ran: true, value: await fn() };
    return await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ got: boolean }>('SELECT pg_try_advisory_xact_lock($1, hashtext($2)) AS got', [RUN_ONCE_LOCK_CLASS, job]);
      if (rows[0]?.got !== true) return { ran: false as const };
      return { ran: true as const, value: await fn() };
    });
  } finally {
    here.delete(job);
  }
}

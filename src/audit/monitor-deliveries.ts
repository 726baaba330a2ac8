/**
 * Monitor deliveries as rows (`steward.audit_monitor_deliveries`): the
 * repository behind monitors.ts. A delivery is enqueued in the transaction
 * that decides a firing (at most one open per monitor, by a unique partial
 * index), leased for each attempt in one statement with `FOR UPDATE SKIP
 * LOCKED` (so any number of servers can send, each attempt by one), and
 * closed as delivered or given up. Nothing about delivery lives in memory.
 */
import type { Db } from '../store/db.js';
import type { MonitorAction, Notification } from './monitor-types.js';

export const DELIVERY_STATUSES = ['pending', 'retrying', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface MonitorDelivery {
  readonly id: number;
  /** `pending`: not tried yet; `retrying`: failed, will be tried again; `failed`: gave up. */
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly createdAt: string;
  readonly nextAttemptAt?: string;
  readonly deliveredAt?: string;
  readonly lastError?: string;
}

/** Attempts before a delivery is given up (then the next firing starts a new one). */
export const MAX_DELIVERY_ATTEMPTS = 12;

export interface DeliveryRow {
  id: number;
  monitor: string;
  notification: Notification;
  created_at: Date;
  next_attempt_at: Date;
  attempts: number;
  delivered_at: Date | null;
  gave_up_at: Date | null;
  last_error: string | null;
}

function deliveryOf(d: DeliveryRow): MonitorDelivery {
  const open = d.delivered_at === null && d.gave_up_at === null;
  const status: DeliveryStatus = d.delivered_at !== null ? 'delivered' : d.gave_up_at !== null ? 'failed' : d.attempts === 0 ? 'pending' : 'retrying';
  return {
    id: Number(d.id),
    status,
    attempts: d.attempts,
    createdAt: d.created_at.toISOString(),
    ...(open ? { nextAttemptAt: d.next_attempt_at.toISOString() } : {}),
    ...(d.delivered_at === null ? {} : { deliveredAt: d.delivered_at.toISOString() }),
    ...(d.last_error === null ? {} : { lastError: d.last_error }),
  };
}

/** Records a firing; null when the monitor already has an open delivery (a firing then adds nothing). */
export async function enqueueDelivery(monitor: string, n: Notification, at: Date, tx: Db): Promise<number | null> {
  const { rows } = await tx.query<{ id: number }>(
    `INSERT INTO steward.audit_monitor_deliveries (monitor, notification, next_attempt_at) VALUES ($1, $2::jsonb, $3::timestamptz)
     ON CONFLICT (monitor) WHERE delivered_at IS NULL AND gave_up_at IS NULL DO NOTHING RETURNING id`,
    [monitor, JSON.stringify(n), at.toISOString()],
  );
  return rows[0] === undefined ? null : Number(rows[0].id);
}

/**
 * Leases up to 20 due deliveries (or the one `id`) for `leaseMs`, counting
 * the attempt, in one statement that commits on its own: the send happens
 * outside any transaction, and a crashed sender's row comes back when its
 * lease runs out. Each comes with its monitor's current action.
 */
export async function leaseDeliveries(at: Date, leaseMs: number, id: number | null, db: Db): Promise<(DeliveryRow & { action: MonitorAction })[]> {
  const { rows } = await db.query<DeliveryRow & { action: MonitorAction }>(
    `WITH due AS (
       SELECT id FROM steward.audit_monitor_deliveries
       WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= $1::timestamptz
         AND (lease_until IS NULL OR lease_until <= $1::timestamptz) AND ($3::bigint IS NULL OR id = $3::bigint)
       ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED)
     UPDATE steward.audit_monitor_deliveries d SET lease_until = $2::timestamptz, attempts = d.attempts + 1
     FROM due, steward.audit_monitors m WHERE d.id = due.id AND m.name = d.monitor
     RETURNING d.*, m.action`,
    [at.toISOString(), new Date(at.getTime() + leaseMs).toISOString(), id],
  );
  return rows.map((r) => ({ ...r, id: Number(r.id) })).sort((x, y) => x.id - y.id);
}

/** Closes a delivery as sent and starts its monitor's throttle window, in one transaction. */
export async function markDelivered(d: Pick<DeliveryRow, 'id' | 'monitor'>, at: Date, db: Db): Promise<void> {
  await db.transaction(async (tx) => {
    // The monitor row first, as a run's decision takes it: the other order deadlocks with a run whose
    // insert waits on this open delivery.
    await tx.query('SELECT 1 FROM steward.audit_monitors WHERE name = $1 FOR UPDATE', [d.monitor]);
    await tx.query('UPDATE steward.audit_monitor_deliveries SET delivered_at = $2::timestamptz, lease_until = NULL, last_error = NULL WHERE id = $1', [d.id, at.toISOString()]);
    await tx.query('UPDATE steward.audit_monitors SET last_fired_at = $2::timestamptz WHERE name = $1', [d.monitor, at.toISOString()]);
  });
}

/**
 * Keeps the error; the delivery is tried again at `retryAt`, or given up when
 * that is null. Fenced by the attempt count: a sender whose lease ran out and
 * whose row another server has leased since changes nothing.
 */
export async function markFailed(d: Pick<DeliveryRow, 'id' | 'attempts'>, error: string, retryAt: Date | null, at: Date, db: Db): Promise<void> {
  if (retryAt === null) {
    await db.query('UPDATE steward.audit_monitor_deliveries SET lease_until = NULL, last_error = $2, gave_up_at = $3::timestamptz WHERE id = $1 AND attempts = $4', [
      d.id,
      error,
      at.toISOString(),
      d.attempts,
    ]);
  } else {
    await db.query('UPDATE steward.audit_monitor_deliveries SET lease_until = NULL, last_error = $2, next_attempt_at = $3::timestamptz WHERE id = $1 AND attempts = $4', [
      d.id,
      error,
      retryAt.toISOString(),
      d.attempts,
    ]);
  }
}

/** The latest delivery of each named monitor. */
export async function latestDeliveries(monitors: readonly string[], db: Db): Promise<Map<string, MonitorDelivery>> {
  if (monitors.length === 0) return new Map();
  const { rows } = await db.query<DeliveryRow>(
    `SELECT DISTINCT ON (monitor) * FROM steward.audit_monitor_deliveries WHERE monitor = ANY($1::text[]) ORDER BY monitor, id DESC`,
    [monitors],
  );
  return new Map(rows.map((r) => [r.monitor, deliveryOf(r)]));
}

/**
 * Monitors: a scheduled SQL query over the security lake, a trigger
 * condition, a severity, throttling, and one action (webhook, PagerDuty Events
 * API v2, or email). The SQL is checked when the monitor is created (it must
 * parse as one SELECT over security tables only) and runs in the sandbox of
 * security-sql.ts.
 *
 * Delivery follows "record the intent, commit, then act": a firing is a row
 * in `steward.audit_monitor_deliveries`, inserted in the transaction that
 * decides it (at most one open per monitor), and sent after commit by
 * whichever server leases it (`FOR UPDATE SKIP LOCKED`). A failed send is
 * retried with backoff (1 s, 2 s, 4 s … 5 min; 12 attempts, about 15 minutes), recorded on the
 * row and in the decision log (`monitor.deliver`, so in the security lake),
 * and does not start the throttle window: `last_fired_at` is set only when a
 * send succeeds. Every attempt of one delivery carries the same idempotency
 * key (`Idempotency-Key` header, mail `Message-ID`; PagerDuty dedups by monitor),
 * so a receiver can drop the one resend a crash between send and record can
 * cause.
 */
import { z } from 'zod';
import type { Db } from '../store/db.js';
import type { Row } from '../lake/duckdb.js';
import { StewardError, notFound } from '../errors.js';
import { checkSecuritySql, openSecuritySql } from './security-sql.js';
import { ActionSchema, ConditionSchema, MONITOR_SEVERITIES, type MonitorAction, type MonitorCondition, type MonitorSeverity, type Notification } from './monitor-types.js';
// One backoff schedule for every notification outbox (access requests and monitors).
import { retryDelayMs } from '../access/notify.js';
import {
  enqueueDelivery,
  latestDeliveries,
  leaseDeliveries,
  markDelivered,
  markFailed,
  MAX_DELIVERY_ATTEMPTS,
  type DeliveryRow,
  type MonitorDelivery,
} from './monitor-deliveries.js';

export { DELIVERY_STATUSES, MAX_DELIVERY_ATTEMPTS, type DeliveryStatus, type MonitorDelivery } from './monitor-deliveries.js';

/** How long one attempt may hold its row; longer than any send can take (10 s HTTP, SMTP timeouts). */
const LEASE_MS = 60_000;

export { ActionSchema, ConditionSchema, MONITOR_SEVERITIES, type MonitorAction, type MonitorCondition, type MonitorSeverity, type Notification } from './monitor-types.js';

export const MonitorInputSchema = z
  .object({
    name: z.string().trim().min(1).max(128).regex(/^[a-z0-9][a-z0-9_.-]*$/, 'must be lowercase letters, digits, `_`, `.`, `-`'),
    description: z.string().max(1024).optional(),
    sql: z.string().min(1).max(20_000),
    scheduleSeconds: z.number().int().min(1).max(86_400).default(60),
    condition: ConditionSchema.default({ op: '>', value: 0 }),
    severity: z.enum(MONITOR_SEVERITIES).default('warning'),
    throttleSeconds: z.number().int().min(0).max(7 * 86_400).default(300),
    action: ActionSchema,
    enabled: z.boolean().default(true),
  })
  .strict();
export type MonitorInput = z.infer<typeof MonitorInputSchema>;

export interface Monitor extends MonitorInput {
  readonly createdAt: string;
  readonly lastRunAt?: string;
  /** When a notification was last delivered: the start of the throttle window. */
  readonly lastFiredAt?: string;
  readonly lastResult?: MonitorRunResult;
  /** The latest delivery (firing) and how its sending went. */
  readonly lastDelivery?: MonitorDelivery;
}


export interface MonitorRunResult {
  readonly at: string;
  readonly rows: number;
  readonly triggered: boolean;
  readonly throttled: boolean;
  /** Triggered while an earlier firing is still being delivered: no second notification is queued. */
  readonly pending?: boolean;
  readonly sent: boolean;
  readonly error?: string;
}

interface MonitorRow {
  name: string;
  description: string | null;
  sql: string;
  schedule_seconds: number;
  condition: MonitorCondition;
  severity: MonitorSeverity;
  throttle_seconds: number;
  action: MonitorAction;
  enabled: boolean;
  created_at: Date;
  last_run_at: Date | null;
  last_fired_at: Date | null;
  last_result: MonitorRunResult | null;
}


/** Secrets (the PagerDuty routing key, webhook headers) never leave the server in listings. */
function redact(a: MonitorAction): MonitorAction {
  if (a.kind === 'pagerduty') return { ...a, routingKey: `${a.routingKey.slice(0, 4)}…` };
  if (a.kind === 'webhook' && a.headers !== undefined) return { ...a, headers: Object.fromEntries(Object.keys(a.headers).map((k) => [k, '…'])) };
  return a;
}

function fromRow(r: MonitorRow, reveal = false, delivery?: MonitorDelivery): Monitor {
  return {
    name: r.name,
    ...(r.description === null ? {} : { description: r.description }),
    sql: r.sql,
    scheduleSeconds: r.schedule_seconds,
    condition: r.condition,
    severity: r.severity,
    throttleSeconds: r.throttle_seconds,
    action: reveal ? r.action : redact(r.action),
    enabled: r.enabled,
    createdAt: r.created_at.toISOString(),
    ...(r.last_run_at === null ? {} : { lastRunAt: r.last_run_at.toISOString() }),
    ...(r.last_fired_at === null ? {} : { lastFiredAt: r.last_fired_at.toISOString() }),
    ...(r.last_result === null ? {} : { lastResult: r.last_result }),
    ...(delivery === undefined ? {} : { lastDelivery: delivery }),
  };
}

const compare = (a: number, op: MonitorCondition['op'], b: number): boolean => {
  switch (op) {
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    default: {
      const never: never = op;
      return never;
    }
  }
};

/** Whether the rows meet the condition. */
export function conditionMet(rows: readonly Row[], c: MonitorCondition): boolean {
  if (c.column === undefined) return compare(rows.length, c.op, c.value);
  const col = c.column;
  return rows.some((r) => {
    const v = r[col];
    const n = typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
    return Number.isFinite(n) && compare(n, c.op, c.value);
  });
}


/** The PagerDuty Events API v2 body of a notification. */
export function pagerDutyBody(routingKey: string, n: Notification): Record<string, unknown> {
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: `steward-monitor-${n.monitor}`,
    payload: {
      summary: n.summary.slice(0, 1024),
      source: `steward:monitor:${n.monitor}`,
      severity: n.severity,
      timestamp: n.at,
      component: 'security-lake',
      custom_details: { rows: n.rows.slice(0, 20), test: n.test },
    },
  };
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
}

export async function deliver(action: MonitorAction, n: Notification): Promise<void> {
  const idem: Record<string, string> = n.key === undefined ? {} : { 'idempotency-key': n.key };
  switch (action.kind) {
    case 'webhook':
      return post(action.url, { monitor: n.monitor, severity: n.severity, summary: n.summary, at: n.at, test: n.test, rows: n.rows.slice(0, 100) }, { ...action.headers, ...idem });
    case 'pagerduty':
      return post(action.url, pagerDutyBody(action.routingKey, n), idem);
    case 'email': {
      const { default: nodemailer } = await import('nodemailer');
      const transport = nodemailer.createTransport({
        host: action.smtp.host,
        port: action.smtp.port,
        secure: action.smtp.secure,
        ignoreTLS: !action.smtp.secure,
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 20_000,
      });
      await transport.sendMail({
        ...(n.key === undefined ? {} : { messageId: `<${n.key}@steward>` }),
        from: action.from,
        to: action.to.join(', '),
        subject: `[steward ${n.severity}] ${n.summary}`.slice(0, 250),
        text: `${n.summary}\n\nmonitor: ${n.monitor}\nat: ${n.at}\n\n${JSON.stringify(n.rows.slice(0, 20), null, 2)}\n`,
      });
      return;
    }
    default: {
      const never: never = action;
      return never;
    }
  }
}

export interface MonitorService {
  create(input: MonitorInput): Promise<Monitor>;
  list(): Promise<Monitor[]>;
  get(name: string): Promise<Monitor>;
  delete(name: string): Promise<void>;
  /** Runs one monitor now. `test`: deliver even when throttled or not triggered, marked as a test, without recording a firing. */
  run(name: string, opts?: { test?: boolean; send?: boolean }): Promise<MonitorRunResult & { sample: Row[] }>;
  /** Runs the monitors whose schedule is due, then sends due deliveries (retries included). */
  runDue(): Promise<string[]>;
  /** Sends due deliveries only; returns how many were attempted. */
  deliverDue(): Promise<number>;
  start(): void;
  stop(): Promise<void>;
}

export interface MonitorServiceOptions {
  readonly db: Db;
  readonly lakeDir: string;
  readonly sources: () => Promise<string[]>;
  readonly now?: () => Date;
  /** How often due monitors are looked for; 0 disables the scheduler. */
  readonly tickMs?: number;
  readonly log?: (entry: { action: string; resource: string; result: 'ok' | 'error'; reason: string }) => Promise<void>;
}

export function createMonitorService(options: MonitorServiceOptions): MonitorService {
  const { db } = options;
  const now = options.now ?? ((): Date => new Date());
  let timer: NodeJS.Timeout | undefined;
  let ticking: Promise<unknown> | undefined;

  async function row(name: string): Promise<MonitorRow> {
    const { rows } = await db.query<MonitorRow>('SELECT * FROM steward.audit_monitors WHERE name = $1', [name]);
    const r = rows[0];
    if (r === undefined) throw notFound('monitor', name);
    return r;
  }

  async function evaluate(r: MonitorRow): Promise<Row[]> {
    const sandbox = await openSecuritySql(options.lakeDir, await options.sources());
    try {
      return await sandbox.query(r.sql, 1000);
    } finally {
      sandbox.close();
    }
  }

  const summaryOf = (r: MonitorRow, rows: readonly Row[]): string => `${r.name}: ${rows.length} row(s) matched${r.description === null ? '' : ` (${r.description})`}`;

  /** The monitor's query and condition; a query that fails is an error, never a trigger. */
  async function evaluated(r: MonitorRow): Promise<{ rows: Row[]; error?: string; triggered: boolean }> {
    try {
      const rows = await evaluate(r);
      return { rows, triggered: conditionMet(rows, r.condition) };
    } catch (e) {
      return { rows: [], error: (e as Error).message, triggered: false };
    }
  }

  /** A test notification: sent at once, once, marked as a test, recorded nowhere (it fires nothing). */
  async function runTest(r: MonitorRow, send: boolean): Promise<MonitorRunResult & { sample: Row[] }> {
    const at = now();
    const evaluation = await evaluated(r);
    const { rows, triggered } = evaluation;
    let error = evaluation.error;
    let sent = false;
    if (send) {
      try {
        await deliver(r.action, { monitor: r.name, severity: r.severity, summary: `[test] ${summaryOf(r, rows)}`, rows, at: at.toISOString(), test: true });
        sent = true;
      } catch (e) {
        error = `delivery failed: ${(e as Error).message}`;
      }
    }
    return { at: at.toISOString(), rows: rows.length, triggered, throttled: false, sent, ...(error === undefined ? {} : { error }), sample: rows.slice(0, 20) };
  }

  /**
   * Evaluates, then decides in one transaction (the monitor row locked, so
   * servers running it at once decide one after the other): a triggered,
   * unthrottled monitor with no delivery open gets one. The send happens
   * after commit (deliverDue).
   */
  async function run(name: string, opts: { test?: boolean; send?: boolean; defer?: boolean } = {}): Promise<MonitorRunResult & { sample: Row[] }> {
    const r = await row(name);
    if (opts.test === true) return runTest(r, opts.send !== false);
    const at = now();
    const evaluation = await evaluated(r);
    const { rows, triggered } = evaluation;
    let error = evaluation.error;
    const decided = await db.transaction(async (tx) => {
      const { rows: locked } = await tx.query<Pick<MonitorRow, 'last_fired_at' | 'throttle_seconds'>>(
        'SELECT last_fired_at, throttle_seconds FROM steward.audit_monitors WHERE name = $1 FOR UPDATE',
        [name],
      );
      const m = locked[0];
      if (m === undefined) throw notFound('monitor', name);
      const throttled = triggered && m.last_fired_at !== null && at.getTime() - m.last_fired_at.getTime() < m.throttle_seconds * 1000;
      let delivery: number | null = null;
      let pending = false;
      if (triggered && !throttled) {
        const n: Notification = { monitor: r.name, severity: r.severity, summary: summaryOf(r, rows), rows: rows.slice(0, 100), at: at.toISOString(), test: false };
        delivery = await enqueueDelivery(name, n, at, tx);
        pending = delivery === null;
      }
      return { throttled, delivery, pending };
    });
    let sent = false;
    // Deferred (the scheduler): the delivery is queued and sent by the scheduler's own deliverDue, beside the others.
    if (decided.delivery !== null && opts.defer !== true) {
      const outcome = (await deliverDue({ id: decided.delivery }))[0];
      sent = outcome?.delivered === true;
      if (outcome?.error !== undefined) error = `delivery failed: ${outcome.error}`;
    }
    const result: MonitorRunResult = {
      at: at.toISOString(),
      rows: rows.length,
      triggered,
      throttled: decided.throttled,
      ...(decided.pending ? { pending: true } : {}),
      sent,
      ...(error === undefined ? {} : { error }),
    };
    await db.query('UPDATE steward.audit_monitors SET last_run_at = $2::timestamptz, last_result = $3::jsonb WHERE name = $1', [name, at.toISOString(), JSON.stringify(result)]);
    if (!triggered && error !== undefined) await options.log?.({ action: 'monitor.run', resource: name, result: 'error', reason: error });
    return { ...result, sample: rows.slice(0, 20) };
  }

  /**
   * Sends due deliveries (or the one `id`), each leased in a statement of its
   * own so no network call happens inside a transaction and a crashed
   * sender's row comes back when its lease runs out.
   */
  async function deliverDue(filter: { id?: number } = {}): Promise<{ id: number; delivered: boolean; error?: string }[]> {
    const at = now();
    const leased = await leaseDeliveries(at, LEASE_MS, filter.id ?? null, db);
    // All at once: a receiver that stalls until the send times out holds back only its own delivery.
    return Promise.all(leased.map(sendOne));
  }

  async function sendOne(d: DeliveryRow & { action: MonitorAction }): Promise<{ id: number; delivered: boolean; error?: string }> {
    const id = Number(d.id);
    try {
      await deliver(d.action, { ...d.notification, key: `steward-monitor-${d.monitor}-${id}` });
    } catch (e) {
      const message = ((e as Error).message ?? String(e)).slice(0, 1000);
      await failed(d, message);
      return { id, delivered: false, error: message };
    }
    await delivered(d);
    return { id, delivered: true };
  }

  /** Success starts the throttle window (the firing has now reached someone). */
  async function delivered(d: DeliveryRow): Promise<void> {
    await markDelivered(d, now(), db);
    await options.log?.({ action: 'monitor.fire', resource: d.monitor, result: 'ok', reason: `${d.notification.rows.length} row(s), ${d.notification.severity}, delivered on attempt ${d.attempts}` });
  }

  /** A failure is kept on the row and logged; the row is retried after a backoff, or given up after the last attempt. */
  async function failed(d: DeliveryRow, message: string): Promise<void> {
    const at = now();
    const delay = retryDelayMs(d.attempts, MAX_DELIVERY_ATTEMPTS);
    await markFailed(d, message, delay === null ? null : new Date(at.getTime() + delay), at, db);
    const next = delay === null ? 'gave up' : `retry in ${Math.round(delay / 1000)}s`;
    await options.log?.({ action: 'monitor.deliver', resource: d.monitor, result: 'error', reason: `attempt ${d.attempts} of ${MAX_DELIVERY_ATTEMPTS} failed (${next}): ${message}` });
  }

  /**
   * Claims the due monitors in one statement (their `last_run_at` moved to
   * now, rows another server is claiming skipped), so with several servers
   * each scheduled run is evaluated by exactly one of them, then runs them and
   * queues their firings; sends nothing. A server that dies after claiming
   * loses that one run; the next period runs as usual. A monitor that fails
   * (its query, the store) is logged and the others still run.
   */
  async function decideDue(): Promise<string[]> {
    const at = now();
    const { rows } = await db.query<{ name: string }>(
      `UPDATE steward.audit_monitors SET last_run_at = $1::timestamptz
        WHERE name IN (SELECT name FROM steward.audit_monitors
                        WHERE enabled AND (last_run_at IS NULL OR last_run_at + make_interval(secs => schedule_seconds) <= $1::timestamptz)
                        FOR UPDATE SKIP LOCKED)
        RETURNING name`,
      [at.toISOString()],
    );
    rows.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    for (const { name } of rows) {
      await run(name, { defer: true }).catch((e: unknown) => console.error(`[steward] monitor \`${name}\` failed: ${(e as Error).message}`));
    }
    return rows.map((r) => r.name);
  }

  async function runDue(): Promise<string[]> {
    const names = await decideDue();
    // New firings and retries of earlier ones, whether or not their monitor ran now.
    await deliverDue();
    return names;
  }

  /**
   * Sends started by the scheduler. The tick does not wait for them, so a
   * receiver that stalls (up to the 10 s send timeout, again on each retry)
   * never delays the next run of the other monitors; each delivery's lease
   * keeps a later tick from sending it twice. stop() waits for them.
   */
  const sending = new Set<Promise<unknown>>();
  const sendInBackground = (): void => {
    const p: Promise<unknown> = deliverDue()
      .catch((e: unknown) => console.error(`[steward] monitor deliveries failed: ${(e as Error).message}`))
      .finally(() => sending.delete(p));
    sending.add(p);
  };

  /** Each monitor with its latest delivery. */
  async function listed(name?: string): Promise<Monitor[]> {
    const { rows } = await db.query<MonitorRow>('SELECT * FROM steward.audit_monitors WHERE ($1::text IS NULL OR name = $1) ORDER BY name', [name ?? null]);
    const latest = await latestDeliveries(rows.map((r) => r.name), db);
    return rows.map((r) => fromRow(r, false, latest.get(r.name)));
  }

  return {
    async create(input) {
      const m = MonitorInputSchema.parse(input);
      const sandbox = await openSecuritySql(options.lakeDir, await options.sources());
      try {
        await checkSecuritySql(sandbox.duckdb, m.sql, await options.sources());
      } finally {
        sandbox.close();
      }
      try {
        await db.query(
          `INSERT INTO steward.audit_monitors (name, description, sql, schedule_seconds, condition, severity, throttle_seconds, action, enabled)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8::jsonb, $9)`,
          [m.name, m.description ?? null, m.sql, m.scheduleSeconds, JSON.stringify(m.condition), m.severity, m.throttleSeconds, JSON.stringify(m.action), m.enabled],
        );
      } catch (e) {
        if ((e as { code?: string }).code === '23505') throw new StewardError('STEWARD_E_ALREADY_EXISTS', `monitor \`${m.name}\` already exists`);
        throw e;
      }
      return fromRow(await row(m.name));
    },
    list: () => listed(),
    async get(name) {
      const [m] = await listed(name);
      if (m === undefined) throw notFound('monitor', name);
      return m;
    },
    async delete(name) {
      const { rows } = await db.query<{ name: string }>('DELETE FROM steward.audit_monitors WHERE name = $1 RETURNING name', [name]);
      if (rows.length === 0) throw notFound('monitor', name);
    },
    run,
    runDue,
    deliverDue: async () => (await deliverDue()).length,
    start() {
      const tick = options.tickMs ?? 5_000;
      if (tick <= 0) return;
      timer = setInterval(() => {
        if (ticking !== undefined) return;
        ticking = decideDue()
          .then(sendInBackground)
          .catch((e: unknown) => console.error(`[steward] monitors failed: ${(e as Error).message}`))
          .finally(() => {
            ticking = undefined;
          });
      }, tick);
      timer.unref();
    },
    async stop() {
      if (timer !== undefined) clearInterval(timer);
      await ticking;
      await Promise.all(sending);
    },
  };
}

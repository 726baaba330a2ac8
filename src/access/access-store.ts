/**
 * SQL for just-in-time access (tables from migration 003). Repository form:
 * every function takes the transaction (or the db) as its last argument, so
 * callers compose them inside one transaction.
 */
import type { Db } from '../store/db.js';
import type { PrincipalRef } from '../policy/model.js';
import { StewardError, notFound } from '../errors.js';
import type { AccessConfig, AccessRequest, ApprovalRecord, PendingExtension, RequestRule, RequestStatus } from './access-types.js';
import { EMPTY_ACCESS_CONFIG } from './access-types.js';
import { toAccessConfig } from './access-config.js';

// ------------------------------------------------------------------- config

export async function loadAccessConfig(tx: Db): Promise<{ config: AccessConfig; document: Record<string, unknown> | null }> {
  const { rows } = await tx.query<{ document: Record<string, unknown> }>('SELECT document FROM steward.access_config');
  const row = rows[0];
  if (row === undefined) return { config: EMPTY_ACCESS_CONFIG, document: null };
  return { config: toAccessConfig(row.document), document: row.document };
}

export async function saveAccessConfig(document: Record<string, unknown>, by: string, tx: Db): Promise<void> {
  await tx.query(
    `INSERT INTO steward.access_config (id, document, updated_at, updated_by) VALUES (true, $1::jsonb, now(), $2)
     ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document, updated_at = now(), updated_by = EXCLUDED.updated_by`,
    [JSON.stringify(document), by],
  );
}

// ------------------------------------------------------------------ requests

interface RequestRow {
  id: string;
  requester: string;
  scope: string;
  permission_set: string;
  status: RequestStatus;
  start_at: Date;
  end_at: Date;
  duration_seconds: number;
  ticket: string | null;
  justification: string;
  rule: RequestRule;
  extension: PendingExtension | null;
  error: string | null;
  pending_until: Date;
  created_at: Date;
  updated_at: Date;
}

interface ApprovalRow {
  request_id: string;
  round: number;
  approver: string;
  decision: 'approve' | 'reject';
  comment: string | null;
  at: Date;
}

const COLUMNS = 'id, requester, scope, permission_set, status, start_at, end_at, duration_seconds, ticket, justification, rule, extension, error, pending_until, created_at, updated_at';

function fromRow(r: RequestRow, approvals: readonly ApprovalRecord[]): AccessRequest {
  return {
    id: r.id,
    requester: r.requester as PrincipalRef,
    scope: r.scope,
    permissionSet: r.permission_set,
    status: r.status,
    startAt: r.start_at.toISOString(),
    endAt: r.end_at.toISOString(),
    durationSeconds: r.duration_seconds,
    ...(r.ticket === null ? {} : { ticket: r.ticket }),
    justification: r.justification,
    rule: r.rule,
    approvals,
    ...(r.extension === null ? {} : { extension: r.extension }),
    ...(r.error === null ? {} : { error: r.error }),
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    pendingUntil: r.pending_until.toISOString(),
  };
}

async function approvalsOf(ids: readonly string[], tx: Db): Promise<Map<string, ApprovalRecord[]>> {
  const out = new Map<string, ApprovalRecord[]>();
  if (ids.length === 0) return out;
  const { rows } = await tx.query<ApprovalRow>(
    `SELECT request_id, round, approver, decision, comment, at FROM steward.access_approvals
     WHERE request_id IN (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY at, approver`,
    [JSON.stringify(ids)],
  );
  for (const a of rows) {
    const list = out.get(a.request_id) ?? [];
    list.push({ approver: a.approver as PrincipalRef, decision: a.decision, round: a.round, ...(a.comment === null ? {} : { comment: a.comment }), at: a.at.toISOString() });
    out.set(a.request_id, list);
  }
  return out;
}

export async function insertRequest(r: AccessRequest, tx: Db): Promise<void> {
  await tx.query(
    `INSERT INTO steward.access_requests (${COLUMNS})
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb, $13, $14, $15, $16)`,
    [
      r.id,
      r.requester,
      r.scope,
      r.permissionSet,
      r.status,
      r.startAt,
      r.endAt,
      r.durationSeconds,
      r.ticket ?? null,
      r.justification,
      JSON.stringify(r.rule),
      r.extension === undefined ? null : JSON.stringify(r.extension),
      r.error ?? null,
      r.pendingUntil,
      r.createdAt,
      r.updatedAt,
    ],
  );
}

/** Writes the mutable fields of a request (status, window, extension, error). */
export async function updateRequest(r: AccessRequest, tx: Db): Promise<void> {
  await tx.query(
    `UPDATE steward.access_requests SET status = $2, start_at = $3, end_at = $4, duration_seconds = $5, extension = $6::jsonb, error = $7, updated_at = $8
     WHERE id = $1`,
    [r.id, r.status, r.startAt, r.endAt, r.durationSeconds, r.extension === undefined ? null : JSON.stringify(r.extension), r.error ?? null, r.updatedAt],
  );
}

/** One request; `lock` takes its row lock (`FOR UPDATE`), `skipLocked` returns null instead of waiting. */
export async function getRequest(id: string, tx: Db, options: { lock?: boolean; skipLocked?: boolean } = {}): Promise<AccessRequest | null> {
  const lock = options.lock === true ? (options.skipLocked === true ? ' FOR UPDATE SKIP LOCKED' : ' FOR UPDATE') : '';
  const { rows } = await tx.query<RequestRow>(`SELECT ${COLUMNS} FROM steward.access_requests WHERE id = $1${lock}`, [id]);
  const row = rows[0];
  if (row === undefined) return null;
  return fromRow(row, (await approvalsOf([id], tx)).get(id) ?? []);
}

export async function mustGetRequest(id: string, tx: Db, options: { lock?: boolean } = {}): Promise<AccessRequest> {
  const r = await getRequest(id, tx, options);
  if (r === null) throw notFound('access request', id);
  return r;
}

export interface RequestQuery {
  readonly statuses?: readonly RequestStatus[];
  readonly requester?: PrincipalRef;
  readonly limit?: number;
}

export async function listRequests(q: RequestQuery, tx: Db): Promise<AccessRequest[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.statuses !== undefined) {
    params.push(JSON.stringify(q.statuses));
    where.push(`status IN (SELECT jsonb_array_elements_text($${params.length}::jsonb))`);
  }
  if (q.requester !== undefined) {
    params.push(q.requester);
    where.push(`requester = $${params.length}`);
  }
  params.push(q.limit ?? 1000);
  const { rows } = await tx.query<RequestRow>(
    `SELECT ${COLUMNS} FROM steward.access_requests ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`}
     ORDER BY created_at DESC, id LIMIT $${params.length}`,
    params,
  );
  const approvals = await approvalsOf(
    rows.map((r) => r.id),
    tx,
  );
  return rows.map((r) => fromRow(r, approvals.get(r.id) ?? []));
}

export async function insertApproval(requestId: string, a: ApprovalRecord, tx: Db): Promise<void> {
  try {
    await tx.query(
      `INSERT INTO steward.access_approvals (request_id, round, approver, decision, comment, at) VALUES ($1, $2, $3, $4, $5, $6)`,
      [requestId, a.round, a.approver, a.decision, a.comment ?? null, a.at],
    );
  } catch (e) {
    if ((e as { code?: string }).code === '23505') {
      throw new StewardError('STEWARD_E_CONFLICT', `\`${a.approver}\` has already decided on request \`${requestId}\``);
    }
    throw e;
  }
}

// -------------------------------------------------------------------- timers

export type TimerKind = 'activate' | 'end' | 'expire';

export async function setTimer(requestId: string, kind: TimerKind, dueAt: string, tx: Db): Promise<void> {
  await tx.query(
    `INSERT INTO steward.access_timers (request_id, kind, due_at) VALUES ($1, $2, $3)
     ON CONFLICT (request_id, kind) DO UPDATE SET due_at = EXCLUDED.due_at`,
    [requestId, kind, dueAt],
  );
}

export async function deleteTimer(requestId: string, kind: TimerKind, tx: Db): Promise<void> {
  await tx.query('DELETE FROM steward.access_timers WHERE request_id = $1 AND kind = $2', [requestId, kind]);
}

export async function deleteTimers(requestId: string, tx: Db): Promise<void> {
  await tx.query('DELETE FROM steward.access_timers WHERE request_id = $1', [requestId]);
}

export interface DueTimer {
  readonly requestId: string;
  readonly kind: TimerKind;
  readonly dueAt: Date;
}

/**
 * Due timers, locked for this transaction. `SKIP LOCKED` lets several server
 * processes on one PostgreSQL each take a disjoint batch; on PGlite (one
 * connection) it changes nothing.
 */
export async function claimDueTimers(now: number, limit: number, tx: Db): Promise<DueTimer[]> {
  const { rows } = await tx.query<{ request_id: string; kind: TimerKind; due_at: Date }>(
    `SELECT request_id, kind, due_at FROM steward.access_timers WHERE due_at <= $1
     ORDER BY due_at, request_id LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [new Date(now).toISOString(), limit],
  );
  return rows.map((r) => ({ requestId: r.request_id, kind: r.kind, dueAt: r.due_at }));
}

/**
 * Due timers joined with their requests, both locked for this transaction in
 * one statement. `SKIP LOCKED` lets several server processes on one
 * PostgreSQL each take a disjoint batch and skips requests an API call is
 * changing; on PGlite (one connection) it changes nothing. Approvals are not
 * loaded (timers never need them).
 */
export async function claimDue(now: number, limit: number, tx: Db): Promise<{ kind: TimerKind; request: AccessRequest }[]> {
  const { rows } = await tx.query<RequestRow & { kind: TimerKind }>(
    `SELECT t.kind, ${COLUMNS.split(', ').map((c) => `r.${c}`).join(', ')}
     FROM steward.access_timers t JOIN steward.access_requests r ON r.id = t.request_id
     WHERE t.due_at <= $1 ORDER BY t.due_at, t.request_id LIMIT $2
     FOR UPDATE OF t, r SKIP LOCKED`,
    [new Date(now).toISOString(), limit],
  );
  return rows.map((r) => ({ kind: r.kind, request: fromRow(r, []) }));
}

export async function deleteTimerPairs(pairs: readonly { requestId: string; kind: TimerKind }[], tx: Db): Promise<void> {
  if (pairs.length === 0) return;
  await tx.query(
    `DELETE FROM steward.access_timers t USING jsonb_to_recordset($1::jsonb) AS x(request_id text, kind text)
     WHERE t.request_id = x.request_id AND t.kind = x.kind`,
    [JSON.stringify(pairs.map((p) => ({ request_id: p.requestId, kind: p.kind })))],
  );
}

export async function deleteTimersOf(ids: readonly string[], tx: Db): Promise<void> {
  if (ids.length === 0) return;
  await tx.query('DELETE FROM steward.access_timers WHERE request_id IN (SELECT jsonb_array_elements_text($1::jsonb))', [JSON.stringify(ids)]);
}

/** Writes the mutable fields of many requests in one statement. */
export async function updateRequests(reqs: readonly AccessRequest[], tx: Db): Promise<void> {
  if (reqs.length === 0) return;
  await tx.query(
    `UPDATE steward.access_requests AS r
     SET status = x.status, start_at = x.start_at, end_at = x.end_at, duration_seconds = x.duration_seconds, extension = x.extension, error = x.error, updated_at = x.updated_at
     FROM jsonb_to_recordset($1::jsonb) AS x(id text, status text, start_at timestamptz, end_at timestamptz, duration_seconds integer, extension jsonb, error text, updated_at timestamptz)
     WHERE r.id = x.id`,
    [
      JSON.stringify(
        reqs.map((r) => ({
          id: r.id,
          status: r.status,
          start_at: r.startAt,
          end_at: r.endAt,
          duration_seconds: r.durationSeconds,
          extension: r.extension ?? null,
          error: r.error ?? null,
          updated_at: r.updatedAt,
        })),
      ),
    ],
  );
}

export async function liftRequestsAmong(ids: readonly string[], tx: Db): Promise<{ requestId: string }[]> {
  if (ids.length === 0) return [];
  const { rows } = await tx.query<{ request_id: string }>(
    'SELECT DISTINCT request_id FROM steward.access_lifts WHERE request_id IN (SELECT jsonb_array_elements_text($1::jsonb))',
    [JSON.stringify(ids)],
  );
  return rows.map((r) => ({ requestId: r.request_id }));
}

export async function nextTimerDue(tx: Db): Promise<number | null> {
  const { rows } = await tx.query<{ due_at: Date | null }>('SELECT min(due_at) AS due_at FROM steward.access_timers');
  const d = rows[0]?.due_at;
  return d === null || d === undefined ? null : d.getTime();
}

export async function timersOf(requestId: string, tx: Db): Promise<{ kind: TimerKind; dueAt: string }[]> {
  const { rows } = await tx.query<{ kind: TimerKind; due_at: Date }>('SELECT kind, due_at FROM steward.access_timers WHERE request_id = $1 ORDER BY due_at', [requestId]);
  return rows.map((r) => ({ kind: r.kind, dueAt: r.due_at.toISOString() }));
}

// ------------------------------------------------ legacy lifts (read and unwound only)

export interface LiftRow {
  readonly requestId: string;
  readonly guardrail: string;
  readonly principal: string;
  readonly added: boolean;
}

export async function liftsOn(guardrail: string, principal: string, tx: Db): Promise<LiftRow[]> {
  const { rows } = await tx.query<{ request_id: string; guardrail: string; principal: string; added: boolean }>(
    'SELECT request_id, guardrail, principal, added FROM steward.access_lifts WHERE guardrail = $1 AND principal = $2',
    [guardrail, principal],
  );
  return rows.map((r) => ({ requestId: r.request_id, guardrail: r.guardrail, principal: r.principal, added: r.added }));
}

export async function allLifts(tx: Db): Promise<LiftRow[]> {
  const { rows } = await tx.query<{ request_id: string; guardrail: string; principal: string; added: boolean }>(
    'SELECT request_id, guardrail, principal, added FROM steward.access_lifts',
  );
  return rows.map((r) => ({ requestId: r.request_id, guardrail: r.guardrail, principal: r.principal, added: r.added }));
}

export async function deleteLifts(requestId: string, tx: Db): Promise<LiftRow[]> {
  const { rows } = await tx.query<{ request_id: string; guardrail: string; principal: string; added: boolean }>(
    'DELETE FROM steward.access_lifts WHERE request_id = $1 RETURNING request_id, guardrail, principal, added',
    [requestId],
  );
  return rows.map((r) => ({ requestId: r.request_id, guardrail: r.guardrail, principal: r.principal, added: r.added }));
}

// -------------------------------------------------------------------- outbox

export interface OutboxRow {
  readonly requestId: string;
  readonly channel: 'email' | 'webhook';
  readonly target: string;
  readonly payload: Readonly<Record<string, unknown>>;
}

export interface LeasedOutbox extends OutboxRow {
  readonly id: number;
  readonly attempts: number;
}

export async function insertOutbox(rows: readonly OutboxRow[], now: number, tx: Db): Promise<void> {
  if (rows.length === 0) return;
  await tx.query(
    `INSERT INTO steward.access_outbox (request_id, channel, target, payload, next_attempt_at)
     SELECT request_id, channel, target, payload, $2::timestamptz FROM jsonb_to_recordset($1::jsonb) AS x(request_id text, channel text, target text, payload jsonb)`,
    [JSON.stringify(rows.map((r) => ({ request_id: r.requestId, channel: r.channel, target: r.target, payload: r.payload }))), new Date(now).toISOString()],
  );
}

/**
 * Leases up to `limit` undelivered rows for `leaseMs` in one statement (it
 * commits on its own), so delivery happens outside any transaction and a
 * crashed deliverer's rows come back when the lease runs out.
 */
export async function leaseOutbox(now: number, limit: number, leaseMs: number, db: Db): Promise<LeasedOutbox[]> {
  const at = new Date(now).toISOString();
  const { rows } = await db.query<{ id: number; request_id: string; channel: 'email' | 'webhook'; target: string; payload: Record<string, unknown>; attempts: number }>(
    `UPDATE steward.access_outbox SET lease_until = $2::timestamptz, attempts = attempts + 1
     WHERE id IN (
       SELECT id FROM steward.access_outbox
       WHERE delivered_at IS NULL AND next_attempt_at <= $1::timestamptz AND (lease_until IS NULL OR lease_until <= $1::timestamptz)
       ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
     RETURNING id, request_id, channel, target, payload, attempts`,
    [at, new Date(now + leaseMs).toISOString(), limit],
  );
  return rows.map((r) => ({ id: r.id, requestId: r.request_id, channel: r.channel, target: r.target, payload: r.payload, attempts: r.attempts })).sort((a, b) => a.id - b.id);
}

export async function markDelivered(id: number, now: number, db: Db): Promise<void> {
  await db.query('UPDATE steward.access_outbox SET delivered_at = $2, lease_until = NULL, last_error = NULL WHERE id = $1', [id, new Date(now).toISOString()]);
}

export async function markFailed(id: number, error: string, retryAt: number | null, db: Db): Promise<void> {
  // After the last attempt the row stays undelivered with its error, and is never leased again.
  await db.query('UPDATE steward.access_outbox SET lease_until = NULL, last_error = $2, next_attempt_at = $3 WHERE id = $1', [
    id,
    error.slice(0, 1000),
    new Date(retryAt ?? 8_640_000_000_000_000).toISOString(),
  ]);
}

export async function outboxOf(requestId: string, db: Db): Promise<{ channel: string; target: string; event: string; delivered: boolean; attempts: number; lastError: string | null }[]> {
  const { rows } = await db.query<{ channel: string; target: string; payload: Record<string, unknown>; delivered_at: Date | null; attempts: number; last_error: string | null }>(
    'SELECT channel, target, payload, delivered_at, attempts, last_error FROM steward.access_outbox WHERE request_id = $1 ORDER BY id',
    [requestId],
  );
  return rows.map((r) => ({
    channel: r.channel,
    target: r.target,
    event: String(r.payload['event'] ?? ''),
    delivered: r.delivered_at !== null,
    attempts: r.attempts,
    lastError: r.last_error,
  }));
}

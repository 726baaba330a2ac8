/**
 * Experiments in `steward.experiment_*` tables (migration 10). Plain
 * functions over a `Db` or an open transaction.
 */
import type { Db } from '../store/db.js';
import type { PrincipalRef } from '../policy/model.js';
import type { Experiment, ExperimentApproval, ExperimentPolicy, ExperimentStatus, ExperimentTemplate } from './experiment-types.js';
import { DEFAULT_EXPERIMENT_POLICY } from './experiment-types.js';

const iso = (d: Date | null): string | undefined => (d === null ? undefined : d.toISOString());

export async function loadPolicy(db: Db): Promise<ExperimentPolicy> {
  const { rows } = await db.query<{ document: ExperimentPolicy }>('SELECT document FROM steward.experiment_policy');
  return rows[0]?.document ?? DEFAULT_EXPERIMENT_POLICY;
}

export async function savePolicy(p: ExperimentPolicy, by: string, db: Db): Promise<void> {
  await db.query(
    `INSERT INTO steward.experiment_policy (id, document, updated_at, updated_by) VALUES (true, $1::jsonb, now(), $2)
     ON CONFLICT (id) DO UPDATE SET document = excluded.document, updated_at = now(), updated_by = excluded.updated_by`,
    [JSON.stringify(p), by],
  );
}

/** Inserts a template; false when the name is taken. */
export async function insertTemplate(t: ExperimentTemplate, by: string, now: number, db: Db): Promise<boolean> {
  const { rows } = await db.query<{ name: string }>(
    `INSERT INTO steward.experiment_templates (name, document, created_at, created_by) VALUES ($1, $2::jsonb, $3::timestamptz, $4)
     ON CONFLICT (name) DO NOTHING RETURNING name`,
    [t.name, JSON.stringify(t), new Date(now).toISOString(), by],
  );
  return rows.length === 1;
}

export async function getTemplate(name: string, db: Db): Promise<ExperimentTemplate | null> {
  const { rows } = await db.query<{ document: ExperimentTemplate }>('SELECT document FROM steward.experiment_templates WHERE name = $1', [name]);
  return rows[0]?.document ?? null;
}

export async function listTemplates(db: Db): Promise<ExperimentTemplate[]> {
  const { rows } = await db.query<{ document: ExperimentTemplate }>('SELECT document FROM steward.experiment_templates ORDER BY name');
  return rows.map((r) => r.document);
}

interface Row {
  id: string;
  template: string;
  spec: ExperimentTemplate;
  excluded: PrincipalRef[];
  status: ExperimentStatus;
  duration_seconds: number;
  started_by: string;
  created_at: Date;
  started_at: Date | null;
  ends_at: Date | null;
  ended_at: Date | null;
  end_reason: string | null;
  approvals: ExperimentApproval[];
}

function fromRow(r: Row): Experiment {
  const startedAt = iso(r.started_at);
  const endsAt = iso(r.ends_at);
  const endedAt = iso(r.ended_at);
  return {
    id: r.id,
    template: r.template,
    spec: r.spec,
    excluded: r.excluded,
    status: r.status,
    durationSeconds: r.duration_seconds,
    startedBy: r.started_by as PrincipalRef,
    createdAt: r.created_at.toISOString(),
    ...(startedAt === undefined ? {} : { startedAt }),
    ...(endsAt === undefined ? {} : { endsAt }),
    ...(endedAt === undefined ? {} : { endedAt }),
    ...(r.end_reason === null ? {} : { endReason: r.end_reason }),
    approvals: r.approvals,
  };
}

export async function insertExperiment(x: Experiment, db: Db): Promise<void> {
  await db.query(
    `INSERT INTO steward.experiments (id, template, spec, excluded, status, duration_seconds, started_by, created_at, approvals)
     VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6, $7, $8::timestamptz, $9::jsonb)`,
    [x.id, x.template, JSON.stringify(x.spec), JSON.stringify(x.excluded), x.status, x.durationSeconds, x.startedBy, x.createdAt, JSON.stringify(x.approvals)],
  );
}

export async function updateExperiment(x: Experiment, db: Db): Promise<void> {
  await db.query(
    `UPDATE steward.experiments SET status = $2, started_at = $3::timestamptz, ends_at = $4::timestamptz, ended_at = $5::timestamptz,
            end_reason = $6, approvals = $7::jsonb, excluded = $8::jsonb WHERE id = $1`,
    [x.id, x.status, x.startedAt ?? null, x.endsAt ?? null, x.endedAt ?? null, x.endReason ?? null, JSON.stringify(x.approvals), JSON.stringify(x.excluded)],
  );
}

export async function getExperiment(id: string, db: Db, options: { lock?: boolean } = {}): Promise<Experiment | null> {
  const { rows } = await db.query<Row>(`SELECT * FROM steward.experiments WHERE id = $1${options.lock === true ? ' FOR UPDATE' : ''}`, [id]);
  return rows[0] === undefined ? null : fromRow(rows[0]);
}

export async function listExperiments(db: Db, statuses?: readonly ExperimentStatus[]): Promise<Experiment[]> {
  const { rows } =
    statuses === undefined
      ? await db.query<Row>('SELECT * FROM steward.experiments ORDER BY created_at DESC, id LIMIT 1000')
      : await db.query<Row>('SELECT * FROM steward.experiments WHERE status = ANY($1::text[]) ORDER BY created_at DESC, id LIMIT 100000', [statuses]);
  return rows.map(fromRow);
}

/** Running experiments that are due (past their end), locked; rows another process holds are skipped. */
export async function claimDue(now: number, limit: number, tx: Db): Promise<Experiment[]> {
  const { rows } = await tx.query<Row>(
    `SELECT * FROM steward.experiments WHERE status = 'running' AND ends_at <= $1::timestamptz ORDER BY ends_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [new Date(now).toISOString(), limit],
  );
  return rows.map(fromRow);
}

/**
 * When each stop-condition monitor of run `e` fired since it started: a
 * delivery recorded, or (throttled, or while an earlier alarm is still being
 * delivered, which records no new delivery) a run whose condition was met.
 */
const FIRINGS = `
  SELECT d.monitor, d.created_at AS fired_at FROM steward.audit_monitor_deliveries d
  WHERE d.monitor IN (SELECT jsonb_array_elements_text(e.spec->'stopConditions')) AND d.created_at >= e.started_at
  UNION ALL
  SELECT m.name, m.last_run_at FROM steward.audit_monitors m
  WHERE m.name IN (SELECT jsonb_array_elements_text(e.spec->'stopConditions')) AND m.last_run_at >= e.started_at
    AND (m.last_result->>'triggered')::boolean`;

/** Running experiments with a stop condition that fired since the run started, locked, with the first such firing. */
export async function claimStopped(tx: Db): Promise<{ experiment: Experiment; monitor: string; firedAt: string }[]> {
  const { rows } = await tx.query<Row & { monitor: string; fired_at: Date }>(
    `SELECT e.*, f.monitor, f.fired_at FROM steward.experiments e
     CROSS JOIN LATERAL (SELECT * FROM (${FIRINGS}) x ORDER BY fired_at LIMIT 1) f
     WHERE e.status = 'running' AND jsonb_array_length(e.spec->'stopConditions') > 0
     FOR UPDATE OF e SKIP LOCKED`,
  );
  return rows.map((r) => ({ experiment: fromRow(r), monitor: r.monitor, firedAt: r.fired_at.toISOString() }));
}

/** Whether a running experiment is past its end or has a stop condition that fired. */
export async function anythingToEnd(now: number, db: Db): Promise<boolean> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM steward.experiments e WHERE e.status = 'running' AND (e.ends_at <= $1::timestamptz OR EXISTS (${FIRINGS}))`,
    [new Date(now).toISOString()],
  );
  return (rows[0]?.n ?? 0) > 0;
}

export async function nextDue(db: Db): Promise<number | null> {
  const { rows } = await db.query<{ due: Date | null }>(`SELECT min(ends_at) AS due FROM steward.experiments WHERE status = 'running'`);
  return rows[0]?.due == null ? null : rows[0].due.getTime();
}

export async function monitorNames(db: Db): Promise<Set<string>> {
  const { rows } = await db.query<{ name: string }>('SELECT name FROM steward.audit_monitors');
  return new Set(rows.map((r) => r.name));
}

/** Monitors that fired (a delivery row was recorded) between two instants. */
export async function firings(from: string, to: string, db: Db): Promise<{ monitor: string; at: string }[]> {
  const { rows } = await db.query<{ monitor: string; created_at: Date }>(
    'SELECT monitor, created_at FROM steward.audit_monitor_deliveries WHERE created_at >= $1::timestamptz AND created_at <= $2::timestamptz ORDER BY created_at, id',
    [from, to],
  );
  return rows.map((r) => ({ monitor: r.monitor, at: r.created_at.toISOString() }));
}

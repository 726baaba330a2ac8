/**
 * The report of a run, from the security lake: the decisions its guardrail
 * refused (by principal and resource), the monitors that fired in its window,
 * the time from its start to the first refusal, and the time from its end
 * until every refused principal and resource was allowed again.
 *
 * A refusal is a decision event (API Activity) whose authorizations name the
 * run's guardrail (the decision log records the denying guardrails of every
 * decision, and the security lake keeps them as `actor.authorizations`), or
 * a refused gateway query whose message is the run's explanation.
 */
import type { Experiment } from './experiment-types.js';
import { guardrailNameOf } from './experiment-types.js';

/** What the report reads from the lake; open.ts adapts the audit runtime to it. */
export interface SecurityLakeReader {
  /** Writes waiting decision-log events to the lake, so the report sees the whole window. */
  flush(): Promise<void>;
  query(sql: string): Promise<Record<string, unknown>[]>;
}

export interface RefusalCount {
  readonly principal: string;
  readonly resource: string;
  readonly refused: number;
  readonly first: string;
  readonly last: string;
  /** First allowed decision for the same principal and resource after the end. */
  readonly recoveredAt?: string;
}

export interface ExperimentReport {
  readonly id: string;
  readonly template: string;
  readonly status: string;
  readonly startedAt: string | null;
  readonly endedAt: string | null;
  readonly endReason: string | null;
  readonly refusals: readonly RefusalCount[];
  readonly totalRefused: number;
  readonly monitorsFired: readonly { monitor: string; at: string; stopCondition: boolean }[];
  readonly timeToFirstRefusalMs: number | null;
  /** From the end until the last refused pair was allowed again; null when none was (yet). */
  readonly timeToRecoveryMs: number | null;
  readonly notRecovered: readonly { principal: string; resource: string }[];
}

/** Runs ids are `ex-` and hex, checked on the way in; quoted anyway. */
const quote = (s: string): string => `'${s.replace(/'/g, "''")}'`;

export function refusalSql(x: Experiment, from: number, to: number): string {
  // A gateway query refused before it was planned names no resource; its message names the table.
  const resource = "CASE WHEN resources[1].uid = '-' THEN coalesce(nullif(regexp_extract(status_detail, 'on table `([^`]+)`', 1), ''), '-') ELSE resources[1].uid END";
  return `SELECT actor.user.uid AS principal, ${resource} AS resource, min(time) AS first, max(time) AS last, count(*) AS refused
FROM steward.security.steward
WHERE class_uid = 6003 AND status_id = 2 AND time >= ${from} AND time <= ${to}
  AND (CAST(actor.authorizations AS VARCHAR) LIKE ${quote(`%guardrail:${guardrailNameOf(x.id)}%`)}
       OR status_detail LIKE ${quote(`%denied by experiment %(${x.id},%`)})
GROUP BY ALL ORDER BY refused DESC, principal, resource`;
}

export function recoverySql(from: number): string {
  return `SELECT actor.user.uid AS principal, resources[1].uid AS resource, min(time) AS at
FROM steward.security.steward
WHERE class_uid = 6003 AND status_id = 1 AND time >= ${from}
GROUP BY ALL`;
}

const num = (v: unknown): number => (typeof v === 'bigint' ? Number(v) : Number(v));
const isoOf = (ms: number): string => new Date(ms).toISOString();

export async function buildReport(x: Experiment, lake: SecurityLakeReader, firings: readonly { monitor: string; at: string }[], now: number): Promise<ExperimentReport> {
  await lake.flush();
  const start = x.startedAt === undefined ? null : Date.parse(x.startedAt);
  const end = x.endedAt === undefined ? null : Date.parse(x.endedAt);
  let refusals: RefusalCount[] = [];
  let firstRefusal: number | null = null;
  let recovery: number | null = null;
  const notRecovered: { principal: string; resource: string }[] = [];
  if (start !== null) {
    const rows = await lake.query(refusalSql(x, start, end ?? now));
    const recovered = new Map<string, number>();
    if (end !== null) for (const r of await lake.query(recoverySql(end))) recovered.set(`${String(r['principal'])}\n${String(r['resource'])}`, num(r['at']));
    refusals = rows.map((r) => {
      const principal = String(r['principal']);
      const resource = String(r['resource']);
      const at = recovered.get(`${principal}\n${resource}`);
      return { principal, resource, refused: num(r['refused']), first: isoOf(num(r['first'])), last: isoOf(num(r['last'])), ...(at === undefined ? {} : { recoveredAt: isoOf(at) }) };
    });
    for (const r of rows) firstRefusal = Math.min(firstRefusal ?? Infinity, num(r['first']));
    if (end !== null) {
      for (const r of refusals) {
        if (r.recoveredAt === undefined) notRecovered.push({ principal: r.principal, resource: r.resource });
        else recovery = Math.max(recovery ?? 0, Date.parse(r.recoveredAt) - end);
      }
    }
  }
  return {
    id: x.id,
    template: x.template,
    status: x.status,
    startedAt: x.startedAt ?? null,
    endedAt: x.endedAt ?? null,
    endReason: x.endReason ?? null,
    refusals,
    totalRefused: refusals.reduce((n, r) => n + r.refused, 0),
    monitorsFired: firings.map((f) => ({ ...f, stopCondition: x.spec.stopConditions.includes(f.monitor) })),
    timeToFirstRefusalMs: firstRefusal === null || start === null ? null : firstRefusal - start,
    timeToRecoveryMs: recovery,
    notRecovered,
  };
}

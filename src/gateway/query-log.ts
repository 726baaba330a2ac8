/**
 * Every governed query, allowed or refused, leaves one decision-log entry
 * (`query.run`, or `query.run-as` when an admin runs it as someone else) and,
 * when the gateway keeps one, one query-history entry.
 */
import type { DecisionLogEntry } from '../store/decision-log.js';
import type { GatewayDeps, HistoryEntry, QueryRequest, Used } from './types.js';

/** Records one query's outcome; `used` is what it read and the grants that allowed it. */
export type Recorder = (req: QueryRequest, outcome: HistoryEntry['outcome'], used: Used, durationMs: number, rowCount: number, message: string) => Promise<void>;

/** Nothing read: the query was refused or failed before it was planned. */
export const NOTHING_USED: Used = { tables: [], grants: [] };

export function createRecorder(deps: Pick<GatewayDeps, 'log' | 'recordHistory'>): Recorder {
  return async (req, outcome, used, durationMs, rowCount, message) => {
    const { tables } = used;
    const details: Record<string, unknown> = { principal: req.principal, sql: req.sql.slice(0, 4000), tables, durationMs, rows: rowCount };
    if (used.grants.length > 0) details['grants'] = used.grants;
    if (req.impersonatedBy !== undefined) details['impersonatedBy'] = req.impersonatedBy;
    if (req.savedQuery !== undefined) details['savedQuery'] = req.savedQuery;
    // An embed session: the security lake names the vendor's user and the tags that chose the rows (src/audit/steward-events.ts).
    if (req.session !== undefined) details['embed'] = { user: req.session.user, tags: req.session.tags, session: req.session.id, ...(req.session.dashboard === undefined ? {} : { dashboard: req.session.dashboard }) };
    const entry: DecisionLogEntry = {
      actor: req.actor,
      action: req.impersonatedBy === undefined ? 'query.run' : 'query.run-as',
      resource: tables.length === 0 ? '-' : tables.join(','),
      result: outcome === 'allowed' ? 'allow' : outcome === 'refused' ? 'deny' : 'error',
      reason: message,
      details,
    };
    const tasks: Promise<void>[] = [deps.log([entry])];
    if (deps.recordHistory !== undefined) {
      tasks.push(
        deps.recordHistory({
          principal: req.principal,
          actor: req.actor,
          sql: req.sql,
          tables,
          durationMs: Math.round(durationMs),
          rowCount,
          outcome,
          message,
          ...(req.savedQuery === undefined ? {} : { savedQuery: req.savedQuery }),
        }),
      );
    }
    await Promise.all(tasks);
  };
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

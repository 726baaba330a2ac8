/**
 * Every governed query, allowed or refused, leaves one decision-log entry
 * (`query.run`, or `query.run-as` when an admin runs it as someone else) and,
 * when the gateway keeps one, one query-history entry.
 */
import { canonicalJson } from '../audit/lake-schema.js';
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
    if (req.session !== undefined) {
      // An embed session: the security lake's actor.user is the vendor's user, and the tags that chose the rows travel
      // with it as canonical JSON text, which the OCSF mapping copies to `unmapped` byte for byte (src/audit/steward-events.ts).
      const s = req.session;
      details['principal'] = `embed:${s.user}`;
      details['embed'] = canonicalJson({ user: s.user, principal: req.principal, tags: s.tags, session: s.id, ...(s.dashboard === undefined ? {} : { dashboard: s.dashboard }) });
    }
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

/**
 * One authorization question, asked and answered: the body `POST
 * /v1/authorize` takes, the decision it returns, and the decision-log entry
 * it writes. The route and the CLI's cached decisions (src/cli/cached-decisions.ts)
 * both answer through `answerAuthorize`, so the two cannot drift apart.
 *
 * Kept free of the server stack (Hono, stores): the cached path loads this,
 * the engine and zod, and nothing else.
 */
import { z } from 'zod';
import { PermissionSchema, PrincipalSchema, ResourceSchema } from '../server/schemas.js';
import { actorName, requireSelfOrAdmin, type Actor } from '../server/actor.js';
import { resourceToString } from '../policy/model.js';
import type { Decision, Evaluator } from '../policy/decision.js';
import { toSql, type Predicate } from '../policy/predicate.js';
import type { DecisionLogEntry } from '../store/decision-log.js';

export const AuthorizeBody = z.object({ principal: PrincipalSchema, action: PermissionSchema, resource: ResourceSchema }).strict();
export type AuthorizeInput = z.infer<typeof AuthorizeBody>;

const ReasonOut = z.object({ code: z.string(), message: z.string() }).passthrough();
export const ColumnAccessOut = z.object({ name: z.string(), rowFilter: z.string().nullable() });
export const DecisionOut = z.object({
  decision: z.enum(['allow', 'deny']),
  principal: z.string(),
  action: z.string(),
  resource: z.string(),
  reasons: z.array(ReasonOut),
  matchedGrants: z.array(z.string()),
  deniedBy: z.array(z.string()),
  filters: z.array(z.string()),
  columns: z.array(ColumnAccessOut).optional(),
  rowFilter: z.string().nullable().optional(),
});
export type DecisionJson = z.infer<typeof DecisionOut>;

export const sqlOrNull = (p: Predicate | null | undefined): string | null => (p === null || p === undefined ? null : toSql(p));

/** Decisions carry predicate trees; over the wire they are SQL text (DuckDB dialect), which is what people read. */
export function decisionToJson(d: Decision): DecisionJson {
  return {
    decision: d.decision,
    principal: d.principal,
    action: d.action,
    resource: d.resource,
    reasons: d.reasons.map((r) => ({ ...r })),
    matchedGrants: [...d.matchedGrants],
    deniedBy: [...d.deniedBy],
    filters: [...d.filters],
    ...(d.columns === undefined ? {} : { columns: d.columns.map((c) => ({ name: c.name, rowFilter: sqlOrNull(c.rowFilter) })) }),
    ...(d.rowFilter === undefined ? {} : { rowFilter: sqlOrNull(d.rowFilter) }),
  };
}

/** The decision and the decision-log entry that records it (the caller logs it before answering). */
export function answerAuthorize(engine: Evaluator, actor: Actor, body: AuthorizeInput): { readonly json: DecisionJson; readonly entry: DecisionLogEntry } {
  requireSelfOrAdmin(actor, body.principal);
  const d = engine.authorize({ principal: body.principal, action: body.action, resource: body.resource });
  return {
    json: decisionToJson(d),
    entry: {
      actor: actorName(actor),
      action: `authorize.${body.action}`,
      resource: resourceToString(body.resource),
      result: d.decision,
      reason: d.reasons[0]?.message ?? d.decision,
      details: { principal: body.principal, grants: d.matchedGrants, guardrails: d.deniedBy },
    },
  };
}

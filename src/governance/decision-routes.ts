/**
 * Decisions over HTTP: authorize, effective permissions, who can access.
 * Each answer is appended to the decision log. Users may only ask about
 * themselves; admins about anyone.
 */
import { z } from 'zod';
import { route, type RouteDef } from '../server/route.js';
import { PermissionSchema, PrincipalSchema, ResourceSchema } from '../server/schemas.js';
import { actorName, requireSelfOrAdmin } from '../server/actor.js';
import { resourceToString, type PrincipalRef } from '../policy/model.js';
import type { EffectivePermission } from '../policy/decision.js';
import { answerAuthorize, AuthorizeBody, ColumnAccessOut, DecisionOut, decisionToJson, sqlOrNull } from './authorize.js';
import { StewardError } from '../errors.js';

const EffectiveOut = z.object({
  resource: z.string(),
  level: z.string(),
  permissions: z.array(z.string()),
  grantable: z.array(z.string()),
  columns: z.array(ColumnAccessOut).optional(),
  rowFilter: z.string().nullable().optional(),
  grants: z.array(z.string()),
});

function effectiveToJson(e: EffectivePermission): z.infer<typeof EffectiveOut> {
  return {
    resource: e.resource,
    level: e.level,
    permissions: [...e.permissions],
    grantable: [...e.grantable],
    grants: [...e.grants],
    ...(e.columns === undefined ? {} : { columns: e.columns.map((c) => ({ name: c.name, rowFilter: sqlOrNull(c.rowFilter) })) }),
    ...(e.rowFilter === undefined ? {} : { rowFilter: sqlOrNull(e.rowFilter) }),
  };
}

export const decisionRoutes: readonly RouteDef[] = [
  route({
    method: 'post',
    path: '/v1/authorize',
    summary: 'Decide whether a principal may perform an action on a resource, with the explanation',
    tag: 'decisions',
    auth: 'user',
    body: AuthorizeBody,
    response: DecisionOut,
    handler: async ({ services, actor, body }) => {
      const { json, entry } = answerAuthorize((await services.state.snapshot()).engine, actor, body);
      await services.state.log([entry]);
      return json;
    },
  }),
  route({
    method: 'get',
    path: '/v1/principals/:principal/effective-permissions',
    summary: 'Everything a principal can do, with the filters that apply',
    tag: 'decisions',
    auth: 'user',
    params: z.object({ principal: PrincipalSchema }).strict(),
    response: z.object({ principal: z.string(), permissions: z.array(EffectiveOut) }),
    handler: async ({ services, actor, params }) => {
      requireSelfOrAdmin(actor, params.principal);
      const snap = await services.state.snapshot();
      const list = snap.engine.effectivePermissions(params.principal);
      await services.state.log([
        { actor: actorName(actor), action: 'effective-permissions', resource: params.principal, result: 'ok', reason: `${list.length} resource(s)` },
      ]);
      return { principal: params.principal, permissions: list.map(effectiveToJson) };
    },
  }),
  route({
    method: 'get',
    path: '/v1/resources/:resource/access',
    summary: 'Who can perform an action on a resource, and why',
    tag: 'decisions',
    auth: 'admin',
    params: z.object({ resource: ResourceSchema }).strict(),
    query: z.object({ action: PermissionSchema.optional() }).strict(),
    response: z.object({ resource: z.string(), action: z.string(), holders: z.array(z.object({ principal: z.string(), decision: DecisionOut })) }),
    handler: async ({ services, actor, params, query }) => {
      const action = query.action ?? 'SELECT';
      const snap = await services.state.snapshot();
      const holders = snap.engine.whoCanAccess(params.resource, action);
      const resource = resourceToString(params.resource);
      await services.state.log([
        { actor: actorName(actor), action: `who-can-access.${action}`, resource, result: 'ok', reason: `${holders.length} principal(s)` },
      ]);
      return { resource, action, holders: holders.map((h) => ({ principal: h.principal, decision: decisionToJson(h.decision) })) };
    },
  }),
  route({
    method: 'get',
    path: '/v1/me',
    summary: 'The principal and role of the calling token',
    tag: 'decisions',
    auth: 'user',
    response: z.object({ principal: z.string(), role: z.string(), via: z.string() }),
    handler: ({ actor }) => ({ principal: actor.principal, role: actor.role, via: actor.via }),
  }),
  route({
    method: 'get',
    path: '/v1/decision-log',
    summary: 'Recent decision-log entries, newest first',
    tag: 'decisions',
    auth: 'admin',
    query: z
      .object({
        actor: z.string().max(200).optional(),
        limit: z.coerce.number().int().min(1).max(1000).optional(),
        before: z.coerce.number().int().min(1).optional(),
      })
      .strict(),
    response: z.object({
      entries: z.array(
        z.object({
          id: z.number(),
          at: z.string(),
          actor: z.string(),
          action: z.string(),
          resource: z.string(),
          result: z.string(),
          reason: z.string(),
          details: z.unknown().optional(),
        }),
      ),
    }),
    handler: async ({ services, query }) => {
      const entries = await services.decisionLog.listDecisions({
        ...(query.actor === undefined ? {} : { actor: query.actor }),
        ...(query.before === undefined ? {} : { before: query.before }),
        limit: query.limit ?? 100,
      });
      return { entries: entries.map((e) => ({ ...e, at: new Date(e.at).toISOString() })) };
    },
  }),
];

/** Parses a principal given on the command line or in a path. */
export function asPrincipal(text: string): PrincipalRef {
  const r = PrincipalSchema.safeParse(text);
  if (!r.success) throw new StewardError('STEWARD_E_VALIDATION', `invalid principal \`${text}\`: must be \`user:NAME\` or \`group:NAME\``);
  return r.data;
}

/**
 * Governed queries over HTTP: run SQL (streamed as JSON, NDJSON, CSV or Arrow IPC),
 * the caller's query history, and saved queries shared with groups.
 *
 * Everyone runs as themselves. Admins may run as another principal with
 * `as` in the body or the `x-steward-as` header; the decision log records both
 * the admin and the principal (`query.run-as`).
 */
import { z } from 'zod';
import { route, type RouteDef } from '../server/route.js';
import { actorName, type Actor } from '../server/actor.js';
import { PrincipalSchema, NameSchema } from '../server/schemas.js';
import { StewardError } from '../errors.js';
import { membershipGraph, principalSet } from '../policy/principals.js';
import type { PrincipalRef } from '../policy/model.js';
import type { Services } from '../server/services.js';
import { FORMATS, formatFromAccept, resultResponse, type ResultFormat } from './formats.js';
import type { ParamValue } from './gateway.js';
import { placeholdersToParameters } from './template.js';
import type { SavedQuery } from './workbench-store.js';
import type { GatewayService } from './gateway-service.js';

const MAX_SQL = 100_000;

const ParamsSchema = z
  .record(z.string().max(64).regex(/^[A-Za-z_0-9]+$/, 'parameter names are letters, digits and underscores'), z.union([z.string().max(10_000), z.number(), z.boolean(), z.null()]))
  .refine((r) => Object.keys(r).length <= 100, 'at most 100 parameters');

const RunOptions = {
  params: ParamsSchema.optional(),
  format: z.enum(FORMATS).optional(),
  maxRows: z.number().int().min(0).max(10_000_000).optional(),
  timeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  as: PrincipalSchema.optional(),
};

const ResultOut = z.object({
  columns: z.array(z.object({ name: z.string(), type: z.string() })),
  rows: z.array(z.record(z.string(), z.unknown())),
  rowCount: z.number(),
  truncated: z.boolean(),
  durationMs: z.number(),
  tables: z.array(z.string()),
});

const SavedOut = z.object({
  id: z.string(),
  owner: z.string(),
  name: z.string(),
  description: z.string().optional(),
  sql: z.string(),
  parameters: z.array(z.string()),
  sharedWith: z.array(z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const SavedIn = z
  .object({
    name: z.string().trim().min(1).max(200),
    description: z.string().max(2000).optional(),
    sql: z.string().min(1).max(MAX_SQL),
  })
  .strict();

function service(services: Services): GatewayService {
  const g = services.gateway;
  if (g === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'the query gateway is not configured on this server');
  return g;
}

/**
 * Whose permissions a query runs with: the caller's own, or, for an admin who
 * asks (`as` / `x-steward-as`), the named principal's. Anyone else asking to
 * run as someone else is refused.
 */
export function queryPrincipal(actor: Actor, requested: PrincipalRef | undefined, request: Request): { principal: PrincipalRef; impersonatedBy?: string } {
  const header = request.headers.get('x-steward-as');
  let asked = requested;
  if (asked === undefined && header !== null && header.trim() !== '') {
    const parsed = PrincipalSchema.safeParse(header);
    if (!parsed.success) throw new StewardError('STEWARD_E_VALIDATION', `invalid \`x-steward-as\` principal \`${header.slice(0, 140)}\``);
    asked = parsed.data;
  }
  if (asked === undefined || asked === actor.principal) return { principal: actor.principal };
  if (actor.role !== 'admin') throw new StewardError('STEWARD_E_FORBIDDEN', `only admins may run queries as another principal (\`${asked}\`)`);
  return { principal: asked, impersonatedBy: actorName(actor) };
}

async function groupsOf(services: Services, principal: PrincipalRef): Promise<string[]> {
  const snap = await services.state.snapshot();
  const set = principalSet(membershipGraph(snap.world), principal);
  return [...set].filter((p) => p.startsWith('group:')).map((p) => p.slice('group:'.length));
}

async function readable(services: Services, actor: Actor, q: SavedQuery): Promise<boolean> {
  if (actor.role === 'admin' || q.owner === actor.principal) return true;
  const groups = await groupsOf(services, actor.principal);
  return q.sharedWith.some((g) => groups.includes(g));
}

async function savedFor(services: Services, actor: Actor, id: string, write: boolean): Promise<SavedQuery> {
  const q = await service(services).workbench.getSaved(id);
  // A query the caller may not see answers not-found, like a table it may not DESCRIBE.
  if (q === null || !(await readable(services, actor, q))) throw new StewardError('STEWARD_E_NOT_FOUND', `saved query \`${id}\` not found`);
  if (write && actor.role !== 'admin' && q.owner !== actor.principal) {
    throw new StewardError('STEWARD_E_FORBIDDEN', `only the owner (\`${q.owner}\`) or an admin may change saved query \`${id}\``);
  }
  return q;
}

async function run(
  services: Services,
  actor: Actor,
  request: Request,
  sql: string,
  opts: { params?: Record<string, ParamValue>; format?: ResultFormat; maxRows?: number; timeoutMs?: number; as?: PrincipalRef },
  savedQuery?: string,
): Promise<Response> {
  const who = queryPrincipal(actor, opts.as, request);
  const stream = await service(services).gateway.open({
    principal: who.principal,
    actor: actorName(actor),
    sql,
    signal: request.signal,
    ...(opts.params === undefined ? {} : { params: opts.params }),
    ...(opts.maxRows === undefined ? {} : { maxRows: opts.maxRows }),
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    ...(who.impersonatedBy === undefined ? {} : { impersonatedBy: who.impersonatedBy }),
    ...(savedQuery === undefined ? {} : { savedQuery }),
  });
  // The body's `format` wins; without it the Accept header chooses (`application/x-ndjson` streams rows as they come).
  return resultResponse(stream, opts.format ?? formatFromAccept(request.headers.get('accept')), { 'x-steward-principal': who.principal });
}

export const gatewayRoutes: readonly RouteDef[] = [
  route({
    method: 'post',
    path: '/v1/query',
    summary: 'Run a read-only SQL query over catalog tables with every table, column and row permission enforced; streams JSON, NDJSON, CSV or Arrow IPC (`format`, or the Accept header)',
    tag: 'query',
    auth: 'user',
    body: z.object({ sql: z.string().max(MAX_SQL), ...RunOptions }).strict(),
    response: ResultOut,
    handler: async ({ services, actor, body, request }) => streamed(await run(services, actor, request, body.sql, body)),
  }),
  route({
    method: 'get',
    path: '/v1/query/history',
    summary: 'Query history, newest first: who, SQL, tables, duration, rows, allowed or refused. Users see their own; admins anyone',
    tag: 'query',
    auth: 'user',
    query: z
      .object({
        principal: PrincipalSchema.optional(),
        limit: z.coerce.number().int().min(1).max(1000).optional(),
        before: z.coerce.number().int().min(1).optional(),
      })
      .strict(),
    response: z.object({
      entries: z.array(
        z.object({
          id: z.number(),
          at: z.string(),
          principal: z.string(),
          actor: z.string(),
          sql: z.string(),
          tables: z.array(z.string()),
          durationMs: z.number(),
          rowCount: z.number(),
          outcome: z.string(),
          message: z.string().optional(),
          savedQuery: z.string().optional(),
        }),
      ),
    }),
    handler: async ({ services, actor, query }) => {
      let principal = query.principal;
      if (actor.role !== 'admin') {
        if (principal !== undefined && principal !== actor.principal) throw new StewardError('STEWARD_E_FORBIDDEN', `only admins may read the history of \`${principal}\``);
        principal = actor.principal;
      }
      const entries = await service(services).workbench.listHistory({
        limit: query.limit ?? 100,
        ...(principal === undefined ? {} : { principal }),
        ...(query.before === undefined ? {} : { before: query.before }),
      });
      return { entries: entries.map((e) => ({ ...e, tables: [...e.tables] })) };
    },
  }),
  route({
    method: 'post',
    path: '/v1/saved-queries',
    summary: 'Save a query; `${name}` placeholders become parameters, bound as values at run time',
    tag: 'query',
    auth: 'user',
    status: 201,
    body: SavedIn,
    response: SavedOut,
    handler: async ({ services, actor, body }) => {
      const { names } = placeholdersToParameters(body.sql);
      const saved = await service(services).workbench.createSaved({
        owner: actor.principal,
        name: body.name,
        sql: body.sql,
        parameters: names,
        ...(body.description === undefined ? {} : { description: body.description }),
      });
      await services.state.log([{ actor: actorName(actor), action: 'saved-query.create', resource: saved.id, result: 'ok', reason: body.name }]);
      return toJson(saved);
    },
  }),
  route({
    method: 'get',
    path: '/v1/saved-queries',
    summary: 'Saved queries the caller owns or that are shared with one of its groups (admins: all)',
    tag: 'query',
    auth: 'user',
    response: z.object({ queries: z.array(SavedOut) }),
    handler: async ({ services, actor }) => {
      const groups = await groupsOf(services, actor.principal);
      const list = await service(services).workbench.listSaved({ owner: actor.principal, groups, all: actor.role === 'admin' });
      return { queries: list.map(toJson) };
    },
  }),
  route({
    method: 'get',
    path: '/v1/saved-queries/:id',
    summary: 'One saved query',
    tag: 'query',
    auth: 'user',
    params: z.object({ id: z.string().max(64) }).strict(),
    response: SavedOut,
    handler: async ({ services, actor, params }) => toJson(await savedFor(services, actor, params.id, false)),
  }),
  route({
    method: 'put',
    path: '/v1/saved-queries/:id',
    summary: 'Change a saved query (owner or admin)',
    tag: 'query',
    auth: 'user',
    params: z.object({ id: z.string().max(64) }).strict(),
    body: SavedIn,
    response: SavedOut,
    handler: async ({ services, actor, params, body }) => {
      await savedFor(services, actor, params.id, true);
      const { names } = placeholdersToParameters(body.sql);
      await service(services).workbench.updateSaved(params.id, {
        name: body.name,
        sql: body.sql,
        parameters: names,
        ...(body.description === undefined ? {} : { description: body.description }),
      });
      await services.state.log([{ actor: actorName(actor), action: 'saved-query.update', resource: params.id, result: 'ok', reason: body.name }]);
      return toJson(await savedFor(services, actor, params.id, false));
    },
  }),
  route({
    method: 'delete',
    path: '/v1/saved-queries/:id',
    summary: 'Delete a saved query (owner or admin)',
    tag: 'query',
    auth: 'user',
    params: z.object({ id: z.string().max(64) }).strict(),
    response: z.object({ ok: z.literal(true) }),
    handler: async ({ services, actor, params }) => {
      await savedFor(services, actor, params.id, true);
      await service(services).workbench.deleteSaved(params.id);
      await services.state.log([{ actor: actorName(actor), action: 'saved-query.delete', resource: params.id, result: 'ok', reason: 'deleted' }]);
      return { ok: true as const };
    },
  }),
  route({
    method: 'put',
    path: '/v1/saved-queries/:id/shares/:group',
    summary: 'Share a saved query with a group (owner or admin; owners share only with their own groups)',
    tag: 'query',
    auth: 'user',
    params: z.object({ id: z.string().max(64), group: NameSchema.or(z.string().max(140).transform((s) => s.trim().toLowerCase().replace(/^group:/, ''))) }).strict(),
    response: SavedOut,
    handler: async ({ services, actor, params }) => {
      const q = await savedFor(services, actor, params.id, true);
      const group = params.group.replace(/^group:/, '');
      const snap = await services.state.snapshot();
      if (!snap.world.groups.some((g) => g.name === group)) throw new StewardError('STEWARD_E_NOT_FOUND', `group \`${group}\` not found`);
      if (actor.role !== 'admin' && !(await groupsOf(services, actor.principal)).includes(group)) {
        throw new StewardError('STEWARD_E_FORBIDDEN', `you may share only with groups you belong to, not \`${group}\``);
      }
      await service(services).workbench.share(q.id, group);
      await services.state.log([{ actor: actorName(actor), action: 'saved-query.share', resource: q.id, result: 'ok', reason: `shared with group:${group}` }]);
      return toJson(await savedFor(services, actor, params.id, false));
    },
  }),
  route({
    method: 'delete',
    path: '/v1/saved-queries/:id/shares/:group',
    summary: 'Stop sharing a saved query with a group',
    tag: 'query',
    auth: 'user',
    params: z.object({ id: z.string().max(64), group: z.string().max(140) }).strict(),
    response: SavedOut,
    handler: async ({ services, actor, params }) => {
      const q = await savedFor(services, actor, params.id, true);
      const group = params.group.trim().toLowerCase().replace(/^group:/, '');
      await service(services).workbench.unshare(q.id, group);
      await services.state.log([{ actor: actorName(actor), action: 'saved-query.unshare', resource: q.id, result: 'ok', reason: `group:${group}` }]);
      return toJson(await savedFor(services, actor, params.id, false));
    },
  }),
  route({
    method: 'post',
    path: '/v1/saved-queries/:id/run',
    summary: "Run a saved query with the caller's own permissions; parameter values are bound, never spliced",
    tag: 'query',
    auth: 'user',
    params: z.object({ id: z.string().max(64) }).strict(),
    body: z.object(RunOptions).strict(),
    response: ResultOut,
    handler: async ({ services, actor, params, body, request }) => {
      const q = await savedFor(services, actor, params.id, false);
      return streamed(await run(services, actor, request, q.sql, body, q.id));
    },
  }),
];

/**
 * Query routes answer with a streamed Response (the app passes it through); the
 * declared response schema documents the JSON form of that body.
 */
function streamed(res: Response): z.infer<typeof ResultOut> {
  return res as unknown as z.infer<typeof ResultOut>;
}

function toJson(q: SavedQuery): z.infer<typeof SavedOut> {
  return { ...q, parameters: [...q.parameters], sharedWith: [...q.sharedWith] };
}

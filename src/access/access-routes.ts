/**
 * Just-in-time access over HTTP. Every route acts as the caller, or, for an
 * admin token or the embedded CLI only, as the principal named in the
 * `x-steward-as` header (recorded in the decision log as `impersonatedBy`).
 */
import { z } from 'zod';
import { route, type RouteDef } from '../server/route.js';
import { actorName, type Actor } from '../server/actor.js';
import type { Services } from '../server/services.js';
import { LABEL_PATTERN, type PrincipalRef } from '../policy/model.js';
import { StewardError } from '../errors.js';
import type { AccessActor, AccessRequestView, AccessService, NewRequest } from './access-service.js';
import { REQUEST_STATUSES } from './access-types.js';
import { DurationSchema, InstantSchema } from '../server/schemas.js';

export const AS_HEADER = 'x-steward-as';

const PRINCIPAL = /^user:[a-z0-9_][a-z0-9_.-]{0,127}$/;

/**
 * The principal a request acts as. `x-steward-as: user:NAME` is honored only
 * for admin actors; anyone else sending it is refused (never silently ignored).
 */
export function accessActor(actor: Actor, request: Request): AccessActor {
  const raw = request.headers.get(AS_HEADER);
  if (raw === null || raw.trim() === '') return { principal: actor.principal, admin: actor.role === 'admin' };
  const as = raw.trim().toLowerCase();
  const principal = (as.includes(':') ? as : `user:${as}`) as PrincipalRef;
  if (as.length > 140 || !PRINCIPAL.test(principal)) throw new StewardError('STEWARD_E_VALIDATION', `${AS_HEADER}: must be \`user:NAME\``);
  if (actor.role !== 'admin') throw new StewardError('STEWARD_E_FORBIDDEN', `only admins may act as another principal (\`${AS_HEADER}\`)`);
  return { principal, admin: false, impersonatedBy: actorName(actor) };
}

function accessOf(services: Services): AccessService {
  if (services.access === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'just-in-time access is not available in this process');
  return services.access;
}

const Id = z
  .string()
  .max(64)
  .transform((s) => s.trim().toLowerCase())
  .pipe(z.string().regex(LABEL_PATTERN, 'must be a request id'));
const Comment = z.object({ comment: z.string().max(2000).optional() }).strict();
const Reason = z.object({ reason: z.string().max(2000).optional() }).strict();

const RequestOut = z
  .object({
    id: z.string(),
    status: z.enum(REQUEST_STATUSES),
    requester: z.string(),
    scope: z.string(),
    permissionSet: z.string(),
    startAt: z.string(),
    endAt: z.string(),
    durationSeconds: z.number(),
    justification: z.string(),
    ticket: z.string().optional(),
    grantId: z.string(),
    approvalsReceived: z.number(),
    approvalsRequired: z.number(),
  })
  .passthrough();

const params = z.object({ id: Id }).strict();

/** A plain object (the response schema has an index signature; interfaces do not). */
const json = async (v: Promise<AccessRequestView>): Promise<z.infer<typeof RequestOut>> => ({ ...(await v) });

/** The body of a new request, and of its preview (where the justification may still be empty). */
const NewRequestBody = z
  .object({
    scope: z.string().min(1).max(400),
    permissionSet: z.string().min(1).max(128),
    duration: DurationSchema,
    start: InstantSchema.optional(),
    ticket: z.string().max(200).optional(),
    justification: z.string().trim().min(1, 'a justification is required').max(2000),
  })
  .strict();

function newRequest(body: Omit<z.infer<typeof NewRequestBody>, 'justification'>, justification: string): NewRequest {
  return {
    scope: body.scope,
    permissionSet: body.permissionSet.trim().toLowerCase(),
    durationSeconds: body.duration,
    justification,
    ...(body.start === undefined ? {} : { startAt: body.start }),
    ...(body.ticket === undefined ? {} : { ticket: body.ticket }),
  };
}

export const accessRoutes: readonly RouteDef[] = [
  route({
    method: 'post',
    path: '/v1/access/requests',
    summary: 'Request just-in-time access to a scope with a permission set, for a duration',
    tag: 'access',
    auth: 'user',
    status: 201,
    body: NewRequestBody,
    response: RequestOut,
    handler: ({ services, actor, request, body }) =>
      json(accessOf(services).request(accessActor(actor, request), newRequest(body, body.justification))),
  }),
  route({
    method: 'post',
    path: '/v1/access/preview',
    summary: 'Before requesting: what the request would add to your access (the dry run) and who must approve it; stores nothing',
    tag: 'access',
    auth: 'user',
    body: NewRequestBody.extend({ justification: z.string().max(2000).optional() }),
    response: z.object({
      principal: z.string(),
      scope: z.string(),
      startAt: z.string(),
      endAt: z.string(),
      addsNothing: z.boolean(),
      entries: z.array(z.record(z.string(), z.unknown())),
      stillDeniedBy: z.array(z.string()),
      approvalRequired: z.boolean(),
      minApprovals: z.number(),
      approverGroups: z.array(z.string()),
    }),
    handler: async ({ services, actor, request, body }) => {
      const p = await accessOf(services).preview(accessActor(actor, request), newRequest(body, body.justification ?? 'preview'));
      return { ...p, entries: p.entries.map((e) => ({ ...e })), stillDeniedBy: [...p.stillDeniedBy], approverGroups: [...p.approverGroups] };
    },
  }),
  route({
    method: 'get',
    path: '/v1/access/requests',
    summary: 'Requests the caller may see: their own; as approver, those they may approve; as auditor or admin, all',
    tag: 'access',
    auth: 'user',
    query: z
      .object({
        status: z
          .string()
          .max(200)
          .transform((s) => s.split(',').map((x) => x.trim()))
          .pipe(z.array(z.enum(REQUEST_STATUSES)))
          .optional(),
        mine: z.enum(['true', 'false']).optional(),
      })
      .strict(),
    response: z.object({ requests: z.array(RequestOut) }),
    handler: async ({ services, actor, request, query }) => ({
      requests: (
        await accessOf(services).list(accessActor(actor, request), {
          ...(query.status === undefined ? {} : { statuses: query.status }),
          mine: query.mine === 'true',
        })
      ).map((r) => ({ ...r })),
    }),
  }),
  route({
    method: 'get',
    path: '/v1/access/requests/:id',
    summary: 'One request with its approvals and timers',
    tag: 'access',
    auth: 'user',
    params,
    response: RequestOut,
    handler: ({ services, actor, request, params: p }) => json(accessOf(services).get(accessActor(actor, request), p.id)),
  }),
  route({
    method: 'get',
    path: '/v1/access/requests/:id/dry-run',
    summary: "What the request would add to the requester's current access (tables, columns, row predicates)",
    tag: 'access',
    auth: 'user',
    params,
    response: z.object({ principal: z.string(), addsNothing: z.boolean(), entries: z.array(z.record(z.string(), z.unknown())), stillDeniedBy: z.array(z.string()) }),
    handler: async ({ services, actor, request, params: p }) => {
      const r = await accessOf(services).dryRun(accessActor(actor, request), p.id);
      return { principal: r.principal, addsNothing: r.addsNothing, entries: r.entries.map((e) => ({ ...e })), stillDeniedBy: [...r.stillDeniedBy] };
    },
  }),
  route({
    method: 'get',
    path: '/v1/access/requests/:id/activity',
    summary: 'Decision-log activity of the requester while the request was active',
    tag: 'access',
    auth: 'user',
    params,
    response: z.object({ activity: z.array(z.record(z.string(), z.unknown())) }),
    handler: async ({ services, actor, request, params: p }) => ({ activity: (await accessOf(services).activity(accessActor(actor, request), p.id)).map((a) => ({ ...a })) }),
  }),
  route({
    method: 'get',
    path: '/v1/access/requests/:id/notifications',
    summary: 'Notifications recorded for a request and whether they were delivered',
    tag: 'access',
    auth: 'user',
    params,
    response: z.object({ notifications: z.array(z.record(z.string(), z.unknown())) }),
    handler: async ({ services, actor, request, params: p }) => ({
      notifications: (await accessOf(services).notifications(accessActor(actor, request), p.id)).map((n) => ({ ...n })),
    }),
  }),
  route({
    method: 'post',
    path: '/v1/access/requests/:id/approve',
    summary: 'Approve a pending request (or a pending extension)',
    tag: 'access',
    auth: 'user',
    params,
    body: Comment,
    response: RequestOut,
    handler: ({ services, actor, request, params: p, body }) => json(accessOf(services).approve(accessActor(actor, request), p.id, body.comment)),
  }),
  route({
    method: 'post',
    path: '/v1/access/requests/:id/reject',
    summary: 'Reject a pending request (or a pending extension)',
    tag: 'access',
    auth: 'user',
    params,
    body: Comment,
    response: RequestOut,
    handler: ({ services, actor, request, params: p, body }) => json(accessOf(services).reject(accessActor(actor, request), p.id, body.comment)),
  }),
  route({
    method: 'post',
    path: '/v1/access/requests/:id/cancel',
    summary: 'Cancel your request before it is active',
    tag: 'access',
    auth: 'user',
    params,
    body: Reason,
    response: RequestOut,
    handler: ({ services, actor, request, params: p, body }) => json(accessOf(services).cancel(accessActor(actor, request), p.id, body.reason)),
  }),
  route({
    method: 'post',
    path: '/v1/access/requests/:id/revoke',
    summary: 'End access now (requester, an approver of the request, or an admin)',
    tag: 'access',
    auth: 'user',
    params,
    body: Reason,
    response: RequestOut,
    handler: ({ services, actor, request, params: p, body }) => json(accessOf(services).revoke(accessActor(actor, request), p.id, body.reason)),
  }),
  route({
    method: 'post',
    path: '/v1/access/requests/:id/extend',
    summary: 'Extend an active or scheduled request; needs a new approval when the request did',
    tag: 'access',
    auth: 'user',
    params,
    body: z.object({ duration: DurationSchema, justification: z.string().max(2000).optional() }).strict(),
    response: RequestOut,
    handler: ({ services, actor, request, params: p, body }) => json(accessOf(services).extend(accessActor(actor, request), p.id, body.duration, body.justification)),
  }),
  route({
    method: 'get',
    path: '/v1/access/me',
    summary: 'The personas (requester, approver, auditor, admin) of the caller',
    tag: 'access',
    auth: 'user',
    response: z.object({ principal: z.string(), requester: z.boolean(), approver: z.boolean(), auditor: z.boolean(), admin: z.boolean() }),
    handler: ({ services, actor, request }) => accessOf(services).personas(accessActor(actor, request)),
  }),
  route({
    method: 'get',
    path: '/v1/access/config',
    summary: 'The access configuration: permission sets, eligibility and approval policies, personas, notifications',
    tag: 'access',
    auth: 'user',
    response: z.record(z.string(), z.unknown()),
    handler: ({ services, actor, request }) => accessOf(services).getConfig(accessActor(actor, request)),
  }),
  route({
    method: 'put',
    path: '/v1/access/config',
    summary: 'Replace the access configuration (admins)',
    tag: 'access',
    auth: 'user',
    // A replace without `apiVersion` is most likely an empty or truncated body: refuse it rather than wipe the configuration.
    body: z.object({ apiVersion: z.literal('steward/v1', { error: 'a configuration replace needs `apiVersion: steward/v1`' }) }).catchall(z.unknown()),
    response: z.record(z.string(), z.unknown()),
    handler: ({ services, actor, request, body }) => accessOf(services).putConfig(accessActor(actor, request), body),
  }),
  route({
    method: 'post',
    path: '/v1/access/sweep',
    summary: 'Run due timers and the reconciliation sweep now (admins)',
    tag: 'access',
    auth: 'admin',
    body: z.object({}).strict(),
    response: z.object({ fired: z.number(), removed: z.array(z.string()), restored: z.array(z.string()) }),
    handler: async ({ services }) => {
      const access = accessOf(services);
      const fired = await access.runDue();
      const swept = await access.sweep();
      return { fired, ...swept };
    },
  }),
];

/**
 * Access experiments over HTTP (docs/experiments.md). Templates, the policy,
 * starting, stopping, dry runs and reports are for admins; approving and
 * rejecting a pending run is for the members of its approver groups. An admin
 * token (or the embedded CLI) may act as a user with `x-steward-as`, as in
 * just-in-time access, so an operator's start is attributed to the operator.
 */
import { z } from 'zod';
import { route, type RouteDef } from '../server/route.js';
import type { Actor } from '../server/actor.js';
import type { Services } from '../server/services.js';
import { StewardError } from '../errors.js';
import { DurationSchema, LabelSchema } from '../server/schemas.js';
import { accessActor } from '../access/access-routes.js';
import { formatDuration } from '../time.js';
import type { ExperimentActor, ExperimentService } from './experiment-service.js';
import type { Experiment } from './experiment-types.js';
import { policyDocument, templateDocument, PolicyInputSchema, TemplateInputSchema } from './experiment-config.js';

function experimentsOf(services: Services): ExperimentService {
  if (services.experiments === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'access experiments are not available in this process');
  return services.experiments;
}

function actorOf(actor: Actor, request: Request): ExperimentActor {
  const a = accessActor(actor, request);
  return { principal: a.principal, admin: a.admin };
}

const Any = z.record(z.string(), z.unknown());
const Id = z
  .string()
  .max(64)
  .transform((s) => s.trim().toLowerCase())
  .pipe(z.string().regex(/^ex-[0-9a-f]{12}$/, 'must be an experiment id (`ex-` and 12 hex digits)'));
const params = z.object({ id: Id }).strict();

/** The API form of a run: its template as a document, durations as text. */
export function experimentJson(x: Experiment): Record<string, unknown> {
  return {
    id: x.id,
    template: x.template,
    status: x.status,
    duration: formatDuration(x.durationSeconds),
    startedBy: x.startedBy,
    createdAt: x.createdAt,
    ...(x.startedAt === undefined ? {} : { startedAt: x.startedAt }),
    ...(x.endsAt === undefined ? {} : { endsAt: x.endsAt }),
    ...(x.endedAt === undefined ? {} : { endedAt: x.endedAt }),
    ...(x.endReason === undefined ? {} : { endReason: x.endReason }),
    approvals: x.approvals,
    approvalsRequired: x.spec.selfService ? 0 : x.spec.minApprovals,
    excluded: x.excluded,
    spec: templateDocument(x.spec),
  };
}

const StartBody = z.object({ template: LabelSchema, duration: DurationSchema.optional() }).strict();

export const experimentRoutes: readonly RouteDef[] = [
  route({
    method: 'get',
    path: '/v1/experiments/policy',
    summary: "The workspace's experiment policy: maximum duration, excluded principals, production or not",
    tag: 'experiments',
    auth: 'admin',
    response: Any,
    handler: async ({ services }) => policyDocument(await experimentsOf(services).getPolicy()),
  }),
  route({
    method: 'put',
    path: '/v1/experiments/policy',
    summary: "Replace the workspace's experiment policy",
    tag: 'experiments',
    auth: 'admin',
    body: PolicyInputSchema,
    response: Any,
    handler: async ({ services, actor, request, body }) => policyDocument(await experimentsOf(services).putPolicy(actorOf(actor, request), body)),
  }),
  route({
    method: 'post',
    path: '/v1/experiments/templates',
    summary: 'Create an experiment template: targets, actions, scope, share, duration, stop conditions, exclusions, approval',
    tag: 'experiments',
    auth: 'admin',
    status: 201,
    body: TemplateInputSchema,
    response: Any,
    handler: async ({ services, actor, request, body }) => templateDocument(await experimentsOf(services).createTemplate(actorOf(actor, request), body)),
  }),
  route({
    method: 'get',
    path: '/v1/experiments/templates',
    summary: 'List experiment templates',
    tag: 'experiments',
    auth: 'admin',
    response: z.object({ templates: z.array(Any) }),
    handler: async ({ services }) => ({ templates: (await experimentsOf(services).listTemplates()).map(templateDocument) }),
  }),
  route({
    method: 'post',
    path: '/v1/experiments/dry-run',
    summary: 'Every decision that would change if the template ran now; stores nothing',
    tag: 'experiments',
    auth: 'admin',
    body: StartBody,
    response: Any,
    handler: async ({ services, body }) => ({ ...(await experimentsOf(services).dryRun(body.template, body.duration)) }),
  }),
  route({
    method: 'post',
    path: '/v1/experiments',
    summary: 'Start an experiment from a template (pending until approved, unless self-service on a non-production workspace)',
    tag: 'experiments',
    auth: 'admin',
    status: 201,
    body: StartBody,
    response: Any,
    handler: async ({ services, actor, request, body }) => experimentJson(await experimentsOf(services).start(actorOf(actor, request), body.template, body.duration)),
  }),
  route({
    method: 'get',
    path: '/v1/experiments',
    summary: 'List experiments, newest first: every run for an admin; for anyone else, the pending runs they may approve or reject (their inbox)',
    tag: 'experiments',
    auth: 'user',
    response: z.object({ experiments: z.array(Any) }),
    handler: async ({ services, actor, request }) => {
      const who = actorOf(actor, request);
      const runs = who.admin ? await experimentsOf(services).list() : await experimentsOf(services).awaiting(who.principal);
      return { experiments: runs.map(experimentJson) };
    },
  }),
  route({
    method: 'get',
    path: '/v1/experiments/:id',
    summary: 'One experiment: status, window, approvals',
    tag: 'experiments',
    auth: 'admin',
    params,
    response: Any,
    handler: async ({ services, params: p }) => experimentJson(await experimentsOf(services).get(p.id)),
  }),
  route({
    method: 'post',
    path: '/v1/experiments/:id/approve',
    summary: 'Approve a pending experiment (members of its approver groups, not the one who started it)',
    tag: 'experiments',
    auth: 'user',
    params,
    response: Any,
    handler: async ({ services, actor, request, params: p }) => experimentJson(await experimentsOf(services).approve(actorOf(actor, request), p.id)),
  }),
  route({
    method: 'post',
    path: '/v1/experiments/:id/reject',
    summary: 'Reject a pending experiment',
    tag: 'experiments',
    auth: 'user',
    params,
    response: Any,
    handler: async ({ services, actor, request, params: p }) => experimentJson(await experimentsOf(services).reject(actorOf(actor, request), p.id)),
  }),
  route({
    method: 'post',
    path: '/v1/experiments/:id/stop',
    summary: 'Stop a running or pending experiment now; its deny is removed in the same transaction',
    tag: 'experiments',
    auth: 'admin',
    params,
    body: z.object({ reason: z.string().max(2000).optional() }).strict(),
    response: Any,
    handler: async ({ services, actor, request, params: p, body }) => experimentJson(await experimentsOf(services).stop(actorOf(actor, request), p.id, body.reason)),
  }),
  route({
    method: 'get',
    path: '/v1/experiments/:id/report',
    summary: 'The report from the security lake: refusals by principal and resource, monitors that fired, time to first refusal and to recovery',
    tag: 'experiments',
    auth: 'admin',
    params,
    response: Any,
    handler: async ({ services, params: p }) => ({ ...(await experimentsOf(services).report(p.id)) }),
  }),
  route({
    method: 'post',
    path: '/v1/experiments/sweep',
    summary: 'End due experiments and reconcile experiment guardrails now',
    tag: 'experiments',
    auth: 'admin',
    body: z.object({}).strict(),
    response: Any,
    handler: async ({ services }) => {
      const x = experimentsOf(services);
      const ended = await x.runDue();
      return { ended, ...(await x.sweep()) };
    },
  }),
];

/**
 * Clean rooms over HTTP (docs/cleanrooms.md). Every route acts as the caller,
 * or, for an admin token or the embedded CLI, as the principal named in
 * `x-steward-as` (as in just-in-time access): members are organisations'
 * principals, so an operator acts for one with `--as`.
 */
import { z } from 'zod';
import { route, type RouteDef } from '../server/route.js';
import { actorName, type Actor } from '../server/actor.js';
import type { Services } from '../server/services.js';
import { StewardError } from '../errors.js';
import { DescriptionSchema, LabelSchema, PrincipalSchema } from '../server/schemas.js';
import { accessActor } from '../access/access-routes.js';
import type { PrincipalRef } from '../policy/model.js';
import type { CleanroomService, RoomActor } from './cleanroom-service.js';
import { RuleInputSchema } from './cleanroom-rules.js';
import { AbilitiesSchema, ParamNameSchema, CatalogTableSchema, ColumnNameSchema, PrivacyInputSchema, TEMPLATE_SQL_MAX, TemplateParametersSchema } from './cleanroom-spec.js';
import { installScope3Demo } from './scope3-demo.js';

function roomsOf(services: Services): CleanroomService {
  if (services.cleanrooms === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'clean rooms are not available in this process');
  return services.cleanrooms;
}

function actorOf(actor: Actor, request: Request): RoomActor {
  const a = accessActor(actor, request);
  return { principal: a.principal, admin: a.admin, name: a.impersonatedBy === undefined ? actorName(actor) : `${a.principal} (by ${a.impersonatedBy})` };
}

const Any = z.record(z.string(), z.unknown());
const Member = z.object({ name: LabelSchema, principal: PrincipalSchema.transform((p) => p as PrincipalRef), abilities: AbilitiesSchema }).strict();
const room = z.object({ name: LabelSchema }).strict();
const roomTable = z.object({ name: LabelSchema, table: LabelSchema }).strict();
const ParamValue = z.union([z.string().max(10_000), z.number(), z.boolean(), z.null()]);

export const cleanroomRoutes: readonly RouteDef[] = [
  route({
    method: 'post',
    path: '/v1/demo/scope3',
    summary: 'Add the Scope 3 clean-room demo (idempotent): three CSV tables, three organisations as groups (rita, paul, tara), each with SELECT on its own table',
    tag: 'demo',
    auth: 'admin',
    body: z.object({}).strict(),
    response: z.object({ lake: z.string(), tables: z.array(z.string()), changes: z.number() }),
    handler: async ({ services, actor }) => installScope3Demo(services, actor),
  }),
  route({
    method: 'post',
    path: '/v1/cleanrooms',
    summary: 'Create a collaboration: the caller acts for the creator member (active at once); the other members are invited',
    tag: 'cleanrooms',
    auth: 'user',
    status: 201,
    body: z.object({ name: LabelSchema, description: DescriptionSchema.default(''), creator: Member, members: z.array(Member).max(50).default([]) }).strict(),
    response: Any,
    handler: async ({ services, actor, request, body }) => ({ ...(await roomsOf(services).create(actorOf(actor, request), body)) }),
  }),
  route({
    method: 'get',
    path: '/v1/cleanrooms',
    summary: 'The collaborations the caller is a member of (every one for an admin)',
    tag: 'cleanrooms',
    auth: 'user',
    response: z.object({ cleanrooms: z.array(Any) }),
    handler: async ({ services, actor, request }) => ({ cleanrooms: (await roomsOf(services).list(actorOf(actor, request))).map((c) => ({ ...c })) }),
  }),
  route({
    method: 'get',
    path: '/v1/cleanrooms/:name',
    summary: 'One collaboration: members, configured tables and their rules, templates (members only)',
    tag: 'cleanrooms',
    auth: 'user',
    params: room,
    response: Any,
    handler: async ({ services, actor, request, params }) => ({ ...(await roomsOf(services).get(actorOf(actor, request), params.name)) }),
  }),
  route({
    method: 'post',
    path: '/v1/cleanrooms/:name/members',
    summary: 'Invite a member (the creator only)',
    tag: 'cleanrooms',
    auth: 'user',
    params: room,
    body: Member,
    response: Any,
    handler: async ({ services, actor, request, params, body }) => ({ ...(await roomsOf(services).invite(actorOf(actor, request), params.name, body)) }),
  }),
  ...(['accept', 'leave', 'close'] as const).map((verb) =>
    route({
      method: 'post',
      path: `/v1/cleanrooms/:name/${verb}`,
      summary: { accept: 'Accept the invitation of the member the caller acts for', leave: "Leave: the member's tables and templates leave with it", close: 'Close the collaboration (the creator or an admin): no more queries or changes' }[verb],
      tag: 'cleanrooms',
      auth: 'user',
      params: room,
      body: z.object({}).strict(),
      response: Any,
      handler: async ({ services, actor, request, params }) => ({ ...(await roomsOf(services)[verb](actorOf(actor, request), params.name)) }),
    }),
  ),
  route({
    method: 'post',
    path: '/v1/cleanrooms/:name/tables',
    summary: "Associate one of the member's own catalog tables, with the columns allowed in the collaboration",
    tag: 'cleanrooms',
    auth: 'user',
    params: room,
    body: z.object({ name: LabelSchema, table: CatalogTableSchema, columns: z.array(ColumnNameSchema).min(1).max(1000) }).strict(),
    response: Any,
    handler: async ({ services, actor, request, params, body }) => ({ ...(await roomsOf(services).associate(actorOf(actor, request), params.name, body)) }),
  }),
  route({
    method: 'put',
    path: '/v1/cleanrooms/:name/tables/:table/rule',
    summary: 'Set the analysis rule of a configured table (its owner only): aggregation, list or custom',
    tag: 'cleanrooms',
    auth: 'user',
    params: roomTable,
    body: RuleInputSchema,
    response: Any,
    handler: async ({ services, actor, request, params, body }) => ({ ...(await roomsOf(services).setRule(actorOf(actor, request), params.name, params.table, body)) }),
  }),
  route({
    method: 'post',
    path: '/v1/cleanrooms/:name/templates',
    summary: 'Add a query template; it runs only on tables whose custom rule lists it',
    tag: 'cleanrooms',
    auth: 'user',
    params: room,
    status: 201,
    body: z.object({ name: LabelSchema, sql: z.string().max(TEMPLATE_SQL_MAX), parameters: TemplateParametersSchema }).strict(),
    response: Any,
    handler: async ({ services, actor, request, params, body }) => ({ ...(await roomsOf(services).addTemplate(actorOf(actor, request), params.name, body)) }),
  }),
  route({
    method: 'put',
    path: '/v1/cleanrooms/:name/privacy',
    summary: 'Turn differential privacy on (the creator): a budget of epsilon per member, epsilon spent per query, clamping bounds for SUM columns',
    tag: 'cleanrooms',
    auth: 'user',
    params: room,
    body: PrivacyInputSchema,
    response: Any,
    handler: async ({ services, actor, request, params, body }) => ({ ...(await roomsOf(services).setPrivacy(actorOf(actor, request), params.name, body)) }),
  }),
  route({
    method: 'post',
    path: '/v1/cleanrooms/:name/query',
    summary: 'Run a query (or a template) checked against every rule of every table it reads; rows failing an output constraint are removed and counted',
    tag: 'cleanrooms',
    auth: 'user',
    params: room,
    body: z
      .object({ sql: z.string().max(100_000).optional(), template: LabelSchema.optional(), params: z.record(ParamNameSchema, ParamValue).optional() })
      .strict()
      .refine((b) => (b.sql === undefined) !== (b.template === undefined), { message: 'give either `sql` or `template`' }),
    response: Any,
    handler: async ({ services, actor, request, params, body }) => ({ ...(await roomsOf(services).query(actorOf(actor, request), params.name, body)) }),
  }),
  route({
    method: 'get',
    path: '/v1/cleanrooms/:name/log',
    summary: 'The query log, newest first: every query, its SQL, runner, rules checked and rows removed (every member may read it)',
    tag: 'cleanrooms',
    auth: 'user',
    params: room,
    query: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }).strict(),
    response: z.object({ entries: z.array(Any) }),
    handler: async ({ services, actor, request, params, query }) => ({ entries: (await roomsOf(services).log(actorOf(actor, request), params.name, query.limit)).map((e) => ({ ...e })) }),
  }),
];

/**
 * Embedded analytics over HTTP:
 * - `POST /v1/embed/tokens` (admin or embed token): mint a token and its URL;
 * - `PUT|GET|DELETE /v1/embed/dashboards[/:id]` (admin): dashboards as code;
 * - `POST /v1/embed/keys/rotate` (admin): retire the signing key now.
 * The pages a browser opens without an API token (the dashboard, its script,
 * the JWKS) are in `embed-pages.ts`.
 */
import { z } from 'zod';
import { StewardError } from '../errors.js';
import { route, type RouteDef } from '../server/route.js';
import { actorName } from '../server/actor.js';
import type { Services } from '../server/services.js';
import { DashboardIdSchema, DashboardSchema } from './dashboard-spec.js';
import type { EmbedService } from './embed-service.js';
import { MAX_TOKEN_SECONDS } from './signing-keys.js';
import { redshiftSessionTagPlan, sessionTagPolicy } from '../sync/session-tag-rls.js';

const DashboardId = DashboardIdSchema;

export function embedOf(services: Services): EmbedService {
  if (services.embed === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'embedded analytics are not available in this workspace');
  return services.embed;
}

/** The URL a browser opens: the server's configured URL, else the address this request came to. */
export function embedUrl(base: string, dashboard: string, token: string): string {
  const url = new URL(`/embed/dashboards/${encodeURIComponent(dashboard)}`, base);
  url.searchParams.set('token', token);
  return url.toString();
}


const DatasetOut = z.union([
  z.object({ columns: z.array(z.string()).readonly(), rows: z.array(z.array(z.unknown()).readonly()).readonly(), truncated: z.boolean() }),
  z.object({ error: z.object({ code: z.string(), message: z.string() }) }),
]);

export const embedRoutes: readonly RouteDef[] = [
  route({
    method: 'get',
    path: '/v1/dashboards',
    summary: 'Dashboards the caller may open in the console: those whose every dataset table it may SELECT',
    tag: 'embed',
    auth: 'user',
    response: z.object({ dashboards: z.array(z.object({ id: z.string(), title: z.string(), description: z.string().optional() })) }),
    handler: async ({ services, actor }) => ({ dashboards: [...(await embedOf(services).listFor(actor.principal))] }),
  }),
  route({
    method: 'get',
    path: '/v1/dashboards/:id/view',
    summary: "A dashboard's data for the caller: each dataset run as the caller through the gateway (its own grants, data filters and guardrails), not as the dashboard's runAs",
    tag: 'embed',
    auth: 'user',
    params: z.object({ id: DashboardId }),
    response: z.object({ dashboard: DashboardSchema.extend({ id: z.string() }), data: z.record(z.string(), DatasetOut) }),
    handler: async ({ services, actor, params }) => embedOf(services).viewAs(params.id, actor.principal),
  }),
  route({
    method: 'post',
    path: '/v1/embed/tokens',
    summary: 'Mint a short-lived embed token for one dashboard and one of your users, with session tags and the origins that may frame it',
    tag: 'embed',
    auth: 'embed',
    status: 201,
    body: z.strictObject({
      dashboard: DashboardId,
      user: z.string().min(1).max(256),
      tags: z.record(z.string().max(63), z.string().max(4096)),
      /** Origins that may frame the page; default: this server's own origin (the URL opened directly, not framed). */
      origins: z.array(z.string().max(300)).min(1).max(10).optional(),
      ttlSeconds: z.number().int().min(1).max(MAX_TOKEN_SECONDS).optional(),
    }),
    response: z.object({ token: z.string(), url: z.string(), expiresAt: z.string(), jti: z.string() }),
    handler: async ({ services, actor, body, request }) => {
      const base = services.config.publicUrl ?? new URL(request.url).origin;
      const minted = await embedOf(services).mint(
        { dashboard: body.dashboard, user: body.user, tags: body.tags, origins: body.origins ?? [new URL(base).origin], ...(body.ttlSeconds === undefined ? {} : { ttlSeconds: body.ttlSeconds }) },
        actorName(actor),
      );
      return { ...minted, url: embedUrl(base, body.dashboard, minted.token) };
    },
  }),
  route({
    method: 'put',
    path: '/v1/embed/dashboards/:id',
    summary: 'Create or replace a dashboard (datasets with row rules, visuals, filters)',
    tag: 'embed',
    auth: 'admin',
    params: z.object({ id: DashboardId }),
    body: z.unknown(),
    response: z.object({ id: z.string(), dashboard: DashboardSchema }),
    handler: async ({ services, actor, params, body }) => ({ id: params.id, dashboard: await embedOf(services).putDashboard(params.id, body, actorName(actor)) }),
  }),
  route({
    method: 'get',
    path: '/v1/embed/dashboards',
    summary: 'List dashboards',
    tag: 'embed',
    auth: 'admin',
    response: z.object({ dashboards: z.array(z.object({ id: z.string(), dashboard: DashboardSchema })) }),
    handler: async ({ services }) => ({ dashboards: [...(await embedOf(services).listDashboards())] }),
  }),
  route({
    method: 'get',
    path: '/v1/embed/dashboards/:id',
    summary: 'One dashboard as stored',
    tag: 'embed',
    auth: 'admin',
    params: z.object({ id: DashboardId }),
    response: z.object({ id: z.string(), dashboard: DashboardSchema }),
    handler: async ({ services, params }) => {
      const d = await embedOf(services).getDashboard(params.id);
      if (d === undefined) throw new StewardError('STEWARD_E_NOT_FOUND', `dashboard \`${params.id}\` not found`);
      return { id: params.id, dashboard: d };
    },
  }),
  route({
    method: 'delete',
    path: '/v1/embed/dashboards/:id',
    summary: 'Delete a dashboard; its tokens stop opening anything',
    tag: 'embed',
    auth: 'admin',
    params: z.object({ id: DashboardId }),
    response: z.object({ deleted: z.boolean() }),
    handler: async ({ services, actor, params }) => ({ deleted: await embedOf(services).deleteDashboard(params.id, actorName(actor)) }),
  }),
  route({
    method: 'get',
    path: '/v1/embed/dashboards/:id/warehouse-policy',
    summary: "The dashboard's row rules as warehouse row-level security for an application role: PostgreSQL statements, or why Redshift cannot express them",
    tag: 'embed',
    auth: 'admin',
    params: z.object({ id: DashboardId }),
    query: z.strictObject({
      role: z.string().min(1).max(63),
      dialect: z.enum(['postgres', 'redshift']).default('postgres'),
    }),
    response: z.object({
      dialect: z.string(),
      policies: z.array(z.object({ dataset: z.string(), table: z.string(), expressible: z.boolean(), statements: z.array(z.string()), message: z.string().optional() })),
    }),
    handler: async ({ services, params, query }) => {
      const d = await embedOf(services).getDashboard(params.id);
      if (d === undefined) throw new StewardError('STEWARD_E_NOT_FOUND', `dashboard \`${params.id}\` not found`);
      const policies = Object.entries(d.datasets).map(([dataset, ds]) => {
        // The catalog's database is the warehouse schema (the sync's default mapping).
        const [, schema = '', table = ''] = ds.table.split('.');
        const at = `${schema}.${table}`;
        if (query.dialect === 'redshift') {
          const r = redshiftSessionTagPlan(dataset, at);
          return { dataset, table: at, expressible: false, statements: [], message: r.message };
        }
        return { dataset, table: at, expressible: true, statements: [...sessionTagPolicy({ schema, table, role: query.role, dataset, rule: ds.rowRule }).statements] };
      });
      return { dialect: query.dialect, policies };
    },
  }),
  route({
    method: 'post',
    path: '/v1/embed/keys/rotate',
    summary: 'Retire the current embed signing key now (its tokens stay valid until they expire)',
    tag: 'embed',
    auth: 'admin',
    body: z.strictObject({}),
    response: z.object({ keys: z.number() }),
    handler: async ({ services, actor }) => {
      const embed = embedOf(services);
      await embed.keys.rotate();
      await embed.keys.current();
      await services.state.log([{ actor: actorName(actor), action: 'embed.keys.rotate', resource: 'embed', result: 'ok', reason: 'signing key rotated' }]);
      return { keys: (await embed.keys.published()).length };
    },
  }),
];

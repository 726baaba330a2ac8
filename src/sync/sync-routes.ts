/**
 * Warehouse targets, load, sync plan/apply, and the Trino rules export over
 * HTTP. Admin only: a target reaches into a warehouse with its owner's rights.
 */
import { z } from 'zod';
import { route, type RouteDef } from '../server/route.js';
import { CatalogNameSchema, OkSchema } from '../server/schemas.js';
import type { Services } from '../server/services.js';
import { actorName } from '../server/actor.js';
import { StewardError, notFound } from '../errors.js';
import { TargetDefinitionSchema } from './target-repo.js';
import type { SyncService } from './sync-service.js';
import type { Plan } from './sync-types.js';
import { trinoRules } from './trino-rules.js';

const TargetName = z.object({ name: z.string().max(63).transform((s) => s.trim().toLowerCase()) }).strict();
const TableName = z.string().max(400).transform((s) => s.trim().toLowerCase());

function syncOf(services: Services): SyncService {
  if (services.sync === undefined) throw new StewardError('STEWARD_E_CONFIG', 'warehouse sync is not available in this server');
  return services.sync;
}

const PlanSchema = z.object({
  target: z.string(),
  dialect: z.enum(['postgres', 'redshift']),
  scope: z.enum(['full', 'tables']),
  statements: z.array(z.object({ op: z.enum(['grant', 'revoke']), kind: z.string(), sql: z.string() })),
  drift: z.array(z.object({ action: z.enum(['revoke', 'report']), message: z.string() })),
  warnings: z.array(z.object({ code: z.string(), message: z.string() })),
  summary: z.object({
    statements: z.number(),
    grants: z.number(),
    revokes: z.number(),
    byKind: z.record(z.string(), z.object({ grant: z.number(), revoke: z.number() })),
    drift: z.number(),
    warnings: z.number(),
  }),
});

function planJson(p: Plan): z.infer<typeof PlanSchema> {
  return {
    target: p.target,
    dialect: p.dialect,
    scope: p.scope,
    statements: p.steps.map((s) => ({ op: s.op, kind: s.item.k, sql: s.sql })),
    drift: p.drift.map((d) => ({ action: d.action, message: d.message })),
    warnings: p.warnings.map((w) => ({ code: w.code, message: w.message })),
    summary: { ...p.summary, byKind: { ...p.summary.byKind } },
  };
}

const TargetBody = TargetDefinitionSchema.omit({ name: true });
const TargetOut = z.record(z.string(), z.unknown());

export const syncRoutes: readonly RouteDef[] = [
  route({
    method: 'get',
    path: '/v1/warehouse/targets',
    summary: 'List warehouse targets (credentials are references: an environment variable or a secret file)',
    tag: 'warehouse',
    auth: 'admin',
    response: z.object({ targets: z.array(TargetOut) }),
    handler: async ({ services }) => ({ targets: (await syncOf(services).targets.list()) as unknown as Record<string, unknown>[] }),
  }),
  route({
    method: 'put',
    path: '/v1/warehouse/targets/:name',
    summary: 'Create or replace a warehouse target',
    tag: 'warehouse',
    auth: 'admin',
    params: TargetName,
    body: TargetBody,
    response: OkSchema,
    handler: async ({ services, params, body, actor }) => {
      const def = TargetDefinitionSchema.parse({ ...body, name: params.name });
      const { world } = await services.state.snapshot();
      if (!world.catalogs.some((c) => c.name === def.catalog)) throw notFound('catalog', def.catalog);
      await syncOf(services).targets.put(def);
      await services.state.log([{ actor: actorName(actor), action: 'warehouse.target.put', resource: def.name, result: 'ok', reason: `catalog ${def.catalog}` }]);
      return { ok: true as const };
    },
  }),
  route({
    method: 'delete',
    path: '/v1/warehouse/targets/:name',
    summary: 'Remove a warehouse target (nothing in the warehouse is changed)',
    tag: 'warehouse',
    auth: 'admin',
    params: TargetName,
    response: OkSchema,
    handler: async ({ services, params }) => {
      await syncOf(services).targets.remove(params.name);
      return { ok: true as const };
    },
  }),
  route({
    method: 'post',
    path: '/v1/warehouse/targets/:name/load-plan',
    summary: 'Which lake tables a load copies, where to, and how many rows',
    tag: 'warehouse',
    auth: 'admin',
    params: TargetName,
    body: z.object({ tables: z.array(TableName).max(10_000).optional() }).strict(),
    response: z.object({ tables: z.array(z.object({ table: z.string(), schema: z.string(), name: z.string(), rows: z.number() })) }),
    handler: async ({ services, params, body }) => ({ tables: await syncOf(services).loadTables(params.name, body.tables) }),
  }),
  route({
    method: 'post',
    path: '/v1/warehouse/targets/:name/load',
    summary: 'Copy one chunk of a lake table into the warehouse with COPY FROM STDIN (offset 0 creates or empties the table)',
    tag: 'warehouse',
    auth: 'admin',
    params: TargetName,
    body: z.object({ table: TableName, offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), limit: z.number().int().min(1).max(1_000_000) }).strict(),
    response: z.object({ rows: z.number() }),
    handler: async ({ services, params, body }) => syncOf(services).loadChunk(params.name, body.table, body.offset, body.limit),
  }),
  route({
    method: 'post',
    path: '/v1/sync/:name/plan',
    summary: 'The exact SQL a sync would run, with drift and warnings (`dialect: redshift` emits a full Redshift script)',
    tag: 'warehouse',
    auth: 'admin',
    params: TargetName,
    body: z.object({ dialect: z.enum(['postgres', 'redshift']).optional() }).strict(),
    response: PlanSchema,
    handler: async ({ services, params, body }) => planJson(await syncOf(services).plan(params.name, body.dialect === undefined ? {} : { dialect: body.dialect })),
  }),
  route({
    method: 'post',
    path: '/v1/sync/:name/apply',
    summary: 'Sync the warehouse: one transaction, or bounded resumable batches for large plans',
    tag: 'warehouse',
    auth: 'admin',
    params: TargetName,
    body: z.object({}).strict(),
    response: z.object({ target: z.string(), version: z.number(), applied: z.number(), batches: z.number(), failed: z.array(z.object({ sql: z.string(), error: z.string() })), plan: PlanSchema }),
    handler: async ({ services, params, actor }) => {
      const r = await syncOf(services).apply(params.name, { actor: actorName(actor) });
      return { target: r.target, version: r.version, applied: r.applied, batches: r.batches, failed: r.failed.map((f) => ({ sql: f.sql, error: f.error })), plan: planJson(r.plan) };
    },
  }),
  route({
    method: 'get',
    path: '/v1/export/trino-rules',
    summary: 'Trino file-based access control rules (rules.json) for one catalog, ordered for first-match semantics',
    tag: 'warehouse',
    auth: 'admin',
    query: z.object({ catalog: CatalogNameSchema, trinoCatalog: z.string().max(128).optional() }).strict(),
    response: z.object({ tables: z.array(z.record(z.string(), z.unknown())) }),
    handler: async ({ services, query }) => {
      const snap = await services.state.snapshot();
      if (!snap.world.catalogs.some((c) => c.name === query.catalog)) throw notFound('catalog', query.catalog);
      const rules = trinoRules(snap.world, snap.engine, { catalog: query.catalog, now: Date.now(), ...(query.trinoCatalog === undefined ? {} : { trinoCatalog: query.trinoCatalog }) });
      return rules as unknown as { tables: Record<string, unknown>[] };
    },
  }),
];

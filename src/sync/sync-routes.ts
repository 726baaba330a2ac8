/**
 * Warehouse targets, load, sync plan/apply, and the Trino rules export over
 * HTTP. Admin only: a target reaches into a warehouse with its owner's rights.
 */
import { residencyViolations } from '../policy/residency.js';
import { gate } from '../residency/residency-gate.js';
import { regionOfTrinoCatalog } from '../residency/residency-config.js';
import { z } from 'zod';
import { route, type RouteDef } from '../server/route.js';
import { CatalogNameSchema, OkSchema } from '../server/schemas.js';
import type { Services } from '../server/services.js';
import { actorName } from '../server/actor.js';
import { StewardError, invalid, notFound } from '../errors.js';
import { parseTarget, TargetDefinitionSchema, type TargetDefinition } from './target-repo.js';
import { describeCredentials, readerOfCredentials, resolveCredentials } from './warehouse-connection.js';
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
const TargetSaved = z.object({
  ok: z.literal(true),
  created: z.boolean(),
  /** Top-level fields whose value changed (replace only). */
  changes: z.array(z.object({ field: z.string(), from: z.unknown(), to: z.unknown() })),
  /** Where the credentials are read: by the server process, not by the CLI's shell. */
  credentials: z.string(),
});

/**
 * Validates and stores a target. The credentials are resolved here, in the
 * process that will run its syncs, so that a variable set only in the CLI's
 * shell is an error the CLI shows now, not a failure in the server log later.
 */
async function saveTarget(services: Services, input: Record<string, unknown>, actor: string, previous: TargetDefinition | null): Promise<z.infer<typeof TargetSaved>> {
  const def = parseTarget(input);
  const { world } = await services.state.snapshot();
  if (!world.catalogs.some((c) => c.name === def.catalog)) throw notFound('catalog', def.catalog);
  try {
    await resolveCredentials(def.credentials);
  } catch (e) {
    throw invalid(def.credentials.kind === 'env' ? 'credentials.name' : 'credentials.path', e instanceof Error ? e.message : String(e));
  }
  const changes =
    previous === null
      ? []
      : (Object.keys(def) as (keyof typeof def)[])
          .filter((k) => JSON.stringify(def[k]) !== JSON.stringify(previous[k]))
          .map((k) => ({ field: k, from: previous[k] as unknown, to: def[k] as unknown }));
  await syncOf(services).targets.put(def);
  await services.state.log([
    { actor, action: 'warehouse.target.put', resource: def.name, result: 'ok', reason: previous === null ? `created for catalog ${def.catalog}` : `changed: ${changes.map((c) => c.field).join(', ') || 'nothing'}` },
  ]);
  return { ok: true as const, created: previous === null, changes, credentials: `${describeCredentials(def.credentials)}, read by ${readerOfCredentials()}` };
}
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
    method: 'post',
    path: '/v1/warehouse/targets/:name',
    summary: 'Create a warehouse target; refuses a name that exists (PUT replaces). The credentials must be readable by the server',
    tag: 'warehouse',
    auth: 'admin',
    status: 201,
    params: TargetName,
    body: TargetBody,
    response: TargetSaved,
    handler: async ({ services, params, body, actor }) => {
      const sync = syncOf(services);
      if ((await sync.targets.list()).some((t) => t.name === params.name)) {
        throw new StewardError('STEWARD_E_ALREADY_EXISTS', `warehouse target \`${params.name}\` already exists; change it with \`steward warehouse update ${params.name}\` (PUT)`);
      }
      return saveTarget(services, { ...body, name: params.name }, actorName(actor), null);
    },
  }),
  route({
    method: 'put',
    path: '/v1/warehouse/targets/:name',
    summary: 'Create or replace a warehouse target; reports which fields changed. The credentials must be readable by the server',
    tag: 'warehouse',
    auth: 'admin',
    params: TargetName,
    body: TargetBody,
    response: TargetSaved,
    handler: async ({ services, params, body, actor }) => {
      const previous = (await syncOf(services).targets.list()).find((t) => t.name === params.name) ?? null;
      return saveTarget(services, { ...body, name: params.name }, actorName(actor), previous);
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
    handler: async ({ services, query, actor }) => {
      const snap = await services.state.snapshot();
      if (!snap.world.catalogs.some((c) => c.name === query.catalog)) throw notFound('catalog', query.catalog);
      // Residency guardrails (docs/residency.md): the rules let a Trino in another region read the catalog's tables.
      const trinoCatalog = query.trinoCatalog ?? query.catalog;
      const region = regionOfTrinoCatalog(services.config, trinoCatalog);
      const refs = snap.world.tables.filter((t) => t.catalog === query.catalog).map((t) => ({ catalog: t.catalog, database: t.database, table: t.name }));
      const reported = gate(residencyViolations(snap.world, refs, region, `trino catalog \`${trinoCatalog}\``), actorName(actor), 'export.trino-rules');
      if (reported.length > 0) await services.state.log(reported);
      const rules = trinoRules(snap.world, snap.engine, { catalog: query.catalog, now: Date.now(), ...(query.trinoCatalog === undefined ? {} : { trinoCatalog: query.trinoCatalog }) });
      return rules as unknown as { tables: Record<string, unknown>[] };
    },
  }),
];

/**
 * Policy as code over HTTP. The CLI sends the files' text; parsing happens
 * here so that errors name `file:line:column` whichever transport is used.
 * Apply recomputes the plan against the world it commits to, inside the
 * state service's optimistic transaction, so a concurrent change cannot be
 * silently overwritten by a stale plan.
 */
import { z } from 'zod';
import { route, type RouteDef } from '../server/route.js';
import type { Services } from '../server/services.js';
import type { PolicyWorld } from '../policy/model.js';
import { loadPolicySources, MAX_POLICY_FILE_BYTES, type LoadedPolicy } from './load.js';
import { preparePredicates, toManagedWorld, withoutExperimentRuns, withoutShares, type ManagedWorld } from './convert.js';
import { planPolicy, planToJson, renderPlan, type Plan } from './plan.js';
import { exportPolicy } from './export.js';
import { policyJsonSchema } from './schema.js';
import { applyChanges } from '../policy/changes.js';
import { StewardError, isStewardError } from '../errors.js';
import { actorName } from '../server/actor.js';
import { dashboardFor, planDashboardChanges, type DashboardChange } from '../embed/embed-service.js';
import type { Dashboard } from '../embed/dashboard-spec.js';
import type { Db } from '../store/db.js';
import type { DecisionLogEntry } from '../store/decision-log.js';
import { formatLocation, locationKey, type SourceLocation } from './source-location.js';
import { renderRoomChanges, type RoomChange } from '../cleanroom/cleanroom-reconcile.js';

const FilesBody = z
  .object({
    files: z
      .array(z.object({ file: z.string().min(1).max(1024), text: z.string().max(MAX_POLICY_FILE_BYTES) }).strict())
      .min(1)
      .max(1000),
  })
  .strict();

const PlanOut = z.object({
  changes: z.number(),
  summary: z.record(z.string(), z.object({ added: z.number(), changed: z.number(), removed: z.number() })),
  entries: z.array(z.unknown()),
  /** Dashboards to create, change or delete; empty when no file has a `dashboards` section (they are left alone). */
  dashboards: z.array(z.object({ id: z.string(), action: z.enum(['create', 'change', 'delete']) })),
  /** Collaborations to create, change or close; empty when no file has a `cleanrooms` section (they are left alone). */
  cleanrooms: z.array(z.object({ name: z.string(), action: z.enum(['create', 'change', 'close']), fields: z.array(z.string()) })),
  text: z.string(),
});

/** Parses the files and converts them against the catalog of `world`; every problem names its file, line and column. */
/** The world as policy files see it: without running experiments' entities and shares' entities, which their APIs own. */
async function filesView(services: Pick<Services, 'sharing'>, world: PolicyWorld): Promise<PolicyWorld> {
  const shares = (await services.sharing?.producer.list()) ?? [];
  return withoutShares(withoutExperimentRuns(world), shares.map((sh) => sh.name));
}

export async function desiredWorld(services: Pick<Services, 'lake'>, loaded: LoadedPolicy, world: PolicyWorld): Promise<ManagedWorld> {
  const parsePredicate = await preparePredicates(loaded.document, (sql) => services.lake.parsePredicate(sql));
  return toManagedWorld(loaded.document, { parsePredicate, locations: loaded.locations, catalog: world });
}

function planBody(plan: Plan, dashboards: readonly DashboardChange[], rooms: readonly RoomChange[]): z.infer<typeof PlanOut> {
  const json = planToJson(plan);
  const text = renderPlan(plan);
  const lines = [...dashboards.map((d) => `${d.action === 'create' ? '+' : d.action === 'change' ? '~' : '-'} dashboard ${d.id}`), ...renderRoomChanges(rooms)];
  return {
    changes: plan.changes.length + dashboards.length + rooms.length,
    summary: { ...plan.summary },
    entries: [...json.entries],
    dashboards: [...dashboards],
    cleanrooms: rooms.map((r) => ({ ...r, fields: [...r.fields] })),
    text: lines.length === 0 ? text : plan.changes.length === 0 ? lines.join('\n') : `${text}\n${lines.join('\n')}`,
  };
}

/**
 * The file's collaborations checked against `world` (the world the plan would
 * commit), and what storing them changes. None when no file has the section.
 * `write` stores them (apply) inside the policy apply's own transaction.
 */
async function roomPlan(services: Pick<Services, 'cleanrooms'>, loaded: LoadedPolicy, world: PolicyWorld, write?: { tx: Db; actor: string }): Promise<{ changes: RoomChange[]; log: DecisionLogEntry[] } | null> {
  const specs = loaded.document.cleanrooms;
  if (specs === undefined) return null;
  if (services.cleanrooms === undefined) throw new StewardError('STEWARD_E_VALIDATION', 'cleanrooms: clean rooms are not enabled on this server');
  const rooms = services.cleanrooms;
  try {
    return write === undefined ? { changes: await rooms.planCode(world, specs), log: [] } : await rooms.applyCode(write.tx, world, specs, write.actor);
  } catch (e) {
    const path = isStewardError(e) ? (e.details[0]?.path ?? '') : '';
    // The collaboration the refusal is about (names may contain dots: the longest declared name that prefixes the path).
    const name = Object.keys(specs).filter((n) => path === `cleanrooms.${n}` || path.startsWith(`cleanrooms.${n}.`)).sort((a, b) => b.length - a.length)[0];
    throw name === undefined ? e : atDeclaration(e, loaded.locations.get(locationKey('cleanroom', name)));
  }
}

/**
 * The file's dashboards checked against `world` (the world the plan would
 * commit), and what storing them changes. None when no file has the section.
 */
async function dashboardPlan(services: Pick<Services, 'embed'>, loaded: LoadedPolicy, world: PolicyWorld): Promise<{ wanted: Record<string, Dashboard>; changes: DashboardChange[] } | null> {
  const specs = loaded.document.dashboards;
  if (specs === undefined) return null;
  if (services.embed === undefined) throw new StewardError('STEWARD_E_VALIDATION', 'dashboards: embedded analytics is not enabled on this server');
  const wanted: Record<string, Dashboard> = {};
  for (const [id, spec] of Object.entries(specs)) {
    try {
      wanted[id] = dashboardFor(world, id, spec);
    } catch (e) {
      throw atDeclaration(e, loaded.locations.get(locationKey('dashboard', id)));
    }
  }
  const current = new Map((await services.embed.listDashboards()).map((d) => [d.id, JSON.stringify(d.dashboard)]));
  return { wanted, changes: planDashboardChanges(wanted, current) };
}

/** A dashboard's error, prefixed with the file position of its declaration. */
function atDeclaration(e: unknown, loc: SourceLocation | undefined): unknown {
  if (!isStewardError(e) || loc === undefined) return e;
  const where = formatLocation(loc);
  return new StewardError(e.code, `${where}: ${e.message}`, { details: e.details.length > 0 ? e.details.map((d) => ({ ...d, path: `${where} ${d.path ?? ''}`.trim() })) : [{ path: where, message: e.message }] });
}

export const codeRoutes: readonly RouteDef[] = [
  route({
    method: 'post',
    path: '/v1/policy/plan',
    summary: 'Show what applying policy files would add, change and remove',
    tag: 'policy-as-code',
    auth: 'admin',
    body: FilesBody,
    response: PlanOut,
    handler: async ({ services, body }) => {
      const loaded = loadPolicySources(body.files);
      const { world } = await services.state.snapshot();
      const plan = planPolicy(await filesView(services, world), await desiredWorld(services, loaded, world));
      const next = applyChanges(world, plan.changes);
      const dashboards = await dashboardPlan(services, loaded, next);
      const rooms = await roomPlan(services, loaded, next);
      return planBody(plan, dashboards?.changes ?? [], rooms?.changes ?? []);
    },
  }),
  route({
    method: 'post',
    path: '/v1/policy/apply',
    summary: 'Apply policy files atomically (all changes or none)',
    tag: 'policy-as-code',
    auth: 'admin',
    body: FilesBody,
    response: PlanOut.extend({ version: z.number() }),
    handler: async ({ services, actor, body }) => {
      const loaded = loadPolicySources(body.files);
      const who = actorName(actor);
      let plan: Plan | undefined;
      let dashboards: Awaited<ReturnType<typeof dashboardPlan>> = null;
      let stored: readonly DashboardChange[] = [];
      let rooms: RoomChange[] = [];
      const r = await services.state.change({
        actor: who,
        action: 'policy.apply',
        resource: body.files.map((f) => f.file).join(',').slice(0, 500),
        build: async (world) => {
          plan = planPolicy(await filesView(services, world), await desiredWorld(services, loaded, world));
          // Checked against the world about to be committed, before it is: a bad dashboard refuses the whole apply.
          const next = applyChanges(world, plan.changes);
          dashboards = await dashboardPlan(services, loaded, next);
          // Likewise the collaborations: a share the committed grants would not allow refuses the whole apply.
          await roomPlan(services, loaded, next);
          return [...plan.changes];
        },
        // Dashboards and collaborations are written in the policy's own transaction: the grants, the dashboards
        // and the collaborations of one apply commit together or not at all. Collaborations are checked again
        // there (compare-and-set against members' changes since the plan).
        alongside: async (tx, after) => {
          const written = dashboards === null || services.embed === undefined ? null : await services.embed.replaceDashboards(tx, dashboards.wanted, who);
          const roomsWritten = await roomPlan(services, loaded, after, { tx, actor: who });
          stored = written?.changes ?? [];
          rooms = roomsWritten?.changes ?? [];
          return [...(written?.log ?? []), ...(roomsWritten?.log ?? [])];
        },
      });
      if (plan === undefined) throw new Error('apply produced no plan');
      return { ...planBody(plan, stored, rooms), version: r.version };
    },
  }),
  route({
    method: 'get',
    path: '/v1/policy/export',
    summary: 'The current policy as YAML; applying it back plans no changes',
    tag: 'policy-as-code',
    auth: 'admin',
    response: z.object({ yaml: z.string() }),
    handler: async ({ services }) => {
      const world = (await services.state.snapshot()).world;
      const dashboards = (await services.embed?.listDashboards()) ?? [];
      const rooms = (await services.cleanrooms?.exportCode()) ?? {};
      return {
        yaml: exportPolicy(await filesView(services, world), {
          ...(dashboards.length === 0 ? {} : { dashboards: Object.fromEntries(dashboards.map((d) => [d.id, d.dashboard])) }),
          ...(Object.keys(rooms).length === 0 ? {} : { cleanrooms: rooms }),
        }),
      };
    },
  }),
  route({
    method: 'get',
    path: '/v1/policy/schema',
    summary: 'The JSON Schema of policy files',
    tag: 'policy-as-code',
    auth: 'user',
    response: z.record(z.string(), z.unknown()),
    handler: () => policyJsonSchema(),
  }),
];

/**
 * Policy as code over HTTP. The CLI sends the files' text; parsing happens
 * here so that errors name `file:line:column` whichever transport is used.
 * Apply recomputes the plan against the world it commits to, inside the
 * state service's optimistic transaction, so a concurrent change cannot be
 * silently overwritten by a stale plan.
 */
import { z } from 'zod';
import { commit, route, type RouteDef } from '../server/route.js';
import type { Services } from '../server/services.js';
import type { PolicyWorld } from '../policy/model.js';
import { loadPolicySources, MAX_POLICY_FILE_BYTES, type LoadedPolicy } from './load.js';
import { preparePredicates, toManagedWorld, type ManagedWorld } from './convert.js';
import { planPolicy, planToJson, renderPlan, type Plan } from './plan.js';
import { exportPolicy } from './export.js';
import { policyJsonSchema } from './schema.js';

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
  text: z.string(),
});

/** Parses the files and converts them against the catalog of `world`; every problem names its file, line and column. */
export async function desiredWorld(services: Pick<Services, 'lake'>, loaded: LoadedPolicy, world: PolicyWorld): Promise<ManagedWorld> {
  const parsePredicate = await preparePredicates(loaded.document, (sql) => services.lake.parsePredicate(sql));
  return toManagedWorld(loaded.document, { parsePredicate, locations: loaded.locations, catalog: world });
}

function planBody(plan: Plan): z.infer<typeof PlanOut> {
  const json = planToJson(plan);
  return { changes: plan.changes.length, summary: { ...plan.summary }, entries: [...json.entries], text: renderPlan(plan) };
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
      return planBody(planPolicy(world, await desiredWorld(services, loaded, world)));
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
      let plan: Plan | undefined;
      const r = await commit({ services, actor }, 'policy.apply', body.files.map((f) => f.file).join(',').slice(0, 500), async (world) => {
        plan = planPolicy(world, await desiredWorld(services, loaded, world));
        return [...plan.changes];
      });
      if (plan === undefined) throw new Error('apply produced no plan');
      return { ...planBody(plan), version: r.version };
    },
  }),
  route({
    method: 'get',
    path: '/v1/policy/export',
    summary: 'The current policy as YAML; applying it back plans no changes',
    tag: 'policy-as-code',
    auth: 'admin',
    response: z.object({ yaml: z.string() }),
    handler: async ({ services }) => ({ yaml: exportPolicy((await services.state.snapshot()).world) }),
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

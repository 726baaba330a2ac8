/**
 * `GET /v1/residency/check` (docs/residency.md): the detective control. Lists
 * every table that breaks a residency guardrail where it is now: its lake
 * files, and each warehouse target that syncs its catalog. Report-only and
 * enforced guardrails alike: an enforced guardrail created after the fact, or
 * a region changed in configuration, leaves violations only this finds.
 */
import { z } from 'zod';
import { route, type RouteDef } from '../server/route.js';
import type { Services } from '../server/services.js';
import { actorName } from '../server/actor.js';
import { residencyGuardrails, residencyViolations, type ResidencyViolation } from '../policy/residency.js';
import { lakeViolations } from './residency-gate.js';
import { lakeRegionsOf } from './residency-config.js';

const ViolationSchema = z.object({
  table: z.string(),
  guardrail: z.string(),
  mode: z.enum(['enforce', 'report-only']),
  place: z.string(),
  regions: z.array(z.string().nullable()),
  allowed: z.array(z.string()),
});

const CheckResult = z.object({
  /** This workspace's region (STEWARD_REGION), null when unset. */
  region: z.string().nullable(),
  guardrails: z.number(),
  tables: z.number(),
  violations: z.array(ViolationSchema),
});

export async function residencyCheck(services: Services): Promise<z.infer<typeof CheckResult>> {
  const { world } = await services.state.snapshot();
  const guardrails = residencyGuardrails(world).length;
  const region = services.config.region ?? null;
  if (guardrails === 0) return { region, guardrails, tables: world.tables.length, violations: [] };
  const found: ResidencyViolation[] = lakeViolations(world, lakeRegionsOf(services.config));
  for (const target of (await services.sync?.targets.list()) ?? []) {
    const refs = world.tables.filter((t) => t.catalog === target.catalog).map((t) => ({ catalog: t.catalog, database: t.database, table: t.name }));
    found.push(...residencyViolations(world, refs, target.region ?? null, `warehouse target \`${target.name}\``));
  }
  found.sort((a, b) => (a.table === b.table ? (a.guardrail < b.guardrail ? -1 : 1) : a.table < b.table ? -1 : 1));
  return { region, guardrails, tables: world.tables.length, violations: found.map((v) => ({ ...v, regions: [...v.regions], allowed: [...v.allowed] })) };
}

export const residencyRoutes: readonly RouteDef[] = [
  route({
    method: 'get',
    path: '/v1/residency/check',
    summary: 'Tables that break a residency guardrail where they are now (lake files, warehouse targets), enforced and report-only',
    tag: 'residency',
    auth: 'admin',
    response: CheckResult,
    handler: async ({ services, actor }) => {
      const r = await residencyCheck(services);
      await services.state.log([
        {
          actor: actorName(actor),
          action: 'residency.check',
          resource: 'residency',
          result: 'ok',
          reason: `${r.violations.length} violation(s) of ${r.guardrails} residency guardrail(s)`,
          details: { violations: r.violations.slice(0, 100).map((v) => `${v.table} ${v.guardrail} ${v.place}`) },
        },
      ]);
      return r;
    },
  }),
];

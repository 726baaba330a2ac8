/**
 * The demo workspace, created on the server side (which owns the lake folder
 * and the store) so that `steward demo` behaves the same embedded or remote.
 * It only adds: existing tables with the same schema and policy entities equal
 * to the demo's are left alone, so a second run changes nothing, and nothing a
 * user added is removed.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { commit, route, type RouteDef } from '../server/route.js';
import { applyChanges, stableJson, type Change } from '../policy/changes.js';
import type { PolicyWorld, Table } from '../policy/model.js';
import { generateDemoData } from './generate-data.js';
import { loadPolicy } from '../code/load.js';
import { planPolicy } from '../code/plan.js';
import { desiredWorld } from '../code/code-routes.js';
import { findTable, makeTable, putTables } from '../catalog/catalog-service.js';
import { installDemoAccess } from '../access/demo-access.js';
import { REVENUE_DASHBOARD } from './anyhealth.js';
import { actorName } from '../server/actor.js';

/** Shipped with the package: two folders up from both src/demo and dist/demo. */
export const DEMO_POLICY_DIR = fileURLToPath(new URL('../../examples/demo-policy', import.meta.url));

function tableChanges(world: PolicyWorld, tables: readonly Table[]): Change[] {
  const changed = tables.filter((t) => {
    const existing = findTable(world, { catalog: t.catalog, database: t.database, table: t.name });
    return existing === undefined || stableJson(existing) !== stableJson(t);
  });
  return changed.length === 0 ? [] : putTables(world, changed, true);
}

export const demoRoutes: readonly RouteDef[] = [
  route({
    method: 'post',
    path: '/v1/demo',
    summary: 'Create the demo workspace (idempotent): Parquet claims and revenue, tags, principals, grants, a data filter, a PII guardrail, the embedded dashboard `revenue`',
    tag: 'demo',
    auth: 'admin',
    body: z.object({}).strict(),
    response: z.object({ lake: z.string(), tables: z.array(z.object({ table: z.string(), rows: z.number() })), changes: z.number() }),
    handler: async ({ services, actor }) => {
      const dir = path.join(services.config.lakeDir, 'demo');
      const data = await generateDemoData(dir, { db: await services.lake.duckdb() });
      const specs = [
        { database: 'claims', table: 'patient_claims', file: data.files.patientClaims, rows: data.rows.patientClaims },
        { database: 'finance', table: 'revenue', file: data.files.revenue, rows: data.rows.revenue },
      ];
      const tables: Table[] = [];
      for (const s of specs) {
        const inspected = await services.lake.inspectLake({ location: s.file, format: 'parquet', hivePartitioning: false });
        tables.push(makeTable({ catalog: 'lake', database: s.database, table: s.table }, inspected.columns, inspected.source));
      }
      const loaded = await loadPolicy(DEMO_POLICY_DIR);
      let count = 0;
      await commit({ services, actor }, 'demo.create', 'lake', async (world) => {
        const catalogChanges = tableChanges(world, tables);
        const withTables = applyChanges(world, catalogChanges);
        const plan = planPolicy(withTables, await desiredWorld(services, loaded, withTables));
        const changes = [...catalogChanges, ...plan.changes.filter((c) => c.op === 'put')];
        count = changes.length;
        return changes;
      });
      if (await installDemoAccess(services, actor)) count += 1;
      // AnyHealth's embedded dashboard (docs/embedding.md), added once and left alone afterwards.
      if (services.embed !== undefined && (await services.embed.getDashboard('revenue')) === undefined) {
        await services.embed.putDashboard('revenue', REVENUE_DASHBOARD, actorName(actor));
        count += 1;
      }
      return { lake: dir, tables: specs.map((s) => ({ table: `lake.${s.database}.${s.table}`, rows: s.rows })), changes: count };
    },
  }),
];

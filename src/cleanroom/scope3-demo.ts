/**
 * The Scope 3 demo workspace (docs/cleanrooms.md): the three CSV tables of
 * `scope3-data.ts` in the lake, three organisations as groups with one user
 * each (reporting-team: rita, purchase-team: paul, transport-team: tara), and
 * each group's SELECT on its own table only. Idempotent like `steward demo`:
 * what already exists is left alone.
 */
import path from 'node:path';
import { applyChanges, stableJson, type Change } from '../policy/changes.js';
import type { Table } from '../policy/model.js';
import { findTable, makeTable, putTables } from '../catalog/catalog-service.js';
import { commit } from '../server/route.js';
import type { Actor } from '../server/actor.js';
import type { Services } from '../server/services.js';
import { writeScope3Data } from './scope3-data.js';

export const SCOPE3_ORGS = [
  { database: 'reporting', table: 'reporting', group: 'reporting-team', user: 'rita' },
  { database: 'purchase', table: 'purchase', group: 'purchase-team', user: 'paul' },
  { database: 'transport', table: 'transportation', group: 'transport-team', user: 'tara' },
] as const;

export async function installScope3Demo(services: Services, actor: Actor): Promise<{ lake: string; tables: string[]; changes: number }> {
  const dir = path.join(services.config.lakeDir, 'scope3');
  const files = await writeScope3Data(dir);
  const location = { reporting: files.reporting, purchase: files.purchase, transport: files.transportation } as const;
  const tables: Table[] = [];
  for (const o of SCOPE3_ORGS) {
    const inspected = await services.lake.inspectLake({ location: location[o.database], format: 'csv', hivePartitioning: false });
    tables.push(makeTable({ catalog: 'lake', database: o.database, table: o.table }, inspected.columns, inspected.source));
  }
  let count = 0;
  await commit({ services, actor }, 'demo.scope3', 'lake', (world) => {
    const changedTables = tables.filter((t) => {
      const existing = findTable(world, { catalog: t.catalog, database: t.database, table: t.name });
      return existing === undefined || stableJson(existing) !== stableJson(t);
    });
    const tableChanges = changedTables.length === 0 ? [] : putTables(world, changedTables, true);
    const w = applyChanges(world, tableChanges);
    const changes: Change[] = [...tableChanges];
    for (const o of SCOPE3_ORGS) {
      if (!w.users.some((u) => u.name === o.user)) changes.push({ op: 'put', kind: 'user', entity: { name: o.user } });
      if (!w.groups.some((g) => g.name === o.group)) changes.push({ op: 'put', kind: 'group', entity: { name: o.group, description: `the ${o.database} organisation of the Scope 3 clean room` } });
      if (!w.memberships.some((m) => m.group === o.group && m.member === `user:${o.user}`)) changes.push({ op: 'put', kind: 'membership', entity: { group: o.group, member: `user:${o.user}` } });
      const id = `scope3-${o.group}`;
      if (!w.grants.some((g) => g.id === id)) {
        changes.push({
          op: 'put',
          kind: 'grant',
          entity: { id, principal: `group:${o.group}`, resource: { kind: 'table', catalog: 'lake', database: o.database, table: o.table }, permissions: ['SELECT'], grantable: [] },
        });
      }
    }
    count = changes.length;
    return changes;
  });
  return { lake: dir, tables: tables.map((t) => `${t.catalog}.${t.database}.${t.name}`), changes: count };
}

/**
 * A small policy world for sync tests, and a sync service over it without a
 * Steward store: the state is a stub whose world the test swaps.
 */
import type { Grant, PolicyWorld, Table, TagAssignment } from '../../../src/policy/model.js';
import { createEngine } from '../../../src/policy/engine.js';
import { createSyncService, type SyncService } from '../../../src/sync/sync-service.js';
import { createMemoryTargetRepo } from '../../../src/sync/target-repo.js';
import type { TargetDefinition } from '../../../src/sync/target-repo.js';
import type { DuckDb } from '../../../src/lake/duckdb.js';
import type { RetryOptions } from '../../../src/sync/warehouse-connection.js';

export const COLUMNS = ['id', 'region', 'amount', 'secret'] as const;

export function table(database: string, name: string): Table {
  return { catalog: 'lake', database, name, columns: COLUMNS.map((c, i) => ({ name: c, type: c === 'id' ? 'BIGINT' : c === 'amount' ? 'DOUBLE' : 'VARCHAR', ordinal: i })), source: { kind: 'virtual' } };
}

/**
 * `sales` holds `tables` tables t0..t(n-1). Groups g1, g2 read everything
 * tagged domain=sales; g3 reads t0 through a row filter (region = 'east');
 * `secret` columns are pii and only g2 is exempt; u1..u3 are in g1..g3 and u4
 * in g1 and g3; g4 reads only `id` of t0, and u5 is in g3 and g4: in
 * PostgreSQL their union would show region and amount of every row, so u5
 * needs a personal role. `variant` B moves g1 to domain=ops.
 */
export function smallWorld(options: { tables?: number; variant?: 'A' | 'B'; taggedT1?: boolean; extraTables?: readonly Table[] } = {}): PolicyWorld {
  const n = options.tables ?? 3;
  const tables = Array.from({ length: n }, (_, i) => table('sales', `t${i}`));
  const tagAssignments: TagAssignment[] = [];
  for (const t of tables) {
    if (t.name !== 't1' || options.taggedT1 !== false) tagAssignments.push({ resource: { level: 'table', catalog: 'lake', database: 'sales', table: t.name }, key: 'domain', value: 'sales' });
    tagAssignments.push({ resource: { level: 'column', catalog: 'lake', database: 'sales', table: t.name, column: 'secret' }, key: 'pii', value: 'true' });
  }
  const g1Domain = options.variant === 'B' ? 'ops' : 'sales';
  const grants: Grant[] = [
    { id: 'g1-tag', principal: 'group:g1', resource: { kind: 'tag', catalog: 'lake', expression: { domain: [g1Domain] } }, permissions: ['SELECT', 'DESCRIBE'], grantable: [] },
    { id: 'g2-tag', principal: 'group:g2', resource: { kind: 'tag', catalog: 'lake', expression: { domain: ['sales'] } }, permissions: ['SELECT', 'INSERT'], grantable: [] },
    { id: 'g4-id', principal: 'group:g4', resource: { kind: 'columns', catalog: 'lake', database: 'sales', table: 't0', columns: ['id'] }, permissions: ['SELECT'], grantable: [] },
    { id: 'g3-filter', principal: 'group:g3', resource: { kind: 'filter', catalog: 'lake', database: 'sales', table: 't0', filter: 'east' }, permissions: ['SELECT'], grantable: [] },
  ];
  return {
    catalogs: [{ name: 'lake' }],
    databases: [{ catalog: 'lake', name: 'sales' }],
    tables: [...tables, ...(options.extraTables ?? [])],
    users: ['u1', 'u2', 'u3', 'u4', 'u5'].map((name) => ({ name })),
    groups: ['g1', 'g2', 'g3', 'g4'].map((name) => ({ name })),
    memberships: [
      { group: 'g1', member: 'user:u1' },
      { group: 'g2', member: 'user:u2' },
      { group: 'g3', member: 'user:u3' },
      { group: 'g1', member: 'user:u4' },
      { group: 'g3', member: 'user:u4' },
      { group: 'g3', member: 'user:u5' },
      { group: 'g4', member: 'user:u5' },
    ],
    idpMappings: [],
    tagKeys: [
      { key: 'domain', values: ['sales', 'ops'] },
      { key: 'pii', values: ['true', 'false'] },
    ],
    tagAssignments,
    filters: [
      {
        name: 'east',
        catalog: 'lake',
        database: 'sales',
        table: 't0',
        rowFilter: "region = 'east'",
        predicate: { k: 'cmp', op: '=', left: { k: 'col', name: 'region' }, right: { k: 'lit', value: 'east' } },
        columns: ['id', 'region', 'amount'],
      },
    ],
    grants,
    guardrails: [{ name: 'pii', except: ['group:g2'], actions: ['SELECT'], catalog: 'lake', resources: { pii: ['true'] } }],
  };
}

export interface Harness {
  readonly sync: SyncService;
  setWorld(world: PolicyWorld): void;
  world(): PolicyWorld;
}

export function harness(world: PolicyWorld, retry: RetryOptions = { attempts: 2, baseDelayMs: 10 }): Harness {
  let version = 1;
  let current = world;
  let engine = createEngine(world);
  const sync = createSyncService({
    state: {
      snapshot: async () => ({ version, world: current, engine }),
      log: async () => undefined,
    },
    duckdb: () => {
      throw new Error('no lake in this harness');
    },
    targets: createMemoryTargetRepo(),
    retry,
  });
  return {
    sync,
    world: () => current,
    setWorld(w) {
      current = w;
      engine = createEngine(w);
      version++;
    },
  };
}

export function targetDef(name: string, prefix: string, loginPrefix: string, envVar: string, extra: Partial<TargetDefinition> = {}): TargetDefinition {
  return {
    name,
    catalog: 'lake',
    credentials: { kind: 'env', name: envVar },
    rolePrefix: prefix,
    userRoleTemplate: `${loginPrefix}{user}`,
    userRoles: {},
    schemaMap: {},
    tableMap: {},
    drift: 'revoke',
    batchSize: 5000,
    auto: false,
    ...extra,
  };
}

/** Creates the warehouse side: the `sales` tables and the login roles. */
export async function prepareWarehouse(client: { query(sql: string): Promise<unknown> }, world: PolicyWorld, loginPrefix: string, skip: readonly string[] = []): Promise<void> {
  await client.query('CREATE SCHEMA IF NOT EXISTS sales');
  for (const t of world.tables) {
    if (skip.includes(t.name)) continue;
    await client.query(`CREATE TABLE IF NOT EXISTS sales."${t.name}" (id bigint, region text, amount double precision, secret text)`);
  }
  for (const u of world.users) await client.query(`DO $$ BEGIN CREATE ROLE "${loginPrefix}${u.name}" LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
}

export type { DuckDb };

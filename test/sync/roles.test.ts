/**
 * Roles of principals that are gone, against a real PostgreSQL: Steward drops
 * the roles it created once they correspond to no principal (objects they own
 * are kept and reassigned), never a role it did not create, and under drift
 * policy `report` only reports. Also: a refused statement is skipped and
 * reported without blocking the rest of its batch.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestDatabase } from '../support/postgres.js';
import { closeWarehouse, openWarehouse, type TestWarehouse } from './support/warehouse.js';
import { harness, smallWorld, targetDef } from './support/small-world.js';
import type { PolicyWorld } from '../../src/policy/model.js';
import { applySteps } from '../../src/sync/apply.js';
import { ensureConfigSchema } from '../../src/sync/ledger.js';
import type { Step } from '../../src/sync/sync-types.js';

const tag = randomBytes(3).toString('hex');
const PREFIX = `stw${tag}_r_`;
const LOGIN = `l${tag}_`;
const ENV = `STEWARD_TEST_ROLES_${tag.toUpperCase()}`;

/** The small world without group g4 and user u5 (and their memberships and grants). */
function withoutG4(w: PolicyWorld): PolicyWorld {
  return {
    ...w,
    groups: w.groups.filter((g) => g.name !== 'g4'),
    users: w.users.filter((u) => u.name !== 'u5'),
    memberships: w.memberships.filter((m) => m.group !== 'g4' && m.member !== 'user:u5'),
    grants: w.grants.filter((g) => g.principal !== 'group:g4'),
  };
}

describe('dropping roles of principals that are gone (PostgreSQL)', () => {
  let wh: TestDatabase;
  let admin: pg.Client;

  let warehouse: TestWarehouse | undefined;

  before(async () => {
    warehouse = await openWarehouse(smallWorld({ tables: 3 }), LOGIN, ENV);
    ({ wh, admin } = warehouse);
    await admin.query(`CREATE ROLE "m${tag}_etl" LOGIN`);
    await admin.query('CREATE SCHEMA IF NOT EXISTS other; CREATE TABLE IF NOT EXISTS other.x (a int)');
  });

  after(() => closeWarehouse(warehouse, `%${tag}_%`, ENV));

  const roleExists = async (name: string): Promise<boolean> => (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rows.length === 1;

  test('a deleted group and a no-longer-needed personal role are dropped under `revoke`, only reported under `report`; hand-made and unmanaged roles stay', async () => {
    const world = smallWorld({ tables: 3 });
    const h = harness(world);
    await h.sync.targets.put(targetDef('roles', PREFIX, LOGIN, ENV, { drift: 'report' }));
    await h.sync.apply('roles');
    const g4 = `${PREFIX}g4`;
    const u5 = `${PREFIX}user:u5`;
    assert.ok(await roleExists(g4));
    assert.ok(await roleExists(u5), 'u5 has a personal role in the small world');
    // threat: a cleanup that drops whatever carries Steward's prefix would destroy a role someone made by hand
    const handMade = `${PREFIX}handmade`;
    await admin.query(`CREATE ROLE "${handMade}" NOLOGIN`);
    // the role to be dropped owns a table and holds a hand-made grant outside the managed scope
    await admin.query(`CREATE TABLE other.owned_by_g4 (a int); ALTER TABLE other.owned_by_g4 OWNER TO "${g4}"; GRANT SELECT ON other.x TO "${g4}"`);

    h.setWorld(withoutG4(world));
    const reported = await h.sync.plan('roles');
    assert.ok(!reported.steps.some((s) => s.item.k === 'role'), reported.steps.map((s) => s.sql).join('\n'));
    const messages = reported.drift.map((d) => d.message).join('\n');
    assert.match(messages, new RegExp(`role \`${g4}\` corresponds to no Steward principal any more; drift policy \`report\` leaves it in place`));
    assert.match(messages, /user:u5` corresponds to no Steward principal/);
    assert.match(messages, new RegExp(`role \`${handMade}\` has Steward's prefix but was not created by Steward`));
    await h.sync.apply('roles');
    assert.ok(await roleExists(g4), '`report` only reports');
    assert.ok(await roleExists(u5));

    await h.sync.targets.put(targetDef('roles', PREFIX, LOGIN, ENV, { drift: 'revoke' }));
    const r = await h.sync.apply('roles');
    const drops = r.plan.steps.filter((s) => s.item.k === 'role' && s.op === 'revoke').map((s) => s.sql);
    assert.deepEqual(drops, [
      `REASSIGN OWNED BY "${g4}" TO CURRENT_USER; DROP OWNED BY "${g4}"; DROP ROLE "${g4}"`,
      `REASSIGN OWNED BY "${u5}" TO CURRENT_USER; DROP OWNED BY "${u5}"; DROP ROLE "${u5}"`,
    ]);
    assert.equal(r.plan.steps.at(-1)?.item.k, 'role', 'drops come last');
    assert.ok(!(await roleExists(g4)));
    assert.ok(!(await roleExists(u5)));
    assert.ok(await roleExists(handMade), 'a role Steward did not create is never dropped');
    assert.ok(await roleExists(`m${tag}_etl`));
    assert.ok(await roleExists(`${PREFIX}g1`));
    const owned = await admin.query<{ owner: string }>(`SELECT tableowner AS owner FROM pg_tables WHERE schemaname = 'other' AND tablename = 'owned_by_g4'`);
    assert.deepEqual(owned.rows.map((x) => x.owner), [new URL(wh.url).username || 'postgres'], 'the owned table is kept and reassigned');
    const ledger = await admin.query('SELECT item_key FROM steward_config.grants WHERE target = $1 AND role_name = ANY($2::text[])', ['roles', [g4, u5]]);
    assert.deepEqual(ledger.rows, [], 'nothing of the dropped roles stays in the ledger');

    const again = await h.sync.plan('roles');
    assert.deepEqual(again.steps.map((s) => s.sql), []);
    assert.deepEqual(
      again.drift.filter((d) => d.item.k === 'role').map((d) => d.item.k === 'role' && d.item.role),
      [handMade],
    );
  });

  test('a statement the warehouse refuses is reported and skipped; the rest of its batch is applied and recorded', async () => {
    // threat: one bad statement in a batch rolls back every revoke with it, on every retry
    await ensureConfigSchema(admin);
    const role = `${PREFIX}batch`;
    const mk = (sql: string, k: Step['item']): Step => ({ op: 'grant', item: k, key: sql, sql });
    const steps: Step[] = [
      mk(`CREATE ROLE "${role}" NOLOGIN`, { k: 'role', role }),
      mk(`GRANT SELECT ON TABLE "sales"."t0" TO "${role}"`, { k: 'table', role, schema: 'sales', table: 't0', priv: 'SELECT' }),
      mk(`GRANT SELECT ON TABLE "sales"."no_such_table" TO "${role}"`, { k: 'table', role, schema: 'sales', table: 'no_such_table', priv: 'SELECT' }),
      mk(`GRANT SELECT ON TABLE "sales"."t1" TO "${role}"`, { k: 'table', role, schema: 'sales', table: 't1', priv: 'SELECT' }),
    ];
    const r = await applySteps(admin, 'batch', steps, { statementsPerTrip: 10 });
    assert.equal(r.applied, 3);
    assert.deepEqual(r.failed, [{ sql: `GRANT SELECT ON TABLE "sales"."no_such_table" TO "${role}"`, error: 'relation "sales.no_such_table" does not exist' }]);
    const { rows } = await admin.query<{ a: boolean; b: boolean }>(`SELECT has_table_privilege($1, 'sales.t0', 'SELECT') AS a, has_table_privilege($1, 'sales.t1', 'SELECT') AS b`, [role]);
    assert.deepEqual(rows[0], { a: true, b: true });
    const ledger = await admin.query<{ item_key: string }>(`SELECT item_key FROM steward_config.grants WHERE target = 'batch' ORDER BY 1`);
    assert.equal(ledger.rows.length, 3, 'the ledger holds what was applied, not the refused statement');
    const run = await admin.query<{ status: string; error: string }>('SELECT status, error FROM steward_config.runs WHERE id = $1', [r.runId]);
    assert.equal(run.rows[0]?.status, 'partial');
    assert.match(run.rows[0]?.error ?? '', /no_such_table/);
  });
});

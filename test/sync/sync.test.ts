/**
 * Sync against a real PostgreSQL on a small world: incremental plans, drift,
 * unmanaged objects, missing tables, an unreachable warehouse.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestDatabase } from '../support/postgres.js';
import { closeWarehouse, openWarehouse, type TestWarehouse } from './support/warehouse.js';
import { createEngine } from '../../src/policy/engine.js';
import { affectedScope } from '../../src/sync/scope.js';
import { harness, smallWorld, table, targetDef } from './support/small-world.js';
import { StewardError } from '../../src/errors.js';
import type { PolicyWorld } from '../../src/policy/model.js';

const tag = randomBytes(3).toString('hex');
const PREFIX = `stw${tag}_`;
const LOGIN = `l${tag}_`;
const ENV = `STEWARD_TEST_WH_${tag.toUpperCase()}`;

describe('warehouse sync on PostgreSQL', () => {
  let wh: TestDatabase;
  let admin: pg.Client;

  let warehouse: TestWarehouse | undefined;

  before(async () => {
    warehouse = await openWarehouse(smallWorld({ tables: 4 }), LOGIN, ENV);
    ({ wh, admin } = warehouse);
    await admin.query(`CREATE ROLE "m${tag}_mallory" LOGIN`);
    await admin.query('CREATE SCHEMA other; CREATE TABLE other.x (a int)');
  });

  after(() => closeWarehouse(warehouse, `%${tag}_%`, ENV));

  test('a single tag change plans exactly the privileges that change, and matches a full re-sync', async () => {
    const before = smallWorld({ tables: 4, taggedT1: false });
    const h = harness(before);
    await h.sync.targets.put(targetDef('inc', `${PREFIX}i_`, LOGIN, ENV));
    await h.sync.apply('inc');
    assert.equal((await h.sync.plan('inc')).steps.length, 0);

    const afterW = smallWorld({ tables: 4, taggedT1: true });
    h.setWorld(afterW);
    const scope = affectedScope(before, afterW, 'lake');
    assert.equal(scope.kind, 'tables');
    assert.deepEqual(scope.kind === 'tables' ? [...scope.tables] : [], ['sales.t1']);

    // the privileges that really change, asked of the engine directly
    const e0 = createEngine(before);
    const e1 = createEngine(afterW);
    let expected = 0;
    for (const g of ['g1', 'g2', 'g3']) {
      for (const action of ['SELECT', 'INSERT', 'DELETE'] as const) {
        const req = { principal: `group:${g}` as const, action, resource: { level: 'table', catalog: 'lake', database: 'sales', table: 't1' } as const };
        if (e0.authorize(req).decision !== e1.authorize(req).decision) expected++;
      }
    }
    assert.ok(expected >= 3, `expected some privileges to change, got ${expected}`);

    const full = await h.sync.plan('inc');
    assert.equal(full.steps.length, expected, full.steps.map((s) => s.sql).join('\n'));
    const r = await h.sync.apply('inc', { scope });
    assert.equal(r.plan.scope, 'tables');
    assert.deepEqual(r.plan.steps.map((s) => s.sql).sort(), full.steps.map((s) => s.sql).sort());
    assert.equal((await h.sync.plan('inc')).steps.length, 0);
    // the scoped apply recorded the table's new tags (and only its own rows changed)
    const tags = await admin.query<{ t: string; c: string; k: string; v: string }>(
      `SELECT table_name AS t, column_name AS c, tag_key AS k, tag_value AS v FROM steward_config.resource_tags WHERE target = 'inc' AND table_name IN ('t1', 't2') ORDER BY 1, 2, 3`,
    );
    assert.deepEqual(tags.rows, [
      { t: 't1', c: '', k: 'domain', v: 'sales' },
      { t: 't1', c: 'secret', k: 'domain', v: 'sales' },
      { t: 't1', c: 'secret', k: 'pii', v: 'true' },
      { t: 't2', c: '', k: 'domain', v: 'sales' },
      { t: 't2', c: 'secret', k: 'domain', v: 'sales' },
      { t: 't2', c: 'secret', k: 'pii', v: 'true' },
    ]);

    // threat: an incremental sync that cannot see a schema's other tables revokes USAGE they still need
    const untagged = smallWorld({ tables: 4, taggedT1: false });
    h.setWorld(untagged);
    const back = affectedScope(afterW, untagged, 'lake');
    const r2 = await h.sync.apply('inc', { scope: back });
    assert.equal(r2.plan.scope, 'tables');
    assert.ok(!r2.plan.steps.some((s) => s.sql.startsWith('REVOKE USAGE')), r2.plan.steps.map((s) => s.sql).join('\n'));
    const { rows } = await admin.query<{ t0: boolean; t1: boolean }>(
      `SELECT has_schema_privilege($1, 'sales', 'USAGE') AND has_column_privilege($1, 'sales.t0', 'id', 'SELECT') AS t0, has_column_privilege($1, 'sales.t1', 'id', 'SELECT') AS t1`,
      [`${PREFIX}i_g1`],
    );
    assert.deepEqual(rows[0], { t0: true, t1: false });
    assert.equal((await h.sync.plan('inc')).steps.length, 0, 'and a full plan agrees');
  });

  test('hand-made grants are reported under `report`, revoked under `revoke`; unmanaged roles and objects are never touched', async () => {
    const h = harness(smallWorld({ tables: 4 }));
    const p = `${PREFIX}d_`;
    await h.sync.targets.put(targetDef('drift', p, LOGIN, ENV, { drift: 'report' }));
    await h.sync.apply('drift');
    const mallory = `m${tag}_mallory`;
    // threat: someone widens a Steward role or slips a user into it behind Steward's back
    await admin.query(`GRANT UPDATE ON sales.t0 TO "${p}g1"`);
    await admin.query(`GRANT SELECT (secret) ON sales.t2 TO "${p}g3"`);
    await admin.query(`GRANT "${p}g2" TO "${mallory}"`);
    // an unmanaged role's grants, on a managed table and elsewhere
    await admin.query(`GRANT SELECT ON sales.t1 TO "${mallory}"`);
    await admin.query(`GRANT SELECT ON other.x TO "${mallory}"`);

    const reported = await h.sync.plan('drift');
    assert.equal(reported.steps.length, 0, 'report: nothing is changed');
    const messages = reported.drift.map((d) => d.message).join('\n');
    assert.match(messages, /UPDATE on `sales.t0` was granted to `.*g1` by hand/);
    assert.match(messages, /\(secret\) on `sales.t2`/);
    assert.match(messages, new RegExp(`${mallory}\` was made a member`));
    assert.match(messages, new RegExp(`SELECT on \`sales.t1\` was granted to \`${mallory}\` by hand \\(outside what Steward manages`));
    assert.ok(!messages.includes('other.x'), 'unmanaged role on unmanaged table is none of Steward business');

    await h.sync.targets.put(targetDef('drift', p, LOGIN, ENV, { drift: 'revoke' }));
    const revoked = await h.sync.apply('drift');
    assert.deepEqual(revoked.plan.steps.map((s) => s.sql).sort(), [
      `REVOKE "${p}g2" FROM "${mallory}"`,
      `REVOKE SELECT ("secret") ON TABLE "sales"."t2" FROM "${p}g3"`,
      `REVOKE UPDATE ON TABLE "sales"."t0" FROM "${p}g1"`,
    ]);
    // mallory's own grants survive
    const { rows } = await admin.query<{ t1: boolean; x: boolean }>(
      `SELECT has_table_privilege($1, 'sales.t1', 'SELECT') AS t1, has_table_privilege($1, 'other.x', 'SELECT') AS x`,
      [mallory],
    );
    assert.deepEqual(rows[0], { t1: true, x: true });
    const again = await h.sync.plan('drift');
    assert.equal(again.steps.length, 0);
    const ours = again.drift.filter((d) => d.message.includes(mallory) || d.message.includes(p));
    assert.equal(ours.length, 1, 'the unmanaged grant stays reported');
  });

  test('users whose row filters meet get a personal role that matches their own decision', async () => {
    const h = harness(smallWorld({ tables: 4 }));
    const p = `${PREFIX}p_`;
    await h.sync.targets.put(targetDef('personal', p, LOGIN, ENV));
    const r = await h.sync.apply('personal');
    const personal = r.plan.warnings.filter((w) => w.code === 'PERSONAL_ROLE').map((w) => w.message);
    assert.equal(personal.length, 1, personal.join('\n'));
    assert.match(personal[0] as string, /user `u5`/);
    const { rows } = await admin.query<{ m: string }>(
      `SELECT r.rolname AS m FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles u ON u.oid = am.member WHERE u.rolname = $1`,
      [`${LOGIN}u5`],
    );
    assert.deepEqual(rows.map((x) => x.m).filter((m) => m.startsWith(p)), [`${p}user:u5`]);
    // u5 reads id on every row and nothing else; u4 (g1 + g3, whose union is exact) stays in its groups
    await admin.query('INSERT INTO sales.t0 VALUES (1, $1, 10, $2), (2, $3, 20, $4)', ['east', 's1', 'west', 's2']);
    await admin.query('BEGIN');
    try {
      await admin.query(`SET LOCAL ROLE "${LOGIN}u5"`);
      const ids = await admin.query('SELECT id FROM sales.t0 ORDER BY id');
      assert.deepEqual(ids.rows.map((x: { id: string }) => Number(x.id)), [1, 2]);
      await assert.rejects(admin.query('SELECT region FROM sales.t0'), /permission denied/);
    } finally {
      await admin.query('ROLLBACK');
    }
  });

  test('tables missing in the warehouse are reported, not fatal', async () => {
    const world: PolicyWorld = smallWorld({ tables: 4, extraTables: [table('sales', 'not_there')] });
    const h = harness({ ...world, tagAssignments: [...world.tagAssignments, { resource: { level: 'table', catalog: 'lake', database: 'sales', table: 'not_there' }, key: 'domain', value: 'sales' }] });
    await h.sync.targets.put(targetDef('missing', `${PREFIX}m_`, LOGIN, ENV));
    const r = await h.sync.apply('missing');
    assert.ok(r.applied > 0);
    assert.ok(r.plan.warnings.some((w) => w.code === 'TABLE_MISSING' && w.message.includes('sales.not_there')));
    assert.ok(!r.plan.steps.some((s) => s.sql.includes('not_there')));
  });

  test('an unreachable warehouse gets a clear error after retries, without the password, and nothing is recorded as done', async () => {
    const h = harness(smallWorld(), { attempts: 3, baseDelayMs: 5 });
    const env = `${ENV}_DOWN`;
    process.env[env] = 'postgres://steward:sekret-pw-123@127.0.0.1:1/warehouse';
    try {
      await h.sync.targets.put(targetDef('down', `${PREFIX}x_`, LOGIN, env));
      const err = await h.sync.apply('down').then(
        () => assert.fail('apply succeeded'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof StewardError);
      assert.equal(err.code, 'STEWARD_E_SOURCE');
      assert.match(err.message, /warehouse `down` is unreachable at `steward@127\.0\.0\.1:1\/warehouse` after 3 attempt\(s\)/);
      assert.ok(!JSON.stringify({ m: err.message, c: String(err.cause) }).includes('sekret-pw-123'));
      const status = (await h.sync.targets.get('down')) as unknown as { status: { lastStatus: string } };
      assert.equal(status.status.lastStatus, 'failed');
    } finally {
      delete process.env[env];
    }
  });

  test('a missing credential reference is a configuration error that names the reference, not a value', async () => {
    const h = harness(smallWorld());
    await h.sync.targets.put(targetDef('nocred', `${PREFIX}n_`, LOGIN, 'STEWARD_TEST_UNSET_VARIABLE'));
    await assert.rejects(h.sync.plan('nocred'), /environment variable `STEWARD_TEST_UNSET_VARIABLE` is not set/);
  });
});

/**
 * Role-name collisions in the warehouse (issue #10, item 3): login roles and
 * the roles Steward creates live in distinct name spaces, and a change of
 * naming migrates the warehouse instead of leaving old roles behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestDatabase } from '../support/postgres.js';
import { closeWarehouse, openWarehouse, type TestWarehouse } from './support/warehouse.js';
import { harness, smallWorld, targetDef } from './support/small-world.js';
import { validateWorld } from '../../src/policy/validate.js';
import { createMemoryTargetRepo } from '../../src/sync/target-repo.js';
import type { PolicyWorld } from '../../src/policy/model.js';

const tag = randomBytes(3).toString('hex');
const LOGIN = `l${tag}_`;
const ENV = `STEWARD_TEST_NAMES_${tag.toUpperCase()}`;

test('a user named with the reserved `stw_` prefix is refused by world validation', () => {
  // threat: a user named `stw_analysts` logs in as the analysts group's role
  const w = smallWorld();
  const issues = validateWorld({ ...w, users: [...w.users, { name: 'stw_g1' }] });
  assert.deepEqual(
    issues.map((i) => i.path),
    ['users[stw_g1]'],
  );
  assert.match(issues[0]?.message ?? '', /reserved for the roles Steward creates/);
});

test('a target whose login roles fall into its role prefix is refused', async () => {
  // threat: an admin maps users onto names Steward uses for group roles
  const repo = createMemoryTargetRepo();
  await assert.rejects(repo.put(targetDef('t', 'stw_', 'stw_', 'E')), /userRoleTemplate `stw_\{user\}` starts with the role prefix `stw_`/);
  await assert.rejects(repo.put(targetDef('t', 'stw_', '', 'E', { userRoles: { u1: 'stw_g1' } })), /userRoles\.u1: login role `stw_g1` starts with the role prefix/);
  await repo.put(targetDef('t', 'stw_', 'login_', 'E'));
});

describe('role name spaces in a real warehouse (PostgreSQL)', () => {
  let wh: TestDatabase;
  let admin: pg.Client;

  let warehouse: TestWarehouse | undefined;

  before(async () => {
    warehouse = await openWarehouse(smallWorld({ tables: 2 }), LOGIN, ENV);
    ({ wh, admin } = warehouse);
  });

  after(() => closeWarehouse(warehouse, `%${tag}%`, ENV));

  const memberOf = async (login: string): Promise<string[]> =>
    (
      await admin.query<{ r: string }>(
        'SELECT r.rolname AS r FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member WHERE m.rolname = $1 ORDER BY 1',
        [login],
      )
    ).rows.map((x) => x.r);

  test('a user named after its own group role is skipped with LOGIN_ROLE_RESERVED, and the sync (revocations included) still runs', async () => {
    // threat: one user named like a group role makes every sync fail, so revocations stop
    const prefix = `${LOGIN}g_`; // login roles are `${LOGIN}<user>`: user `g_g1` logs in as `${prefix}g1`
    const base = smallWorld({ tables: 2 });
    const world: PolicyWorld = { ...base, users: [...base.users, { name: 'g_g1' }], memberships: [...base.memberships, { group: 'g1', member: 'user:g_g1' }] };
    const h = harness(world);
    await h.sync.targets.put(targetDef('clash', prefix, LOGIN, ENV));
    const r = await h.sync.apply('clash');
    assert.deepEqual(r.failed, []);
    assert.ok(r.plan.warnings.some((w) => w.code === 'LOGIN_ROLE_RESERVED' && w.message.includes(`\`${prefix}g1\``)), JSON.stringify(r.plan.warnings));
    assert.deepEqual(await memberOf(`${LOGIN}u1`), [`${prefix}g1`]);
    // a revocation still reaches the warehouse
    h.setWorld({ ...world, memberships: world.memberships.filter((m) => m.member !== 'user:u1') });
    const r2 = await h.sync.apply('clash');
    assert.deepEqual(r2.failed, []);
    assert.deepEqual(await memberOf(`${LOGIN}u1`), []);
  });

  test('changing the role prefix migrates: the old Steward roles lose their members and are dropped, the new ones take over', async () => {
    // threat: a renamed mapping leaves the old roles, and every login's membership in them, in place
    const h = harness(smallWorld({ tables: 2 }));
    const before = `${LOGIN}old_`;
    const afterP = `${LOGIN}new_`;
    await h.sync.targets.put(targetDef('mig', before, LOGIN, ENV));
    await h.sync.apply('mig');
    assert.deepEqual(await memberOf(`${LOGIN}u1`), [`${before}g1`]);
    await h.sync.targets.put(targetDef('mig', afterP, LOGIN, ENV));
    const r = await h.sync.apply('mig');
    assert.deepEqual(r.failed, []);
    assert.deepEqual(await memberOf(`${LOGIN}u1`), [`${afterP}g1`]);
    const { rows } = await admin.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE left(rolname, length($1)) = $1', [before]);
    assert.deepEqual(rows, [], 'no role of the old naming is left');
    assert.deepEqual((await h.sync.plan('mig')).steps.map((s) => s.sql), [], 'and the next plan is empty');
  });
});

/**
 * SQL injection through the warehouse sync (issue #10, item 1), against a real
 * PostgreSQL: a filter literal ending in a backslash, read by a server with
 * `standard_conforming_strings = off` (or by Redshift, which always reads `\'`
 * as an escaped quote), must stay one literal; hostile identifiers stay one
 * identifier; and no statement carrying user text is sent as part of a
 * multi-statement string.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import pg from 'pg';
import type { TestDatabase } from '../support/postgres.js';
import { closeWarehouse, openWarehouse, type TestWarehouse } from './support/warehouse.js';
import { harness, smallWorld, targetDef } from './support/small-world.js';
import type { PolicyWorld } from '../../src/policy/model.js';
import type { Predicate } from '../../src/policy/predicate.js';
import { toSql } from '../../src/policy/predicate.js';
import { applySteps, identifierOnly } from '../../src/sync/apply.js';
import { postgresSql } from '../../src/sync/diff.js';
import { ensureConfigSchema } from '../../src/sync/ledger.js';
import { redshiftPlan } from '../../src/sync/redshift.js';
import { createEngine } from '../../src/policy/engine.js';
import type { Item, Step } from '../../src/sync/sync-types.js';

const tag = randomBytes(3).toString('hex');
const PREFIX = `stw${tag}_x_`;
const LOGIN = `l${tag}_`;
const ENV = `STEWARD_TEST_INJ_${tag.toUpperCase()}`;

/** The repro: `region IN ('\', ') OR TRUE)); CREATE TABLE public.pwned(x int); --')`. */
const HOSTILE: Predicate = {
  k: 'in',
  arg: { k: 'col', name: 'region' },
  list: [
    { k: 'lit', value: '\\' },
    { k: 'lit', value: `') OR TRUE)); CREATE TABLE public.pwned_${tag}(x int); --` },
  ],
  negated: false,
};

function hostileWorld(): PolicyWorld {
  const w = smallWorld({ tables: 1 });
  return {
    ...w,
    filters: w.filters.map((f) => ({ ...f, rowFilter: toSql(HOSTILE), predicate: HOSTILE })),
  };
}

describe('warehouse SQL injection (PostgreSQL)', () => {
  let wh: TestDatabase;
  let admin: pg.Client;

  let warehouse: TestWarehouse | undefined;

  before(async () => {
    warehouse = await openWarehouse(hostileWorld(), LOGIN, ENV);
    ({ wh, admin } = warehouse);
    await admin.query(`INSERT INTO sales.t0 (id, region) VALUES (1, 'east'), (2, E'\\\\'), (3, 'west')`);
    // every new session of this database starts with backslashes as escapes, as an old server or Redshift would
    await admin.query(`ALTER DATABASE "${new URL(wh.url).pathname.slice(1)}" SET standard_conforming_strings = off`);
  });

  after(() => closeWarehouse(warehouse, `%${tag}_%`, ENV));

  const tableExists = async (c: pg.Client, name: string): Promise<boolean> => (await c.query('SELECT 1 FROM pg_tables WHERE tablename = $1', [name])).rows.length > 0;

  test('a granted row filter ending in a backslash cannot create a table or widen the row policy, with standard_conforming_strings off', async () => {
    // threat: a filter author smuggles `\'` so that the warehouse reads the rest of the literal as SQL
    const h = harness(hostileWorld());
    await h.sync.targets.put(targetDef('inj', PREFIX, LOGIN, ENV));
    const r = await h.sync.apply('inj');
    assert.deepEqual(r.failed, []);
    assert.ok(r.plan.steps.some((s) => s.sql.startsWith('CREATE POLICY') && s.sql.includes("E'\\\\'")), r.plan.steps.map((s) => s.sql).join('\n'));
    const fresh = new pg.Client({ connectionString: wh.url });
    await fresh.connect();
    try {
      assert.equal((await fresh.query<{ s: string }>(`SELECT current_setting('standard_conforming_strings') AS s`)).rows[0]?.s, 'off', 'the database default is really off');
      assert.equal(await tableExists(fresh, `pwned_${tag}`), false, 'the smuggled CREATE TABLE did not run');
      // u3 is only in g3, whose filter admits exactly the row whose region is one backslash
      await fresh.query('BEGIN');
      await fresh.query(`SET LOCAL ROLE "${LOGIN}u3"`);
      const { rows } = await fresh.query<{ id: string }>('SELECT id FROM sales.t0 ORDER BY id');
      await fresh.query('ROLLBACK');
      assert.deepEqual(rows.map((x) => Number(x.id)), [2], 'the policy admits only the backslash row, not every row');
    } finally {
      await fresh.end();
    }
  });

  test('the plan text and the Redshift text of a backslash literal select the same rows with standard_conforming_strings on and off', async () => {
    // threat: a literal whose meaning depends on a server setting the plan does not control
    const world = hostileWorld();
    const h = harness(world);
    await h.sync.targets.put(targetDef('inj2', `${PREFIX}2_`, LOGIN, ENV));
    const pgExpr = toSql(HOSTILE, 'postgres');
    const rs = redshiftPlan({ world, engine: createEngine(world), target: targetDef('inj2', `${PREFIX}2_`, LOGIN, ENV), now: Date.now() });
    const rsPolicy = rs.steps.find((s) => s.sql.startsWith('CREATE RLS POLICY') && s.sql.includes('"region" IN'))?.sql ?? '';
    const rsExpr = /USING \((.*)\)$/.exec(rsPolicy)?.[1] ?? '';
    assert.notEqual(rsExpr, '', rsPolicy);
    const ids = async (expr: string, setting: 'on' | 'off'): Promise<number[]> => {
      const c = new pg.Client({ connectionString: wh.url });
      await c.connect();
      try {
        await c.query(`SET standard_conforming_strings = ${setting}`);
        // one statement through the extended protocol: anything that escaped the literal would be a syntax error
        const { rows } = await c.query<{ id: string }>({ text: `SELECT id FROM sales.t0 WHERE ${expr} ORDER BY id`, values: [], queryMode: 'extended' } as pg.QueryConfig);
        return rows.map((x) => Number(x.id));
      } finally {
        await c.end();
      }
    };
    assert.deepEqual(await ids(pgExpr, 'on'), [2]);
    assert.deepEqual(await ids(pgExpr, 'off'), [2]);
    // Redshift reads backslashes as escapes always: PostgreSQL with the setting off reads them the same way
    assert.deepEqual(await ids(rsExpr, 'off'), [2]);
    const fresh = new pg.Client({ connectionString: wh.url });
    await fresh.connect();
    assert.equal(await tableExists(fresh, `pwned_${tag}`), false);
    await fresh.end();
  });

  test('a statement carrying a literal is sent alone: a second statement smuggled into it is refused, never run', async () => {
    // threat: a quoting bug in one literal becomes a second statement because the batch is one multi-statement string
    await ensureConfigSchema(admin);
    const role = `${PREFIX}solo`;
    const item: Item = { k: 'role', role };
    const policy: Item = { k: 'policy', schema: 'sales', table: 't0', name: `${PREFIX}p`, role, cmd: 'SELECT', expr: 'TRUE' };
    const steps: Step[] = [
      { op: 'grant', item, key: 'r', sql: `CREATE ROLE "${role}" NOLOGIN` },
      { op: 'grant', item: policy, key: 'p', sql: `CREATE POLICY "${PREFIX}p" ON "sales"."t0" FOR SELECT TO "${role}" USING ('a' = 'a'); CREATE TABLE public.pwned2_${tag}(x int)` },
    ];
    const r = await applySteps(admin, 'solo', steps, { statementsPerTrip: 50 });
    assert.equal(r.failed.length, 1);
    assert.match(r.failed[0]?.error ?? '', /cannot insert multiple commands into a prepared statement/);
    assert.equal(await tableExists(admin, `pwned2_${tag}`), false);
  });

  test('identifiers holding `"`, `\\` and `;` stay one identifier in batched statements', async () => {
    // threat: a table or role name closes its quotes and appends SQL to a batch of 500 statements
    const name = fc.string({ minLength: 1, maxLength: 12, unit: fc.constantFrom('"', '\\', ';', "'", '-', '/', '*', '$', 'a', ' ') });
    fc.assert(
      fc.property(name, name, name, (role, schema, table) => {
        const items: Item[] = [
          { k: 'role', role },
          { k: 'member', role, member: table },
          { k: 'usage', role, schema },
          { k: 'table', role, schema, table, priv: 'SELECT' },
          { k: 'columns', role, schema, table, priv: 'SELECT', columns: [schema, table] },
          { k: 'rls', schema, table },
        ];
        for (const it of items) {
          assert.ok(identifierOnly(postgresSql('grant', it)), postgresSql('grant', it));
          if (it.k !== 'role') assert.ok(identifierOnly(postgresSql('revoke', it)), postgresSql('revoke', it));
        }
      }),
    );
    // and on the server: a hostile table name in a multi-statement round trip grants exactly what it names
    const evil = `x"; CREATE TABLE public.pwned3_${tag}(x int); --\\`;
    await admin.query(`CREATE TABLE sales.${'"' + evil.replaceAll('"', '""') + '"'} (id int)`);
    const role = `${PREFIX}ident`;
    const steps: Step[] = [
      { op: 'grant', item: { k: 'role', role }, key: 'r', sql: postgresSql('grant', { k: 'role', role }) },
      { op: 'grant', item: { k: 'table', role, schema: 'sales', table: evil, priv: 'SELECT' }, key: 't', sql: postgresSql('grant', { k: 'table', role, schema: 'sales', table: evil, priv: 'SELECT' }) },
    ];
    const r = await applySteps(admin, 'ident', steps, { statementsPerTrip: 50 });
    assert.deepEqual(r.failed, []);
    assert.equal(await tableExists(admin, `pwned3_${tag}`), false);
    const { rows } = await admin.query<{ ok: boolean }>('SELECT has_table_privilege($1, $2, $3) AS ok', [role, `sales."${evil.replaceAll('"', '""')}"`, 'SELECT']);
    assert.equal(rows[0]?.ok, true);
  });
});

/**
 * The session-tag rule as PostgreSQL RLS, in a real PostgreSQL: the USING
 * expression admits exactly the naive evaluator's rows for random rules,
 * sessions and rows (tags set with set_config, as an application would), and
 * hostile tag values never become SQL.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { redshiftSessionTagPlan, sessionTagPolicy, sessionTagUsing, tagSetting } from '../../src/sync/session-tag-rls.js';
import type { RowRule } from '../../src/embed/tag-rules.js';
import { COLUMNS, HOSTILE_VALUES, naiveAdmits, ruleArb, rowArb, tagsArb } from './arbitraries.js';

let db: TestDatabase;
let c: pg.Client;
before(async () => {
  db = await createTestDatabase();
  c = new pg.Client({ connectionString: db.url });
  await c.connect();
});
after(async () => {
  await c?.end();
  await db?.drop();
});

const KEYS = ['k0', 'k1', 'k2', 'k3'];

/** Sets every test tag for this transaction: the session's value, or '' (unset) for the others. */
async function setTags(tags: Readonly<Record<string, string>>): Promise<void> {
  const values = KEYS.map((k) => (Object.hasOwn(tags, k) ? (tags[k] as string) : ''));
  await c.query(`SELECT ${KEYS.map((k, i) => `set_config('${tagSetting(k)}', $${i + 1}, true)`).join(', ')}`, values);
}

describe('session-tag rules as postgres RLS', () => {
  it('the USING expression admits exactly the naive rows for random rules, sessions and rows', async () => {
    // Threat: the warehouse showing a row the gateway would hide (or the reverse) because SQL splitting differs from ours.
    await fc.assert(
      fc.asyncProperty(ruleArb, tagsArb, fc.array(rowArb, { minLength: 1, maxLength: 10 }), async (rule, tags, rows) => {
        await c.query('BEGIN');
        try {
          await setTags(tags);
          const binds = rows.flatMap((r) => COLUMNS.map((col) => r[col]));
          const values = rows.map((_, i) => `(${[i, ...COLUMNS.map((_c, j) => `$${i * COLUMNS.length + j + 1}::text`)].join(', ')})`).join(', ');
          const sql = `SELECT i FROM (VALUES ${values}) AS t(i, ${COLUMNS.join(', ')}) WHERE ${sessionTagUsing(rule)} ORDER BY i`;
          const got = (await c.query<{ i: number }>(sql, binds)).rows.map((r) => r.i);
          assert.deepEqual(got, rows.flatMap((r, i) => (naiveAdmits(rule, tags, r) ? [i] : [])), JSON.stringify({ rule, tags }));
        } finally {
          await c.query('ROLLBACK');
        }
      }),
      { numRuns: 150, seed: 11 },
    );
  });

  it('a policy on a real table, for a non-owner role: hostile tag values select only their own row and no tag selects nothing', async () => {
    // Threat: a tag value such as `x'); DROP TABLE …` executed by the policy, or an unset tag read as "all rows".
    const role = `stw_embed_test_${process.pid}_${Date.now()}`;
    const rule: RowRule = { tagRules: [{ tagKey: 'k0', column: 'v', multiValueDelimiter: '|', matchAllValue: '~all~' }], configurations: [['k0']] };
    const values = HOSTILE_VALUES.filter((v) => !v.includes('|'));
    await c.query('CREATE TABLE hostile (i int, v text)');
    await c.query('INSERT INTO hostile SELECT i, v FROM unnest($1::text[]) WITH ORDINALITY AS u(v, i)', [values]);
    await c.query(`CREATE ROLE "${role}" NOLOGIN`);
    try {
      await c.query(`GRANT SELECT ON hostile TO "${role}"`);
      await c.query(`CREATE POLICY grant_all ON hostile AS PERMISSIVE FOR SELECT TO "${role}" USING (true)`);
      for (const st of sessionTagPolicy({ schema: 'public', table: 'hostile', role, dataset: 'hostile', rule }).statements) await c.query(st);
      const seen = async (tag: string | null): Promise<string[]> => {
        await c.query('BEGIN');
        try {
          await c.query(`SET LOCAL ROLE "${role}"`);
          if (tag !== null) await c.query(`SELECT set_config('steward.tag.k0', $1, true)`, [tag]);
          return (await c.query<{ v: string }>('SELECT v FROM hostile ORDER BY i')).rows.map((r) => r.v);
        } finally {
          await c.query('ROLLBACK');
        }
      };
      for (const v of values) assert.deepEqual(await seen(v), [v], v);
      assert.deepEqual(await seen(null), [], 'unset tag: no rows');
      assert.deepEqual(await seen(''), [], 'empty tag: no rows');
      assert.deepEqual((await seen('~all~')).length, values.length);
      assert.equal((await c.query<{ n: number }>('SELECT count(*)::int AS n FROM hostile')).rows[0]?.n, values.length, 'the table is intact');
    } finally {
      await c.query('DROP TABLE IF EXISTS hostile');
      await c.query(`DROP ROLE IF EXISTS "${role}"`);
    }
  });

  it('redshift: the plan says the rule cannot be expressed there', () => {
    // Threat: a warehouse silently left without the rule, read as "synced".
    const r = redshiftSessionTagPlan('claims', 'claims.patient_claims');
    assert.equal(r.expressible, false);
    assert.match(r.message, /not synced to redshift/);
  });
});

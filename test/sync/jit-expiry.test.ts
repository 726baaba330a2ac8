/**
 * Expired just-in-time access must leave the warehouse (issue #10, item 8),
 * with the documented setup: the warehouse role is NOT a superuser (it owns
 * the tables and has CREATEROLE), so PostgreSQL refuses it `REASSIGN OWNED` of
 * a personal role. The built `steward serve` runs as its own process on a
 * PostgreSQL store, syncs the warehouse by itself, is killed -9 before the
 * grant's end and restarted after it: the revocation must reach the warehouse
 * within a second of the restart, although the role drop keeps failing, and
 * the repeated failure is logged as `sync.failing` for monitors.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { serveHarness } from '../support/serve-process.js';
import { pollUntil } from '../support/poll.js';
import { dropRolesLike, roleCanRead } from './support/warehouse.js';

const tag = randomBytes(3).toString('hex');
const SYNCER = `w${tag}_sync`;
const LOGIN = `l${tag}_`;
const PREFIX = `stw${tag}_j_`;
const ENV = `STEWARD_TEST_JIT_${tag.toUpperCase()}`;
const DEADLINE_MS = 30_000;

let wh: TestDatabase;
let state: TestDatabase;
let admin: pg.Client;
let home: string;
let whUrl: string;
const serve = serveHarness(() => ({ STEWARD_HOME: home, STEWARD_DATABASE_URL: state.url, [ENV]: whUrl }));
const call = serve.call;

before(async () => {
  wh = await createTestDatabase();
  state = await createTestDatabase();
  home = await mkdtemp(path.join(os.tmpdir(), 'steward-jit-'));
  admin = new pg.Client({ connectionString: wh.url });
  await admin.connect();
  // the documented warehouse role: owns the mirrored tables, may create roles, is no superuser
  await admin.query(`CREATE ROLE "${SYNCER}" LOGIN CREATEROLE NOSUPERUSER PASSWORD 'pw-${tag}'`);
  await admin.query(`GRANT CREATE ON DATABASE "${new URL(wh.url).pathname.slice(1)}" TO "${SYNCER}"`);
  await admin.query(`CREATE SCHEMA sales AUTHORIZATION "${SYNCER}"`);
  await admin.query(`CREATE TABLE sales.orders (id int, region text)`);
  await admin.query(`ALTER TABLE sales.orders OWNER TO "${SYNCER}"`);
  await admin.query(`INSERT INTO sales.orders VALUES (1, 'east')`);
  await admin.query(`CREATE ROLE "${LOGIN}u1" LOGIN`);
  const u = new URL(wh.url);
  u.username = SYNCER;
  u.password = `pw-${tag}`;
  whUrl = u.toString();
});

after(async () => {
  await serve.kill9();
  await admin?.end();
  await wh?.drop();
  await state?.drop();
  await rm(home, { recursive: true, force: true });
  await dropRolesLike(wh.url, `%${tag}_%`);
});

/** Can u1's login role read the table? */
const u1Reads = (): Promise<boolean> => roleCanRead(admin, `${LOGIN}u1`, 'SELECT id FROM sales.orders');

const until = (what: string, ok: () => Promise<boolean>): Promise<number> => pollUntil(what, ok, DEADLINE_MS);

test('a just-in-time grant that ends while the server is killed -9 is gone from the warehouse within 1 s of the restart, with a non-superuser warehouse role', async () => {
  // threat: the personal role's drop fails for a non-superuser, rolls back the revokes with it, on every retry, silently
  await serve.start();
  assert.notEqual(serve.token, '', 'the first start prints the bootstrap token');
  for (const [p, body] of [
    ['/v1/catalogs', { name: 'lake' }],
    ['/v1/databases', { catalog: 'lake', name: 'sales' }],
    ['/v1/tables/postgres', { catalog: 'lake', database: 'sales', url: wh.url, schema: 'sales' }],
    ['/v1/users', { name: 'u1' }],
  ] as const) {
    const r = await call('POST', p, body);
    assert.ok(r.status < 300, `${p}: ${JSON.stringify(r.json)}`);
  }
  const notAfter = Date.now() + 8_000;
  const g = await call('POST', '/v1/grants', { id: 'timed-u1', principal: 'user:u1', resource: 'lake.sales.orders', permissions: ['SELECT'], notAfter: new Date(notAfter).toISOString() });
  assert.equal(g.status, 201, JSON.stringify(g.json));
  const put = await call('PUT', '/v1/warehouse/targets/jit', { catalog: 'lake', credentials: { kind: 'env', name: ENV }, rolePrefix: PREFIX, userRoleTemplate: `${LOGIN}{user}`, auto: true });
  assert.equal(put.status, 200, JSON.stringify(put.json));
  await until('u1 reading through its personal role', u1Reads);
  assert.ok(Date.now() < notAfter, 'the grant reached the warehouse before it ended');

  await serve.kill9();
  await new Promise((r) => setTimeout(r, Math.max(0, notAfter - Date.now()) + 300));
  const server = await serve.start();
  const gone = await until('u1 refused after the restart', async () => !(await u1Reads()));
  const afterRestart = gone - server.listeningAt;
  assert.ok(afterRestart <= 1000, `access was gone ${afterRestart} ms after the server listened again (goal: 1 s)`);

  // the drop of the personal role is refused to this role: reported, retried, and never blocks the revokes
  const personal = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [`${PREFIX}user:u1`]);
  assert.equal(personal.rows.length, 1, 'PostgreSQL refuses the drop to a non-superuser (if this changes, the test no longer covers the failure)');
  const log = new pg.Client({ connectionString: state.url });
  await log.connect();
  try {
    // the failed apply is logged after the revokes commit, so it may land a moment after access is gone
    const refusedReason = async (): Promise<string> =>
      (await log.query<{ reason: string }>(`SELECT reason FROM steward.decision_log WHERE action = 'sync.apply' AND result = 'error' ORDER BY id DESC LIMIT 1`)).rows[0]?.reason ?? '';
    await until('the refused drop in the decision log', async () => (await refusedReason()) !== '');
    assert.match(await refusedReason(), /REASSIGN OWNED BY .* failed: permission denied/);
    // retried with backoff (2 s, 4 s): the third failure in a row raises the monitorable event
    await until('sync.failing in the decision log', async () => (await log.query(`SELECT 1 FROM steward.decision_log WHERE action = 'sync.failing' AND resource = 'jit'`)).rows.length > 0);
  } finally {
    await log.end();
  }
});
